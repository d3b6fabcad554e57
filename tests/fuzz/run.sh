#!/bin/sh
# Run each libFuzzer target for a set time, one after the other, in one
# process each (one core), at the lowest priority: the machine may be
# shared. New inputs go to OUT/<target>/corpus (the seeds in the repo are
# read, never written); a crash leaves OUT/<target>/crash-* and fails.
#
#   run.sh BIN_DIR SEED_DIR OUT_DIR SECONDS TARGET...
#
# FUZZ_SECONDS in the environment overrides SECONDS; FUZZ_TARGETS (a
# space-separated list) runs only those. Prints one line per target:
#   fuzz target=<t> seconds=<s> execs=<n> execs_per_s=<n> corpus=<n>
#        result=<ok|crash>
set -u
bin=$1 seeds=$2 out=$3 secs=${FUZZ_SECONDS:-$4}
shift 4
targets=${FUZZ_TARGETS:-$*}
failed=0
summary=""
for t in $targets; do
  dir=$out/$t
  mkdir -p "$dir/corpus"
  log=$dir/fuzz.log
  echo "fuzz: $t for ${secs}s (log $log)"
  nice -n 19 "$bin/fuzz_$t" -max_total_time="$secs" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$dir/" \
    "$dir/corpus" "$seeds/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  n=$(ls "$dir/corpus" | wc -l)
  if [ $rc -ne 0 ] || ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* \
      "$dir"/oom-* >/dev/null 2>&1; then
    result=crash
    failed=1
    grep -m1 -E "ERROR: |runtime error|SUMMARY" "$log"
  else
    result=ok
  fi
  line="fuzz target=$t seconds=$secs execs=${execs:-?} execs_per_s=${rate:-?} corpus=$n result=$result"
  echo "$line"
  summary="$summary$line
"
done
printf '\n%s' "$summary"
exit $failed
