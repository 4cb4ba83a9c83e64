#!/usr/bin/env bash
# One swap workload through five setups in one run, one table of times and ratios:
#   swapnbd       SwapNbd's full system: three donor daemons + swapnbd-server (slab mode, backup file) on loopback
#   swapnbd-unsealed  the same with --seal-pages false (not in the default list: for measuring what sealing costs,
#                 e.g. --only swapnbd,swapnbd-unsealed,nbdkit-chain)
#   swapnbd-prefetch  the same with --prefetch-cache 16MiB (not in the default list: what the prefetcher buys)
#   nbdkit        nbdkit's memory plugin on a Unix socket, attached the same way (scripts/swap-attach.sh)
#   nbdkit-chain  nbdkit's nbd plugin on a Unix socket in front of nbdkit's memory plugin on loopback TCP: the same
#                 client -> server -> memory-holder hop as SwapNbd's server -> daemon (design.md's two-hop peer)
#   file          a swap file on the local disk
#   nolimit       no memory limit: the workload never swaps (the floor)
# The workload is swapnbd-memtest (a working set --factor times the cgroup's limit, random page touches, every page
# verified) with the same seed everywhere. The swap device under test gets the top priority, so the host's other
# swap (if any) is not used. Run as root on a quiet machine; takes about 10 minutes with the defaults on two cores.
# --loss LIST puts the donors behind lossy links of a network lab (scripts/netlab.sh), and the chain's back end too.
# env BENCH_SWAP_SERVER_ARGS: more swapnbd-server arguments for the swapnbd setups (e.g. "--hedge-reads false").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/swap-env.sh
. "$root/scripts/lib/swap-env.sh"
# shellcheck source=lib/netlab-env.sh  # sourced by swap-env.sh already; named here for --loss's own use
. "$root/scripts/lib/netlab-env.sh"

usage() {
  cat <<'EOF'
usage: scripts/bench-swap.sh [--size SIZE] [--factor F] [--touches N] [--only LIST] [--loss LIST]
                             [--page-cluster N] [--export-size SIZE] [--out FILE] [--no-build]

  --size SIZE    the workload's memory (default 1GiB)
  --factor F     working set / cgroup limit (default 4)
  --touches N    random page touches after the fill (default: one per page)
  --only LIST    comma-separated subset of swapnbd,swapnbd-unsealed,swapnbd-prefetch,nbdkit,nbdkit-chain,
                 file,nolimit
                 (default: swapnbd,nbdkit,nbdkit-chain,file,nolimit)
  --loss LIST    the donors behind lossy links: swapnbd's three daemons and the chain's back end (nbdkit
                 memory) each in a network namespace of their own behind a veth pair, swapnbd-server and the
                 chain's front in the lab's server namespace, attached over their Unix sockets. LIST is
                 percentages lost each way on every donor link, e.g. 0,0.5,2: the setups with a donor link
                 (swapnbd, swapnbd-unsealed, nbdkit-chain) run once per value, the others once, all in one table
                 with a "loss %" column ("–" for setups without a network)
  --page-cluster N  vm.page-cluster for the run (swap readahead: 2^N pages; the kernel's default is 3),
                 restored at the end
  --export-size SIZE  every setup's swap device (default: twice --size plus 512MiB, rounded down to 64MiB). The
                 kernel counts swap as full above half of it (vm_swap_full): then a swap-in frees the page's slot,
                 and every page read back is written again when it is evicted. The default keeps the workload's
                 swap under half; 1.5GiB with the 1GiB default workload crosses it (about 51 % full)
  --out FILE     also write the table (markdown) to FILE
  --no-build     skip scripts/setup.sh; out/ must be built already
EOF
}

size=1GiB factor=4 touches="" only=swapnbd,nbdkit,nbdkit-chain,file,nolimit out="" build=1 loss_list="" page_cluster="" export_arg=""
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --factor) factor=${2:?--factor needs a value}; shift 2 ;;
    --touches) touches=${2:?--touches needs a value}; shift 2 ;;
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --loss) loss_list=${2:?--loss needs percentages, e.g. 0,0.5,2}; shift 2 ;;
    --page-cluster) page_cluster=${2:?--page-cluster needs a value}; shift 2 ;;
    --export-size) export_arg=${2:?--export-size needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --no-build) build=""; shift ;;
    *) usage >&2; die_with 2 "unknown argument '$1'" ;;
  esac
