#!/usr/bin/env bash
# Whole-system benchmark: fio's nbd engine against swapnbd-server (memory backend) and against nbdkit's memory
# plugin, in the same run, over TCP and a Unix socket, with 1 and 4 connections. Prints one markdown table.
#
#   scripts/bench.sh [--quick] [--out FILE]
#
#   --quick      1-second cells and a reduced matrix, for smoke testing the script itself
#   --out FILE   also write the report (table + RSS) to FILE
#   env BENCH_SECONDS   seconds measured per cell (default 5; 1 with --quick)
#   env BENCH_RAMP      seconds of unmeasured warm-up per cell (default 1; 0 with --quick)
#
# All traffic stays on 127.0.0.1 and Unix sockets in a private temp dir.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0
out_file=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out_file=${2:?--out needs a file}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ $quick -eq 1 ]]; then
  seconds=${BENCH_SECONDS:-1}
  ramp=${BENCH_RAMP:-0}
else
  seconds=${BENCH_SECONDS:-5}
  ramp=${BENCH_RAMP:-1}
fi

export_size=1G
# Fixed working set: every cell touches the same 512 MiB, split evenly between connections.
working_set_mib=512

# --- prerequisites -----------------------------------------------------------------------------------------
need=()
command -v fio >/dev/null || need+=(fio)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v nbdinfo >/dev/null || need+=(libnbd-bin)
command -v jq >/dev/null || need+=(jq)
if [[ ${#need[@]} -gt 0 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "bench.sh: installing ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  else
    echo "bench.sh: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
# Debian's fio only has the nbd engine when built against libnbd; fail early with a clear message otherwise.
if ! fio --enghelp=nbd >/dev/null 2>&1; then
  echo "bench.sh: this fio has no nbd ioengine" >&2
  exit 1
fi
if [[ ! -x out/swapnbd-server ]]; then
  echo "bench.sh: out/swapnbd-server missing, building it" >&2
  scripts/build.sh >&2
fi

# --- processes and cleanup ---------------------------------------------------------------------------------
work=$(mktemp -d /tmp/swapnbd-bench.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # SIGTERM first so swapnbd-server shuts down gracefully and removes its socket; SIGKILL whatever is left.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Asks the kernel for free ports (bind to port 0) while holding all of them, so they are distinct.
read -r port_swap port_kit < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

sock_swap=$work/swapnbd.sock
sock_kit=$work/nbdkit.sock

# Started directly (no subshell) so $! is the server itself and the trap can signal it.
out/swapnbd-server --backend memory --size 1GiB --listen "127.0.0.1:$port_swap" --socket "$sock_swap" \
  --log-level Warning >"$work/swapnbd.log" 2>&1 &
pid_swap=$!
pids+=("$pid_swap")
# nbdkit cannot listen on TCP and a Unix socket at once (-p and -U are exclusive), so it runs twice; each
# instance is pre-filled on its own. Default thread model (parallel, 16 threads per connection).
nbdkit -f --exit-with-parent -p "$port_kit" -i 127.0.0.1 memory "$export_size" >"$work/nbdkit-tcp.log" 2>&1 &
pid_kit_tcp=$!
pids+=("$pid_kit_tcp")
nbdkit -f --exit-with-parent -U "$sock_kit" memory "$export_size" >"$work/nbdkit-unix.log" 2>&1 &
pid_kit_unix=$!
pids+=("$pid_kit_unix")

uri_of() { # server transport
  case "$1/$2" in
    swapnbd/tcp) echo "nbd://127.0.0.1:$port_swap" ;;
    swapnbd/unix) echo "nbd+unix:///?socket=$sock_swap" ;;
    nbdkit/tcp) echo "nbd://127.0.0.1:$port_kit" ;;
    nbdkit/unix) echo "nbd+unix:///?socket=$sock_kit" ;;
  esac
}

wait_ready() { # uri log
  for _ in $(seq 100); do
    nbdinfo --size "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench.sh: server at $1 did not come up; its log:" >&2
  cat "$2" >&2
  exit 1
}
wait_ready "$(uri_of swapnbd tcp)" "$work/swapnbd.log"
wait_ready "$(uri_of swapnbd unix)" "$work/swapnbd.log"
wait_ready "$(uri_of nbdkit tcp)" "$work/nbdkit-tcp.log"
wait_ready "$(uri_of nbdkit unix)" "$work/nbdkit-unix.log"

# --- pre-fill ------------------------------------------------------------------------------------------------
# Reading holes costs neither server anything, so the working set is written once before any read cell.
# swapnbd serves one device on both listeners, so one pass fills it for both transports.
prefill() { # uri
  fio --name=prefill --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=8 --size="${working_set_mib}M" \
    --output-format=json --output="$work/prefill.json" >"$work/prefill.log" 2>&1 \
    || { echo "bench.sh: pre-fill of $1 failed:" >&2; cat "$work/prefill.log" >&2; exit 1; }
}
prefill "$(uri_of swapnbd tcp)"
prefill "$(uri_of nbdkit tcp)"
prefill "$(uri_of nbdkit unix)"

