#!/usr/bin/env bash
# Boots Debian's kernel under qemu (TCG) with the base initramfs from prepare.sh plus a second cpio holding
# GUEST_SCRIPT as /test.sh, runs it with the real kernel nbd client, and exits with the script's exit code.
#
#   run-guest.sh --port PORT --script GUEST_SCRIPT [--env KEY=VALUE]... [--file SRC[:DEST]]... [--mem 512M]
#                [--smp 2] [--timeout 300] [--log FILE] [--out FILE] [--append 'KERNEL ARGS'] [--console]
#                [--forward PORT]... [--disk FILE]... [--blkdebug CFG] [--accel tcg|kvm|auto] [--serial2 FILE]
#                [--monitor SOCKET]
#
# The guest reaches the NBD server listening on host 127.0.0.1:PORT as 10.0.2.100:PORT (env NBD_HOST, NBD_PORT).
# qemu user networking runs with restrict=on, so the guest can reach nothing else.
# --forward another host loopback port the guest reaches as 10.0.2.100:PORT (e.g. donor daemons for a server that
#           runs in the guest); with --forward, --port may be left out (no NBD_PORT then)
# --disk    a file given to the guest as the next virtio disk (/dev/vda, /dev/vdb, ...), raw
# --blkdebug every --disk goes through qemu's blkdebug driver with the rules in CFG ([inject-error] sections: a disk
#           that fails given sectors with EIO, as a failing drive does); the guest gets each error reported
#           (werror/rerror=report: never a paused VM)
# --serial2 the guest's ttyS2 written to FILE (a guest process's log that the host reads even if the guest wedges)
# --monitor a qemu monitor on the Unix socket SOCKET (e.g. "sendkey alt-sysrq-t": every task's stack on the console)
# --accel   tcg (default; SWAPNBD_QEMU_ACCEL sets the default), kvm, or auto: kvm when /dev/kvm opens, else tcg
# --env     extra environment for /test.sh (repeatable)        --file  extra file for the guest (default DEST /SRC's name)
# --log     keep the full console log (kernel messages included) --console  also stream the console to stderr
# --out     the guest script's own output (ttyS1), written to FILE as the guest prints it: a host can watch it
# Every script in scripts/kernel/guests/ is in the guest as /guests/NAME, for test scripts that share a workload.
# Prints the guest script's output on stdout. Exit: the script's code; 124 on timeout; 125 if the guest never
# reported (kernel panic, qemu failure); 2 on bad usage.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; exit 2; }
port="" script="" mem=512M smp=2 timeout=300 log="" out="" append="" console=0 envs=() files=() forwards=() disks=()
serial2="" monitor="" blkdebug=""
accel=${SWAPNBD_QEMU_ACCEL:-tcg}
while (($#)); do
  case "$1" in
    --port) port=${2:?}; shift 2 ;;
    --script) script=${2:?}; shift 2 ;;
    --env) envs+=("${2:?}"); shift 2 ;;
    --file) files+=("${2:?}"); shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --log) log=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --append) append=${2:?}; shift 2 ;;
    --console) console=1; shift ;;
    --forward) forwards+=("${2:?}"); shift 2 ;;
    --disk) disks+=("${2:?}"); shift 2 ;;
    --accel) accel=${2:?}; shift 2 ;;
    --serial2) serial2=${2:?}; shift 2 ;;
    --monitor) monitor=${2:?}; shift 2 ;;
    --blkdebug) blkdebug=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run-guest: unknown argument $1" >&2; usage ;;
  esac
