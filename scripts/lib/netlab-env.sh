# shellcheck shell=bash
# Shared by scripts/bench.sh and scripts/bench-swap.sh (source it; callers set `root`): one scripts/netlab.sh lab for
# the whole run, owned by the calling shell (so `scripts/netlab.sh sweep` removes it if the run dies without its
# traps), loss on every donor link, and processes started in its namespaces. The caller removes the lab with
# labenv_down in its EXIT trap, after stopping its own processes (netlab.sh down also kills whatever is left in the
# namespaces). Node K of the lab (a donor daemon, or the nbdkit chain's back end) listens on 198.18.K.2; the server
# side (swapnbd-server, the chain's front) runs in the lab's server namespace and serves a Unix socket, which clients
# in the root namespace reach as usual. Sources lib/common.sh.
# shellcheck disable=SC2154  # root is the caller's (above)
# shellcheck disable=SC2034  # labenv_losses is a result for the caller

# shellcheck source=common.sh
. "$root/scripts/lib/common.sh"

labenv_lab="" labenv_donors=0 labenv_losses=()

# labenv_parse_losses LIST: "0,0.5,2" -> the array labenv_losses, in the order given; a bad value exits 2. Each is a
# percentage of packets dropped each way on every donor link (netlab.sh loss: up to three decimals); 0 is the lab's
# links without loss (the same namespaces and veth pairs, so a 0 row is the baseline of the lossy rows).
labenv_parse_losses() {
  local value
  labenv_losses=()
  IFS=, read -r -a labenv_losses <<<"$1"
  ((${#labenv_losses[@]})) || die_with 2 "--loss needs one or more percentages, e.g. 0,0.5,2"
  local -A seen=()
  for value in "${labenv_losses[@]}"; do
    if ! [[ $value =~ ^[0-9]+(\.[0-9]{1,3})?$ ]] || ! awk -v p="$value" 'BEGIN { exit !(p <= 100) }'; then
      die_with 2 "--loss: '$value' is not a percentage from 0 to 100 (up to three decimals), e.g. 0,0.5,2"
    fi
    [[ -z ${seen[$value]:-} ]] || die_with 2 "--loss: '$value' is given twice"
    seen[$value]=1
  done
}

# labenv_up DONORS: makes the lab (named b + this shell's pid in hex, a-z0-9 up to 8) with DONORS donor links, no loss.
labenv_up() {
  local out lab
  lab=b$(printf '%x' $$)
  lab=${lab:0:8}
  out=$("$root/scripts/netlab.sh" up "$lab" --donors "$1" --owner $$ 2>&1) || { log "netlab.sh up $lab failed: $out"; return 1; }
  labenv_lab=$lab labenv_donors=$1
  log "network lab $lab: $1 donor links (scripts/netlab.sh list)"
}

# labenv_down: removes the lab (every process still in its namespaces is killed). Does nothing without one.
labenv_down() {
  [[ -n $labenv_lab ]] || return 0
  "$root/scripts/netlab.sh" down "$labenv_lab" >/dev/null 2>&1 || log "could not remove network lab $labenv_lab (scripts/netlab.sh down $labenv_lab)"
  labenv_lab="" labenv_donors=0
}

# labenv_ns NODE: the namespace of NODE, "srv" or a donor number K.
labenv_ns() {
  if [[ $1 == srv ]]; then echo "swl-$labenv_lab-srv"; else echo "swl-$labenv_lab-d$1"; fi
}

# labenv_addr K: donor K's address, where its daemon (or the chain's back end) listens.
labenv_addr() { echo "198.18.$1.2"; }

# labenv_set_loss PCT: PCT % of the packets lost each way on every donor link (0: no loss).
labenv_set_loss() {
  local k out
  for ((k = 1; k <= labenv_donors; k++)); do
    if awk -v p="$1" 'BEGIN { exit !(p == 0) }'; then
      out=$("$root/scripts/netlab.sh" heal "$labenv_lab" "$k" 2>&1) || { log "netlab.sh heal failed: $out"; return 1; }
    else
      out=$("$root/scripts/netlab.sh" loss "$labenv_lab" "$k" "$1" both 2>&1) || { log "netlab.sh loss failed: $out"; return 1; }
    fi
  done
  log "network lab $labenv_lab: $1 % loss each way on all $labenv_donors donor links"
}

# labenv_wait_listen NODE PORT [SECONDS [PID]]: until something listens on TCP PORT in NODE's namespace (default
# 10 s); returns 1 on timeout, or at once when PID is given and has exited. (ss in the root namespace does not see
# a namespace's sockets, so lib/common.sh's listen_port cannot find them.)
labenv_wait_listen() {
  local ns tenths=$((${3:-10} * 10)) pid=${4:-}
  ns=$(labenv_ns "$1")
  for _ in $(seq "$tenths"); do
    [[ -n $(ip netns exec "$ns" ss -Hltn "sport = :$2" 2>/dev/null) ]] && return 0
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# labenv_link_events SERVER_LOG: what a lossy network did to swapnbd-server so far, from its log (Warning level):
# "N links down, M slabs unmapped" (a link that times out fails its daemon, whose slabs go to the backup disk).
labenv_link_events() {
  local down unmapped
  down=$(grep -c 'link down' "$1" 2>/dev/null || true)
  unmapped=$(grep -c 'unmapped from' "$1" 2>/dev/null || true)
  echo "${down:-0} links down, ${unmapped:-0} slabs unmapped"
}

# labenv_describe: one line for a report, what the lab is.
labenv_describe() {
  echo "Network lab (scripts/netlab.sh): every donor daemon and the nbdkit chain's back end in a network namespace of" \
    "its own behind a veth pair, the server and the chain's front in the server-side namespace, reached over their" \
    "Unix sockets from the root namespace; loss = nftables dropping that share of packets each way on every donor link."
}
