package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWrite(t *testing.T) {
	errSync := errors.New("sync failed")
	tests := []struct {
		name     string
		old      string // content of path before Write; "" means no file
		subdir   bool   // path lies in a directory that does not exist yet
		opts     Options
		failSync bool // the temp file's fsync fails
		wantErr  error
		want     string // content after Write
		wantPerm fs.FileMode
	}{
		{name: "new secret", opts: Options{Perm: 0o600}, want: "new", wantPerm: 0o600},
		{name: "new readable", opts: Options{Perm: 0o644}, want: "new", wantPerm: 0o644},
		{name: "replaces existing", old: "old", opts: Options{Perm: 0o600}, want: "new", wantPerm: 0o600},
		{name: "creates dir", subdir: true, opts: Options{Perm: 0o600, DirPerm: 0o700}, want: "new", wantPerm: 0o600},
		{name: "no replace, new", opts: Options{Perm: 0o600, NoReplace: true}, want: "new", wantPerm: 0o600},
		{name: "no replace keeps existing", old: "old", opts: Options{Perm: 0o600, NoReplace: true}, wantErr: fs.ErrExist, want: "old", wantPerm: 0o644},
		{name: "failed fsync keeps old file", old: "old", opts: Options{Perm: 0o600}, failSync: true, wantErr: errSync, want: "old", wantPerm: 0o644},
		{name: "failed fsync, no file", opts: Options{Perm: 0o600}, failSync: true, wantErr: errSync},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.subdir {
				dir = filepath.Join(dir, "sub")
			}
			path := filepath.Join(dir, "file")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.failSync {
				syncFile = func(*os.File) error { return errSync }
				t.Cleanup(func() { syncFile = (*os.File).Sync })
			}
			var synced []string
			tc.opts.SyncDir = func(d string) error { synced = append(synced, d); return SyncDir(d) }

			err := Write(path, []byte("new"), tc.opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && !slices.Equal(synced, []string{dir}) {
				t.Errorf("dir synced %v, want [%s]", synced, dir)
			}
			if tc.wantErr != nil && len(synced) != 0 {
				t.Errorf("dir synced after a failure: %v", synced)
			}
			got, rerr := os.ReadFile(path)
			switch {
			case tc.want == "" && !errors.Is(rerr, fs.ErrNotExist):
				t.Errorf("file exists after a failed write: %q, %v", got, rerr)
			case tc.want != "" && string(got) != tc.want:
				t.Errorf("content %q (%v), want %q", got, rerr, tc.want)
			}
			if tc.want != "" {
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tc.wantPerm {
					t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, tc.wantPerm)
				}
			}
			if tc.opts.DirPerm != 0 {
				if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != tc.opts.DirPerm {
					t.Errorf("dir mode %v (%v), want %v", fi.Mode().Perm(), err, tc.opts.DirPerm)
				}
			}
			ents, _ := os.ReadDir(dir)
			if n := len(ents); (tc.want != "" && n != 1) || (tc.want == "" && n != 0) {
				t.Errorf("left in the dir: %v", ents)
			}
		})
	}
}

// SyncDir syncs an existing directory and reports a missing one; Write
// without a SyncDir option uses it.
func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	if err := Write(filepath.Join(dir, "f"), []byte("x"), Options{Perm: 0o600}); err != nil {
		t.Fatal(err)
	}
}
