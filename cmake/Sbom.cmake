# CycloneDX 1.6 SBOMs of the programs we ship, written at build time to
# ${CMAKE_BINARY_DIR}/sbom/NAME.cdx.json by scripts/sbom.py (Python 3
# standard library; ldd, readelf, dpkg). About a second for all three;
# rebuilt only when a program is relinked. docs/vulnerabilities.md.
#
#   ninja sbom          iot-gateway, iotctl, iotsim (part of the default build)
#   ninja sbom-esp32    the ESP32 firmware, from an ESP-IDF build directory
#                       (IOT_ESP32_BUILD_DIR, default the one esp_idf_build.sh
#                       writes: esp-idf/production)

find_program(IOT_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT IOT_PYTHON3)
  find_program(IOT_PYTHON3 python3)
endif()
if(NOT IOT_PYTHON3)
  # A build that makes only programs (the gateway's container image)
  # needs no Python.
  message(STATUS "python3 not found: no SBOM targets")
  return()
endif()
set(IOT_SBOM_SCRIPT ${CMAKE_SOURCE_DIR}/scripts/sbom.py)
set(IOT_SBOM_DIR ${CMAKE_BINARY_DIR}/sbom)
# The firmware version simulated devices report unless started with
# --fw-version (tools/iotsim/main.c); the iotsim SBOM carries it.
set(IOT_SIM_FW_VERSION "1.0.0" CACHE STRING "Firmware version of the iotsim image")
set(IOT_ESP32_BUILD_DIR ${CMAKE_BINARY_DIR}/esp-idf/production CACHE PATH
    "ESP-IDF build directory the ESP32 firmware SBOM is made from")

# iot__static_deps(TARGET OUT): every STATIC library target TARGET links,
# directly or through others.
function(iot__static_deps target out)
  set(seen ${${out}})
  get_target_property(libs ${target} LINK_LIBRARIES)
  get_target_property(ilibs ${target} INTERFACE_LINK_LIBRARIES)
  foreach(lib IN LISTS libs ilibs)
    if(TARGET ${lib} AND NOT lib IN_LIST seen)
      get_target_property(type ${lib} TYPE)
      get_target_property(imported ${lib} IMPORTED)
      if(type STREQUAL "STATIC_LIBRARY" AND NOT imported)
        list(APPEND seen ${lib})
        iot__static_deps(${lib} seen)
      endif()
    endif()
  endforeach()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# iot_sbom(TARGET NAME VERSION [DEB_STATIC pkg...])
function(iot_sbom target name version)
  cmake_parse_arguments(S "" "" "DEB_STATIC" ${ARGN})
  set(statics "")
  iot__static_deps(${target} statics)
  set(args "")
  set(deps ${target})
  foreach(lib IN LISTS statics)
    if(lib STREQUAL "iot_llhttp")
      continue() # third-party sources: listed as their Debian package
    endif()
    list(APPEND args --own "${lib}=$<TARGET_FILE:${lib}>")
    list(APPEND deps ${lib})
  endforeach()
  foreach(pkg IN LISTS S_DEB_STATIC)
    list(APPEND args --deb-static ${pkg})
  endforeach()
  set(out ${IOT_SBOM_DIR}/${name}.cdx.json)
  add_custom_command(OUTPUT ${out}
    COMMAND ${IOT_PYTHON3} ${IOT_SBOM_SCRIPT} host --name ${name} --version ${version}
            --binary $<TARGET_FILE:${target}> --product-version ${PROJECT_VERSION}
            --out ${out} ${args}
    DEPENDS ${deps} ${IOT_SBOM_SCRIPT}
    COMMENT "SBOM ${name}.cdx.json"
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY IOT_SBOM_FILES ${out})
endfunction()

iot_sbom(iotgw iot-gateway ${PROJECT_VERSION} DEB_STATIC node-llhttp)
iot_sbom(iotctl iotctl ${PROJECT_VERSION})
iot_sbom(iotsim iotsim ${IOT_SIM_FW_VERSION})
get_property(iot_sbom_files GLOBAL PROPERTY IOT_SBOM_FILES)
add_custom_target(sbom ALL DEPENDS ${iot_sbom_files})

add_custom_target(sbom-esp32
  COMMAND ${IOT_PYTHON3} ${IOT_SBOM_SCRIPT} esp32
          --project-description ${IOT_ESP32_BUILD_DIR}/project_description.json
          --product-version ${PROJECT_VERSION}
          --out ${IOT_SBOM_DIR}/iot-firmware-esp32.cdx.json
  COMMENT "SBOM iot-firmware-esp32.cdx.json from ${IOT_ESP32_BUILD_DIR}"
  VERBATIM)
