#!/bin/sh
# bench/line.sh: a whole line on this machine, measured (issue 14).
#
#   bench/line.sh [--edges E] [--devices N] [--check-every K] [--keep]
#                 [--rate R] [--prefill P] [--curve "P1 P2 ..."]
#                 [--perf FILE]
#
# Mosquitto on a free loopback port, `linecert serve` with the local CA
# and a fresh SQLite store (synchronous=FULL, the default), and
# linecert-sim in bench mode: CSRs made once and cached
# (build-bench/csr-cache/), every device's certificates checked for its
# own key (fingerprints), every K-th in full (default 50), so the
# simulator leaves the cores to what is measured. E edge nodes of N
# devices (default 10 x 500).
#
# CPU is read from /proc for linecert and Mosquitto from the moment the
# simulator connects to the moment linecert counts every device
# PROVISIONED; the simulator reports its own (run_cpu_s). The floor is
# bench_floor on one core right after the line: two CSR verifications and
# two certificate signatures per device. Latencies are the simulator's,
# per device from its first DBIRTH: to the ISSUED DCMD's arrival (dcmd),
# and to its Installed acknowledgement (provisioned: linecert records
# PROVISIONED when that arrives).
#
# --rate R: the simulator paces the devices' first DBIRTHs at R per
# second across the line (linecert-sim --rate, evenly spaced, edges
# taking turns); the latencies are then those of a line running at R,
# not of a flood. Without it every device births as fast as the
# window lets it, and p99_dcmd_ms measures the queue that builds.
# offered_rate is R (null unpaced); achieved_birth_rate is what the
# simulator sent (first DBIRTHs per second, first to last), and
# birth_lag_p99_ms how late it sent them against the schedule. When
# the simulator did not keep the rate (achieved below 98% of R, or
# birth lag p99 over 10 ms: the latencies would leave out time spent
# waiting to birth) the run prints a WARNING and rate_kept is false.
#
# Prints progress, a table, and as its last line one JSON object:
#   devices devices_per_s p50_dcmd_ms p99_dcmd_ms p99_provisioned_ms
#   linecert_cpu_us_per_device mosquitto_cpu_us_per_device
#   sim_cpu_us_per_device floor_us_per_device ratio rss_mb
#   stored_devices (P + the line's) linecert_writes_per_device
#   linecert_write_kb_per_device (write syscalls and bytes, /proc/PID/io:
#   the store's writes, exact where CPU time is noisy)
#   linecert_commits_per_device (store transactions, /metrics)
#   offered_rate achieved_birth_rate birth_lag_p99_ms rate_kept
#
# --prefill P: the store holds P PROVISIONED devices before the line
# (bench_prefill, through the store's own API, after linecert's first
# start made the data directory; linecert is then restarted on it).
# --curve "P1 P2 ...": one such run per P (each on a fresh store), then
# the curve: CPU per device and peak RSS against the devices stored.
# --perf FILE: perf record (DWARF call graphs) on linecert during the
# measured line, into FILE (perf report -i FILE).
# A benchmark prints figures; it asserts nothing.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

EDGES=10
DEVICES=500
CHECK_EVERY=50
KEEP=0
PERF=""
PREFILL=0
CURVE=""
RATE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --edges) EDGES=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --check-every) CHECK_EVERY=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --perf) PERF=$2; shift 2 ;;
    --prefill) PREFILL=$2; shift 2 ;;
    --curve) CURVE=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    -h|--help) sed -n '2,54p' "$0"; exit 0 ;;
    *) echo "bench/line.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
total=$((EDGES * DEVICES))
if [ -n "$RATE" ]; then
  case "$RATE" in
    *[!0-9]*|0*)
      echo "bench/line.sh: --rate wants a positive whole number" >&2; exit 2 ;;
  esac
fi
rate_opt=""
[ -n "$RATE" ] && rate_opt="--rate $RATE"

# The curve: this script once per point, then one table and JSON line.
if [ -n "$CURVE" ]; then
  out=$(mktemp /tmp/lc-curve-XXXXXX)
  for p in $CURVE; do
    echo "== curve point: $p devices prefilled" >&2
    "$0" --edges "$EDGES" --devices "$DEVICES" --check-every "$CHECK_EVERY" \
      $rate_opt --prefill "$p" | tail -1 >>"$out"
  done
  python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("%14s  %10s  %8s  %7s  %10s" % ("stored_devices", "cpu_us/dev",
      "ratio", "rss_mb", "devices/s"))
for r in rows:
  print("%14d  %10.1f  %8.2f  %7.1f  %10.1f" % (r["stored_devices"],
        r["linecert_cpu_us_per_device"], r["ratio"], r["rss_mb"],
        r["devices_per_s"]))
