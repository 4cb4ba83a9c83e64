#!/usr/bin/env bash
# Publishes every executable into out/ at the repository root (out/swapnbd-server, out/swapnbd-client, out/swapnbd-daemon,
# out/swapnbd-memtest).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p out
# The server is native code (NativeAOT, needs clang and zlib1g-dev: scripts/setup.sh installs them): nothing is
# compiled or loaded after start, so mlockall holds all of it (docs/operations.md).
dotnet publish Swap.Server.App -c Release -o out --nologo -v quiet -p:DebugType=none -p:StripSymbols=true >/dev/null
for project in Swap.Slabs.Daemon; do
  # Framework-dependent single file: one binary per tool, the .NET runtime comes from the machine.
  dotnet publish "$project" -c Release -o out --nologo -v quiet \
    -p:PublishSingleFile=true -p:SelfContained=false -p:DebugType=none >/dev/null
done
# The workload runs inside a small memory-limited cgroup: NativeAOT keeps its own footprint to a few MiB (no JIT, no
# runtime to load). clang-14 is what scripts/setup.sh installs for it.
dotnet publish Swap.MemTest.App -c Release -o out --nologo -v quiet -p:CppCompilerAndLinker=clang-14 -p:DebugType=none \
  -p:StripSymbols=true >/dev/null
# The client is NativeAOT (PublishAot in its project): it runs where no .NET runtime is, e.g. the qemu guest's
# initramfs, and links only libc and libm.
dotnet publish Swap.Nbd.Client.App -c Release -o out --nologo -v quiet -p:DebugType=none >/dev/null
rm -f out/*.pdb out/*.xml out/*.dbg
ls -1 out/swapnbd-*
