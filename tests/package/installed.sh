#!/bin/sh
# Part of package.deb: runs as root inside the throw-away root that
# overlay.sh made, in three phases.
#   install  dpkg -i: the user, the 0700 directory, the conffile; again
#            (an upgrade in place) changes nothing
#   run      linecert as its unit runs it (overlay.sh made the root
#            read-only but the data directory): a line provisions,
#            status as linecert and as root, SIGHUP, the data
#            directory's owners and modes, a restart after root used it
#   remove   dpkg -r keeps the data, the user and the configuration;
#            dpkg -P the configuration only; a reinstall takes them up
#
# usage: installed.sh install|run|remove
set -eu

phase=$1
fails=0
fail() { echo "FAIL($phase): $*"; fails=$((fails + 1)); }
data=/var/lib/linecert
conf=/etc/linecert/linecert.ini
t=/opt/lc-test

# as_linecert CMD...: as the unit runs its commands: user and group
# linecert, no capabilities, no new privileges, umask 0077, a clean
# environment.
as_linecert() {
  setpriv --reuid=linecert --regid=linecert --init-groups --no-new-privs \
    --bounding-set=-all --inh-caps=-all \
    env -i PATH=/usr/bin:/bin HOME=$data sh -c 'umask 0077; cd "$0"; exec "$@"' \
    "$data" "$@"
}
mode_owner() { stat -c '%a %U:%G' "$1"; }
# strangers: anything in the data directory not linecert's, or open to
# group or others.
strangers() {
  find "$data" \( ! -user linecert -o ! -group linecert -o -perm /077 \) \
    -printf '%m %u:%g %p\n'
}

case $phase in
install)
  dpkg -i $t/linecert.deb
  getent passwd linecert >$t/passwd || fail "no user linecert"
  IFS=: read -r _ _ uid _ _ home shell <$t/passwd
  [ "$uid" -lt 1000 ] || fail "linecert's uid $uid is not a system uid"
  [ "$home" = $data ] || fail "linecert's home is $home"
  [ "$shell" = /usr/sbin/nologin ] || fail "linecert's shell is $shell"
  getent group linecert >/dev/null || fail "no group linecert"
  [ "$(mode_owner $data)" = "700 linecert:linecert" ] ||
    fail "$data is $(mode_owner $data)"
  dpkg-query -W -f='${Conffiles}\n' linecert | grep -q "^ $conf " ||
    fail "$conf is not a conffile"
  [ -x /usr/bin/linecert ] && [ -f /lib/systemd/system/linecert.service ] ||
    fail "binary or unit not installed"
  # The same version again: postinst configure with the old version as
  # $2, as an upgrade runs it.
  dpkg -i $t/linecert.deb
  [ "$(getent passwd linecert | cut -d: -f3)" = "$uid" ] ||
    fail "a reinstall changed linecert's uid"
  [ "$(mode_owner $data)" = "700 linecert:linecert" ] ||
    fail "after a reinstall $data is $(mode_owner $data)"
  ;;