print(json.dumps({"curve": [{k: r[k] for k in ("stored_devices",
      "linecert_cpu_us_per_device", "ratio", "rss_mb", "devices_per_s",
      "p99_dcmd_ms")} for r in rows]}))
PY
  rm -f "$out"
  exit 0
fi

# An optimised build of its own, beside the test builds.
bdir="$top/build-bench"
echo "== build ($bdir, Release)" >&2
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DLC_TESTS=OFF >/dev/null
cmake --build "$bdir" -j "$(nproc 2>/dev/null || echo 2)" \
  --target linecert linecert-sim bench_floor bench_prefill >/dev/null

work=$(mktemp -d /tmp/lc-bench-XXXXXX)
cache_dir="$bdir/csr-cache"
mkdir -p "$cache_dir"
cache="$cache_dir/bench-${EDGES}x${DEVICES}.jsonl"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
http_port=$(free_port)
cat > "$work/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
set_tcp_nodelay true
CONF

mosq_pid=""; lc_pid=""; perf_pid=""
cleanup() {
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null || true
  [ -n "$lc_pid" ] && kill "$lc_pid" 2>/dev/null && wait "$lc_pid" 2>/dev/null || true
  [ -n "$mosq_pid" ] && kill "$mosq_pid" 2>/dev/null && wait "$mosq_pid" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# utime + stime of a process, in clock ticks (/proc/PID/stat 14, 15; the
# command name in parentheses may hold spaces, so cut after it).
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
metric() {
  python3 - "$http_port" "$1" <<'PY'
import sys, urllib.request
port, name = sys.argv[1], sys.argv[2]
try:
    body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port,
                                  timeout=5).read().decode()
except Exception:
    print(-1); sys.exit(0)
for line in body.splitlines():
    if line.startswith(name + " "):
        print(int(float(line.split()[-1]))); break
else:
    print(0)
PY
}

mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mosq_pid=$!
start_linecert() {
  "$bdir/bin/linecert" serve --mqtt-url "tcp://127.0.0.1:$port" \
    --data-dir "$work/data" --http "127.0.0.1:$http_port" \
    2>"$work/linecert.log" &
  lc_pid=$!
  i=0
  until grep -q 'state=online' "$work/linecert.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 3000 ] || ! kill -0 "$lc_pid" 2>/dev/null; then
      echo "linecert did not come online; see $work/linecert.log" >&2
      KEEP=1; exit 1
    fi
    sleep 0.1
  done
}
start_linecert
if [ "$PREFILL" -gt 0 ]; then
  # Its first start made the data directory (CA, audit key, store):
  # fill the store while it is stopped, then start it again on it.
  # A prefilled data directory is kept in build-bench/prefill/P and
  # copied for the next run with the same P (minutes saved at 1,000,000;
  # its store is about 6.6 kB per device).
  kill "$lc_pid"; wait "$lc_pid" || true; lc_pid=""
  pcache="$bdir/prefill/$PREFILL"
  if [ -s "$pcache/linecert.db" ]; then
    echo "== prefill: $PREFILL PROVISIONED devices, from $pcache" >&2
    rm -rf "$work/data"
    cp -a "$pcache" "$work/data"
  else
    echo "== prefill: $PREFILL PROVISIONED devices" >&2
    "$bdir/bin/bench_prefill" "$work/data/linecert.db" "$PREFILL" >&2
    mkdir -p "$bdir/prefill"
    rm -rf "$pcache.tmp"
    cp -a "$work/data" "$pcache.tmp" && mv "$pcache.tmp" "$pcache"
  fi
  mv "$work/linecert.log" "$work/linecert.first.log"
  start_linecert
fi

# The cache first (not measured): a run that makes it only makes keys.
if [ ! -s "$cache" ]; then
  echo "== making $total devices' CSRs once ($cache)" >&2
fi

echo "== line: $total devices ($EDGES edge nodes x $DEVICES), full check every $CHECK_EVERY${RATE:+, paced at $RATE/s}" >&2
tck=$(getconf CLK_TCK)
if [ -n "$PERF" ]; then
  perf record -F 999 --call-graph dwarf,16384 -p "$lc_pid" -o "$PERF" >"$work/perf.log" 2>&1 &
  perf_pid=$!
fi
# Write syscalls and bytes (/proc/PID/io): the store's share of the
# work, exact where CPU time is noisy on a shared machine.
io_field() {
  awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/io"
}
lc0=$(cpu_ticks "$lc_pid"); mq0=$(cpu_ticks "$mosq_pid")
w0=$(io_field "$lc_pid" syscw); b0=$(io_field "$lc_pid" wchar)
c0=$(metric linecert_commits_total)
"$bdir/bin/linecert-sim" --mqtt-url "tcp://127.0.0.1:$port" \
  --trust "$work/data/ca/root.pem" --edges "$EDGES" --devices "$DEVICES" \
  --prefix BENCH --csr-cache "$cache" --check-every "$CHECK_EVERY" \
  --timeout 3600 --progress $rate_opt --json "$work/sim.json" >"$work/sim.out"
