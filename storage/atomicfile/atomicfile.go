// Package atomicfile writes a file atomically and durably: the data goes
// to a temporary file in the same directory, which is synced, given its
// mode (0600 for secrets) and renamed (or linked) over the path, and then
// the directory is synced, so that after a crash or a power cut the path
// holds either the old file or the new one, whole.
//
// It is the one leaf of storage/ that regtest, invoices and plugin may
// import, and it imports only the standard library.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Options says how [Write] writes.
type Options struct {
	// Perm is the file's mode, e.g. 0600 for a secret or 0644.
	Perm fs.FileMode
	// DirPerm, if not zero, creates the file's directory (and its
	// parents) with this mode when it is missing.
	DirPerm fs.FileMode
	// NoReplace puts the file in place with a hard link instead of a
	// rename, so that Write fails (errors.Is(err, fs.ErrExist)) when
	// path exists and two writers never both succeed.
	NoReplace bool
	// SyncDir syncs the directory once the file is in place; nil means
	// [SyncDir]. A caller may wrap it (e.g. to see it called in a test).
	SyncDir func(dir string) error
}

// syncFile syncs a written temp file (a variable so a test can fail it).
var syncFile = (*os.File).Sync

// Write writes data to path as o says. If the new file cannot be written
// in full or put in place, the file at path is unchanged; no temporary
// file is left behind either way. An error from syncing the directory
// comes after the new file is in place.
func Write(path string, data []byte, o Options) (err error) {
	dir := filepath.Dir(path)
	if o.DirPerm != 0 {
		if err := os.MkdirAll(dir, o.DirPerm); err != nil {
			return err
		}
	}
	tmp, err := writeTemp(dir, "."+filepath.Base(path)+".tmp-*", data, o.Perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || o.NoReplace {
			_ = os.Remove(tmp)
		}
	}()
	if o.NoReplace {
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		if err := os.Remove(tmp); err != nil {
			return err
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if o.SyncDir == nil {
		return SyncDir(dir)
	}
	return o.SyncDir(dir)
}

// writeTemp writes data to a new temp file in dir, named by pattern (see
// os.CreateTemp), with mode perm, synced and closed, and returns its
// name. On failure it removes the file again.
func writeTemp(dir, pattern string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// SyncDir makes a directory's entries (a file just renamed or linked into
// it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
