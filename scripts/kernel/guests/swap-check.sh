#!/bin/sh
# Guest script (busybox ash, run by scripts/kernel/run-guest.sh): /dev/nbd0 as real swap. Attach it with Debian's
# nbd-client (netlink, no -t: a pause of the server must not fail requests), mkswap, swapon, run
# /guests/swap-workload.sh (a memory-limited group writing several times its limit into a tmpfs and checking every
# chunk's sha256), then swapoff and detach. Prints "SWAP-CHECK: PASS" or "SWAP-CHECK: FAIL <why>"; exits 0/1.
# Env: NBD_HOST, NBD_PORT (set by run-guest.sh); NBD_CONNECTIONS (2); NBD_EXPORT (""); NBD_BLOCK (4096); the
# workload's SWAP_WORK_MIB, SWAP_LIMIT_MIB, SWAP_CHUNK_MIB (see swap-workload.sh); SWAP_PAGE_CLUSTER: vm.page-cluster
# for the run (the kernel's own otherwise).
set -u
dev=/dev/nbd0
conns=${NBD_CONNECTIONS:-2}
attached=0
swapping=0

fail() {
  echo "SWAP-CHECK: FAIL $*"
  [ "$swapping" = 1 ] && swapoff "$dev" 2>/dev/null
  [ "$attached" = 1 ] && nbd-client -d "$dev" >/dev/null 2>&1
  exit 1
}
t0=$(date +%s)

nbd-client "$NBD_HOST" "$NBD_PORT" "$dev" -b "${NBD_BLOCK:-4096}" -C "$conns" -N "${NBD_EXPORT:-}" ||
  fail "nbd-client could not attach $NBD_HOST:$NBD_PORT"
attached=1
size=$(blockdev --getsize64 "$dev") || fail "blockdev --getsize64"
set -- /sys/block/nbd0/mq/*
echo "SWAP-CHECK: $dev size $size bytes, $# hw queue(s)"
[ "$#" = "$conns" ] || fail "$# hw queues, expected $conns connections"

if [ -n "${SWAP_PAGE_CLUSTER:-}" ]; then
  echo "$SWAP_PAGE_CLUSTER" >/proc/sys/vm/page-cluster || fail "cannot set vm.page-cluster to $SWAP_PAGE_CLUSTER"
fi
echo "SWAP-CHECK: vm.page-cluster $(cat /proc/sys/vm/page-cluster)"
mkswap "$dev" || fail "mkswap"
swapon "$dev" || fail "swapon"
swapping=1
grep -q "^$dev " /proc/swaps || fail "$dev not in /proc/swaps"
cat /proc/swaps

/guests/swap-workload.sh || fail "the workload failed"

# The workload freed its pages, so swapoff has nothing left to read back.
swapoff "$dev" || fail "swapoff"
swapping=0
grep -q "^$dev " /proc/swaps && fail "$dev still in /proc/swaps after swapoff"
why=$(/guests/nbd-detach.sh "$dev") || fail "$why"
attached=0
if dmesg | grep -E "(Read|Write)-error on swap-device|I/O error"; then
  fail "the kernel logged swap or block I/O errors"
fi
dmesg | grep -E "nbd|Adding .* swap" | tail -n 5
echo "SWAP-CHECK: PASS in $(($(date +%s) - t0)) s"
