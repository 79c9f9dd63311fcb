package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402d/l402d/l402"
)

// A kill -9 between Badger creating a memtable log and sizing it leaves
// an empty NNNNN.mem; Badger alone then refuses to open the store ever
// again ("while opening fid: N err: Create a new file"). The crash
// campaign hit it with a kill during an l402d restart. Open must remove
// such a file and keep every committed write.
func TestOpenAfterACrashMidMemtableCreate(t *testing.T) {
	badgerOnly(t)
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	opts.Logger = quietLogger()
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var id l402.TokenID
	id[0] = 7
	if err := s.Revoke(t.Context(), id, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The file the killed process left: the next memtable's log, empty.
	mems, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
	next := 1
	for _, m := range mems {
		var n int
		if _, err := fmt.Sscanf(filepath.Base(m), "%05d.mem", &n); err == nil && n >= next {
			next = n + 1
		}
	}
	empty := filepath.Join(dir, fmt.Sprintf("%05d.mem", next))
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err = Open(t.Context(), opts)
	if err != nil {
		if strings.Contains(err.Error(), "Create a new file") {
			t.Fatalf("the store does not open after a crash mid memtable create: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if revoked, _ := s.IsRevoked(t.Context(), id); !revoked {
		t.Fatal("a committed revocation was lost")
	}
	if fi, err := os.Stat(empty); err == nil && fi.Size() == 0 {
		t.Fatal("the empty memtable log is still there")
	}
}
