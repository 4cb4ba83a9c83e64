#!/usr/bin/env bash
# Boots Debian's kernel under qemu (TCG) with the base initramfs plus GUEST_SCRIPT as /test.sh, and exits with the
# script's exit code. The guest reaches the NBD server on host loopback PORT as 10.0.2.100:PORT (qemu user
# networking, restrict=on: the guest can reach nothing else).
#   run-guest.sh --port PORT --script GUEST_SCRIPT [--env KEY=VALUE]... [--mem 512M] [--timeout 300] [--log FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port="" script="" mem=512M timeout=300 log="" envs=()
while (($#)); do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    *) echo "run-guest: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$port" && -f "$script" ]] || { echo "run-guest: need --port PORT --script FILE" >&2; exit 2; }

eval "$("$here/prepare.sh" | sed 's/^/local_/')"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"
install -m 0755 "$script" "$work/root/test.sh"
{
  echo "export NBD_HOST=10.0.2.100 NBD_PORT=$port"
  for kv in "${envs[@]}"; do printf 'export %q\n' "$kv"; done
} >"$work/root/test.env"
(cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/extra.cpio.gz"
# The kernel unpacks concatenated archives in order, so the test files land on top of the base image.
cat "$local_initrd" "$work/extra.cpio.gz" >"$work/initrd.cpio.gz"

log=${log:-$work/console.log}
set +e
timeout --kill-after=10 "$timeout" qemu-system-x86_64 -accel tcg -m "$mem" -smp 1 -nographic -no-reboot \
  -kernel "$local_kernel" -initrd "$work/initrd.cpio.gz" \
  -append "console=ttyS0 panic=-1 loglevel=4 random.trust_cpu=on" \
  -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:$port-cmd:nc -N 127.0.0.1 $port" \
  -device e1000,netdev=n0 </dev/null >"$log" 2>&1
qemu_status=$?
set -e
code=$(tr -d '\r' <"$log" | sed -n 's/^GUEST-EXIT: \([0-9]*\).*/\1/p' | tail -1)
if [[ -z "$code" ]]; then
  echo "run-guest: the guest did not finish (qemu exit $qemu_status); console log tail:" >&2
  tail -n 30 "$log" >&2
  exit 124
fi
exit "$code"
