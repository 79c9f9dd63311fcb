package consumer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// MaxURLLen bounds a target URL, as given and once normalized: the
// journal's limit (storage's table of limits).
const MaxURLLen = storage.MaxURLLen

// ErrPrivateTarget: the target resolved to a private, loopback or other
// non-public address and private targets are not allowed. It is also a
// *PolicyError with code "private_target".
var ErrPrivateTarget = errors.New("target address is not public")

// ParseTarget parses an absolute http or https URL to fetch. It refuses
// URLs with credentials in them (they would end up in logs and in the
// journal) and fragments are dropped.
func ParseTarget(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, &field.Error{Field: "url", Problem: "is required", Fix: "send an absolute URL such as https://api.example.com/v1/data"}
	}
	if len(raw) > MaxURLLen {
		return nil, &field.Error{Field: "url", Problem: fmt.Sprintf("is longer than %d bytes", MaxURLLen), Fix: "send a shorter URL"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &field.Error{Field: "url", Problem: "does not parse: " + err.Error(), Fix: "send an absolute URL such as https://api.example.com/v1/data"}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &field.Error{Field: "url", Problem: fmt.Sprintf("has scheme %q", u.Scheme), Fix: "use an http:// or https:// URL"}
	case u.Host == "" || u.Hostname() == "":
		return nil, &field.Error{Field: "url", Problem: "has no host", Fix: "send an absolute URL such as https://api.example.com/v1/data"}
	case u.User != nil:
		return nil, &field.Error{Field: "url", Problem: "carries credentials (user:password@)", Fix: "pass credentials in a header instead"}
	}
	if d := Domain(u); !strings.Contains(d, ":") && slices.Contains(strings.Split(d, "."), "") {
		// "http://./" or "http://a..b/": no name to resolve, and an empty
		// domain would match no allow list entry and share one budget.
		return nil, &field.Error{Field: "url", Problem: fmt.Sprintf("has host %q, which has an empty label", u.Hostname()), Fix: "send a host name such as api.example.com"}
	}
	if p := u.Port(); p != "" {
		if _, err := netip.ParseAddrPort("0.0.0.0:" + p); err != nil {
			return nil, &field.Error{Field: "url", Problem: fmt.Sprintf("has port %q", p), Fix: "use a port from 1 to 65535"}
		}
	}
	if d := Domain(u); len(d) > storage.MaxDomainLen {
		return nil, &field.Error{Field: "url", Problem: fmt.Sprintf("has a host name of %d bytes, more than %d", len(d), storage.MaxDomainLen), Fix: "send a shorter host name"}
	}
	if strings.ContainsRune(u.Path, 0) {
		return nil, &field.Error{Field: "url", Problem: "has a NUL byte (%00) in its path", Fix: "remove it from the URL"}
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	if n := len(u.String()); n > MaxURLLen {
		return nil, &field.Error{Field: "url", Problem: fmt.Sprintf("is %d bytes once escaped, more than %d", n, MaxURLLen), Fix: "send a shorter URL"}
	}
	return u, nil
}

// Origin returns u's origin, scheme://host[:port], lower case and without
// the scheme's default port, so equal origins compare equal.
func Origin(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host
}

// Domain returns the domain a URL's payments count against: its host name
// in lower case, without port or brackets.
func Domain(u *url.URL) string {
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// IsPublicAddr reports whether a is an address on the public internet:
// not loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC
// 6598), unspecified, multicast, documentation, benchmarking or reserved.
// IPv4-mapped IPv6 addresses are judged as IPv4.
func IsPublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// nonPublic are ranges the netip predicates do not cover.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
		"64:ff9b:1::/48", "100::/64", "2001:db8::/32", "2002::/16", "fec0::/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// dialControl refuses connections to non-public addresses. It runs after
// DNS resolution, on the address actually dialled, so a name that
// resolves (or re-resolves, as in DNS rebinding) to a private address is
// caught.
func dialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrPrivateTarget, host)
	}
	if !IsPublicAddr(a) {
		return &PolicyError{Code: "private_target", Field: "url",
			Problem: fmt.Sprintf("resolves to %s, a private, loopback or reserved address", a),
			Fix:     "only public hosts can be fetched; the node runner can allow private ones with --consumer.allow-private",
			err:     ErrPrivateTarget}
	}
	return nil
}

// newDialer returns the dialer for outgoing requests.
func newDialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	if !allowPrivate {
		d.Control = dialControl
	}
	return d
}
