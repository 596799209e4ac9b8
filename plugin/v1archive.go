package plugin

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// Jaeger v1's archive (the UI's "archive" button): a second store under
// <store.dir>/archive with its own retention, served two ways. Jaeger
// v1.12–v1.57 ask the storage itself (ArchiveSpanWriterPlugin /
// ArchiveSpanReaderPlugin on the Jaeger port, advertised by
// PluginCapabilities); Jaeger v1.58+ configure the archive as a second
// remote storage (--grpc-storage-archive.enabled, --grpc-storage-archive.server)
// and call the plain storage_v1 services there: archive.listen is that
// second port.

// ArchiveConfig configures the Jaeger v1 archive.
type ArchiveConfig struct {
	// Enabled serves the archive services and advertises them.
	Enabled bool `yaml:"enabled"`
	// TTL is how long archived spans are kept (default 720h).
	TTL time.Duration `yaml:"ttl"`
	// Listen, when set, is a second gRPC port (host:port) serving the
	// storage_v1 writer, reader and capabilities over the archive, for
	// Jaeger v1.58+ --grpc-storage-archive.server. It has the storage
	// port's TLS, auth and limits. Default "" (none).
	Listen string `yaml:"listen"`
}

// validate reports archive's problems through add.
func (a ArchiveConfig) validate(add func(string, ...any)) {
	if a.Enabled && a.TTL <= 0 {
		add("archive.ttl: must be > 0, got %s", a.TTL)
	}
	if a.Listen != "" {
		if !a.Enabled {
			add("archive.listen: needs archive.enabled: true")
		}
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			add("archive.listen: %v", err)
		}
	}
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
	storagev1.RegisterArchiveSpanWriterPluginServer(srv, v1ArchiveWriter{archive: newV1Writer(&writer{store: archive, metrics: w.metrics}, rd.logger)})
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

// serveArchivePort binds archive.listen and serves the archive there as a
// storage of its own (Jaeger v1.58+): SpanWriterPlugin and SpanReaderPlugin
// over the archive store, DependenciesReaderPlugin (Jaeger creates one for
// every storage; the archive's graph is that of its traces) and
// PluginCapabilities (no streaming writer, no nested archive). The reader
// enriches as the primary's does; the archive keeps no IOAM records, and
// the spans Jaeger archives are the enriched ones it read, so nothing is
// lost or added twice.
// The health service is the primary port's: same service names, same state.
func (s *Server) serveArchivePort(ctx context.Context, rd *reader, w *writer) error {
	if s.cfg.Archive.Listen == "" || s.archive == nil {
		return nil
	}
	opts, guard, err := s.grpcOptions("archive", s.cfg.Storage.TLS, s.cfg.Storage.Auth, s.cfg.Storage.PortLimits,
		s.cfg.Storage.MaxRecvMsgSizeMiB, s.cfg.Storage.MaxTraceIDsPerRequest)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	if s.archiveLn, err = lc.Listen(ctx, "tcp", s.cfg.Archive.Listen); err != nil {
		return fmt.Errorf("archive.listen: %w", err)
	}
	ar := *rd
	ar.store = s.archive
	s.archiveSrv = grpc.NewServer(opts...)
	// Through the guard, like the storage port: undecodable requests are
	// InvalidArgument and writes are budgeted (codec.go).
	reg := guard.register(s.archiveSrv)
	storagev1.RegisterSpanWriterPluginServer(reg, newV1Writer(&writer{store: s.archive, metrics: w.metrics}, rd.logger))
	storagev1.RegisterSpanReaderPluginServer(reg, &v1Reader{r: &ar})
	storagev1.RegisterDependenciesReaderPluginServer(reg, v1Deps{r: &ar})
	storagev1.RegisterPluginCapabilitiesServer(reg, v1Caps{})
	healthpb.RegisterHealthServer(reg, s.health)
	s.serveGRPC("archive", s.archiveSrv, s.archiveLn)
	s.warnExposed("archive", s.ArchiveAddr(), s.cfg.Storage.TLS, s.cfg.Storage.Auth)
	return nil
}

// ArchiveAddr returns the bound address of the archive port (archive.listen)
// after Start; nil when not served.
func (s *Server) ArchiveAddr() net.Addr { return addrOf(s.archiveLn) }
