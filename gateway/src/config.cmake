# The gateway's configuration module (config.h). One option table in
# config.c drives parsing, defaults, validation, the example file and the
# option reference in docs/configuration.md. Included by the gateway's
# CMakeLists.txt and by tests/unit/gateway, whichever comes first.
add_library(iotgw_config STATIC
  ${CMAKE_CURRENT_LIST_DIR}/config.c
  ${CMAKE_CURRENT_LIST_DIR}/config_parse.c
)
target_include_directories(iotgw_config PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(iotgw_config PUBLIC iot_common)
iot_harden(iotgw_config)

# Prints deploy/gateway/iotgw.conf.example (or, with --markdown, the option
# reference of docs/configuration.md) from the table.
get_filename_component(IOTGW_CONFIG_TOOLS_DIR ${CMAKE_CURRENT_LIST_DIR}/../tools ABSOLUTE)
add_executable(gen_config_example ${IOTGW_CONFIG_TOOLS_DIR}/gen_config_example.c)
target_link_libraries(gen_config_example PRIVATE iotgw_config)
iot_harden(gen_config_example)
