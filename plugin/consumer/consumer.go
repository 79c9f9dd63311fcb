package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/storage"
)

// Defaults for zero Config fields.
const (
	DefaultMinFeeLimitSats  = 10
	DefaultMaxFeePercent    = 1.0
	DefaultPaymentTimeout   = 60 * time.Second
	DefaultRequestTimeout   = 30 * time.Second
	DefaultBodyTimeout      = 5 * time.Minute
	DefaultBodyIdleTimeout  = 30 * time.Second
	DefaultMaxResponseBytes = 10 << 20
	DefaultResumeInterval   = 10 * time.Second
	// DefaultSessionIdleClose is Config.SessionIdleClose's flag default.
	DefaultSessionIdleClose = time.Hour

	dialTimeout = 10 * time.Second
	keepAlive   = 30 * time.Second
	// payGrace is how much longer than the payment timeout l402d waits
	// for LND's final answer before leaving the payment to the resumer.
	payGrace = 30 * time.Second
	// maxChallengeBody bounds how much of a 402 body is read for a
	// challenge and a price.
	maxChallengeBody = 64 << 10
)

// Config configures a Consumer.
type Config struct {
	Store   *storage.Store
	Backend invoices.Backend
	Metrics *metrics.Metrics // optional
	Logger  *slog.Logger

	// MinFeeLimitSats and MaxFeePercent set a payment's routing fee limit:
	// the larger of MinFeeLimitSats and MaxFeePercent of the amount.
	MinFeeLimitSats int64
	MaxFeePercent   float64
	// PaymentTimeout bounds LND's attempts to pay (SendPaymentV2's
	// timeout). A payment still in flight after it is left to the
	// resumer.
	PaymentTimeout time.Duration
	// RequestTimeout bounds the wait for a target's response headers.
	RequestTimeout time.Duration
	// BodyTimeout bounds the reading of one response body, from its
	// headers to its end; BodyIdleTimeout the wait for its next bytes.
	// A target past either is cut off: the read fails with
	// ErrBodyTimeout and the connection is closed.
	BodyTimeout     time.Duration
	BodyIdleTimeout time.Duration
	// MaxResponseBytes is the body size Access callers should cap a
	// buffered body at (the REST API's JSON mode does).
	MaxResponseBytes int64
	// AllowPrivate lets Access and Quote fetch private, loopback and
	// other non-public addresses.
	AllowPrivate bool
	// Budget is applied over the stored limits at start (the
	// storage.DefaultBudgetLimits in a new store): its set fields
	// replace the stored ones.
	Budget BudgetUpdate
	// ResumeInterval is how often payments left in flight are tracked
	// again while l402d runs.
	ResumeInterval time.Duration
	// SessionIdleClose closes a held prepaid session nobody has used for
	// this long and collects its refund; 0 never does.
	SessionIdleClose time.Duration
	// UserAgent is sent when the caller sends none.
	UserAgent string
	// SchemePreference orders the payment schemes Access pays with when
	// a 402 offers several (l402, mpp, x402); a scheme left out is never
	// used. Empty: DefaultSchemePreference (the reusable L402 token when
	// offered, else MPP, else x402).
	SchemePreference []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Transport, if set, replaces the HTTP transport (for tests). It
	// bypasses the private-address check.
	Transport http.RoundTripper
}

// Consumer pays for L402 resources from the node. Its methods are safe
// for concurrent use.
type Consumer struct {
	cfg    Config
	log    *slog.Logger
	store  *storage.Store
	ln     invoices.Backend
	client *http.Client
	// locks serialize payments by hash, urlLocks purchases by resource.
	locks    hashLocks
	urlLocks hashLocks
	// shared: the store is shared with other replicas (Postgres).
	shared bool

	mu       sync.Mutex
	orphans  map[lntypes.Hash]struct{} // payments to resume
	budgetMu sync.Mutex                // serializes SetBudget
}

