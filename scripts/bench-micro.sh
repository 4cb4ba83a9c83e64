#!/usr/bin/env bash
# Micro-benchmarks: BenchmarkDotNet (short job) over the codecs, the memory device, the buffer pool and the
# in-process request path, then the whole-process allocation check of the request path. Prints both.
#
#   scripts/bench-micro.sh                         everything
#   scripts/bench-micro.sh --filter '*Codec*'      a subset (any BenchmarkDotNet arguments pass through)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

project=tests/Swap.Benchmarks
artifacts=$root/BenchmarkDotNet.Artifacts
args=("$@")
# BenchmarkDotNet runs nothing without a filter; default to all of them.
[[ " ${args[*]} " == *" --filter "* ]] || args+=(--filter '*')

rm -rf "$artifacts/results"
# Built once here; BenchmarkDotNet then builds its own host project per run from the same sources.
dotnet build "$project" -c Release --nologo -v quiet
dotnet run -c Release --no-build --project "$project" -- --job short --artifacts "$artifacts" "${args[@]}"

echo
echo "=== BenchmarkDotNet results ($artifacts/results) ==="
for report in "$artifacts"/results/*-report-github.md; do
  [[ -e $report ]] || continue
  echo
  cat "$report"
done

echo
echo "=== Request-path allocation check (whole process, GC.GetTotalAllocatedBytes) ==="
# Exit code 1 means the server allocated per request; report it but keep the script's own status for the run.
dotnet run -c Release --no-build --project "$project" -- --alloc-check || echo "(allocation check: the request path allocates; see above)"
