package plugin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf"
)

// TLSConfig is the tls block of every port (storage.tls, collector.tls,
// admin.tls): see package tlsconf.
type TLSConfig = tlsconf.Config

// Roles a token or client certificate may hold (auth.*.roles).
const (
	RoleWriter = "writer" // OTLP Export, collector Report
	RoleReader = "reader" // Jaeger reads: TraceReader, DependencyReader
	RoleAdmin  = "admin"  // admin HTTP: /metrics, /debug/pprof/, /purge
)

var knownRoles = []string{RoleWriter, RoleReader, RoleAdmin}

// AuthConfig is the auth block of every port. With no token and no client
// every caller is allowed; otherwise each request must present a bearer
// token (`authorization: Bearer …`) or a verified client certificate that
// holds the role the request needs. Health checks never need one.
type AuthConfig struct {
	// Tokens are accepted bearer tokens, each read from a file or an
	// environment variable at start (and again on SIGHUP).
	Tokens []TokenConfig `yaml:"tokens"`
	// Clients map the common name of a client certificate verified by
	// tls.client_ca_file to roles.
	Clients []ClientCertConfig `yaml:"clients"`
}

// TokenConfig is one bearer token: exactly one of File and Env.
type TokenConfig struct {
	// Name identifies the token in logs (never the token itself).
	Name string `yaml:"name"`
	// File holds the token (surrounding white space is trimmed).
	File string `yaml:"file"`
	// Env names the environment variable holding the token.
	Env   string   `yaml:"env"`
	Roles []string `yaml:"roles"`
}

// ClientCertConfig grants roles to a client certificate's common name.
type ClientCertConfig struct {
	CommonName string   `yaml:"common_name"`
	Roles      []string `yaml:"roles"`
}

// Enabled reports whether the port checks callers.
func (a AuthConfig) Enabled() bool { return len(a.Tokens) > 0 || len(a.Clients) > 0 }

// validate reports every problem of a port's auth block; t is its tls block.
func (a AuthConfig) validate(key string, t TLSConfig) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkRoles := func(k string, roles []string) {
		if len(roles) == 0 {
			add("%s.roles: must name at least one of %s", k, strings.Join(knownRoles, ", "))
		}
		for _, r := range roles {
			if !slices.Contains(knownRoles, r) {
				add("%s.roles: %q, want %s", k, r, strings.Join(knownRoles, ", "))
			}
		}
	}
	for i, tk := range a.Tokens {
		k := fmt.Sprintf("%s.auth.tokens[%d]", key, i)
		if (tk.File == "") == (tk.Env == "") {
			add("%s: set exactly one of file and env", k)
		}
		checkRoles(k, tk.Roles)
	}
	for i, c := range a.Clients {
		k := fmt.Sprintf("%s.auth.clients[%d]", key, i)
		if c.CommonName == "" {
			add("%s.common_name: must be set", k)
		}
		checkRoles(k, c.Roles)
	}
	if len(a.Clients) > 0 && t.ClientCAFile == "" {
		add("%s.auth.clients: needs %s.tls.client_ca_file to verify client certificates", key, key)
	}
	return errs
}

type roleSet uint8

func rolesOf(names []string) roleSet {
	var s roleSet
	for _, n := range names {
		s |= 1 << slices.Index(knownRoles, n)
	}
	return s
}

func (s roleSet) has(role string) bool { return s&(1<<slices.Index(knownRoles, role)) != 0 }

type tokenEntry struct {
	name  string
	sum   [sha256.Size]byte
	roles roleSet
}

// authorizer checks the callers of one port. A nil *authorizer allows all.
type authorizer struct {
	port    string
	tokens  atomic.Pointer[[]tokenEntry]
	clients map[string]roleSet
	cfg     AuthConfig
	denied  func(port, reason string)
}

// errNoCredentials / errForbidden distinguish 401 from 403.
var (
	errNoCredentials = errors.New("no valid bearer token or client certificate")
	errForbidden     = errors.New("caller lacks the role")
)

func newAuthorizer(port string, cfg AuthConfig, denied func(port, reason string)) (*authorizer, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	a := &authorizer{port: port, cfg: cfg, clients: map[string]roleSet{}, denied: denied}
	for _, c := range cfg.Clients {
		a.clients[c.CommonName] |= rolesOf(c.Roles)
	}
	if err := a.loadTokens(); err != nil {
		return nil, err
	}
	return a, nil
}