// New builds a consumer and applies the configured budget (see
// Config.Budget).
func New(ctx context.Context, cfg Config) (*Consumer, error) {
	if cfg.Store == nil || cfg.Backend == nil {
		return nil, errors.New("consumer: store and backend are required")
	}
	cfg = cfg.withDefaults()
	pref, err := ParseSchemePreference(cfg.SchemePreference)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	cfg.SchemePreference = pref
	c := &Consumer{cfg: cfg, log: cfg.Logger, store: cfg.Store, ln: cfg.Backend,
		orphans: map[lntypes.Hash]struct{}{}}
	c.locks, c.urlLocks = newHashLocks(nil), newHashLocks(nil)
	c.shared = cfg.Store.Shared()
	if c.shared {
		// Replicas on one Postgres store: a payment or purchase one of
		// them is on is not also started or resumed by another.
		c.locks.shared = func(ctx context.Context, k [32]byte, wait bool) (func(), bool, error) {
			return cfg.Store.SharedLock(ctx, 'p', k, wait)
		}
		c.urlLocks.shared = func(ctx context.Context, k [32]byte, wait bool) (func(), bool, error) {
			return cfg.Store.SharedLock(ctx, 'r', k, wait)
		}
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			DialContext:           newDialer(cfg.AllowPrivate).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   dialTimeout,
			ResponseHeaderTimeout: cfg.RequestTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			// No proxy from the environment: a proxy would dial the
			// target for us, around the private-address check.
		}
	}
	c.client = &http.Client{
		Transport: rt,
		// Redirects are returned, not followed: a credential is only
		// ever sent to the origin that sold it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if err := c.applyBudget(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// withDefaults returns cfg with the defaults in place of limits and
// timeouts that are not positive and of an empty user agent, clock and
// logger.
func (cfg Config) withDefaults() Config {
	positiveOr(&cfg.MinFeeLimitSats, DefaultMinFeeLimitSats)
	positiveOr(&cfg.MaxFeePercent, DefaultMaxFeePercent)
	positiveOr(&cfg.PaymentTimeout, DefaultPaymentTimeout)
	positiveOr(&cfg.RequestTimeout, DefaultRequestTimeout)
	positiveOr(&cfg.BodyTimeout, DefaultBodyTimeout)
	positiveOr(&cfg.BodyIdleTimeout, DefaultBodyIdleTimeout)
	positiveOr(&cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	positiveOr(&cfg.ResumeInterval, DefaultResumeInterval)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "l402d"
	}
	if len(cfg.SchemePreference) == 0 {
		cfg.SchemePreference = DefaultSchemePreference()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// positiveOr sets *v to def unless *v is positive.
func positiveOr[T int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// MaxResponseBytes is the configured cap on buffered response bodies.
func (c *Consumer) MaxResponseBytes() int64 { return c.cfg.MaxResponseBytes }

// applyBudget applies the configured budget; a start with the same
// budget as before writes nothing.
func (c *Consumer) applyBudget(ctx context.Context) error {
	if c.cfg.Budget == (BudgetUpdate{}) {
		return nil
	}
	if _, err := c.SetBudget(ctx, c.cfg.Budget); err != nil {
		return fmt.Errorf("consumer: applying the configured budget: %w", err)
	}
	return nil
}

// feeLimitMsat is the routing fee cap for a payment of amountMsat.
func (c *Consumer) feeLimitMsat(amountMsat int64) int64 {
	return max(c.cfg.MinFeeLimitSats*1000, int64(float64(amountMsat)*c.cfg.MaxFeePercent/100))
}

// Run resumes, until ctx ends, every payment a crash or a timeout left
// reserved or in flight: first all those in the journal, then every
// ResumeInterval those this process gave up waiting for. Each is tracked
// with LND until it is final, its outcome recorded, its reservation
// settled and its token cached.
func (c *Consumer) Run(ctx context.Context) error {
	pending, err := c.store.PendingPayments(ctx)
	if err != nil {
		return fmt.Errorf("consumer: reading the payment journal: %w", err)
	}
	for _, p := range pending {
		c.orphan(p.PaymentHash)
	}
	if len(pending) > 0 {
		c.log.Info("resuming payments left in flight", "count", len(pending))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(c.cfg.ResumeInterval)
	defer t.Stop()
	for {
		if c.shared {
			// A replica that died left its payments in flight; the
			// shared lock tells which no live replica is on.
			c.orphanPending(ctx)
		}
		for _, h := range c.orphanList() {
			unlock, ok := c.locks.tryLock(ctx, h)
			if !ok {
				continue // a payer or an earlier resume is on it
			}
			wg.Go(func() {
				defer unlock()
				c.resume(ctx, h)
			})
		}
		c.resumeOpenings(ctx)
		if c.cfg.SessionIdleClose > 0 {
			c.closeIdle(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// orphanPending marks every unfinished payment of the journal for the
// resumer, which takes on those whose lock is free.
func (c *Consumer) orphanPending(ctx context.Context) {
	pending, err := c.store.PendingPayments(ctx)
	if err != nil {
		c.log.Warn("reading the payment journal for payments left by another replica", "err", err)
		return
	}
	for _, p := range pending {
		c.orphan(p.PaymentHash)
	}
}

// resume tracks one orphaned payment to its end. The caller holds its lock.
func (c *Consumer) resume(ctx context.Context, h lntypes.Hash) {
	p, err := c.store.Payment(ctx, h)
	if err != nil {
		c.log.Warn("resuming payment: reading the journal", "payment_hash", h, "err", err)
		return
	}
	if !p.State.Final() {
		c.log.Info("resuming payment", "payment_hash", h, "state", p.State, "url", p.URL)
		res, err := c.ln.Track(ctx, h)
		if p, err = c.record(ctx, p, res, err); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("payment still not final; will track it again", "payment_hash", h, "err", err)
			}
			return
		}
		c.log.Info("resumed payment is final", "payment_hash", h, "state", p.State, "fee_msat", p.FeeMsat, "reason", p.FailureReason)
	}
	c.mu.Lock()
	delete(c.orphans, h)
	c.mu.Unlock()
}

// orphan marks a payment whose outcome this process does not know yet.
func (c *Consumer) orphan(h lntypes.Hash) {
	c.mu.Lock()
	c.orphans[h] = struct{}{}
	c.mu.Unlock()
}

func (c *Consumer) orphanList() []lntypes.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]lntypes.Hash, 0, len(c.orphans))
	for h := range c.orphans {
		out = append(out, h)
	}
	return out
}

// hashLocks serializes all work on one payment hash (or one resource)
// inside this process and, on a store shared by several replicas, across
// them (shared). With the journal, it makes "never pay a hash twice" hold
// without asking LND.
type hashLocks struct {
	mu sync.Mutex
	m  map[lntypes.Hash]chan struct{} // closed when released
	// shared, if set, takes the same lock across replicas, after the
	// process's own (see storage.Store.SharedLock).
	shared func(ctx context.Context, key [32]byte, wait bool) (unlock func(), ok bool, err error)
}

func newHashLocks(shared func(ctx context.Context, key [32]byte, wait bool) (func(), bool, error)) hashLocks {
	return hashLocks{m: map[lntypes.Hash]chan struct{}{}, shared: shared}
}

// lock waits for h's lock or for ctx to end.
func (l *hashLocks) lock(ctx context.Context, h lntypes.Hash) (unlock func(), err error) {
	for {
		unlock, held := l.tryLockOrWait(h)
		if unlock != nil {
			return l.alsoShared(ctx, h, unlock, true)
		}
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tryLock takes h's lock if it is free.
func (l *hashLocks) tryLock(ctx context.Context, h lntypes.Hash) (unlock func(), ok bool) {
	unlock, _ = l.tryLockOrWait(h)
	if unlock == nil {
		return nil, false
	}
	unlock, err := l.alsoShared(ctx, h, unlock, false)
	return unlock, err == nil && unlock != nil
}

// alsoShared takes the replicas' lock of h once the process's own is
// held (local), waiting for it if wait; on failure it releases local.
func (l *hashLocks) alsoShared(ctx context.Context, h lntypes.Hash, local func(), wait bool) (func(), error) {
	if l.shared == nil {
		return local, nil
	}
	release, ok, err := l.shared(ctx, h, wait)
	if err != nil || !ok {
		local()
		return nil, err
	}
	return func() {
		release()
		local()
	}, nil
}

func (l *hashLocks) tryLockOrWait(h lntypes.Hash) (unlock func(), held <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.m[h]; ok {
		return nil, ch
	}
	ch := make(chan struct{})
	l.m[h] = ch
	return func() {
		l.mu.Lock()
		delete(l.m, h)
		l.mu.Unlock()
		close(ch)
	}, nil
}
