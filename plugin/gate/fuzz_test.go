package gate

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParseServices feeds the services-file parser arbitrary bytes: it
// must never panic, must explain every refusal, and what it accepts must
// compile into services the gate can serve.
func FuzzParseServices(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		fullFile, testServices, "", "services: []", "services:\n", "- a", "services: {a: b}",
		"services:\n  - name: a\n    price: 1\n    pricing:\n      - {path: /x*, price: 2}\n",
		"x: &a [*a]\nservices: *a\n", "services:\n  - <<: {name: a}\n", "services:\n  - name: a\n    auth: freebie 99999999999\n",
		"services:\n  - name: a\n    price: 1e400\n", "services:\n  - {name: a, host: '*.', price: 1}\n",
		"services:\n  - name: a\n    price: 1\n    rate_limit: {rate: .nan}\n",
		"services:\n  - name: a\n    price: 1\n    prepaid_credit: 100\n    schemes: [l402, mpp]\n    session_deposit: 50\n",
		"services:\n  - name: a\n    price: 1\n    pricer_url: http://127.0.0.1:9/p\n    pricer_max: 9\n    pricer_fallback: 3\n    pricer_body: 64\n    pricer_headers: [X-Model, Cookie]\n    pricer_timeout: 1s\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseServices(data, ParseOptions{Name: "f.yaml"})
		if err != nil {
			ce, ok := err.(ConfigErrors)
			if !ok || len(ce) == 0 {
				t.Fatalf("error %T %v is not ConfigErrors", err, err)
			}
			for _, e := range ce {
				if e.Problem == "" || !strings.HasPrefix(e.Error(), "f.yaml") {
					t.Fatalf("unexplained error %+v", e)
				}
			}
			return
		}
		for _, svc := range s.list {
			if len(svc.rules) == 0 || svc.rules[len(svc.rules)-1].pat != svc.path {
				t.Fatalf("service %q: rules %v do not end with its path", svc.cfg.Name, svc.rules)
			}
			for _, r := range svc.rules {
				if svc.cfg.Auth != AuthOff && r.price <= 0 {
					t.Fatalf("service %q charges %d", svc.cfg.Name, r.price)
				}
				if !svc.path.covers(r.pat) {
					t.Fatalf("rule %s outside %s", r.resource, svc.path)
				}
			}
			_ = svc.ruleFor(svc.path.lit)
			_ = s.match("x", svc.path.lit)
		}
		c := newCatalog(s, "", 0, func(svc *service) schemeSet { return svc.schemes })
		if _, err := c.manifestJSON(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.openAPIJSON(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseQuoteRequest(f *testing.F) {
	f.Add([]byte(`{"service":"api"}`))
	f.Add([]byte(`{"service":"api","tier":1,"capabilities":["read"],"constraints":{"valid_until":1735689600},"max_price_msat":1000,"resource":"/api/*"}`))
	f.Add([]byte(`{"service":5}`))
	f.Add([]byte(`[]`))
	svcs, err := ParseServices([]byte(testServices), ParseOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuoteRequest(b)
		if err != nil {
			var qe *quoteError
			if !errors.As(err, &qe) || qe.Code == "" || qe.Msg == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		svc, rl, _, qe := q.resolve(svcs, func(s *service) schemeSet { return s.schemes })
		if qe != nil {
			if qe.Code == "" || qe.status == 0 {
				t.Fatalf("refusal without a code: %+v", qe)
			}
			return
		}
		// What a quote sells is one of the service's own rules, at its price.
		if svc.cfg.Name != q.Service || rl.price <= 0 || (q.MaxPriceMsat > 0 && rl.price*1000 > q.MaxPriceMsat) {
			t.Fatalf("%+v sold %s at %d", q, rl.resource, rl.price)
		}
	})
}

// FuzzRequestHead checks h1Server's request parser against net/http's:
// a head it takes must be one net/http reads the same way (method,
// target, Host, every field), with no body. What it declines goes to
// net/http anyway, so declining is always safe.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /p/x?q=1 HTTP/1.1\r\nHost: gate.example:8403\r\nAuthorization: L402 mac:pre\r\nAccept: */*\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
		"OPTIONS /x HTTP/1.1\r\nhost: a\r\nX-A:\t1 \r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n",
		"GET /a%2Fb HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h reqHead
		if !parseRequestHead(b, &h) {
			return
		}
		if _, err := url.ParseRequestURI(string(h.target)); err != nil {
			return // h1ServerConn.request declines it too
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("taken here, refused by net/http: %v\n%q", err, b)
		}
		if r.Method != h.method || r.RequestURI != string(h.target) || r.Host != string(h.host) || r.ContentLength != 0 {
			t.Fatalf("read differently: %s %s %s %d\n%q", r.Method, r.RequestURI, r.Host, r.ContentLength, b)
		}
		n := 0
		for _, fd := range h.fields {
			k := textproto.CanonicalMIMEHeaderKey(string(fd.name))
			if !slices.Contains(r.Header[k], string(fd.value)) {
				t.Fatalf("field %s: %q not in net/http's %q\n%q", k, fd.value, r.Header[k], b)
			}
			n++
		}
		total := 0
		for _, vv := range r.Header {
			total += len(vv)
		}
		if total != n {
			t.Fatalf("%d fields here, %d in net/http\n%q", n, total, b)
		}
	})
}

// FuzzResponseHead checks the raw proxy path's response parser against
// net/http's: an answer it passes on must be one net/http reads with the
// same status, length and end-to-end fields.
func FuzzResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nDate: Sun, 29 Nov 2026 00:00:00 GMT\r\n\r\n",
		"HTTP/1.1 304\r\nETag: \"x\"\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, head bool) {
		var h respHead
		if !parseResponseHead(b, &h, head) {
			return
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("taken here, refused by net/http: %v\n%q", err, b)
		}
		if resp.StatusCode != h.status || resp.Close != h.close && !head {
			t.Fatalf("read differently: %d close %v\n%q", resp.StatusCode, resp.Close, b)
		}
		if h.length >= 0 && !head && resp.ContentLength != h.length {
			t.Fatalf("length %d here, %d in net/http\n%q", h.length, resp.ContentLength, b)
		}
		for _, fd := range h.fields {
			k := textproto.CanonicalMIMEHeaderKey(string(fd.name))
			if !slices.Contains(resp.Header[k], string(fd.value)) {
				t.Fatalf("field %s: %q not in net/http's %q\n%q", k, fd.value, resp.Header[k], b)
			}
		}
	})
}
