#!/bin/sh
# Guest: attach /dev/nbd0 with Debian's nbd-client (the real kernel client), write random data at a few offsets with
# O_DIRECT, read it back and compare checksums, then detach. Env: NBD_HOST, NBD_PORT, NBD_CONNECTIONS (2),
# NBD_EXPORT (""), NBD_SIZE (expected export size, optional), RW_MIB (32).
set -u
fail() { echo "RW-CHECK: FAIL $*"; exit 1; }
conns=${NBD_CONNECTIONS:-2}
mib=${RW_MIB:-32}
nbd-client "$NBD_HOST" "$NBD_PORT" /dev/nbd0 -b 4096 -C "$conns" -N "${NBD_EXPORT:-}" || fail "nbd-client could not attach"
size=$(blockdev --getsize64 /dev/nbd0)
echo "RW-CHECK: /dev/nbd0 size $size, $conns connections"
if [ -n "${NBD_SIZE:-}" ] && [ "$size" != "$NBD_SIZE" ]; then fail "size $size, expected $NBD_SIZE"; fi
dd if=/dev/urandom of=/tmp/data bs=1M count="$mib" 2>/dev/null || fail "no random data"
want=$(sha256sum /tmp/data | cut -d' ' -f1)
blocks=$((size / 1048576))
for at in 0 $((blocks / 2)) $((blocks - mib)); do
  dd if=/tmp/data of=/dev/nbd0 bs=1M seek="$at" oflag=direct conv=fsync 2>/dev/null || fail "write at ${at}MiB"
done
sync
echo 3 > /proc/sys/vm/drop_caches
for at in 0 $((blocks / 2)) $((blocks - mib)); do
  got=$(dd if=/dev/nbd0 bs=1M skip="$at" count="$mib" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "checksum mismatch at ${at}MiB"
done
echo "RW-CHECK: 3 x ${mib} MiB verified"
nbd-client -d /dev/nbd0 || fail "detach"
dmesg | grep -iE "nbd|block nbd" | tail -5
echo "RW-CHECK: PASS"
