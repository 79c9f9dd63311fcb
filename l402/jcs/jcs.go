// Package jcs implements the JSON Canonicalization Scheme of RFC 8785: one
// byte sequence for every logically equal JSON text, so that a value can be
// hashed, MACed or compared as bytes.
//
// The MPP "Payment" scheme sends its request object as base64url of its JCS
// form; a server that re-encodes a request must produce the very bytes the
// client saw. The rules implemented here are the whole of RFC 8785 §3.2:
//
//   - no whitespace between tokens;
//   - object members sorted by their names compared as arrays of UTF-16
//     code units (not UTF-8 bytes: they differ for names beyond U+FFFF);
//   - strings escaped minimally: \" \\ \b \f \n \r \t, other controls as
//     \u00xx, everything else as literal UTF-8;
//   - numbers parsed as IEEE 754 doubles and written the way ECMAScript's
//     Number.prototype.toString does (1e+21, 0.000001, 1e-7, -0 → 0).
//
// Input must be I-JSON (RFC 7493): valid UTF-8, no lone surrogates, no
// repeated member names, numbers within double range. Anything else is an
// error, never a panic.
package jcs

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
)

// ErrInvalid is wrapped by every error for input that is not I-JSON.
var ErrInvalid = errors.New("jcs: invalid JSON")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

// Canonicalize returns the RFC 8785 form of the JSON text raw.
func Canonicalize(raw []byte) ([]byte, error) {
	p := parser{s: raw}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, p.fail("data after the top-level value")
	}
	var b strings.Builder
	b.Grow(len(raw))
	if err := write(&b, v); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// Marshal encodes v with encoding/json and canonicalizes the result. It is
// what a producer calls to build the bytes it will sign or encode.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("jcs: %w", err)
	}
	return Canonicalize(raw)
}

// member is one name/value pair of an object, kept in input order until
// written.
type member struct {
	name string
	val  any
}

// Parsed values: nil, bool, float64, string, []any, []member.

func write(b *strings.Builder, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case float64:
		s, err := FormatNumber(v)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case string:
		writeString(b, v)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := write(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []member:
		sortMembers(v)
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, m.name)
			b.WriteByte(':')
			if err := write(b, m.val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	}
	return nil
}

// sortMembers orders members by name as UTF-16 code unit arrays.
func sortMembers(ms []member) {
	slices.SortFunc(ms, func(a, b member) int { return compareUTF16(a.name, b.name) })
}

// compareUTF16 compares two valid UTF-8 strings by their UTF-16 code units.
// Byte order equals code point order, which differs from UTF-16 order only
// when a supplementary character (encoded as surrogates, 0xD800-0xDFFF)
// meets a BMP character at or above U+E000; the first differing rune decides.
func compareUTF16(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		if ra[i] != rb[i] {
			return slices.Compare(utf16.AppendRune(nil, ra[i]), utf16.AppendRune(nil, rb[i]))
		}
	}
	return cmp.Compare(len(ra), len(rb))
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string with RFC 8785's minimal escaping.
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
