#!/usr/bin/env bash
# Installs what SwapNbd's demo and tests need on a fresh Debian 12 machine (run as root), then builds out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(nbdkit libnbd-bin fio qemu-utils qemu-system-x86 nbd-client busybox-static cpio socat procps python3 clang-14 zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages ${missing[*]}; run as root or apt-get install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK (dotnet) is required" >&2
  exit 1
fi

"$root/scripts/build.sh"
