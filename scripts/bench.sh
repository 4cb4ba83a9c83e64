#!/usr/bin/env bash
# Whole-system benchmark: fio's nbd engine against swapnbd-server (memory backend) and against nbdkit's memory
# plugin, in the same run, over TCP and a Unix socket, with 1 and 4 connections. Prints one markdown table.
# --full instead measures the full slab path (swapnbd-server in slab mode on 2 swapnbd-daemon donors + backup
# file) against a two-hop nbdkit chain (nbdkit nbd plugin -> nbdkit memory plugin), same matrix.
#
#   scripts/bench.sh [--full | --all] [--quick] [--out FILE]
#
#   (default)    memory backend vs nbdkit memory plugin
#   --full       only the full slab path vs the two-hop nbdkit chain
#   --all        both sections, one after the other (each section's processes are stopped before the next)
#   --quick      1-second cells and a reduced matrix, for smoke testing the script itself
#   --out FILE   also write the report (tables + RSS) to FILE
#   env BENCH_SECONDS   seconds measured per cell (default 5; 1 with --quick)
#   env BENCH_RAMP      seconds of unmeasured warm-up per cell (default 1; 0 with --quick)
#   env BENCH_SLAB_SIZE slab size for --full (default 256MiB, so both daemons get a slab)
#   env BENCH_ROWS      only the rows whose "Workload|Transport|Conns" matches this extended regex,
#                       e.g. BENCH_ROWS='^128K write.*\|Unix\|4$' (default: every row)
#
# All traffic stays on 127.0.0.1 and Unix sockets in a private temp dir.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0
out_file=""
sections=(memory)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --full) sections=(full); shift ;;
    --all) sections=(memory full); shift ;;
    --out) out_file=${2:?--out needs a file}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
if [[ ! -x out/swapnbd-server || ! -x out/swapnbd-daemon ]]; then
  echo "bench.sh: out/swapnbd-server or out/swapnbd-daemon missing, building them" >&2
  scripts/build.sh >&2
fi

# --- processes and cleanup ---------------------------------------------------------------------------------
work=$(mktemp -d /tmp/swapnbd-bench.XXXXXX)
pids=()
# SIGTERM first so swapnbd-server shuts down gracefully and removes its socket; SIGKILL whatever is left.
stop_pids() { # pid...
  local pid alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ ${#pids[@]} -gt 0 ]] && stop_pids "${pids[@]}"
  wait 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Asks the kernel for N free ports (bind to port 0) while holding all of them, so they are distinct.
free_ports() { # n
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))' "$1"
}

