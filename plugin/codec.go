package plugin

import (
	"context"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the proto codec requestCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// decodeCostFactor is what one wire byte of a write request costs in
// memory while it is decoded and stored: the write budget reserves wire
// size × this before decoding (docs/benchmarks.md, "Export memory": an
// Export of ordinary spans peaks at about this many times its size).
const decodeCostFactor = 16

// requestCodec is the server codec of clt-storage's gRPC ports: grpc's
// proto codec, plus two things grpc-go leaves no hook for, since its server
// decodes a request before any interceptor runs and answers every codec
// error codes.Internal:
//   - an undecodable request (malformed protobuf, invalid UTF-8 in a
//     string field) is answered InvalidArgument "clt-storage: undecodable
//     request: …" and counted (requests_refused_total{reason="undecodable"});
//   - a write request reserves its decoded cost (wire bytes ×
//     decodeCostFactor) in the port's in-flight budget before it is
//     decoded, so concurrent large Exports take turns (ResourceExhausted
//     with RetryInfo) instead of all decoding at once.
//
// Both work through the method handlers the port's registrar wraps
// (register): a handler watches the message it decodes into and the codec
// reports to the watcher. Unwatched messages decode exactly as grpc's
// codec decodes them.
type requestCodec struct {
	base        poolCodec
	watched     sync.Map // message being decoded (its pointer) → *recvSlot
	undecodable func()
}

func newRequestCodec(undecodable func()) *requestCodec {
	return &requestCodec{base: newPoolCodec(), undecodable: undecodable}
}

// recvSlot is what the codec reports about the messages of one call.
type recvSlot struct {
	budget *budget // nil: the method is not budgeted
	// err is the refusal or decode error of the message being received
	// (set and read by the receiving goroutine only).
	err error

	mu       sync.Mutex
	releases []func()
	closed   bool
}

// hold keeps a reservation until release; after close it is returned at
// once (a stream handler may return while its receiving goroutine still
// decodes, as the ioam_api compat stream's does).
func (s *recvSlot) hold(rel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		rel()
		return
	}
	s.releases = append(s.releases, rel)
}

// release returns the budget the call's messages reserved.
func (s *recvSlot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.releases {
		r()
	}
	s.releases = s.releases[:0]
}

// close releases everything, for good: the call has ended.
func (s *recvSlot) close() {
	s.release()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (c *requestCodec) Name() string { return c.base.Name() }

// Marshal encodes like grpc's proto codec (poolCodec).
func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

// poolCodec is grpc's proto codec with its buffers from msgPool. grpc's
// default pool has no tier between 32 KiB and 1 MiB and zeroes a whole
// buffer on every Get, so each response message of a 100-span trace (about
// 60 KB) cleared 1 MiB, about a tenth of the server's CPU per read, and so
// did each such message the upstream sends and each large Export
// (docs/benchmarks.md). Messages that are not protobuf-go messages are
// left to grpc's codec.
type poolCodec struct{ grpcCodec encoding.CodecV2 }

func newPoolCodec() poolCodec { return poolCodec{grpcCodec: encoding.GetCodecV2("proto")} }

func (c poolCodec) Name() string { return c.grpcCodec.Name() }

func (c poolCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return c.grpcCodec.Marshal(v)
	}
	size := proto.Size(m)
	if mem.IsBelowBufferPoolingThreshold(size) {
		return c.grpcCodec.Marshal(v)
	}
	buf := msgPool.Get(size)
	// UseCachedSize: proto.Size just computed them (as grpc's codec does).
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], m)
	if err != nil {
		msgPool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, msgPool)}, nil
}

