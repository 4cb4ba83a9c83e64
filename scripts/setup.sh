#!/usr/bin/env bash
# Installs what SwapNbd's demo and tests need on a fresh Debian 12 machine (run as root), then builds out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"

# clang and zlib1g-dev: the NativeAOT builds (swapnbd-server, swapnbd-memtest; scripts/build.sh); util-linux: prlimit
# and setpriv for the tests that start the server without the right to lock memory, losetup for the swap tests;
# iproute2 and nftables: the network lab (scripts/netlab.sh); prometheus (with promtool): the metrics tests and the
# Grafana dashboard's queries; systemd (systemd-analyze) and kmod (the modprobe swapnbd-swap.service runs): the
# units' verify test; python3-yaml: the Kubernetes example's test; docker.io: the container tests (each starts a dockerd of its own;
# where systemd runs, the package also enables the system's docker.service, which the tests do not use);
# dnsmasq-base: the DNS server on loopback of the donors-from-DNS tests (dns:// and dns+srv:// portals).
need_packages nbdkit libnbd-bin fio qemu-utils qemu-system-x86 nbd-client busybox-static cpio socat procps python3 \
  clang clang-14 zlib1g-dev fuse3 util-linux mount iproute2 nftables jq prometheus systemd kmod python3-yaml docker.io dnsmasq-base

command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is required"

"$root/scripts/build.sh"
