#!/bin/sh
# Guest script (busybox ash, run by scripts/kernel/run-guest.sh): SwapNbd as the WHOLE machine's swap. The native
# swapnbd-server runs in this guest (slab mode, pages sealed, its backup disk the guest's first virtio disk /dev/vda)
# over donor daemons on the host (reached as 10.0.2.100:PORT through qemu's user networking); swap-attach.sh --persist
# attaches it with swapnbd-client over the server's Unix socket, mkswap, swapon. Then WM_WORKLOADS workloads with NO
# cgroup limit write WM_WORK_MIB in all (3x the guest's RAM) of random data into a tmpfs, in WM_CHUNK_MIB files with a
# sha256 each, and read every file back in random order. The kernel reclaims globally, so the server has to serve
# swap-outs while every allocation in the guest waits for reclaim.
#
# Env (run-guest.sh passes them): WM_DAEMONS ("HOST:PORT HOST:PORT"), WM_SIZE (export bytes), WM_SLAB (slab bytes),
# WM_WORK_MIB, WM_WORKLOADS (1), WM_CHUNK_MIB (4), WM_LIMIT_S (the workloads' time limit, 600), WM_SERVER_TTY (the
# server's log goes to this tty, e.g. /dev/ttyS2 captured by run-guest.sh --serial2, instead of a file in the guest),
# WM_EXPECT_WRITE_ERRORS (1: the backup disk fails some sectors, run-guest.sh --blkdebug; swap write errors are then
# required instead of refused).
# Files: /usr/bin/swapnbd-server, /usr/bin/swapnbd-client, /usr/bin/swap-attach.sh, /usr/bin/swap-detach.sh, their
# libraries, /etc/swapnbd/cluster.key (mode 0600).
# Output for the host (keep the formats; WholeMachineSwapTests reads them):
#   WM: server pid P, oom_score_adj A, threads T, io-flusher threads F, SCHED_RR threads R   after the workloads
#   WM: swapping, swap used S MiB                    once, when swap use passes 64 MiB (the host may kill a donor)
#   WM-WORK K: wrote N/M MiB, swap S MiB, T s        every 32 MiB (T: seconds since the workload began)
#   WM-WORK K: read back N/M MiB, swap S MiB, T s    every 128 MiB of the read-back
#   WM-WORK K: verified N/M MiB in T s, 0 bad         at the end of workload K
#   WM: server under pressure: VmRSS max R kB, VmLck max L kB, samples N, resident locked max K kB, Buffers max B kB,
#       longest sampler gap G ms
#   WM: workloads done in T s (limit L s)
#   WM: kernel log: swap-errors E, hung-tasks H, oom-kills O, backup-disk-errors D
#   WM: PASS | WM: FAIL <why>
set -u
tag=WM
size=${WM_SIZE:?}
slab=${WM_SLAB:?}
work=${WM_WORK_MIB:?}
workloads=${WM_WORKLOADS:-1}
chunk=${WM_CHUNK_MIB:-4}
limit=${WM_LIMIT_S:-600}
run=/run/swapnbd
status=0