done
[[ -f "$script" ]] || usage
[[ "$port" =~ ^[0-9]+$ || ( -z "$port" && ${#forwards[@]} -gt 0 ) ]] || usage
for p in "${forwards[@]}"; do [[ "$p" =~ ^[0-9]+$ ]] || usage; done
for d in "${disks[@]}"; do
  [[ -f "$d" || -b "$d" ]] || { echo "run-guest: --disk $d: no such file" >&2; exit 2; }
  [[ "$d" != *,* ]] || { echo "run-guest: --disk path must not contain a comma" >&2; exit 2; }
done
if [[ -n "$blkdebug" ]]; then
  [[ -f "$blkdebug" ]] || { echo "run-guest: --blkdebug $blkdebug: no such file" >&2; exit 2; }
  [[ "$blkdebug" != *[,:]* ]] || { echo "run-guest: --blkdebug path must not contain a comma or colon" >&2; exit 2; }
  for d in "${disks[@]}"; do
    [[ "$d" != *:* ]] || { echo "run-guest: with --blkdebug, a --disk path must not contain a colon" >&2; exit 2; }
  done
fi
case "$accel" in
  tcg | kvm) ;;
  auto)
    # /dev/kvm may exist and still refuse (no VT-x in a VM, no permission): then emulate.
    accel=tcg
    if [[ -r /dev/kvm && -w /dev/kvm ]] && (exec 3<>/dev/kvm) 2>/dev/null; then accel=kvm; fi
    ;;
  *) usage ;;
esac
[[ "$timeout" =~ ^[0-9]+$ ]] || usage

vmlinuz="" initramfs=""
while IFS='=' read -r key value; do
  case "$key" in
    vmlinuz) vmlinuz=$value ;;
    initramfs) initramfs=$value ;;
  esac
done < <("$here/prepare.sh")
[[ -f "$vmlinuz" && -f "$initramfs" ]] || { echo "run-guest: prepare.sh gave no kernel/initramfs" >&2; exit 125; }

