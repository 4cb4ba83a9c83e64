# Shared by scripts/demo.sh and scripts/bench-swap.sh (bash; source it): a memory-limited cgroup for a workload,
# the SwapNbd system (three donor daemons + the server with a backup file) on loopback or in a network lab, and their
# teardown.
# Callers set `root` (the repository) and `work` (a scratch directory) first. Sources lib/common.sh (log, die,
# parse_bytes, stop_pids, wait_for_socket, free_ports) and lib/netlab-env.sh (a network lab for the donors).
# shellcheck shell=bash
# shellcheck disable=SC2154  # root and work are the caller's (above)
# shellcheck disable=SC2034  # cgroup_tasks, cgroup_kind, daemon_ports and daemon_pids are results for the caller

# shellcheck source=common.sh
. "$root/scripts/lib/common.sh"
# shellcheck source=netlab-env.sh
. "$root/scripts/lib/netlab-env.sh"

# swapenv_make_cgroup NAME LIMIT_BYTES: a memory group (v1 inside our own v1 group, else v2 under the root).
# Sets: cgroup (its directory), cgroup_tasks (write a pid there to move it in), cgroup_kind (for messages).
# LIMIT_BYTES "max" makes a group without a limit.
swapenv_make_cgroup() {
  local name=$1 limit=$2 own_v1
  own_v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
  if [[ -n $own_v1 && -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
    cgroup=/sys/fs/cgroup/memory${own_v1%/}/swapnbd-$name
    mkdir "$cgroup"
    [[ $limit == max ]] || echo "$limit" >"$cgroup/memory.limit_in_bytes"
    cgroup_tasks=$cgroup/tasks
    cgroup_kind="cgroup v1 memory.limit_in_bytes"
  elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    # v2: a group directly under the root (a non-root group with processes cannot have controller-enabled children).
    grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || echo +memory >/sys/fs/cgroup/cgroup.subtree_control
    cgroup=/sys/fs/cgroup/swapnbd-$name
    mkdir "$cgroup"
    echo "$limit" >"$cgroup/memory.max"
    [[ -f $cgroup/memory.swap.max ]] && echo max >"$cgroup/memory.swap.max"
    cgroup_tasks=$cgroup/cgroup.procs
    cgroup_kind="cgroup v2 memory.max"
  else
    log "no memory cgroup controller (cgroup v1 memory or v2 with memory) on this machine"
    return 1
  fi
}

# Kills what is left in the group and removes it; returns 1 if it could not.
swapenv_remove_cgroup() {
  [[ -n ${cgroup:-} && -d $cgroup ]] || return 0
  local procs=$cgroup/tasks
  [[ -f $procs ]] || procs=$cgroup/cgroup.procs
  for _ in $(seq 50); do
    xargs -r kill -9 <"$procs" 2>/dev/null || true
    rmdir "$cgroup" 2>/dev/null && { cgroup=""; return 0; }
    sleep 0.1
  done
  log "could not remove cgroup $cgroup"
  return 1
}

# swapenv_start_system EXPORT_BYTES SLAB_SIZE: three donors and swapnbd-server in slab mode on $work/nbd.sock,
# backup file $work/backup.img, status file $work/status.json, all holding the cluster key $work/cluster.key (made
# for this run with swapnbd-daemon keygen, mode 0600, gone with $work). Each donor listens on a port of its own
# choosing (127.0.0.1:0), read back once it listens, so no other process can take it in between. setsid: a Ctrl-C
# in the terminal reaches only the caller, which stops these itself after swapoff. Sets: daemon_pids, daemon_ports,
# server_pid; returns 1 (the donors' logs on stderr) if a donor does not listen. The array swapenv_server_args (if
# set) is added to the server's command line, e.g. (--seal-pages false). With a network lab up (labenv_up, at least
# three donor links), donor K runs in lab node K on 198.18.K.2:7070 and the server in the lab's server namespace.
swapenv_start_system() {
  local export_size=$1 slab_size=$2 i port key=$work/cluster.key lab_port=7070
  local -a in_srv=() in_donor=() hosts=(127.0.0.1 127.0.0.1 127.0.0.1)
  daemon_pids=() daemon_ports=()
  [[ -f $key ]] || "$root/out/swapnbd-daemon" keygen "$key" >/dev/null || { log "cannot create the cluster key $key"; return 1; }
  for i in 1 2 3; do
    port=0
    if [[ -n $labenv_lab ]]; then
      # Inside a fresh namespace every port is free, so a fixed one (ss in the root namespace cannot see it).
      in_donor=(ip netns exec "$(labenv_ns "$i")") hosts[i - 1]=$(labenv_addr "$i") port=$lab_port
    fi
    setsid "${in_donor[@]}" "$root/out/swapnbd-daemon" --listen "${hosts[i - 1]}:$port" --auth-key-file "$key" \
      --max-memory 2GiB --headroom 512MiB --log-level Warning >"$work/daemon-$i.log" 2>&1 </dev/null &
    daemon_pids+=($!)
  done
  for i in 0 1 2; do
    if [[ -n $labenv_lab ]]; then
      port=$lab_port
      labenv_wait_listen $((i + 1)) "$port" 30 "${daemon_pids[$i]}" || port=""
    else
      port=$(listen_port "${daemon_pids[$i]}" 30) || port=""
    fi
    [[ -n $port ]] || { log "swapnbd-daemon $((i + 1)) does not listen:"; cat "$work/daemon-$((i + 1)).log" >&2; return 1; }
    daemon_ports+=("$port")
  done
  {
    if [[ -n $labenv_lab ]]; then echo "# three donors behind the links of network lab $labenv_lab"; else echo "# three donors on this machine"; fi
    echo 3
    for i in 0 1 2; do echo "${hosts[i]}:${daemon_ports[i]}"; done
  } >"$work/portal.list"
  [[ -z $labenv_lab ]] || in_srv=(ip netns exec "$(labenv_ns srv)")
  setsid "${in_srv[@]}" "$root/out/swapnbd-server" --portal "$work/portal.list" --backup-disk "$work/backup.img" --auth-key-file "$key" --size "$export_size" \
    --slab-size "$slab_size" --socket "$work/nbd.sock" --listen "" --status-file "$work/status.json" --log-level Warning \
    ${swapenv_server_args[@]+"${swapenv_server_args[@]}"} >"$work/server.log" 2>&1 </dev/null &
  server_pid=$!
}

# How many daemons the server reaches now (from its status file; empty before the file exists).
swapenv_daemons_up() {
  python3 -c 'import json, sys; print(sum(d["up"] for d in json.load(open(sys.argv[1]))["slabs"]["daemons"]))' "$work/status.json" 2>/dev/null
}

# swapenv_slab_summary STATUS_FILE: from the server's status file, the prefetcher's pages (READ pages from its cache /
# past it, asked of donors ahead, never read), READ bytes answered by daemons and by the backup disk, and write pieces
# left disk-only by a full write-behind queue, as KEY=VALUE words.
swapenv_slab_summary() {
  python3 - "$1" <<'PY' 2>/dev/null || echo "prefetch=?"
import json, sys
s = json.load(open(sys.argv[1]))["slabs"]
p = lambda k: s.get(k, 0) >> 12
print(f"prefetch_hit={p('prefetchHitBytes')} prefetch_miss={p('prefetchMissBytes')} "
      f"prefetch_issued={p('prefetchIssuedBytes')} prefetch_wasted={p('prefetchWastedBytes')} "
      f"read_daemons={s.get('readBytesFromDaemons', 0) >> 20}MiB read_disk={s.get('readBytesFromDisk', 0) >> 20}MiB "
      f"writes_queue_full={s.get('writesQueueFull', 0)}")
PY
}

# swapenv_cpu_seconds PID...: the CPU time (user + system, every thread) the live processes PID... have used so far,
# in seconds to one place; a swap workload's cost in the servers shows here when its wall time hides it (two cores
# shared by the workload, the kernel's swap path and the servers).
swapenv_cpu_seconds() {
  local ticks hz
  ticks=$(cpu_ticks "$@") hz=$(getconf CLK_TCK)
  echo "$((ticks / hz)).$((ticks % hz * 10 / hz))"
}

# swapenv_stop_servers: stops what swapenv_start_system (and a caller's nbdkit_pid / nbdkit_back_pid) started, the
# servers before the donors, and removes the run's backup and status files.
swapenv_stop_servers() {
  stop_pids "$server_pid" "${nbdkit_pid:-}"
  stop_pids "${daemon_pids[@]}" "${nbdkit_back_pid:-}"
  server_pid="" nbdkit_pid="" nbdkit_back_pid="" daemon_pids=()
  rm -f "$work/backup.img" "$work/status.json"
}

# Waits up to 30 s until the server listens and reaches all three daemons.
swapenv_wait_system() {
  for _ in $(seq 300); do
    [[ -S $work/nbd.sock && -s $work/status.json && $(swapenv_daemons_up) == 3 ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || { log "swapnbd-server exited:"; tail -n 20 "$work/server.log" >&2; return 1; }
    sleep 0.1
  done
  log "the server did not reach all three daemons within 30 s"
  return 1
}

# Runs COMMAND... inside $cgroup (the shell moves itself in, then execs).
swapenv_run_in_cgroup() {
  sh -c 'echo $$ >"$1" && shift && exec "$@"' sh "$cgroup_tasks" "$@"
}
