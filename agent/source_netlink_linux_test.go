package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
)

func TestNetlinkToEvents(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	src := []ioam6.EventAttrs{
		{NamespaceID: 123, NodeLen: 4, Type: uint32(typeOSS) << 8, Data: data},
		{NamespaceID: 7, NodeLen: 2, Type: 0xF00000<<8 | 0xFF}, // reserved low byte dropped
	}
	dst := make([]Event, 4)
	evs := toEvents(dst, src, 42)
	assert.Equal(t, []Event{
		{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), Data: data, SeenUnixNano: 42},
		{NamespaceID: 7, NodeLen: 2, TraceType: 0xF00000, SeenUnixNano: 42},
	}, evs)
	assert.Same(t, &data[0], &evs[0].Data[0], "Data aliases the read buffer")
}

func TestNetlinkAccount(t *testing.T) {
	var bad []string
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
	s := &netlinkSource{lost: lost, bad: func(r string) { bad = append(bad, r) }}
	s.account(ioam6nl.SubscriberStats{Events: 10, Overruns: 2, Malformed: 1, Ignored: 5})
	assert.Equal(t, 2.0, testutil.ToFloat64(lost))
	assert.Equal(t, []string{ReasonTruncated}, bad)
	s.account(ioam6nl.SubscriberStats{Events: 20, Overruns: 3, Malformed: 1, Ignored: 9})
	assert.Equal(t, 3.0, testutil.ToFloat64(lost), "only the increase is added")
	assert.Len(t, bad, 1, "ignored messages are not malformed")
}