// loadTokens (re)reads every token; on error the previous set stays.
func (a *authorizer) loadTokens() error {
	if a == nil {
		return nil
	}
	var entries []tokenEntry
	var errs []error
	for i, tk := range a.cfg.Tokens {
		key := fmt.Sprintf("%s.auth.tokens[%d]", a.port, i)
		var v string
		if tk.File != "" {
			b, err := os.ReadFile(tk.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.file: %w", key, err))
				continue
			}
			v = strings.TrimSpace(string(b))
		} else {
			v = strings.TrimSpace(os.Getenv(tk.Env))
		}
		if len(v) < 16 {
			errs = append(errs, fmt.Errorf("%s: token is empty or shorter than 16 characters", key))
			continue
		}
		entries = append(entries, tokenEntry{name: tk.Name, sum: sha256.Sum256([]byte(v)), roles: rolesOf(tk.Roles)})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.tokens.Store(&entries)
	return nil
}

// check returns nil when the bearer token in authHeader, or the verified
// client certificate's common name cn, holds role.
func (a *authorizer) check(authHeader, cn, role string) error {
	if a == nil || role == "" {
		return nil
	}
	found := false
	var have roleSet
	if tok, ok := strings.CutPrefix(authHeader, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		for _, e := range *a.tokens.Load() {
			// Compare every entry in constant time.
			if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
				found, have = true, have|e.roles
			}
		}
	}
	if r, ok := a.clients[cn]; ok && cn != "" {
		found, have = true, have|r
	}
	switch {
	case !found:
		a.denied(a.port, "unauthenticated")
		return errNoCredentials
	case !have.has(role):
		a.denied(a.port, "forbidden")
		return fmt.Errorf("%w %s", errForbidden, role)
	}
	return nil
}

// grpcRole is the role a gRPC method needs; health checks need none and an
// unknown method needs admin (deny by default).
func grpcRole(fullMethod string) string {
	switch {
	case strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/"):
		return ""
	case strings.HasPrefix(fullMethod, "/"+storagev2.TraceReader_ServiceDesc.ServiceName+"/"),
		strings.HasPrefix(fullMethod, "/"+storagev2.DependencyReader_ServiceDesc.ServiceName+"/"),
		hasService(fullMethod, storagev1.SpanReaderPlugin_ServiceDesc, storagev1.ArchiveSpanReaderPlugin_ServiceDesc,
			storagev1.DependenciesReaderPlugin_ServiceDesc, storagev1.PluginCapabilities_ServiceDesc):
		return RoleReader
	case fullMethod == coltracepb.TraceService_Export_FullMethodName, isReport(fullMethod),
		hasService(fullMethod, storagev1.SpanWriterPlugin_ServiceDesc, storagev1.StreamingSpanWriterPlugin_ServiceDesc,
			storagev1.ArchiveSpanWriterPlugin_ServiceDesc):
		return RoleWriter
	}
	return RoleAdmin
}

// hasService reports whether fullMethod belongs to one of the services (the
// Jaeger v1 storage API served beside v2, v1.go).
func hasService(fullMethod string, descs ...grpc.ServiceDesc) bool {
	for _, d := range descs {
		if strings.HasPrefix(fullMethod, "/"+d.ServiceName+"/") {
			return true
		}
	}
	return false
}

// isReport matches the collector's write methods (clt and compat APIs).
func isReport(fullMethod string) bool {
	return strings.HasSuffix(fullMethod, "IOAMService/Report") || strings.HasSuffix(fullMethod, "CollectorService/Report")
}

// verifiedCN is the common name of a client certificate the TLS handshake
// verified, or "".
func verifiedCN(chains [][]*x509.Certificate) string {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return ""
	}
	return chains[0][0].Subject.CommonName
}

func (a *authorizer) grpcCheck(ctx context.Context, fullMethod string) error {
	role := grpcRole(fullMethod)
	if a == nil || role == "" {
		return nil
	}
	var hdr, cn string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			hdr = v[0]
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			cn = verifiedCN(ti.State.VerifiedChains)
		}
	}
	switch err := a.check(hdr, cn, role); {
	case errors.Is(err, errNoCredentials):
		return status.Errorf(codes.Unauthenticated, "%s: %v", a.port, err)
	case err != nil:
		return status.Errorf(codes.PermissionDenied, "%s: %v", a.port, err)
	}
	return nil
}

