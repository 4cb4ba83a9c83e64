#!/bin/sh
# Makes a SwapNbd server the machine's swap: /dev/nbdX through the kernel's nbd driver (nbd-client), or, on a kernel
# without the nbd module, a loop device over an nbdfuse file. mkswap + swapon on it. Everything it sets up is recorded
# in a state file, step by step, so that swap-detach.sh undoes exactly that, in the right order, even after a partial
# attach. POSIX sh: runs under dash, bash and busybox ash (a busybox guest has nbd-client but no nbdfuse).
set -eu

usage() {
  cat <<'EOF'
usage: swap-attach.sh [--socket PATH | --tcp HOST:PORT] [options]

  --socket PATH        the server's Unix socket (default /run/swapnbd/swapnbd.sock, where swapnbd-server
                       listens when started without --listen or --socket)
  --tcp HOST:PORT      the server's TCP endpoint (swapnbd-server --listen HOST:PORT); whoever can reach
                       it reads and writes the swap device, so prefer the socket
  --export NAME        export name (default: the server's default export)
  --name NAME          name of this attachment; its state file is RUNDIR/attach-NAME (default swapnbd)
  --priority PRIO      swapon priority, -1..32767; higher is used first (default 100)
  --discard            swapon --discard: freed swap pages are trimmed on the server
  --connections N      connections to the server (nbd-client -C N, nbdfuse -C N; default 2)
  --device /dev/nbdX   nbd device to use (default: the first free one)
  --persist            stay connected across a server restart: swapnbd-client attach --persist (netlink:
                       the kernel holds requests while it reconnects and hands over a new socket), or
                       nbd-client -nonetlink -persist -swap where swapnbd-client cannot be used
  --client auto|swapnbd|nbd-client
                       who attaches /dev/nbdX. auto (default): swapnbd-client (out/ beside this script, or
                       on PATH) when the kernel has the nbd netlink family, else Debian's nbd-client
  --mode auto|nbd|fuse auto (default): nbd when the kernel has the nbd module, else nbdfuse + loop device
  --page-cluster N|keep  vm.page-cluster while attached (swap readahead of 2^N pages; default 3, the kernel's
                       default, which measured best with the server's prefetcher too: README, "Prefetching
                       swap-in"); the value before is restored by swap-detach.sh. keep: leave it alone

Prints the swap device on stdout (messages go to stderr). Undo with: swap-detach.sh --name NAME.
RUNDIR is $SWAPNBD_RUN_DIR, default /run/swapnbd. Run as root.
EOF
}

say() { echo "swap-attach: $*" >&2; }
die() { say "$*"; exit 1; }

socket="" tcp="" export_name="" name=swapnbd priority=100 discard="" connections=2 device="" persist="" mode=auto
client=auto page_cluster=3
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --discard) discard=1; shift; continue ;;
    --persist) persist=1; shift; continue ;;
    --socket|--tcp|--export|--name|--priority|--connections|--device|--mode|--client|--page-cluster)
      [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; } ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  case $1 in
    --socket) socket=$2 ;;
    --tcp) tcp=$2 ;;
    --export) export_name=$2 ;;
    --name) name=$2 ;;
    --priority) priority=$2 ;;
    --connections) connections=$2 ;;
    --device) device=$2 ;;
    --mode) mode=$2 ;;
    --client) client=$2 ;;
    --page-cluster) page_cluster=$2 ;;
  esac
  shift 2
done

if [ -n "$socket" ] && [ -n "$tcp" ]; then die "give --socket or --tcp, not both"; fi
default_socket=/run/swapnbd/swapnbd.sock
if [ -z "$socket" ] && [ -z "$tcp" ]; then
  socket=$default_socket
  [ -S "$socket" ] || die "no server socket at the default $socket (is swapnbd-server running? else give --socket PATH or --tcp HOST:PORT)"
