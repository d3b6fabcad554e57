#!/bin/sh
# Installs what linecert needs to build, run and test on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt's
# lists are refreshed only when something is missing; the npm packages of
# the interop test (tests/interop) and of the browser test (tests/browser)
# are installed once into their node_modules, from their lockfiles.
# golang-go and golang-golang-x-mod-dev build tests/interop/go-note (Go's
# own C2SP note verifier, offline, in GOPATH mode); libp11-kit-dev gives
# the PKCS#11 header of the Ed25519 token signer.
set -eu

# clang and libclang-rt-14-dev (libFuzzer's runtime) build the fuzz
# targets: -DCMAKE_C_COMPILER=clang -DLC_FUZZ=ON (docs/fuzzing.md).
PKGS="build-essential cmake pkg-config git
libpaho-mqtt-dev nanopb libnanopb-dev python3-protobuf
libssl-dev openssl libsqlite3-dev sqlite3 libcurl4-openssl-dev
libcunit1-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev libinih-dev libunistring-dev
mosquitto mosquitto-clients prometheus
libp11-dev libp11-kit-dev softhsm2 libfaketime faketime nginx-light
python3 python3-cryptography groff-base chromium
systemd lintian file curl procps
golang-go golang-golang-x-mod-dev
clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done

# systemd for systemd-analyze (verify and security --offline on the unit;
# no systemd needs to run), lintian, file, curl and procps for the
# package test (tests/package/): cpack's DEB generator needs only
# dpkg-dev, which build-essential brings.

# Node.js and npm run Eclipse Tahu's JavaScript edge node client for the
# interop test (tests/interop/). Checked by command rather than by package:
# a machine may already have Node.js from another source (NodeSource's
# nodejs package, which bundles npm and conflicts with Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing="$missing nodejs npm"
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ -z "$missing" ]; then
  echo "setup: all packages present"
else
  echo "setup: installing$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  # shellcheck disable=SC2086
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
  # The Debian mosquitto package starts a system broker on 1883; linecert
  # starts its own on a free port and does not need it.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    $SUDO systemctl stop mosquitto || true
  fi
  # The prometheus package: promtool parses /metrics and checks the rules
  # of deploy/prometheus; integration.prometheus runs its own server on a
  # free loopback port. The system service is not needed.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl stop prometheus || true
  fi
fi

# Eclipse Tahu's npm packages (sparkplug-client, sparkplug-payload), pinned
# by tests/interop/package.json and package-lock.json, into
# tests/interop/node_modules (ignored by git). Skipped when already there.
interop="$(cd "$(dirname "$0")/.." && pwd)/tests/interop"
if [ -f "$interop/node_modules/sparkplug-client/package.json" ] &&
   [ -f "$interop/node_modules/sparkplug-payload/package.json" ]; then
  echo "setup: Tahu npm packages present"
else
  echo "setup: installing Tahu npm packages into tests/interop/node_modules"
  (cd "$interop" && npm ci --ignore-scripts --no-audit --no-fund)
fi

# playwright-core (pinned by tests/browser/package.json and its lockfile)
# drives Debian's chromium for integration.live_page; it downloads no
# browser of its own (--ignore-scripts, and executablePath is
# /usr/bin/chromium).
browser="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ -f "$browser/node_modules/playwright-core/package.json" ]; then
  echo "setup: playwright-core present"
else
  echo "setup: installing playwright-core into tests/browser/node_modules"
  (cd "$browser" && npm ci --ignore-scripts --no-audit --no-fund)
fi
