#!/bin/sh
# Guest /init (busybox ash), installed into the base initramfs by prepare.sh. run-guest.sh appends a second cpio with
# /test.sh and /test.env. Protocol with run-guest.sh:
#   - ttyS0 is the console (kernel messages + everything below), saved as the console log;
#   - ttyS1 carries only the test's own output and the final "GUEST-EXIT: <code>" line, so the host can parse it
#     without kernel messages interleaved mid-line.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

out=/dev/ttyS1
[ -c "$out" ] || out=/dev/console
say() { echo "$*"; echo "$*" >"$out"; }

# Module order comes from prepare.sh (dependencies first).
while read -r ko; do
  insmod "/modules/$ko" || say "GUEST: insmod $ko failed"
done </modules/load.list

# qemu user networking defaults: guest 10.0.2.15/24, gateway 10.0.2.2; guestfwd maps 10.0.2.100:PORT to the host.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
# e1000 reports link a moment after "up"; a SYN sent before that is lost and costs a 1 s retransmit.
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done

set -a
# shellcheck source=/dev/null  # written by run-guest.sh
[ -f /test.env ] && . /test.env
set +a
say "GUEST-START: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu(s), $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"

code=127
if [ -f /test.sh ]; then
  chmod +x /test.sh
  # A fifo rather than a pipeline: the exit code is the script's own, and a background process that keeps the
  # script's stdout open (e.g. nbd-client -nonetlink sitting in NBD_DO_IT) cannot stop the guest from finishing.
  mkfifo /run/test.out
  tee "$out" </run/test.out &
  tee_pid=$!
  (cd /root && exec /test.sh) >/run/test.out 2>&1 </dev/null
  code=$?
  i=0
  while kill -0 "$tee_pid" 2>/dev/null && [ $i -lt 20 ]; do
    sleep 0.1
    i=$((i + 1))
  done
else
  say "GUEST: no /test.sh"
fi
say "GUEST-EXIT: $code"
sync
poweroff -f
# poweroff -f should not return; if it does, exiting init panics and panic=-1 + -no-reboot end qemu.
exit "$code"
