// Command l402d is the L402 node plugin daemon: it runs beside the node
// runner's LND and serves the producer API, the gate, MCP, /healthz and
// /metrics. Every flag is also an L402D_* environment variable and a key
// of the YAML file given with --config. It holds no logic: flags become a
// plugin.Config.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"

	// Public CA roots compiled in, used only where the system has none
	// (the FROM scratch image): without them every https:// L402 service
	// fails certificate verification there.
	_ "golang.org/x/crypto/x509roots/fallback"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "l402d:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	home, _ := os.UserHomeDir()
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: []string{"L402D_CONFIG"}, Usage: "YAML `FILE` whose keys are these flags' names (e.g. lnd.host: host:10009)"},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "datadir", EnvVars: []string{"L402D_DATADIR"}, Value: filepath.Join(home, ".l402d"), Usage: "directory for the store and the key files"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "listen", EnvVars: []string{"L402D_LISTEN"}, Value: plugin.DefaultListen, Usage: "API/admin listen address (REST, MCP, /healthz, /metrics)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "network", EnvVars: []string{"L402D_NETWORK"}, Value: "mainnet", Usage: "bitcoin network of the LND node: mainnet, testnet, testnet4, signet, regtest, simnet"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd.host", EnvVars: []string{"L402D_LND_HOST"}, Value: "localhost:10009", Usage: "LND gRPC host:port"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd.dir", EnvVars: []string{"L402D_LND_DIR"}, Value: filepath.Join(home, ".lnd"), Usage: "LND's directory, for the default TLS cert and macaroon dir"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd.tlscertpath", EnvVars: []string{"L402D_LND_TLSCERTPATH"}, Usage: "LND's tls.cert (default <lnd.dir>/tls.cert)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd.macaroonpath", EnvVars: []string{"L402D_LND_MACAROONPATH"}, Usage: "one macaroon for every call, e.g. a baked least-privilege one (see README)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd.macaroondir", EnvVars: []string{"L402D_LND_MACAROONDIR"}, Usage: "LND's macaroon dir (default <lnd.dir>/data/chain/bitcoin/<network>)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "lnd.rpctimeout", EnvVars: []string{"L402D_LND_RPCTIMEOUT"}, Value: 30 * time.Second, Usage: "timeout of each LND call"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "max-price-sats", EnvVars: []string{"L402D_MAX_PRICE_SATS"}, Value: producer.DefaultMaxPriceSats, Usage: "highest price one challenge may ask"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "invoice-expiry", EnvVars: []string{"L402D_INVOICE_EXPIRY"}, Value: producer.DefaultInvoiceExpiry, Usage: "how long a challenge's invoice can be paid"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "unpaid-retention", EnvVars: []string{"L402D_UNPAID_RETENTION"}, Value: invoices.DefaultUnpaidRetention, Usage: "how long a challenge whose invoice expired unpaid is kept before it is deleted with its root key (at least 10m)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "token-validity", EnvVars: []string{"L402D_TOKEN_VALIDITY"}, Value: producer.DefaultTokenValidity, Usage: "how long a token stays valid after issue; negative: forever"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "idempotency-window", EnvVars: []string{"L402D_IDEMPOTENCY_WINDOW"}, Value: producer.DefaultIdempotencyWindow, Usage: "same client+resource+price within this returns the same challenge"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "skip-caveat", EnvVars: []string{"L402D_SKIP_CAVEAT"}, Usage: "caveat condition to accept without checking (repeatable)"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "trusted-proxy", EnvVars: []string{"L402D_TRUSTED_PROXY"}, Usage: "CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "db.keyfile", EnvVars: []string{"L402D_DB_KEYFILE"}, Usage: "encrypt the store at rest with the hex key in this file (created 0600 if missing)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "db.nosync", EnvVars: []string{"L402D_DB_NOSYNC"}, Usage: "do not fsync every write (faster; a power cut may lose recent writes)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "db.min-free-mb", EnvVars: []string{"L402D_DB_MIN_FREE_MB"}, Value: storage.DefaultMinFreeBytes >> 20, Usage: "refuse writes (HTTP 507) while the data dir's disk has less free space than this; 0 turns the guard off"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "db.backend", EnvVars: []string{"L402D_DB_BACKEND"}, Value: plugin.BackendBadger, Usage: "badger (embedded, one process) or postgres (shared by several l402d replicas; needs --db.postgres.dsn)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "db.debit-allowance-msat", EnvVars: []string{"L402D_DB_DEBIT_ALLOWANCE_MSAT"}, Usage: "answer requests on a prepaid balance or session before their debit is on disk, up to this many msat per balance (a crash loses at most that much, to you); 0: every debit on disk first. Badger only"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "db.postgres.dsn", EnvVars: []string{"L402D_DB_POSTGRES_DSN"}, Usage: "Postgres connection string for --db.backend=postgres, e.g. postgres://l402d:secret@db:5432/l402d"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "metrics.public", EnvVars: []string{"L402D_METRICS_PUBLIC"}, Usage: "serve /metrics without a key, for a Prometheus scraper that should hold none (off: it needs api.key or admin.key)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log.level", EnvVars: []string{"L402D_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log.format", EnvVars: []string{"L402D_LOG_FORMAT"}, Value: "text", Usage: "text or json"}),
	}
	flags = append(flags, gateFlags()...)
	flags = append(flags, consumerFlags()...)
	flags = append(flags, integratedFlags()...)
	flags = append(flags, mcpFlags()...)
	flags = append(flags, keyEnvFlags()...)
	return &cli.App{
		Name:    "l402d",
		Usage:   "self-hosted L402 node plugin: earn and spend over Lightning with your own LND",
		Version: version,
		Flags:   flags,
		Before: func(c *cli.Context) error {
			if c.String("config") == "" {
				return nil
			}
			return altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config"))(c)
		},
		Action: run,
		Commands: []*cli.Command{healthCommand(), {
			Name:  "healthcheck",
			Usage: "exit 0 if the l402d at --listen answers /healthz (for container health checks; the image has no curl)",
			Action: func(c *cli.Context) error {
				return healthcheck(c.Context, c.String("listen"))
			},
		}, {
			Name:  "migrate",
			Usage: "copy the whole store between backends (Badger data dir <-> Postgres); stop every l402d using the source first",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Required: true, Usage: "source: a data `DIR` (its Badger store; --db.keyfile if encrypted) or a postgres:// DSN"},
				&cli.StringFlag{Name: "to", Required: true, Usage: "destination, empty: a data `DIR` or a postgres:// DSN"},
			},
			Action: func(c *cli.Context) error {
				n, err := plugin.Migrate(c.Context, c.String("from"), c.String("to"), c.String("db.keyfile"), nil)
				if err != nil {
					return err
				}
				fmt.Printf("copied %d entries; start l402d on the destination (api.key and admin.key stay in the data dirs: copy them, or use --api-key-env)\n", n)
				return nil
			},
		}, {
			Name:  "restore",
			Usage: "restore a backup (from GET /api/admin/backup or l402cli backup) into an empty --datadir",
			Flags: []cli.Flag{&cli.StringFlag{Name: "from", Required: true, Usage: "backup `FILE` (- for standard input)"}},
			Action: func(c *cli.Context) error {
				in := os.Stdin
				if f := c.String("from"); f != "-" {
					var err error
					if in, err = os.Open(f); err != nil {
						return err
					}
					defer in.Close()
				}
				dir := c.String("datadir")
				if err := plugin.Restore(c.Context, dir, c.String("db.keyfile"), in); err != nil {
					return err
				}
				fmt.Printf("restored into %s; start l402d with --datadir %s (api.key and admin.key are created anew unless you copied them)\n", dir, dir)
				return nil
			},
		}},
	}
}

