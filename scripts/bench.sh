#!/usr/bin/env bash
# Whole-system benchmark: fio's nbd engine against swapnbd-server (memory backend) and against nbdkit's memory
# plugin, in the same run, over TCP and a Unix socket, with 1 and 4 connections. Prints one markdown table.
# --full instead measures the full slab path (swapnbd-server in slab mode on 2 swapnbd-daemon donors + backup
# file) against a two-hop nbdkit chain (nbdkit nbd plugin -> nbdkit memory plugin), same matrix.
#
#   scripts/bench.sh [--full | --all] [--quick] [--out FILE] [--swapnbd DIR] [--baseline DIR] [--loss LIST]
#
#   (default)       memory backend vs nbdkit memory plugin
#   --full          only the full slab path vs the two-hop nbdkit chain
#   --all           both sections, one after the other (each section's processes are stopped before the next)
#   --quick         1-second cells and a reduced matrix, for smoke testing the script itself
#   --out FILE      also write the report (tables + RSS) to FILE
#   --swapnbd DIR   the build under test: DIR/swapnbd-server and DIR/swapnbd-daemon (default out/)
#   --baseline DIR  another build (scripts/build.sh --out DIR) run on the same cells, right next to the build under
#                   test; adds the columns "baseline IOPS" and "vs baseline" (IOPS, build under test / baseline)
#   --loss LIST     with --full, as root: the donors behind lossy links (scripts/netlab.sh): every swapnbd-daemon and
#                   the chain's back end (nbdkit memory) in a network namespace of its own, the server and the
#                   chain's front in the lab's server namespace, each serving a Unix socket (so Unix rows only).
#                   LIST is percentages lost each way on every donor link, e.g. 0,0.5,2: the matrix runs once per
#                   value, in that order, on the same pre-filled system, into one table with a "Loss %" column
#   Each row also gives the CPU a request cost each side: user + system time of all its processes' threads (ours:
#   the server, and with --full its 2 daemons; the peer: nbdkit, or the chain's front ends and back end) over the
#   cell, warm-up included, divided by IOPS x (warm-up + measured seconds). On a machine whose CPUs are all busy
#   (4 connections here) IOPS follow that cost, not latency.
#   env BENCH_SECONDS   seconds measured per cell (default 5; 1 with --quick)
#   env BENCH_RAMP      seconds of unmeasured warm-up per cell (default 1; 0 with --quick)
#   env BENCH_SLAB_SIZE slab size for --full (default 256MiB, so both daemons get a slab)
#   env BENCH_SEAL      --full: "off" runs the build under test with --seal-pages false (default on: pages sealed)
#   env BENCH_BASELINE_SEAL  the same for the --baseline build. Sealed against unsealed in one run, side by side:
#                       BENCH_BASELINE_SEAL=off scripts/bench.sh --full --baseline out   ("vs baseline" = sealed / unsealed)
#   env BENCH_PREFETCH, BENCH_BASELINE_PREFETCH  --full: "on" runs that build with --prefetch-cache 16MiB (default
#                       off, the server's default). The prefetcher's gain: BENCH_PREFETCH=on scripts/bench.sh --full --baseline out
#   env BENCH_ROWS      only the rows whose "Workload|Transport|Conns" matches this extended regex,
#                       e.g. BENCH_ROWS='^128K write.*\|Unix\|4$' (default: every row)
#
# All traffic stays on 127.0.0.1 and Unix sockets in a private temp dir (with --loss: on the lab's veth links, in
# 198.18.0.0/15 inside namespaces this run makes and removes, also on Ctrl-C).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prog=bench.sh
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"
cd "$root"

quick=0
out_file=""
swapnbd_dir=$root/out
baseline_dir=""
loss_list=""
sections=(memory)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --full) sections=(full); shift ;;
    --all) sections=(memory full); shift ;;
    --out) out_file=${2:?--out needs a file}; shift 2 ;;
    --swapnbd) swapnbd_dir=${2:?--swapnbd needs a directory}; shift 2 ;;
    --baseline) baseline_dir=${2:?--baseline needs a directory}; shift 2 ;;
    --loss) loss_list=${2:?--loss needs percentages, e.g. 0,0.5,2}; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die_with 2 "unknown argument $1 (see --help)" ;;
  esac
done

