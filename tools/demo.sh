#!/bin/sh
# Quick start (a): install what is missing, build, and provision a line
# of 1,000 devices on the embedded default: a Mosquitto on a free
# loopback port, `linecert serve` with the local CA and SQLite, and
# linecert-sim playing 10 edge nodes of 100 devices each.
# Idempotent: data accumulates in demo-data/ across runs (each run uses
# new serial numbers), and the audit log keeps verifying.
#   EDGES=10 DEVICES=100 ./tools/demo.sh     (the defaults)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

EDGES=${EDGES:-10}
DEVICES=${DEVICES:-100}

./tools/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLC_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"

demo="$top/demo-data"
data="$demo/linecert"
mkdir -p "$demo"
run=$(date +%s)
log="$demo/linecert-$run.log"

# Free loopback ports, chosen by the kernel: MQTT and the live page.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
http_port=$(free_port)
cat > "$demo/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
CONF

mosq_pid=""; lc_pid=""
cleanup() {
  [ -n "$lc_pid" ] && kill "$lc_pid" 2>/dev/null && wait "$lc_pid" 2>/dev/null || true
  [ -n "$mosq_pid" ] && kill "$mosq_pid" 2>/dev/null && wait "$mosq_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mosquitto -c "$demo/mosquitto.conf" >"$demo/mosquitto.log" 2>&1 &
mosq_pid=$!
./build/bin/linecert serve --mqtt-url "tcp://127.0.0.1:$port" \
  --data-dir "$data" --http "127.0.0.1:$http_port" 2>"$log" &
lc_pid=$!

# Ready when linecert's Sparkplug session is online.
i=0
until grep -q 'state=online' "$log" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 200 ] || ! kill -0 "$lc_pid" 2>/dev/null; then
    echo "linecert did not come online; see $log" >&2
    exit 1
  fi
  sleep 0.1
done

total=$((EDGES * DEVICES))
echo "== provisioning $total devices ($EDGES edge nodes x $DEVICES)"
echo "   live page while it runs: http://127.0.0.1:$http_port/ (metrics: /metrics)"
./build/bin/linecert-sim --mqtt-url "tcp://127.0.0.1:$port" \
  --trust "$data/ca/root.pem" --edges "$EDGES" --devices "$DEVICES" \
  --prefix "SN$run" --progress --json "$demo/sim-$run.json" \
  | tee "$demo/sim-$run.txt"

# The simulator stops at its last acknowledgement; give linecert a moment
# to commit the last PROVISIONED, then stop it cleanly.
i=0
while [ $i -lt 100 ]; do
  n=$(./build/bin/linecert devices --state PROVISIONED --data-dir "$data" | grep -c "/SN$run-" || true)
  [ "$n" -ge "$total" ] && break
  i=$((i + 1)); sleep 0.1
done
kill "$lc_pid"; wait "$lc_pid" || true; lc_pid=""
kill "$mosq_pid"; wait "$mosq_pid" 2>/dev/null || true; mosq_pid=""

echo
echo "== linecert status"
./build/bin/linecert status --data-dir "$data"
echo
./build/bin/linecert audit verify --data-dir "$data"
rate=$(sed -n 's/^devices_per_s[ :=]*//p' "$demo/sim-$run.txt" | head -n1)
echo
echo "== summary"
echo "devices provisioned this run: $n of $total"
echo "throughput:                   ${rate:-?} devices/s (linecert-sim, end to end)"
echo "data (SQLite store):          $data/linecert.db"
echo "local CA:                     $data/ca/ (root.pem, bootstrap-ca.pem, operational-ca.pem)"
echo "audit log:                    table 'audit' in $data/linecert.db"
echo "audit public key:             $data/audit/audit-pub.pem"
echo "logs:                         $log"
[ "$n" -ge "$total" ]
