#!/bin/sh
# package.config: deploy/linecert.ini, the package's
# /etc/linecert/linecert.ini.
# - `linecert check-config -c` accepts it;
# - it is the embedded defaults written out: its effective settings
#   (--print-config) are those of a file that sets nothing but
#   data_dir = /var/lib/linecert and http_listen = 127.0.0.1:9464;
# - it writes out every setting --print-config knows, each in its
#   section, so a key added to linecert is added here too;
# - MQTT on 127.0.0.1:1883, data in /var/lib/linecert, HTTP on
#   127.0.0.1:9464.
#
# usage: config.sh SOURCE_DIR BIN_DIR
set -eu

src=$1
lc=$2/linecert
ini=$src/deploy/linecert.ini
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lc-pkg-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

rc=0
"$lc" check-config -c "$ini" >"$tmp/check.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  fail "check-config -c deploy/linecert.ini: exit $rc"
  sed 's/^/  | /' "$tmp/check.out"
fi

printf '[service]\ndata_dir = /var/lib/linecert\nhttp_listen = 127.0.0.1:9464\n' \
  >"$tmp/min.ini"
"$lc" check-config -c "$ini" --print-config >"$tmp/file.conf"
"$lc" check-config -c "$tmp/min.ini" --print-config >"$tmp/defaults.conf"
if ! diff -u "$tmp/defaults.conf" "$tmp/file.conf" >"$tmp/diff"; then
  fail "settings differ from the embedded defaults (- default, + file):"
  sed 's/^/  | /' "$tmp/diff"
fi
[ -s "$tmp/defaults.conf" ] || fail "--print-config printed nothing"

# section.key for every setting: printed, and written in the file.
keys() {
  awk '/^\[/ { sec = $0; sub(/^\[/, "", sec); sub(/\].*/, "", sec); next }
       /^[A-Za-z0-9_.]+ *=/ { k = $0; sub(/ *=.*/, "", k); print sec "." k }' "$1" |
    sort -u
}
keys "$tmp/defaults.conf" >"$tmp/known"
keys "$ini" >"$tmp/written"
missing=$(comm -23 "$tmp/known" "$tmp/written")
[ -z "$missing" ] || fail "settings not written out in deploy/linecert.ini:" $missing
[ "$(wc -l <"$tmp/known")" -gt 50 ] ||
  fail "only $(wc -l <"$tmp/known") settings printed; expected all of them"

for want in 'url = tcp://127.0.0.1:1883' 'data_dir = /var/lib/linecert' \
    'http_listen = 127.0.0.1:9464'; do
  grep -qxF "$want" "$tmp/file.conf" || fail "effective settings lack '$want'"
done

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "ok: $(wc -l <"$tmp/known") settings"
