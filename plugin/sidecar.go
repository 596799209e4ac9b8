package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
)

// The go-plugin sidecar of Jaeger v1.12–v1.57 (SPAN_STORAGE_TYPE=grpc-plugin
// --grpc-storage-plugin.binary): the host starts `<binary> --config <file>`
// with the handshake cookie in the environment, reads go-plugin's handshake
// line from stdout, and calls the jaeger.storage.v1 services over gRPC.

// Jaeger's go-plugin handshake (plugin/storage/grpc/shared of Jaeger v1.57).
const (
	sidecarCookieKey   = "STORAGE_PLUGIN"
	sidecarCookieValue = "jaeger"
	sidecarPluginName  = "storage_plugin"
	sidecarAppVersion  = 1
	// parentPoll is how often the sidecar checks that its host is alive.
	parentPoll = time.Second
)

// SidecarConfig configures clt-storage when a Jaeger v1 host runs it as a
// go-plugin sidecar.
type SidecarConfig struct {
	// Forward is host:port of a shared clt-storage: the sidecar forwards
	// every call there and opens no store (Jaeger collector and query as
	// separate processes, each spawning its own plugin). Empty: the sidecar
	// is clt-storage itself, store, collector and admin included
	// (all-in-one: one process owns the store directory).
	Forward string `yaml:"forward"`
}

// IsSidecar reports whether a Jaeger v1 host started this process as its
// storage plugin (the go-plugin handshake cookie is set).
func IsSidecar() bool { return os.Getenv(sidecarCookieKey) == sidecarCookieValue }

// ServeSidecar serves jaeger.storage.v1 to the go-plugin host until ctx ends
// or the host goes away (Jaeger v1 hosts do not always stop their plugins).
// Logs must not go to stdout: go-plugin's handshake is there.
func ServeSidecar(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var register func(*grpc.Server)
	var closeFn func() error
	if cfg.Sidecar.Forward != "" {
		conn, err := grpc.NewClient(cfg.Sidecar.Forward, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.Storage.MaxRecvMsgSizeMiB<<20)))
		if err != nil {
			return fmt.Errorf("sidecar.forward: %w", err)
		}
		register = func(s *grpc.Server) { registerV1Forward(s, conn) }
		closeFn = conn.Close
		logger.Info("clt-storage sidecar forwarding", "to", cfg.Sidecar.Forward)
	} else {
		srv, err := New(cfg, Settings{Logger: logger})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		register = func(s *grpc.Server) { srv.registerV1On(s) }
		closeFn = srv.Close
		logger.Info("clt-storage sidecar serving its own store", "store_dir", cfg.Store.Dir)
	}

	// Leave when the host stops the plugin (go-plugin's Serve returns after
	// its Controller.Shutdown), when ctx ends, or when the host is gone
	// without a word.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan struct{})
	go func() {
		defer close(served)
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: goplugin.HandshakeConfig{MagicCookieKey: sidecarCookieKey, MagicCookieValue: sidecarCookieValue},
			VersionedPlugins: map[int]goplugin.PluginSet{
				sidecarAppVersion: {sidecarPluginName: &v1GoPlugin{register: register}},
			},
			GRPCServer: goplugin.DefaultGRPCServer,
			Logger:     hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Output: os.Stderr, Level: hclog.Warn}),
		})
	}()
	ppid := os.Getppid()
	t := time.NewTicker(parentPoll)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-served:
			logger.Info("stopped by the Jaeger host")
			done = true
		case <-ctx.Done():
			done = true
		case <-t.C:
			if os.Getppid() != ppid {
				logger.Info("Jaeger host gone, exiting", "parent", ppid)
				done = true
			}
		}
	}
	return closeFn()
}

// v1GoPlugin is the go-plugin side of Jaeger's storage_plugin: gRPC only.
type v1GoPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	register func(*grpc.Server)
}

func (p *v1GoPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	p.register(s)
	return nil
}

func (p *v1GoPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("clt-storage is a plugin server only")
}

// registerV1On registers this (started) server's storage_v1 services on
// another gRPC server, sharing its store.
func (s *Server) registerV1On(srv *grpc.Server) {
	registerStorageV1(srv, s.rd, s.wr, s.archive)
}

