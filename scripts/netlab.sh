#!/usr/bin/env bash
# The network lab: donors behind real links on one machine. A lab is one "server side" network namespace and one
# namespace per donor, each donor joined to the server side by its own veth pair:
#
#     swl-LAB-srv                              swl-LAB-dK
#     dK  198.18.K.1/24  <--- veth pair --->   eth0  198.18.K.2/24
#
# The server (and the nbdkit chain's front) runs in swl-LAB-srv, donor K (and the chain's back end) in swl-LAB-dK;
# clients in the root namespace reach the server through its Unix socket, which no namespace hides. Nothing is
# added to the root namespace: addresses, routes, nftables rules and qdiscs all live in namespaces the lab made, so
# deleting them removes everything. Faults are nftables rules in the donor's namespace (table inet swapnbd_lab):
# loss drops a share of packets (numgen random), a partition drops every packet (no RST, no FIN: TCP sees what it
# sees when a switch fails), one way or both; heal deletes them. A rate limit is tbf on both ends of the link.
#
#   scripts/netlab.sh up LAB --donors N [--owner PID]   make lab LAB (a-z, 0-9, up to 8); prints its shell variables
#   scripts/netlab.sh down LAB                          kill every process in its namespaces, delete them
#   scripts/netlab.sh sweep                             remove the labs whose owner process is gone (crashed runs)
#   scripts/netlab.sh list                              the labs that exist, with their owners
#   scripts/netlab.sh loss LAB K PCT [DIR]              drop PCT % (e.g. 0.5) of the link's packets; replaces a loss
#   scripts/netlab.sh partition LAB K [DIR]             drop every packet of the link
#   scripts/netlab.sh heal LAB K                        no loss, no partition (the rate limit stays)
#   scripts/netlab.sh rate LAB K RATE|off               limit each direction of the link to RATE (tc units: 1gbit)
#   scripts/netlab.sh exec LAB NODE CMD [ARG...]        run CMD in NODE's namespace (NODE: srv or dK, e.g. d2)
#   scripts/netlab.sh run [--donors N] [--loss PCT] -- CMD [ARG...]
#                                                       a private lab for CMD: made, its variables exported, CMD
#                                                       run, the lab removed however CMD ends (also on Ctrl-C)
#
#   DIR: both (default) | to-donor (the server's packets are lost) | from-donor (the donor's answers are lost)
#   K: donor number, 1..N. PCT: 0 < PCT <= 100, up to three decimals.
#
# Printed by up (and exported by run): NETLAB=LAB NETLAB_SRV_NS=swl-LAB-srv NETLAB_DONORS=N and per donor
# NETLAB_D<K>_NS=swl-LAB-dK NETLAB_D<K>_ADDR=198.18.K.2 NETLAB_D<K>_SERVER_ADDR=198.18.K.1.
# Needs root, iproute2 and nftables (installed when missing). State: /run/swapnbd-netlab/LAB/owner.
set -euo pipefail
shopt -s inherit_errexit
root=$(cd "$(dirname "$0")/.." && pwd)
prog=netlab.sh
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"

state_root=/run/swapnbd-netlab
table=swapnbd_lab

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; }

srv_ns() { echo "swl-$1-srv"; }
donor_ns() { echo "swl-$1-d$2"; }

check_lab_name() {
  [[ $1 =~ ^[a-z0-9]{1,8}$ ]] || die_with 2 "lab name '$1' must be 1 to 8 of a-z and 0-9"
}

lab_exists() { ip netns list | awk '{print $1}' | grep -qx "$(srv_ns "$1")"; }

donor_count() { # LAB: how many donor namespaces the lab has
  ip netns list | awk '{print $1}' | grep -c "^swl-$1-d[0-9][0-9]*$" || true
}

