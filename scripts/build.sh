#!/usr/bin/env bash
# Publishes every executable into out/ at the repository root (out/swapnbd-server, out/swapnbd-client, out/swapnbd-daemon,
# out/swapnbd-memtest), or into DIR with --out DIR (e.g. a second build to benchmark against: scripts/bench.sh
# --baseline DIR). Quiet when it works; when a publish fails, its output is printed and the script exits non-zero.
#
#   scripts/build.sh [--out DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"

# The executables' project folders (thin exes over their libraries: docs/architecture.md), in one place.
server_project=Swap.Server.App
daemon_project=Swap.Slabs.Daemon
memtest_project=Swap.MemTest.App
client_project=Swap.Nbd.Client.App

out=$root/out
while (($#)); do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die_with 2 "unknown argument '$1' (see --help)" ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"

build_log=$(mktemp /tmp/swapnbd-build.XXXXXX)
trap 'rm -f "$build_log"' EXIT
# publish PROJECT ARGS...: dotnet publish into $out, its output kept in $build_log and shown only if it fails.
publish() {
  local project=$1
  shift
  if ! dotnet publish "$project" -c Release -o "$out" --nologo -v quiet -p:DebugType=none "$@" >"$build_log" 2>&1; then
    log "dotnet publish $project failed:"
    cat "$build_log" >&2
    exit 1
  fi
}

# The server is native code (NativeAOT, needs clang and zlib1g-dev: scripts/setup.sh installs them): nothing is
# compiled or loaded after start, so mlockall holds all of it (docs/operations.md).
publish "$server_project" -p:StripSymbols=true
# Framework-dependent single file: one binary per tool, the .NET runtime comes from the machine.
publish "$daemon_project" -p:PublishSingleFile=true -p:SelfContained=false
# The workload runs inside a small memory-limited cgroup: NativeAOT keeps its own footprint to a few MiB (no JIT, no
# runtime to load). clang-14 is what scripts/setup.sh installs for it.
publish "$memtest_project" -p:CppCompilerAndLinker=clang-14 -p:StripSymbols=true
# The client is NativeAOT (PublishAot in its project): it runs where no .NET runtime is, e.g. the qemu guest's
# initramfs, and links only libc and libm.
publish "$client_project"
rm -f "$out"/*.pdb "$out"/*.xml "$out"/*.dbg
# Which sources these are, for reports that compare two builds (scripts/bench.sh --baseline).
git -C "$root" describe --always --dirty >"$out/build-info" 2>/dev/null || echo unknown >"$out/build-info"
ls -1 "$out"/swapnbd-*