say() { echo "$tag: $*"; }
fail() { say "FAIL $*"; status=1; }
swap_mib() { awk '/^SwapTotal:/ {t = $2} /^SwapFree:/ {f = $2} END {print int((t - f) / 1024)}' /proc/meminfo; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
# Resident locked memory (smaps_rollup's Locked:). VmLck in /proc/PID/status counts whole locked mappings, and under
# mlockall(MCL_FUTURE|MCL_ONFAULT) that includes the GC's ~5 GB PROT_NONE address-space reservation, never faulted in.
locked_kb() { awk '$1 == "Locked:" {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null; }

# Hung tasks reported after 20 s (the kernel default is 120 s, longer than this test); sysrq for a stall dump.
echo 20 >/proc/sys/kernel/hung_task_timeout_secs || fail "cannot set hung_task_timeout_secs"
echo 1 >/proc/sys/kernel/sysrq
# The reserve a real-time server allocates from below the min watermark is a quarter of it: raised from the 256 MiB
# guest's default (about 1.3 MiB) to 16 MiB for the run, as docs/operations.md asks of a whole-machine swap host, and
# put back before the detach (swapoff must bring every swapped page back in, and the reserve is RAM it cannot use).
min_free_boot=$(cat /proc/sys/vm/min_free_kbytes)
echo 16384 >/proc/sys/vm/min_free_kbytes || fail "cannot set vm.min_free_kbytes"
# WM_SYSCTL: "vm.KEY=VALUE ..." applied before the server starts (reclaim tuning under test).
for kv in ${WM_SYSCTL:-}; do
  key=${kv%%=*}
  echo "${kv#*=}" >"/proc/sys/$(echo "$key" | tr . /)" || fail "cannot set $key"
  say "sysctl $key = $(cat "/proc/sys/$(echo "$key" | tr . /)")"
done

mkdir -p "$run" /etc/swapnbd
chmod 0700 "$run"
# shellcheck disable=SC2086  # a list of HOST:PORT words
set -- $WM_DAEMONS
{ echo "$#"; for d in "$@"; do echo "$d"; done; } >/etc/swapnbd/portal.list
# The server as the operator runs it: default socket /run/swapnbd/swapnbd.sock, memory locked, IO_FLUSHER,
# oom_score_adj -1000 (it runs as root here, with every capability).
# Its log goes to ttyS2 when run-guest.sh captures it (--serial2): the host reads it even if this guest wedges.
log=$run/server.log
[ -n "${WM_SERVER_TTY:-}" ] && [ -c "$WM_SERVER_TTY" ] && log=$WM_SERVER_TTY
# shellcheck disable=SC2086  # WM_SERVER_ARGS: extra options, one word each; WM_SERVER_WRAP: a command to run it under
# --realtime-priority 1: SCHED_RR, so its socket buffers are found below the min watermark (docs/operations.md).
${WM_SERVER_WRAP:-} swapnbd-server --portal /etc/swapnbd/portal.list --backup-disk /dev/vda --size "$size" --slab-size "$slab" \
  --auth-key-file /etc/swapnbd/cluster.key --realtime-priority 1 ${WM_SERVER_ARGS:-} >"$log" 2>&1 </dev/null &
server=$!
i=0
while [ ! -S "$run/swapnbd.sock" ]; do
  kill -0 "$server" 2>/dev/null || { cat "$run/server.log"; say "FAIL the server exited at start"; exit 1; }
  [ $i -lt 300 ] || { cat "$run/server.log"; say "FAIL the server did not listen within 30 s"; exit 1; }
  sleep 0.1
  i=$((i + 1))
done

# PR_SET_IO_FLUSHER sets PF_MEMALLOC_NOIO (0x00080000) and PF_LOCAL_THROTTLE (0x00100000) in the task's flags, which
# /proc/PID/stat shows as field 9 (/proc/PID/status does not show them). The flag is per thread: count the threads
# that carry it. The comm field may hold spaces (".NET TP Worker"), so fields are counted after its ')'.
# The scheduling policy is field 41 (SCHED_RR = 2), its priority field 40.
protection() {
  threads=0 flushers=0 realtime=0
  for t in /proc/"$server"/task/*; do
    fields=$(sed 's/.*) //' "$t/stat" 2>/dev/null)
    flags=$(echo "$fields" | awk '{print $7}')
    [ -n "$flags" ] || continue
    threads=$((threads + 1))
    if [ $((flags & 0x80000)) != 0 ] && [ $((flags & 0x100000)) != 0 ]; then
      flushers=$((flushers + 1))
    else
      say "server thread ${t##*/} ($(cat "$t/comm")) has no PR_SET_IO_FLUSHER (flags $flags)"
    fi
    if [ "$(echo "$fields" | awk '{print $39 "/" $38}')" = 2/1 ]; then
      realtime=$((realtime + 1))
    else
      say "server thread ${t##*/} ($(cat "$t/comm")) is not SCHED_RR 1 (policy/priority $(echo "$fields" | awk '{print $39 "/" $38}'))"
    fi
  done
  say "${1:-}server pid $server, oom_score_adj $(cat /proc/$server/oom_score_adj), threads $threads, io-flusher threads $flushers, SCHED_RR threads $realtime"
}
# At start (the pool's workers may still be starting: they are made after the socket listens), and again after the
# workloads, when every thread the run made exists: that second line is the one the test checks.
protection "at start: "
say "server at start: VmRSS $(status_kb $server VmRSS) kB, VmLck $(status_kb $server VmLck) kB, resident locked $(locked_kb $server) kB"
# Where the server's code is mapped: a user RIP in a stack dump (sysrq-t) maps to a function with this and nm.
grep swapnbd-server "/proc/$server/maps" | sed "s/^/$tag: map /"
[ "$log" = "$run/server.log" ] && grep -E '\[90[0-9]\]' "$log" | sed "s/^/$tag: server log: /"

dev=$(swap-attach.sh --persist --name wm --connections 2) ||
  { cat "$run/server.log" "$run"/client-wm.log 2>/dev/null; say "FAIL swap-attach.sh --persist"; exit 1; }
[ -b "$dev" ] || { say "FAIL swap-attach.sh gave no device ('$dev')"; exit 1; }
client=$(awk -F= '$1 == "client_pid" {print $2}' "$run/attach-wm" 2>/dev/null)
say "attached $dev ($(cat "/sys/block/${dev#/dev/}/size") sectors), client pid ${client:-?}"
cat /proc/swaps

# --- workloads ----------------------------------------------------------------------------------------------------------
mkdir -p /work
mount -t tmpfs -o size=$((work + 32))m wm-work /work || { say "FAIL cannot mount the tmpfs"; exit 1; }
per=$((work / workloads))
worker() {
  k=$1
  n=$((per / chunk))
  t0=$(date +%s)
  i=0
  : >"/work/$k.sums"
  while [ $i -lt $n ]; do
    f=/work/$k.c$i
    sum=$(dd if=/dev/urandom bs=1M count="$chunk" 2>/dev/null | tee "$f" | sha256sum | cut -d' ' -f1)
    echo "$sum $f" >>"/work/$k.sums"
    i=$((i + 1))
    [ $(((i * chunk) % 32)) = 0 ] && echo "WM-WORK $k: wrote $((i * chunk))/$per MiB, swap $(swap_mib) MiB, $(($(date +%s) - t0)) s"
  done
  # Read back in random order: every page comes back from wherever reclaim put it.
  bad=0
  shuf "/work/$k.sums" >"/work/$k.order"
  j=0
  while read -r want f; do
    got=$(sha256sum <"$f" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "WM-WORK $k: checksum mismatch in $f"; bad=$((bad + 1)); }
    j=$((j + 1))
    [ $(((j * chunk) % 128)) = 0 ] && echo "WM-WORK $k: read back $((j * chunk))/$per MiB, swap $(swap_mib) MiB, $(($(date +%s) - t0)) s"
  done <"/work/$k.order"
  echo "WM-WORK $k: verified $((n * chunk))/$per MiB in $(($(date +%s) - t0)) s, $bad bad"
  [ $bad = 0 ]
}

say "workloads $workloads x $per MiB (chunk $chunk MiB), RAM $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB, no cgroup limit"
start=$(date +%s)
pids=""
k=1
while [ $k -le "$workloads" ]; do
  worker "$k" &
  pids="$pids $!"
  k=$((k + 1))
done

# Sampler and watchdog: the server's resident and locked memory under pressure, the first swap marker, and the time
# limit. Past the limit: a stack dump of every task (sysrq-t on the console) and of the server's threads, then the
# workloads are ended so the script reports.
rss_max=0 lck_max=0 locked_max=0 buffers_max=0 gap_max=0 samples=0 marked=0 timed_out=0 dumped=0
# Every server thread's state, wait channel and kernel stack, and the server's last log lines: what it waits on.
dump_server() {
  echo "--- $tag: server threads ($1)"
  for t in /proc/"$server"/task/*; do
    echo "--- thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)): state $(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $1}'), wchan $(cat "$t/wchan" 2>/dev/null)"
    cat "$t/stack" 2>/dev/null
  done
  [ "$log" = "$run/server.log" ] && { echo "--- $tag: server log tail"; tail -n 30 "$log"; }
}
uptime_cs() { awk '{split($1, t, "."); print t[1] * 100 + t[2]}' /proc/uptime; }
last=$(uptime_cs)
while :; do
  # The longest gap between two passes of this loop (a 1 s sleep plus a few reads): how long user space stalled.
  now=$(uptime_cs)
  gap=$(((now - last) * 10))
  [ "$gap" -gt "$gap_max" ] && gap_max=$gap
  last=$now
  # Buffers: the page cache of block devices, /dev/vda's included (what buffered backup I/O would keep in RAM).
  b=$(awk '$1 == "Buffers:" {print $2}' /proc/meminfo)
  [ "${b:-0}" -gt "$buffers_max" ] && buffers_max=$b
  alive=0
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 1 ] || break
  kill -0 "$server" 2>/dev/null || { fail "the server died while swapping"; break; }
  r=$(status_kb "$server" VmRSS)
  l=$(status_kb "$server" VmLck)
  [ "${r:-0}" -gt "$rss_max" ] && rss_max=$r
  [ "${l:-0}" -gt "$lck_max" ] && lck_max=$l
  # smaps_rollup walks the page tables under mmap_lock: every 10th sample only.
  if [ $((samples % 10)) = 0 ]; then
    lk=$(locked_kb "$server")
    [ "${lk:-0}" -gt "$locked_max" ] && locked_max=$lk
  fi
  samples=$((samples + 1))
  if [ $marked = 0 ] && [ "$(swap_mib)" -ge 64 ]; then
    say "swapping, swap used $(swap_mib) MiB"
    marked=1
  fi
  # The first hung-task report: how the server stands at that moment.
  if [ $dumped = 0 ] && dmesg | grep -q 'blocked for more than'; then
    dumped=1
    dump_server "a task hung"
  fi
  if [ $(($(date +%s) - start)) -gt "$limit" ]; then
    timed_out=1
    fail "the workloads did not finish within $limit s"
    dump_server "time limit"
    echo t >/proc/sysrq-trigger
    for p in $pids; do kill "$p" 2>/dev/null; done
    break
  fi
  sleep 1
done
for p in $pids; do wait "$p" || [ $timed_out = 1 ] || fail "workload (pid $p) failed or found a bad page"; done
elapsed=$(($(date +%s) - start))
say "server under pressure: VmRSS max $rss_max kB, VmLck max $lck_max kB, samples $samples, resident locked max $locked_max kB, Buffers max $buffers_max kB, longest sampler gap $gap_max ms"
say "workloads done in $elapsed s (limit $limit s)"
protection
[ $marked = 1 ] || fail "the guest never used 64 MiB of swap"

# --- kernel log, teardown -----------------------------------------------------------------------------------------------
swap_errors=$(dmesg | grep -cE '(Read|Write)-error on swap-device')
read_errors=$(dmesg | grep -c 'Read-error on swap-device')
disk_errors=$(dmesg | grep -c 'I/O error, dev vda')
hung=$(dmesg | grep -c 'blocked for more than')
ooms=$(dmesg | grep -cE 'Out of memory|oom-kill')
say "kernel log: swap-errors $swap_errors, hung-tasks $hung, oom-kills $ooms, backup-disk-errors $disk_errors"
dmesg | grep -E 'swap-device|blocked for more than|Out of memory|oom-kill|Killed process|nbd|dev vda' | tail -n 40
if [ "${WM_EXPECT_WRITE_ERRORS:-0}" = 1 ]; then
  # A failing backup disk (run-guest.sh --blkdebug): its errors reach the kernel as swap write errors, the pages
  # stay in RAM (the kernel keeps them dirty and tries again), and nothing is ever read back wrong.
  [ "$disk_errors" -gt 0 ] || fail "the backup disk never failed (no 'I/O error, dev vda' in the kernel log)"
  [ "$swap_errors" -gt 0 ] || fail "the backup disk failed but the kernel saw no swap write error"
  [ "$read_errors" = 0 ] || fail "swap read errors in the kernel log"
else
  [ "$swap_errors" = 0 ] || fail "swap I/O errors in the kernel log"
fi
[ "$hung" = 0 ] || fail "hung-task reports in the kernel log"
kill -0 "$server" 2>/dev/null || fail "the server is gone"
[ -z "$client" ] || kill -0 "$client" 2>/dev/null || fail "the client (pid $client) is gone"

echo "--- status file"
cat "$run/status.json" 2>/dev/null
echo
rm -rf /work/*
umount /work
echo "$min_free_boot" >/proc/sys/vm/min_free_kbytes
swap-detach.sh --name wm || fail "swap-detach.sh"
kill -TERM "$server"
i=0
while kill -0 "$server" 2>/dev/null && [ $i -lt 150 ]; do
  sleep 0.1
  i=$((i + 1))
done
kill -0 "$server" 2>/dev/null && fail "the server did not stop on SIGTERM"
if [ "$log" = "$run/server.log" ]; then
  echo "--- server log: placements"
  grep -E 'placed on|unmapped from' "$log" | tail -n 40
  echo "--- server log (tail)"
  tail -n 60 "$log"
fi
[ $status = 0 ] && say PASS
exit $status
