package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin"
)

// parse runs the app's flag handling with args and env and returns the
// Config it would start with.
func parse(t *testing.T, env map[string]string, args ...string) (plugin.Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	app := newApp()
	var got plugin.Config
	var cfgErr error
	app.Action = func(c *cli.Context) error {
		got, cfgErr = configFrom(c, nil)
		return nil
	}
	if err := app.Run(append([]string{"l402d"}, args...)); err != nil {
		return got, err
	}
	return got, cfgErr
}

func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	dotted := filepath.Join(dir, "dotted.yaml")
	nested := filepath.Join(dir, "nested.yaml")
	os.WriteFile(dotted, []byte("network: regtest\nlnd.host: alice:10009\ntoken-validity: 1h\nmax-price-sats: 500\n"), 0o600)
	os.WriteFile(nested, []byte("network: signet\nlnd:\n  host: bob:10009\n  macaroonpath: /m\n"), 0o600)

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(plugin.Config) bool
	}{
		{"defaults", nil, nil, func(c plugin.Config) bool {
			return c.LND.Network == "mainnet" && c.LND.Address == "localhost:10009" && c.Listen == plugin.DefaultListen &&
				strings.HasSuffix(c.LND.MacaroonDir, "data/chain/bitcoin/mainnet") && c.TokenValidity == 24*time.Hour
		}},
		{"flags", nil, []string{"--network", "regtest", "--lnd.host", "h:1", "--trusted-proxy", "10.0.0.0/8"}, func(c plugin.Config) bool {
			return c.LND.Network == "regtest" && c.LND.Address == "h:1" && len(c.TrustedProxies) == 1
		}},
		{"env", map[string]string{"L402D_NETWORK": "testnet", "L402D_LND_MACAROONPATH": "/x"}, nil, func(c plugin.Config) bool {
			return c.LND.Network == "testnet" && c.LND.MacaroonPath == "/x" && c.LND.MacaroonDir == ""
		}},
		{"config file, dotted keys", nil, []string{"--config", dotted}, func(c plugin.Config) bool {
			return c.LND.Network == "regtest" && c.LND.Address == "alice:10009" && c.TokenValidity == time.Hour && c.MaxPriceSats == 500
		}},
		{"config file, nested keys", nil, []string{"--config", nested}, func(c plugin.Config) bool {
			return c.LND.Network == "signet" && c.LND.Address == "bob:10009" && c.LND.MacaroonPath == "/m"
		}},
		{"flag beats config file", nil, []string{"--config", dotted, "--lnd.host", "flag:1"}, func(c plugin.Config) bool {
			return c.LND.Address == "flag:1" && c.LND.Network == "regtest"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, lf := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := newLogger(lf[0], lf[1]); err == nil {
			t.Errorf("logger %v accepted", lf)
		}
	}
	for name, args := range map[string][]string{
		"bad network":    {"--network", "moon"},
		"two macaroons":  {"--lnd.macaroonpath", "/a", "--lnd.macaroondir", "/b"},
		"bad proxy":      {"--trusted-proxy", "not-a-cidr"},
		"missing config": {"--config", "/nonexistent.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parse(t, nil, args...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