# The lab's helpers (lib/common.sh again, harmless); the lab itself only with --loss.
# shellcheck source=lib/netlab-env.sh
. "$root/scripts/lib/netlab-env.sh"
if [[ -n $loss_list ]]; then
  [[ ${sections[*]} == full ]] || die_with 2 "--loss measures the slab path against the nbdkit chain: use it with --full"
  labenv_parse_losses "$loss_list"
  is_root || die "--loss needs root (network namespaces, nftables)"
fi

for seal in "${BENCH_SEAL:-on}" "${BENCH_BASELINE_SEAL:-on}" "${BENCH_PREFETCH:-off}" "${BENCH_BASELINE_PREFETCH:-off}"; do
  [[ $seal == on || $seal == off ]] || die_with 2 "BENCH_SEAL / BENCH_BASELINE_SEAL / BENCH_PREFETCH / BENCH_BASELINE_PREFETCH: '$seal' is not on or off"
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
need_packages fio:fio nbdkit:nbdkit nbdinfo:libnbd-bin jq:jq ss:iproute2
# Debian's fio only has the nbd engine when built against libnbd; fail early with a clear message otherwise.
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd ioengine"
has_build() { [[ -x $1/swapnbd-server && -x $1/swapnbd-daemon ]]; }
if ! has_build "$swapnbd_dir"; then
  [[ $swapnbd_dir == "$root/out" ]] || die "--swapnbd $swapnbd_dir has no swapnbd-server and swapnbd-daemon (scripts/build.sh --out DIR)"
  log "out/swapnbd-server or out/swapnbd-daemon missing, building them"
  scripts/build.sh >&2
fi
swapnbd_dir=$(cd "$swapnbd_dir" && pwd)
if [[ -n $baseline_dir ]]; then
  has_build "$baseline_dir" || die "--baseline $baseline_dir has no swapnbd-server and swapnbd-daemon (scripts/build.sh --out DIR)"
  baseline_dir=$(cd "$baseline_dir" && pwd)
fi
# A build as the report names it: the commit build.sh recorded in build-info, and its folder.
build_name() { # dir
  if [[ -s $1/build-info ]]; then echo "$(<"$1/build-info") ($1)"; else echo "$1"; fi
}

