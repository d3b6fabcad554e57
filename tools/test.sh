#!/bin/sh
# Quick start (b): install what is missing, build, run the whole test
# suite, then build again with AddressSanitizer + UBSan and run it again,
# then ThreadSanitizer on the threaded parts only (the tests labelled
# tsan, tests/CMakeLists.txt). Idempotent; build trees are build/,
# build-asan/ and build-tsan/.
set -eu
cd "$(dirname "$0")/.."

# The module layering and the banned functions first: seconds, no build.
echo "== check layering"
./tools/check-layering.sh

./tools/setup-debian.sh

jobs=$(nproc 2>/dev/null || echo 2)
# Two test slots per core: most tests wait (on Mosquitto, linecert, a CA
# emulator) far more than they compute; the CPU-bound ones run at most
# two at a time and the line tests three (tests/resources.json, and the
# schedule in tests/CMakeLists.txt).
test_jobs=$((2 * jobs))

configure() {
  dir=$1
  shift
  echo "== configure $dir: $*"
  # LC_TESTS=ON explicitly: demo.sh configures the same build/ without
  # tests, and a cached OFF must not turn this into a run of nothing.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLC_WERROR=ON \
    -DLC_TESTS=ON "$@" >/dev/null
}

run_suite() {
  configure "$@"
  echo "== build $dir"
  cmake --build "$dir" -j "$jobs"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 900 \
    -j "$test_jobs")
}

# ThreadSanitizer makes code 5-15 times slower: the whole suite would not
# fit CI's budget, so only the target lc_tsan is built and only the tests
# labelled tsan run (about a minute on two cores). Tests that preload
# libfaketime (label faketime) are never among them: TSan's runtime must
# be the first library loaded.
run_tsan() {
  configure build-tsan -DLC_TSAN=ON
  echo "== build $dir (target lc_tsan)"
  cmake --build "$dir" -j "$jobs" --target lc_tsan
  echo "== test $dir (label tsan)"
  (cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 900 \
    -j "$test_jobs" -L tsan -LE faketime)
}

run_suite build
# halt_on_error makes any sanitizer report fail the test that caused it.
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suite build-asan -DLC_ASAN=ON -DLC_UBSAN=ON
# A data race or lock-order inversion in our code fails the test that
# found it (exit code 66, the report in its output). No suppressions:
# none is needed, and one for our own code would hide a bug.
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_tsan
