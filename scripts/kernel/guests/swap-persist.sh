#!/bin/sh
# Guest script (busybox ash, run by scripts/kernel/run-guest.sh): swap on /dev/nbdN through a client that survives a
# server restart. Attaches with CLIENT (swapnbd, the default: scripts/swap-attach.sh --persist, which runs
# "swapnbd-client attach --persist" and does mkswap/swapon, undone by swap-detach.sh; or nbdclient:
# Debian's "nbd-client -nonetlink -persist -swap", the reference), mkswap/swapon, then a workload in a cgroup v2 group
# with memory.max below its size writes random files into a tmpfs (so their pages go to swap), and reads them all back
# against sha256 sums taken at write time. Once the workload swaps it prints "SWAP-PERSIST: swapping" (the host kills
# the server then). Finally it checks the kernel log for swap I/O errors.
# Prints "SWAP-PERSIST: PASS" or "SWAP-PERSIST: FAIL <why>"; exits 0/1. Always prints the kernel log lines about nbd
# and swap errors, and "SWAP-PERSIST: swap-errors N" (the number of Read-/Write-error lines).
# Env: NBD_HOST, NBD_PORT (run-guest.sh); CLIENT (swapnbd); WORK_MIB (120); LIMIT_MIB (48); CHUNK_MIB (4);
# MARK_MIB (64: print the marker after this much was written); DEAD_TIMEOUT (60); REQUEST_TIMEOUT (10).
set -u
client=${CLIENT:-swapnbd}
work=${WORK_MIB:-120}
limit=${LIMIT_MIB:-48}
chunk=${CHUNK_MIB:-4}
mark=${MARK_MIB:-64}
status=0

say() { echo "SWAP-PERSIST: $*"; }
fail() { say "FAIL $*"; status=1; }
report() {
  dmesg | grep -E "nbd|swap|Swap|I/O error" | tail -n 60
  errors=$(dmesg | grep -cE "(Read|Write)-error on swap-device")
  say "swap-errors $errors"
}

if [ "$client" = swapnbd ]; then
  # The operator's way: swap-attach.sh picks swapnbd-client (the kernel has the nbd netlink family) and swaps on it.
  dev=$(swap-attach.sh --tcp "$NBD_HOST:$NBD_PORT" --persist --client swapnbd --connections 1 --name persist) ||
    { cat /run/swapnbd/client-persist.log; say "FAIL swap-attach.sh --persist"; exit 1; }
  [ -b "$dev" ] || { say "FAIL swap-attach.sh gave no device ('$dev')"; exit 1; }
else
  dev=/dev/nbd0
  nbd-client "$NBD_HOST" "$NBD_PORT" "$dev" -b 4096 -N "" -nonetlink -persist -swap -t "${REQUEST_TIMEOUT:-10}" \
    >/tmp/client.log 2>&1 &
  i=0
  while [ "$(cat /sys/block/nbd0/size 2>/dev/null)" = 0 ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
  done
fi
say "attached $dev with $client ($(cat "/sys/block/${dev#/dev/}/size") sectors)"

if [ "$client" != swapnbd ]; then
  mkswap "$dev" >/dev/null || { say "FAIL mkswap"; exit 1; }
  swapon "$dev" || { say "FAIL swapon"; exit 1; }
fi

mount -t cgroup2 none /sys/fs/cgroup
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/work
echo "$((limit * 1048576))" >/sys/fs/cgroup/work/memory.max
mkdir -p /work
mount -t tmpfs -o size=$((work * 2))m tmpfs /work

start=$(date +%s)
(
  echo 0 >/sys/fs/cgroup/work/cgroup.procs
  n=$((work / chunk))
  i=1
  while [ $i -le $n ]; do
    dd if=/dev/urandom bs=1M count="$chunk" 2>/dev/null | tee "/work/f$i" | sha256sum | cut -d' ' -f1 >"/work/f$i.sum"
    [ $((i * chunk)) = "$mark" ] && echo "SWAP-PERSIST: swapping (wrote $mark MiB, swap used $(awk '/SwapTotal/ {t=$2} /SwapFree/ {f=$2} END {print t-f}' /proc/meminfo) kB)"
    i=$((i + 1))
  done
  echo "SWAP-PERSIST: wrote $work MiB in $(($(date +%s) - start)) s"
  bad=0
  i=1
  while [ $i -le $n ]; do
    got=$(sha256sum <"/work/f$i" | cut -d' ' -f1)
    [ "$got" = "$(cat "/work/f$i.sum")" ] || { echo "SWAP-PERSIST: checksum mismatch in f$i"; bad=$((bad + 1)); }
    i=$((i + 1))
  done
  echo "SWAP-PERSIST: verified $n files of $chunk MiB, $bad bad, in $(($(date +%s) - start)) s"
  [ $bad = 0 ]
) &
workload=$!
# Watchdog: once swap I/O fails, the workload can spin in failing reclaim for ever; give it 10 s, then end it
# (cgroup.kill) so the script reports instead of running into the host's timeout.
while kill -0 "$workload" 2>/dev/null; do
  if dmesg | grep -qE "(Read|Write)-error on swap-device"; then
    sleep 10
    kill -0 "$workload" 2>/dev/null && { say "swap I/O errors: ending the workload"; echo 1 >/sys/fs/cgroup/work/cgroup.kill; }
    break
  fi
  sleep 1
done
wait "$workload" || fail "the workload failed or a checksum was wrong"

peak=$(cat /sys/fs/cgroup/work/memory.swap.peak 2>/dev/null || cat /sys/fs/cgroup/work/memory.swap.current)
say "workload swap peak ${peak} bytes"
[ "${peak:-0}" -gt $((8 * 1048576)) ] || fail "the workload hardly swapped (${peak} bytes)"

# The workload's pages leave swap with it; swapoff would otherwise pull them into the 48 MiB group and OOM.
rm -f /work/f*
umount /work

if [ "$client" = swapnbd ]; then
  # swapoff, SIGTERM to the client (it leaves the device attached), swapnbd-client detach.
  swap-detach.sh --name persist || fail "swap-detach.sh"
  echo "--- swapnbd-client log"
  cat /run/swapnbd/client-persist.log
  grep -q "reconnected in" /run/swapnbd/client-persist.log && say "client reconnected"
  [ -e "/sys/block/${dev#/dev/}/pid" ] && fail "$dev still connected after swap-detach.sh"
else
  echo "--- nbd-client log"
  cat /tmp/client.log
  swapoff "$dev" 2>/dev/null
  nbd-client -d "$dev" >/dev/null 2>&1
fi

report
[ "$(dmesg | grep -cE "(Read|Write)-error on swap-device")" = 0 ] || fail "swap I/O errors in the kernel log"
[ $status = 0 ] && say PASS
exit $status
