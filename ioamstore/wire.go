package ioamstore

import (
	"fmt"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

// The OTLP messages are walked here without a full unmarshal; their field
// numbers are internal/otlpwire's.

// eachBytesField calls fn for every length-delimited field of a message and
// skips the others.
func eachBytesField(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("walk spans: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("walk spans: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("walk spans: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// walkSpanLinks calls fn with the service, span id and parent span id of
// every span of a marshaled TracesData, without decoding attributes, events
// or anything else: GetDependencies needs only these. The byte slices alias
// b.
func walkSpanLinks(b []byte, fn func(service string, spanID, parentID []byte)) error {
	return eachBytesField(b, func(num protowire.Number, rs []byte) error {
		if num != otlpwire.FieldTracesDataResourceSpans {
			return nil
		}
		service, found := "", false
		var scopes [][]byte
		err := eachBytesField(rs, func(num protowire.Number, v []byte) error {
			switch num {
			case otlpwire.FieldResourceSpansResource:
				if found {
					return nil
				}
				s, ok, err := resourceServiceWire(v)
				service, found = s, ok
				return err
			case otlpwire.FieldResourceSpansScopeSpans:
				scopes = append(scopes, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ss := range scopes {
			err := eachBytesField(ss, func(num protowire.Number, sp []byte) error {
				if num != otlpwire.FieldScopeSpansSpans {
					return nil
				}
				var id, parent []byte
				err := eachBytesField(sp, func(num protowire.Number, v []byte) error {
					switch num {
					case otlpwire.FieldSpanSpanID:
						id = v
					case otlpwire.FieldSpanParentSpanID:
						parent = v
					}
					return nil
				})
				if err != nil {
					return err
				}
				fn(service, id, parent)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// resourceServiceWire finds service.name in a marshaled Resource (first
// occurrence, like serviceOf).
func resourceServiceWire(b []byte) (string, bool, error) {
	service, found := "", false
	err := eachBytesField(b, func(num protowire.Number, kv []byte) error {
		if found || num != otlpwire.FieldResourceAttributes {
			return nil
		}
		var key string
		var value []byte
		err := eachBytesField(kv, func(num protowire.Number, v []byte) error {
			switch num {
			case otlpwire.FieldKeyValueKey:
				key = string(v)
			case otlpwire.FieldKeyValueValue:
				value = v
			}
			return nil
		})
		if err != nil || key != serviceNameAttr {
			return err
		}
		var av commonpb.AnyValue
		if err := proto.Unmarshal(value, &av); err != nil {
			return fmt.Errorf("walk spans: service.name: %w", err)
		}
		service, found = ValueString(&av), true
		return nil
	})
	return service, found, err
}
