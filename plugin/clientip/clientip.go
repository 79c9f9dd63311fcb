// Package clientip finds the address of the client behind a request, for
// rate limits, unpaid-invoice shares and idempotency scopes. It is the one
// answer the REST API and the gate share, so a client is the same client
// to both.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// From returns the client address of r: the peer, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is walked from the right
// (the hop nearest to us) and the first untrusted hop is the client. When
// every hop is trusted the left-most one is; a hop that does not parse
// ends the walk at the last good one (whoever wrote it is not to be
// believed further). IPv4-mapped IPv6 addresses are unmapped, so a client
// has one address whichever way it came. The zero Addr means the peer
// address itself did not parse (not a TCP peer).
func From(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if !isTrusted(a, trusted) {
		return a
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := xff[i]
		for hops != "" {
			j := strings.LastIndexByte(hops, ',')
			hop := strings.TrimSpace(hops[j+1:])
			hops = hops[:max(j, 0)]
			h, err := netip.ParseAddr(hop)
			if err != nil {
				return a
			}
			h = h.Unmap()
			if !isTrusted(h, trusted) {
				return h
			}
			a = h
			if j < 0 {
				break
			}
		}
	}
	return a
}

// String is From as text; a peer that is not an IP address is returned as
// it is, so callers that key by it still tell peers apart.
func String(r *http.Request, trusted []netip.Prefix) string {
	if a := From(r, trusted); a.IsValid() {
		return a.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
