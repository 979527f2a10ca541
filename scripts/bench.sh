#!/usr/bin/env bash
# Benchmarks (not part of the tests). Each prints a markdown table; see docs/performance.md and docs/reliability.md.
#   scripts/bench.sh                 aggregation: K ∈ {2, 8, 32, 1,000} × P ∈ {1 M, 10 M}
#   scripts/bench.sh --quick         aggregation: K ∈ {2, 8} × P = 1 M
#   scripts/bench.sh long [ROUNDS]   one run of ROUNDS rounds (500) on the durable backend: stored history, host memory
#   scripts/bench.sh polls [N]       one silo job that polls N times (1000) on the durable backend: its stored history
#   scripts/bench.sh durable         the durable engine alone: one step, rounds of 10/100/1,000 no-op silos, both backends
#   scripts/bench.sh activity        the aggregation activity as a whole on Azurite: K ∈ {2, 8} × P ∈ {1 M, 10 M}
#   scripts/bench.sh simulation [R]  virtual silos: a FLUTE-shaped run of R rounds (100) against a plain loop; 1,000-silo rounds
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${1:-}" == "long" ]]; then
  shift
  "$ROOT/scripts/setup.sh"
  dotnet build "$ROOT/benchmarks/FederatedFunctions.LongRun" -c Release --nologo -v q -clp:ErrorsOnly
  exec dotnet "$ROOT/benchmarks/FederatedFunctions.LongRun/bin/Release/net10.0/FederatedFunctions.LongRun.dll" "${1:-500}" "$ROOT"
fi
if [[ "${1:-}" == "polls" ]]; then
  shift
  "$ROOT/scripts/setup.sh"
  dotnet build "$ROOT/benchmarks/FederatedFunctions.JobPolls" -c Release --nologo -v q -clp:ErrorsOnly
  exec dotnet "$ROOT/benchmarks/FederatedFunctions.JobPolls/bin/Release/net10.0/FederatedFunctions.JobPolls.dll" "${1:-1000}"
fi
if [[ "${1:-}" == "simulation" ]]; then
  shift
  "$ROOT/scripts/setup.sh"
  dotnet build "$ROOT/benchmarks/FederatedFunctions.Simulation" -c Release --nologo -v q -clp:ErrorsOnly
  exec dotnet "$ROOT/benchmarks/FederatedFunctions.Simulation/bin/Release/net10.0/FederatedFunctions.Simulation.dll" "${1:-100}" "$ROOT"
fi
for mode in durable:DurableSteps activity:AggregationActivity; do
  if [[ "${1:-}" == "${mode%%:*}" ]]; then
    project="$ROOT/benchmarks/FederatedFunctions.${mode#*:}"
    "$ROOT/scripts/setup.sh"
    dotnet build "$project" -c Release --nologo -v q -clp:ErrorsOnly
    exec dotnet "$project/bin/Release/net10.0/FederatedFunctions.${mode#*:}.dll" "$ROOT"
  fi
done
"$ROOT/scripts/setup.sh" native
dotnet build "$ROOT/benchmarks/FederatedFunctions.Benchmarks" -c Release --nologo -v q -clp:ErrorsOnly
exec dotnet "$ROOT/benchmarks/FederatedFunctions.Benchmarks/bin/Release/net10.0/FederatedFunctions.Benchmarks.dll" "$@"
