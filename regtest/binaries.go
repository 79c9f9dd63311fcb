package regtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Module paths of the regtest programs. Their versions come from go.mod.
const (
	lndModule  = "github.com/lightningnetwork/lnd"
	btcdModule = "github.com/btcsuite/btcd"
)

// LndBuildTags are the build tags lnd is built with: the sub-RPC servers
// l402d and its tests use.
const LndBuildTags = "signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"

// buildPackages are built into every binary directory, in the order of
// the names in binaryNames.
var buildPackages = []string{
	btcdModule,
	btcdModule + "/cmd/btcctl",
	lndModule + "/cmd/lnd",
	lndModule + "/cmd/lncli",
}

var binaryNames = []string{"btcd", "btcctl", "lnd", "lncli"}

// Binaries is a directory holding static btcd, btcctl, lnd and lncli
// binaries for one platform, and the module versions they were built from.
type Binaries struct {
	Dir                      string
	Btcd, Btcctl, Lnd, Lncli string
	LndVersion, BtcdVersion  string
	GOOS, GOARCH             string
}

// BuildOptions says where and for which platform to build the binaries.
type BuildOptions struct {
	// ModuleDir is the root of the l402d module (holding go.mod).
	ModuleDir string
	// GoCmd is the go command; default "go".
	GoCmd string
	// GOOS and GOARCH default to the host's.
	GOOS, GOARCH string
	// Dir, if set, is a directory of prebuilt binaries to use instead of
	// the cache (L402D_REGTEST_BIN_DIR).
	Dir    string
	Logger *slog.Logger
}

// EnsureBinaries returns the regtest binaries for o's platform, building
// them with CGO_ENABLED=0 from the versions pinned in go.mod when
// .cache/bin/<key>/ does not hold them yet. The key names the lnd and btcd
// versions and the platform, so a version bump builds afresh and a second
// run builds nothing. Concurrent callers are safe: each builds into a
// private directory that is renamed into place.
func EnsureBinaries(ctx context.Context, o BuildOptions) (Binaries, error) {
	if o.GoCmd == "" {
		o.GoCmd = "go"
	}
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lndVer, btcdVer, err := ModuleVersions(ctx, o.GoCmd, o.ModuleDir)
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{LndVersion: lndVer, BtcdVersion: btcdVer, GOOS: o.GOOS, GOARCH: o.GOARCH}
	if o.Dir != "" {
		b.setDir(o.Dir)
		if err := b.check(); err != nil {
			return Binaries{}, fmt.Errorf("prebuilt binaries (L402D_REGTEST_BIN_DIR): %w", err)
		}
		return b, nil
	}
	dir := filepath.Join(o.ModuleDir, ".cache", "bin", binaryCacheKey(lndVer, btcdVer, o.GOOS, o.GOARCH))
	b.setDir(dir)
	if b.check() == nil {
		log.Debug("regtest binaries cached", "dir", dir)
		return b, nil
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Binaries{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return Binaries{}, err
	}
	defer os.RemoveAll(tmp)

	log.Info("building regtest binaries (lnd takes minutes on a cold cache)",
		"lnd", lndVer, "btcd", btcdVer, "goos", o.GOOS, "goarch", o.GOARCH, "dir", dir)
	start := time.Now()
	args := append([]string{"build", "-trimpath", "-tags", LndBuildTags, "-o", tmp + string(filepath.Separator)}, buildPackages...)
	cmd := exec.CommandContext(ctx, o.GoCmd, args...)
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+o.GOOS, "GOARCH="+o.GOARCH)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stopProgress := progress(log, "still building lnd, lncli, btcd and btcctl (once per version; later runs reuse "+dir+")", start)
	err = cmd.Run()
	stopProgress()
	if err != nil {
		return Binaries{}, fmt.Errorf("building regtest binaries (%s %s): %w\n%s", o.GoCmd, strings.Join(args, " "), err, out.Bytes())
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run may have finished the same build first.
		if b.check() != nil {
			return Binaries{}, fmt.Errorf("moving built binaries into %s: %w", dir, err)
		}
	}
	log.Info("built regtest binaries", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return b, b.check()
}

func (b *Binaries) setDir(dir string) {
	b.Dir = dir
	b.Btcd = filepath.Join(dir, "btcd")
	b.Btcctl = filepath.Join(dir, "btcctl")
	b.Lnd = filepath.Join(dir, "lnd")
	b.Lncli = filepath.Join(dir, "lncli")
}

// check reports the first missing binary.
func (b Binaries) check() error {
	for _, p := range []string{b.Btcd, b.Btcctl, b.Lnd, b.Lncli} {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&0o111 == 0 || !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not an executable file", p)
		}
	}
	return nil
}

// binaryCacheKey names a cache directory for one set of versions and one
// platform. Module versions hold only characters that are safe in paths.
func binaryCacheKey(lndVersion, btcdVersion, goos, goarch string) string {
	return fmt.Sprintf("lnd-%s_btcd-%s_%s-%s", lndVersion, btcdVersion, goos, goarch)
}

// ModuleVersions reads the lnd and btcd versions pinned in moduleDir's
// go.mod with `go list -m`.
func ModuleVersions(ctx context.Context, goCmd, moduleDir string) (lnd, btcd string, err error) {
	cmd := exec.CommandContext(ctx, goCmd, "list", "-m", "-f", "{{.Path}} {{.Version}}", lndModule, btcdModule)
	cmd.Dir = moduleDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("reading lnd and btcd versions with go list -m in %s: %w: %s", moduleDir, err, stderr.Bytes())
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, ver, _ := strings.Cut(line, " ")
		switch path {
		case lndModule:
			lnd = ver
		case btcdModule:
			btcd = ver
		}
	}
	if lnd == "" || btcd == "" {
		return "", "", fmt.Errorf("go list -m in %s gave no version for %s or %s: %q", moduleDir, lndModule, btcdModule, out)
	}
	return lnd, btcd, nil
}

// FindModuleDir returns the root of the Go module containing dir (the
// current directory if dir is empty), using `go env GOMOD`.
func FindModuleDir(ctx context.Context, goCmd, dir string) (string, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the l402d module with go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the l402d checkout or set Options.ModuleDir")
	}
	return filepath.Dir(gomod), nil
}

// copyFile copies src to dst with mode, linking when possible.
func copyFile(src, dst string, mode fs.FileMode) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// progress logs what every 20 s until the returned stop is called, so a
// long build does not look like a hang.
func progress(log *slog.Logger, what string, start time.Time) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				log.Info(what, "elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done) }
}
