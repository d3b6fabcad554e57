#!/bin/sh
# Installs what linecert needs to build, run and test on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt's
# lists are refreshed only when something is missing.
set -eu

PKGS="build-essential cmake pkg-config git
libpaho-mqtt-dev nanopb libnanopb-dev python3-protobuf
libssl-dev openssl libsqlite3-dev sqlite3 libcurl4-openssl-dev
libcunit1-dev libjansson-dev libmicrohttpd-dev libinih-dev
mosquitto mosquitto-clients
libp11-dev softhsm2
python3 python3-cryptography"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "setup: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
# The Debian mosquitto package starts a system broker on 1883; linecert
# starts its own on a free port and does not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  $SUDO systemctl stop mosquitto || true
fi
