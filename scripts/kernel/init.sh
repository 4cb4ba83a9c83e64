#!/bin/sh
# Guest /init: mounts, network (qemu user net), modules, then runs the test script appended as /test.sh.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /dev/pts /run && mount -t devpts devpts /dev/pts
insmod /modules/e1000.ko
insmod /modules/nbd.ko nbds_max=4
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
[ -f /test.env ] && . /test.env
echo "GUEST-START: $(uname -r)"
code=1
if [ -x /test.sh ]; then
  /test.sh
  code=$?
else
  echo "GUEST: no /test.sh"
fi
echo "GUEST-EXIT: $code"
sync
poweroff -f