run)
  touch /usr/bin/x 2>/dev/null && fail "the root is writable: not a strict sandbox"
  free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  }
  mport=$(free_port)
  hport=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' \
    "$mport" >$t/mosquitto.conf
  mosquitto -c $t/mosquitto.conf >$t/mosquitto.log 2>&1 &
  mosq=$!
  lc=""
  cleanup() {
    [ -z "$lc" ] || kill "$lc" 2>/dev/null || true
    kill "$mosq" 2>/dev/null || true
    wait 2>/dev/null || true
  }
  trap cleanup EXIT

  as_linecert linecert check-config -c $conf >$t/check.out 2>&1 ||
    fail "check-config as linecert: $(cat $t/check.out)"

  # start LOG: linecert serve as the unit starts it, until online.
  start() {
    # Not through as_linecert: $! must be linecert's pid (each program
    # execs the next), as systemd's $MAINPID is.
    setpriv --reuid=linecert --regid=linecert --init-groups --no-new-privs \
      --bounding-set=-all --inh-caps=-all \
      env -i PATH=/usr/bin:/bin HOME=$data sh -c 'umask 0077; cd "$0"; exec "$@"' \
      "$data" linecert serve -c $conf --mqtt-url "tcp://127.0.0.1:$mport" \
      --http "127.0.0.1:$hport" 2>"$1" &
    lc=$!
    i=0
    until grep -q 'state=online' "$1"; do
      i=$((i + 1))
      if [ $i -gt 300 ] || ! kill -0 "$lc" 2>/dev/null; then
        fail "linecert serve did not come online:"
        sed 's/^/  | /' "$1"
        return 1
      fi
      sleep 0.1
    done
  }
  stop() {
    kill -TERM "$lc"
    rc=0
    wait "$lc" || rc=$?
    lc=""
    [ "$rc" -eq 0 ] || fail "linecert serve exited $rc on SIGTERM"
  }
  # wait_for LOG PATTERN: until the service logs it.
  wait_for() {
    i=0
    until grep -q "$2" "$1"; do
      i=$((i + 1))
      [ $i -le 100 ] || { fail "no '$2' in the log"; return 1; }
      sleep 0.1
    done
  }

  start $t/serve1.log
  ls -l $data >$t/ls.out
  [ "$(mode_owner $data/control.sock)" = "600 linecert:linecert" ] ||
    fail "control.sock is $(mode_owner $data/control.sock 2>&1)"
  grep -q "^$lc serve" $data/linecert.lock ||
    fail "linecert.lock holds '$(cat $data/linecert.lock)', not pid $lc"

  /opt/lc-test/linecert-sim --mqtt-url "tcp://127.0.0.1:$mport" \
    --trust $data/ca/root.pem --edges 1 --devices 20 --prefix PKG \
    >$t/sim.out 2>&1 || { fail "linecert-sim failed:"; sed 's/^/  | /' $t/sim.out; }
  i=0
  while :; do
    n=$(as_linecert linecert devices --state PROVISIONED -c $conf | grep -c '/PKG-' || true)
    [ "$n" -lt 20 ] || break
    i=$((i + 1))
    [ $i -le 100 ] || { fail "$n of 20 devices PROVISIONED"; break; }
    sleep 0.1
  done
  echo "provisioned $n devices as user linecert in a read-only root"

  for who in linecert root; do
    if [ $who = root ]; then
      linecert status -c $conf >$t/status.$who 2>&1 || fail "status as root"
    else
      as_linecert linecert status -c $conf >$t/status.$who 2>&1 ||
        fail "status as linecert"
    fi
    grep -q '^PROVISIONED  *20$' $t/status.$who ||
      { fail "status as $who:"; sed 's/^/  | /' $t/status.$who; }
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hport/readyz")
  [ "$code" = 200 ] || fail "/readyz answered $code"

  kill -HUP "$lc"
  wait_for $t/serve1.log 'op=reload result=applied' || true
  kill -0 "$lc" || fail "SIGHUP ended the service"

  s=$(strangers)
  [ -z "$s" ] || fail "in the data directory, not linecert's 0700/0600: $s"
  stop

  # Root uses the data directory while the service is stopped, then the
  # service starts again as linecert.
  linecert status -c $conf >/dev/null || fail "offline status as root"
  linecert audit verify -c $conf >$t/verify.out 2>&1 ||
    { fail "offline audit verify as root:"; sed 's/^/  | /' $t/verify.out; }
  s=$(strangers)
  [ -z "$s" ] || fail "root's offline commands left: $s"
  start $t/serve2.log && stop
  ;;

remove)
  dpkg -r linecert
  [ ! -e /usr/bin/linecert ] || fail "remove left /usr/bin/linecert"
  [ -f $data/linecert.db ] || fail "remove took the store"
  [ -f $conf ] || fail "remove took the configuration (a conffile stays)"
  getent passwd linecert >/dev/null || fail "remove took the user"
  dpkg -P linecert
  [ ! -e $conf ] || fail "purge left $conf"
  [ -f $data/linecert.db ] || fail "purge took the store"
  getent passwd linecert >/dev/null || fail "purge took the user"
  dpkg -i $t/linecert.deb
  [ "$(mode_owner $data)" = "700 linecert:linecert" ] ||
    fail "after a reinstall $data is $(mode_owner $data)"
  [ "$(mode_owner $data/linecert.db)" = "600 linecert:linecert" ] ||
    fail "after a reinstall the store is $(mode_owner $data/linecert.db)"
  ;;
esac

if [ "$fails" -ne 0 ]; then
  echo "$phase: $fails check(s) failed"
  exit 1
fi
echo "$phase: ok"
