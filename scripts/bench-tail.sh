#!/usr/bin/env bash
# The read tail over a lossy network, hedged reads on and off in the same run: fio's nbd engine, 4K random reads at
# QD1 over a pre-written region, through swapnbd-server in slab mode whose donors sit behind the network lab's
# links (scripts/netlab.sh: server in swl-LAB-srv, each donor in its own namespace, nftables dropping PCT % of the
# packets on every donor link, both ways). Prints one markdown table: IOPS, p50, p99, p99.9 (fio's completion
# latency) and the server's hedging counters, one row per setting.
#
#   scripts/bench-tail.sh [--quick] [--loss PCT] [--donors N] [--seconds S] [--region SIZE] [--out FILE] [--swapnbd DIR]
#
#   --loss PCT      packets dropped on every donor link, each way (default 1; 0 for a clean lab)
#   --donors N      donor daemons, each behind its own link (default 3)
#   --seconds S     measured seconds per setting (default 30; 5 with --quick)
#   --region SIZE   the pre-written region the reads pick from (default 256MiB; 64MiB with --quick)
#   --rounds R      settings measured alternately R times each, on then off (default 2; 1 with --quick)
#   --quick         a short smoke run of the script itself
#   --out FILE      also write the report to FILE
#   --swapnbd DIR   the build: DIR/swapnbd-server and DIR/swapnbd-daemon (default out/)
#
# Goal (issue 14): p99.9 within 3x of p50 with hedging at 1 % loss. Needs root (network namespaces, nftables), fio
# with the nbd engine and jq. Traffic stays inside the lab's namespaces (198.18.0.0/15) and on a Unix socket in a
# private temp dir; the lab and every process are removed however the run ends.
set -euo pipefail
shopt -s inherit_errexit

root=$(cd "$(dirname "$0")/.." && pwd)
prog=bench-tail.sh
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"

quick=0
loss=1
donors=3
seconds=""
region=""
rounds=""
out_file=""
swapnbd_dir=$root/out
in_lab=0
while (($#)); do
  case $1 in
    --quick) quick=1; shift ;;
    --loss) loss=${2:?--loss needs a percentage}; shift 2 ;;
    --donors) donors=${2:?--donors needs a count}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --region) region=${2:?--region needs a size}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a count}; shift 2 ;;
    --out) out_file=${2:?--out needs a file}; shift 2 ;;
    --swapnbd) swapnbd_dir=${2:?--swapnbd needs a directory}; shift 2 ;;
    --in-lab) in_lab=1; shift ;; # internal: run by scripts/netlab.sh run
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die_with 2 "unknown argument $1 (see --help)" ;;
  esac
done

[[ $loss =~ ^[0-9]+(\.[0-9]{1,3})?$ ]] || die_with 2 "--loss: '$loss' is not a percentage (e.g. 1 or 0.5)"
[[ $donors =~ ^[1-9]$ ]] || die_with 2 "--donors: '$donors' is not 1..9"
if ((quick)); then
  seconds=${seconds:-5} region=${region:-64MiB} rounds=${rounds:-1}
else
  seconds=${seconds:-30} region=${region:-256MiB} rounds=${rounds:-2}
