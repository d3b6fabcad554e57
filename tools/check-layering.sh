#!/bin/sh
# Check the module layering of the source tree at ROOT (default: this
# checkout) against ROOT/tools/layering.rules:
#   - a file includes only its own folder's headers, the public header of
#     a folder its own may use, and nothing of a folder above it;
#   - a "pure" file or folder includes no I/O library (Paho, curl,
#     SQLite);
#   - no file calls a banned function (strcpy, sprintf, atoi, ...): the
#     name followed by "(" outside comments, strings and character
#     constants, as curl's checksrc finds them.
# Prints one line per violation, "file:line: rule", and exits 1 if there
# is any. POSIX sh and awk only.
#
# usage: tools/check-layering.sh [ROOT]
set -eu

root=${1:-$(dirname "$0")/..}
cd "$root"
rules=tools/layering.rules
if [ ! -r "$rules" ]; then
  echo "check-layering: no $rules under $root" >&2
  exit 2
fi

# The folders to check are the table's; a missing one (a module not
# written yet) is skipped.
folders=$(awk '$1 == "layer" { print $2 }' "$rules")
for f in $folders; do
  if [ -d "$f" ]; then
    find "$f" -type f \( -name '*.c' -o -name '*.h' \) -print
  fi
done | LC_ALL=C sort | LC_ALL=C awk -v rules="$rules" -v sq="'" '
function fail(file, line, msg) {
  printf "%s:%d: %s\n", file, line, msg
  bad++
}

# The line with comments removed (kept: strings, for #include "...")
# into nc, and with string and character contents blanked as well into
# code. A block comment may span lines (incomment); a string may not.
function strip(s,    i, n, c, d, q) {
  nc = ""
  code = ""
  n = length(s)
  i = 1
  while(i <= n) {
    c = substr(s, i, 1)
    d = substr(s, i, 2)
    if(incomment) {
      if(d == "*/") {
        incomment = 0
        i += 2
      } else
        i++
      continue
    }
    if(d == "/*") {
      incomment = 1
      nc = nc " "
      code = code " "
      i += 2
      continue
    }
    if(d == "//")
      break
    if(c == "\"" || c == sq) {
      q = c
      nc = nc c
      code = code c
      i++
      while(i <= n) {
        c = substr(s, i, 1)
        if(c == "\\") {
          nc = nc substr(s, i, 2)
          code = code "  "
          i += 2
          continue
        }
        nc = nc c
        if(c == q) {
          code = code c
          i++
          break
        }
        code = code " "
        i++
      }
      continue
    }
    nc = nc c
    code = code c
    i++
  }
}

function check_include(file, lnum, own, name, quoted,    p, top, rest,
                       shown) {
  shown = quoted ? "\"" name "\"" : "<" name ">"
  for(p in io)
    if(pure_of(file) && index(name, p) == 1)
      fail(file, lnum, "include " shown ": " io[p] " in " pure_of(file) \
           " (no I/O library there)")
  top = name
  sub(/\/.*/, "", top)
  if(top == name) {
    # "x.h" without its folder escapes the rule: the tree names every
    # header by its folder.
    if(quoted)
      fail(file, lnum, "include " shown ": name the header with its folder")
    return
  }
  if(!(top in layer) && !quoted)
    return                      # <openssl/evp.h> and the like
  if(top == own)
    return
  if(!((own, "*") in uses) && !((own, top) in uses)) {
    fail(file, lnum, "include " shown ": " own "/ may not use " top \
         "/ (layering)")
    return
  }
  if((own, "*") in uses)
    return                      # tools, bench: on top, anything goes
  rest = substr(name, length(top) + 2)
  if(pub[top] != "*" && index("," pub[top] ",", "," rest ",") == 0)
    fail(file, lnum, "include " shown ": not the public header of " top \
         "/ (" pub[top] ")")
}

# The pure rule that covers file ("" if none).
function pure_of(file,    p) {
  for(p in pure) {
    if(p ~ /\/$/ && index(file, p) == 1)
      return p
    if(p == file)
      return p
  }
  return ""
}

function check_banned(file, lnum, s,    i, f, t) {
  for(i = 1; i <= nbanned; i++) {
    f = banned[i]
    t = s
    while(match(t, "(^|[^A-Za-z0-9_])" f "[ \t]*\\(")) {
      fail(file, lnum, f "() is banned")
      t = substr(t, RSTART + RLENGTH)
    }
  }
}

BEGIN {
  while((getline l < rules) > 0) {
    nf = split(l, w, /[ \t]+/)
    if(w[1] == "")
      for(i = 1; i < nf; i++)
        w[i] = w[i + 1]
    if(w[1] == "layer") {
      layer[w[2]] = 1
      pub[w[2]] = w[3]
      for(i = 4; i <= nf; i++)
        if(w[i] != "-" && w[i] != "")
          uses[w[2], w[i]] = 1
    } else if(w[1] == "pure")
      pure[w[2]] = 1
    else if(w[1] == "io") {
      for(i = 3; i <= nf; i++)
        if(w[i] != "")
          io[w[i]] = w[2]
    } else if(w[1] == "banned") {
      for(i = 2; i <= nf; i++)
        if(w[i] != "")
          banned[++nbanned] = w[i]
    }
  }
  close(rules)
  bad = 0
}

# One file name per input line.
{
  file = $0
  own = file
  sub(/\/.*/, "", own)
  incomment = 0
  lnum = 0
  while((getline s < file) > 0) {
    lnum++
    if(!incomment && s !~ /\/[*\/]|"/ && index(s, sq) == 0) {
      nc = s
      code = s
    } else
      strip(s)
    if(nc ~ /^[ \t]*#[ \t]*include[ \t]*["<]/) {
      name = nc
      sub(/^[ \t]*#[ \t]*include[ \t]*/, "", name)
      quoted = substr(name, 1, 1) == "\""
      name = substr(name, 2)
      sub(/[">].*/, "", name)
      check_include(file, lnum, own, name, quoted)
      continue
    }
    check_banned(file, lnum, code)
  }
  close(file)
}

END {
  if(bad) {
    printf "check-layering: %d violation(s); rules in %s\n", bad, rules \
      >"/dev/stderr"
    exit 1
  }
}
'
