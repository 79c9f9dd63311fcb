// Package plugin wires l402d together: one Config, one Plugin that owns
// the store, the Lightning backend, the settlement watcher, the producer
// and every HTTP surface, and runs them until its context ends.
//
// It is the only package that knows all the others; cmd/l402d only turns
// flags into a Config.
package plugin

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/dashboard"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// Config is everything l402d can be told.
type Config struct {
	// DataDir holds the Badger store and the key files.
	DataDir string
	// LND says how to reach the node. Its Network is the node's network.
	LND invoices.LNDConfig
	// Listen is the API/admin listener address.
	Listen string

	// Producer settings; zero values take the producer's defaults.
	MaxPriceSats      int64
	InvoiceExpiry     time.Duration
	TokenValidity     time.Duration
	IdempotencyWindow time.Duration
	SkipCaveats       []string
	TrustedProxies    []netip.Prefix
	// UnpaidRetention is how long a challenge whose invoice expired
	// unpaid is kept before it is deleted with its root key; zero means
	// invoices.DefaultUnpaidRetention.
	UnpaidRetention time.Duration

	// DBEncryptionKeyFile, if set, encrypts the store at rest with the key
	// in this file (hex, 16/24/32 bytes), created 0600 if missing.
	DBEncryptionKeyFile string
	// DBNoSync turns off fsync on every write (faster, less durable).
	DBNoSync bool
	// DBMinFreeBytes is the free disk space below which writes are
	// refused; 0 means storage.DefaultMinFreeBytes, negative disables.
	DBMinFreeBytes int64
	// DBBackend is "badger" (the default: an embedded store in DataDir)
	// or "postgres" (DBPostgresDSN's database, shared by every replica
	// given it; see docs/SCALING.md).
	DBBackend     string
	DBPostgresDSN string
	// DBDebitAllowanceMsat lets requests on a prepaid balance or an MPP
	// session be debited in memory and answered before the debit is on
	// disk, up to this many msat per balance; a crash loses at most that
	// much of each balance's debits, to the seller (storage.Options).
	// 0: every debit is durable first. Badger only.
	DBDebitAllowanceMsat int64

	// Gate and Consumer configure the earning proxy and the spending
	// side; see gate.go and consumer.go.
	Gate     GateConfig
	Consumer ConsumerConfig
	// Integrated, when enabled, runs LND inside l402d (integrated.go).
	Integrated IntegratedConfig
	// MCP configures the MCP server at /mcp (mcp.go).
	MCP MCPConfig
	// APIKey and AdminKey, when set, are the producer and admin keys
	// (at least 16 characters) instead of the api.key and admin.key files
	// in DataDir, which are then neither read nor created. A platform that
	// hands the app a secret (Umbrel's $APP_PASSWORD) sets them.
	APIKey, AdminKey string
	// MetricsPublic serves /metrics without a key; otherwise it needs the
	// producer (or admin) key.
	MetricsPublic bool

	Logger  *slog.Logger
	Version string
}

// Defaults.
const (
	DefaultListen = "127.0.0.1:8402"
	apiKeyFile    = "api.key"
	adminKeyFile  = "admin.key"
	// SpendKeyFile is the spend key's file in the data dir, created when
	// spending is enabled (ConsumerConfig.Enable).
	SpendKeyFile = "spend.key"
	dbDir        = "db"
)

// Plugin is a running l402d.
type Plugin struct {
	cfg      Config
	log      *slog.Logger
	store    *storage.Store
	backend  *invoices.LND
	metrics  *metrics.Metrics
	producer *producer.Producer
	watcher  *invoices.Watcher
	sweeper  *invoices.Sweeper
	api      *api.Server
	apiKey   string
	adminKey string

	healthMu sync.RWMutex
	lndState api.LNDHealth
	dbState  *apiclient.DBHealth // nil on Badger

	listener net.Listener

	// gate and consumer hold those components' parts (gate.go,
	// consumer.go).
	gate       gateParts
	consumer   consumerParts
	integrated integratedParts

	// servicesGet and servicesPut edit the gate's services file (set by
	// initGate) for the dashboard.
	servicesGet, servicesPut http.Handler

	// spendingFn reports spending against budgets for the dashboard; the
	// consumer sets it.
	spendingFn func(ctx context.Context) (dashboard.Spending, error)

	// runners are background loops and extra servers that components add
	// in New; Run starts each with its context and waits for all.
	runners []func(ctx context.Context) error

	// hangup receives SIGHUP from New on, so that a reload signal that
	// arrives before Run is caught too (Go's default for it is to exit).
	hangup chan os.Signal
}

