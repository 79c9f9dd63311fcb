package storage

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402d/l402d/l402"
)

func TestEncryptionAtRest(t *testing.T) {
	badgerOnly(t)
	key := bytes.Repeat([]byte{0x42}, 32)
	tests := []struct {
		name      string
		key       []byte
		wantFound bool // root keys visible in the files
	}{
		{"plain (control)", nil, true},
		{"aes-128", key[:16], false},
		{"aes-256", key, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := diskOptions(t)
			opts.EncryptionKey = tt.key
			s := openStore(t, opts)
			var secrets [][]byte
			ids := make(map[l402.TokenID][l402.RootKeySize]byte)
			for range 20 {
				id := randomID(t)
				k, err := s.NewRootKey(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				ids[id] = k
				secrets = append(secrets, bytes.Clone(k[:]))
			}
			// Scan twice: while open the entries sit in the write-ahead
			// log; after Close they are flushed into (compressed) tables.
			openFound := countInFiles(t, opts.Dir, secrets)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			closedFound := countInFiles(t, opts.Dir, secrets)
			if tt.wantFound && openFound != len(secrets) {
				t.Fatalf("control: only %d of %d root keys found in plaintext; the scan is broken",
					openFound, len(secrets))
			}
			if !tt.wantFound && openFound+closedFound != 0 {
				t.Fatalf("root keys in the files in plaintext: %d while open, %d after close",
					openFound, closedFound)
			}
			if tt.key == nil {
				o := opts
				o.EncryptionKey = key
				s, err := Open(t.Context(), o)
				if err == nil {
					s.Close()
					t.Fatal("opening a plain database with a key succeeded")
				}
				if !errors.Is(err, ErrEncryptionKey) {
					t.Fatalf("opening a plain database with a key: %v, want ErrEncryptionKey", err)
				}
				return
			}

			for _, bad := range []struct {
				name string
				key  []byte
			}{{"no key", nil}, {"wrong key", bytes.Repeat([]byte{1}, len(tt.key))}} {
				o := opts
				o.EncryptionKey = bad.key
				s, err := Open(t.Context(), o)
				if err == nil {
					s.Close()
					t.Fatalf("%s: Open succeeded", bad.name)
				}
				if !errors.Is(err, ErrEncryptionKey) || !strings.Contains(err.Error(), "encrypted") {
					t.Fatalf("%s: Open: %v, want a clear ErrEncryptionKey", bad.name, err)
				}
				t.Logf("%s: %v", bad.name, err)
			}
			s = openStore(t, opts)
			for id, want := range ids {
				if got, err := s.RootKey(t.Context(), id); err != nil || got != want {
					t.Fatalf("RootKey after reopening with the key = %x, %v; want %x", got, err, want)
				}
			}
		})
	}
}

// countInFiles reports how many of needles occur in the files under dir.
func countInFiles(t *testing.T, dir string, needles [][]byte) int {
	t.Helper()
	var files [][]byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files = append(files, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, needle := range needles {
		for _, f := range files {
			if bytes.Contains(f, needle) {
				n++
				break
			}
		}
	}
	return n
}
