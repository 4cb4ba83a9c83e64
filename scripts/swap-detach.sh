#!/bin/sh
# Undoes what swap-attach.sh recorded in its state file, in the safe order: swapoff first (the kernel pulls every
# swapped page back into RAM while the device still works), then the loop device, the nbdfuse mount and process, the
# nbd connection. Safe to run twice and after a partial attach: each step checks that its piece is still there.
# If swapoff fails (not enough RAM for the swapped pages) it stops and changes nothing else: tearing down a device
# that still holds swapped pages would kill the processes that own them. POSIX sh (dash, bash, busybox ash).
set -eu

usage() {
  cat <<'EOF'
usage: swap-detach.sh [--name NAME]

  --name NAME   the attachment to undo (swap-attach.sh --name; default swapnbd)

Exit 0 when nothing of it is left (also when nothing was attached), 1 when a step failed (the state file stays,
run it again). RUNDIR is $SWAPNBD_RUN_DIR, default /run/swapnbd. Run as root.
EOF
}

say() { echo "swap-detach: $*" >&2; }
die() { say "$*"; exit 1; }

name=swapnbd
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --name) [ $# -ge 2 ] || { usage >&2; die "--name needs a value"; }; name=$2; shift 2 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
case $name in ''|*[!A-Za-z0-9._-]*) die "--name '$name': letters, digits, '.', '_' and '-' only" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root"

run_dir=${SWAPNBD_RUN_DIR:-/run/swapnbd}
state=$run_dir/attach-$name
if [ ! -e "$state" ]; then
  say "nothing attached as '$name' (no $state)"
  exit 0
fi

swap="" fuse_dir="" fuse_pid="" nbd="" nbd_client="" client_pid="" page_cluster="" page_cluster_before=""
while IFS='=' read -r key value; do
  case $key in
    swap) swap=$value ;;
    fuse_dir) fuse_dir=$value ;;
    fuse_pid) fuse_pid=$value ;;
    nbd) nbd=$value ;;
    nbd_client) nbd_client=$value ;;
    client_pid) client_pid=$value ;;
    page_cluster) page_cluster=$value ;;
    page_cluster_before) page_cluster_before=$value ;;
  esac
done <"$state"

is_swap() { awk -v d="$1" '$1 == d { found = 1 } END { exit !found }' /proc/swaps; }

# 1. swapoff: pages come back into RAM through the device, which must still be up.
if [ -n "$swap" ] && is_swap "$swap"; then
  swapoff "$swap" || die "swapoff $swap failed (not enough free RAM for its pages?); nothing else was touched"
  say "swapoff $swap"
fi

# 1b. Swap readahead as it was before the attach, unless someone set another value since.
if [ -n "$page_cluster_before" ] && [ "$(cat /proc/sys/vm/page-cluster 2>/dev/null)" = "$page_cluster" ]; then
  echo "$page_cluster_before" >/proc/sys/vm/page-cluster && say "vm.page-cluster back to $page_cluster_before"
fi

# 2. The loop devices backed by the nbdfuse file, found through sysfs rather than the recorded name: the attach may
# have been cut short between losetup and recording it, and a recorded device now backed by something else is not
# ours any more.
# (sysfs, not losetup -O: busybox's losetup has no such option)
if [ -n "$fuse_dir" ]; then
  for b in /sys/block/loop*; do
    [ "$(cat "$b/loop/backing_file" 2>/dev/null)" = "$fuse_dir/disk" ] || continue
    l=/dev/${b##*/}
    if is_swap "$l"; then die "$l is swap again; run swapoff $l first"; fi
    losetup -d "$l" || die "losetup -d $l failed"
    say "losetup -d $l"
  done
fi

# 3. The nbdfuse mount, then the process (it exits once unmounted).
if [ -n "$fuse_dir" ]; then
  if grep -q " $fuse_dir fuse" /proc/mounts; then
    if command -v fusermount3 >/dev/null 2>&1; then
      fusermount3 -u "$fuse_dir" || umount "$fuse_dir" || die "cannot unmount $fuse_dir"
    else
      umount "$fuse_dir" || die "cannot unmount $fuse_dir"
    fi
    say "unmounted $fuse_dir"
  fi
  if [ -n "$fuse_pid" ] && grep -q nbdfuse "/proc/$fuse_pid/cmdline" 2>/dev/null; then
    i=0
    while [ $i -lt 100 ] && grep -q nbdfuse "/proc/$fuse_pid/cmdline" 2>/dev/null; do
      sleep 0.1
      i=$((i + 1))
    done
    if grep -q nbdfuse "/proc/$fuse_pid/cmdline" 2>/dev/null; then
      say "nbdfuse ($fuse_pid) still running 10 s after the unmount; stopping it"
      kill "$fuse_pid" 2>/dev/null || true
    fi
  fi
  rmdir "$fuse_dir" 2>/dev/null || true
  rm -f "$run_dir/nbdfuse-$name.pid" "$run_dir/nbdfuse-$name.log"
fi

# 4. A swapnbd-client --persist: SIGTERM ends it and leaves the device attached (it would reconnect otherwise).
if [ -n "$client_pid" ] && grep -q swapnbd-client "/proc/$client_pid/cmdline" 2>/dev/null; then
  kill -TERM "$client_pid" 2>/dev/null || true
  i=0
  while [ $i -lt 100 ] && grep -q swapnbd-client "/proc/$client_pid/cmdline" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
  done
  grep -q swapnbd-client "/proc/$client_pid/cmdline" 2>/dev/null && kill -9 "$client_pid" 2>/dev/null
  say "stopped swapnbd-client --persist ($client_pid)"
fi
rm -f "$run_dir/client-$name.out"  # client-NAME.log stays for a look at what it did

# 5. The kernel nbd connection (connected while /sys/block/nbdX/pid exists).
if [ -n "$nbd" ] && [ -e "/sys/block/${nbd##*/}/pid" ]; then
  client_bin=""
  if [ "$nbd_client" = swapnbd ]; then
    for c in "$(dirname "$0")/../out/swapnbd-client" "$(command -v swapnbd-client 2>/dev/null || true)"; do
      if [ -n "$c" ] && [ -x "$c" ]; then client_bin=$c; break; fi
    done
  fi
  if [ -n "$client_bin" ]; then
    "$client_bin" detach "$nbd" >&2 || die "swapnbd-client detach $nbd failed"
    say "swapnbd-client detach $nbd"
  else
    # NBD_DISCONNECT: the ioctl that works on a device attached either way.
    nbd-client -d "$nbd" >&2 || die "nbd-client -d $nbd failed"
    say "nbd-client -d $nbd"
  fi
fi

rm -f "$state"
