package gate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/l402/x402"
)

// AuthPath is the forward-auth endpoint: a proxy in front of the
// upstream (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth)
// asks it whether to let a request through.
const AuthPath = "/auth"

// Headers of a forward-auth answer that lets a request through, for the
// proxy to copy onto the request it sends upstream. They are always set,
// so a copy overwrites whatever the client sent under these names.
const (
	HeaderService = "X-L402-Service"
	HeaderTokenID = "X-L402-Token-Id"
	HeaderAccess  = "X-L402-Access" // "paid" or "free"
	// HeaderBody carries the 402's JSON body to nginx, whose auth_request
	// drops the body of the answer it asks for.
	HeaderBody = "X-L402-Body"
	// HeaderError carries the code of a refusal nginx sees as 403.
	HeaderError = "X-L402-Error"
)

// The headers the proxies tell the original request by.
const (
	hdrOriginalMethod  = "X-Original-Method" // nginx
	hdrOriginalURI     = "X-Original-Uri"
	hdrForwardedMethod = "X-Forwarded-Method" // Caddy, Traefik
	hdrForwardedURI    = "X-Forwarded-Uri"
	hdrForwardedHost   = "X-Forwarded-Host"
)

// isAuthRequest reports whether r is for the forward-auth endpoint: its
// path, and either a proxy's header naming the original request or no
// service of its own at that path (a service priced at /auth keeps it).
func (g *Gate) isAuthRequest(r *http.Request, st *state) bool {
	if r.URL.Path != AuthPath {
		return false
	}
	h := r.Header
	return h.Get(hdrOriginalURI) != "" || h.Get(hdrForwardedURI) != "" || st.svcs.match(r.Host, AuthPath) == nil
}

// serveAuth answers a forward-auth request: it rebuilds the original
// request from the proxy's headers and lets the gate decide on it as it
// would on a request of its own, except that a request let through gets
// 200 and the headers above instead of the upstream's answer, and that a
// path no service prices is refused rather than let through.
func (g *Gate) serveAuth(w http.ResponseWriter, r *http.Request, st *state) {
	nginx := r.Header.Get(hdrOriginalURI) != ""
	aw := &authWriter{header: http.Header{}}
	defer aw.flush(w, nginx)

	orig, err := originalRequest(r)
	if err != nil {
		writeJSON(aw, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "bad_forward_auth",
			Fix: "send the original request's method and URI in X-Original-Method and X-Original-URI (nginx) or X-Forwarded-Method and X-Forwarded-Uri (Caddy, Traefik)"})
		return
	}
	svc := st.svcs.match(orig.Host, orig.URL.Path)
	if svc == nil {
		writeJSON(aw, http.StatusNotFound, errorBody{Error: "no service is configured for " + safeHost(orig.Host) + " " + truncate(orig.URL.Path), Code: "not_found",
			Fix: "price the path in the services file, or do not send it to forward auth"})
		return
	}
	g.serve(aw, orig, authAllow{svc: svc, w: aw})
}

// originalRequest is the request a forward-auth request asks about.
func originalRequest(r *http.Request) (*http.Request, error) {
	h := r.Header
	method, uri := h.Get(hdrOriginalMethod), h.Get(hdrOriginalURI)
	nginx := h.Get(hdrOriginalMethod) != "" || uri != ""
	if nginx && (h.Get(hdrForwardedMethod) != "" || h.Get(hdrForwardedURI) != "") {
		// Each proxy sets its own headers and passes the client's other
		// ones on: a client behind Caddy could add X-Original-URI naming
		// a free path while Caddy forwards it to a paid one. Which of
		// the two is the proxy's cannot be told, so neither is believed.
		return nil, errString("the forward-auth request names the original request twice (X-Original-* and X-Forwarded-Method/-Uri); a client added one of them")
	}
	if !nginx {
		method, uri = h.Get(hdrForwardedMethod), h.Get(hdrForwardedURI)
	}
	if uri == "" {
		return nil, errString("the forward-auth request names no original URI")
	}
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || !strings.HasPrefix(uri, "/") {
		return nil, errString("the original URI " + truncate(uri) + " is not a path with an optional query")
	}
	o := r.Clone(r.Context())
	o.Method, o.URL, o.RequestURI = method, u, uri
	if fh := h.Get(hdrForwardedHost); fh != "" && !nginx {
		o.Host = fh
	}
	for _, k := range []string{hdrOriginalMethod, hdrOriginalURI, hdrForwardedMethod, hdrForwardedURI, hdrForwardedHost} {
		o.Header.Del(k)
	}
	// The forward-auth request itself has no body and upgrades nothing,
	// and its answer must be a plain HTTP status: a gRPC request would
	// get the gate's gRPC answer to a refusal, which is HTTP 200.
	o.Header.Del("Upgrade")
	o.Header.Del("Content-Type")
	o.Body, o.ContentLength = http.NoBody, 0
	return o, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// authAllow is what the gate lets a forward-auth request through to:
// 200 with the service and the token the gate vouches for.
type authAllow struct {
	svc *service
	w   *authWriter
}

func (a authAllow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.w.allowed = true
	// The gate hands a request on only if its path is free (auth off,
	// whitelisted, a freebie) or its credential was verified.
	access, id := "free", "-"
	mp := a.svc.matchPath(r.URL.Path)
	if a.svc.cfg.Auth != AuthOff && !a.svc.whitelisted(mp) {
		if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
			if ident, err := l402.DecodeIdentifier(cred.Macaroon.Id()); err == nil {
				access, id = "paid", ident.TokenID.String()
			}
		}
	}
	h := w.Header()
	h.Set(HeaderService, a.svc.cfg.Name)
	h.Set(HeaderTokenID, id)
	h.Set(HeaderAccess, access)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// authWriter holds the gate's answer to a forward-auth request so that it
// can be rewritten for the proxy that asked.
type authWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	// allowed: the gate let the request through (authAllow ran). Only
	// then may the answer be 2xx: the proxy lets through whatever is.
	allowed bool
}

