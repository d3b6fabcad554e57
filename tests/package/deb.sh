#!/bin/sh
# package.deb: the Debian package `cpack -G DEB` makes from this build.
# - one linecert_<version>-1_<arch>.deb, its version the project's, its
#   library dependencies found by dpkg-shlibdeps;
# - its files: the binaries (linecert-verify when built, never the
#   simulator), the unit, the configuration as the one conffile, the
#   man page when docs/linecert.1 exists, the docs;
# - its maintainer scripts parse (sh -n) and postinst makes the user and
#   the 0700 directory;
# - lintian finds no error or warning but those the package overrides,
#   each with its reason (cmake/Packaging.cmake);
# - installed with dpkg into a throw-away root (an overlay of this
#   machine's, in a mount namespace of its own: nothing reaches the
#   real one), it creates the user linecert and /var/lib/linecert
#   linecert:linecert 0700; then linecert runs from it as the unit runs
#   it, as far as that goes without systemd (user linecert, no
#   capabilities, no new privileges, umask 0077, the root read-only but
#   the data directory, a private /tmp): it provisions a line of
#   devices, `linecert status` works as linecert and as root, SIGHUP
#   reloads, nothing in the data directory is readable by others or
#   owned by anyone else, and the service starts again after root used
#   the data directory offline. Remove keeps the data and the user,
#   purge the configuration. Without root or mount namespaces that part
#   is skipped, and says so.
#
# usage: deb.sh BUILD_DIR SOURCE_DIR VERSION
set -eu

build=$1
src=$2
version=$3
bin=$build/bin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lc-pkg-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
quote() { sed 's/^/  | /' "$@"; }

# --- build ------------------------------------------------------------
out=$tmp/out
rc=0
(cd "$build" && cpack -G DEB -B "$out") >"$tmp/cpack.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "FAIL: cpack -G DEB: exit $rc"
  quote "$tmp/cpack.out"
  exit 1
fi
arch=$(dpkg --print-architecture)
deb=$out/linecert_${version}-1_${arch}.deb
n=$(find "$out" -maxdepth 1 -name '*.deb' | wc -l)
if [ ! -f "$deb" ] || [ "$n" -ne 1 ]; then
  echo "FAIL: expected exactly $deb; cpack made:"
  find "$out" -maxdepth 1 -name '*.deb' | sed 's/^/  | /'
  exit 1
fi
echo "built $(basename "$deb")"

# --- control fields ---------------------------------------------------
[ "$(dpkg-deb -f "$deb" Package)" = linecert ] || fail "Package is not linecert"
[ "$(dpkg-deb -f "$deb" Version)" = "${version}-1" ] ||
  fail "Version $(dpkg-deb -f "$deb" Version), expected ${version}-1"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for d in adduser libc6 libssl3 libsqlite3-0 libcurl4 libpaho-mqtt1.3 \
    libmicrohttpd12 libjansson4 libinih1 libp11-3; do
  echo "$depends" | tr ',' '\n' | grep -q "^ *$d\( \|$\)" ||
    fail "Depends lacks $d"
done

# --- files ------------------------------------------------------------
dpkg-deb -c "$deb" >"$tmp/contents"
# "-rwxr-xr-x root/root 656992 2026-12-07 06:31 ./usr/bin/linecert"
has() { # MODE PATH
  awk -v m="$1" -v p="./$2" '$1 == m && $2 == "root/root" && $6 == p { f = 1 }
                             END { exit !f }' "$tmp/contents" ||
    fail "no $2 (mode $1, root/root) in the package"
}
hasnt() {
  awk -v p="./$1" '$6 == p { f = 1 } END { exit f }' "$tmp/contents" ||
    fail "$1 should not be in the package"
}
has -rwxr-xr-x usr/bin/linecert
has -rw-r--r-- lib/systemd/system/linecert.service
has -rw-r--r-- etc/linecert/linecert.ini
has -rw-r--r-- usr/share/doc/linecert/README.md
has -rw-r--r-- usr/share/doc/linecert/changelog.Debian.gz
has -rw-r--r-- usr/share/lintian/overrides/linecert
hasnt usr/bin/linecert-sim
if [ -x "$bin/linecert-verify" ]; then
  has -rwxr-xr-x usr/bin/linecert-verify