// New opens the data dir and builds every component. It does not need
// LND to be up. Close releases what New opened if Run is never called.
func New(ctx context.Context, cfg Config) (_ *Plugin, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("plugin: data dir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.checkBackend(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("plugin: data dir: %w", err)
	}
	p := &Plugin{cfg: cfg, log: cfg.Logger, metrics: metrics.New()}
	// Every step below leaves what it opened in p, so that one failing
	// closes what the steps before it opened.
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	keys, err := p.loadKeys()
	if err != nil {
		return nil, err
	}
	if err := p.openStore(ctx); err != nil {
		return nil, err
	}
	if err := p.connectLND(ctx); err != nil {
		return nil, err
	}
	if err := p.startProducer(ctx); err != nil {
		return nil, err
	}
	p.addSettlementLoops()
	p.catchHangup()
	if err := p.buildAPI(keys); err != nil {
		return nil, err
	}
	if err := p.initGate(ctx); err != nil {
		return nil, err
	}
	if err := p.initConsumer(ctx); err != nil {
		return nil, err
	}
	if err := p.initMCP(); err != nil {
		return nil, err
	}
	return p, nil
}

// loadKeys reads the producer and admin keys from the data dir, creating
// them on first start, and the spend key when spending is enabled.
func (p *Plugin) loadKeys() (*api.Keys, error) {
	var err error
	// A key given in the Config (from the environment, say) is used as
	// it is; otherwise the key file is read or created.
	if p.apiKey = p.cfg.APIKey; p.apiKey == "" {
		if p.apiKey, err = api.LoadOrCreateKey(filepath.Join(p.cfg.DataDir, apiKeyFile)); err != nil {
			return nil, err
		}
	}
	if p.adminKey = p.cfg.AdminKey; p.adminKey == "" {
		if p.adminKey, err = api.LoadOrCreateKey(filepath.Join(p.cfg.DataDir, adminKeyFile)); err != nil {
			return nil, err
		}
	}
	keys, err := api.NewKeys(p.apiKey, p.adminKey)
	if err != nil {
		return nil, err
	}
	// Spending is off until it is enabled: only then does a spend key
	// exist, and only the spend (or admin) key reaches the consumer.
	if !p.cfg.Consumer.Enable {
		p.log.Info("spending is off (no spend key): start with --consumer.enable to let this node pay")
		return keys, nil
	}
	spendKey, err := api.LoadOrCreateKey(filepath.Join(p.cfg.DataDir, SpendKeyFile))
	if err != nil {
		return nil, err
	}
	if keys, err = keys.WithSpend(spendKey); err != nil {
		return nil, err
	}
	p.log.Info("spending is on: the consumer answers to the spend key", "key_file", filepath.Join(p.cfg.DataDir, SpendKeyFile))
	return keys, nil
}

// Storage backends.
const (
	BackendBadger   = "badger"
	BackendPostgres = "postgres"
)