func (a *authWriter) Header() http.Header { return a.header }

func (a *authWriter) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

func (a *authWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.body.Write(b)
}

// flush writes the held answer. For nginx, whose auth_request passes on
// only 2xx, 401 and 403, a 402 becomes 401 with its body in a header
// (the recipe's error_page answers the client 402 with both), and every
// other refusal 403 with its code in a header.
func (a *authWriter) flush(w http.ResponseWriter, nginx bool) {
	status := a.status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 300 && !a.allowed {
		// Not a decision to let through (nothing of the gate's should
		// answer 2xx otherwise): refuse rather than fail open.
		a.header, a.body = http.Header{}, bytes.Buffer{}
		writeJSON(a, http.StatusInternalServerError, errorBody{Error: "the gate gave no forward-auth decision", Code: "internal", Fix: "report this to the operator"})
		status = http.StatusInternalServerError
	}
	h := w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	if nginx && status >= 300 {
		body := bytes.TrimSpace(a.body.Bytes())
		if status == http.StatusPaymentRequired {
			// nginx hands the client one WWW-Authenticate value (the
			// recipe's $upstream_http_www_authenticate), the L402 one, and
			// reads the auth answer's headers into one 4 KiB buffer by
			// default, which the other schemes' challenges overflow (a 500
			// for every unpaid request): nginx gets the L402 challenge
			// only.
			onlyL402Challenge(h)
			h.Set(HeaderBody, asciiJSON(body))
			status = http.StatusUnauthorized
		} else {
			var e errorBody
			_ = json.Unmarshal(body, &e)
			h.Set(HeaderError, e.Code)
			status = http.StatusForbidden
		}
	}
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(a.body.Bytes())
}

// onlyL402Challenge removes every challenge but the L402 (and LSAT)
// ones from a 402's headers.
func onlyL402Challenge(h http.Header) {
	var keep []string
	for _, v := range h.Values("WWW-Authenticate") {
		if !hasScheme(v, mpp.Scheme) {
			keep = append(keep, v)
		}
	}
	if h.Del("WWW-Authenticate"); len(keep) > 0 {
		h["Www-Authenticate"] = keep
	}
	h.Del(x402.HeaderPaymentRequired)
}

// hasScheme reports whether an auth header value is of scheme.
func hasScheme(v, scheme string) bool {
	s, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return strings.EqualFold(s, scheme)
}

// asciiJSON re-encodes a JSON value with every non-ASCII character
// escaped, so it can travel in a header.
func asciiJSON(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		switch {
		case r < 0x20 || r == 0x7f:
			continue // JSON from the gate holds none outside strings
		case r < 0x80:
			out.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			out.WriteString(`\u` + hex4(0xd800+(r>>10)) + `\u` + hex4(0xdc00+(r&0x3ff)))
		default:
			out.WriteString(`\u` + hex4(r))
		}
	}
	return out.String()
}

func hex4(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[r>>12&0xf], digits[r>>8&0xf], digits[r>>4&0xf], digits[r&0xf]})
}
