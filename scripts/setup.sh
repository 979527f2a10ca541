#!/usr/bin/env bash
# One-time, idempotent machine setup for FederatedFunctions.
# Everything a fresh machine needs is installed here; nothing is assumed to
# survive from a previous session. Each step is skipped when already satisfied.
#   1. libstdc++ with GLIBCXX_3.4.32 (TorchSharp 0.107's native shim needs GCC 13+).
#   2. Azurite, pinned by tools/azurite/package-lock.json.
#   3. NuGet restore of the solution (with the Bicep CLI package, which tests/FederatedFunctions.Infra.Tests runs).
#   4. Real public datasets from Debian's python3-sklearn package (downloaded and unpacked, not installed),
#      checked against tools/datasets/SHA256SUMS.
#   5. (`browser`, run by scripts/test.sh only) Debian's chromium package, which the dashboard's browser tests drive.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAMP_DIR="$ROOT/.fl"
mkdir -p "$STAMP_DIR"

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; exit 1
  fi
}

NEXT_SUITE="trixie"

# Priority 100 for the next suite and its -security and -updates suites (each is its own release name): they are used
# only when asked for with -t, so nothing else is upgraded from them, and other packages (chromium) keep coming from
# the machine's own suite.
pin_next_suite() {
  local s
  : > "$STAMP_DIR/pin.tmp"
  for s in "$NEXT_SUITE" "$NEXT_SUITE-security" "$NEXT_SUITE-updates"; do
    printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n\n' "$s" >> "$STAMP_DIR/pin.tmp"
  done
  if ! cmp -s "$STAMP_DIR/pin.tmp" "/etc/apt/preferences.d/fl-$NEXT_SUITE" 2>/dev/null; then
    as_root install -m 0644 "$STAMP_DIR/pin.tmp" "/etc/apt/preferences.d/fl-$NEXT_SUITE"
  fi
  rm -f "$STAMP_DIR/pin.tmp"
}

libstdcxx_ok() {
  local lib
  for lib in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6; do
    [ -e "$lib" ] && grep -aq GLIBCXX_3.4.32 "$lib" && return 0
  done
  return 1
}

ensure_libstdcxx() {
  if libstdcxx_ok; then log "libstdc++: GLIBCXX_3.4.32 present"; return; fi
  log "libstdc++ lacks GLIBCXX_3.4.32 (TorchSharp needs GCC 13+); installing libstdc++6 from the next Debian suite"
  # shellcheck disable=SC1091
  . /etc/os-release
  local current="${VERSION_CODENAME:?cannot read VERSION_CODENAME}" next="$NEXT_SUITE"
  if [ "$current" = "$next" ]; then log "already on $next but libstdc++ is too old"; exit 1; fi
  local src="/etc/apt/sources.list.d/debian.sources" out="/etc/apt/sources.list.d/fl-$next.sources"
  local tmp; tmp="$(mktemp)"
  if [ -f "$src" ]; then
    # Same mirrors, same keys: only the suite names change.
    sed -E "/^Suites:/ s/\b${current}\b/${next}/g; /^Suites:/ s/\b${current}-/${next}-/g" "$src" > "$tmp"
  elif [ -f /etc/apt/sources.list ]; then
    out="/etc/apt/sources.list.d/fl-$next.list"
    grep -E '^deb ' /etc/apt/sources.list | sed -E "s/ ${current}([- ])/ ${next}\1/g" > "$tmp"
  else
    log "no apt sources file found"; exit 1
  fi
  as_root install -m 0644 "$tmp" "$out"; rm -f "$tmp"
  pin_next_suite
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq -t "$next" libstdc++6 >/dev/null
  libstdcxx_ok || { log "libstdc++6 install did not provide GLIBCXX_3.4.32"; exit 1; }
  log "libstdc++: installed from $next"
}

ensure_azurite() {
  local dir="$ROOT/tools/azurite"
  if [ -x "$dir/node_modules/.bin/azurite" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    log "azurite: present"; return
  fi
  command -v npm >/dev/null 2>&1 || { log "npm is required for Azurite"; exit 1; }
  log "azurite: npm ci"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

ensure_restore() {
  log "dotnet restore"
  dotnet restore "$ROOT/FederatedFunctions.sln" --nologo -v q >/dev/null
}

datasets_ok() {
  (cd "$ROOT/tools/datasets/sklearn" 2>/dev/null && sha256sum --quiet --check ../SHA256SUMS >/dev/null 2>&1)
}

ensure_datasets() {
  local dir="$ROOT/tools/datasets"
  if datasets_ok; then log "datasets: present"; return; fi
  log "datasets: python3-sklearn from the Debian archive (apt-get download, not installed)"
  local tmp; tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  chmod 0755 "$tmp"  # apt's _apt user writes the download here
  if ! (cd "$tmp" && apt-get download -qq python3-sklearn >/dev/null 2>&1); then
    as_root apt-get update -qq
    (cd "$tmp" && apt-get download -qq python3-sklearn >/dev/null 2>&1) || { log "cannot download python3-sklearn"; exit 1; }
  fi
  dpkg-deb -x "$tmp"/python3-sklearn_*.deb "$tmp/x"
  mkdir -p "$dir/sklearn"
  local data="$tmp/x/usr/lib/python3/dist-packages/sklearn/datasets/data"
  for f in iris.csv breast_cancer.csv wine_data.csv digits.csv.gz; do cp "$data/$f" "$dir/sklearn/$f"; done
  cp "$tmp/x/usr/share/doc/python3-sklearn/copyright" "$dir/sklearn/copyright"
  datasets_ok || { log "datasets: SHA-256 mismatch against tools/datasets/SHA256SUMS"; (cd "$dir/sklearn" && sha256sum --check ../SHA256SUMS) >&2 || true; exit 1; }
  log "datasets: verified"
}

ensure_browser() {
  # A machine set up before the pin covered -security and -updates gets the full pin first.
  if [ -f "/etc/apt/sources.list.d/fl-$NEXT_SUITE.sources" ] || [ -f "/etc/apt/sources.list.d/fl-$NEXT_SUITE.list" ]; then pin_next_suite; fi
  if command -v chromium >/dev/null 2>&1; then log "browser: $(chromium --version 2>/dev/null | head -n1)"; return; fi
  log "browser: Debian's chromium package (for the dashboard's browser tests)"
  if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  command -v chromium >/dev/null 2>&1 || { log "chromium did not install"; exit 1; }
}

case "${1:-all}" in
  native) ensure_libstdcxx ;;
  azurite) ensure_azurite ;;
  restore) ensure_restore ;;
  datasets) ensure_datasets ;;
  browser) ensure_browser ;;
  all) ensure_libstdcxx; ensure_azurite; ensure_restore; ensure_datasets ;;
  *) echo "usage: scripts/setup.sh [all|native|azurite|restore|datasets|browser]" >&2; exit 2 ;;
esac
