package gate

import (
	"bytes"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// The gate's own HTTP/1.1 server (h1server.go) and raw proxy path
// (h1proxy.go) read request and response heads with the strict parsers
// below. They never refuse anything: a head they do not fully understand
// is declined (ok false), and the caller hands it, unread, to the
// standard library, which parses it again and answers errors as it always
// has. So a difference between these parsers and net/http's can cost
// speed, never a request read two ways: what is accepted here is a subset
// of what net/http accepts and reads the same (FuzzRequestHead checks).

// maxHeadFields bounds the fields of a head the fast path takes.
const maxHeadFields = 64

// headField is one header line of a head: its name as sent and its value
// with surrounding whitespace trimmed.
type headField struct{ name, value []byte }

// reqHead is a request head the fast path takes: GET, HEAD or OPTIONS
// for an origin-form target, HTTP/1.1, one Host, no body, no upgrade,
// no expectation, and a Connection header (if any) of keep-alive only.
type reqHead struct {
	method string // a constant: no allocation
	target []byte
	host   []byte
	fields []headField // without Host
}

// parseRequestHead parses b, a request head ending in CRLF CRLF, into h
// (reusing h.fields). ok is false for anything the fast path declines.
func parseRequestHead(b []byte, h *reqHead) (ok bool) {
	line, rest, ok := cutLine(b)
	if !ok {
		return false
	}
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		h.method, line = "GET", line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		h.method, line = "HEAD", line[5:]
	case bytes.HasPrefix(line, []byte("OPTIONS ")):
		h.method, line = "OPTIONS", line[8:]
	default:
		return false
	}
	target, ok := bytes.CutSuffix(line, []byte(" HTTP/1.1"))
	if !ok || !validTarget(target) {
		return false
	}
	h.target, h.host, h.fields = target, nil, h.fields[:0]
	hostSeen := false
	for {
		var f headField
		var done bool
		if f, rest, done, ok = nextField(rest, len(h.fields)); !ok {
			return false
		}
		if done {
			break
		}
		switch {
		case fieldIs(f.name, "Host"):
			if hostSeen || len(f.value) == 0 || !httpguts.ValidHostHeader(string(f.value)) {
				return false
			}
			hostSeen, h.host = true, f.value
			continue
		case fieldIs(f.name, "Connection"):
			if !bytes.EqualFold(f.value, []byte("keep-alive")) {
				return false // close, upgrade, or hop-by-hop fields named
			}
		case fieldIs(f.name, "Content-Length"), fieldIs(f.name, "Transfer-Encoding"),
			fieldIs(f.name, "Upgrade"), fieldIs(f.name, "Expect"), fieldIs(f.name, "Te"),
			fieldIs(f.name, "Trailer"):
			return false // a body, an upgrade, or a negotiation: net/http's
		case fieldIs(f.name, "Content-Type"):
			if bytes.HasPrefix(f.value, []byte("application/grpc")) {
				return false
			}
		}
		h.fields = append(h.fields, f)
	}
	return hostSeen && len(rest) == 0
}

// respHead is an upstream response head the raw proxy path passes on: a
// final status, framed by one Content-Length or bodiless by its status.
type respHead struct {
	status int
	// length is the body's length; -1 when the status has no body.
	length int64
	// close is set when the upstream asked to close the connection.
	close bool
	// fields are the end-to-end fields, to be passed on as they are;
	// Date is set when one of them is the Date.
	fields []headField
	date   bool
}

// parseResponseHead parses b, a response head ending in CRLF CRLF, into
// h (reusing h.fields); head says it answers a HEAD request, which has
// no body whatever the head says. ok is false for anything the raw path declines:
// an informational status, another protocol version, chunked or
// close-delimited bodies, hop-by-hop fields named in Connection,
// duplicate or malformed lengths.
func parseResponseHead(b []byte, h *respHead, head bool) (ok bool) {
	line, rest, ok := cutLine(b)
	if !ok || len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return false
	}
	code := line[9:12]
	if code[0] < '2' || code[0] > '5' || !isDigit(code[1]) || !isDigit(code[2]) {
		return false
	}
	if len(line) > 12 && (line[12] != ' ' || !validReason(line[13:])) {
		return false
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	h.length, h.close, h.date, h.fields = -2, false, false, h.fields[:0]
	for {
		var f headField
		var done bool
		if f, rest, done, ok = nextField(rest, len(h.fields)); !ok {
			return false
		}
		if done {
			break
		}
		switch {
		case fieldIs(f.name, "Content-Length"):
			if h.length != -2 {
				return false
			}
			if h.length, ok = parseLength(f.value); !ok {
				return false
			}
			continue
		case fieldIs(f.name, "Connection"):
			switch {
			case bytes.EqualFold(f.value, []byte("close")):
				h.close = true
			case bytes.EqualFold(f.value, []byte("keep-alive")):
			default:
				return false
			}
			continue
		case fieldIs(f.name, "Transfer-Encoding"), fieldIs(f.name, "Trailer"):
			return false
		case fieldIs(f.name, "Keep-Alive"), fieldIs(f.name, "Proxy-Connection"), fieldIs(f.name, "Upgrade"),
			fieldIs(f.name, "Te"), fieldIs(f.name, "Proxy-Authenticate"), fieldIs(f.name, "Proxy-Authorization"):
			continue // hop-by-hop: not passed on (as httputil.ReverseProxy)
		case fieldIs(f.name, "Date"):
			h.date = true
		}
		h.fields = append(h.fields, f)
	}
	if len(rest) != 0 {
		return false
	}
	switch {
	case h.status == 204 || h.status == 304:
		if h.length > 0 {
			return false
		}
		h.length = -1
	case h.length == -2 && head:
		h.length = -1
	case h.length == -2:
		return false // chunked or read to the close: the standard path
	}
	return true
}

// nextField cuts the next header line off rest, n fields having been
// read: done at the empty line that ends the head; ok is false for a line
// the fast path declines, or one field too many.
func nextField(rest []byte, n int) (f headField, tail []byte, done, ok bool) {
	line, tail, ok := cutLine(rest)
	switch {
	case !ok:
		return headField{}, nil, false, false
	case len(line) == 0:
		return headField{}, tail, true, true
	}
	if f, ok = parseField(line); !ok || n == maxHeadFields {
		return headField{}, nil, false, false
	}
	return f, tail, false, true
}

// cutLine cuts b at its first CRLF. A lone CR or LF before it is not ok:
// net/http reads a bare LF as a line end, so the fast path declines it.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// parseField parses "name: value": a token name, the colon right after
// it, a value of visible characters, spaces and tabs (obs-text allowed),
// trimmed. Folded lines are declined.
func parseField(line []byte) (headField, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return headField{}, false
	}
	name := line[:colon]
	for _, c := range name {
		if !httpguts.IsTokenRune(rune(c)) {
			return headField{}, false
		}
	}
	v := bytes.Trim(line[colon+1:], " \t")
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return headField{}, false
		}
	}
	return headField{name: name, value: v}, true
}

// fieldIs reports whether a field name is canon, case-insensitively.
func fieldIs(name []byte, canon string) bool {
	if len(name) != len(canon) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := canon[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// validTarget reports whether t is an origin-form target of visible
// ASCII without a fragment.
func validTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validReason reports whether a reason phrase has no control characters.
func validReason(r []byte) bool {
	for _, c := range r {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length of at most 18 digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
