#!/usr/bin/env bash
# The swap workload of the kernel tests, timed: Debian's kernel under qemu swaps on /dev/nbd0 (the real nbd module,
# Debian's nbd-client, 2 connections) attached to a server on this host, for each setup and vm.page-cluster value,
# in one run, one table:
#   swapnbd             swapnbd-server in slab mode: three donor daemons + a backup file (prefetcher off, the default)
#   swapnbd-prefetch    the same with --prefetch-cache 16MiB
#   nbdkit              nbdkit's memory plugin (one hop)
#   nbdkit-chain        nbdkit's nbd plugin in front of nbdkit's memory plugin on loopback TCP (two hops, as ours)
# The guest (scripts/kernel/guests/swap-check.sh + swap-workload.sh) writes --work MiB of random data into a tmpfs
# from a cgroup limited to --limit MiB, then reads every chunk back and checks its sha256: write and verify times in
# whole seconds, as the guest's clock gives them. qemu runs TCG here (no KVM): the guest is many times slower than
# the host, so compare the ratios within a run, not the seconds with bench-swap.sh. Run as root; about 3 minutes per
# cell with the defaults on two cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/swap-env.sh
. "$root/scripts/lib/swap-env.sh"

usage() {
  cat <<'USAGE'
usage: scripts/bench-guest-swap.sh [--only LIST] [--page-clusters LIST] [--work MIB] [--limit MIB] [--out FILE]
                                   [--no-build]

  --only LIST           comma-separated subset of swapnbd,swapnbd-prefetch,nbdkit,nbdkit-chain (default: all four)
  --page-clusters LIST  vm.page-cluster values set in the guest, e.g. 0,3 (default 0,3; the kernel's default is 3)
  --work MIB            MiB written and read back (default 192)
  --limit MIB           the guest cgroup's memory limit (default 48)
  --out FILE            also write the table (markdown) to FILE
  --no-build            skip scripts/setup.sh; out/ must be built already
USAGE
}

only=swapnbd,swapnbd-prefetch,nbdkit,nbdkit-chain clusters=0,3 work_mib=192 limit_mib=48 out="" build=1
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --page-clusters) clusters=${2:?--page-clusters needs a value}; shift 2 ;;
    --work) work_mib=${2:?--work needs a value}; shift 2 ;;
    --limit) limit_mib=${2:?--limit needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --no-build) build=""; shift ;;
    *) usage >&2; die_with 2 "unknown argument '$1'" ;;
  esac
done
is_root || die "run as root (qemu, the servers' cluster key)"
IFS=, read -r -a setups <<<"$only"
IFS=, read -r -a pcs <<<"$clusters"
for setup in "${setups[@]}"; do
  [[ $setup =~ ^(swapnbd|swapnbd-prefetch|nbdkit|nbdkit-chain)$ ]] || die_with 2 "unknown setup '$setup' in --only"
done
for pc in "${pcs[@]}"; do [[ $pc =~ ^[0-9]$ ]] || die_with 2 "--page-clusters: '$pc' is not 0..9"; done
[[ $work_mib =~ ^[1-9][0-9]*$ && $limit_mib =~ ^[1-9][0-9]*$ ]] || die_with 2 "--work and --limit are whole MiB"
if [[ -n $build ]]; then
  "$root/scripts/setup.sh" >/dev/null
fi
for exe in swapnbd-server swapnbd-daemon; do
  [[ -x $root/out/$exe ]] || die "out/$exe is missing; run scripts/build.sh"
done
need_packages nbdkit:nbdkit qemu-system-x86_64:qemu-system-x86

work=$(mktemp -d /tmp/swapnbd-bench-guest.XXXXXX)
export_size=$(( (work_mib * 2 + 64) << 20 ))
daemon_pids=() server_pid="" nbdkit_pid="" nbdkit_back_pid=""
teardown() { swapenv_stop_servers; }
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM HUP
  teardown
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; log interrupted; exit 130' INT TERM HUP