# --- processes and cleanup ---------------------------------------------------------------------------------
work=$(mktemp -d /tmp/swapnbd-bench.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ ${#pids[@]} -gt 0 ]] && stop_pids "${pids[@]}"
  wait 2>/dev/null || true
  labenv_down
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
  log "server at $1 did not come up; its log:"
  cat "$2" >&2
  exit 1
}

# Waits until something listens on 127.0.0.1:port (nbdkit, on a port from free_ports: it cannot report a port 0).
wait_listening() { # port log
  wait_for_port "$1" 10 && return 0
  log "nothing listens on 127.0.0.1:$1; log:"
  cat "$2" >&2
  exit 1
}

# The port that a server or daemon started with --listen 127.0.0.1:0 bound (no other process can take it between
# choosing and binding, as with a port chosen beforehand).
port_of() { # pid log
  listen_port "$1" 30 && return 0
  log "pid $1 listens on no TCP port; its log:"
  cat "$2" >&2
  exit 1
}

# Reading holes costs neither server anything, so the working set is written once before any read cell.
prefill() { # uri [name]
  local name=${2:-prefill}
  fio --name=prefill --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=8 --size="${working_set_mib}M" \
    --output-format=json --output="$work/prefill-$name.json" >"$work/prefill-$name.log" 2>&1 \
    || { log "pre-fill of $1 failed:"; cat "$work/prefill-$name.log" >&2; exit 1; }
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
    log "fio failed for $uri $rw $bs QD$qd x$conns:"
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
    "4K read QD1|read|4k|1|read"
    "4K randread QD32|randread|4k|32|read"
    "4K randwrite QD1|randwrite|4k|1|write"
    "4K randwrite QD32|randwrite|4k|32|write"
    "128K read QD8|read|128k|8|read"
    "128K write QD8|write|128k|8|write"
  )
fi

fmt_iops() { if [[ $1 == fail ]]; then echo fail; else awk -v v="$1" 'BEGIN { printf "%.0f", v }'; fi; }
fmt_mbs() { if [[ $1 == fail ]]; then echo fail; else awk -v v="$1" 'BEGIN { printf "%.1f", v / 1e6 }'; fi; }
fmt_us() { if [[ $1 == fail ]]; then echo fail; else awk -v v="$1" 'BEGIN { printf "%.0f", v / 1e3 }'; fi; }
fmt_ratio() {
  if [[ $1 == fail || $2 == fail ]]; then echo "-"; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; fi
}

# The processes whose CPU (cpu_ticks) each server name is charged with: the server and what holds its memory.
declare -A cpu_pids
clk_tck=$(getconf CLK_TCK)
# CPU µs per request: TICKS over a cell (warm-up included) / (IOPS × (warm-up + measured seconds)).
fmt_cpu() { # ticks iops
  if [[ $2 == fail ]]; then echo "-"; else awk -v t="$1" -v i="$2" -v hz="$clk_tck" -v s="$((seconds + ramp))" \
    'BEGIN { if (i > 0) printf "%.0f", t * 1e6 / hz / (i * s); else print "-" }'; fi
}

# Transports of the matrix: both, or only the Unix socket when the servers run in the lab (their TCP would be
# inside its namespace). Loss passes: one pass at the network as it is (""), or one per --loss value.
transports=(tcp unix)
loss_passes=("")
if ((${#labenv_losses[@]})); then
  transports=(unix)
  loss_passes=("${labenv_losses[@]}")
fi

# Runs the whole matrix against two servers, or three with a baseline (names in tcp_uri/unix_uri); leaves the
# markdown table in $table. The baseline's columns come last, so the table without one is unchanged; with a baseline,
# $baseline_summary names the row with the lowest "vs baseline". With a LOSS (one of loss_passes, the loss already
# set on the links), the rows start with a "Loss %" column and are added to the table of the passes before.
run_matrix() { # ours peer ours_label peer_label loss [baseline]
  local ours=$1 peer=$2 ours_label=$3 peer_label=$4 loss=$5 base=${6:-}
  local rows=$(( ${#workloads[@]} * ${#transports[@]} * 2 )) row=0 w label rw bs qd dir transport conns server name line ratio
  local -a order
  local -A r_iops r_bw r_p99 r_cpu
  local ticks
  log "$rows rows x $((${base:+1} + 2)) servers ($ours_label vs ${base:+baseline and }$peer_label)${loss:+ at $loss % loss}, ${seconds}s + ${ramp}s warm-up per cell"
  if [[ -z $loss || $loss == "${loss_passes[0]}" ]]; then
    lowest="" lowest_row=""
    table="${loss:+| Loss % }| Workload | Transport | Conns | $ours_label IOPS | $peer_label IOPS | Ratio | $ours_label MB/s | $ours_label p99 µs | $peer_label p99 µs | $ours_label CPU µs/req | $peer_label CPU µs/req |"
    [[ -z $base ]] || table+=" baseline IOPS | vs baseline |"
    table+=$'\n'"${loss:+|--:}|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    [[ -z $base ]] || table+='--:|--:|'
    table+=$'\n'
  fi
  for w in "${workloads[@]}"; do
    IFS='|' read -r label rw bs qd dir <<<"$w"
    for transport in "${transports[@]}"; do
      for conns in 1 4; do
        name=TCP; [[ $transport == unix ]] && name=Unix
        [[ -z ${BENCH_ROWS:-} || "$label|$name|$conns" =~ $BENCH_ROWS ]] || continue
        # Alternate which server goes first so none always inherits another's cache and CPU state. The two builds
        # always run back to back, so they see the same machine conditions, and over four rows each takes every
        # place as often as the other (new, baseline, peer / peer, baseline, new / baseline, new, peer / peer,
        # new, baseline); without a baseline this is the old alternation (ours, peer / peer, ours).
        case $((row % 4)) in
          0) order=("$ours" ${base:+"$base"} "$peer") ;;
          1) order=("$peer" ${base:+"$base"} "$ours") ;;
          2) order=(${base:+"$base"} "$ours" "$peer") ;;
          3) order=("$peer" "$ours" ${base:+"$base"}) ;;
        esac
        for server in "${order[@]}"; do
          # shellcheck disable=SC2086 # cpu_pids entries are lists of pids
          ticks=$(cpu_ticks ${cpu_pids[$server]:-})
          read -r iops bw p99 < <(run_cell "$(uri_of "$server" "$transport")" "$rw" "$bs" "$qd" "$conns" "$dir")
          # shellcheck disable=SC2086
          ticks=$(($(cpu_ticks ${cpu_pids[$server]:-}) - ticks))
          [[ $iops == fail ]] && failures=$((failures + 1))
          r_iops[$server]=$iops r_bw[$server]=$bw r_p99[$server]=$p99 r_cpu[$server]=$(fmt_cpu "$ticks" "$iops")
        done
        line="${loss:+| $loss }| $label | $name | $conns | $(fmt_iops "${r_iops[$ours]}") | $(fmt_iops "${r_iops[$peer]}") | $(fmt_ratio "${r_iops[$ours]}" "${r_iops[$peer]}") | $(fmt_mbs "${r_bw[$ours]}") | $(fmt_us "${r_p99[$ours]}") | $(fmt_us "${r_p99[$peer]}") | ${r_cpu[$ours]} | ${r_cpu[$peer]} |"
        if [[ -n $base ]]; then
          ratio=$(fmt_ratio "${r_iops[$ours]}" "${r_iops[$base]}")
          line+=" $(fmt_iops "${r_iops[$base]}") | $ratio |"
          if [[ $ratio != - ]] && { [[ -z $lowest ]] || awk -v a="$ratio" -v b="$lowest" 'BEGIN { exit !(a < b) }'; }; then
            lowest=$ratio lowest_row="${loss:+$loss % loss, }$label, $name, $conns conn."
          fi
        fi
        table+="$line"$'\n'
        row=$((row + 1))
        log "[$row/$rows] $line"
      done
    done
  done
  baseline_summary=""
  [[ -z $base ]] || baseline_summary="Lowest vs baseline: ${lowest:--} (${lowest_row:-no row measured on both builds})."
}

rss_of() { # pid -> "RSS MiB (peak MiB)"
  awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%.0f MiB (peak %.0f MiB)", r / 1024, h / 1024 }' "/proc/$1/status"
}
rss_mib() { # pid -> current RSS in MiB (0 if gone)
  awk '/^VmRSS/ { printf "%.0f", $2 / 1024; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}
alive_or_die() { # pid name log
  kill -0 "$1" 2>/dev/null || { log "$2 died during the run; its log:"; cat "$3" >&2; exit 1; }
}
version_line() { # what is compared
  echo "SwapNbd $(build_name "$swapnbd_dir")${1:+ $1}${baseline_dir:+ and baseline $(build_name "$baseline_dir")}" \
    "vs nbdkit $(nbdkit --version | awk '{print $2}')${2:+ $2}, $(fio --version)," \
    "$(nproc) CPUs, load $load_start before / $(cut -d' ' -f1-3 /proc/loadavg) after, ${seconds}s per cell after ${ramp}s warm-up," \
    "${working_set_mib} MiB working set (pre-filled) on a ${export_size}iB export; QD is per connection."
}

# --- section: memory backend vs nbdkit memory plugin (the default) ----------------------------------------------
declare -A server_pid
# start_memory NAME DIR: DIR/swapnbd-server with the memory backend on a port of its own choosing and a Unix socket.
start_memory() {
  local name=$1 dir=$2 port sock=$work/$1.sock
  # Started directly (no subshell) so $! is the server itself and the trap can signal it.
  "$dir/swapnbd-server" --backend memory --size 1GiB --listen 127.0.0.1:0 --socket "$sock" \
    --log-level Warning >"$work/$name.log" 2>&1 &
  server_pid[$name]=$!
  pids+=("$!")
  cpu_pids[$name]=$!
  port=$(port_of "${server_pid[$name]}" "$work/$name.log")
  tcp_uri[$name]=nbd://127.0.0.1:$port unix_uri[$name]="nbd+unix:///?socket=$sock"
}

section_memory() {
  local port_kit pid_kit_tcp pid_kit_unix
  start_memory swapnbd "$swapnbd_dir"
  [[ -z $baseline_dir ]] || start_memory baseline "$baseline_dir"
  read -r port_kit < <(free_ports 1)
  local sock_kit=$work/nbdkit.sock
  tcp_uri[nbdkit]=nbd://127.0.0.1:$port_kit unix_uri[nbdkit]="nbd+unix:///?socket=$sock_kit"

  # nbdkit cannot listen on TCP and a Unix socket at once (-p and -U are exclusive), so it runs twice; each
  # instance is pre-filled on its own. Default thread model (parallel, 16 threads per connection).
  nbdkit -f --exit-with-parent -p "$port_kit" -i 127.0.0.1 memory "$export_size" >"$work/nbdkit-tcp.log" 2>&1 &
  pid_kit_tcp=$!
  pids+=("$pid_kit_tcp")
  nbdkit -f --exit-with-parent -U "$sock_kit" memory "$export_size" >"$work/nbdkit-unix.log" 2>&1 &
  pid_kit_unix=$!
  pids+=("$pid_kit_unix")
  cpu_pids[nbdkit]="$pid_kit_tcp $pid_kit_unix"

  local s
  for s in swapnbd ${baseline_dir:+baseline}; do
    wait_ready "$(uri_of "$s" tcp)" "$work/$s.log"
    wait_ready "$(uri_of "$s" unix)" "$work/$s.log"
  done
  wait_ready "$(uri_of nbdkit tcp)" "$work/nbdkit-tcp.log"
  wait_ready "$(uri_of nbdkit unix)" "$work/nbdkit-unix.log"

  # swapnbd serves one device on both listeners, so one pass fills it for both transports.
  prefill "$(uri_of swapnbd tcp)"
  [[ -z $baseline_dir ]] || prefill "$(uri_of baseline tcp)"
  prefill "$(uri_of nbdkit tcp)"
  prefill "$(uri_of nbdkit unix)"

  # Other work on the machine skews everything; the load before and after goes into the report.
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  run_matrix swapnbd nbdkit SwapNbd nbdkit "" ${baseline_dir:+baseline}
  alive_or_die "${server_pid[swapnbd]}" swapnbd-server "$work/swapnbd.log"
  [[ -z $baseline_dir ]] || alive_or_die "${server_pid[baseline]}" "swapnbd-server (baseline)" "$work/baseline.log"

  section_report=$(
    version_line "" ""
    echo
    printf '%s' "$table"
    echo
    [[ -z $baseline_summary ]] || echo "$baseline_summary"
    echo "swapnbd-server RSS after the run: $(rss_of "${server_pid[swapnbd]}");" \
      "${baseline_dir:+baseline $(rss_of "${server_pid[baseline]}"); }nbdkit (TCP instance): $(rss_of "$pid_kit_tcp")."
  )
  # The servers first: a daemon stopped under its server only makes the server log errors.
  stop_pids "${server_pid[@]}"
  stop_pids "${pids[@]}"
  pids=() server_pid=() cpu_pids=()
}

# --- section: full slab path vs two-hop nbdkit chain (--full) ---------------------------------------------------
# Ours: swapnbd-server in slab mode, 2 swapnbd-daemon donors on 127.0.0.1, every write mirrored to a backup file.
# Slab size: BENCH_SLAB_SIZE, default 256MiB. With 1GiB the whole export is one slab, so only one daemon is ever
# used; with 256MiB the 512 MiB working set is two slabs and power-of-2-choices (freest wins) puts one on each
# daemon, which is the path we mean to measure (both donors, two server->daemon links). Measured with --quick on
# this 2-CPU VM: 1GiB and 256MiB were within the (large) noise of each other, and with 1GiB one daemon held the
# whole working set (562 MiB RSS) while the other held nothing (46 MiB), so 256MiB it is.
slab_size=${BENCH_SLAB_SIZE:-256MiB}
declare -A d1_pid d2_pid
# seal_args NAME: the sealing and prefetch switches for the build started as NAME (BENCH_SEAL / BENCH_PREFETCH, or
# BENCH_BASELINE_SEAL / BENCH_BASELINE_PREFETCH for "baseline").
seal_args() {
  local value
  if [[ $1 == baseline ]]; then value=${BENCH_BASELINE_SEAL:-on}; else value=${BENCH_SEAL:-on}; fi
  [[ $value == off ]] && echo "--seal-pages false"
  if [[ $1 == baseline ]]; then value=${BENCH_BASELINE_PREFETCH:-off}; else value=${BENCH_PREFETCH:-off}; fi
  [[ $value == on ]] && echo "--prefetch-cache 16MiB"
  return 0
}
# start_slab NAME DIR: 2 DIR/swapnbd-daemon donors and DIR/swapnbd-server in slab mode, every one on a port of its
# own choosing (the server learns the daemons' ports from the portal list written once they listen).
# Every donor and server of a run holds the same cluster key, made for the run (mode 0600, gone with $work). A
# --baseline build from before authentication has no --auth-key-file and runs without.
auth_args() { # DIR: the key arguments DIR's programs take
  if [[ $("$1/swapnbd-daemon" --help) == *--auth-key-file* ]]; then
    [[ -f $work/cluster.key ]] || "$1/swapnbd-daemon" keygen "$work/cluster.key" >/dev/null
    echo "--auth-key-file $work/cluster.key"
  fi
}
# lab_listening K PORT PID LOG: waits until PID listens on PORT in lab node K's namespace, or exits with its log.
lab_listening() {
  labenv_wait_listen "$1" "$2" 30 "$3" && return 0
  log "nothing listens on $(labenv_addr "$1"):$2 in $(labenv_ns "$1") (pid $3); its log:"
  cat "$4" >&2
  exit 1
}
lab_daemon_port=7070 # every donor in its own namespace: one port for all
lab_back_port=10809  # the nbdkit chain's back end, likewise
start_slab() { # NAME DIR [K]: with K (--loss), the donors are lab nodes K and K+1 and the server is in the lab
  local name=$1 dir=$2 k=${3:-} port_d1 port_d2 port sock=$work/$1.sock auth
  local -a in_d1=() in_d2=() in_srv=() listen=(--listen 127.0.0.1:0)
  local listen_d1=127.0.0.1:0 listen_d2=127.0.0.1:0
  read -r -a auth <<<"$(auth_args "$dir")"
  if [[ -n $k ]]; then
    # Inside a fresh namespace every port is free, so the donors take a fixed one and the portal list knows it.
    in_d1=(ip netns exec "$(labenv_ns "$k")") in_d2=(ip netns exec "$(labenv_ns $((k + 1)))") in_srv=(ip netns exec "$(labenv_ns srv)")
    port_d1=$lab_daemon_port port_d2=$lab_daemon_port
    listen_d1=$(labenv_addr "$k"):$port_d1 listen_d2=$(labenv_addr $((k + 1))):$port_d2
    # The status file tells after each loss pass whether the daemons still hold the working set.
    listen=(--listen "" --status-file "$work/$name-status.json")
  fi
  "${in_d1[@]}" "$dir/swapnbd-daemon" --listen "$listen_d1" "${auth[@]}" \
    --max-memory 4GiB --headroom 512MiB --log-level Warning >"$work/$name-daemon1.log" 2>&1 &
  d1_pid[$name]=$!
  pids+=("$!")
  "${in_d2[@]}" "$dir/swapnbd-daemon" --listen "$listen_d2" "${auth[@]}" \
    --max-memory 4GiB --headroom 512MiB --log-level Warning >"$work/$name-daemon2.log" 2>&1 &
  d2_pid[$name]=$!
  pids+=("$!")
  if [[ -n $k ]]; then
    lab_listening "$k" "$lab_daemon_port" "${d1_pid[$name]}" "$work/$name-daemon1.log"
    lab_listening $((k + 1)) "$lab_daemon_port" "${d2_pid[$name]}" "$work/$name-daemon2.log"
    printf '2\n%s:%s\n%s:%s\n' "$(labenv_addr "$k")" "$port_d1" "$(labenv_addr $((k + 1)))" "$port_d2" >"$work/$name-portal.list"
  else
    port_d1=$(port_of "${d1_pid[$name]}" "$work/$name-daemon1.log")
    port_d2=$(port_of "${d2_pid[$name]}" "$work/$name-daemon2.log")
    printf '2\n127.0.0.1:%s\n127.0.0.1:%s\n' "$port_d1" "$port_d2" >"$work/$name-portal.list"
  fi

  rm -f "$work/$name-backup.img"
  # shellcheck disable=SC2046 # seal_args is empty or words without spaces
  "${in_srv[@]}" "$dir/swapnbd-server" --portal "$work/$name-portal.list" --backup-disk "$work/$name-backup.img" "${auth[@]}" --size 1GiB \
    --slab-size "$slab_size" "${listen[@]}" --socket "$sock" --log-level Warning $(seal_args "$name") >"$work/$name.log" 2>&1 &
  server_pid[$name]=$!
  pids+=("$!")
  cpu_pids[$name]="${server_pid[$name]} ${d1_pid[$name]} ${d2_pid[$name]}"
  unix_uri[$name]="nbd+unix:///?socket=$sock"
  if [[ -z $k ]]; then
    port=$(port_of "${server_pid[$name]}" "$work/$name.log")
    tcp_uri[$name]=nbd://127.0.0.1:$port
  fi
}

# slab_pass_note LOSS: one line after a loss pass, from each build's status file: its daemons up and the share of the
# written pages they hold (a daemon failed by the loss sends its slabs to disk until they are placed again, so the
# rows after it measured partly the backup disk), and the links its server saw go down so far.
slab_pass_note() {
  local s held note="After the $1 % pass:"
  for s in slab ${baseline_dir:+baseline}; do
    held=$(jq -r '.slabs | "\([.daemons[] | select(.up)] | length) of \(.daemons | length) daemons up, " +
      "\(.bytesRemote / 1048576 | floor) of \(.bytesWritten / 1048576 | floor) MiB written held by them"' "$work/$s-status.json" 2>/dev/null) ||
      held="no status file"
    note+=" ${s/slab/build under test}: $held, since the start $(labenv_link_events "$work/$s.log");"
  done
  echo "${note%;}."
}

# The server places a slab on its first write, in the background, and copies it from the backup file; until then
# the slab is served from disk. After the pre-write, wait until the daemons hold the working set (their RSS together
# covers it), so the slab path is measured warm.
wait_daemons_hold() { # name base_rss1 base_rss2
  local name=$1 base1=$2 base2=$3 held p1=${d1_pid[$1]} p2=${d2_pid[$1]}
  for _ in $(seq 60); do
    held=$(( $(rss_mib "$p1") - base1 + $(rss_mib "$p2") - base2 ))
    (( held >= working_set_mib )) && break
    sleep 0.5
  done
  log "$name: daemons hold $((held)) MiB after the pre-write ($(rss_mib "$p1") + $(rss_mib "$p2") MiB RSS)"
  (( held >= working_set_mib )) || log "warning: $name: daemons hold less than the ${working_set_mib} MiB working set"
}

section_full() {
  local port_back port_front pid_back pid_front_tcp="" pid_front_unix back_k="" back_host=127.0.0.1 s t
  local sock_front=$work/nbdkit-front.sock
  local -a in_back=() in_front=()
  if ((${#labenv_losses[@]})); then
    # Lab nodes: 1-2 the build under test's donors, 3-4 the baseline's, then the chain's back end.
    labenv_up $((${baseline_dir:+2} + 3))
    back_k=$((${baseline_dir:+2} + 3)) back_host=$(labenv_addr "$back_k")
    in_back=(ip netns exec "$(labenv_ns "$back_k")") in_front=(ip netns exec "$(labenv_ns srv)")
  fi
  start_slab slab "$swapnbd_dir" ${back_k:+1}
  [[ -z $baseline_dir ]] || start_slab baseline "$baseline_dir" ${back_k:+3}

  # Peer: nbdkit's memory plugin (back, TCP on 127.0.0.1) behind nbdkit's nbd plugin (front), so both sides pay a
  # client -> server -> memory-holder hop over loopback TCP. One back shared by two fronts (TCP and Unix; nbdkit
  # cannot listen on both at once), like our one device behind both listeners, so one pre-fill serves both.
  # shared=false (the nbd plugin's default for hostname/port, given explicitly): every client connection to the
  # front opens its own connection to the back, so 4 fio connections are 4 back connections, as our server
  # spreads 4 client connections over its daemon links; shared=true would funnel them through one libnbd handle.
  # With --loss the back is a lab node behind its own lossy link and the front (Unix only) in the server namespace,
  # so the chain pays the same network as our donors.
  if [[ -n $back_k ]]; then
    port_back=$lab_back_port
  else
    read -r port_back port_front < <(free_ports 2)
  fi
  "${in_back[@]}" nbdkit -f --exit-with-parent -p "$port_back" -i "$back_host" memory "$export_size" >"$work/nbdkit-back.log" 2>&1 &
  pid_back=$!
  pids+=("$pid_back")
  if [[ -n $back_k ]]; then
    lab_listening "$back_k" "$port_back" "$pid_back" "$work/nbdkit-back.log"
  else
    wait_listening "$port_back" "$work/nbdkit-back.log"
    nbdkit -f --exit-with-parent -p "$port_front" -i 127.0.0.1 nbd hostname=127.0.0.1 port="$port_back" shared=false \
      >"$work/nbdkit-front-tcp.log" 2>&1 &
    pid_front_tcp=$!
    pids+=("$pid_front_tcp")
    tcp_uri[chain]=nbd://127.0.0.1:$port_front
  fi
  "${in_front[@]}" nbdkit -f --exit-with-parent -U "$sock_front" nbd hostname="$back_host" port="$port_back" shared=false \
    >"$work/nbdkit-front-unix.log" 2>&1 &
  pid_front_unix=$!
  pids+=("$pid_front_unix")
  cpu_pids[chain]="$pid_back ${pid_front_tcp:-} $pid_front_unix"
  unix_uri[chain]="nbd+unix:///?socket=$sock_front"

  for s in slab ${baseline_dir:+baseline}; do
    for t in "${transports[@]}"; do wait_ready "$(uri_of "$s" "$t")" "$work/$s.log"; done
  done
  for t in "${transports[@]}"; do wait_ready "$(uri_of chain "$t")" "$work/nbdkit-front-$t.log"; done

  # Pre-write the working set once on every side, then wait until the daemons hold it, so all are measured warm.
  # The two builds are pre-filled at the same time: pre-filled one after the other, the first build measured
  # 0.67-0.85x the second on 4K randwrite QD32, whichever build was first (its slab fills ran under the other's
  # pre-write), which is a bias of the setup, not a difference of the builds. With --loss, before any loss is set.
  local -A base1 base2 fill_pid
  for s in slab ${baseline_dir:+baseline}; do
    base1[$s]=$(rss_mib "${d1_pid[$s]}") base2[$s]=$(rss_mib "${d2_pid[$s]}")
    prefill "$(uri_of "$s" "${transports[0]}")" "$s" &
    fill_pid[$s]=$!
  done
  for s in slab ${baseline_dir:+baseline}; do wait "${fill_pid[$s]}" || die "pre-fill of $s failed"; done
  prefill "$(uri_of chain "${transports[0]}")" chain
  # The pre-fill's dirty pages of the backup files go out now, not in the middle of a measured cell.
  sync
  sleep 2
  for s in slab ${baseline_dir:+baseline}; do wait_daemons_hold "$s" "${base1[$s]}" "${base2[$s]}"; done

  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  local loss loss_notes=""
  for loss in "${loss_passes[@]}"; do
    [[ -z $loss ]] || labenv_set_loss "$loss"
    run_matrix slab chain "SwapNbd slab" "nbdkit chain" "$loss" ${baseline_dir:+baseline}
    [[ -z $loss ]] || loss_notes+="$(slab_pass_note "$loss")"$'\n'
  done
  for s in slab ${baseline_dir:+baseline}; do
    alive_or_die "${server_pid[$s]}" "swapnbd-server ($s, slab mode)" "$work/$s.log"
    alive_or_die "${d1_pid[$s]}" "swapnbd-daemon 1 ($s)" "$work/$s-daemon1.log"
    alive_or_die "${d2_pid[$s]}" "swapnbd-daemon 2 ($s)" "$work/$s-daemon2.log"
  done

  section_report=$(
    version_line "slab path (server + 2 daemons, ${slab_size} slabs, backup file)" "chain (nbd plugin -> memory plugin)"
    echo "Pages sealed: build under test ${BENCH_SEAL:-on}${baseline_dir:+, baseline ${BENCH_BASELINE_SEAL:-on}}." \
      "Prefetcher: build under test ${BENCH_PREFETCH:-off}${baseline_dir:+, baseline ${BENCH_BASELINE_PREFETCH:-off}}."
    [[ -z $back_k ]] || labenv_describe
    echo
    printf '%s' "$table"
    echo
    [[ -z $baseline_summary ]] || echo "$baseline_summary"
    [[ -z $loss_notes ]] || printf '%s' "$loss_notes"
    for s in slab ${baseline_dir:+baseline}; do
      echo "RSS after the run${baseline_dir:+ ($s build)}: swapnbd-server (slab mode) $(rss_of "${server_pid[$s]}");" \
        "swapnbd-daemon 1 $(rss_of "${d1_pid[$s]}"); swapnbd-daemon 2 $(rss_of "${d2_pid[$s]}")."
    done
    echo "RSS after the run: nbdkit memory (back) $(rss_of "$pid_back");" \
      "${pid_front_tcp:+nbdkit nbd (front, TCP) $(rss_of "$pid_front_tcp"); }nbdkit nbd (front, Unix) $(rss_of "$pid_front_unix")."
  )
  # The servers first: a daemon stopped under its server only makes the server log errors.
  stop_pids "${server_pid[@]}"
  stop_pids "${pids[@]}"
  pids=() server_pid=() cpu_pids=()
  labenv_down
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
  die "$failures cells failed"
fi
