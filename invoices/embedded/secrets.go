package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/l402d/l402d/storage/atomicfile"
)

// Errors of the seed file.
var (
	// ErrNoSeed: no seed file (remote mode, a wallet restored from the
	// user's own seed, or the file was removed).
	ErrNoSeed = errors.New("no stored wallet seed")
	// ErrSeedShown: the seed was already shown once.
	ErrSeedShown = errors.New("the wallet seed was already shown")
)

// seedWarning is written into the seed file itself.
const seedWarning = "This is the seed of l402d's embedded LND wallet, unencrypted. Anyone who reads it can take " +
	"the node's on-chain funds. Write the words down, keep them offline, and delete this file once you have."

// minPasswordLen is LND's minimum wallet password length.
const minPasswordLen = 8

// Seed is the stored wallet seed.
type Seed struct {
	Warning string `json:"warning"`
	// Mnemonic is the 24-word aezeed mnemonic (no passphrase).
	Mnemonic  []string   `json:"mnemonic"`
	Network   string     `json:"network"`
	CreatedAt time.Time  `json:"createdAt"`
	ShownAt   *time.Time `json:"shownAt,omitempty"`
}

// SeedStore is the seed file in a wallet dir. Its methods are safe for
// concurrent use within the process that owns the dir.
type SeedStore struct {
	path string
	mu   sync.Mutex
}

// NewSeedStore returns the seed file of walletDir.
func NewSeedStore(walletDir string) *SeedStore {
	return &SeedStore{path: filepath.Join(walletDir, SeedFileName)}
}

// Path is the seed file's path.
func (s *SeedStore) Path() string { return s.path }

// Load reads the seed; ErrNoSeed if there is none.
func (s *SeedStore) Load() (Seed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load()
}

func (s *SeedStore) load() (Seed, error) {
	b, err := readSecret(s.path, true)
	if errors.Is(err, fs.ErrNotExist) {
		return Seed{}, ErrNoSeed
	}
	if err != nil {
		return Seed{}, err
	}
	var seed Seed
	if err := json.Unmarshal(b, &seed); err != nil {
		return Seed{}, fmt.Errorf("embedded lnd: seed file %s: %w", s.path, err)
	}
	if len(seed.Mnemonic) != 24 {
		return Seed{}, fmt.Errorf("embedded lnd: seed file %s holds %d words, want 24", s.path, len(seed.Mnemonic))
	}
	return seed, nil
}

// create writes a new seed file (0600), replacing none: a seed file that
// exists is never overwritten.
func (s *SeedStore) create(mnemonic []string, network string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Lstat(s.path); err == nil {
		return fmt.Errorf("embedded lnd: seed file %s exists; refusing to overwrite it", s.path)
	}
	return s.write(Seed{Warning: seedWarning, Mnemonic: mnemonic, Network: network, CreatedAt: now.UTC()})
}

// Show returns the seed and marks it shown; a second call fails with
// ErrSeedShown. The file stays on disk: it is the only backup until the
// user has written the words down.
func (s *SeedStore) Show(now time.Time) (Seed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seed, err := s.load()
	if err != nil {
		return Seed{}, err
	}
	if seed.ShownAt != nil {
		return Seed{}, fmt.Errorf("%w at %s (it is still in %s)", ErrSeedShown, seed.ShownAt.Format(time.RFC3339), s.path)
	}
	t := now.UTC()
	seed.ShownAt = &t
	if err := s.write(seed); err != nil {
		return Seed{}, err
	}
	return seed, nil
}

func (s *SeedStore) write(seed Seed) error {
	b, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, append(b, '\n'))
}

// walletPassword returns the wallet password: the user's file if set,
// else the generated file in walletDir, created if create is true and it
// does not exist. generated reports that it was created now.
func walletPassword(userFile, walletDir string, create bool) (pw []byte, generated bool, err error) {
	if userFile != "" {
		b, err := readSecret(userFile, false)
		if err != nil {
			return nil, false, fmt.Errorf("embedded lnd: wallet password file: %w", err)
		}
		pw = []byte(strings.TrimSpace(string(b)))
		if len(pw) < minPasswordLen {
			return nil, false, fmt.Errorf("embedded lnd: wallet password in %s is shorter than %d characters", userFile, minPasswordLen)
		}
		return pw, false, nil
	}
	path := filepath.Join(walletDir, PasswordFileName)
	b, err := readSecret(path, true)
	switch {
	case err == nil:
		pw = []byte(strings.TrimSpace(string(b)))
		if len(pw) < minPasswordLen {
			return nil, false, fmt.Errorf("embedded lnd: wallet password in %s is shorter than %d characters", path, minPasswordLen)
		}
		return pw, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	case !create:
		return nil, false, fmt.Errorf("embedded lnd: the wallet exists but %s does not: give its password with --lnd.integrated.wallet-password-file", path)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, err
	}
	pw = []byte(hex.EncodeToString(raw[:]))
	if err := writeFileAtomic(path, append(pw, '\n')); err != nil {
		return nil, false, err
	}
	return pw, true, nil
}

// readMnemonic reads a user's seed file: 24 words separated by spaces or
// newlines, optionally numbered ("1. abandon").
func readMnemonic(path string) ([]string, error) {
	b, err := readSecret(path, false)
	if err != nil {
		return nil, fmt.Errorf("embedded lnd: seed file: %w", err)
	}
	var words []string
	for _, f := range strings.Fields(string(b)) {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" || strings.TrimRight(f, "0123456789.):") == "" {
			continue // a number such as "1." or "12)"
		}
		words = append(words, f)
	}
	if len(words) != 24 {
		return nil, fmt.Errorf("embedded lnd: seed file %s holds %d words, want a 24-word aezeed mnemonic", path, len(words))
	}
	return words, nil
}

// readSecret reads a secret file. Files l402d created (ours) must not be
// readable by group or others: that is refused, as for the API keys. A
// user's file is only warned about by the caller's log, since secrets
// mounted by container runtimes are often 0444.
func readSecret(path string, ours bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if ours && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("embedded lnd: %s has mode %v; it holds a secret: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

// groupReadable reports whether a file's mode lets group or others read
// it.
func groupReadable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o077 != 0
}

// writeFileAtomic writes data to path with mode 0600 (its directory 0700
// if missing) so that a crash leaves either the old file or the new one,
// whole.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, atomicfile.Options{Perm: 0o600, DirPerm: 0o700})
}
