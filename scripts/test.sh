#!/usr/bin/env bash
# Sets up a fresh machine and runs every test (unit, in-process integration, real clients, the kernel under qemu).
# Every fixture has one tier category: unit, integration, interop, kernel, swap (tests/Swap.Nbd.Tests/Tier.cs).
#   --quick   only the unit and integration tiers (no external clients, no qemu, no host swap)
# Other arguments go to `dotnet test` (e.g. --filter TestCategory=interop).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0
args=()
for arg in "$@"; do
  if [[ "$arg" == "--quick" ]]; then
    quick=1
    args+=(--filter "TestCategory=unit|TestCategory=integration")
  else
    args+=("$arg")
  fi
done
set -- ${args[@]+"${args[@]}"}

"$root/scripts/setup.sh"
if (( ! quick )) && [[ -x "$root/scripts/kernel/prepare.sh" ]]; then
  "$root/scripts/kernel/prepare.sh" >/dev/null
fi

results="$root/TestResults"
rm -rf "$results"
set +e
dotnet test "$root/tests/Swap.Nbd.Tests" -c Release --nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" --results-directory "$results" "$@"
status=$?
set -e

# One plain closing line that any CI reads: "N passed, N failed".
trx="$results/results.trx"
if [[ -f "$trx" ]]; then
  python3 - "$trx" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
root = ET.parse(sys.argv[1]).getroot()
# The failures again at the end, where a CI log's tail shows them: name, message, the first lines of the stack.
for r in root.iterfind("t:Results/t:UnitTestResult", ns):
    if r.get("outcome") in ("Failed", "Error", "Timeout"):
        info = r.find("t:Output/t:ErrorInfo", ns)
        msg = (info.findtext("t:Message", "", ns) if info is not None else "").strip()
        stack = (info.findtext("t:StackTrace", "", ns) if info is not None else "").strip().splitlines()
        print(f"FAILED {r.get('testName')} ({r.get('duration')})")
        for line in msg.splitlines()[:12] + stack[:4]:
            print(f"    {line}")
c = root.find("t:ResultSummary/t:Counters", ns)
passed, failed = int(c.get("passed")), int(c.get("failed")) + int(c.get("error")) + int(c.get("timeout"))
skipped = int(c.get("total")) - int(c.get("executed"))
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
fi
exit $status
