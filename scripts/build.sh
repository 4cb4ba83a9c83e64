#!/usr/bin/env bash
# Publishes every executable into out/ at the repository root (out/swapnbd-server, out/swapnbd-client, out/swapnbd-daemon).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p out
for project in Swap.Nbd.Server Swap.Slabs.Daemon; do
  # Framework-dependent single file: one binary per tool, the .NET runtime comes from the machine.
  dotnet publish "$project" -c Release -o out --nologo -v quiet \
    -p:PublishSingleFile=true -p:SelfContained=false -p:DebugType=none >/dev/null
done
# The client is NativeAOT (PublishAot in its project; needs clang and zlib1g-dev): it runs where no .NET runtime is,
# e.g. the qemu guest's initramfs, and links only libc and libm.
dotnet publish Swap.Nbd.Client -c Release -o out --nologo -v quiet -p:DebugType=none >/dev/null
rm -f out/*.pdb out/*.xml
ls -1 out/swapnbd-*
