#!/bin/sh
# Guest helper (busybox ash; run-guest.sh ships it as /guests/nbd-detach.sh): nbd-client -d DEV, then up to 5 s for
# the kernel to clear the device's size, which it does once the sockets are gone. Exit 0 when detached; else 1, with
# the reason as the one line on stdout (callers pass it to their own FAIL line).
#
#   /guests/nbd-detach.sh /dev/nbd0
set -u
dev=${1:?usage: nbd-detach.sh /dev/nbdX}
size=/sys/block/${dev#/dev/}/size
nbd-client -d "$dev" >&2 || { echo "nbd-client -d"; exit 1; }
i=0
while [ "$(cat "$size")" != 0 ] && [ $i -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done
[ "$(cat "$size")" = 0 ] || { echo "$dev still has a size after nbd-client -d"; exit 1; }
