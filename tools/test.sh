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
# emulator) far more than they compute; the CPU-bound ones and the line
# tests run at most two at a time (tests/CMakeLists.txt, schedule).
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

# Each pass's build runs at the lowest CPU priority while the pass
# before it tests (build_behind): those tests mostly wait, and their idle
# cores compile the next build tree instead of CI's clock (the ASan build
# alone is about 100 s on two cores). At nice 19 the compiler gets a core
# when no test wants one. Its output goes to a log in the build tree,
# shown when the build is needed (build_join); should the script stop
# before then (a test failed), the build is stopped with it.
build_behind() {
  dir=$1
  shift
  echo "== build $dir behind the tests (nice 19, log $dir/build.log)"
  # setsid: a process group of its own, so the trap stops make and the
  # compilers too, not only cmake.
  setsid -w nice -n 19 cmake --build "$dir" -j "$jobs" "$@" \
    >"$dir/build.log" 2>&1 &
  behind_pid=$!
  behind_dir=$dir
  trap 'kill -- "-$behind_pid" 2>/dev/null || true' EXIT
}

# build_join: wait for the build started by build_behind, show its log,
# and stop here if it failed (set -e does not see a background job).
build_join() {
  rc=0
  wait "$behind_pid" || rc=$?
  trap - EXIT
  echo "== build $behind_dir (done behind the tests)"
  cat "$behind_dir/build.log"
  if [ "$rc" -ne 0 ]; then
    echo "== build $behind_dir failed (exit $rc)"
    exit "$rc"
  fi
}

run_tests() {
  dir=$1
  shift
  echo "== test $dir $*"
  (cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 900 \
    -j "$test_jobs" "$@")
}

# ThreadSanitizer makes code 5-15 times slower: the whole suite would not
# fit CI's budget, so only the target lc_tsan is built and only the tests
# labelled tsan run (about a minute on two cores). Tests that preload
# libfaketime (label faketime) are never among them: TSan's runtime must
# be the first library loaded.
configure build
echo "== build build"
cmake --build build -j "$jobs"
configure build-asan -DLC_ASAN=ON -DLC_UBSAN=ON
build_behind build-asan
run_tests build
build_join
configure build-tsan -DLC_TSAN=ON
build_behind build-tsan --target lc_tsan
# halt_on_error makes any sanitizer report fail the test that caused it.
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_tests build-asan
build_join
# A data race or lock-order inversion in our code fails the test that
# found it (exit code 66, the report in its output). No suppressions:
# none is needed, and one for our own code would hide a bug.
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  run_tests build-tsan -L tsan -LE faketime
