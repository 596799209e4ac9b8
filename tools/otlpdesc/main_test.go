package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/reflect/protodesc"
)

// The set must list every import before its importer, or protoc rejects it.
func TestDescriptorSetDependenciesFirst(t *testing.T) {
	set := descriptorSet(tracepb.File_opentelemetry_proto_trace_v1_trace_proto)
	var names []string
	for _, f := range set.File {
		names = append(names, f.GetName())
	}
	require.NotEmpty(t, names)
	assert.Equal(t, "opentelemetry/proto/trace/v1/trace.proto", names[len(names)-1])
	assert.Contains(t, names, "opentelemetry/proto/common/v1/common.proto")
	assert.Contains(t, names, "opentelemetry/proto/resource/v1/resource.proto")
	_, err := protodesc.NewFiles(set)
	require.NoError(t, err, "the set is self-contained")
	require.NoError(t, run(filepath.Join(t.TempDir(), "otlp.binpb")))
}
