package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestFrom(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer, no header", "203.0.113.9:4000", nil, "203.0.113.9"},
		{"untrusted peer's header is ignored", "203.0.113.9:4000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, one hop", "10.0.0.5:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"right-most untrusted hop wins", "10.0.0.5:1", []string{"198.51.100.1, 198.51.100.2, 10.0.0.7"}, "198.51.100.2"},
		{"several header lines, right to left", "10.0.0.5:1", []string{"198.51.100.1", "198.51.100.2", "10.0.0.8"}, "198.51.100.2"},
		{"every hop trusted: the left-most", "10.0.0.5:1", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"trusted peer, no header", "10.0.0.5:1", nil, "10.0.0.5"},
		{"a bad hop ends the walk at the last good one", "10.0.0.5:1", []string{"198.51.100.1, junk, 10.0.0.9"}, "10.0.0.9"},
		{"mapped IPv4 hop is unmapped", "10.0.0.5:1", []string{"::ffff:198.51.100.3"}, "198.51.100.3"},
		{"mapped IPv4 peer is unmapped", "[::ffff:203.0.113.4]:1", nil, "203.0.113.4"},
		{"IPv6 trusted peer", "[::1]:1", []string{"2001:db8::1"}, "2001:db8::1"},
		{"empty header", "10.0.0.5:1", []string{""}, "10.0.0.5"},
		{"not a TCP peer", "@", nil, "@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := String(r, trusted); got != tt.want {
				t.Fatalf("String = %q, want %q", got, tt.want)
			}
		})
	}
}