// Unmarshal gathers a message received in several frames into a buffer of
// msgPool (one frame is used as it is), then decodes it.
func (c poolCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.grpcCodec.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(msgPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// msgPool holds the buffers of the messages clt-storage sends and
// receives: a tier for every power of two from 256 B to 4 MiB (the largest
// message it sends), so a buffer is at most twice its message; a larger
// received message takes the pool's untiered fallback.
var msgPool = func() mem.BufferPool {
	var exps []uint8
	for e := uint8(8); e <= 22; e++ {
		exps = append(exps, e)
	}
	p, err := mem.NewBinaryTieredBufferPool(exps...)
	if err != nil {
		panic(err) // only for exponents beyond the word size
	}
	return p
}()

// Unmarshal decodes like grpc's proto codec. For a watched message it
// reports a refusal or a decode error to the watcher and returns nil:
// grpc-go's server stream writes any codec error to the client as
// Internal the moment RecvMsg fails, before a handler could answer
// otherwise; the watcher returns the reported error instead (recv), so
// nothing ever sees the message.
func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	slot, _ := c.watched.Load(v)
	s, _ := slot.(*recvSlot)
	if s == nil {
		return c.base.Unmarshal(data, v)
	}
	if s.budget != nil {
		rel, err := s.budget.acquire(int64(data.Len()) * decodeCostFactor)
		if err != nil {
			s.err = err
			return nil
		}
		s.hold(rel)
	}
	if err := c.base.Unmarshal(data, v); err != nil {
		c.undecodable()
		s.err = status.Errorf(codes.InvalidArgument, "clt-storage: undecodable request: %s%v", messageName(v), err)
	}
	return nil
}

// recv receives one message into v with the call's slot watching it, and
// returns what the codec reported, if anything.
func (c *requestCodec) recv(s *recvSlot, v any, recv func(any) error) error {
	c.watched.Store(v, s)
	err := recv(v)
	c.watched.Delete(v)
	if e := s.err; e != nil {
		s.err = nil
		return e
	}
	return err
}

// registrar registers services on srv with every method handler watching
// its decoding (see requestCodec); budget is the port's write budget, for
// the methods it covers (isBudgeted). A unary call is authorised (auth)
// before its request is decoded, so an unauthorised caller costs no
// decoding and no budget (streams are, by the stream interceptor).
type registrar struct {
	srv    *grpc.Server
	codec  *requestCodec
	budget *budget
	auth   *authorizer
}

var _ grpc.ServiceRegistrar = registrar{}

func (r registrar) RegisterService(sd *grpc.ServiceDesc, impl any) {
	d := *sd
	d.Methods, d.Streams = slices.Clone(sd.Methods), slices.Clone(sd.Streams)
	for i := range d.Methods {
		m := &d.Methods[i]
		m.Handler = r.unary("/"+sd.ServiceName+"/"+m.MethodName, m.Handler)
	}
	for i := range d.Streams {
		st := &d.Streams[i]
		st.Handler = r.stream(r.budgetFor("/"+sd.ServiceName+"/"+st.StreamName), st.Handler)
	}
	r.srv.RegisterService(&d, impl)
}

func (r registrar) budgetFor(fullMethod string) *budget {
	if r.budget != nil && isBudgeted(fullMethod) {
		return r.budget
	}
	return nil
}

func (r registrar) unary(fullMethod string, h grpc.MethodHandler) grpc.MethodHandler {
	b := r.budgetFor(fullMethod)
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		if err := r.auth.grpcCheck(ctx, fullMethod); err != nil {
			return nil, err
		}
		s := &recvSlot{budget: b}
		defer s.close()
		return h(srv, ctx, func(v any) error { return r.codec.recv(s, v, dec) }, ic)
	}
}

func (r registrar) stream(b *budget, h grpc.StreamHandler) grpc.StreamHandler {
	return func(srv any, ss grpc.ServerStream) error {
		rs := &recvStream{ServerStream: ss, codec: r.codec, slot: &recvSlot{budget: b}}
		defer rs.slot.close()
		return h(srv, rs)
	}
}

// recvStream decodes a stream's messages through its slot; a message's
// budget is held until the next one is received (the handler is done with
// it then) or the stream ends.
type recvStream struct {
	grpc.ServerStream
	codec *requestCodec
	slot  *recvSlot
}

func (s *recvStream) RecvMsg(m any) error {
	s.slot.release()
	return s.codec.recv(s.slot, m, s.ServerStream.RecvMsg)
}

// messageName names the request type in an undecodable-request error
// ("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest: ").
func messageName(v any) string {
	if m, ok := v.(proto.Message); ok {
		return string(m.ProtoReflect().Descriptor().FullName()) + ": "
	}
	return ""
}
