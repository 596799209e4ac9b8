#!/usr/bin/env bash
# Prints the path of a writable copy of the Jaeger module source, at the version
# tools/jaeger pins, making it first if needed (downloading the module when the
# module cache is cold). Jaeger's test harnesses (the storage conformance suite)
# and cmd/tracegen run from the module root and write into it, and the module
# cache is read-only, hence the copy. Used by conformance.sh and bench-storage.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
module=github.com/jaegertracing/jaeger
version=$(cd tools/jaeger && go list -m -f '{{.Version}}' "$module")
src=$PWD/.cache/jaeger-src/jaeger-$version
if [ ! -f "$src/.copied" ]; then
  echo "jaeger-src: copying $module@$version source" >&2
  moddir=$(cd tools/jaeger && go mod download -json "$module@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$moddir" ] || { echo "jaeger-src: go mod download $module@$version gave no directory" >&2; exit 1; }
  rm -rf "$src" && mkdir -p "$(dirname "$src")"
  cp -r "$moddir" "$src"
  chmod -R u+w "$src"
  touch "$src/.copied"
fi
echo "$src"