# Every server under test is a name with a TCP and a Unix-socket URI.
declare -A tcp_uri unix_uri
uri_of() { # server transport
  if [[ $2 == tcp ]]; then echo "${tcp_uri[$1]}"; else echo "${unix_uri[$1]}"; fi
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

# Waits until something listens on 127.0.0.1:port (checked with ss, so the listener sees no stray connection).
wait_listening() { # port log
  for _ in $(seq 100); do
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  echo "bench.sh: nothing listens on 127.0.0.1:$1; log:" >&2
  cat "$2" >&2
  exit 1
}

# Reading holes costs neither server anything, so the working set is written once before any read cell.
prefill() { # uri
  fio --name=prefill --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=8 --size="${working_set_mib}M" \
    --output-format=json --output="$work/prefill.json" >"$work/prefill.log" 2>&1 \
    || { echo "bench.sh: pre-fill of $1 failed:" >&2; cat "$work/prefill.log" >&2; exit 1; }
}

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

# Runs the whole matrix against two servers (names in tcp_uri/unix_uri); leaves the markdown table in $table.
run_matrix() { # ours peer ours_label peer_label
  local ours=$1 peer=$2 ours_label=$3 peer_label=$4
  local rows=$(( ${#workloads[@]} * 4 )) row=0 w label rw bs qd dir transport conns server name line
  local -a order
  local -A r_iops r_bw r_p99
  echo "bench.sh: $rows rows x 2 servers ($ours_label vs $peer_label), ${seconds}s + ${ramp}s warm-up per cell" >&2
  table="| Workload | Transport | Conns | $ours_label IOPS | $peer_label IOPS | Ratio | $ours_label MB/s | $ours_label p99 µs | $peer_label p99 µs |"$'\n'
  table+=$'|---|---|--:|--:|--:|--:|--:|--:|--:|\n'
  for w in "${workloads[@]}"; do
    IFS='|' read -r label rw bs qd dir <<<"$w"
    for transport in tcp unix; do
      for conns in 1 4; do
        name=TCP; [[ $transport == unix ]] && name=Unix
        [[ -z ${BENCH_ROWS:-} || "$label|$name|$conns" =~ $BENCH_ROWS ]] || continue
        # Alternate which server goes first so neither always inherits the other's cache and CPU state.
        if (( row % 2 == 0 )); then order=("$ours" "$peer"); else order=("$peer" "$ours"); fi
        for server in "${order[@]}"; do
          read -r iops bw p99 < <(run_cell "$(uri_of "$server" "$transport")" "$rw" "$bs" "$qd" "$conns" "$dir")
          [[ $iops == fail ]] && failures=$((failures + 1))
          r_iops[$server]=$iops r_bw[$server]=$bw r_p99[$server]=$p99
        done
        line="| $label | $name | $conns | $(fmt_iops "${r_iops[$ours]}") | $(fmt_iops "${r_iops[$peer]}") | $(fmt_ratio "${r_iops[$ours]}" "${r_iops[$peer]}") | $(fmt_mbs "${r_bw[$ours]}") | $(fmt_us "${r_p99[$ours]}") | $(fmt_us "${r_p99[$peer]}") |"
        table+="$line"$'\n'
        row=$((row + 1))
        echo "bench.sh: [$row/$rows] $line" >&2
      done
    done
  done
}

rss_of() { # pid -> "RSS MiB (peak MiB)"
  awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%.0f MiB (peak %.0f MiB)", r / 1024, h / 1024 }' "/proc/$1/status"
}
rss_mib() { # pid -> current RSS in MiB (0 if gone)
  awk '/^VmRSS/ { printf "%.0f", $2 / 1024; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}
alive_or_die() { # pid name log
  kill -0 "$1" 2>/dev/null || { echo "bench.sh: $2 died during the run; its log:" >&2; cat "$3" >&2; exit 1; }
}
version_line() { # what is compared
  echo "SwapNbd $(git rev-parse --short HEAD 2>/dev/null || echo '?')${1:+ $1} vs nbdkit $(nbdkit --version | awk '{print $2}')${2:+ $2}, $(fio --version)," \
    "$(nproc) CPUs, load $load_start before / $(cut -d' ' -f1-3 /proc/loadavg) after, ${seconds}s per cell after ${ramp}s warm-up," \
    "${working_set_mib} MiB working set (pre-filled) on a ${export_size}iB export; QD is per connection."
}

# --- section: memory backend vs nbdkit memory plugin (the default) ----------------------------------------------
section_memory() {
  local port_swap port_kit pid_swap pid_kit_tcp pid_kit_unix
  read -r port_swap port_kit < <(free_ports 2)
  local sock_swap=$work/swapnbd.sock sock_kit=$work/nbdkit.sock
  tcp_uri[swapnbd]=nbd://127.0.0.1:$port_swap unix_uri[swapnbd]="nbd+unix:///?socket=$sock_swap"
  tcp_uri[nbdkit]=nbd://127.0.0.1:$port_kit unix_uri[nbdkit]="nbd+unix:///?socket=$sock_kit"

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

  wait_ready "$(uri_of swapnbd tcp)" "$work/swapnbd.log"
  wait_ready "$(uri_of swapnbd unix)" "$work/swapnbd.log"
  wait_ready "$(uri_of nbdkit tcp)" "$work/nbdkit-tcp.log"
  wait_ready "$(uri_of nbdkit unix)" "$work/nbdkit-unix.log"

  # swapnbd serves one device on both listeners, so one pass fills it for both transports.
  prefill "$(uri_of swapnbd tcp)"
  prefill "$(uri_of nbdkit tcp)"
  prefill "$(uri_of nbdkit unix)"

  # Other work on the machine skews everything; the load before and after goes into the report.
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  run_matrix swapnbd nbdkit SwapNbd nbdkit
  alive_or_die "$pid_swap" swapnbd-server "$work/swapnbd.log"

  section_report=$(
    version_line "" ""
    echo
    printf '%s' "$table"
    echo
    echo "swapnbd-server RSS after the run: $(rss_of "$pid_swap"); nbdkit (TCP instance): $(rss_of "$pid_kit_tcp")."
  )
  stop_pids "$pid_swap" "$pid_kit_tcp" "$pid_kit_unix"
  pids=()
}

# --- section: full slab path vs two-hop nbdkit chain (--full) ---------------------------------------------------
# Ours: swapnbd-server in slab mode, 2 swapnbd-daemon donors on 127.0.0.1, every write mirrored to a backup file.
# Slab size: BENCH_SLAB_SIZE, default 256MiB. With 1GiB the whole export is one slab, so only one daemon is ever
# used; with 256MiB the 512 MiB working set is two slabs and power-of-2-choices (freest wins) puts one on each
# daemon, which is the path we mean to measure (both donors, two server->daemon links). Measured with --quick on
# this 2-CPU VM: 1GiB and 256MiB were within the (large) noise of each other, and with 1GiB one daemon held the
# whole working set (562 MiB RSS) while the other held nothing (46 MiB), so 256MiB it is.
slab_size=${BENCH_SLAB_SIZE:-256MiB}
section_full() {
  local port_d1 port_d2 port_srv port_back port_front
  local pid_d1 pid_d2 pid_srv pid_back pid_front_tcp pid_front_unix
  read -r port_d1 port_d2 port_srv port_back port_front < <(free_ports 5)
  local sock_srv=$work/swapnbd-slab.sock sock_front=$work/nbdkit-front.sock

  out/swapnbd-daemon --listen "127.0.0.1:$port_d1" --max-memory 4GiB --headroom 512MiB --log-level Warning \
    >"$work/daemon1.log" 2>&1 &
  pid_d1=$!
  pids+=("$pid_d1")
  out/swapnbd-daemon --listen "127.0.0.1:$port_d2" --max-memory 4GiB --headroom 512MiB --log-level Warning \
    >"$work/daemon2.log" 2>&1 &
  pid_d2=$!
  pids+=("$pid_d2")
  printf '2\n127.0.0.1:%s\n127.0.0.1:%s\n' "$port_d1" "$port_d2" >"$work/portal.list"
  wait_listening "$port_d1" "$work/daemon1.log"
  wait_listening "$port_d2" "$work/daemon2.log"

  rm -f "$work/backup.img"
  out/swapnbd-server --portal "$work/portal.list" --backup-disk "$work/backup.img" --size 1GiB \
    --slab-size "$slab_size" --listen "127.0.0.1:$port_srv" --socket "$sock_srv" --log-level Warning \
    >"$work/swapnbd-slab.log" 2>&1 &
  pid_srv=$!
  pids+=("$pid_srv")
  tcp_uri[slab]=nbd://127.0.0.1:$port_srv unix_uri[slab]="nbd+unix:///?socket=$sock_srv"

  # Peer: nbdkit's memory plugin (back, TCP on 127.0.0.1) behind nbdkit's nbd plugin (front), so both sides pay a
  # client -> server -> memory-holder hop over loopback TCP. One back shared by two fronts (TCP and Unix; nbdkit
  # cannot listen on both at once), like our one device behind both listeners, so one pre-fill serves both.
  # shared=false (the nbd plugin's default for hostname/port, given explicitly): every client connection to the
  # front opens its own connection to the back, so 4 fio connections are 4 back connections, as our server
  # spreads 4 client connections over its daemon links; shared=true would funnel them through one libnbd handle.
  nbdkit -f --exit-with-parent -p "$port_back" -i 127.0.0.1 memory "$export_size" >"$work/nbdkit-back.log" 2>&1 &
  pid_back=$!
  pids+=("$pid_back")
  wait_listening "$port_back" "$work/nbdkit-back.log"
  nbdkit -f --exit-with-parent -p "$port_front" -i 127.0.0.1 nbd hostname=127.0.0.1 port="$port_back" shared=false \
    >"$work/nbdkit-front-tcp.log" 2>&1 &
  pid_front_tcp=$!
  pids+=("$pid_front_tcp")
  nbdkit -f --exit-with-parent -U "$sock_front" nbd hostname=127.0.0.1 port="$port_back" shared=false \
    >"$work/nbdkit-front-unix.log" 2>&1 &
  pid_front_unix=$!
  pids+=("$pid_front_unix")
  tcp_uri[chain]=nbd://127.0.0.1:$port_front unix_uri[chain]="nbd+unix:///?socket=$sock_front"

  wait_ready "$(uri_of slab tcp)" "$work/swapnbd-slab.log"
  wait_ready "$(uri_of slab unix)" "$work/swapnbd-slab.log"
  wait_ready "$(uri_of chain tcp)" "$work/nbdkit-front-tcp.log"
  wait_ready "$(uri_of chain unix)" "$work/nbdkit-front-unix.log"

  # The server places a slab on its first write, in the background, and copies it from the backup file; until then
  # the slab is served from disk. Pre-write the working set once on both sides, then wait until the daemons hold it
  # (their RSS together covers the working set), so both are measured warm.
  local base1 base2 held
  base1=$(rss_mib "$pid_d1") base2=$(rss_mib "$pid_d2")
  prefill "$(uri_of slab tcp)"
  prefill "$(uri_of chain tcp)"
  sleep 2
  for _ in $(seq 60); do
    held=$(( $(rss_mib "$pid_d1") - base1 + $(rss_mib "$pid_d2") - base2 ))
    (( held >= working_set_mib )) && break
    sleep 0.5
  done
  echo "bench.sh: daemons hold $((held)) MiB after the pre-write ($(rss_mib "$pid_d1") + $(rss_mib "$pid_d2") MiB RSS)" >&2
  (( held >= working_set_mib )) || echo "bench.sh: warning: daemons hold less than the ${working_set_mib} MiB working set" >&2

  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  run_matrix slab chain "SwapNbd slab" "nbdkit chain"
  alive_or_die "$pid_srv" "swapnbd-server (slab mode)" "$work/swapnbd-slab.log"
  alive_or_die "$pid_d1" "swapnbd-daemon 1" "$work/daemon1.log"
  alive_or_die "$pid_d2" "swapnbd-daemon 2" "$work/daemon2.log"

  section_report=$(
    version_line "slab path (server + 2 daemons, ${slab_size} slabs, backup file)" "chain (nbd plugin -> memory plugin)"
    echo
    printf '%s' "$table"
    echo
    echo "RSS after the run: swapnbd-server (slab mode) $(rss_of "$pid_srv"); swapnbd-daemon 1 $(rss_of "$pid_d1");" \
      "swapnbd-daemon 2 $(rss_of "$pid_d2"); nbdkit memory (back) $(rss_of "$pid_back");" \
      "nbdkit nbd (front, TCP) $(rss_of "$pid_front_tcp"); nbdkit nbd (front, Unix) $(rss_of "$pid_front_unix")."
  )
  stop_pids "$pid_srv" "$pid_front_tcp" "$pid_front_unix" "$pid_back" "$pid_d1" "$pid_d2"
  pids=()
}

# --- run -----------------------------------------------------------------------------------------------------
report=""
for section in "${sections[@]}"; do
  "section_$section"
  [[ -n $report ]] && report+=$'\n\n'
  report+=$section_report
done
echo "$report"
if [[ -n $out_file ]]; then
  echo "$report" >"$out_file"
fi
if [[ $failures -gt 0 ]]; then
  echo "bench.sh: $failures cells failed" >&2
  exit 1
fi