declare -A write_s verify_s note
for pc in "${pcs[@]}"; do
  for setup in "${setups[@]}"; do
    read -r port < <(free_ports 1)
    case $setup in
      swapnbd | swapnbd-prefetch)
        swapenv_server_args=(--listen "127.0.0.1:$port")
        [[ $setup != swapnbd-prefetch ]] || swapenv_server_args+=(--prefetch-cache 16MiB)
        swapenv_start_system "$export_size" 32MiB
        swapenv_wait_system
        wait_for_port "$port" 10 "$server_pid" || die "swapnbd-server did not listen on 127.0.0.1:$port"
        ;;
      nbdkit)
        setsid nbdkit -f -p "$port" -i 127.0.0.1 memory "$export_size" >"$work/nbdkit.log" 2>&1 </dev/null &
        nbdkit_pid=$!
        wait_for_port "$port" 10 "$nbdkit_pid" || die "nbdkit did not listen: $(cat "$work/nbdkit.log")"
        ;;
      nbdkit-chain)
        read -r back_port < <(free_ports 1)
        setsid nbdkit -f -p "$back_port" -i 127.0.0.1 memory "$export_size" >"$work/nbdkit-back.log" 2>&1 </dev/null &
        nbdkit_back_pid=$!
        wait_for_port "$back_port" 10 "$nbdkit_back_pid" || die "nbdkit memory did not listen: $(cat "$work/nbdkit-back.log")"
        setsid nbdkit -f -p "$port" -i 127.0.0.1 nbd hostname=127.0.0.1 port="$back_port" shared=false \
          >"$work/nbdkit-chain.log" 2>&1 </dev/null &
        nbdkit_pid=$!
        wait_for_port "$port" 10 "$nbdkit_pid" || die "nbdkit nbd did not listen: $(cat "$work/nbdkit-chain.log")"
        ;;
    esac
    key="$pc|$setup"
    log "$setup, vm.page-cluster $pc: guest swap workload, $work_mib MiB through a $limit_mib MiB limit"
    result=$("$root/scripts/kernel/run-guest.sh" --port "$port" --script "$root/scripts/kernel/guests/swap-check.sh" \
      --env SWAP_PAGE_CLUSTER="$pc" --env SWAP_WORK_MIB="$work_mib" --env SWAP_LIMIT_MIB="$limit_mib" \
      --timeout 900 --log "$work/console-$pc-$setup.log" 2>&1) || { log "$setup, page-cluster $pc: the guest failed:"; tail -n 30 <<<"$result" >&2; exit 1; }
    line=$(grep "SWAP-WORK: PASS" <<<"$result") || die "$setup: no PASS line: $(tail -n 20 <<<"$result")"
    write_s[$key]=$(sed -n 's/.* write \([0-9]*\) s.*/\1/p' <<<"$line")
    verify_s[$key]=$(sed -n 's/.* verify \([0-9]*\) s.*/\1/p' <<<"$line")
    note[$key]=${line#SWAP-WORK: PASS }
    if [[ $setup == swapnbd* ]]; then
      note[$key]+=", $(swapenv_slab_summary "$work/status.json")"
    fi
    log "$setup, vm.page-cluster $pc: $line"
    teardown
  done
done

ratio() { if [[ -n $2 && $2 != 0 ]]; then python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; else echo "–"; fi; }
{
  echo "| page-cluster | setup | write s | verify s | total s | vs nbdkit | vs nbdkit-chain | guest summary |"
  echo "|--:|---|--:|--:|--:|--:|--:|---|"
  for pc in "${pcs[@]}"; do
    for setup in "${setups[@]}"; do
      key="$pc|$setup"
      total=$((write_s[$key] + verify_s[$key]))
      base="" chain=""
      [[ -z ${write_s[$pc|nbdkit]:-} ]] || base=$((write_s[$pc|nbdkit] + verify_s[$pc|nbdkit]))
      [[ -z ${write_s[$pc|nbdkit-chain]:-} ]] || chain=$((write_s[$pc|nbdkit-chain] + verify_s[$pc|nbdkit-chain]))
      echo "| $pc | $setup | ${write_s[$key]} | ${verify_s[$key]} | $total | $(ratio "$total" "$base") | $(ratio "$total" "$chain") | ${note[$key]} |"
    done
  done
  echo
  echo "Guest: Debian's kernel under qemu ($(grep -q 'accel=kvm' "$work"/console-*.log 2>/dev/null && echo kvm || echo TCG)), real nbd module," \
    "nbd-client -C 2; $work_mib MiB written through a $limit_mib MiB cgroup limit into a tmpfs, then read back by sha256." \
    "Host: $(nproc) CPUs, kernel $(uname -r). Time ratio: below 1.00 is faster than the peer."
} | tee ${out:+"$out"}
