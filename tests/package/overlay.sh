#!/bin/sh
# Part of package.deb, run by it in a mount namespace of its own
# (unshare -m): mounts a throw-away overlay of this machine's root,
# installs the package into it with dpkg, and runs installed.sh in it,
# first as it is, then with the mounts a hardened unit gets. Exit 77:
# no overlay mount here (the check is skipped).
#
# usage: unshare -m sh overlay.sh SCRATCH_DIR DEB BIN_DIR SOURCE_DIR
set -eu

t=$1
deb=$2
bin=$3
src=$4
r=$t/root
mkdir -p "$t/up" "$t/work" "$r"
mount --make-rprivate /
if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$t/up,workdir=$t/work" "$r"; then
  echo "no overlay of / in $t"
  exit 77
fi
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
# /tmp and the build tree may be mounts of their own, which the overlay
# of / does not show: what the chroot needs is copied in.
mkdir -p "$r/opt/lc-test"
cp "$deb" "$r/opt/lc-test/linecert.deb"
cp "$bin/linecert-sim" "$src/tests/package/installed.sh" "$r/opt/lc-test/"
chroot "$r" sh /opt/lc-test/installed.sh install

# ProtectSystem=strict, ProtectHome, PrivateTmp: the root read-only but
# the data directory (and the test's own scratch), /root and /home
# empty, /tmp private.
mount --bind "$r/var/lib/linecert" "$r/var/lib/linecert"
mount --bind "$r/opt/lc-test" "$r/opt/lc-test"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
mount -t tmpfs -o ro,mode=0755 tmpfs "$r/root"
mount -t tmpfs -o ro,mode=0755 tmpfs "$r/home"
mount -o remount,bind,ro "$r"
chroot "$r" sh /opt/lc-test/installed.sh run

umount "$r/home" "$r/root" "$r/tmp"
mount -o remount,bind,rw "$r"
chroot "$r" sh /opt/lc-test/installed.sh remove
