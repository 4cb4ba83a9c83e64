#!/bin/sh
# Guest workload (busybox ash; run-guest.sh ships it as /guests/swap-workload.sh): makes the kernel swap through
# whatever swap is on. A worker in a cgroup v2 group limited to SWAP_LIMIT_MIB writes SWAP_WORK_MIB of random data
# into a tmpfs in SWAP_CHUNK_MIB files, recording each chunk's sha256 as it goes, then reads every file back and checks
# it. The tmpfs pages are charged to the group, so everything past the limit must go to swap and come back from it.
# Leaves nothing behind (files, tmpfs, group), so swapoff afterwards has nothing to read back.
#
# Env: SWAP_WORK_MIB (192), SWAP_LIMIT_MIB (48), SWAP_CHUNK_MIB (4), SWAP_DIR (/mnt/swap-work).
# Output, one line each (the host reads these; keep the formats):
#   SWAP-WORK: start work W MiB, limit L MiB, chunk C MiB
#   SWAP-WORK: wrote N/W MiB, swap S MiB          after each chunk (S: the group's memory.swap.current)
#   SWAP-WORK: write done in T s, swap S MiB, peak P MiB
#   SWAP-WORK: verified N/W MiB, swap S MiB       after each chunk read back and checked
#   SWAP-WORK: verify done in T s, peak swap P MiB
#   SWAP-WORK: PASS work W MiB, limit L MiB, peak swap P MiB, write T1 s, verify T2 s
#   SWAP-WORK: FAIL <why>
# Exit: 0 pass, 1 fail.
set -u
tag=SWAP-WORK
work=${SWAP_WORK_MIB:-192}
limit=${SWAP_LIMIT_MIB:-48}
chunk=${SWAP_CHUNK_MIB:-4}
dir=${SWAP_DIR:-/mnt/swap-work}
cgroot=/sys/fs/cgroup
group=$cgroot/swap-work
sums=/run/swap-work.sha256
peakfile=/run/swap-work.peak

# --- worker: runs inside the group ------------------------------------------------------------------------------------
swap_mib() {
  # The group's own swap use; the system-wide figure if the kernel has no swap accounting for groups.
  if [ -r "$group/memory.swap.current" ]; then
    echo $(($(cat "$group/memory.swap.current") >> 20))
  else
    awk '/^SwapTotal:/ {t = $2} /^SwapFree:/ {f = $2} END {print int((t - f) / 1024)}' /proc/meminfo
  fi
}
note_peak() {
  s=$1
  p=$(cat "$peakfile")
  [ "$s" -gt "$p" ] && echo "$s" >"$peakfile"
}

if [ "${1:-}" = worker ]; then
  n=$((work / chunk))
  : >"$sums"
  echo 0 >"$peakfile"
  t0=$(date +%s)
  i=0
  while [ $i -lt $n ]; do
    f=$dir/c$i
    sum=$(dd if=/dev/urandom bs=1M count="$chunk" 2>/dev/null | tee "$f" | sha256sum | cut -d' ' -f1)
    size=$(stat -c %s "$f" 2>/dev/null || echo 0)
    [ "$size" = $((chunk << 20)) ] || { echo "$tag: FAIL chunk $i has $size bytes, expected $((chunk << 20))"; exit 1; }
    echo "$sum  $f" >>"$sums"
    i=$((i + 1))
    s=$(swap_mib)
    note_peak "$s"
    echo "$tag: wrote $((i * chunk))/$work MiB, swap $s MiB"
  done
  t1=$(date +%s)
  s=$(swap_mib)
  note_peak "$s"
  echo "$tag: write done in $((t1 - t0)) s, swap $s MiB, peak $(cat "$peakfile") MiB"
  cat /proc/swaps
  i=0
  while read -r want f; do
    got=$(sha256sum <"$f" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "$tag: FAIL checksum mismatch in $f (chunk $i): got $got, want $want"; exit 1; }
    i=$((i + 1))
    s=$(swap_mib)
    note_peak "$s"
    echo "$tag: verified $((i * chunk))/$work MiB, swap $s MiB"
  done <"$sums"
  [ $i = "$n" ] || { echo "$tag: FAIL verified $i chunks, wrote $n"; exit 1; }
  t2=$(date +%s)
  echo "$tag: verify done in $((t2 - t1)) s, peak swap $(cat "$peakfile") MiB"
  echo "$((t1 - t0)) $((t2 - t1))" >/run/swap-work.times
  exit 0
fi

# --- setup, worker, cleanup ---------------------------------------------------------------------------------------------
cleanup() {
  rm -rf "${dir:?}"/* 2>/dev/null
  umount "$dir" 2>/dev/null
  rmdir "$group" 2>/dev/null
}
fail() {
  echo "$tag: FAIL $*"
  cleanup
  exit 1
}
if ! { [ "$chunk" -gt 0 ] && [ "$work" -ge "$chunk" ] && [ "$limit" -gt 0 ]; }; then
  fail "bad sizes: work $work, limit $limit, chunk $chunk"
fi
grep -q '^/' /proc/swaps || fail "no swap is on"

mkdir -p "$dir"
# Room for the data and then some: a full tmpfs would fail the write, not swap.
mount -t tmpfs -o size=$((work + 16))m swap-work "$dir" || fail "cannot mount a tmpfs on $dir"
if ! grep -q " $cgroot cgroup2 " /proc/mounts; then
  mkdir -p "$cgroot"
  mount -t cgroup2 cgroup2 "$cgroot" || fail "cannot mount cgroup2 on $cgroot"
fi
echo +memory >"$cgroot/cgroup.subtree_control" || fail "cannot enable the memory controller"
mkdir -p "$group" || fail "cannot create $group"
echo $((limit << 20)) >"$group/memory.max" || fail "cannot set memory.max"
if [ -w "$group/memory.swap.max" ]; then
  echo max >"$group/memory.swap.max" || fail "cannot set memory.swap.max"
fi
echo "$tag: start work $work MiB, limit $limit MiB, chunk $chunk MiB"

# sh -c: its $$ is the worker's own pid (a subshell's $$ would be this script's).
SWAP_WORK_MIB=$work SWAP_LIMIT_MIB=$limit SWAP_CHUNK_MIB=$chunk SWAP_DIR=$dir \
  sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" worker' worker "$group" "$0"
code=$?
oom=$(awk '$1 == "oom_kill" {print $2}' "$group/memory.events" 2>/dev/null)
[ "${oom:-0}" = 0 ] || fail "the group saw $oom OOM kill(s)"
[ $code = 0 ] || fail "worker exited $code"
peak=$(cat "$peakfile")
read -r wt vt </run/swap-work.times
[ "$peak" -gt 0 ] || fail "the workload never used swap (limit $limit MiB, work $work MiB)"
cleanup
grep -q " $dir " /proc/mounts && fail "$dir still mounted"
echo "$tag: PASS work $work MiB, limit $limit MiB, peak swap $peak MiB, write $wt s, verify $vt s"
