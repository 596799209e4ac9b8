package plugin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecordNamespaceRange: the collector takes every 16-bit namespace id,
// 0xFFFF included (RFC 9197 reserves none, Linux accepts it), the rule
// clt-agent's namespaces and setup.namespaces apply too.
func TestRecordNamespaceRange(t *testing.T) {
	for _, ns := range []uint32{0, 123, 0x8000, 0xFFFF} {
		r := rec(2, 0, 1)
		r.NamespaceId = ns
		assert.Empty(t, validateRecord("r", r, 64), "namespace %#x", ns)
	}
	r := rec(2, 0, 1)
	r.NamespaceId = 0x10000
	errs := validateRecord("r", r, 64)
	require.Len(t, errs, 1)
	assert.Equal(t, "r.namespace_id: 65536 exceeds 16 bits", errs[0].Error())
}
