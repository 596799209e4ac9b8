package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// Jaeger v1's archive (the UI's "archive" button, through the go-plugin
// sidecar's ArchiveSpanWriterPlugin / ArchiveSpanReaderPlugin): a second
// store under <store.dir>/archive with its own retention.

// ArchiveConfig configures the Jaeger v1 archive.
type ArchiveConfig struct {
	// Enabled serves the archive services and advertises them.
	Enabled bool `yaml:"enabled"`
	// TTL is how long archived spans are kept (default 720h).
	TTL time.Duration `yaml:"ttl"`
}

// openArchive opens and starts the archive store when enabled: the main
// store's settings, its own directory and TTLs.
func (s *Server) openArchive(ctx context.Context) error {
	if !s.cfg.Archive.Enabled {
		return nil
	}
	cfg := s.cfg.Store
	cfg.Dir = filepath.Join(cfg.Dir, "archive")
	cfg.SpanTTL, cfg.RecordTTL = s.cfg.Archive.TTL, s.cfg.Archive.TTL
	st, err := ioamstore.Open(cfg, s.logger.With("component", "archive"))
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	s.archive = st
	if err := st.Start(ctx); err != nil {
		return fmt.Errorf("start archive: %w", err)
	}
	return nil
}

func registerArchive(srv grpc.ServiceRegistrar, rd *reader, w *writer, archive *ioamstore.Store) []string {
	ar := *rd
	ar.store = archive
	storagev1.RegisterArchiveSpanWriterPluginServer(srv, v1ArchiveWriter{archive: &v1Writer{w: &writer{store: archive, metrics: w.metrics}, logger: rd.logger}})
	storagev1.RegisterArchiveSpanReaderPluginServer(srv, v1ArchiveReader{r: &v1Reader{r: &ar}})
	return []string{storagev1.ArchiveSpanWriterPlugin_ServiceDesc.ServiceName, storagev1.ArchiveSpanReaderPlugin_ServiceDesc.ServiceName}
}

type v1ArchiveWriter struct {
	storagev1.UnimplementedArchiveSpanWriterPluginServer
	archive *v1Writer
}

// WriteArchiveSpan stores the span as Jaeger v1 sends it: the span it read,
// enrichment included, so the archive keeps what was shown (the archive
// holds no IOAM records, nothing is enriched twice).
func (a v1ArchiveWriter) WriteArchiveSpan(ctx context.Context, req *storagev1.WriteSpanRequest) (*storagev1.WriteSpanResponse, error) {
	rejected, reason, err := a.archive.write(ctx, []*storagev1.Span{req.GetSpan()})
	if err != nil {
		return nil, err
	}
	if rejected > 0 {
		return nil, status.Error(codes.InvalidArgument, reason)
	}
	return &storagev1.WriteSpanResponse{}, nil
}

type v1ArchiveReader struct {
	storagev1.UnimplementedArchiveSpanReaderPluginServer
	r *v1Reader
}

func (a v1ArchiveReader) GetArchiveTrace(req *storagev1.GetTraceRequest, stream storagev1.ArchiveSpanReaderPlugin_GetArchiveTraceServer) error {
	return a.r.GetTrace(req, stream)
}
