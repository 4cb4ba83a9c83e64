#!/bin/sh
# Guest script (busybox ash, run by scripts/kernel/run-guest.sh): attach /dev/nbd0 with Debian's nbd-client (netlink,
# the real kernel client), write distinct random data at a few offsets with O_DIRECT, drop caches, read everything
# back and compare sha256, then detach. Prints "RW-CHECK: PASS" or "RW-CHECK: FAIL <why>"; exits 0/1.
# Env: NBD_HOST, NBD_PORT (set by run-guest.sh); NBD_CONNECTIONS (2); NBD_EXPORT (""); NBD_SIZE (expected export
# size in bytes, optional); RW_MIB (32, size of each region); NBD_BLOCK (4096).
set -u
dev=/dev/nbd0
conns=${NBD_CONNECTIONS:-2}
mib=${RW_MIB:-32}
attached=0

fail() {
  echo "RW-CHECK: FAIL $*"
  [ "$attached" = 1 ] && nbd-client -d "$dev" >/dev/null 2>&1
  exit 1
}

# 3.24 takes host and port positionally; the name must be given with -N (an empty name is the default export, and
# nbd-client then prints a harmless "oldstyle protocol is no longer supported" warning).
nbd-client "$NBD_HOST" "$NBD_PORT" "$dev" -b "${NBD_BLOCK:-4096}" -C "$conns" -N "${NBD_EXPORT:-}" ||
  fail "nbd-client could not attach $NBD_HOST:$NBD_PORT"
attached=1

size=$(blockdev --getsize64 "$dev") || fail "blockdev --getsize64"
# One blk-mq hardware queue per connection: this shows the kernel really took all the sockets.
set -- /sys/block/nbd0/mq/*
queues=$#
echo "RW-CHECK: $dev size $size bytes, $queues hw queue(s), logical block $(cat /sys/block/nbd0/queue/logical_block_size)"
if [ -n "${NBD_SIZE:-}" ] && [ "$size" != "$NBD_SIZE" ]; then fail "size $size, expected $NBD_SIZE"; fi
[ "$queues" = "$conns" ] || fail "$queues hw queues, expected $conns connections"
dmesg | grep -q "nbd0: detected capacity change" || fail "no 'nbd0: detected capacity change' in the kernel log"

blocks=$((size / 1048576))
[ "$blocks" -ge "$mib" ] || fail "export ($size bytes) smaller than one ${mib} MiB region"
mid=$(((blocks - mib) / 2))
last=$((blocks - mib))
# Distinct data per region, so a server that ignores or mangles offsets cannot pass.
for at in 0 "$mid" "$last"; do
  dd if=/dev/urandom of="/tmp/r$at" bs=1M count="$mib" 2>/dev/null || fail "no random data"
  dd if="/tmp/r$at" of="$dev" bs=1M seek="$at" oflag=direct conv=fsync,notrunc 2>/dev/null || fail "write at ${at} MiB"
done
# Small writes at an odd 4 KiB offset (not on a 1 MiB or 128 KiB boundary) with plain buffered IO + fsync.
odd=$((blocks * 256 / 3 + 1))
dd if=/dev/urandom of=/tmp/small bs=4096 count=3 2>/dev/null || fail "no random data"
dd if=/tmp/small of="$dev" bs=4096 seek="$odd" conv=fsync,notrunc 2>/dev/null || fail "write at 4 KiB block $odd"
sync
echo 3 >/proc/sys/vm/drop_caches

for at in 0 "$mid" "$last"; do
  want=$(sha256sum <"/tmp/r$at" | cut -d' ' -f1)
  got=$(dd if="$dev" bs=1M skip="$at" count="$mib" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "checksum mismatch in the ${mib} MiB region at ${at} MiB"
done
want=$(sha256sum </tmp/small | cut -d' ' -f1)
got=$(dd if="$dev" bs=4096 skip="$odd" count=3 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "checksum mismatch at 4 KiB block $odd"
echo "RW-CHECK: verified 3 x ${mib} MiB at 0, ${mid}, ${last} MiB and 12 KiB at 4 KiB block $odd"

why=$(/guests/nbd-detach.sh "$dev") || fail "$why"
attached=0
dmesg | grep -E "nbd|block nbd" | tail -n 5
echo "RW-CHECK: PASS"
