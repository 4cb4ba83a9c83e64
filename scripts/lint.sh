#!/usr/bin/env bash
# Runs shellcheck over every shell script of the repository: scripts/**/*.sh (the POSIX sh ones included: shellcheck reads
# their #!/bin/sh) and .ci/run. Sources are followed (-x; scripts/.shellcheckrc resolves them from each script's
# folder). Prints shellcheck's findings and exits 1 if there are any.
#
#   scripts/lint.sh [FILE...]      default: all of them
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"
cd "$root"

need_packages shellcheck:shellcheck
files=("$@")
if ((${#files[@]} == 0)); then
  mapfile -t files < <(find scripts -name '*.sh' -type f | LC_ALL=C sort)
  files+=(.ci/run)
fi
if shellcheck -x "${files[@]}"; then
  log "${#files[@]} scripts, shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }'): clean"
else
  die "shellcheck found problems (above) in ${#files[@]} scripts"
fi
