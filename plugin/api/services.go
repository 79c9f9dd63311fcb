package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
)

// ServicesFile is the gate's services file as the admin API edits it, for
// node runners without a shell (Umbrel, StartOS): GET reads it, PUT checks
// a new one, writes it and has the gate serve it at once.
type ServicesFile struct {
	// Path is the file the gate reads.
	Path string
	// MaxBytes caps a new file's size.
	MaxBytes int64
	// Check validates content without serving it. An error that unwraps
	// to several (the gate's ConfigErrors) is listed in "errors".
	Check func(data []byte) error
	// Reload has the gate serve the file on disk now.
	Reload func(ctx context.Context) (changed bool, err error)
}

// ServicesFileHandlers returns the GET and PUT handlers of
// /api/admin/services. Mount them behind the admin key.
func ServicesFileHandlers(f ServicesFile) (get, put http.Handler) {
	var mu sync.Mutex // one PUT at a time: write, reload, maybe restore
	get = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(f.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			WriteError(w, http.StatusInternalServerError, ErrorBody{Error: "reading the services file: " + err.Error(), Code: "services_unreadable",
				Fix: "check that l402d may read " + f.Path})
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Services-File", f.Path)
		w.Write(data) // empty while no file exists yet
	})
	put = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.MaxBytes))
		if err != nil {
			WriteError(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: "the services file could not be read: " + err.Error(), Code: "too_large",
				Fix: fmt.Sprintf("send the YAML file as the body, at most %d bytes", f.MaxBytes)})
			return
		}
		if err := f.Check(data); err != nil {
			refused(w, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		old, oldErr := os.ReadFile(f.Path)
		if err := replaceFile(f.Path, data); err != nil {
			WriteError(w, http.StatusInternalServerError, ErrorBody{Error: "writing the services file: " + err.Error(), Code: "services_unwritable",
				Fix: "check that l402d may write " + filepath.Dir(f.Path)})
			return
		}
		changed, err := f.Reload(r.Context())
		if err != nil {
			// Checked but refused by the gate (an upstream it cannot
			// use): put the file that runs back.
			if oldErr == nil {
				_ = replaceFile(f.Path, old)
			} else {
				_ = os.Remove(f.Path)
			}
			refused(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, struct {
			Changed bool   `json:"changed"`
			File    string `json:"file"`
			Bytes   int    `json:"bytes"`
		}{changed, f.Path, len(data)})
	})
	return get, put
}

// refused answers 422 with every problem of a refused file.
func refused(w http.ResponseWriter, err error) {
	var list any
	if m, ok := err.(interface{ Unwrap() []error }); ok && len(m.Unwrap()) > 0 {
		list = err
	}
	WriteJSON(w, http.StatusUnprocessableEntity, struct {
		ErrorBody
		Errors any `json:"errors,omitempty"`
	}{ErrorBody{Error: "the services file was refused; the services running keep running: " + err.Error(), Code: "invalid_services",
		Fix: "correct the problems listed (each with its line) and send the whole file again"}, list})
}

// replaceFile writes data to path (0600) and renames it into place, so
// the gate never reads half a file: WriteSecretFile makes the new file
// whole and durable beside it first. Callers hold the handler's lock.
func replaceFile(path string, data []byte) error {
	next := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".next")
	_ = os.Remove(next) // left by a crash between the two steps
	if err := WriteSecretFile(next, data); err != nil {
		return err
	}
	return os.Rename(next, path)
}
