package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"

	"github.com/l402d/l402d/storage/atomicfile"
)

// Role is what a key may do. Each key has one role; the admin key may do
// everything. The producer key (api.key, the seed API's X-API-Key) sells:
// it creates, verifies and lists challenges and reads stats and metrics.
// The spend key (spend.key, present only while spending is enabled) pays:
// every consumer operation. Neither can do the other's work.
type Role int

// Roles a key can have, and RoleAnyKey, which Handle accepts as a
// requirement meaning "any valid key; the handler decides by RoleOf".
const (
	RoleNone Role = iota
	RoleProducer
	RoleSpend
	RoleAdmin
	RoleAnyKey
)

// String names the role as the key files and the docs do.
func (r Role) String() string {
	switch r {
	case RoleProducer:
		return "producer"
	case RoleSpend:
		return "spend"
	case RoleAdmin:
		return "admin"
	case RoleAnyKey:
		return "any"
	}
	return "none"
}

// Allows reports whether a key of role r may call an endpoint that needs
// need.
func (r Role) Allows(need Role) bool {
	switch {
	case need == RoleNone:
		return true
	case r == RoleNone:
		return false
	case r == RoleAdmin, need == RoleAnyKey:
		return true
	}
	return r == need
}

// keyFile is the file in the data dir that holds a role's key.
func (r Role) keyFile() string {
	switch r {
	case RoleSpend:
		return "spend.key"
	case RoleAdmin:
		return "admin.key"
	}
	return "api.key"
}

// Keys checks keys in constant time. It keeps only hashes.
type Keys struct {
	producer, spend, admin [sha256.Size]byte
	hasSpend               bool
}

// NewKeys builds a checker from the producer and admin keys' text. It
// knows no spend key: see WithSpend.
func NewKeys(producerKey, adminKey string) (*Keys, error) {
	if len(producerKey) < 16 || len(adminKey) < 16 {
		return nil, errors.New("api: keys must be at least 16 characters")
	}
	if producerKey == adminKey {
		return nil, errors.New("api: the producer and admin keys must differ")
	}
	return &Keys{producer: sha256.Sum256([]byte(producerKey)), admin: sha256.Sum256([]byte(adminKey))}, nil
}

// WithSpend returns a copy of k that also knows the spend key: without
// one, no request can spend.
func (k *Keys) WithSpend(spendKey string) (*Keys, error) {
	if len(spendKey) < 16 {
		return nil, errors.New("api: keys must be at least 16 characters")
	}
	h := sha256.Sum256([]byte(spendKey))
	if h == k.producer || h == k.admin {
		return nil, errors.New("api: the spend key must differ from the producer and admin keys")
	}
	out := *k
	out.spend, out.hasSpend = h, true
	return &out, nil
}

// SpendEnabled reports whether a spend key exists, i.e. whether the node
// spends at all.
func (k *Keys) SpendEnabled() bool { return k != nil && k.hasSpend }

// Role returns the role a presented key grants. Comparing fixed-size
// hashes keeps the comparison constant-time whatever the key's length.
func (k *Keys) Role(key string) Role {
	if key == "" || k == nil {
		return RoleNone
	}
	h := sha256.Sum256([]byte(key))
	isAdmin := subtle.ConstantTimeCompare(h[:], k.admin[:])
	isProducer := subtle.ConstantTimeCompare(h[:], k.producer[:])
	isSpend := subtle.ConstantTimeCompare(h[:], k.spend[:])
	switch {
	case isAdmin == 1:
		return RoleAdmin
	case isProducer == 1:
		return RoleProducer
	case isSpend == 1 && k.hasSpend:
		return RoleSpend
	}
	return RoleNone
}

// KeyFromRequest returns the key a request presents: the X-API-Key header
// (as the seed API uses) or an "Authorization: Bearer" token (as
// Prometheus scrapers send).
func KeyFromRequest(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// LoadOrCreateKey reads a key file, or creates one with a fresh random key
// and mode 0600. An existing file readable by others is refused: it holds
// a secret.
func LoadOrCreateKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("api: key file %s has mode %v; run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		key := strings.TrimSpace(string(b))
		if len(key) < 16 {
			return "", fmt.Errorf("api: key file %s holds fewer than 16 characters", path)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("api: reading key file: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	key := hex.EncodeToString(raw[:])
	if err := WriteSecretFile(path, []byte(key+"\n")); err != nil {
		return "", fmt.Errorf("api: creating key file: %w", err)
	}
	return key, nil
}

// WriteSecretFile creates path (mode 0600, its directory 0700 if missing)
// holding data, durably: it writes a temporary file in the same
// directory, syncs it, links it into place (failing if path exists, so
// two starts never hand out different keys) and syncs the directory, so
// that after a power cut the file is either whole or absent.
func WriteSecretFile(path string, data []byte) error {
	return atomicfile.Write(path, data, atomicfile.Options{Perm: 0o600, DirPerm: 0o700, NoReplace: true, SyncDir: syncDir})
}

// syncDir makes a directory's entries durable (a variable so a test can
// see it called).
var syncDir = atomicfile.SyncDir

// sessionLabel domain-separates dashboard session tokens from keys.
const sessionLabel = "l402d dashboard session v1"

// SessionToken returns the browser session token for a role: an HMAC of
// the role's key hash, so the cookie never holds the key itself and is
// invalidated when the key file changes.
func (k *Keys) SessionToken(r Role) string {
	var key [sha256.Size]byte
	switch r {
	case RoleProducer:
		key = k.producer
	case RoleAdmin:
		key = k.admin
	default:
		return ""
	}
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(sessionLabel + " " + r.String()))
	return hex.EncodeToString(m.Sum(nil))
}

// SessionRole returns the role a session token grants, in constant time.
// Only the producer and admin keys open sessions (the dashboard).
func (k *Keys) SessionRole(tok string) Role {
	admin := subtle.ConstantTimeCompare([]byte(tok), []byte(k.SessionToken(RoleAdmin)))
	producer := subtle.ConstantTimeCompare([]byte(tok), []byte(k.SessionToken(RoleProducer)))
	switch {
	case tok == "":
		return RoleNone
	case admin == 1:
		return RoleAdmin
	case producer == 1:
		return RoleProducer
	}
	return RoleNone
}
