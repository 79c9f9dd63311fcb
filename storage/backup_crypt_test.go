package storage

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402d/l402d/l402"
)

// TestBackupEncrypted: a store encrypted at rest writes backups that hold
// no root key in the clear and that restore only with the same key;
// without a key or with another one the restore fails with a clear error
// and writes nothing, and a cut or altered backup is refused.
func TestBackupEncrypted(t *testing.T) {
	badgerOnly(t)
	ctx := t.Context()
	key := bytes.Repeat([]byte{0x5a}, 32)
	opts := diskOptions(t)
	opts.EncryptionKey = key
	src := openStore(t, opts)
	keys := make(map[l402.TokenID][l402.RootKeySize]byte)
	var secrets [][]byte
	for range 50 {
		id := randomID(t)
		k, err := src.NewRootKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		secrets = append(secrets, bytes.Clone(k[:]))
	}
	var buf bytes.Buffer
	if err := src.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	for i, sec := range secrets {
		if bytes.Contains(raw, sec) {
			t.Fatalf("root key %d is in the backup in the clear", i)
		}
	}

	restoreWith := func(k []byte, data []byte) (Options, error) {
		o := DefaultOptions(filepath.Join(t.TempDir(), "dst"))
		o.Logger = quietLogger()
		o.EncryptionKey = k
		return o, Restore(ctx, o, bytes.NewReader(data))
	}
	if _, err := restoreWith(nil, raw); !errors.Is(err, ErrEncryptionKey) || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("restore without a key: %v, want ErrEncryptionKey saying it is encrypted", err)
	}
	if _, err := restoreWith(bytes.Repeat([]byte{0x11}, 32), raw); !errors.Is(err, ErrEncryptionKey) {
		t.Fatalf("restore with another key: %v, want ErrEncryptionKey", err)
	}
	for name, bad := range map[string][]byte{
		"truncated":      raw[:len(raw)-10],
		"cut at a chunk": raw[:len(raw)/2],
		"flipped bit":    func() []byte { b := bytes.Clone(raw); b[len(b)-40] ^= 1; return b }(),
	} {
		if _, err := restoreWith(key, bad); err == nil {
			t.Fatalf("%s backup restored", name)
		}
	}
	o, err := restoreWith(key, raw)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, o)
	for id, want := range keys {
		if got, err := s.RootKey(ctx, id); err != nil || got != want {
			t.Fatalf("root key after restore: %x %v", got, err)
		}
	}
}
