#!/usr/bin/env bash
# The demo: sets the machine up, starts swapnbd-server on loopback with a sparse 4 GiB memory export, shows what a
# client sees, drives load through it with swapnbd-client bench, and tears everything down (also on Ctrl-C).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" >/dev/null

work=$(mktemp -d /tmp/swapnbd-demo.XXXXXX)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=${DEMO_PORT:-10809}
sock="$work/nbd.sock"
"$root/out/swapnbd-server" --backend memory --size 4GiB --listen "127.0.0.1:$port" --socket "$sock" \
  --log-level Warning >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do [[ -S "$sock" ]] && break; sleep 0.1; done
[[ -S "$sock" ]] || { echo "demo: server did not start:"; cat "$work/server.log"; exit 1; }

echo "== swapnbd-server on 127.0.0.1:$port and $sock (RSS $(ps -o rss= -p "$server_pid") KiB)"
echo
echo "== swapnbd-client info nbd://127.0.0.1:$port"
"$root/out/swapnbd-client" info "nbd://127.0.0.1:$port"
echo
echo "== 4K random writes, QD32, 2 connections, 5 s (TCP)"
"$root/out/swapnbd-client" bench "nbd://127.0.0.1:$port" --rw randwrite --bs 4k --qd 32 --connections 2 --seconds 5
echo
echo "== 4K random reads, QD32, 2 connections, 5 s (Unix socket)"
"$root/out/swapnbd-client" bench "nbd+unix:///?socket=$sock" --rw randread --bs 4k --qd 32 --connections 2 --seconds 5
echo
echo "== server RSS after the load: $(ps -o rss= -p "$server_pid") KiB"