// httpCheck authorises an admin request: 401 or 403 written, false returned
// when refused.
func (a *authorizer) httpCheck(w http.ResponseWriter, r *http.Request, role string) bool {
	if a == nil {
		return true
	}
	var cn string
	if r.TLS != nil {
		cn = verifiedCN(r.TLS.VerifiedChains)
	}
	switch err := a.check(r.Header.Get("Authorization"), cn, role); {
	case errors.Is(err, errNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="clt-storage"`)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return false
	case err != nil:
		http.Error(w, err.Error(), http.StatusForbidden)
		return false
	}
	return true
}

// budget bounds the memory of write requests being processed on one port:
// each reserves its decoded cost (requestCodec) before it is decoded.
type budget struct {
	port  string
	limit int64
	used  atomic.Int64
	shed  func(port string)
}

// retryAfter is the RetryInfo delay of a shed request.
const retryAfter = time.Second

func (b *budget) exhausted(format string, args ...any) error {
	b.shed(b.port)
	st := status.Newf(codes.ResourceExhausted, "%s: "+format, append([]any{b.port}, args...)...)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// tap refuses a write stream before its message is read while the budget is
// spent, so a flood never gets decoded.
func (b *budget) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if b != nil && isBudgeted(info.FullMethodName) && b.used.Load() >= b.limit {
		return ctx, b.exhausted("in-flight write budget of %d bytes in use, retry later", b.limit)
	}
	return ctx, nil
}

// acquire reserves n bytes or fails with ResourceExhausted + RetryInfo.
func (b *budget) acquire(n int64) (release func(), err error) {
	for {
		used := b.used.Load()
		// One request larger than the whole budget still runs alone (the
		// receive size limit bounds it), rather than never.
		if used > 0 && used+n > b.limit {
			return nil, b.exhausted("in-flight write budget of %d bytes in use (%d, this request needs %d decoded), retry later", b.limit, used, n)
		}
		if b.used.CompareAndSwap(used, used+n) {
			return func() { b.used.Add(-n) }, nil
		}
	}
}

// isBudgeted says which methods' requests are writes held in the budget:
// OTLP Export, IOAM reports and Jaeger v1's span writers (unary, streaming,
// archive). Jaeger v1 does not retry a refused span (its collector counts it
// as dropped), but the alternative is memory that grows with the flood.
func isBudgeted(fullMethod string) bool {
	switch fullMethod {
	case coltracepb.TraceService_Export_FullMethodName,
		storagev1.SpanWriterPlugin_WriteSpan_FullMethodName,
		storagev1.StreamingSpanWriterPlugin_WriteSpanStream_FullMethodName,
		storagev1.ArchiveSpanWriterPlugin_WriteArchiveSpan_FullMethodName:
		return true
	}
	return isReport(fullMethod)
}

// portGuard is a port's interceptors (authorisation, then the GetTraces id
// limit) and its codec (undecodable requests, the write budget).
type portGuard struct {
	auth        *authorizer
	budget      *budget
	codec       *requestCodec
	maxTraceIDs int
	tooMany     func()
}

// unary authorises again what register's handlers authorised before
// decoding: services registered on the server directly are guarded too.
func (g *portGuard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := g.auth.grpcCheck(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// register returns what the port's services register on: srv, with each
// method decoding through the port's codec.
func (g *portGuard) register(srv *grpc.Server) grpc.ServiceRegistrar {
	return registrar{srv: srv, codec: g.codec, budget: g.budget, auth: g.auth}
}

func (g *portGuard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := g.auth.grpcCheck(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	if g.maxTraceIDs > 0 && info.FullMethod == storagev2.TraceReader_GetTraces_FullMethodName {
		ss = &limitedStream{ServerStream: ss, g: g}
	}
	return h(srv, ss)
}

// limitedStream refuses a GetTraces request with too many trace ids.
type limitedStream struct {
	grpc.ServerStream
	g *portGuard
}

func (s *limitedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if req, ok := m.(*storagev2.GetTracesRequest); ok && len(req.GetQuery()) > s.g.maxTraceIDs {
		s.g.tooMany()
		return status.Errorf(codes.InvalidArgument, "query: %d trace ids, at most %d per request (storage.max_trace_ids_per_request)",
			len(req.GetQuery()), s.g.maxTraceIDs)
	}
	return nil
}

// isLoopback reports whether a bound address is reachable only locally.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
