# Cross-compilation for 32-bit RISC-V (rv32imac, ilp32) with Debian's
# riscv64-unknown-elf-gcc and picolibc. Executables use semihosting for
# their console and exit status and are laid out for qemu's `virt` machine:
#
#   qemu-system-riscv32 -machine virt -nographic -bios none -kernel t.elf \
#       -semihosting-config enable=on,target=native
#
# Packages: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)

set(IOT_RISCV_PREFIX riscv64-unknown-elf-)
set(CMAKE_C_COMPILER ${IOT_RISCV_PREFIX}gcc)
set(CMAKE_AR ${IOT_RISCV_PREFIX}ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${IOT_RISCV_PREFIX}ranlib CACHE FILEPATH "")
set(CMAKE_NM ${IOT_RISCV_PREFIX}nm CACHE FILEPATH "")
set(CMAKE_SIZE ${IOT_RISCV_PREFIX}size CACHE FILEPATH "")

set(CMAKE_C_FLAGS_INIT "-march=rv32imac -mabi=ilp32 -Os --specs=picolibc.specs -ffunction-sections -fdata-sections")
# Release builds keep -Os rather than -O3/-O2: the budgets are for -Os.
set(CMAKE_C_FLAGS_RELEASE_INIT "-DNDEBUG")
set(CMAKE_C_FLAGS_MINSIZEREL_INIT "-DNDEBUG")
# --specs=picolibc.specs is in the C flags, which CMake repeats when
# linking; given twice, gcc refuses the specs file.
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "--oslib=semihost --crt0=semihost -Wl,--gc-sections \
-Wl,--defsym=__flash=0x80000000 -Wl,--defsym=__flash_size=0x400000 \
-Wl,--defsym=__ram=0x80400000 -Wl,--defsym=__ram_size=0x200000")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
