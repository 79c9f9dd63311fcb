package consumer

import (
	"net/url"
	"strings"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

// A token's scope says which requests of its origin it is tried on:
//
//	/a/b           exactly the path /a/b
//	/a/*           every path starting with /a/
//	service:<name> any path (the token names a service, as Aperture's do)
//
// ScopeFor derives it from the token's caveats and the path it was bought
// for; ScopeMatches applies it.

const servicePrefix = "service:"

// ScopeFor returns the scope of a token bought for path: its resource
// caveat when that is a path or a URL (a trailing "*" makes it a prefix),
// else its first service, else exactly path. A scope from a caveat that
// the token cache cannot hold (longer than storage.MaxScopeLen, or with a
// NUL) is passed over: the seller chooses caveats, and must not be able
// to make a paid token uncacheable.
func ScopeFor(info l402.Info, path string) string {
	if s := caveatScope(info); s != "" && len(s) <= storage.MaxScopeLen && !strings.ContainsRune(s, 0) {
		return s
	}
	if path == "" {
		return "/"
	}
	return path
}

// caveatScope is the scope a token's caveats name, "" for none.
func caveatScope(info l402.Info) string {
	if r := info.Resource; r != "" {
		if strings.HasPrefix(r, "/") {
			return r
		}
		if u, err := url.Parse(r); err == nil && u.IsAbs() && u.Host != "" {
			p := u.Path
			if p == "" {
				p = "/"
			}
			if strings.HasSuffix(r, "*") && !strings.HasSuffix(p, "*") {
				p += "*"
			}
			return p
		}
	}
	if len(info.Services) > 0 && info.Services[0].Name != "" {
		return servicePrefix + info.Services[0].Name
	}
	return ""
}

// ScopeMatches reports whether a token of scope is tried for path.
func ScopeMatches(scope, path string) bool {
	switch {
	case strings.HasPrefix(scope, servicePrefix):
		return true
	case strings.HasSuffix(scope, "*"):
		return strings.HasPrefix(path, scope[:len(scope)-1])
	}
	return scope == path
}

// scopeRank orders matching scopes: an exact path first, then longer
// prefixes before shorter ones, service scopes last.
func scopeRank(scope string) int {
	switch {
	case strings.HasPrefix(scope, servicePrefix):
		return 0
	case strings.HasSuffix(scope, "*"):
		return 1 + len(scope)
	}
	return 1 << 30
}

// scopeService returns the service of a service scope, "" for a path one.
func scopeService(scope string) string {
	s, _ := strings.CutPrefix(scope, servicePrefix)
	if s == scope {
		return ""
	}
	return s
}

// bestToken picks the token to try for path among an origin's tokens: the
// most specific live one whose scope matches, skipping those in skip.
// expired collects the expired ones seen, for the caller to drop.
func bestToken(toks []storage.Token, path string, now time.Time, skip func(*storage.Token) bool) (best *storage.Token, expired []storage.Token) {
	for i := range toks {
		t := &toks[i]
		if t.Expired(now) {
			expired = append(expired, *t)
			continue
		}
		if t.SingleUse() || !ScopeMatches(t.Scope, path) || (skip != nil && skip(t)) {
			continue
		}
		if best == nil || scopeRank(t.Scope) > scopeRank(best.Scope) {
			best = t
		}
	}
	return best, expired
}
