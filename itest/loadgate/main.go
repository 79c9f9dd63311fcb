// Command loadgate measures what the gate costs: authenticated requests
// per second and p50/p99 latency through the gate, against the same
// loopback upstream called directly, in one run, at the same concurrency,
// alternating the two targets round by round so that drift in the
// machine's load hits both alike. It prints the ratio. In its embedded
// mode it also loads a third target, a bare net/http/httputil.ReverseProxy
// in front of the same upstream with the gate's transport settings and no
// L402 at all: the floor any Go proxy pays on this machine, so the gate's
// own cost shows apart from the cost of proxying.
//
// By default it is self-contained: it starts a loopback upstream and an
// embedded gate (the real gate.Gate serving on its own loopback listener,
// the real producer over a real Badger store in a temporary directory)
// whose Lightning backend is a stand-in that makes invoices and knows
// their preimages, so the program can "pay" its own 402 and then load
// the gate with that token. Nothing on the measured path calls the
// Lightning backend: a paid request is parse + verify (root key from
// memory) + proxy.
//
//	go run ./itest/loadgate -c 32 -d 5s -rounds 3
//
// With -gate, -direct and -auth it loads a running l402d instead
// (BenchmarkGateLoad, run by make load, buys a real token on regtest and
// does this):
//
//	go run ./itest/loadgate -gate http://127.0.0.1:8403/bench -direct http://127.0.0.1:9000/bench -auth 'L402 …:…'
//
// With -serve it loads nothing and serves for another load generator
// (wrk): "-serve upstream -listen 127.0.0.1:9000" serves the upstream in a
// process of its own; "-serve gate" starts the embedded gate and the bare
// proxy (in front of -upstream when given) and prints their URLs and the
// token as one JSON line:
//
//	go run ./itest/loadgate -serve gate -upstream 127.0.0.1:9000
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/gate"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgate:", err)
		os.Exit(1)
	}
}

type options struct {
	conns    int
	duration time.Duration
	warmup   time.Duration
	rounds   int
	size     int
	free     bool
	gateURL  string
	direct   string
	auth     string
	upstream string
	serve    string
}

