#!/usr/bin/env bash
# Regenerates every committed protobuf/gRPC stub of the module, reproducibly:
#   api/collector/v1   our collector API (clt.collector.v1)
#   api/compat/...     wire-compatible APIs of the original CLT agents
#   api/storagev2      jaeger.storage.v2 from jaeger-idl (pinned below)
#   api/storagev1      jaeger.storage.v1 (Jaeger v1's remote storage / plugin API)
# Tools: protoc from apt (Debian bookworm: 3.21.12) and the pinned Go plugins
# in .cache/bin, all installed by `make proto-tools` (pins in the Makefile);
# run it through `make proto`. This script installs nothing. The OTLP
# trace.proto that jaeger-idl imports is taken as a descriptor set from the
# compiled go.opentelemetry.io/proto/otlp module (tools/otlpdesc).
set -euo pipefail
cd "$(dirname "$0")/.."
MODULE=github.com/cross-layer-telemetry/clt
JAEGER_IDL=v0.6.0

missing() { echo "proto: $1 not found; run make proto (it runs make proto-tools first)" >&2; exit 1; }
command -v protoc >/dev/null || missing protoc
[ -x "${PROTOC_GEN_GO:-}" ] || missing "protoc-gen-go (\$PROTOC_GEN_GO)"
[ -x "${PROTOC_GEN_GO_GRPC:-}" ] || missing "protoc-gen-go-grpc (\$PROTOC_GEN_GO_GRPC)"
plugins=(--plugin=protoc-gen-go="$PROTOC_GEN_GO" --plugin=protoc-gen-go-grpc="$PROTOC_GEN_GO_GRPC")

gen() { # include-dir out-dir files...
  local inc=$1 out=$2
  shift 2
  protoc "${plugins[@]}" -I "$inc" --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative "$@"
}

echo "proto: api/collector/v1, api/compat"
gen api api collector/v1/collector.proto
gen api api compat/ioamtrace/ioam_trace.proto
gen api api compat/ioamapi/ioam_api.proto

echo "proto: api/storagev2 (jaeger-idl $JAEGER_IDL)"
IDL=$(go mod download -json "github.com/jaegertracing/jaeger-idl@$JAEGER_IDL" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
go run ./tools/otlpdesc "$TMP/otlp.binpb"
pkg=$MODULE/api/storagev2
protoc "${plugins[@]}" --descriptor_set_in="$TMP/otlp.binpb" -I "$IDL/proto/storage/v2" \
  --go_out=api/storagev2 --go_opt=paths=source_relative \
  --go_opt=Mtrace_storage.proto=$pkg\;storagev2 --go_opt=Mdependency_storage.proto=$pkg\;storagev2 \
  --go-grpc_out=api/storagev2 --go-grpc_opt=paths=source_relative \
  --go-grpc_opt=Mtrace_storage.proto=$pkg\;storagev2 --go-grpc_opt=Mdependency_storage.proto=$pkg\;storagev2 \
  trace_storage.proto dependency_storage.proto
# Jaeger ships these as gogoproto; the copies drop the gogoproto import and
# options (no effect on the wire) and are registered as storagev1/*.proto,
# a path nothing else uses. Proto packages stay jaeger.storage.v1 and
# jaeger.api_v2: the service names are on the wire.
JAEGER_V1=v1.76.0
echo "proto: api/storagev1 (jaeger $JAEGER_V1 storage.proto, jaeger-idl $JAEGER_IDL model.proto)"
JSRC=$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_V1" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
degogo() { # src dst
  perl -0pe 's/^import "gogoproto\/gogo.proto";\n//m;
    s/^[ \t]*option \(gogoproto\.\w+\) = \w+;[^\n]*\n//mg;
    s/[ \t]*\[\s*(?:\(gogoproto\.\w+\)\s*=\s*(?:"[^"]*"|\w+)\s*,?\s*)+\]//g;
    s/\(gogoproto\.\w+\)\s*=\s*(?:"[^"]*"|\w+)\s*,\s*//g;
    s/^\/\/ Enable (?:gogoprotobuf|custom)[^\n]*\n//mg;
    s{^option go_package = .*$}{option go_package = "'"$MODULE"'/api/storagev1;storagev1";}m;
    s/^import "model.proto";/import "storagev1\/model.proto";/m' "$1" >"$2"
  ! grep -n gogoproto "$2" || { echo "proto: gogoproto left in $2" >&2; exit 1; }
}
degogo "$IDL/proto/api_v2/model.proto" api/storagev1/model.proto
degogo "$JSRC/internal/storage/v1/grpc/proto/storage.proto" api/storagev1/storage.proto
gen api api storagev1/model.proto storagev1/storage.proto
echo "proto: done"