fi
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die_with 2 "--seconds: '$seconds' is not a whole number of seconds"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die_with 2 "--rounds: '$rounds' is not a count"
region_bytes=$(parse_bytes "$region") || die_with 2 "--region: '$region' is not a size (e.g. 256MiB)"
((region_bytes >= 1 << 20 && region_bytes <= 1 << 30)) || die_with 2 "--region: between 1MiB and 1GiB"
region_mib=$((region_bytes >> 20))
swapnbd_dir=$(cd "$swapnbd_dir" && pwd) || die_with 2 "--swapnbd: no directory $swapnbd_dir"
[[ -z $out_file || $out_file == /* ]] || out_file=$PWD/$out_file
cd "$root"
for exe in swapnbd-server swapnbd-daemon; do
  [[ -x $swapnbd_dir/$exe ]] || die "no $swapnbd_dir/$exe (scripts/build.sh builds it)"
done

# --- outside the lab: make one and run this script inside it ------------------------------------------------------
if ((!in_lab)); then
  is_root || die "run as root (network namespaces, nftables)"
  need_packages fio:fio jq:jq
  fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd ioengine"
  lab_args=(--donors "$donors")
  [[ $loss =~ ^0+(\.0+)?$ ]] || lab_args+=(--loss "$loss")
  child=(--in-lab --loss "$loss" --donors "$donors" --seconds "$seconds" --region "$region" --rounds "$rounds" --swapnbd "$swapnbd_dir")
  [[ -z $out_file ]] || child+=(--out "$out_file")
  exec "$root/scripts/netlab.sh" run "${lab_args[@]}" -- "$root/scripts/bench-tail.sh" "${child[@]}"
fi

# --- inside the lab -------------------------------------------------------------------------------------------------
[[ -n ${NETLAB_SRV_NS:-} ]] || die "--in-lab outside a lab (run it without --in-lab)"
daemon_port=9400
work=$(mktemp -d /tmp/swapnbd-tail.XXXXXX)
pids=()
server_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids "$server_pid" "${pids[@]}"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$swapnbd_dir/swapnbd-daemon" keygen "$work/cluster.key" >/dev/null
echo "$donors" >"$work/portal.list"
for ((k = 1; k <= donors; k++)); do
  ns_var=NETLAB_D${k}_NS addr_var=NETLAB_D${k}_ADDR
  ns=${!ns_var} addr=${!addr_var}
  # A fresh namespace has every port free: a fixed one spares reading it back across namespaces.
  ip netns exec "$ns" "$swapnbd_dir/swapnbd-daemon" --listen "$addr:$daemon_port" --auth-key-file "$work/cluster.key" \
    --max-memory 2GiB --headroom 64MiB --log-level Warning >"$work/daemon$k.log" 2>&1 &
  pids+=("$!")
  echo "$addr:$daemon_port" >>"$work/portal.list"
done
for ((k = 1; k <= donors; k++)); do
  ns_var=NETLAB_D${k}_NS
  for _ in $(seq 100); do
    [[ -n $(ip netns exec "${!ns_var}" ss -Hltn "sport = :$daemon_port") ]] && break
    sleep 0.1
  done
  [[ -n $(ip netns exec "${!ns_var}" ss -Hltn "sport = :$daemon_port") ]] || { cat "$work/daemon$k.log" >&2; die "donor $k does not listen"; }
done

status_of() { # FILE JQ-EXPRESSION
  jq -r "$2" "$1" 2>/dev/null || echo ""
}

# Starts the server with hedging on or off, pre-writes the region and waits until the donors hold all of it.
start_server() { # on|off
  local hedge=$1 dir=$work/srv-$1 written remote
  rm -rf "$dir" # a later round reuses the name
  mkdir -m 700 "$dir"
  ip netns exec "$NETLAB_SRV_NS" "$swapnbd_dir/swapnbd-server" --portal "$work/portal.list" \
    --backup-disk "$work/backup-$hedge.img" --auth-key-file "$work/cluster.key" --size 1GiB --slab-size 16MiB \
    --socket "$dir/nbd.sock" --status-file "$dir/status.json" --hedge-reads "$([[ $hedge == on ]] && echo true || echo false)" \
    --log-level Warning >"$work/server-$hedge.log" 2>&1 &
  server_pid=$!
  wait_for_socket "$dir/nbd.sock" 20 "$server_pid" || { cat "$work/server-$hedge.log" >&2; die "server ($hedge) did not come up"; }
  uri="nbd+unix:///?socket=$dir/nbd.sock"
  # Every donor joined before the first write, so the slabs spread over all of them.
  for _ in $(seq 100); do
    [[ $(status_of "$dir/status.json" '[.slabs.daemons[] | select(.up)] | length') == "$donors" ]] && break
    sleep 0.2
  done
  fio --name=prefill --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=4 --size="${region_mib}M" \
    --output-format=json --output="$work/prefill-$hedge.json" >"$work/prefill-$hedge.log" 2>&1 \
    || { cat "$work/prefill-$hedge.log" >&2; die "pre-write ($hedge) failed"; }
  for _ in $(seq 300); do
    written=$(status_of "$dir/status.json" '.slabs.bytesWritten')
    remote=$(status_of "$dir/status.json" '.slabs.bytesRemote')
    [[ -n $written && $written == "$remote" && $written -ge $region_bytes ]] && break
    sleep 0.2
  done
  [[ -n $written && $written == "$remote" ]] || log "warning: hedging $hedge: donors hold ${remote:-?} of ${written:-?} bytes written"
  status_file=$dir/status.json
}

stop_server() {
  stop_pids "$server_pid"
  server_pid=""
  rm -f "$work"/backup-*.img
}

rows=()
measure() { # on|off
  local hedge=$1 json=$work/tail-$1.json before after
  start_server "$hedge"
  before=$(status_of "$status_file" '[.slabs.hedgedReads, .slabs.hedgeWonByDisk, .slabs.hedgeWonByDaemon] | @tsv')
  # The hedging bounds the server drew while fio ran (status file, every 0.5 s): the largest of any link.
  (while :; do status_of "$status_file" '[.slabs.daemons[].hedgeBoundUs] | max'; sleep 0.5; done) >"$work/bounds-$hedge.txt" 2>/dev/null &
  local sampler=$!
  fio --name=tail --ioengine=nbd --uri="$uri" --rw=randread --bs=4k --iodepth=1 --size="${region_mib}M" \
    --norandommap --randrepeat=0 --time_based --runtime="$seconds" --ramp_time=1 \
    --percentile_list=50:99:99.9 --output-format=json --output="$json" >"$work/tail-$hedge.log" 2>&1 \
    || { cat "$work/tail-$hedge.log" >&2; die "fio ($hedge) failed"; }
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local bound_max bound_median
  # Hedging off reports -1 for every link: no line matches, which is no error here.
  bound_max=$( (grep -E '^[0-9]+$' "$work/bounds-$hedge.txt" || true) | sort -n | tail -1)
  bound_median=$( (grep -E '^[0-9]+$' "$work/bounds-$hedge.txt" || true) | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
  sleep 1.2 # the status file is rewritten every second
  after=$(status_of "$status_file" '[.slabs.hedgedReads, .slabs.hedgeWonByDisk, .slabs.hedgeWonByDaemon] | @tsv')
  stop_server
  local iops p50 p99 p999 h0 d0 m0 h1 d1 m1
  read -r iops p50 p99 p999 < <(jq -r '.jobs[0].read | [.iops, .clat_ns.percentile["50.000000"], .clat_ns.percentile["99.000000"], .clat_ns.percentile["99.900000"]] | @tsv' "$json")
  read -r h0 d0 m0 <<<"${before:-0 0 0}"
  read -r h1 d1 m1 <<<"${after:-0 0 0}"
  rows+=("$(awk -v h="$hedge" -v l="$loss" -v i="$iops" -v a="$p50" -v b="$p99" -v c="$p999" \
    -v hr=$((h1 - h0)) -v wd=$((d1 - d0)) -v wm=$((m1 - m0)) -v bm="${bound_median:--}" -v bx="${bound_max:--}" \
    'BEGIN { if (h == "off") { bm = "-"; bx = "-" }
             printf "| %s | %s %% | %.0f | %.0f | %.0f | %.0f | %.1fx | %d | %d | %d | %s / %s |", h, l, i, a / 1000, b / 1000, c / 1000, c / a, hr, wd, wm, bm, bx }')")
  log "hedging $hedge: ${rows[-1]}"
}

log "$donors donors behind $loss % loss each way, ${region_mib} MiB region, ${seconds} s per setting, $rounds round(s)"
for ((round = 1; round <= rounds; round++)); do
  measure on
  measure off
done

report=$(
  echo "4K random reads at QD1 (fio nbd engine on the Unix socket), $donors donors behind the network lab at $loss % loss"
  echo "each way, ${region_mib} MiB pre-written, ${seconds} s per row, $(nproc) CPUs, $(fio --version). Latencies in µs."
  echo
  echo "| hedging | loss | IOPS | p50 | p99 | p99.9 | p99.9/p50 | hedged reads | won by disk | won by daemon | bound µs (median / max of any link) |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
  printf '%s\n' "${rows[@]}"
)
echo "$report"
[[ -z $out_file ]] || echo "$report" >"$out_file"
