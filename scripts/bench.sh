#!/usr/bin/env bash
# Aggregation benchmark (not part of the tests). Prints a markdown table; see docs/performance.md.
#   scripts/bench.sh            K ∈ {2, 8, 32} × P ∈ {1 M, 10 M}
#   scripts/bench.sh --quick    K ∈ {2, 8} × P = 1 M
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" native
dotnet build "$ROOT/benchmarks/FederatedFunctions.Benchmarks" -c Release --nologo -v q -clp:ErrorsOnly
exec dotnet "$ROOT/benchmarks/FederatedFunctions.Benchmarks/bin/Release/net10.0/FederatedFunctions.Benchmarks.dll" "$@"