// checkBackend refuses a storage configuration that cannot work, naming
// the flag to change.
func (c *Config) checkBackend() error {
	switch c.DBBackend {
	case "", BackendBadger:
		if c.DBPostgresDSN != "" {
			return errors.New("plugin: --db.postgres.dsn is set but --db.backend is badger; add --db.backend=postgres")
		}
	case BackendPostgres:
		if c.DBPostgresDSN == "" {
			return errors.New("plugin: --db.backend=postgres needs --db.postgres.dsn (e.g. postgres://l402d@db:5432/l402d)")
		}
		if c.DBEncryptionKeyFile != "" {
			return errors.New("plugin: --db.keyfile encrypts the Badger store; on postgres leave it out and encrypt the database's disk")
		}
		if c.DBDebitAllowanceMsat != 0 {
			return errors.New("plugin: --db.debit-allowance-msat keeps debits in one process's memory and replicas on postgres share balances; leave it at 0 on postgres")
		}
	default:
		return fmt.Errorf("plugin: --db.backend %q: want badger or postgres", c.DBBackend)
	}
	if c.DBDebitAllowanceMsat < 0 {
		return fmt.Errorf("plugin: --db.debit-allowance-msat %d: want 0 (every debit on disk first) or a positive number of msat", c.DBDebitAllowanceMsat)
	}
	return nil
}

// openStore opens the store: Badger in the data dir (encrypted when a
// key file is configured), or the shared Postgres database.
func (p *Plugin) openStore(ctx context.Context) error {
	if p.cfg.DBBackend == BackendPostgres {
		var err error
		p.store, err = storage.Open(ctx, storage.Options{
			PostgresDSN: p.cfg.DBPostgresDSN, Logger: p.log.With("component", "storage"),
		})
		if err == nil {
			p.metrics.CountConflicts(func() float64 { return float64(p.store.Conflicts()) })
		}
		return err
	}
	opts := storage.DefaultOptions(filepath.Join(p.cfg.DataDir, dbDir))
	opts.SyncWrites = !p.cfg.DBNoSync
	opts.MinFreeBytes = p.cfg.DBMinFreeBytes
	opts.DebitAllowanceMsat = p.cfg.DBDebitAllowanceMsat
	opts.Logger = p.log.With("component", "storage")
	var err error
	if p.cfg.DBEncryptionKeyFile != "" {
		if opts.EncryptionKey, err = loadOrCreateDBKey(p.cfg.DBEncryptionKeyFile); err != nil {
			return err
		}
	}
	p.store, err = storage.Open(ctx, opts)
	if err == nil {
		p.metrics.CountConflicts(func() float64 { return float64(p.store.Conflicts()) })
	}
	return err
}

// connectLND builds the Lightning backend. In integrated mode it first
// starts LND inside l402d; in remote mode it uses cfg.LND as given.
func (p *Plugin) connectLND(ctx context.Context) error {
	lcfg, err := p.lndConfig(ctx)
	if err != nil {
		return err
	}
	lcfg.Logger = p.log.With("component", "lnd")
	p.backend, err = invoices.NewLND(lcfg)
	return err
}

// startProducer builds the earning role over the store and the backend
// and starts it.
func (p *Plugin) startProducer(ctx context.Context) error {
	var err error
	if p.producer, err = producer.New(producer.Config{
		Store: p.store, Backend: p.backend, Metrics: p.metrics, Logger: p.log.With("component", "producer"),
		MaxPriceSats: p.cfg.MaxPriceSats, InvoiceExpiry: p.cfg.InvoiceExpiry, TokenValidity: p.cfg.TokenValidity,
		IdempotencyWindow: p.cfg.IdempotencyWindow, SkipCaveats: p.cfg.SkipCaveats,
	}); err != nil {
		return err
	}
	if err := p.producer.Start(ctx); err != nil {
		return err
	}
	// Refunds journaled before a crash or stop are paid or followed now.
	return p.producer.ResumeRefunds(ctx)
}

// addSettlementLoops builds the settlement watcher (which Run starts) and
// adds the unpaid-invoice sweeper to the runners.
func (p *Plugin) addSettlementLoops() {
	p.watcher = invoices.NewWatcher(invoices.WatcherConfig{
		Subscriber: p.backend, Sink: p.producer, Logger: p.log.With("component", "watcher"),
		OnSettlement: func(_ invoices.Settlement, lag time.Duration) { p.metrics.SettlementLag.Observe(lag.Seconds()) },
	})
	p.sweeper = invoices.NewSweeper(invoices.SweeperConfig{
		Node: p.backend, Sink: p.producer, Retention: p.cfg.UnpaidRetention,
		Logger: p.log.With("component", "sweeper"),
	})
}