fi
if [ -f "$src/docs/linecert.1" ]; then
  has -rw-r--r-- usr/share/man/man1/linecert.1.gz
else
  echo "docs/linecert.1 does not exist yet: no man page to look for"
fi
# The data directory is the postinst's, not dpkg's: removing the package
# must not take it.
hasnt var/lib/linecert/

dpkg-deb -x "$deb" "$tmp/x"
cmp -s "$tmp/x/lib/systemd/system/linecert.service" \
  "$src/deploy/systemd/linecert.service" || fail "the unit is not deploy/'s"
cmp -s "$tmp/x/etc/linecert/linecert.ini" "$src/deploy/linecert.ini" ||
  fail "the configuration is not deploy/linecert.ini"
file "$tmp/x/usr/bin/linecert" | grep -q 'stripped' &&
  ! file "$tmp/x/usr/bin/linecert" | grep -q 'not stripped' ||
  fail "usr/bin/linecert is not stripped"

# --- maintainer scripts -----------------------------------------------
dpkg-deb -e "$deb" "$tmp/ctl"
[ "$(cat "$tmp/ctl/conffiles")" = /etc/linecert/linecert.ini ] ||
  { fail "conffiles is not exactly /etc/linecert/linecert.ini:"; quote "$tmp/ctl/conffiles"; }
for s in postinst prerm postrm; do
  if [ ! -x "$tmp/ctl/$s" ]; then
    fail "no executable $s"
    continue
  fi
  sh -n "$tmp/ctl/$s" 2>"$tmp/sh.err" || { fail "$s: sh -n"; quote "$tmp/sh.err"; }
  cmp -s "$tmp/ctl/$s" "$src/deploy/debian/$s" || fail "$s is not deploy/debian/$s"
done
grep -q 'adduser .*--system' "$tmp/ctl/postinst" ||
  fail "postinst does not create a system user"
grep -q 'install -d -o "$LC_USER" -g "$LC_USER" -m 0700 "$LC_HOME"' \
  "$tmp/ctl/postinst" || fail "postinst does not make the 0700 directory"

# --- lintian ----------------------------------------------------------
if ! command -v lintian >/dev/null; then
  fail "lintian missing (tools/setup-debian.sh installs it)"
else
  # Every finding shown (I: and the overridden O: with their reasons);
  # an E: or W: not overridden fails. (--fail-on counts overridden
  # tags too once --show-overrides shows them.)
  lintian --display-info --show-overrides "$deb" >"$tmp/lintian.out" 2>&1 || true
  echo "lintian:"
  grep -v 'running with root privileges' "$tmp/lintian.out" | quote
  ! grep -qE '^(E|W): ' "$tmp/lintian.out" ||
    fail "lintian reports errors or warnings"
  grep -qE '^[EWIONPX]: ' "$tmp/lintian.out" || fail "lintian said nothing at all"
fi

# --- installed, in a throw-away root ----------------------------------
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null ||
   ! unshare -m true 2>/dev/null; then
  echo "SKIP: the install check needs root and mount namespaces"
else
  rc=0
  unshare -m sh "$src/tests/package/overlay.sh" "$tmp/ov" "$deb" "$bin" "$src" \
    >"$tmp/install.out" 2>&1 || rc=$?
  quote "$tmp/install.out"
  if [ "$rc" -eq 77 ]; then
    echo "SKIP: the install check (no overlay mount of / here)"
  elif [ "$rc" -ne 0 ]; then
    fail "the installed package: exit $rc"
  fi
fi

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "ok"
