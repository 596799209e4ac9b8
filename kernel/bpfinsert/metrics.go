package bpfinsert

import "github.com/prometheus/client_golang/prometheus"

// collector exports Stats as Prometheus counters, read from the BPF map at
// each scrape.
type collector struct {
	in                                          *Inserter
	tagged, bytes, parsed, traceparent, skipped *prometheus.Desc
	mss                                         *prometheus.Desc
}

// Collector returns a Prometheus collector of the inserter's counters,
// named <namespace>_insert_*.
func (in *Inserter) Collector(namespace string) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "insert", name), help, labels, nil)
	}
	return &collector{
		in:          in,
		tagged:      d("packets_tagged_total", "Packets given the IOAM Hop-by-Hop header by the eBPF program (a GSO packet counts once)."),
		bytes:       d("bytes_added_total", "Header bytes added on the wire (per segment)."),
		parsed:      d("requests_parsed_total", "Segments starting an HTTP/1.x request that were searched for traceparent."),
		traceparent: d("requests_untagged_total", "Requests not tagged, by reason (traceparent missing, invalid or unsampled; rate limited).", "result"),
		skipped:     d("packets_skipped_total", "Packets left untouched, by reason.", "reason"),
		mss:         d("syn_ack_mss_total", "Configured servers' SYN-ACKs, by MSS action.", "action"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tagged, c.bytes, c.parsed, c.traceparent, c.skipped, c.mss} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.in.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.tagged, err)
		return
	}
	cnt := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	cnt(c.tagged, s.PacketsTagged)
	cnt(c.bytes, s.BytesAdded)
	cnt(c.parsed, s.RequestsParsed)
	cnt(c.traceparent, s.TraceparentMissing, "missing")
	cnt(c.traceparent, s.TraceparentInvalid, "invalid")
	cnt(c.traceparent, s.TraceparentUnsampled, "unsampled")
	cnt(c.traceparent, s.RateLimited, "rate_limited")
	for _, r := range []struct {
		name string
		v    uint64
	}{
		{"not_ipv6", s.SkipNotIPv6}, {"not_tcp", s.SkipNotTCP}, {"extension_header", s.SkipExtHeader},
		{"unconfigured_destination", s.SkipUnconfigured}, {"no_socket", s.SkipNoSocket},
		{"no_request_context", s.SkipNoState}, {"too_big", s.SkipTooBig}, {"unconfigured_interface", s.SkipNoInterface},
		{"adjust_failed", s.ErrAdjust}, {"bad_config", s.ErrConfig},
	} {
		cnt(c.skipped, r.v, r.name)
	}
	cnt(c.mss, s.MSSClamped, "clamped")
	cnt(c.mss, s.MSSNotFirst, "not_first_option")
}
