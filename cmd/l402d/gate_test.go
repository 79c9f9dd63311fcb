package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/plugin"
)

// gateConfigFrom runs the gate's flags (and --listen, --config) through
// urfave/cli the way l402d does and returns what applyGateFlags made.
func gateConfigFrom(t *testing.T, args ...string) (plugin.GateConfig, error) {
	t.Helper()
	flags := append([]cli.Flag{
		&cli.StringFlag{Name: "config"},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "listen", Value: plugin.DefaultListen}),
	}, gateFlags()...)
	var got plugin.GateConfig
	app := &cli.App{
		Flags: flags,
		Before: func(c *cli.Context) error {
			if c.String("config") == "" {
				return nil
			}
			return altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config"))(c)
		},
		Action: func(c *cli.Context) error {
			cfg := plugin.Config{Listen: c.String("listen")}
			if err := applyGateFlags(c, &cfg); err != nil {
				return err
			}
			got = cfg.Gate
			return nil
		},
	}
	err := app.Run(append([]string{"l402d"}, args...))
	return got, err
}

func TestGateFlags(t *testing.T) {
	g, err := gateConfigFrom(t)
	if err != nil || g.Listen != "" || g.MintRate != 2 || g.MintBurst != 10 || g.MaxPending != 1000 || g.TokenRate != 100 || g.ReloadInterval != plugin.DefaultGateReloadInterval {
		t.Fatalf("defaults: %+v %v", g, err)
	}
	g, err = gateConfigFrom(t, "--gate.listen", ":8403", "--gate.services", "s.yaml", "--gate.legacy-lsat", "--gate.mint-rate", "0.5",
		"--gate.mint-burst", "3", "--gate.max-pending", "0", "--gate.token-rate", "0", "--gate.token-burst", "7", "--gate.reload-interval", "0")
	if err != nil || g.Listen != ":8403" || g.ServicesFile != "s.yaml" || !g.LegacyLSAT || g.MintRate != 0.5 || g.MintBurst != 3 ||
		g.MaxPending != -1 || g.TokenRate != -1 || g.TokenBurst != 7 || g.ReloadInterval != -1 {
		t.Fatalf("flags: %+v %v", g, err)
	}

	t.Setenv("L402D_GATE_LISTEN", "127.0.0.1:9000")
	t.Setenv("L402D_GATE_SERVICES", "/etc/l402d/services.yaml")
	g, err = gateConfigFrom(t)
	if err != nil || g.Listen != "127.0.0.1:9000" || g.ServicesFile != "/etc/l402d/services.yaml" {
		t.Fatalf("env: %+v %v", g, err)
	}
}

func TestGateFlagsFromConfigFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "l402d.yaml")
	if err := os.WriteFile(file, []byte("gate.listen: 127.0.0.1:8403\ngate.services: /srv/services.yaml\ngate.reload-interval: 30s\ngate.token-rate: 5\ngate.mint-rate: 0.5\ngate.legacy-lsat: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := gateConfigFrom(t, "--config", file)
	if err != nil || g.Listen != "127.0.0.1:8403" || g.ServicesFile != "/srv/services.yaml" || g.ReloadInterval != 30*time.Second || g.TokenRate != 5 || g.MintRate != 0.5 || !g.LegacyLSAT || g.TokenBurst != 200 {
		t.Fatalf("config file: %+v %v", g, err)
	}
	// Keys left out keep their defaults; the command line beats the file.
	if err := os.WriteFile(file, []byte("gate.listen: 127.0.0.1:8403\ngate.services: s.yaml\ngate.token-rate: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err = gateConfigFrom(t, "--config", file, "--gate.listen", "127.0.0.1:9999")
	if err != nil || g.Listen != "127.0.0.1:9999" || g.MintRate != 2 || g.TokenRate != -1 {
		t.Fatalf("defaults under a config file: %+v %v", g, err)
	}
}

func TestGateFlagsRefused(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--gate.listen", ":8403"}, "--gate.services"},
		{[]string{"--gate.services", "s.yaml"}, "--gate.listen"},
		{[]string{"--gate.listen", "127.0.0.1:8402", "--gate.services", "s.yaml"}, "must differ from --listen"},
		{[]string{"--gate.listen", ":1", "--gate.services", "s", "--gate.mint-burst", "-1"}, "0 or more"},
	} {
		if _, err := gateConfigFrom(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}
