#!/usr/bin/env bash
# Runs every native fuzz target in the module for $FUZZTIME each (bounded).
# `go test` alone already replays the seed corpus and testdata/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
found=0
while IFS= read -r pkg; do
  dir=${pkg#github.com/cross-layer-telemetry/clt}
  for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' ".${dir}"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    found=$((found+1))
    echo "== fuzz $pkg $fn ($FUZZTIME)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg"
  done
done < <(go list ./...)
echo "fuzz: $found target(s) ran without a crash"
[ "$found" -gt 0 ]
