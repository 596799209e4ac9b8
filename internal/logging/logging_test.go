package logging

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	assert.Empty(t, DefaultConfig().Validate("log"))
	assert.Empty(t, Config{Level: "WARN", Format: "json"}.Validate("log"), "level is case-insensitive")
	errs := Config{Level: "loud", Format: "xml"}.Validate("log")
	require.Len(t, errs, 2)
	assert.ErrorContains(t, errs[0], `log.level: "loud"`)
	assert.ErrorContains(t, errs[1], `log.format: "xml"`)
}

func TestNewLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	l := New(Config{Level: "warn", Format: "json"}, &buf)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
	assert.Equal(t, "shown", rec["msg"])
	assert.Equal(t, "WARN", rec["level"])

	buf.Reset()
	New(Config{Level: "debug", Format: "text"}, &buf).Debug("dbg", "k", 2)
	assert.Contains(t, buf.String(), "level=DEBUG msg=dbg k=2")
}