check_donor() { # LAB K
  local count
  lab_exists "$1" || die_with 2 "no lab '$1' (scripts/netlab.sh list shows the labs)"
  count=$(donor_count "$1")
  if ! [[ $2 =~ ^[1-9][0-9]*$ ]] || (($2 > count)); then die_with 2 "lab '$1' has donors 1..$count, not '$2'"; fi
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

need_tools() {
  is_root || die "run as root (network namespaces, nftables)"
  need_packages ip:iproute2 nft:nftables tc:iproute2
}

cmd_up() {
  local lab="" donors=1 owner=$PPID k ns
  while (($#)); do
    case $1 in
      --donors) donors=${2:?--donors needs a count}; shift 2 ;;
      --owner) owner=${2:?--owner needs a pid}; shift 2 ;;
      -*) die_with 2 "up: unknown option $1" ;;
      *) [[ -z $lab ]] || die_with 2 "up: one lab name only"; lab=$1; shift ;;
    esac
  done
  [[ -n $lab ]] || die_with 2 "up: name the lab"
  check_lab_name "$lab"
  if ! [[ $donors =~ ^[1-9][0-9]*$ ]] || ((donors > 200)); then die_with 2 "--donors '$donors' must be 1..200"; fi
  [[ $owner =~ ^[0-9]+$ ]] || die_with 2 "--owner '$owner' is not a pid"
  lab_exists "$lab" && die_with 2 "lab '$lab' exists already (scripts/netlab.sh down $lab)"
  mkdir -p "$state_root/$lab"
  echo "$owner" >"$state_root/$lab/owner"
  # Whatever fails half-way leaves nothing behind.
  trap 'cmd_down "$lab" >/dev/null 2>&1 || true' ERR
  ip netns add "$(srv_ns "$lab")"
  in_ns "$(srv_ns "$lab")" ip link set lo up
  for ((k = 1; k <= donors; k++)); do
    ns=$(donor_ns "$lab" "$k")
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
    ip link add "d$k" netns "$(srv_ns "$lab")" type veth peer name eth0 netns "$ns"
    in_ns "$(srv_ns "$lab")" ip addr add "198.18.$k.1/24" dev "d$k"
    in_ns "$ns" ip addr add "198.18.$k.2/24" dev eth0
    in_ns "$(srv_ns "$lab")" ip link set "d$k" up
    in_ns "$ns" ip link set eth0 up
    in_ns "$ns" nft -f - <<EOF
table inet $table {
  chain in { type filter hook input priority 0; policy accept; }
  chain out { type filter hook output priority 0; policy accept; }
}
EOF
  done
  trap - ERR
  echo "NETLAB=$lab"
  echo "NETLAB_SRV_NS=$(srv_ns "$lab")"
  echo "NETLAB_DONORS=$donors"
  for ((k = 1; k <= donors; k++)); do
    echo "NETLAB_D${k}_NS=$(donor_ns "$lab" "$k")"
    echo "NETLAB_D${k}_ADDR=198.18.$k.2"
    echo "NETLAB_D${k}_SERVER_ADDR=198.18.$k.1"
  done
}

cmd_down() {
  local lab=${1:?down: name the lab} ns pids
  check_lab_name "$lab"
  for ns in $(ip netns list | awk '{print $1}' | grep "^swl-$lab-" || true); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
      # shellcheck disable=SC2086 # one pid a word
      stop_pids $pids
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "${state_root:?}/$lab"
  log "lab $lab removed"
}

cmd_list() {
  local lab owner
  for lab in $(ip netns list | awk '{print $1}' | sed -n 's/^swl-\([a-z0-9]*\)-srv$/\1/p'); do
    owner=$(cat "$state_root/$lab/owner" 2>/dev/null || echo "?")
    echo "$lab donors=$(donor_count "$lab") owner=$owner $(kill -0 "$owner" 2>/dev/null && echo alive || echo gone)"
  done
}

cmd_sweep() {
  local lab owner
  for lab in $(ip netns list | awk '{print $1}' | sed -n 's/^swl-\([a-z0-9]*\)-.*$/\1/p' | sort -u); do
    owner=$(cat "$state_root/$lab/owner" 2>/dev/null || echo "")
    if [[ -z $owner ]] || ! kill -0 "$owner" 2>/dev/null; then
      cmd_down "$lab"
    fi
  done
}

# Per mille of per-hundred-thousand: "0.5" -> 500 (of 100000).
loss_threshold() {
  [[ $1 =~ ^[0-9]+(\.[0-9]{1,3})?$ ]] || die_with 2 "loss '$1' is not a percentage like 0.5"
  local n
  n=$(awk -v p="$1" 'BEGIN { printf "%d", p * 1000 + 0.5 }')
  ((n > 0 && n <= 100000)) || die_with 2 "loss '$1' must be above 0 and at most 100"
  echo "$n"
}

check_dir() {
  [[ $1 =~ ^(both|to-donor|from-donor)$ ]] || die_with 2 "direction '$1' must be both, to-donor or from-donor"
}

