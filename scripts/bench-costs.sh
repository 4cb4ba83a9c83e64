#!/usr/bin/env bash
# The per-request costs that docs/distance-model.md builds on, measured on this machine in a few minutes, as JSON
# for scripts/distance-model.py:
#   - fio's nbd engine, 4K random reads at QD1 over the Unix socket (mean, p50, p99 µs) against swapnbd-server with
#     the memory backend (no daemon), in slab mode on three swapnbd-daemon donors on loopback, and in slab mode on
#     three donors behind the veth links of a network lab (no loss); the CPU the server and the donors spent per
#     request in the loopback run (/proc/PID/stat);
#   - the round trip of a ping on loopback and on a lab link (the kernel's share of a round trip, no process wakes);
#   - 4K random reads at QD1 of a file in the backup file's directory, O_DIRECT (the disk) and cached (page cache);
#   - small swap runs (swapnbd-memtest in a memory cgroup, as bench-swap.sh runs it) through the loopback system,
#     on a swap file on the local disk, and without a limit: seconds, pages swapped in and out (/proc/vmstat), read
#     and write requests that reached the swap device (/sys/block/DEV/stat), i.e. how many round trips the
#     swap-ins took.
#
#   scripts/bench-costs.sh [--seconds N] [--swap-size SIZE] [--factor F] [--out FILE]
#
#   --seconds N      seconds per fio run (default 10)
#   --swap-size SIZE the swap run's working set (default 256MiB; 0 skips the swap run)
#   --factor F       working set / cgroup limit of the swap run (default 4, as bench-swap.sh)
#   --out FILE       also write the JSON to FILE
#
# Run as root on a quiet machine (other work inflates every figure). Traffic stays on loopback, Unix sockets and the
# lab's namespaces (198.18.0.0/15), all removed on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/swap-env.sh
. "$root/scripts/lib/swap-env.sh"
# shellcheck source=lib/netlab-env.sh  # sourced by swap-env.sh already; named here for its own use
. "$root/scripts/lib/netlab-env.sh"

seconds=10 swap_size=256MiB factor=4 out=""
while (($#)); do
  case $1 in
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --swap-size) swap_size=${2:?--swap-size needs a value}; shift 2 ;;
    --factor) factor=${2:?--factor needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a file}; shift 2 ;;
    *) die_with 2 "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die_with 2 "--seconds '$seconds' is not a whole number ≥ 1"
[[ $factor =~ ^[1-9][0-9]*$ ]] || die_with 2 "--factor '$factor' is not a whole number ≥ 1"
swap_bytes=0
[[ $swap_size == 0 ]] || swap_bytes=$(parse_bytes "$swap_size") || die_with 2 "--swap-size '$swap_size' is not a size"
is_root || die "run as root (network namespaces, swapon, cgroups)"
need_packages fio:fio jq:jq ping:iputils-ping
for exe in swapnbd-server swapnbd-daemon swapnbd-memtest; do
  [[ -x $root/out/$exe ]] || die "out/$exe is missing; run scripts/build.sh"
done

work=$(mktemp -d /tmp/swapnbd-costs.XXXXXX)
name=costs-$$
daemon_pids=() server_pid="" mem_pid="" cgroup="" attached="" swapfile=""
stop_system() {
  stop_pids "$server_pid" "$mem_pid"
  stop_pids "${daemon_pids[@]}"
  server_pid="" mem_pid="" daemon_pids=()
  rm -f "$work/backup.img" "$work/status.json"
}
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM HUP
  swapenv_remove_cgroup
  if [[ -n $attached ]]; then "$root/scripts/swap-detach.sh" --name "$attached" >&2 || log "detach failed; see $work"; fi
  if [[ -n $swapfile ]]; then swapoff "$swapfile" 2>/dev/null; rm -f "$swapfile"; fi
  stop_system
  labenv_down
  [[ -n $attached ]] || rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; log interrupted; exit 130' INT TERM HUP

# fio_fill URI: writes the 256 MiB that fio_qd1 reads (holes would cost the servers nothing to read), then waits for
# the slab mode's background copies of newly placed slabs to their daemons.
fio_fill() {
  fio --name=fill --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=8 --size=256M --output-format=json \
    --output="$work/fill.json" >"$work/fio.log" 2>&1 || { log "fio pre-write of $1 failed: $(tail -n 5 "$work/fio.log")"; return 1; }
  sync
  sleep 2
}
# fio_qd1 URI: 4K random reads at QD1 over the pre-written 256 MiB, no warm-up (the pre-write warmed the path, and the
# CPU sampled around it then belongs to the measured requests alone); prints JSON {mean_us, p50_us, p99_us, ios}.
fio_qd1() {
  fio --name=qd1 --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth=1 --size=256M --norandommap --randrepeat=0 \
    --time_based --runtime="$seconds" --output-format=json --output="$work/qd1.json" >"$work/fio.log" 2>&1 ||
    { log "fio QD1 against $1 failed: $(tail -n 5 "$work/fio.log")"; return 1; }
  jq -c '.jobs[0].read | { mean_us: (.clat_ns.mean / 1000), p50_us: (.clat_ns.percentile["50.000000"] / 1000),
    p99_us: (.clat_ns.percentile["99.000000"] / 1000), ios: .total_ios }' "$work/qd1.json"
}