// runSettlement runs the settlement watcher and the unpaid sweeper while
// this process leads them: at once on Badger; on a shared store, on one
// replica at a time, and again here when the leader dies.
func (p *Plugin) runSettlement(ctx context.Context) {
	for ctx.Err() == nil {
		if p.store.Shared() {
			p.watcher.Standby()
		}
		lctx, release, err := p.store.Lead(ctx, "settlement")
		if err != nil {
			return // ctx ended
		}
		if p.store.Shared() {
			p.log.Info("this replica now watches settlements")
		}
		p.metrics.SettlementLeader.Set(1)
		var wg sync.WaitGroup
		wg.Go(func() { p.watcher.Run(lctx) })
		wg.Go(func() {
			if err := p.sweeper.Run(lctx); err != nil && lctx.Err() == nil {
				p.log.Warn("sweeper stopped", "err", err)
			}
		})
		wg.Wait()
		release()
		p.metrics.SettlementLeader.Set(0)
		if ctx.Err() == nil {
			p.log.Warn("lost the lead of the settlement watcher; waiting to take it again")
		}
	}
}

// catchHangup receives SIGHUP from now on and adds the runner that turns
// it into a reload.
func (p *Plugin) catchHangup() {
	p.runners = append(p.runners, p.watchHangup)
	p.hangup = make(chan os.Signal, 1)
	signal.Notify(p.hangup, syscall.SIGHUP)
}

// buildAPI builds the REST API and mounts the dashboard and, in
// integrated mode, the node's own endpoints on it.
func (p *Plugin) buildAPI(keys *api.Keys) error {
	p.api = api.New(api.Config{
		Keys: keys, Producer: p.producer, Metrics: p.metrics, Logger: p.log.With("component", "api"),
		Health: p.health, TrustedProxies: p.cfg.TrustedProxies, Backup: p.store.Backup, PublicMetrics: p.cfg.MetricsPublic,
	})
	dash, err := dashboard.New(dashboard.Config{
		Keys: keys, Producer: p.producer, Health: p.health, Logger: p.log.With("component", "dashboard"),
		Revocations: func(ctx context.Context) (int, error) {
			r, err := p.store.Revocations(ctx)
			return len(r), err
		},
		Spending:     p.spending,
		ServicesFile: func() (http.Handler, http.Handler) { return p.servicesGet, p.servicesPut },
	})
	if err != nil {
		return err
	}
	dash.Mount(p.api)
	p.mountIntegrated()
	return nil
}

// Producer returns the producer, for embedding programs.
func (p *Plugin) Producer() *producer.Producer { return p.producer }

// API returns the API server, for components that mount routes on it.
func (p *Plugin) API() *api.Server { return p.api }

// Addr is the API listener's address once Run has started listening.
func (p *Plugin) Addr() net.Addr {
	if p.listener == nil {
		return nil
	}
	return p.listener.Addr()
}

// Listen binds the API listener; Run calls it if the caller did not, so
// a caller may bind first to learn a ":0" port.
func (p *Plugin) Listen() error {
	if p.listener != nil {
		return nil
	}
	l, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		return fmt.Errorf("plugin: listening on %s: %w", p.cfg.Listen, err)
	}
	p.listener = l
	return nil
}

// Run serves until ctx ends, then shuts down gracefully and closes
// everything.
func (p *Plugin) Run(ctx context.Context) error {
	defer p.Close()
	if err := p.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           p.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // MCP and consumer calls wait on payments
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2+len(p.runners))
	for _, r := range p.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(p.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api server: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		p.runSettlement(ctx)
	}()
	go func() {
		defer wg.Done()
		p.healthLoop(ctx)
	}()
	p.log.Info("l402d ready", "api", p.listener.Addr().String(), "data_dir", p.cfg.DataDir, "lnd", p.cfg.LND.Address, "network", p.cfg.LND.Network)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	p.log.Info("l402d shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		p.log.Warn("api shutdown", "err", err)
	}
	cancel()
	wg.Wait()
	return runErr
}