# Deletes the rules of the donor's table that carry COMMENT (loss or partition): one listing, one transaction.
delete_rules() { # NS COMMENT
  local chain="" line script=""
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*chain\ ([a-z]+)\ \{ ]]; then chain=${BASH_REMATCH[1]}; fi
    if [[ $line =~ comment\ \"$2\"\ \#\ handle\ ([0-9]+)$ ]]; then
      script+="delete rule inet $table $chain handle ${BASH_REMATCH[1]}"$'\n'
    fi
  done < <(in_ns "$1" nft -a list table inet "$table")
  [[ -z $script ]] || in_ns "$1" nft -f - <<<"$script"
}

# DIR to-donor drops on input, from-donor on output, both on both; both rules in one transaction, so a partition
# both ways starts (and a loss changes) at one instant.
add_rule() { # NS DIR COMMENT MATCH...
  local ns=$1 dir=$2 comment=$3 script=""
  shift 3
  if [[ $dir != from-donor ]]; then
    script+="add rule inet $table in iifname eth0 $* drop comment \"$comment\""$'\n'
  fi
  if [[ $dir != to-donor ]]; then
    script+="add rule inet $table out oifname eth0 $* drop comment \"$comment\""$'\n'
  fi
  in_ns "$ns" nft -f - <<<"$script"
}

cmd_loss() {
  local lab=${1:?loss: LAB K PCT [DIR]} k=${2:?loss: LAB K PCT [DIR]} pct=${3:?loss: LAB K PCT [DIR]} dir=${4:-both} n ns
  check_donor "$lab" "$k"
  check_dir "$dir"
  n=$(loss_threshold "$pct")
  ns=$(donor_ns "$lab" "$k")
  delete_rules "$ns" loss
  add_rule "$ns" "$dir" loss numgen random mod 100000 "<" "$n"
  log "lab $lab donor $k: $pct % loss ($dir)"
}

cmd_partition() {
  local lab=${1:?partition: LAB K [DIR]} k=${2:?partition: LAB K [DIR]} dir=${3:-both} ns
  check_donor "$lab" "$k"
  check_dir "$dir"
  ns=$(donor_ns "$lab" "$k")
  delete_rules "$ns" partition
  add_rule "$ns" "$dir" partition
  log "lab $lab donor $k: partitioned ($dir)"
}

cmd_heal() {
  local lab=${1:?heal: LAB K} k=${2:?heal: LAB K} ns
  check_donor "$lab" "$k"
  ns=$(donor_ns "$lab" "$k")
  # The chains hold the loss and partition rules only: flushing both in one transaction ends every fault at once
  # (a test that cuts a link for 1 s means 1 s).
  in_ns "$ns" nft -f - <<EOF
flush chain inet $table in
flush chain inet $table out
EOF
  log "lab $lab donor $k: healed"
}

cmd_rate() {
  local lab=${1:?rate: LAB K RATE|off} k=${2:?rate: LAB K RATE|off} rate=${3:?rate: LAB K RATE|off}
  check_donor "$lab" "$k"
  local ns srv
  ns=$(donor_ns "$lab" "$k")
  srv=$(srv_ns "$lab")
  in_ns "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
  in_ns "$srv" tc qdisc del dev "d$k" root 2>/dev/null || true
  if [[ $rate != off ]]; then
    [[ $rate =~ ^[0-9]+(k|m|g)?bit$ ]] || die_with 2 "rate '$rate' must be like 100mbit or 1gbit, or off"
    in_ns "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms
    in_ns "$srv" tc qdisc add dev "d$k" root tbf rate "$rate" burst 256kb latency 50ms
  fi
  log "lab $lab donor $k: rate $rate"
}

cmd_exec() {
  local lab=${1:?exec: LAB NODE CMD...} node=${2:?exec: LAB NODE CMD...}
  shift 2
  (($#)) || die_with 2 "exec: name a command"
  lab_exists "$lab" || die_with 2 "no lab '$lab'"
  case $node in
    srv) exec ip netns exec "$(srv_ns "$lab")" "$@" ;;
    d[1-9]*) check_donor "$lab" "${node#d}"; exec ip netns exec "$(donor_ns "$lab" "${node#d}")" "$@" ;;
    *) die_with 2 "node '$node' must be srv or dK" ;;
  esac
}

cmd_run() {
  local donors=3 loss="" lab k
  while (($#)); do
    case $1 in
      --donors) donors=${2:?--donors needs a count}; shift 2 ;;
      --loss) loss=${2:?--loss needs a percentage}; shift 2 ;;
      --) shift; break ;;
      *) die_with 2 "run: unknown argument $1 (the command goes after --)" ;;
    esac
  done
  (($#)) || die_with 2 "run: name a command after --"
  [[ -z $loss ]] || loss_threshold "$loss" >/dev/null
  lab=r$(printf '%x' $$)
  lab=${lab:0:8}
  run_lab=$lab # global: the EXIT trap runs after this function has returned
  trap 'cmd_down "$run_lab" >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT TERM HUP
  local vars
  vars=$(cmd_up "$lab" --donors "$donors" --owner $$)
  while IFS= read -r line; do export "${line?}"; done <<<"$vars"
  if [[ -n $loss ]]; then
    for ((k = 1; k <= donors; k++)); do cmd_loss "$lab" "$k" "$loss"; done
  fi
  local status=0
  "$@" || status=$?
  return "$status"
}

(($#)) || { usage >&2; exit 2; }
command=$1
shift
case $command in
  -h | --help | help) usage; exit 0 ;;
  up | down | sweep | list | loss | partition | heal | rate | exec | run) need_tools; "cmd_$command" "$@" ;;
  *) usage >&2; die_with 2 "unknown command '$command'" ;;
esac