done
is_root || die "run as root (swapon, losetup, cgroups)"
size_bytes=$(parse_bytes "$size") || size_bytes=0
((size_bytes >= 16 << 20 && size_bytes % 4096 == 0)) || die_with 2 "--size '$size' must be at least 16MiB, in whole 4KiB pages"
[[ $factor =~ ^[1-9][0-9]*$ ]] || die_with 2 "--factor '$factor' is not a whole number ≥ 1"
[[ -z $touches || $touches =~ ^[0-9]+$ ]] || die_with 2 "--touches '$touches' is not a count"
touches=${touches:-$((size_bytes / 4096))}
IFS=, read -r -a setups <<<"$only"
for setup in "${setups[@]}"; do
  [[ $setup =~ ^(swapnbd|swapnbd-unsealed|swapnbd-prefetch|nbdkit|nbdkit-chain|file|nolimit)$ ]] || die_with 2 "unknown setup '$setup' in --only"
done
[[ -z $page_cluster || $page_cluster =~ ^[0-9]$ ]] || die_with 2 "--page-cluster '$page_cluster' must be 0..9 (2^N pages of swap readahead)"
[[ -z $loss_list ]] || labenv_parse_losses "$loss_list"
limit=$((size_bytes / factor / 4096 * 4096))
if [[ -n $export_arg ]]; then
  export_size=$(parse_bytes "$export_arg") || export_size=0
  ((export_size >= size_bytes && export_size % (64 << 20) == 0)) ||
    die_with 2 "--export-size '$export_arg' must be a whole number of 64MiB slabs, at least --size ($size)"
else
  export_size=$(( (2 * size_bytes + (512 << 20)) / (64 << 20) * (64 << 20) ))
fi

if [[ -n $build ]]; then
  "$root/scripts/setup.sh" >/dev/null
fi
for exe in swapnbd-server swapnbd-daemon swapnbd-memtest; do
  [[ -x $root/out/$exe ]] || die "out/$exe is missing; run scripts/build.sh"
done
need_packages nbdkit:nbdkit

work=$(mktemp -d /tmp/swapnbd-bench-swap.XXXXXX)
name=bench-$$
daemon_pids=() server_pid="" nbdkit_pid="" nbdkit_back_pid="" cgroup="" attached="" swapfile=""

# Per setup, in the safe order: workload, swapoff/detach, then the servers.
teardown() {
  swapenv_remove_cgroup || true
  if [[ -n $attached ]]; then "$root/scripts/swap-detach.sh" --name "$attached" >&2 || return 1; attached=""; fi
  if [[ -n $swapfile ]]; then swapoff "$swapfile" 2>/dev/null || true; rm -f "$swapfile"; swapfile=""; fi
  swapenv_stop_servers
}
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM HUP
  teardown || die "detach failed; servers left running, see $work"
  labenv_down
  [[ -z $page_cluster_before ]] || sysctl -q -w vm.page-cluster="$page_cluster_before"
  rm -rf "$work"
  exit "$status"
}
page_cluster_before=""
trap cleanup EXIT
if [[ -n $page_cluster ]]; then
  page_cluster_before=$(sysctl -n vm.page-cluster)
  sysctl -q -w vm.page-cluster="$page_cluster"
fi
trap 'echo; log interrupted; exit 130' INT TERM HUP

declare -A seconds summary
run_workload() { # KEY LIMIT: KEY is the setup, or with --loss "LOSS|SETUP" for a setup with a donor link
  swapenv_make_cgroup "$name-$(tr -c 'a-z0-9-\n' _ <<<"$1")" "$2"
  log "$1: swapnbd-memtest --size $size --touches $touches in $cgroup ($cgroup_kind = $2)"
  local line
  line=$(swapenv_run_in_cgroup "$root/out/swapnbd-memtest" --size "$size_bytes" --touches "$touches" --seed 42) ||
    { log "$1: the workload failed: $line"; return 1; }
  swapenv_remove_cgroup
  summary[$1]=$line
  seconds[$1]=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
  log "$1: $line"
}

# cpu_summary SERVER_PID "DONOR_PIDS": CPU seconds so far of the server, its memory holders (daemons, the chain's back
# end) and the attach path's nbdfuse, as words for the summary (setsid'd nbdkit: its pid is nbdkit's own).
cpu_summary() {
  local fuse_pid=""
  local pid_file=${SWAPNBD_RUN_DIR:-/run/swapnbd}/nbdfuse-$name.pid
  [[ ! -r $pid_file ]] || read -r fuse_pid <"$pid_file"
  local -a donors
  read -r -a donors <<<"$2"
  echo "cpu_server=$(swapenv_cpu_seconds "$1")s${2:+ cpu_donors=$(swapenv_cpu_seconds "${donors[@]}")s}${fuse_pid:+ cpu_nbdfuse=$(swapenv_cpu_seconds "$fuse_pid")s}"
}