# --- one cell ------------------------------------------------------------------------------------------------
failures=0
# Runs one fio cell; prints "iops bw_bytes p99_ns" (or "fail fail fail").
run_cell() { # uri rw bs qd conns direction
  local uri=$1 rw=$2 bs=$3 qd=$4 conns=$5 dir=$6
  local slice=$((working_set_mib / conns))
  # The nbd engine opens one libnbd connection per job, so N connections = numjobs=N, each with iodepth=qd
  # (QD is per connection). offset_increment gives every job its own slice of the working set.
  if fio --name=cell --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" --iodepth="$qd" \
      --numjobs="$conns" --size="${slice}M" --offset_increment="${slice}M" --norandommap --randrepeat=0 \
      --time_based --runtime="$seconds" --ramp_time="$ramp" --group_reporting \
      --output-format=json --output="$work/cell.json" >"$work/cell.log" 2>&1; then
    jq -r --arg d "$dir" '.jobs[0][$d] | "\(.iops) \(.bw_bytes) \(.clat_ns.percentile["99.000000"] // 0)"' "$work/cell.json"
  else
    echo "bench.sh: fio failed for $uri $rw $bs QD$qd x$conns:" >&2
    tail -n 5 "$work/cell.log" >&2
    echo "fail fail fail"
  fi
}

# --- matrix --------------------------------------------------------------------------------------------------
# label|fio rw|bs|qd|direction in fio's JSON
if [[ $quick -eq 1 ]]; then
  workloads=("4K randread QD32|randread|4k|32|read" "128K write QD8|write|128k|8|write")
else
  workloads=(
    "4K randread QD1|randread|4k|1|read"
    "4K randread QD32|randread|4k|32|read"
    "4K randwrite QD1|randwrite|4k|1|write"
    "4K randwrite QD32|randwrite|4k|32|write"
    "128K read QD8|read|128k|8|read"
    "128K write QD8|write|128k|8|write"
  )
fi

fmt_iops() { [[ $1 == fail ]] && echo fail || awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
fmt_mbs() { [[ $1 == fail ]] && echo fail || awk -v v="$1" 'BEGIN { printf "%.1f", v / 1e6 }'; }
fmt_us() { [[ $1 == fail ]] && echo fail || awk -v v="$1" 'BEGIN { printf "%.0f", v / 1e3 }'; }
fmt_ratio() { [[ $1 == fail || $2 == fail ]] && echo "-" || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# Other work on the machine skews everything; the load before and after goes into the report.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rows=$(( ${#workloads[@]} * 4 ))
echo "bench.sh: $rows rows x 2 servers, ${seconds}s + ${ramp}s warm-up per cell" >&2
table=$'| Workload | Transport | Conns | SwapNbd IOPS | nbdkit IOPS | Ratio | SwapNbd MB/s | SwapNbd p99 µs | nbdkit p99 µs |\n'
table+=$'|---|---|--:|--:|--:|--:|--:|--:|--:|\n'
row=0
for w in "${workloads[@]}"; do
  IFS='|' read -r label rw bs qd dir <<<"$w"
  for transport in tcp unix; do
    for conns in 1 4; do
      # Alternate which server goes first so neither always inherits the other's cache and CPU state.
      if (( row % 2 == 0 )); then order=(swapnbd nbdkit); else order=(nbdkit swapnbd); fi
      for server in "${order[@]}"; do
        read -r iops bw p99 < <(run_cell "$(uri_of "$server" "$transport")" "$rw" "$bs" "$qd" "$conns" "$dir")
        [[ $iops == fail ]] && failures=$((failures + 1))
        printf -v "${server}_iops" '%s' "$iops"
        printf -v "${server}_bw" '%s' "$bw"
        printf -v "${server}_p99" '%s' "$p99"
      done
      name=TCP; [[ $transport == unix ]] && name=Unix
      line="| $label | $name | $conns | $(fmt_iops "$swapnbd_iops") | $(fmt_iops "$nbdkit_iops") | $(fmt_ratio "$swapnbd_iops" "$nbdkit_iops") | $(fmt_mbs "$swapnbd_bw") | $(fmt_us "$swapnbd_p99") | $(fmt_us "$nbdkit_p99") |"
      table+="$line"$'\n'
      row=$((row + 1))
      echo "bench.sh: [$row/$rows] $line" >&2
    done
  done
done

rss_of() { # pid -> "RSS MiB (peak MiB)"
  awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%.0f MiB (peak %.0f MiB)", r / 1024, h / 1024 }' "/proc/$1/status"
}
kill -0 "$pid_swap" 2>/dev/null || { echo "bench.sh: swapnbd-server died during the run; its log:" >&2; cat "$work/swapnbd.log" >&2; exit 1; }

report=$(
  echo "SwapNbd $(git rev-parse --short HEAD 2>/dev/null || echo '?') vs nbdkit $(nbdkit --version | awk '{print $2}'), $(fio --version)," \
    "$(nproc) CPUs, load $load_start before / $(cut -d' ' -f1-3 /proc/loadavg) after, ${seconds}s per cell after ${ramp}s warm-up," \
    "${working_set_mib} MiB working set (pre-filled) on a ${export_size}iB export; QD is per connection."
  echo
  printf '%s' "$table"
  echo
  echo "swapnbd-server RSS after the run: $(rss_of "$pid_swap"); nbdkit (TCP instance): $(rss_of "$pid_kit_tcp")."
)
echo "$report"
if [[ -n $out_file ]]; then
  echo "$report" >"$out_file"
fi
if [[ $failures -gt 0 ]]; then
  echo "bench.sh: $failures cells failed" >&2
  exit 1
fi
