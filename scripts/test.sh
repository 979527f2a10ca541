#!/usr/bin/env bash
# Runs every test of the solution: unit, orchestration (the SDK's in-process sidecar, tests/FederatedFunctions.TestSupport/DurableTestHost.cs), integration (real Azurite,
# started by the tests on free ports) and end to end (the demo). Sets the machine up first, as ./fl does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FL_ROOT="$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# The suite is bound by the CPU, and most of its processes (test hosts, fl, silo runners) live seconds to minutes:
# dynamic PGO's instrumented tier costs them more than its faster code gives back (the API tests: 18 % less CPU
# without it, docs/performance.md). Only the tests' processes are affected; fl keeps the runtime's default.
export DOTNET_TieredPGO=0
"$ROOT/scripts/setup.sh" all
"$ROOT/scripts/setup.sh" browser
mkdir -p "$ROOT/.fl" && touch "$ROOT/.fl/setup.stamp"
dotnet build "$ROOT/FederatedFunctions.sln" -c Release --nologo -v q -clp:ErrorsOnly
RESULTS="$ROOT/.fl/test-results"
rm -rf "$RESULTS"
status=0
# A test host idle for 6 minutes is stopped, and the test it was running is named (blame), instead of the session
# running into its 18-minute limit.
dotnet test "$ROOT/FederatedFunctions.sln" -c Release --no-build --nologo \
  --blame-hang --blame-hang-timeout 6m --blame-hang-dump-type none \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$RESULTS" -- RunConfiguration.TestSessionTimeout=1080000 || status=$?
# One closing line over all test projects, counted from the TRX files.
python3 - "$RESULTS" <<'PY' || true
import sys, glob, xml.etree.ElementTree as ET
p = f = s = 0
for path in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(path).getroot().find(".//{*}Counters")
    if c is None: continue
    p += int(c.get("passed", 0)); f += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)); s += int(c.get("notExecuted", 0))
print(f"{p} passed, {f} failed, {s} skipped")
PY
exit $status