# --- the server alone (memory backend) -------------------------------------------------------------------------
"$root/out/swapnbd-server" --backend memory --size 1GiB --socket "$work/mem.sock" --listen "" --log-level Warning \
  >"$work/mem.log" 2>&1 </dev/null &
mem_pid=$!
wait_for_socket "$work/mem.sock" 10 "$mem_pid" || die "swapnbd-server (memory) did not start: $(cat "$work/mem.log")"
log "memory backend: fio 4K randread QD1, ${seconds}s"
fio_fill "nbd+unix:///?socket=$work/mem.sock"
memory=$(fio_qd1 "nbd+unix:///?socket=$work/mem.sock")
stop_system

# --- slab mode, donors on loopback; CPU per request ----------------------------------------------------------------
swapenv_start_system 1GiB 64MiB
swapenv_wait_system
log "slab mode, donors on loopback: fio 4K randread QD1, ${seconds}s"
hz=$(getconf CLK_TCK)
fio_fill "nbd+unix:///?socket=$work/nbd.sock"
s0=$(cpu_ticks "$server_pid") d0=$(cpu_ticks "${daemon_pids[@]}")
slab_lo=$(fio_qd1 "nbd+unix:///?socket=$work/nbd.sock")
s1=$(cpu_ticks "$server_pid") d1=$(cpu_ticks "${daemon_pids[@]}")
ios=$(jq -r .ios <<<"$slab_lo")
# Includes the server's polling for the next request (--poll-us, 50 µs after each reply) and every background
# thread (status file, heartbeats): an upper bound of the work a request makes. Clock ticks: ±1 tick (10 ms) in all.
cpu=$(jq -nc --argjson s $((s1 - s0)) --argjson d $((d1 - d0)) --argjson hz "$hz" --argjson n "$ios" \
  '{ server_us_per_request: ($s / $hz * 1e6 / $n), donors_us_per_request: ($d / $hz * 1e6 / $n), requests: $n }')
remote=$(jq -c '.slabs | { bytes_written: .bytesWritten, bytes_remote: .bytesRemote }' "$work/status.json")
stop_system