fi
case $name in ''|*[!A-Za-z0-9._-]*) die "--name '$name': letters, digits, '.', '_' and '-' only" ;; esac
case $priority in ''|*[!0-9-]*|?*-*) die "--priority '$priority' is not a number from -1 to 32767" ;; esac
case $page_cluster in keep|[0-9]) ;; *) die "--page-cluster '$page_cluster' is not 0..9 or keep" ;; esac
if ! { [ "$priority" -ge -1 ] && [ "$priority" -le 32767 ]; }; then die "--priority '$priority' is not a number from -1 to 32767"; fi
case $connections in ''|*[!0-9]*) die "--connections '$connections' is not a count" ;; esac
[ "$connections" -ge 1 ] || die "--connections must be at least 1"
case $mode in auto|nbd|fuse) ;; *) die "--mode '$mode': auto, nbd or fuse" ;; esac
case $client in auto|swapnbd|nbd-client) ;; *) die "--client '$client': auto, swapnbd or nbd-client" ;; esac
host="" port=""
if [ -n "$tcp" ]; then
  host=${tcp%:*} port=${tcp##*:}
  case $port in ''|*[!0-9]*) die "--tcp '$tcp' is not HOST:PORT" ;; esac
  if ! { [ -n "$host" ] && [ "$host" != "$tcp" ]; }; then die "--tcp '$tcp' is not HOST:PORT"; fi
  host=${host#[} host=${host%]}
fi
if [ -n "$socket" ] && [ ! -S "$socket" ]; then die "--socket $socket: no server socket there (is swapnbd-server running?)"; fi
[ "$(id -u)" -eq 0 ] || die "run as root (nbd-client, losetup, mkswap and swapon need it)"

need() { # tool package
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing: apt-get install $2 (scripts/setup.sh installs it)"
}
need mkswap util-linux
need swapon mount

run_dir=${SWAPNBD_RUN_DIR:-/run/swapnbd}
state=$run_dir/attach-$name
# 0700: by default this is also the server's socket directory, which the server keeps from other users (it would
# set a 0755 one of ours to 0700 anyway). Only the directory itself: its parent (/run) exists.
if [ ! -d "$run_dir" ]; then
  mkdir -p "$(dirname "$run_dir")"
  mkdir -m 0700 "$run_dir" 2>/dev/null || [ -d "$run_dir" ] || die "cannot create $run_dir"
fi
[ ! -e "$state" ] || die "'$name' is already attached ($state); run swap-detach.sh --name $name first"

record() { echo "$1=$2" >>"$state"; }

# Any failure from here on undoes what was recorded so far.
attached=""
undo() {
  [ -z "$attached" ] || return 0
  say "attach failed; undoing what was set up"
  "$(dirname "$0")/swap-detach.sh" --name "$name" >&2 || say "detach failed too; see $state"
}
trap undo EXIT
trap 'exit 130' INT TERM
: >"$state"
record name "$name"

if [ "$mode" = auto ]; then
  if [ -d /sys/module/nbd ] || modprobe nbd 2>/dev/null; then
    mode=nbd
  else
    say "this kernel has no nbd module (no /sys/module/nbd, modprobe nbd failed): using nbdfuse + a loop device"
    mode=fuse
  fi
fi
record mode "$mode"

if [ "$mode" = nbd ]; then
  [ -d /sys/module/nbd ] || modprobe nbd 2>/dev/null || die "--mode nbd: the kernel has no nbd module (modprobe nbd failed)"
  # swapnbd-client speaks the netlink interface, which can hand a new socket to a live device (RECONFIGURE).
  client_bin=""
  if [ "$client" != nbd-client ]; then
    for c in "$(dirname "$0")/../out/swapnbd-client" "$(command -v swapnbd-client 2>/dev/null || true)"; do
      if [ -n "$c" ] && [ -x "$c" ]; then client_bin=$c; break; fi
    done
    if [ -n "$client_bin" ] && ! "$client_bin" status >/dev/null 2>&1; then
      [ "$client" = auto ] || die "--client swapnbd: $("$client_bin" status 2>&1 | tail -n 1)"
      say "swapnbd-client cannot use this kernel's nbd netlink interface; using nbd-client"
      client_bin=""
    fi
    [ -n "$client_bin" ] || [ "$client" = auto ] || die "--client swapnbd: no swapnbd-client in $(dirname "$0")/../out or on PATH"
  fi
fi

if [ "$mode" = nbd ] && [ -n "$client_bin" ]; then
  if [ -n "$socket" ]; then
    uri="nbd+unix:///$export_name?socket=$socket"
  else
    case $host in *:*) uri="nbd://[$host]:$port/$export_name" ;; *) uri="nbd://$host:$port/$export_name" ;; esac
  fi
  set -- --connections "$connections" --block-size 4096
  if [ -n "$device" ]; then set -- "$@" --index "${device#/dev/nbd}"; fi
  record nbd_client swapnbd
  if [ -n "$persist" ]; then
    # Stays up: on a dead connection (LINK_DEAD, or its own health check) it reconnects and hands the new socket to
    # the kernel, which holds requests for the dead-connection timeout meanwhile. A request timeout is what lets the
    # kernel notice a dead server at all (without one, requests on a dead socket wait for ever).
    set -- "$@" --persist --timeout 30 --dead-timeout 120
    out=$run_dir/client-$name.out
    rm -f "$out"
    sid=""
    if command -v setsid >/dev/null 2>&1; then sid=setsid; fi
    $sid "$client_bin" attach "$uri" "$@" >"$out" 2>"$run_dir/client-$name.log" </dev/null &
    started=$!
    # A setsid that was a process group leader forks and exits: the client is then found by its command line.
    client_pid() {
      if kill -0 "$started" 2>/dev/null; then echo "$started"; return; fi
      for p in /proc/[0-9]*; do
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "attach $uri --connections"; then echo "${p#/proc/}"; return; fi
      done
    }
    i=0
    while [ ! -s "$out" ]; do
      i=$((i + 1))
      [ $i -le 300 ] || die "swapnbd-client attach $uri gave no device within 30 s: $(tail -n 5 "$run_dir/client-$name.log")"
      if [ $i -gt 20 ] && [ -z "$(client_pid)" ] && [ ! -s "$out" ]; then
        die "swapnbd-client attach $uri failed: $(tail -n 5 "$run_dir/client-$name.log")"
      fi
      sleep 0.1
    done
    record client_pid "$(client_pid)"
    device=$(head -n 1 "$out")
  else
    device=$("$client_bin" attach "$uri" "$@" 2>"$run_dir/client-$name.log") ||
      die "swapnbd-client attach $uri failed: $(tail -n 5 "$run_dir/client-$name.log")"
  fi
  [ -b "$device" ] || die "swapnbd-client attach gave '$device', not a block device"
  record nbd "$device"
  swap_device=$device
  what="swapnbd-client${persist:+ --persist} ${socket:-$host:$port} -> $device"
