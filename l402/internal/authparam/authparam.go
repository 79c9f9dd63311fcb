// Package authparam splits HTTP authentication challenges (RFC 9110
// §11.6.1) into schemes and auth-params, and quotes parameter values: the
// one tokenizer under the L402 and Payment (MPP) challenge parsers. It
// interprets no scheme.
package authparam

import "strings"

// Challenge is one challenge of a WWW-Authenticate value before
// interpretation: its scheme and its auth-params in order, names lowered.
type Challenge struct {
	Scheme string
	Params [][2]string
}

// Param returns the first value of the parameter name (lower case), ""
// if none.
func (c Challenge) Param(name string) string {
	for _, p := range c.Params {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

// Split tokenizes one WWW-Authenticate value into challenges
// after RFC 9110 §11.6.1: a token not followed by "=" starts a challenge;
// name=value pairs (value a token or a quoted-string with backslash
// escapes) are its parameters. A token68 of another scheme (Basic, Bearer)
// becomes junk parameters of that scheme, which callers ignore. The loop
// always advances, so any byte string terminates.
func Split(s string) []Challenge {
	var out []Challenge
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		if i == start {
			if i < len(s) {
				i++ // a stray separator: skip it
			}
			continue
		}
		tok := s[start:i]
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '=' {
			i = j + 1
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			var val string
			val, i = readValue(s, i)
			if len(out) > 0 {
				last := &out[len(out)-1]
				last.Params = append(last.Params, [2]string{strings.ToLower(tok), val})
			}
			continue
		}
		out = append(out, Challenge{Scheme: tok})
	}
	return out
}

// readValue reads a quoted-string or a token at i and returns it with the
// index after it. An unterminated quoted-string runs to the end.
func readValue(s string, i int) (string, int) {
	if i < len(s) && s[i] == '"' {
		i++
		if end := strings.IndexAny(s[i:], "\\\""); end >= 0 && s[i+end] == '"' {
			return s[i : i+end], i + end + 1 // common case: no escapes
		}
		var b strings.Builder
		for i < len(s) {
			switch c := s[i]; c {
			case '\\':
				if i+1 < len(s) {
					b.WriteByte(s[i+1])
				}
				i += 2
			case '"':
				return b.String(), i + 1
			default:
				b.WriteByte(c)
				i++
			}
		}
		return b.String(), len(s)
	}
	start := i
	for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
		i++
	}
	return s[start:i], i
}

// isTokenChar reports whether c is a tchar of RFC 9110 §5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Quote writes v as an RFC 9110 quoted-string: only '"' and '\' are
// escaped, which is also what Go's %q (Aperture's formatter) does for the
// printable text that challenge fields hold.
func Quote(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}
