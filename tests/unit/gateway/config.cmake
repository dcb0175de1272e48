# Unit tests of the gateway's configuration module (gateway/src/config.c).
if(NOT TARGET iotgw_config)
  include(${CMAKE_SOURCE_DIR}/gateway/src/config.cmake)
endif()

iot_add_unit_test(test_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_config.c LIBS iotgw_config)
# The test compares the committed example file and the option reference in
# docs/configuration.md with what the table produces.
target_compile_definitions(test_config PRIVATE IOT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

# The generator program itself must reproduce the committed example.
add_test(NAME unit.gen_config_example
         COMMAND sh -c "\"$0\" | cmp - \"$1\""
                 $<TARGET_FILE:gen_config_example>
                 ${CMAKE_SOURCE_DIR}/deploy/gateway/iotgw.conf.example)
set_tests_properties(unit.gen_config_example PROPERTIES LABELS unit TIMEOUT 60)