attach_swap() { # SOCKET: waits up to 10 s for the server's socket, attaches it as the top-priority swap device
  wait_for_socket "$1" 10 || true  # swap-attach.sh names a socket that is still missing
  "$root/scripts/swap-attach.sh" --socket "$1" --name "$name" --priority 32767 --page-cluster keep >/dev/null
  attached=$name
}

# Setups with a donor link (has_link): with --loss they run once per loss value, behind the lab's links; the others
# run once, in the first pass. runs: "LOSS|SETUP" in order ("|SETUP" without --loss).
has_link() { [[ $1 =~ ^(swapnbd|swapnbd-unsealed|swapnbd-prefetch|nbdkit-chain)$ ]]; }
passes=("") runs=() loss_now=""
if ((${#labenv_losses[@]})); then
  passes=("${labenv_losses[@]}")
  # Lab nodes 1-3: swapnbd's donors (swap-env.sh); node 4: the chain's back end.
  labenv_up 4
fi
chain_back_node=4 chain_back_port=10809
for loss in "${passes[@]}"; do
  for setup in "${setups[@]}"; do runs+=("$loss|$setup"); done
done

for run in "${runs[@]}"; do
  loss=${run%%|*} setup=${run#*|}
  key=$setup
  if [[ -n $loss ]]; then
    if has_link "$setup"; then key=$run; elif [[ $loss == "${passes[0]}" ]]; then loss=""; else continue; fi
    [[ -z $loss || $loss == "$loss_now" ]] || { labenv_set_loss "$loss"; loss_now=$loss; }
  fi
  case $setup in
    swapnbd | swapnbd-unsealed | swapnbd-prefetch)
      swapenv_server_args=()
      [[ $setup != swapnbd-unsealed ]] || swapenv_server_args=(--seal-pages false)
      [[ $setup != swapnbd-prefetch ]] || swapenv_server_args=(--prefetch-cache 16MiB)
      read -r -a extra_args <<<"${BENCH_SWAP_SERVER_ARGS:-}"
      swapenv_server_args+=(${extra_args[@]+"${extra_args[@]}"})
      swapenv_start_system "$export_size" 64MiB
      swapenv_wait_system
      attach_swap "$work/nbd.sock"
      run_workload "$key" "$limit"
      summary[$key]+=" rss_server=$(($(ps -o rss= -p "$server_pid") >> 10))MiB"
      summary[$key]+=" $(cpu_summary "$server_pid" "${daemon_pids[*]}")"
      # From the status file: the prefetcher's pages, READ bytes by source, writes left disk-only (swapenv_slab_summary).
      summary[$key]+=" $(swapenv_slab_summary "$work/status.json")"
      # The backup file's pages in this machine's page cache (--backup-io direct keeps it near 0; SWAPNBD_BACKUP_IO=buffered to compare).
      summary[$key]+=" backup_cache=$(($(fincore --bytes --noheadings --output RES "$work/backup.img" 2>/dev/null || echo 0) >> 20))MiB"
      # Behind lossy links: were the donors still serving at the end (a failed one sends its slabs to disk)?
      [[ -z $loss ]] || summary[$key]+=" daemons_up=$(swapenv_daemons_up)/3, $(labenv_link_events "$work/server.log")"
      ;;
    nbdkit)
      setsid nbdkit -f -U "$work/nbdkit.sock" memory "$export_size" >"$work/nbdkit.log" 2>&1 </dev/null &
      nbdkit_pid=$!
      attach_swap "$work/nbdkit.sock"
      run_workload "$key" "$limit"
      summary[$key]+=" $(cpu_summary "$nbdkit_pid" "")"
      ;;
    nbdkit-chain)
      back_host=127.0.0.1 front=()
      if [[ -n $loss ]]; then
        # The back end behind its own lossy link, the front in the server namespace: the same network as our donors.
        back_host=$(labenv_addr "$chain_back_node") back_port=$chain_back_port front=(ip netns exec "$(labenv_ns srv)")
        setsid ip netns exec "$(labenv_ns "$chain_back_node")" nbdkit -f -p "$back_port" -i "$back_host" memory "$export_size" \
          >"$work/nbdkit-back.log" 2>&1 </dev/null &
        nbdkit_back_pid=$!
        labenv_wait_listen "$chain_back_node" "$back_port" 10 "$nbdkit_back_pid" ||
          die "nbdkit memory did not listen on $back_host:$back_port: $(cat "$work/nbdkit-back.log")"
      else
        read -r back_port < <(free_ports 1)
        setsid nbdkit -f -p "$back_port" -i 127.0.0.1 memory "$export_size" >"$work/nbdkit-back.log" 2>&1 </dev/null &
        nbdkit_back_pid=$!
        wait_for_port "$back_port" 10 "$nbdkit_back_pid" || die "nbdkit memory did not listen on 127.0.0.1:$back_port: $(cat "$work/nbdkit-back.log")"
      fi
      # shared=false: each client connection gets its own back connection, as each server link is its own socket.
      rm -f "$work/nbdkit-chain.sock"
      setsid "${front[@]}" nbdkit -f -U "$work/nbdkit-chain.sock" nbd hostname="$back_host" port="$back_port" shared=false \
        >"$work/nbdkit-chain.log" 2>&1 </dev/null &
      nbdkit_pid=$!
      attach_swap "$work/nbdkit-chain.sock"
      run_workload "$key" "$limit"
      summary[$key]+=" $(cpu_summary "$nbdkit_pid" "$nbdkit_back_pid")"
      ;;
    file)
      swapfile=$work/swapfile
      fallocate -l "$export_size" "$swapfile"
      chmod 600 "$swapfile"
      mkswap "$swapfile" >/dev/null
      swapon -p 32767 "$swapfile"
      run_workload "$key" "$limit"
      ;;
    nolimit)
      run_workload "$key" max
      ;;
  esac
  teardown