# Until linecert has committed every PROVISIONED (its count on /metrics
# is refreshed once a second).
i=0
while [ "$(metric 'linecert_devices{state="PROVISIONED"}')" -lt \
        $((total + PREFILL)) ]; do
  i=$((i + 1))
  if [ $i -gt 600 ]; then
    echo "linecert never counted $total PROVISIONED" >&2; KEEP=1; exit 1
  fi
  sleep 0.1
done
lc1=$(cpu_ticks "$lc_pid"); mq1=$(cpu_ticks "$mosq_pid")
w1=$(io_field "$lc_pid" syscw); b1=$(io_field "$lc_pid" wchar)
c1=$(metric linecert_commits_total)
if [ -n "$perf_pid" ]; then
  kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=""
fi
rss_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$lc_pid/status")
kill "$lc_pid"; wait "$lc_pid" || true; lc_pid=""

echo "== floor: bench_floor on one core" >&2
if command -v taskset >/dev/null 2>&1; then
  taskset -c 0 "$bdir/bin/bench_floor" 1000 >"$work/floor.out"
else
  "$bdir/bin/bench_floor" 1000 >"$work/floor.out"
fi

python3 - "$work/sim.json" "$work/floor.out" "$total" "$tck" \
  "$lc0" "$lc1" "$mq0" "$mq1" "$rss_kb" "$PREFILL" \
  $((w1 - w0)) $((b1 - b0)) $((c1 - c0)) "${RATE:-0}" <<'PY'
import json, sys
(sim_path, floor_path, total, tck, lc0, lc1, mq0, mq1, rss_kb,
 prefill, writes, wbytes, commits, rate) = sys.argv[1:]
rate = int(rate)
total, tck = int(total), int(tck)
sim = json.load(open(sim_path))
floor = json.loads(open(floor_path).read().strip().splitlines()[-1])
lat = sim.get("latency_ms", {})
n = sim["provisioned"] or 1
us = lambda ticks: (int(ticks) * 1e6 / tck) / n
lc_us = us(int(lc1) - int(lc0))
r = {
  "devices": sim["provisioned"],
  "devices_per_s": round(sim["devices_per_s"], 1),
  "p50_dcmd_ms": round(lat.get("dcmd_p50", -1), 2),
  "p99_dcmd_ms": round(lat.get("dcmd_p99", -1), 2),
  "p99_provisioned_ms": round(lat.get("installed_p99", -1), 2),
  "linecert_cpu_us_per_device": round(lc_us, 1),
  "mosquitto_cpu_us_per_device": round(us(int(mq1) - int(mq0)), 1),
  "sim_cpu_us_per_device": round(sim["run_cpu_s"] * 1e6 / n, 1),
  "floor_us_per_device": floor["floor_us_per_device"],
  "ratio": round(lc_us / floor["floor_us_per_device"], 2),
  "rss_mb": round(int(rss_kb) / 1024.0, 1),
  "stored_devices": int(prefill) + sim["provisioned"],
  "linecert_writes_per_device": round(int(writes) / n, 1),
  "linecert_write_kb_per_device": round(int(wbytes) / 1024.0 / n, 1),
  "linecert_commits_per_device": round(int(commits) / n, 2),
  "offered_rate": rate or None,
  "achieved_birth_rate": round(sim.get("birth_rate", -1), 1),
  "birth_lag_p99_ms": round(sim["birth_lag_p99_ms"], 2)
                      if "birth_lag_p99_ms" in sim else None,
  "rate_kept": None,
}
# Paced: did the simulator keep the rate it was asked for? Births sent
# late are time the DCMD latencies do not see.
if rate:
  slow = r["achieved_birth_rate"] < 0.98 * rate
  late = (r["birth_lag_p99_ms"] or 0) > 10
  r["rate_kept"] = not (slow or late)
  if slow:
    print("WARNING: the simulator births at %.1f/s, below the offered "
          "%d/s" % (r["achieved_birth_rate"], rate), file=sys.stderr)
  if late:
    print("WARNING: birth lag p99 %.2f ms: the simulator sent births late "
          "(latencies leave that wait out)" % r["birth_lag_p99_ms"],
          file=sys.stderr)
if sim["failed"] or sim["provisioned"] != total:
  print("WARNING: %d of %d provisioned, %d failed" %
        (sim["provisioned"], total, sim["failed"]), file=sys.stderr)
w = max(len(k) for k in r)
print("%-*s  %s" % (w, "figure", "value"))
for k, v in r.items():
  print("%-*s  %s" % (w, k, v))
print(json.dumps(r))
PY