elif [ "$mode" = nbd ]; then
  need nbd-client nbd-client
  if [ -z "$device" ]; then
    for b in /sys/block/nbd*; do
      [ -e "$b" ] || continue
      if [ ! -e "$b/pid" ] && [ "$(cat "$b/size")" = 0 ]; then device=/dev/${b##*/}; break; fi
    done
    [ -n "$device" ] || die "no free /dev/nbdX (all connected); load nbd with more devices: modprobe nbd nbds_max=32"
  fi
  [ -b "$device" ] || die "--device $device is not a block device"
  [ ! -e "/sys/block/${device##*/}/pid" ] || die "$device is already connected; pick another with --device"
  # Recorded before nbd-client runs: detach disconnects it whatever state nbd-client left it in.
  record nbd "$device"
  # -b 4096: swap pages. No -t: a pause of the server (GC, a donor lost) must not fail requests, and without a
  # timeout the kernel only warns about slow requests. -N names the export in the NBD_OPT_GO handshake.
  set -- -b 4096 -C "$connections" -N "$export_name"
  if [ -n "$persist" ]; then set -- "$@" -nonetlink -persist -swap; fi
  if [ -n "$socket" ]; then
    nbd-client -unix "$socket" "$device" "$@" >&2 || die "nbd-client -unix $socket $device $* failed"
  else
    nbd-client "$host" "$port" "$device" "$@" >&2 || die "nbd-client $host $port $device $* failed"
  fi
  swap_device=$device
  what="nbd-client ${socket:-$host:$port} -> $device"
else
  need nbdfuse libnbd-bin
  need losetup mount
  if [ -n "$socket" ]; then
    uri="nbd+unix:///$export_name?socket=$socket"
  else
    case $host in *:*) uri="nbd://[$host]:$port/$export_name" ;; *) uri="nbd://$host:$port/$export_name" ;; esac
  fi
  fuse_dir=$run_dir/fuse-$name
  mkdir -p "$fuse_dir"
  record fuse_dir "$fuse_dir"
  # nbdfuse serves the file FUSE_DIR/disk until the directory is unmounted; -P writes its pid once it serves. It
  # runs in a session of its own (setsid): Ctrl-C in the terminal that attached, or closing it (SIGHUP), must not
  # take away the device that holds swapped pages.
  pid_file=$run_dir/nbdfuse-$name.pid
  rm -f "$pid_file"
  sid=""
  if command -v setsid >/dev/null 2>&1; then sid=setsid; fi
  $sid nbdfuse -C "$connections" -P "$pid_file" "$fuse_dir/disk" "$uri" >"$run_dir/nbdfuse-$name.log" 2>&1 </dev/null &
  started=$!
  record fuse_pid "$started"
  i=0
  while [ ! -s "$pid_file" ]; do
    i=$((i + 1))
    [ $i -le 300 ] || die "nbdfuse $uri did not serve within 30 s: $(cat "$run_dir/nbdfuse-$name.log")"
    # (A setsid that had to fork exits at once; its nbdfuse then writes the pid file shortly.)
    if ! kill -0 "$started" 2>/dev/null && [ $i -gt 20 ] && [ ! -s "$pid_file" ]; then
      die "nbdfuse $uri exited: $(cat "$run_dir/nbdfuse-$name.log")"
    fi
    sleep 0.1
  done
  fuse_pid=$(cat "$pid_file")
  [ "$fuse_pid" = "$started" ] || record fuse_pid "$fuse_pid"
  # nbdfuse is in the path of every swapped page: the OOM killer must never pick it.
  echo -1000 >"/proc/$fuse_pid/oom_score_adj" 2>/dev/null || say "warning: cannot protect nbdfuse ($fuse_pid) from the OOM killer (oom_score_adj -1000 needs CAP_SYS_RESOURCE)"
  # Direct I/O: the loop device reads and writes the FUSE file without caching its pages a second time (a swap-out
  # that allocates page cache is the wrong thing under memory pressure).
  if losetup --version 2>/dev/null | grep -q util-linux; then
    loop=$(losetup -f --show --direct-io=on "$fuse_dir/disk") || die "losetup $fuse_dir/disk failed"
  else
    # busybox losetup: neither --show nor --direct-io; the device is found through sysfs.
    losetup -f "$fuse_dir/disk" || die "losetup -f $fuse_dir/disk failed"
    loop=""
    for b in /sys/block/loop*; do
      if [ "$(cat "$b/loop/backing_file" 2>/dev/null)" = "$fuse_dir/disk" ]; then loop=/dev/${b##*/}; break; fi
    done
    [ -n "$loop" ] || die "losetup -f $fuse_dir/disk: no loop device shows it"
  fi
  record loop "$loop"
  [ "$(cat "/sys/block/${loop##*/}/loop/dio" 2>/dev/null)" = 1 ] || say "warning: $loop does not use direct I/O"
  swap_device=$loop
  what="nbdfuse $uri -> $fuse_dir/disk -> $loop"
fi

mkswap "$swap_device" >/dev/null || die "mkswap $swap_device failed"
record swap "$swap_device"
# Swap readahead: recorded before it changes, so detach puts the old value back (if nobody changed it since).
page_cluster_file=/proc/sys/vm/page-cluster
if [ "$page_cluster" != keep ] && [ -w "$page_cluster_file" ]; then
  page_cluster_before=$(cat "$page_cluster_file")
  if [ "$page_cluster_before" != "$page_cluster" ]; then
    record page_cluster_before "$page_cluster_before"
    record page_cluster "$page_cluster"
    echo "$page_cluster" >"$page_cluster_file" || die "cannot set vm.page-cluster to $page_cluster"
    say "vm.page-cluster $page_cluster_before -> $page_cluster (restored at detach)"
  fi
fi
set -- -p "$priority"
if ! swapon --help 2>&1 | grep -q -- '-p'; then
  # Debian's busybox swapon is built without priorities: the kernel then picks one below every other area's.
  say "warning: this swapon cannot set a priority; $swap_device gets the kernel's default (below other swap areas)"
  set --
fi
if [ -n "$discard" ]; then set -- -d "$@"; fi
swapon "$@" "$swap_device" || die "swapon $* $swap_device failed"
attached=1
size_kib=$(awk -v d="$swap_device" '$1 == d { print $3 }' /proc/swaps)
prio=$(awk -v d="$swap_device" '$1 == d { print $5 }' /proc/swaps)
say "$what: swap on, priority $prio, $((${size_kib:-0} / 1024)) MiB${discard:+, discard} (state $state)"
echo "$swap_device"
