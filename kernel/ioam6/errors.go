package ioam6

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the returned errors
// wrap them in a *DecodeError (decoders) or carry a short prefix (builders).
var (
	// ErrTruncated means the input is shorter than its own length fields say
	// (Hdr Ext Len, Opt Data Len, an entry or snapshot running past the end).
	ErrTruncated = errors.New("truncated")
	// ErrMalformed means the lengths fit the input but contradict each other
	// or the standards (NodeLen vs trace type, RemainingLen past the area,
	// misaligned option, too much padding, bad carrier IDs).
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported means well-formed IOAM this package does not decode
	// (an IOAM Option-Type other than the Pre-allocated Trace).
	ErrUnsupported = errors.New("unsupported")
	// ErrNotFound means the Hop-by-Hop header holds no IOAM option.
	ErrNotFound = errors.New("no ioam option")
	// ErrInvalidSpec means an encoder input cannot be encoded (option data
	// over 255 bytes, a field out of range, an unknown carrier).
	ErrInvalidSpec = errors.New("invalid spec")
)

// DecodeError reports where decoding failed: the field being decoded and its
// byte offset from the start of the slice passed to the decoding function.
// Err wraps one of the sentinels above.
//
// Field is one of these stable names (callers may classify on them):
// "hop-by-hop header", "hdr ext len", "padding", "option", "opt data len",
// "ioam option", "option type", "ioam option-type", "trace header",
// "node length", "remaining length", "event data", "tail ids",
// "clt-v1 ids", "oss ids", "node", "node opaque state snapshot",
// "node trace type".
type DecodeError struct {
	Field  string // e.g. "remaining length", "node 2 opaque state snapshot"
	Offset int    // byte offset of Field in the decoder's input
	Err    error  // wraps ErrTruncated, ErrMalformed, ErrUnsupported or ErrNotFound
}

var _ interface{ Unwrap() error } = (*DecodeError)(nil)

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("ioam6: %s at offset %d: %v", e.Field, e.Offset, e.Err)
}

// Unwrap returns the wrapped error, so errors.Is(err, ErrTruncated) works.
func (e *DecodeError) Unwrap() error { return e.Err }

// decodeErr builds a *DecodeError; detail (optional) is formatted after the
// sentinel, e.g. "truncated: need 16 bytes, have 12".
func decodeErr(field string, off int, sentinel error, format string, args ...any) error {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
	return &DecodeError{Field: field, Offset: off, Err: err}
}

// specErr reports an encoder input error.
func specErr(format string, args ...any) error {
	return fmt.Errorf("ioam6: %w: "+format, append([]any{ErrInvalidSpec}, args...)...)
}
