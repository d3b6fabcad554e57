#!/bin/sh
# lint.layering_planted: tools/check-layering.sh must pass on a clean
# copy of the tree's production folders, and fail, naming the file, the
# line and the rule, on each kind of violation planted in that copy, one
# at a time; comments and strings that only mention a banned function,
# and its safe cousins (snprintf, strtok_r, lc_atoi ...), must not trip
# it.
#
# usage: layering_planted.sh SOURCE_DIR
set -eu

src=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lc-it-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0

# The folders the rule table checks, and the table and script themselves.
for f in $(awk '$1 == "layer" { print $2 }' "$src/tools/layering.rules"); do
  if [ -d "$src/$f" ]; then
    cp -R "$src/$f" "$tmp/$f"
  fi
done
mkdir -p "$tmp/tools"
cp "$src/tools/layering.rules" "$src/tools/check-layering.sh" "$tmp/tools/"

check() {
  rc=0
  sh "$tmp/tools/check-layering.sh" "$tmp" >"$tmp/out" 2>"$tmp/err" || rc=$?
}

say_fail() {
  echo "FAIL: $*"
  sed 's/^/  | /' "$tmp/out" "$tmp/err"
  fails=$((fails + 1))
}

check
if [ "$rc" -ne 0 ] || [ -s "$tmp/out" ]; then
  say_fail "clean copy: exit $rc, expected 0 and no output"
fi

# plant FILE LINE EXPECTED: append LINE to FILE; the check must exit 1
# and print exactly "FILE:<that line's number>: EXPECTED". FILE is put
# back afterwards.
plant() {
  file=$1
  cp "$tmp/$file" "$tmp/saved"
  printf '%s\n' "$2" >>"$tmp/$file"
  n=$(wc -l <"$tmp/$file" | tr -d ' ')
  want="$file:$n: $3"
  check
  if [ "$rc" -ne 1 ]; then
    say_fail "$file: planted '$2': exit $rc, expected 1"
  elif [ "$(cat "$tmp/out")" != "$want" ]; then
    say_fail "$file: planted '$2': expected exactly '$want'"
  else
    echo "ok: $want"
  fi
  mv "$tmp/saved" "$tmp/$file"
}

plant statemachine/sm.c '#include "broker/brk.h"' \
  'include "broker/brk.h": statemachine/ may not use broker/ (layering)'
plant audit/chain.c '#include "ca_adapters/ca.h"' \
  'include "ca_adapters/ca.h": audit/ may not use ca_adapters/ (layering)'
plant broker/records.c '#include "audit/aud_int.h"' \
  'include "audit/aud_int.h": not the public header of audit/ (aud.h)'
plant sparkplug/spb_topic.c '#include <MQTTAsync.h>' \
  'include <MQTTAsync.h>: Paho in sparkplug/ (no I/O library there)'
plant audit/record.c '#include <sqlite3.h>' \
  'include <sqlite3.h>: SQLite in audit/ (no I/O library there)'
plant statemachine/sm.c '#include <curl/curl.h>' \
  'include <curl/curl.h>: curl in statemachine/sm.c (no I/O library there)'
plant common/lc_util.c '#include "lc_util.h"' \
  'include "lc_util.h": name the header with its folder'
plant broker/config.c \
  'static void lc_planted(char *d) { strcpy(d, "x"); }' \
  'strcpy() is banned'
plant tools/sim/edge.c 'static int lc_planted(void) { return atoi ("1"); }' \
  'atoi() is banned'

# Mentions that are no calls, and the safe functions: no violation.
cat >>"$tmp/broker/config.c" <<'PLANT'
/* strcpy(d, s) and sprintf(b, f) in a comment
   spanning lines: gets(b) */
static const char *lc_planted_s = "strcat(a, b) \" atoi(x)";
static const char lc_planted_c = '"';
static void lc_planted2(char *b, char *s, char **p)
{
  snprintf(b, 4, "%s", "x"); (void)strtok_r(s, ",", p); // strtok(s)
  (void)lc_planted_s; (void)lc_planted_c;
}
PLANT
check
if [ "$rc" -ne 0 ] || [ -s "$tmp/out" ]; then
  say_fail "comments, strings, snprintf, strtok_r: exit $rc, expected 0"
else
  echo "ok: comments, strings, snprintf and strtok_r pass"
fi

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
