package clt

import "github.com/prometheus/client_golang/prometheus"

// Collector returns a Prometheus collector over the Injector's counters
// (register it on the component's registry):
//
//	clt_ioam_options_applied_total
//	clt_ioam_socket_map_applied_total (of those, set in the eBPF inserter's SocketMap)
//	clt_ioam_options_cleared_total
//	clt_ioam_untraced_total
//	clt_ioam_options_skipped_total{reason="permission|ipv4|kernel|unsupported_conn|build"}
//	clt_ioam_egress_unknown_total
func (inj *Injector) Collector() prometheus.Collector { return collector{inj} }

var (
	descApplied  = prometheus.NewDesc("clt_ioam_options_applied_total", "IOAM Hop-by-Hop options set on sockets or attached to datagrams.", nil, nil)
	descMapped   = prometheus.NewDesc("clt_ioam_socket_map_applied_total", "Sockets whose IDs were set in the eBPF inserter's socket map instead of a socket option (included in options_applied).", nil, nil)
	descCleared  = prometheus.NewDesc("clt_ioam_options_cleared_total", "Sticky IOAM options removed for requests without a span.", nil, nil)
	descUntraced = prometheus.NewDesc("clt_ioam_untraced_total", "Requests or datagrams sent without a valid span.", nil, nil)
	descSkipped  = prometheus.NewDesc("clt_ioam_options_skipped_total", "IOAM options not applied, by reason.", []string{"reason"}, nil)
	descEgress   = prometheus.NewDesc("clt_ioam_egress_unknown_total", "Failed egress interface lookups (own entry sent with egress id 0xFFFF).", nil, nil)
)

type collector struct{ inj *Injector }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descApplied
	ch <- descMapped
	ch <- descCleared
	ch <- descUntraced
	ch <- descSkipped
	ch <- descEgress
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.inj.Stats()
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.CounterValue, float64(s.Applied))
	ch <- prometheus.MustNewConstMetric(descMapped, prometheus.CounterValue, float64(s.Mapped))
	ch <- prometheus.MustNewConstMetric(descCleared, prometheus.CounterValue, float64(s.Cleared))
	ch <- prometheus.MustNewConstMetric(descUntraced, prometheus.CounterValue, float64(s.Untraced))
	ch <- prometheus.MustNewConstMetric(descEgress, prometheus.CounterValue, float64(s.EgressUnknown))
	for r, v := range s.Skipped {
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(v), Reason(r).String())
	}
}
