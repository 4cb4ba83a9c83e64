# shellcheck shell=bash
# Generic helpers shared by the bash scripts under scripts/ (source it): messages, packages, sizes, processes, ports.
# Messages start with "$prog: "; prog defaults to the calling script's name without .sh, a caller may set it first.
# Not for swap-attach.sh, swap-detach.sh and the guest scripts: those are POSIX sh, run under dash and busybox ash and
# are copied alone into the qemu guest, so they stay self-contained.

prog=${prog:-$(basename "$0" .sh)}

log() { echo "$prog: $*" >&2; }
die() { log "$*"; exit 1; }
# die_with STATUS MESSAGE: e.g. 2 for bad usage.
die_with() { local status=$1; shift; log "$*"; exit "$status"; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# --- packages --------------------------------------------------------------------------------------------------------
# Someone else may be running apt (CI images, parallel jobs): wait for the dpkg lock instead of failing.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt_updated=""

# apt-get update, at most once per script run (retried: mirrors fail now and then).
apt_update() {
  [[ -z $apt_updated ]] || return 0
  local try
  for try in 1 2 3 4 5; do
    if apt-get "${apt_opts[@]}" update -qq >&2; then apt_updated=1; return 0; fi
    log "apt-get update failed (attempt $try), retrying"
    sleep 10
  done
  return 1
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# need_packages ITEM...: ITEM is a Debian package (checked with dpkg) or COMMAND:PACKAGE (checked with command -v).
# Installs what is missing as root (one apt-get update first); as anyone else, names it and exits 1.
need_packages() {
  local item missing=()
  for item in "$@"; do
    if [[ $item == *:* ]]; then
      command -v "${item%%:*}" >/dev/null || missing+=("${item#*:}")
    else
      pkg_installed "$item" || missing+=("$item")
    fi
  done
  ((${#missing[@]})) || return 0
  is_root || die "missing packages ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
  log "installing ${missing[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
}

# --- sizes -----------------------------------------------------------------------------------------------------------
# SIZE -> bytes (4096, 512K, 64MiB, 1G, 1GiB); prints nothing and returns 1 for anything else.
parse_bytes() {
  local n=${1%%[!0-9]*} unit=${1##*[0-9]}
  [[ -n $n && $1 == "$n$unit" ]] || return 1
  case ${unit^^} in
    "" | B) echo "$n" ;; K | KB | KIB) echo $((n << 10)) ;; M | MB | MIB) echo $((n << 20)) ;; G | GB | GIB) echo $((n << 30)) ;;
    *) return 1 ;;
  esac
}

# --- processes -------------------------------------------------------------------------------------------------------
# stop_pids PID...: SIGTERM to all (a server shuts down gracefully and removes its socket), up to 10 s for all of them
# to exit, SIGKILL whatever is left, then reap the ones that are our children. Empty arguments are skipped.
stop_pids() {
  local pid alive
  local -a live=()
  for pid in "$@"; do [[ -n $pid ]] && live+=("$pid"); done
  ((${#live[@]})) || return 0
  for pid in "${live[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for pid in "${live[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${live[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${live[@]}"; do wait "$pid" 2>/dev/null || true; done
  return 0
}

# cpu_ticks PID...: the CPU time (user + system, every thread) the processes PID... have used so far, in clock ticks
# (getconf CLK_TCK a second); an empty argument or a process gone counts 0. The fields are read after the ") " that
# ends the command name, which may itself hold spaces.
cpu_ticks() {
  local pid stat ticks=0
  local -a fields
  for pid in "$@"; do
    if [[ -z $pid ]] || ! read -r stat 2>/dev/null <"/proc/$pid/stat"; then continue; fi
    read -r -a fields <<<"${stat##*) }"
    ticks=$((ticks + fields[11] + fields[12]))
  done
  echo "$ticks"
}

# --- sockets and ports -----------------------------------------------------------------------------------------------
# wait_for_socket PATH [SECONDS [PID]]: until PATH is a Unix socket (default 10 s); returns 1 on timeout, or at once
# when PID is given and has exited.
wait_for_socket() {
  local path=$1 tenths=$((${2:-10} * 10)) pid=${3:-}
  for _ in $(seq "$tenths"); do
    [[ -S $path ]] && return 0
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  [[ -S $path ]]
}

# wait_for_port PORT [SECONDS [PID]]: until something listens on TCP PORT (checked with ss, so the listener sees no
# stray connection; default 10 s); returns 1 on timeout, or at once when PID is given and has exited.
wait_for_port() {
  local port=$1 tenths=$((${2:-10} * 10)) pid=${3:-}
  for _ in $(seq "$tenths"); do
    [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]] && return 0
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, on one line (the kernel picks them while all are held).
# Only for programs that cannot listen on port 0 and report the port they got (nbdkit): another process may take
# the port between this and the bind.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))' "$1"
}

# listen_port PID [SECONDS]: the TCP port process PID listens on, once it does (default 10 s; from ss, so a server
# started on port 0 is found without parsing its log); prints nothing and returns 1 on timeout or when PID exits.
listen_port() {
  local pid=$1 tenths=$((${2:-10} * 10)) port
  for _ in $(seq "$tenths"); do
    port=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$pid," 'index($0, p) { sub(/.*:/, "", $4); print $4; exit }')
    [[ -n $port ]] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