# --- slab mode, donors behind the lab's links ------------------------------------------------------------------
labenv_up 3
swapenv_start_system 1GiB 64MiB
swapenv_wait_system
log "slab mode, donors in network lab $labenv_lab: fio 4K randread QD1, ${seconds}s"
fio_fill "nbd+unix:///?socket=$work/nbd.sock"
slab_lab=$(fio_qd1 "nbd+unix:///?socket=$work/nbd.sock")
stop_system
ping_avg() { # [NS] ADDR: the mean round trip of 500 pings, µs
  local -a in_ns=()
  (($# == 1)) || { in_ns=(ip netns exec "$1"); shift; }
  "${in_ns[@]}" ping -q -n -c 500 -i 0.002 "$1" | awk -F/ '/^rtt|^round-trip/ { printf "%.1f", $5 * 1000 }'
}
ping_lo=$(ping_avg 127.0.0.1)
ping_lab=$(ping_avg "$(labenv_ns srv)" "$(labenv_addr 1)")
labenv_down

# --- the disk under the backup file --------------------------------------------------------------------------
log "disk: 4K randread QD1 on a file in $work, O_DIRECT and cached"
disk_json() { # DIRECT
  fio --name=disk --filename="$work/disk.img" --size=256M --rw=randread --bs=4k --iodepth=1 --ioengine=psync \
    --direct="$1" --invalidate=0 --time_based --runtime="$seconds" --ramp_time=1 --output-format=json --output="$work/disk.json" >"$work/fio.log" 2>&1 ||
    { log "fio on $work/disk.img failed: $(tail -n 5 "$work/fio.log")"; return 1; }
  jq -c '.jobs[0].read | { mean_us: (.clat_ns.mean / 1000), p50_us: (.clat_ns.percentile["50.000000"] / 1000),
    p99_us: (.clat_ns.percentile["99.000000"] / 1000) }' "$work/disk.json"
}
fio --name=mk --filename="$work/disk.img" --size=256M --rw=write --bs=1M --direct=1 >"$work/fio.log" 2>&1
disk_direct=$(disk_json 1)
cat "$work/disk.img" >/dev/null # every page in the page cache before the cached run (--invalidate=0 keeps them)
disk_cached=$(disk_json 0)
rm -f "$work/disk.img"

# --- small swap runs: through the loopback system, on a swap file, without a limit ------------------------------
# swap_run KIND: swapnbd | file | nolimit; leaves JSON in swap_result: the run's seconds, pages swapped in and out
# (/proc/vmstat: the whole machine, so keep it quiet) and the read and write requests that reached the swap device.
# Not in a subshell: what it attaches and starts must stay known to the cleanup.
swap_run() {
  local kind=$1 limit=$((swap_bytes / factor / 4096 * 4096)) dev="" line in0 in1 out0 out1 r0=0 r1=0 rs0=0 rs1=0 w0=0 w1=0 ws0=0 ws1=0
  local export_size=$(((swap_bytes + (512 << 20)) / (64 << 20) * (64 << 20)))
  case $kind in
    swapnbd)
      swapenv_start_system "$export_size" 64MiB
      swapenv_wait_system
      dev=$("$root/scripts/swap-attach.sh" --socket "$work/nbd.sock" --name "$name" --priority 32767)
      attached=$name
      ;;
    file)
      dev=$work/swapfile
      fallocate -l "$export_size" "$dev"
      chmod 600 "$dev"
      mkswap "$dev" >/dev/null
      swapon -p 32767 "$dev"
      swapfile=$dev
      ;;
    nolimit) limit=max ;;
  esac
  # The block device that the swap requests reach: the loop or nbd device, or the one under the swap file.
  local blk=""
  if [[ $kind == swapnbd ]]; then
    blk=${dev#/dev/}
  elif [[ $kind == file ]]; then
    blk=$(lsblk -no PKNAME "$(df --output=source "$work" | tail -1)" 2>/dev/null | head -n 1)
    [[ -n $blk ]] || blk=$(basename "$(df --output=source "$work" | tail -1)")
    [[ -f /sys/block/$blk/stat ]] || { log "no block device found under $work: the file run counts no requests"; blk=""; }
  fi
  vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
  in0=$(vmstat pswpin) out0=$(vmstat pswpout)
  [[ -z $blk ]] || read -r r0 _ rs0 _ w0 _ ws0 _ <"/sys/block/$blk/stat"
  swapenv_make_cgroup "$name-$kind" "$limit"
  log "swap run ($kind): swapnbd-memtest --size $swap_size in $cgroup ($cgroup_kind = $limit)${dev:+ through $dev}"
  line=$(swapenv_run_in_cgroup "$root/out/swapnbd-memtest" --size "$swap_bytes" --seed 42) || die "the swap workload failed: $line"
  in1=$(vmstat pswpin) out1=$(vmstat pswpout)
  [[ -z $blk ]] || read -r r1 _ rs1 _ w1 _ ws1 _ <"/sys/block/$blk/stat"
  swapenv_remove_cgroup
  case $kind in
    swapnbd) "$root/scripts/swap-detach.sh" --name "$name" >&2; attached=""; stop_system ;;
    file) swapoff "$dev"; rm -f "$dev"; swapfile="" ;;
  esac
  swap_result=$(jq -nc --arg line "$line" --arg dev "${blk:+/sys/block/$blk}" --argjson limit "${limit/max/0}" \
    --argjson pin $((in1 - in0)) --argjson pout $((out1 - out0)) --argjson r $((r1 - r0)) --argjson rs $((rs1 - rs0)) \
    --argjson w $((w1 - w0)) --argjson ws $((ws1 - ws0)) \
    '{ limit_bytes: $limit, device: $dev, memtest: $line,
       seconds: ($line | capture("seconds=(?<s>[0-9.]+)").s | tonumber),
       pages_swapped_in: $pin, pages_swapped_out: $pout, device_reads: $r, device_read_sectors: $rs,
       device_writes: $w, device_write_sectors: $ws }')
}
swap='null'
if ((swap_bytes > 0)); then
  swap_run swapnbd
  swap_nbd=$swap_result
  swap_run file
  swap_file=$swap_result
  swap_run nolimit
  swap_nolimit=$swap_result
  swap=$(jq -nc --argjson size "$swap_bytes" --argjson factor "$factor" --argjson a "$swap_nbd" --argjson b "$swap_file" \
    --argjson c "$swap_nolimit" '{ size_bytes: $size, factor: $factor, swapnbd_loopback: $a, file: $b, nolimit: $c }')
fi

result=$(jq -n --argjson memory "$memory" --argjson slab_lo "$slab_lo" --argjson slab_lab "$slab_lab" --argjson cpu "$cpu" \
  --argjson remote "$remote" --argjson ping_lo "$ping_lo" --argjson ping_lab "$ping_lab" --argjson disk_direct "$disk_direct" \
  --argjson disk_cached "$disk_cached" --argjson swap "$swap" --arg machine "$(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg build "$(cat "$root/out/build-info" 2>/dev/null || echo unknown)" --arg disk "$(df --output=source "$work" | tail -1)" \
  '{ machine: $machine, build: $build,
     fio_4k_randread_qd1_unix: { memory_backend: $memory, slab_loopback: $slab_lo, slab_lab_link: $slab_lab },
     slab_loopback_cpu: $cpu, slab_loopback_status: $remote,
     ping_rtt_us: { loopback: $ping_lo, lab_link: $ping_lab },
     disk_4k_randread_qd1: { device: $disk, direct: $disk_direct, cached: $disk_cached },
     swap_run: $swap }')
echo "$result"
[[ -z $out ]] || echo "$result" >"$out"
