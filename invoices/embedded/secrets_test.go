package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func words(n int) []string {
	w := make([]string, n)
	for i := range w {
		w[i] = "abandon"
	}
	return w
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	path := filepath.Join(dir, "secret")
	for _, content := range []string{"first\n", "second\n"} {
		if err := writeFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Fatalf("content %q, want %q", b, content)
		}
		if m := mode(t, path); m != 0o600 {
			t.Fatalf("mode %v, want 0600", m)
		}
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %v, want 0700", m)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestWalletPassword(t *testing.T) {
	t.Run("generated once, then reused", func(t *testing.T) {
		dir := t.TempDir()
		pw, gen, err := walletPassword("", dir, true)
		if err != nil || !gen || len(pw) != 64 {
			t.Fatalf("first: %q %v %v", pw, gen, err)
		}
		if m := mode(t, filepath.Join(dir, PasswordFileName)); m != 0o600 {
			t.Fatalf("mode %v", m)
		}
		again, gen, err := walletPassword("", dir, true)
		if err != nil || gen || string(again) != string(pw) {
			t.Fatalf("second: %q %v %v", again, gen, err)
		}
		if unlock, _, err := walletPassword("", dir, false); err != nil || string(unlock) != string(pw) {
			t.Fatalf("for unlock: %q %v", unlock, err)
		}
	})
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) (userFile string)
		create  bool
		want    string
		wantErr string
	}{
		{"missing for unlock", func(*testing.T, string) string { return "" }, false, "", "give its password with --lnd.integrated.wallet-password-file"},
		{"ours, world-readable", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, PasswordFileName), "0123456789abcdef\n", 0o644)
			return ""
		}, false, "", "chmod 600"},
		{"user's, trimmed", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "pw")
			writeFile(t, p, "  correct horse battery\n", 0o400)
			return p
		}, true, "correct horse battery", ""},
		{"user's, world-readable is allowed", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "pw")
			writeFile(t, p, "correct horse battery", 0o444)
			return p
		}, false, "correct horse battery", ""},
		{"user's, too short", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "pw")
			writeFile(t, p, "short\n", 0o600)
			return p
		}, true, "", "shorter than 8"},
		{"user's, missing", func(_ *testing.T, dir string) string { return filepath.Join(dir, "nope") }, true, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			user := tt.setup(t, dir)
			pw, gen, err := walletPassword(user, dir, tt.create)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || gen || string(pw) != tt.want {
				t.Fatalf("got %q %v %v, want %q", pw, gen, err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, PasswordFileName)); user != "" && err == nil {
				t.Error("a password file was generated although the user gave one")
			}
		})
	}
}

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask
		t.Fatal(err)
	}
}

func TestSeedStore(t *testing.T) {
	dir := t.TempDir()
	s := NewSeedStore(dir)
	if _, err := s.Load(); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("Load of none: %v", err)
	}
	if _, err := s.Show(time.Now()); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("Show of none: %v", err)
	}
	mn := words(24)
	mn[23] = "art"
	created := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	if err := s.create(mn, "regtest", created); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, s.Path()); m != 0o600 {
		t.Fatalf("seed file mode %v", m)
	}
	if err := s.create(words(24), "regtest", created); err == nil {
		t.Fatal("an existing seed file was overwritten")
	}
	raw, _ := os.ReadFile(s.Path())
	if !strings.Contains(string(raw), "Anyone who reads it can take") {
		t.Errorf("the file carries no warning:\n%s", raw)
	}

	// Concurrent Show calls: exactly one gets the words.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []Seed
	var shown int
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed, err := s.Show(created.Add(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				got = append(got, seed)
			case errors.Is(err, ErrSeedShown):
				shown++
			default:
				t.Errorf("Show: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(got) != 1 || shown != 7 {
		t.Fatalf("%d shows succeeded and %d were refused, want 1 and 7", len(got), shown)
	}
	if !slices.Equal(got[0].Mnemonic, mn) || got[0].Network != "regtest" || !got[0].CreatedAt.Equal(created) {
		t.Fatalf("shown seed %+v", got[0])
	}
	// Shown is remembered on disk, and the words stay there.
	again, err := NewSeedStore(dir).Load()
	if err != nil || again.ShownAt == nil || !again.ShownAt.Equal(created.Add(time.Hour)) || !slices.Equal(again.Mnemonic, mn) {
		t.Fatalf("after show: %+v %v", again, err)
	}
	if _, err := NewSeedStore(dir).Show(time.Now()); !errors.Is(err, ErrSeedShown) {
		t.Fatalf("Show after a restart: %v", err)
	}
}

func TestSeedStoreRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, content string
		perm          os.FileMode
		wantErr       string
	}{
		{"world-readable", `{"mnemonic":[]}`, 0o644, "chmod 600"},
		{"not JSON", "abandon abandon", 0o600, "seed file"},
		{"too few words", `{"mnemonic":["abandon"]}`, 0o600, "holds 1 words"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, SeedFileName), tt.content, tt.perm)
			if _, err := NewSeedStore(dir).Load(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load: %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadMnemonic(t *testing.T) {
	w := words(24)
	w[23] = "art"
	var numbered strings.Builder
	for i, x := range w {
		numbered.WriteString(strings.Repeat(" ", i%2))
		numbered.WriteString(strings.ToUpper(x[:1]) + x[1:])
		numbered.WriteString("\n")
	}
	var listed strings.Builder
	for i, x := range w {
		listed.WriteString(string(rune('0'+(i+1)/10)) + string(rune('0'+(i+1)%10)) + ". " + x + "\n")
	}
	tests := []struct {
		name, content string
		wantErr       string
	}{
		{"one line", strings.Join(w, " ") + "\n", ""},
		{"one per line, mixed case", numbered.String(), ""},
		{"numbered like lncli prints it", listed.String(), ""},
		{"23 words", strings.Join(w[:23], " "), "holds 23 words"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "seed.txt")
			writeFile(t, p, tt.content, 0o600)
			got, err := readMnemonic(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, w) {
				t.Fatalf("got %q %v", got, err)
			}
		})
	}
}
