#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# linecert(1) renders without a warning (groff -man -ww, the checks
# `man -l` would show), and every command `linecert --help` lists is in
# the man page and in docs/cli.md: the docs cannot fall behind the CLI.
# Usage: manpage.sh SOURCE_DIR LINECERT_BINARY
set -eu
src=$1
bin=$2
page=$src/docs/linecert.1
out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1) || {
  echo "manpage: groff failed: $out"; exit 1; }
if [ -n "$out" ]; then
  echo "manpage: groff warnings:"; echo "$out"; exit 1
fi
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