// Close releases the store and the LND connection. It is safe to call
// more than once.
func (p *Plugin) Close() error {
	var errs []error
	if p.hangup != nil {
		signal.Stop(p.hangup)
	}
	if p.backend != nil {
		p.backend.Close()
	}
	errs = append(errs, p.stopIntegrated())
	if p.store != nil {
		errs = append(errs, p.store.Close())
		p.store = nil
	}
	if p.listener != nil {
		_ = p.listener.Close()
	}
	return errors.Join(errs...)
}

// Restore loads a backup made with GET /api/admin/backup into dataDir,
// which must not hold a store yet. dbKeyFile is the encryption key file
// the restored store will be opened with, if any.
func Restore(ctx context.Context, dataDir, dbKeyFile string, r io.Reader) error {
	opts := storage.DefaultOptions(filepath.Join(dataDir, dbDir))
	if dbKeyFile != "" {
		key, err := loadOrCreateDBKey(dbKeyFile)
		if err != nil {
			return err
		}
		opts.EncryptionKey = key
	}
	return storage.Restore(ctx, opts, r)
}

// Migrate copies the whole store from one engine to another (see
// storage.Copy): from and to are each a data dir (its Badger store,
// encrypted with dbKeyFile's key if set) or a Postgres DSN
// (postgres://...). The destination must be empty and no l402d may be
// using the source. It returns how many entries it copied.
func Migrate(ctx context.Context, from, to, dbKeyFile string, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	open := func(where, flag string) (*storage.Store, error) {
		if where == "" {
			return nil, fmt.Errorf("plugin: --%s is required: a data dir or a postgres:// DSN", flag)
		}
		if isDSN(where) {
			return storage.Open(ctx, storage.Options{PostgresDSN: where, Logger: log})
		}
		opts := storage.DefaultOptions(filepath.Join(where, dbDir))
		opts.Logger = log
		if dbKeyFile != "" {
			key, err := loadOrCreateDBKey(dbKeyFile)
			if err != nil {
				return nil, err
			}
			opts.EncryptionKey = key
		}
		if flag == "from" {
			if _, err := os.Stat(opts.Dir); err != nil {
				return nil, fmt.Errorf("plugin: --from %s: no store there (%w)", where, err)
			}
		}
		return storage.Open(ctx, opts)
	}
	src, err := open(from, "from")
	if err != nil {
		return 0, fmt.Errorf("opening the source: %w", err)
	}
	defer src.Close()
	dst, err := open(to, "to")
	if err != nil {
		return 0, fmt.Errorf("opening the destination: %w", err)
	}
	defer dst.Close()
	return storage.Copy(ctx, src, dst)
}

func isDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// spending is the consumer side for the dashboard; nil until the consumer
// reports budgets.
func (p *Plugin) spending(ctx context.Context) (dashboard.Spending, error) {
	if p.spendingFn == nil {
		return dashboard.Spending{}, errors.New("the consumer side is not enabled")
	}
	return p.spendingFn(ctx)
}

// loadOrCreateDBKey reads a hex store key, creating a 32-byte one (0600)
// if the file does not exist.
func loadOrCreateDBKey(path string) ([]byte, error) {
	s, err := api.LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
		return nil, fmt.Errorf("plugin: %s must hold 32, 48 or 64 hex characters", path)
	}
	return key, nil
}

// watchHangup answers SIGHUP, the reload signal of service managers (the
// systemd unit's ExecReload): it reloads the gate's services file when the
// gate is on and otherwise says there is nothing to reload. Either way
// l402d keeps running; flags and the config file take effect at a restart.
func (p *Plugin) watchHangup(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.hangup:
			if p.gate.gate == nil {
				p.log.Info("SIGHUP: nothing to reload (the gate is off); flags and the config file take effect at a restart")
				continue
			}
			p.log.Info("SIGHUP: reloading the gate's services file")
			_, _ = p.gate.gate.Reload(ctx) // a refused file is logged; the old one keeps running
		}
	}
}