// registerV1Forward registers storage_v1 services that forward every call
// to conn, unchanged.
func registerV1Forward(srv *grpc.Server, conn *grpc.ClientConn) {
	storagev1.RegisterSpanWriterPluginServer(srv, fwdWriter{c: storagev1.NewSpanWriterPluginClient(conn)})
	storagev1.RegisterStreamingSpanWriterPluginServer(srv, fwdStreamWriter{c: storagev1.NewStreamingSpanWriterPluginClient(conn)})
	storagev1.RegisterSpanReaderPluginServer(srv, fwdReader{c: storagev1.NewSpanReaderPluginClient(conn)})
	storagev1.RegisterDependenciesReaderPluginServer(srv, fwdDeps{c: storagev1.NewDependenciesReaderPluginClient(conn)})
	storagev1.RegisterPluginCapabilitiesServer(srv, fwdCaps{c: storagev1.NewPluginCapabilitiesClient(conn)})
}

type fwdWriter struct {
	storagev1.UnimplementedSpanWriterPluginServer
	c storagev1.SpanWriterPluginClient
}

func (f fwdWriter) WriteSpan(ctx context.Context, r *storagev1.WriteSpanRequest) (*storagev1.WriteSpanResponse, error) {
	return f.c.WriteSpan(ctx, r)
}

func (f fwdWriter) Close(ctx context.Context, r *storagev1.CloseWriterRequest) (*storagev1.CloseWriterResponse, error) {
	return f.c.Close(ctx, r)
}

type fwdStreamWriter struct {
	storagev1.UnimplementedStreamingSpanWriterPluginServer
	c storagev1.StreamingSpanWriterPluginClient
}

func (f fwdStreamWriter) WriteSpanStream(in storagev1.StreamingSpanWriterPlugin_WriteSpanStreamServer) error {
	out, err := f.c.WriteSpanStream(in.Context())
	if err != nil {
		return err
	}
	for {
		req, err := in.Recv()
		if errors.Is(err, io.EOF) {
			resp, err := out.CloseAndRecv()
			if err != nil {
				return err
			}
			return in.SendAndClose(resp)
		}
		if err != nil {
			return err
		}
		if err := out.Send(req); err != nil {
			_, err = out.CloseAndRecv() // the real error
			return err
		}
	}
}

type fwdReader struct {
	storagev1.UnimplementedSpanReaderPluginServer
	c storagev1.SpanReaderPluginClient
}

// pipe copies a server stream's chunks to the caller.
func pipe(recv func() (*storagev1.SpansResponseChunk, error), send func(*storagev1.SpansResponseChunk) error) error {
	for {
		c, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := send(c); err != nil {
			return err
		}
	}
}

func (f fwdReader) GetTrace(r *storagev1.GetTraceRequest, s storagev1.SpanReaderPlugin_GetTraceServer) error {
	st, err := f.c.GetTrace(s.Context(), r)
	if err != nil {
		return err
	}
	return pipe(st.Recv, s.Send)
}

func (f fwdReader) FindTraces(r *storagev1.FindTracesRequest, s storagev1.SpanReaderPlugin_FindTracesServer) error {
	st, err := f.c.FindTraces(s.Context(), r)
	if err != nil {
		return err
	}
	return pipe(st.Recv, s.Send)
}

func (f fwdReader) GetServices(ctx context.Context, r *storagev1.GetServicesRequest) (*storagev1.GetServicesResponse, error) {
	return f.c.GetServices(ctx, r)
}

func (f fwdReader) GetOperations(ctx context.Context, r *storagev1.GetOperationsRequest) (*storagev1.GetOperationsResponse, error) {
	return f.c.GetOperations(ctx, r)
}

func (f fwdReader) FindTraceIDs(ctx context.Context, r *storagev1.FindTraceIDsRequest) (*storagev1.FindTraceIDsResponse, error) {
	return f.c.FindTraceIDs(ctx, r)
}

type fwdDeps struct {
	storagev1.UnimplementedDependenciesReaderPluginServer
	c storagev1.DependenciesReaderPluginClient
}

func (f fwdDeps) GetDependencies(ctx context.Context, r *storagev1.GetDependenciesRequest) (*storagev1.GetDependenciesResponse, error) {
	return f.c.GetDependencies(ctx, r)
}

type fwdCaps struct {
	storagev1.UnimplementedPluginCapabilitiesServer
	c storagev1.PluginCapabilitiesClient
}

func (f fwdCaps) Capabilities(ctx context.Context, r *storagev1.CapabilitiesRequest) (*storagev1.CapabilitiesResponse, error) {
	return f.c.Capabilities(ctx, r)
}
