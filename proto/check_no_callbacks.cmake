# Fail the build when the generated header holds a pb_callback_t: it
# means sparkplug_b.options stopped matching a field (e.g. after a
# rename or a mangle_names change) and that field would be skipped or
# mishandled at decode time. Usage: cmake -DHEADER=<file> -P <this>.
file(READ "${HEADER}" text)
string(FIND "${text}" "pb_callback_t" pos)
if(NOT pos EQUAL -1)
  message(FATAL_ERROR "${HEADER} contains pb_callback_t: "
          "sparkplug_b.options misses a string, bytes or repeated field")
endif()
string(FIND "${text}" "PB_FIELD_32BIT" pos)
if(NOT pos EQUAL -1)
  message(FATAL_ERROR "${HEADER} requires PB_FIELD_32BIT, which Debian's "
          "libprotobuf-nanopb.a was not built with")
endif()
