#!/usr/bin/env bash
# The demo, as root on a fresh machine: installs what is missing and builds (scripts/setup.sh), starts three donor
# daemons and the server on loopback with a backup file, makes the server this machine's swap (swap-attach.sh), runs
# swapnbd-memtest in a memory cgroup four times too small for it so that most of its pages go to swap, verifies every
# page, prints where the pages went (per daemon, backup disk) and how long it took, and tears everything down in the
# safe order (workload, swapoff, detach, server, daemons), also on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/swap-env.sh
. "$root/scripts/lib/swap-env.sh"

usage() {
  cat <<'EOF'
usage: scripts/demo.sh [--size SIZE] [--touches N] [--no-build]

  --size SIZE    the workload's memory (default 1GiB); its cgroup gets a quarter of it
  --touches N    random page touches after the fill (default 50000); every page is verified at the end
  --no-build     skip scripts/setup.sh (packages and build); out/ must be built already

Run as root. Takes about two minutes with the defaults on two cores.
EOF
}

size=1GiB touches=50000 build=1
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --touches) touches=${2:?--touches needs a value}; shift 2 ;;
    --no-build) build=""; shift ;;
    *) usage >&2; die_with 2 "unknown argument '$1'" ;;
  esac
done
is_root || die "run as root (swapon, losetup, cgroups)"

say() { echo "demo: $*"; }
mib() { echo $(($1 >> 20)); }
size_bytes=$(parse_bytes "$size") || die_with 2 "'$size' is not a size"
(( size_bytes >= 16 << 20 && size_bytes % 4096 == 0 )) || die_with 2 "--size must be at least 16MiB, in whole 4KiB pages"
[[ $touches =~ ^[0-9]+$ ]] || die_with 2 "--touches '$touches' is not a count"
limit=$((size_bytes / 4))

if [[ -n $build ]]; then
  say "setup: packages and build (scripts/setup.sh)"
  "$root/scripts/setup.sh" >/dev/null
fi
for exe in swapnbd-server swapnbd-daemon swapnbd-memtest; do
  [[ -x $root/out/$exe ]] || die "out/$exe is missing; run scripts/build.sh (or drop --no-build)"
done

start=$(date +%s.%N)
work=$(mktemp -d /tmp/swapnbd-demo.XXXXXX)
name=demo-$$
daemon_pids=() server_pid="" cgroup="" attached="" monitor_pid=""

# Teardown, in the only safe order: the workload (its swapped pages are freed), swapoff + detach (the server must
# still answer while the kernel reads pages back), then the server, then the daemons.
cleanup() {
  local status=$? left=""
  set +e
  trap '' INT TERM HUP
  if [[ -n $monitor_pid ]]; then kill "$monitor_pid" 2>/dev/null; wait "$monitor_pid" 2>/dev/null; fi
  swapenv_remove_cgroup || left+=" cgroup"
  if [[ -n $attached ]]; then
    "$root/scripts/swap-detach.sh" --name "$name" || die "swap-detach.sh failed; the server stays up (pid $server_pid), run: scripts/swap-detach.sh --name $name"
  fi
  stop_pids "$server_pid"
  stop_pids "${daemon_pids[@]}"
  if ((status != 0 && status != 130)) && [[ -d $work ]]; then
    for log in "$work"/*.log; do [[ -s $log ]] && { echo "--- $log (last lines)" >&2; tail -n 20 "$log" >&2; }; done
  fi
  rm -rf "$work"
  [[ -z $left ]] && say "torn down: no swap, loop device, mount, cgroup or process of the demo left"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; say "interrupted"; exit 130' INT TERM HUP

# --- donors and server -----------------------------------------------------------------------------------------
export_size=$(( (size_bytes + (512 << 20)) / (64 << 20) * (64 << 20) ))
swapenv_start_system "$export_size" 64MiB
read -r p1 p2 p3 <<<"${daemon_ports[*]}"

pages_py=$(cat <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["slabs"]
mode = sys.argv[2]
mib = lambda b: f"{b / 2**20:7.1f} MiB"
if mode == "line":
    print(", ".join(f"{d['name']} {d['bytes'] >> 20} MiB" for d in s["daemons"]))
else:
    for d in s["daemons"]:
        state = "up  " if d["up"] else "DOWN"
        print(f"  daemon {d['name']:<21} {state} {d['slabs']:3d} slabs  {mib(d['bytes'])}")
    disk = s["backupDisk"]
    print(f"  backup disk {disk['path']}: {mib(disk['bytes'])} (a copy of every page written), {mib(disk['bytesOnlyHere'])} only there")
    print(f"  {s['slabsMapped']} of {s['slabsTotal']} slabs of {s['slabSize'] >> 20} MiB placed on daemons, {mib(s['bytesRemote'])} there in all")
PY
)
pages() { python3 -c "$pages_py" "$work/status.json" "$1"; }

swapenv_wait_system || exit 1
say "3 donor daemons on 127.0.0.1:$p1,$p2,$p3; swapnbd-server ($(mib "$export_size") MiB, 64 MiB slabs) on $work/nbd.sock," \
  "backup file $work/backup.img"

# --- swap ------------------------------------------------------------------------------------------------------
attached=1
device=$("$root/scripts/swap-attach.sh" --socket "$work/nbd.sock" --name "$name" --priority 32767)
swapped_kib() { awk -v d="$device" '$1 == d { print $4 }' /proc/swaps; }

# --- the memory-limited group ----------------------------------------------------------------------------------
swapenv_make_cgroup "$name" "$limit" || exit 1
kind=$cgroup_kind
say "workload: swapnbd-memtest --size $size --touches $touches in $cgroup ($kind = $(mib "$limit") MiB)"

# Every 5 s: how much is swapped out and where it is.
(
  while sleep 5; do
    echo "demo:   ... $(( $(swapped_kib) / 1024 )) MiB swapped out on $device; daemons: $(pages line 2>/dev/null)"
  done
) &
monitor_pid=$!

run_start=$(date +%s.%N)
set +e
summary=$(swapenv_run_in_cgroup "$root/out/swapnbd-memtest" \
  --size "$size_bytes" --touches "$touches" --seed "$$" --progress)
memtest_status=$?
set -e
run_end=$(date +%s.%N)
kill "$monitor_pid" 2>/dev/null; wait "$monitor_pid" 2>/dev/null || true
monitor_pid=""

echo "$summary"
peak=$(grep -o 'swap_peak=[0-9]*MiB' <<<"$summary" || true)
echo
echo "== where the pages went (swapnbd-server --status-file)"
pages where
echo "  the workload's own peak swap use: ${peak#swap_peak=}; on $device now: $(( $(swapped_kib) / 1024 )) MiB"
echo
seconds() { python3 -c "print(f'{$2 - $1:.1f}')"; }
say "the workload took $(seconds "$run_start" "$run_end") s; the demo $(seconds "$start" "$(date +%s.%N)") s so far (setup and build not counted)"
if ((memtest_status != 0)); then
  die "FAIL: swapnbd-memtest exited $memtest_status"
fi
say "PASS: every page of $size came back intact through swap"
