#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# linecert(1) renders without a warning (groff -man -ww, the checks
# `man -l` would show), and every command `linecert --help` lists is in
# the man page and in docs/cli.md: the docs cannot fall behind the CLI.
# So does linecert-verify(1), with every option `linecert-verify --help`
# shows.
# Usage: manpage.sh SOURCE_DIR LINECERT_BINARY LINECERT_VERIFY_BINARY
set -eu
src=$1
bin=$2
vbin=$3
page=$src/docs/linecert.1
vpage=$src/docs/linecert-verify.1
for p in "$page" "$vpage"; do
  out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$p" 2>&1) || {
    echo "manpage: groff failed on $p: $out"; exit 1; }
  if [ -n "$out" ]; then
    echo "manpage: groff warnings in $p:"; echo "$out"; exit 1
  fi
done
vopts=$("$vbin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
[ -n "$vopts" ] || { echo "manpage: no options in linecert-verify --help"; exit 1; }
for o in $vopts; do
  r=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
  if ! grep -q "^\.BI\? $r\b" "$vpage"; then
    echo "manpage: option $o is not in docs/linecert-verify.1"; exit 1
  fi
done
# The commands: the first word of each "  name ..." line of the list.
cmds=$("$bin" --help | sed -n '/^commands:/,/^$/p' |
       sed -n 's/^  \([a-z][a-z-]*\).*/\1/p')
[ -n "$cmds" ] || { echo "manpage: no commands in linecert --help"; exit 1; }
rc=0
for c in $cmds; do
  # In roff a '-' is written '\-'.
  r=$(printf '%s' "$c" | sed 's/-/\\\\-/g')
  if ! grep -q "^\.B linecert $r\b\|^\.B $r\b" "$page"; then
    echo "manpage: command $c is not in docs/linecert.1"; rc=1
  fi
  if ! grep -q "^## .*\`linecert $c\b" "$src/docs/cli.md"; then
    echo "manpage: command $c has no section in docs/cli.md"; rc=1
  fi
done
exit $rc
