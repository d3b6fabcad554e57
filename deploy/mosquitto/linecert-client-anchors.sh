#!/bin/sh
# Build the `cafile` of the production MQTT listener (linecert-line.conf):
# the certificates a client certificate may chain to there, and nothing
# above a bootstrap issuing CA. See README.md, "Production listener:
# operational certificates only".
#
# usage: linecert-client-anchors.sh -o OUT -b BOOTSTRAP_CA.pem [-b ...]
#            [-c CLIENT_CA.pem ...] OPERATIONAL_CA.pem [...]
#
#   OPERATIONAL_CA.pem  an operational issuing CA (local CA:
#                       <data-dir>/ca/operational-ca.pem; a remote CA: its
#                       subordinate CA certificate), one certificate per
#                       file. Written as an OpenSSL "TRUSTED CERTIFICATE"
#                       trusted for clientAuth: a trust anchor in its own
#                       right, so its root need not (and must not) be in
#                       the file.
#   -c CLIENT_CA.pem    another CA whose certificates the listener admits,
#                       copied as it is: the line CA that signs linecert's
#                       own client certificate and edge nodes that are not
#                       linecert-provisioned devices. Never a root or CA
#                       that also signs a bootstrap issuing CA.
#   -b BOOTSTRAP_CA.pem every bootstrap issuing CA of the line (local CA:
#                       <data-dir>/ca/bootstrap-ca.pem). Not written: the
#                       result is checked not to admit anything it signs,
#                       and nothing is written when it would.
#
# Run it again (and reload mosquitto) when an issuing CA is added or
# rotated. Needs only the openssl command line.
set -eu

prog=linecert-client-anchors
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
  die "usage: $prog -o OUT -b BOOTSTRAP_CA.pem [-b ...] [-c CLIENT_CA.pem ...] OPERATIONAL_CA.pem [...]"
}

out=""
boot_n=0
tmp=""
cleanup() { if [ -n "$tmp" ]; then rm -f "$tmp" "$tmp.chk"; fi; }
trap cleanup EXIT

# The -b and -c files, kept as newline-separated lists.
boots=""
clients=""
while getopts o:b:c: opt; do
  case $opt in
    o) out=$OPTARG ;;
    b) boots="$boots$OPTARG
"; boot_n=$((boot_n + 1)) ;;
    c) clients="$clients$OPTARG
" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
if [ -z "$out" ] || [ "$boot_n" -eq 0 ] || [ $# -eq 0 ]; then usage; fi

one_cert() {
  [ -r "$1" ] || die "$1: cannot read"
  n=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$1" || true)
  [ "$n" = 1 ] || die "$1: holds $n certificates, want exactly one"
  openssl x509 -in "$1" -noout >/dev/null 2>&1 || die "$1: not a PEM certificate"
}

tmp="$out.tmp.$$"
: >"$tmp"

for f in "$@"; do
  one_cert "$f"
  # A self-signed certificate is a root: trusting it for clientAuth would
  # admit everything below it, the bootstrap issuing CA included.
  subj=$(openssl x509 -in "$f" -noout -subject -nameopt RFC2253)
  iss=$(openssl x509 -in "$f" -noout -issuer -nameopt RFC2253)
  [ "${subj#subject=}" != "${iss#issuer=}" ] ||
    die "$f: self-signed (a root); give the operational ISSUING CA"
  openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null |
    grep -q 'CA:TRUE' || die "$f: not a CA certificate"
  openssl x509 -in "$f" -addtrust clientAuth >>"$tmp" ||
    die "$f: openssl x509 -addtrust failed"
done

printf '%s' "$clients" | while IFS= read -r f; do
  [ -r "$f" ] || die "$f: cannot read"
  openssl x509 -in "$f" -noout >/dev/null 2>&1 || die "$f: not a PEM certificate"
  cat "$f" >>"$tmp"
done

# Nothing signed by a bootstrap issuing CA may verify against the file.
# -partial_chain makes every certificate in the file an anchor, which is
# stricter than Mosquitto: a bootstrap CA that is itself in the file, or
# any CA above it, lets the chain build, and the only acceptable outcome
# is "unable to get local issuer certificate" (20) for the bootstrap CA.
printf '%s' "$boots" | while IFS= read -r b; do
  one_cert "$b"
  if openssl verify -partial_chain -CAfile "$tmp" -purpose sslclient "$b" \
       >"$tmp.chk" 2>&1 ||
     ! grep -q '^error 20 at 0 depth' "$tmp.chk"; then
    sed 's/^/  /' "$tmp.chk" >&2
    die "$b: this bootstrap issuing CA (or a CA above it) is an anchor of the result; remove it from the inputs"
  fi
done

rm -f "$tmp.chk"
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
tmp=""
echo "$prog: wrote $out ($# operational issuing CA(s) trusted for clientAuth)"