func run() error {
	var o options
	flag.IntVar(&o.conns, "c", 32, "concurrent connections (and workers) per target")
	flag.DurationVar(&o.duration, "d", 5*time.Second, "measured time per target per round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time per target before the first round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each loads the direct target, then the gate")
	flag.IntVar(&o.size, "size", 256, "response body size of the embedded upstream, bytes")
	flag.BoolVar(&o.free, "free", false, "embedded gate with auth off: measures the bare proxy, no credential")
	flag.StringVar(&o.gateURL, "gate", "", "load this URL through a running gate instead of an embedded one")
	flag.StringVar(&o.direct, "direct", "", "with -gate: the same resource on the upstream, called directly")
	flag.StringVar(&o.auth, "auth", "", "with -gate: the Authorization value (L402 <macaroon>:<preimage>)")
	flag.StringVar(&o.upstream, "upstream", "", "embedded gate in front of this host:port instead of its own upstream")
	flag.StringVar(&o.serve, "serve", "", "serve only: \"upstream\" serves the upstream on -listen; \"gate\" starts the embedded gate (and bare proxy), prints their URLs and the token as JSON, and serves until interrupted, for an external load generator (wrk)")
	listenAddr := flag.String("listen", "127.0.0.1:0", "with -serve upstream: the address to serve on")
	pprofAddr := flag.String("pprof", "", "with -serve: serve net/http/pprof on this address (profile the gate under wrk)")
	cpuProfile := flag.String("cpuprofile", "", "write CPU profiles of each round to FILE.<target>.<round>")
	flag.Parse()
	if o.serve != "" {
		if *pprofAddr != "" {
			go func() { _ = http.ListenAndServe(*pprofAddr, nil) }() // DefaultServeMux holds net/http/pprof
		}
		return serveOnly(o, *listenAddr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mode := "external gate " + o.gateURL
	var proxyURL string
	if o.gateURL == "" {
		var err error
		var cleanup func()
		if o.gateURL, o.direct, proxyURL, o.auth, cleanup, err = embedded(ctx, o.upstream, o.size, o.free); err != nil {
			return err
		}
		defer cleanup()
		mode = "embedded gate (real gate, producer and Badger store; stand-in Lightning backend)"
		if o.free {
			mode = "embedded gate with auth off (the bare proxy: no credential, no verification)"
		}
	} else if o.direct == "" || o.auth == "" {
		return errors.New("-gate needs -direct and -auth")
	}

	fmt.Printf("loadgate: %s\n", mode)
	fmt.Printf("  %d connections per target, %d rounds x %v per target (after %v warm-up), GOMAXPROCS=%d, %s/%s\n",
		o.conns, o.rounds, o.duration, o.warmup, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)

	direct := newTarget("direct", o.direct, "", o.conns)
	gated := newTarget("gate", o.gateURL, o.auth, o.conns)
	targets := []*target{direct}
	if proxyURL != "" {
		targets = append(targets, newTarget("proxy", proxyURL, "", o.conns))
	}
	targets = append(targets, gated)
	for _, t := range targets {
		if err := t.check(ctx); err != nil {
			return err
		}
		t.load(ctx, o.warmup, false)
	}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			if err := profile(*cpuProfile, t.name, round, func() { t.load(ctx, o.duration, true) }); err != nil {
				return err
			}
		}
	}

	fmt.Printf("\n  %-7s %10s %10s %10s %10s %8s\n", "target", "requests", "req/s", "p50", "p99", "errors")
	results := make([]result, len(targets))
	var failed int64
	for i, t := range targets {
		r := t.report()
		results[i] = r
		failed += r.errors
		fmt.Printf("  %-7s %10d %10.0f %10s %10s %8d\n", r.name, r.n, r.rps, us(r.p50), us(r.p99), r.errors)
	}
	d, g := results[0], results[len(results)-1]
	fmt.Printf("\n  gate/direct throughput: %.1f%%   added p50: %s   added p99: %s\n",
		100*g.rps/d.rps, us(g.p50-d.p50), us(g.p99-d.p99))
	if len(results) == 3 {
		p := results[1]
		fmt.Printf("  proxy/direct throughput: %.1f%%   gate/proxy throughput: %.1f%%   gate's added p50 over the bare proxy: %s\n",
			100*p.rps/d.rps, 100*g.rps/p.rps, us(g.p50-p.p50))
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

// profile runs fn under the CPU profiler when path is set, writing
// <path>.<target>.<round>.
func profile(path, name string, round int, fn func()) error {
	if path == "" {
		fn()
		return nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d", path, name, round))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	fn()
	pprof.StopCPUProfile()
	return nil
}

func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) + "µs" }

// target is one URL loaded by conns workers over as many connections.
type target struct {
	name, url, auth string
	conns           int
	client          *http.Client

	mu        sync.Mutex
	latencies []time.Duration
	elapsed   time.Duration
	errors    int64
}

func newTarget(name, url, auth string, conns int) *target {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	return &target{name: name, url: url, auth: auth, conns: conns, client: &http.Client{Transport: tr}}
}

// check makes one request and wants a 200.
func (t *target) check(ctx context.Context) error {
	st, err := t.do(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	if st != http.StatusOK {
		return fmt.Errorf("%s: %s answered %d, want 200", t.name, t.url, st)
	}
	return nil
}

func (t *target) do(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", t.url, nil)
	if err != nil {
		return 0, err
	}
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// load runs the workers for d; with record, it keeps their latencies.
func (t *target) load(ctx context.Context, d time.Duration, record bool) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range t.conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			var errs int64
			for !stop.Load() {
				s := time.Now()
				st, err := t.do(ctx)
				if err != nil || st != http.StatusOK {
					errs++
					continue
				}
				lat = append(lat, time.Since(s))
			}
			if record {
				t.mu.Lock()
				t.latencies = append(t.latencies, lat...)
				t.errors += errs
				t.mu.Unlock()
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if record {
		t.elapsed += time.Since(start)
	}
}

type result struct {
	name          string
	n             int
	rps           float64
	p50, p99      time.Duration
	errors        int64
	elapsedPerRun time.Duration
}

func (t *target) report() result {
	slices.Sort(t.latencies)
	r := result{name: t.name, n: len(t.latencies), errors: t.errors}
	if r.n == 0 {
		return r
	}
	r.rps = float64(r.n) / t.elapsed.Seconds()
	r.p50 = t.latencies[r.n*50/100]
	r.p99 = t.latencies[r.n*99/100]
	return r
}

// embedded starts a loopback upstream, a gate and a bare reverse proxy in
// front of it, buys a token from the gate, and returns the three URLs of
// the same resource and the token's Authorization value.
func embedded(ctx context.Context, up string, size int, free bool) (gateURL, directURL, proxyURL, auth string, cleanup func(), err error) {
	var closers []func()
	cleanup = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	if up == "" {
		if up, err = startUpstream(ctx, "127.0.0.1:0", size, &closers); err != nil {
			return "", "", "", "", nil, err
		}
	}

	dir, err := os.MkdirTemp("", "loadgate-")
	if err != nil {
		return "", "", "", "", nil, err
	}
	closers = append(closers, func() { os.RemoveAll(dir) })
	store, err := storage.Open(ctx, storage.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", "", "", "", nil, err
	}
	closers = append(closers, func() { store.Close() })
	lnd := &standInLND{preimages: map[lntypes.Hash]lntypes.Preimage{}}
	m := metrics.New() // the daemon always counts; so does the benchmark
	prod, err := producer.New(producer.Config{Store: store, Backend: lnd, Metrics: m})
	if err != nil {
		return "", "", "", "", nil, err
	}
	if err := prod.Start(ctx); err != nil {
		return "", "", "", "", nil, err
	}
	mode := `"on"`
	if free {
		mode = `"off"`
	}
	svcs, err := gate.ParseServices([]byte(fmt.Sprintf("services:\n  - name: bench\n    upstream: http://%s\n    price: 10\n    auth: %s\n", up, mode)), gate.ParseOptions{})
	if err != nil {
		return "", "", "", "", nil, err
	}
	g, err := gate.New(gate.Config{Producer: prod, Lookup: prod, Services: svcs, RequireUpstream: true, TokenRate: -1, Metrics: m})
	if err != nil {
		return "", "", "", "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", "", "", nil, err
	}
	gctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(gctx, l) }()
	closers = append(closers, func() { stop(); <-done })

	proxy, err := listen(ctx, bareProxy(up), &closers)
	if err != nil {
		return "", "", "", "", nil, err
	}

	gateURL, directURL, proxyURL = "http://"+l.Addr().String()+"/bench", "http://"+up+"/bench", "http://"+proxy+"/bench"
	if free {
		return gateURL, directURL, proxyURL, "", cleanup, nil
	}
	if auth, err = payOwnChallenge(gateURL, lnd); err != nil {
		return "", "", "", "", nil, err
	}
	return gateURL, directURL, proxyURL, auth, cleanup, nil
}

// startUpstream serves size bytes of text to every request on a loopback
// listener and returns its address.
func startUpstream(ctx context.Context, addr string, size int, closers *[]func()) (string, error) {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	return listenOn(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}), closers)
}

