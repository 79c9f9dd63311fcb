package storage

import (
	"encoding/binary"
	"errors"
	"time"
)

// Values are encoded by hand: a format byte, then fixed-size fields and
// varints, then length-prefixed strings. Decoding checks every length
// against what is left, so a damaged value yields an error, never a panic
// or a huge allocation.

var errShort = errors.New("value is truncated")

// unixNanos encodes t; the zero time is 0.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// representable reports whether unixNanos can encode t: the zero time or a
// time between the years 1678 and 2262.
func representable(t time.Time) bool {
	return t.IsZero() || time.Unix(0, t.UnixNano()).Equal(t)
}

// fromUnixNanos decodes what unixNanos wrote, in UTC.
func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader consumes an encoded value. The first failure sticks in err and
// every later read returns a zero value.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes copies len(dst) bytes into dst.
func (r *reader) bytes(dst []byte) {
	if len(r.b) < len(dst) {
		r.fail(errShort)
		return
	}
	copy(dst, r.b)
	r.b = r.b[len(dst):]
}

func (r *reader) uint64() uint64 {
	if len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// rest returns everything not yet read.
func (r *reader) rest() []byte {
	b := r.b
	r.b = nil
	return b
}

// done reports the first error, or one for trailing bytes.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		return errors.New("trailing bytes")
	}
	return r.err
}
