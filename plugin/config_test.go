package plugin

import (
	"strings"
	"testing"
)

func TestCheckBackend(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for no error, else a part of it
	}{
		{"badger by default", Config{}, ""},
		{"badger with an allowance", Config{DBDebitAllowanceMsat: 5000}, ""},
		{"postgres", Config{DBBackend: BackendPostgres, DBPostgresDSN: "postgres://db/l402d"}, ""},
		{"dsn without postgres", Config{DBPostgresDSN: "postgres://db/l402d"}, "--db.backend=postgres"},
		{"postgres without dsn", Config{DBBackend: BackendPostgres}, "needs --db.postgres.dsn"},
		{"postgres with a key file", Config{DBBackend: BackendPostgres, DBPostgresDSN: "postgres://db/l402d", DBEncryptionKeyFile: "k"}, "--db.keyfile"},
		{"postgres with an allowance", Config{DBBackend: BackendPostgres, DBPostgresDSN: "postgres://db/l402d", DBDebitAllowanceMsat: 1}, "--db.debit-allowance-msat"},
		{"negative allowance", Config{DBDebitAllowanceMsat: -1}, "--db.debit-allowance-msat -1"},
		{"unknown backend", Config{DBBackend: "redis"}, `--db.backend "redis"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.checkBackend()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("checkBackend = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("checkBackend = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
