# CMake toolchain file used only to switch off libsonic in espeak-rs-sys's
# vendored espeak-ng. espeak-ng's cmake/deps.cmake git-clones sonic with
# FetchContent when find_library(SONIC_LIB)/find_path(SONIC_INC) fail, which
# breaks offline builds. Pre-seeding both cache entries skips the find and the
# FetchContent branch; USE_LIBSONIC=OFF keeps the dummy values from ever being
# compiled or linked. Sonic only changes speech rate, never phonemes.
set(SONIC_LIB "sonic-disabled" CACHE FILEPATH "libsonic disabled")
set(SONIC_INC "sonic-disabled" CACHE PATH "libsonic disabled")
set(USE_LIBSONIC OFF CACHE BOOL "Use libsonic" FORCE)
