#!/bin/sh
# package.systemd: deploy/systemd/linecert.service as shipped.
# - `systemd-analyze verify` finds nothing to say about it, in a scratch
#   root holding the unit, the built linecert as /usr/bin/linecert, and
#   systemd's own units (verify loads the unit's dependencies);
# - `systemd-analyze security --offline=true` rates its exposure at most
#   MAX (2.0), read from its "Overall exposure level" line;
# - the same reading of a copy with the sandboxing taken out is over
#   MAX, so the check can tell a hardened unit from a bare one;
# - serve exits 2 on an invalid file (RestartPreventExitStatus=2).
# None of it needs systemd running as PID 1.
#
# usage: systemd.sh SOURCE_DIR BIN_DIR
set -eu

src=$1
bin=$2
MAX=2.0
unit=$src/deploy/systemd/linecert.service
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lc-pkg-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

command -v systemd-analyze >/dev/null ||
  { echo "FAIL: systemd-analyze missing (tools/setup-debian.sh installs systemd)"; exit 1; }

# exposure UNIT: the figure of "→ Overall exposure level for X: 1.4 OK".
exposure() {
  systemd-analyze security --offline=true "$1" >"$tmp/sec.out" 2>&1 || true
  sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9]*\.[0-9]\).*/\1/p' \
    "$tmp/sec.out"
}
# le A B: A <= B, for one-decimal figures.
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# verify, in a root of its own.
root=$tmp/root
mkdir -p "$root/usr/bin" "$root/bin" "$root/lib/systemd" "$root/etc/linecert"
cp -R /lib/systemd/system "$root/lib/systemd/"
cp "$unit" "$root/lib/systemd/system/linecert.service"
cp "$bin/linecert" "$root/usr/bin/linecert"
cp /bin/kill "$root/bin/kill"
rc=0
systemd-analyze verify --man=no --root="$root" linecert.service \
  >"$tmp/verify.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || [ -s "$tmp/verify.out" ]; then
  fail "systemd-analyze verify: exit $rc, expected 0 and no output"
  sed 's/^/  | /' "$tmp/verify.out"
fi

e=$(exposure "$unit")
echo "exposure of linecert.service: ${e:-?} (at most $MAX)"
if [ -z "$e" ]; then
  fail "no 'Overall exposure level' line"
  sed 's/^/  | /' "$tmp/sec.out"
elif ! le "$e" "$MAX"; then
  fail "exposure $e is over $MAX"
  grep '✗' "$tmp/sec.out" | sed 's/^/  | /'
fi

# The bare unit: [Service] with its command lines and user only.
sed -n '1,/^\[Service\]/p' "$unit" >"$tmp/linecert.service"
grep -E '^(Type|User|Group|ExecStart|ExecReload)=' "$unit" \
  >>"$tmp/linecert.service"
bare=$(exposure "$tmp/linecert.service")
echo "exposure without the sandboxing: ${bare:-?}"
if [ -z "$bare" ] || le "$bare" "$MAX"; then
  fail "the bare unit reads '${bare:-nothing}', expected over $MAX"
fi

# What the service needs, as the README says it runs.
for want in 'ExecStart=/usr/bin/linecert serve -c /etc/linecert/linecert.ini' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'User=linecert' \
    'StateDirectory=linecert' 'StateDirectoryMode=0700' 'UMask=0077' \
    'Restart=on-failure' 'RestartPreventExitStatus=2'; do
  grep -qxF "$want" "$unit" || fail "unit lacks '$want'"
done

# RestartPreventExitStatus=2: serve exits 2 on an invalid file, before
# it touches a data directory (so systemd does not retry it).
printf '[mqtt]\nkeepalive_s = soon\n[service]\ndata_dir = %s/data\n' "$tmp" \
  >"$tmp/bad.ini"
rc=0
"$bin/linecert" serve -c "$tmp/bad.ini" >"$tmp/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { fail "serve with an invalid file: exit $rc, expected 2"; sed 's/^/  | /' "$tmp/bad.out"; }
grep -q 'bad.ini:2: mqtt.keepalive_s: ' "$tmp/bad.out" ||
  { fail "serve with an invalid file does not name FILE:LINE: key"; sed 's/^/  | /' "$tmp/bad.out"; }
[ ! -e "$tmp/data" ] || fail "serve with an invalid file made its data directory"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "ok"