func run(c *cli.Context) error {
	logger, err := newLogger(c.String("log.level"), c.String("log.format"))
	if err != nil {
		return err
	}
	cfg, err := configFrom(c, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := plugin.New(ctx, cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// configFrom turns flags into a plugin.Config.
func configFrom(c *cli.Context, logger *slog.Logger) (plugin.Config, error) {
	network := c.String("network")
	if _, err := invoices.ChainParams(network); err != nil {
		return plugin.Config{}, fmt.Errorf("--network: %w", err)
	}
	lndDir := c.String("lnd.dir")
	tls := c.String("lnd.tlscertpath")
	if tls == "" {
		tls = filepath.Join(lndDir, "tls.cert")
	}
	macPath, macDir := c.String("lnd.macaroonpath"), c.String("lnd.macaroondir")
	if macPath != "" && macDir != "" {
		return plugin.Config{}, errors.New("set only one of --lnd.macaroonpath and --lnd.macaroondir")
	}
	if macPath == "" && macDir == "" {
		macDir = filepath.Join(lndDir, "data", "chain", "bitcoin", network)
	}
	var proxies []netip.Prefix
	for _, s := range c.StringSlice("trusted-proxy") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return plugin.Config{}, fmt.Errorf("--trusted-proxy %q: want a CIDR such as 10.0.0.0/8: %w", s, err)
		}
		proxies = append(proxies, p)
	}
	cfg := plugin.Config{
		DataDir: c.String("datadir"),
		Listen:  c.String("listen"),
		LND: invoices.LNDConfig{
			Address: c.String("lnd.host"), TLSCertPath: tls, MacaroonPath: macPath, MacaroonDir: macDir,
			Network: network, RPCTimeout: c.Duration("lnd.rpctimeout"),
		},
		MaxPriceSats:         c.Int64("max-price-sats"),
		InvoiceExpiry:        c.Duration("invoice-expiry"),
		UnpaidRetention:      c.Duration("unpaid-retention"),
		TokenValidity:        c.Duration("token-validity"),
		IdempotencyWindow:    c.Duration("idempotency-window"),
		SkipCaveats:          c.StringSlice("skip-caveat"),
		TrustedProxies:       proxies,
		DBEncryptionKeyFile:  c.String("db.keyfile"),
		DBNoSync:             c.Bool("db.nosync"),
		DBMinFreeBytes:       minFree(c.Int64("db.min-free-mb")),
		DBBackend:            c.String("db.backend"),
		DBPostgresDSN:        c.String("db.postgres.dsn"),
		DBDebitAllowanceMsat: c.Int64("db.debit-allowance-msat"),
		MetricsPublic:        c.Bool("metrics.public"),
		Logger:               logger,
		Version:              version,
	}
	if err := applyGateFlags(c, &cfg); err != nil {
		return plugin.Config{}, err
	}
	if err := applyConsumerFlags(c, &cfg); err != nil {
		return plugin.Config{}, err
	}
	if err := applyIntegratedFlags(c, &cfg); err != nil {
		return plugin.Config{}, err
	}
	if err := applyMCPFlags(c, &cfg); err != nil {
		return plugin.Config{}, err
	}
	if err := applyKeyEnvFlags(c, &cfg); err != nil {
		return plugin.Config{}, err
	}
	return cfg, nil
}

// minFree turns the flag's MiB into the plugin's bytes. The flag's 0 (or
// less) turns the guard off, which the plugin spells as a negative value
// because its own zero means "the default".
func minFree(mb int64) int64 {
	if mb <= 0 {
		return -1
	}
	return mb << 20
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log.format %q: want text or json", format)
}

// healthcheck asks a running l402d for /healthz. A wildcard listen
// address is reached over loopback.
func healthcheck(ctx context.Context, listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %s", resp.Status)
	}
	return nil
}