done

ratio() { # SECONDS BASE: SECONDS/BASE to two places, or a dash without a base
  if [[ -n $2 ]]; then python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; else echo "–"; fi
}
phase() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"${summary[$1]:-}"; } # KEY PHASE: a phase's seconds (fill, touch, verify)
table() {
  local base=${seconds[nbdkit]:-} chain=${seconds[nbdkit-chain]:-} unsealed=${seconds[swapnbd-unsealed]:-}
  echo "| setup | seconds | fill | touch | verify | vs nbdkit | vs nbdkit-chain |${unsealed:+ vs swapnbd-unsealed |} memtest summary |"
  echo "|---|--:|--:|--:|--:|--:|--:|${unsealed:+--:|}---|"
  for setup in "${setups[@]}"; do
    echo "| $setup | ${seconds[$setup]} | $(phase "$setup" fill) | $(phase "$setup" touch) | $(phase "$setup" verify)" \
      "| $(ratio "${seconds[$setup]}" "$base") | $(ratio "${seconds[$setup]}" "$chain")" \
      "|${unsealed:+ $(ratio "${seconds[$setup]}" "$unsealed") |} \`${summary[$setup]#swapnbd-memtest: }\` |"
  done
  footer
}
# With --loss: a "loss %" column; the setups with a donor link once per loss value (compared with the chain and the
# unsealed server of the same loss), then the others once ("–": no network between them and their memory).
loss_table() {
  local base=${seconds[nbdkit]:-} has_unsealed="" loss setup key chain unsealed
  [[ ,$only, != *,swapnbd-unsealed,* ]] || has_unsealed=1
  echo "| loss % | setup | seconds | vs nbdkit | vs nbdkit-chain |${has_unsealed:+ vs swapnbd-unsealed |} memtest summary |"
  echo "|--:|---|--:|--:|--:|${has_unsealed:+--:|}---|"
  for loss in "${passes[@]}" ""; do
    chain=${seconds[$loss|nbdkit-chain]:-} unsealed=${seconds[$loss|swapnbd-unsealed]:-}
    for setup in "${setups[@]}"; do
      if [[ -n $loss ]]; then has_link "$setup" || continue; key="$loss|$setup"; else ! has_link "$setup" || continue; key=$setup; fi
      echo "| ${loss:-–} | $setup | ${seconds[$key]} | $(ratio "${seconds[$key]}" "$base") | $(ratio "${seconds[$key]}" "${loss:+$chain}")" \
        "|${has_unsealed:+ $(ratio "${seconds[$key]}" "${loss:+$unsealed}") |} \`${summary[$key]#swapnbd-memtest: }\` |"
    done
  done
  footer
  labenv_describe
}
footer() {
  echo
  echo "$size working set at 1/$factor of it as the cgroup limit ($((limit >> 20)) MiB), $touches random touches, seed 42;" \
    "vm.page-cluster $(sysctl -n vm.page-cluster); swap device $((export_size >> 20)) MiB;" \
    "$(nproc) CPUs, kernel $(uname -r); swapnbd: 3 daemons, 64 MiB slabs, backup file in $(df --output=source "$work" | tail -1)."
  echo "memtest's swap_mib: each phase's swap-ins/swap-outs in MiB, machine-wide; a verify phase that writes about as much" \
    "as it reads ran with swap over half full (see --export-size)."
  echo "Time ratio: below 1.00 is faster than the peer. Attach path here:" \
    "$([[ -d /sys/module/nbd ]] && echo 'kernel nbd (nbd-client)' || echo 'nbdfuse + loop device (no nbd module)')."
}
echo
if [[ -n ${passes[0]} ]]; then loss_table; else table; fi | tee ${out:+"$out"}
