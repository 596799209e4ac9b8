package clt_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
)

func TestAppendCmsg(t *testing.T) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	oob, err := inj.AppendCmsg(nil, span(3))
	require.NoError(t, err)
	msgs, err := unix.ParseSocketControlMessage(oob)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.EqualValues(t, unix.IPPROTO_IPV6, msgs[0].Header.Level)
	assert.EqualValues(t, unix.IPV6_HOPOPTS, msgs[0].Header.Type)
	hbh, err := inj.AppendHBH(nil, span(3))
	require.NoError(t, err)
	// Timestamps differ between the two builds; compare the IDs tail.
	assert.Equal(t, hbh[len(hbh)-24:], msgs[0].Data[len(msgs[0].Data)-24:])
	assert.Len(t, msgs[0].Data, len(hbh))
}