// payOwnChallenge asks the gate at gateURL for a 402 and "pays" it with
// the preimage the stand-in backend kept, returning the Authorization
// value of the token.
func payOwnChallenge(gateURL string, lnd *standInLND) (string, error) {
	resp, err := http.Get(gateURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return "", fmt.Errorf("unpaid request answered %d, want 402", resp.StatusCode)
	}
	ch, err := l402.ParseChallenge(resp.Header)
	if err != nil {
		return "", err
	}
	mac, err := l402.DecodeMacaroon(ch.Macaroon)
	if err != nil {
		return "", err
	}
	id, err := l402.DecodeIdentifier(mac.Id())
	if err != nil {
		return "", err
	}
	pre, ok := lnd.preimage(id.PaymentHash)
	if !ok {
		return "", errors.New("the challenge's invoice is unknown")
	}
	return l402.AuthorizationValue(ch.Macaroon, pre), nil
}

// bareProxy is the reference: the standard library's reverse proxy with
// the transport settings the gate uses (many warm connections, no
// compression) and nothing else.
func bareProxy(upstream string) http.Handler {
	u := &url.URL{Scheme: "http", Host: upstream}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        2048,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		ErrorLog: log.New(io.Discard, "", 0), // a round ends mid-request: not news
	}
}

// listen serves h on a loopback port until ctx ends.
func listen(ctx context.Context, h http.Handler, closers *[]func()) (string, error) {
	return listenOn(ctx, "127.0.0.1:0", h, closers)
}

// listenOn serves h on addr until ctx ends.
func listenOn(_ context.Context, addr string, h http.Handler, closers *[]func()) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	*closers = append(*closers, func() { srv.Close() })
	return l.Addr().String(), nil
}

// standInLND makes invoices and remembers their preimages: the load
// program pays its own 402 by looking the preimage up.
type standInLND struct {
	invoices.Backend
	mu        sync.Mutex
	preimages map[lntypes.Hash]lntypes.Preimage
}

func (b *standInLND) AddInvoice(_ context.Context, r invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	var p lntypes.Preimage
	_, _ = rand.Read(p[:])
	b.mu.Lock()
	b.preimages[p.Hash()] = p
	b.mu.Unlock()
	return invoices.Invoice{PaymentHash: p.Hash(), PaymentRequest: "lnbcrt100n1standin" + p.Hash().String()[:16], ExpiresAt: time.Now().Add(r.Expiry)}, nil
}

func (b *standInLND) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{Pubkey: "02" + fmt.Sprintf("%064x", 1)}, nil
}

func (b *standInLND) preimage(h lntypes.Hash) (lntypes.Preimage, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.preimages[h]
	return p, ok
}

// serveOnly serves without loading: the upstream alone (-serve upstream),
// or the embedded gate and bare proxy, whose URLs and token it prints as
// one JSON line, until SIGINT or SIGTERM.
func serveOnly(o options, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	switch o.serve {
	case "upstream":
		up, err := startUpstream(ctx, addr, o.size, &closers)
		if err != nil {
			return err
		}
		fmt.Printf("{\"upstream\":%q}\n", "http://"+up)
	case "gate":
		gateURL, directURL, proxyURL, auth, cleanup, err := embedded(ctx, o.upstream, o.size, o.free)
		if err != nil {
			return err
		}
		closers = append(closers, cleanup)
		out, _ := json.Marshal(map[string]string{"gate": gateURL, "direct": directURL, "proxy": proxyURL, "authorization": auth})
		fmt.Println(string(out))
	default:
		return fmt.Errorf("-serve %q: want upstream or gate", o.serve)
	}
	<-ctx.Done()
	return nil
}
