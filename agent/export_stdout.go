package agent

import (
	"bufio"
	"context"
	"io"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

// StdoutExporter writes each record as one JSON line (protojson field names),
// a decoded, aggregated "ip ioam monitor" for debugging. Safe for concurrent use.
type StdoutExporter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	opt protojson.MarshalOptions
}

var _ Exporter = (*StdoutExporter)(nil)

// NewStdoutExporter writes to w.
func NewStdoutExporter(w io.Writer) *StdoutExporter {
	return &StdoutExporter{w: bufio.NewWriter(w), opt: protojson.MarshalOptions{UseProtoNames: true}}
}

// Start implements Exporter.
func (s *StdoutExporter) Start(context.Context) error { return nil }

// Export writes the records and flushes.
func (s *StdoutExporter) Export(recs []*collectorv1.IOAMRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	for _, r := range recs {
		var err error
		buf, err = s.opt.MarshalAppend(buf[:0], r)
		if err != nil {
			continue // cannot happen for a valid message; nothing useful to do per record
		}
		s.w.Write(buf)
		s.w.WriteByte('\n')
	}
	s.w.Flush()
}

// Close flushes.
func (s *StdoutExporter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Flush()
}

// multiExporter fans records out to several exporters.
type multiExporter []Exporter

func (m multiExporter) Export(recs []*collectorv1.IOAMRecord) {
	for _, e := range m {
		e.Export(recs)
	}
}

func (m multiExporter) Start(ctx context.Context) error {
	for _, e := range m {
		if err := e.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (m multiExporter) Close() error {
	var errs []error
	for _, e := range m {
		errs = append(errs, e.Close())
	}
	return joinErrs(errs)
}