# No commas in these paths: qemu's option syntax would split them (mktemp's default names have none).
work=$(mktemp -d)
qemu_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- per-test cpio: /test.sh, /test.env, extra files --------------------------------------------------------------
mkdir -p "$work/root/guests"
install -m 0755 "$script" "$work/root/test.sh"
install -m 0755 "$here"/guests/*.sh "$work/root/guests/"
# POSIX single quoting: the guest shell is busybox ash, so bash's printf %q ($'...') is not safe to use.
squote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
  echo "NBD_HOST=10.0.2.100"
  [[ -n "$port" ]] && echo "NBD_PORT=$port"
  echo "QEMU_ACCEL=$accel"
  for kv in "${envs[@]}"; do
    key=${kv%%=*}
    [[ "$kv" == *=* && "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "run-guest: bad --env '$kv'" >&2; exit 2; }
    echo "$key=$(squote "${kv#*=}")"
  done
} >"$work/root/test.env"
for spec in "${files[@]}"; do
  src=${spec%%:*}
  dest=/$(basename "$src")
  [[ "$spec" == *:* ]] && dest=${spec#*:}
  [[ -e "$src" && "$dest" == /* ]] || { echo "run-guest: bad --file '$spec'" >&2; exit 2; }
  mkdir -p "$work/root$(dirname "$dest")"
  cp -a "$src" "$work/root$dest"
done
(cd "$work/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/extra.cpio.gz"
# Linux unpacks concatenated (separately compressed) cpio archives in order: the test files land on top of the base.
cat "$initramfs" "$work/extra.cpio.gz" >"$work/initrd.cpio.gz"

# --- guest networking ------------------------------------------------------------------------------------------------
# guestfwd with a chardev (tcp:127.0.0.1:PORT) is ONE host connection shared by every guest connection: a second
# connection (nbd-client -C 2) gets its bytes mixed into the first stream and hangs. The cmd: form runs a relay per
# guest connection (its stdin/stdout are the guest socket; libslirp also points stderr there, hence -lf).
# That socket is a loopback TCP pair without TCP_NODELAY (libslirp's socketpair with OOB), and socat copies in 8 KiB
# pieces: Nagle then held the tail of every 16-64 KiB READ reply for a delayed ACK, about 40 ms each (32 KiB reads
# at 54 ms instead of ~4). setsockopt-int=6:1:1 is TCP_NODELAY on the stdio side; -b 1 MiB copies a reply whole.
relay_to() {
  if command -v socat >/dev/null; then
    echo "socat -b 1048576 -lf $work/relay.log STDIO,,setsockopt-int=6:1:1 TCP:127.0.0.1:$1,,nodelay"
  else
    echo "busybox nc 127.0.0.1 $1"
  fi
}
netdev="user,id=n0,restrict=on"
for p in $port "${forwards[@]}"; do
  netdev+=",guestfwd=tcp:10.0.2.100:$p-cmd:$(relay_to "$p")"
done
drives=()
for d in "${disks[@]}"; do
  if [[ -n "$blkdebug" ]]; then
    drives+=(-drive "file=blkdebug:$blkdebug:$d,if=virtio,format=raw,werror=report,rerror=report")
  else
    drives+=(-drive "file=$d,if=virtio,format=raw")
  fi
done
if [[ -n "$serial2" ]]; then
  [[ "$serial2" != *,* ]] || { echo "run-guest: --serial2 path must not contain a comma" >&2; exit 2; }
  : >"$serial2"
  drives+=(-serial "file:$serial2")
fi
if [[ -n "$monitor" ]]; then
  [[ "$monitor" != *,* ]] || { echo "run-guest: --monitor path must not contain a comma" >&2; exit 2; }
  drives+=(-monitor "unix:$monitor,server=on,wait=off")
fi

# --- boot --------------------------------------------------------------------------------------------------------------
console_log=${log:-$work/console.log}
guest_out=${out:-$work/guest.out}
[[ "$guest_out" != *,* ]] || { echo "run-guest: --out path must not contain a comma" >&2; exit 2; }
: >"$console_log"
: >"$guest_out"
cpu=()
# KVM: the host's CPU, so the guest has AES-NI (sealing picks AES-GCM with it, ChaCha20 without).
[[ "$accel" == kvm ]] && cpu=(-cpu host)
start=$(date +%s)
# -accel tcg by default: KVM was found to hang with this kernel on some of these machines (--accel). ttyS0 = console (stdio, monitor muxed),
# ttyS1 = the test's own output (see init.sh). autonegotiation=off: the emulated e1000 otherwise reports link ~2 s
# after the driver loads, and init waits for carrier.
timeout --kill-after=10 "$timeout" qemu-system-x86_64 -accel "$accel" "${cpu[@]}" -m "$mem" -smp "$smp" -nographic -no-reboot \
  -serial mon:stdio -serial "file:$guest_out" \
  -kernel "$vmlinuz" -initrd "$work/initrd.cpio.gz" \
  -append "console=ttyS0 panic=-1 loglevel=7 random.trust_cpu=on $append" \
  -netdev "$netdev" -device e1000,netdev=n0,autonegotiation=off "${drives[@]}" \
  </dev/null >"$console_log" 2>&1 &
qemu_pid=$!
if ((console)); then
  tail -n +1 -f --pid="$qemu_pid" "$console_log" >&2 &
fi
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
wait || true
elapsed=$(($(date +%s) - start))

tr -d '\r' <"$guest_out" | grep -v '^GUEST-EXIT: ' || true
code=$(tr -d '\r' <"$guest_out" | sed -n 's/^GUEST-EXIT: \([0-9][0-9]*\)$/\1/p' | tail -n 1)
if [[ -z "$code" ]]; then
  if ((qemu_status == 124 || qemu_status == 137)); then
    echo "run-guest: timed out after ${timeout}s; console log tail:" >&2
    code=124
  else
    echo "run-guest: the guest ended without reporting (qemu exit $qemu_status); console log tail:" >&2
    code=125
  fi
  tail -n 40 "$console_log" | tr -d '\r' >&2
fi
if ((code != 0)) && [[ -s "$work/relay.log" ]]; then
  echo "run-guest: relay (guest -> 127.0.0.1:$port) errors:" >&2
  tail -n 10 "$work/relay.log" >&2
fi
echo "run-guest: guest exit $code after ${elapsed}s${log:+, console log $log}" >&2
exit "$code"
