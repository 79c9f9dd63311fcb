// Command demo is `make run`: it starts a regtest Lightning network,
// l402d beside alice's LND, and shows a paid request flowing end to end,
// then keeps everything running for you to try until Ctrl-C.
//
// It drives the real binaries (bin/l402d, bin/l402cli, built by make) and
// only imports the regtest launcher and the REST API's Go client
// (plugin/apiclient), so what it shows is what a user runs.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/regtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	binDir, workDir, project, mode string
	keep                           bool
}

func run() error {
	o := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if err := ensureBinaries(ctx); err != nil {
		return err
	}
	n, err := startNetwork(ctx, o, log)
	if err != nil {
		return err
	}
	defer removeNetwork(n)

	step("Starting a demo weather API and l402d beside alice's LND, its gate selling the API for 50 sats…")
	upstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer upstream.Close()
	alice, gateAddr, err := startSeller(ctx, o, n, upstream.Addr().String())
	if err != nil {
		return err
	}
	defer alice.stop()

	step("Starting l402d beside bob's LND, to spend")
	bob, err := startL402d(ctx, o, "bob", n.Node("bob"), "--consumer.enable", "--consumer.allow-private")
	if err != nil {
		return err
	}
	defer bob.stop()
	fmt.Printf("   bob's l402d: API http://%s, spend key %s\n", bob.listen, filepath.Join(bob.dataDir, "spend.key"))

	if err := buyForecast(ctx, o, alice, bob, gateAddr); err != nil {
		return err
	}
	if err := paidFlow(ctx, n, alice); err != nil {
		return err
	}

	printHowTo(alice, bob, gateAddr, o)
	if o.keep {
		return nil
	}
	step("Everything keeps running; press Ctrl-C to stop and clean up.")
	<-ctx.Done()
	return nil
}

// parseFlags reads the demo's command line.
func parseFlags() options {
	var o options
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding l402d and l402cli")
	flag.StringVar(&o.workDir, "dir", filepath.Join(".run", "demo"), "state dir of the demo")
	flag.StringVar(&o.project, "project", "l402d-demo", "regtest project name")
	flag.StringVar(&o.mode, "mode", "", "docker or process (default: docker if available)")
	flag.BoolVar(&o.keep, "exit", false, "exit after the paid request instead of waiting for Ctrl-C")
	flag.Parse()
	return o
}

// ensureBinaries finds or builds lnd, lncli, btcd and btcctl at go.mod's
// versions. The first run compiles lnd and btcd for minutes: it says so,
// with progress, instead of sitting silent under the next step.
func ensureBinaries(ctx context.Context) error {
	mod, err := regtest.FindModuleDir(ctx, "go", "")
	if err != nil {
		return err
	}
	bins := regtest.BuildOptions{ModuleDir: mod, Dir: os.Getenv(regtest.EnvBinDir),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	step("Finding or building lnd, lncli, btcd and btcctl at go.mod's versions (a few minutes the first time, cached in .cache/bin after)…")
	_, err = regtest.EnsureBinaries(ctx, bins)
	return err
}

// startNetwork starts the regtest network (btcd, alice, bob, carol).
func startNetwork(ctx context.Context, o options, log *slog.Logger) (*regtest.Network, error) {
	step("Starting a regtest Lightning network (btcd, alice, bob, carol)…")
	t0 := time.Now()
	n, err := regtest.Start(ctx, regtest.Options{
		Mode: regtest.Mode(o.mode), Project: o.project, WorkDir: filepath.Join(o.workDir, "network"), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	fmt.Printf("   network up in %s (%s mode)\n", time.Since(t0).Round(time.Second), n.Mode())
	return n, nil
}

// removeNetwork stops the regtest network and removes it, within two
// minutes even after the demo's context has ended.
func removeNetwork(n *regtest.Network) {
	step("Removing the regtest network…")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = n.Stop(sctx)
}

// startSeller starts l402d beside alice's LND with its gate selling the
// upstream at upstreamAddr, and returns it and the gate's address.
func startSeller(ctx context.Context, o options, n *regtest.Network, upstreamAddr string) (*daemon, string, error) {
	gateAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	services, err := writeServices(o.workDir, upstreamAddr)
	if err != nil {
		return nil, "", err
	}
	d, err := startL402d(ctx, o, "alice", n.Node("alice"), "--gate.listen", gateAddr, "--gate.services", services)
	if err != nil {
		return nil, "", err
	}
	fmt.Printf("   alice's l402d: API http://%s, gate http://%s (services file %s)\n", d.listen, gateAddr, services)
	return d, gateAddr, nil
}

// buyForecast has bob buy the forecast through his own node, ask again
// (the cached token covers it), and waits until alice's node has
// recorded the sale.
func buyForecast(ctx context.Context, o options, alice, bob *daemon, gateAddr string) error {
	url := "http://" + gateAddr + "/api/weather/forecast"
	step("Bob buys the forecast through his own node: l402cli get " + url)
	if err := l402cli(ctx, o, bob, "get", url); err != nil {
		return err
	}
	step("Bob asks again: the cached token covers it, nothing is paid")
	if err := l402cli(ctx, o, bob, "get", url); err != nil {
		return err
	}
	for _, s := range []struct{ path, what string }{
		{"/api/weather-mpp/today", "only MPP (the Payment scheme Aperture and lnget speak)"},
		{"/api/weather-x402/today", "only x402 with Lightning"},
	} {
		step("Bob buys from a service that speaks " + s.what + ": one payment, one request")
		if err := l402cli(ctx, o, bob, "get", "http://"+gateAddr+s.path); err != nil {
			return err
		}
	}
	step("Alice's node recorded the sales")
	return waitRevenue(ctx, alice, 60)
}

// paidFlow creates a challenge on alice's l402d, pays it from bob's LND
// through carol and verifies the token.
func paidFlow(ctx context.Context, n *regtest.Network, d *daemon) error {
	step("The seed API: an agent asks alice's l402d for a challenge, 50 sats for /api/weather/forecast")
	ch, err := d.api.CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: "/api/weather/forecast", PriceSats: 50, Description: "7-day forecast"})
	if err != nil {
		return err
	}
	fmt.Printf("   invoice   %s…\n   macaroon  %s…\n", ch.Invoice[:40], ch.Macaroon[:40])

	step("Bob pays the invoice from his own LND, routed through carol")
	bob, err := n.Client("bob")
	if err != nil {
		return err
	}
	defer bob.Close()
	carol, err := hex.DecodeString(n.Node("carol").Pubkey)
	if err != nil {
		return err
	}
	p, err := bob.Pay(ctx, &routerrpc.SendPaymentRequest{PaymentRequest: ch.Invoice, FeeLimitSat: 10, TimeoutSeconds: 60, LastHopPubkey: carol})
	if err != nil {
		return err
	}
	fmt.Printf("   paid %d sats (fee %d msat), preimage %s…\n", p.ValueSat, p.FeeMsat, p.PaymentPreimage[:16])

	step("Bob presents the L402 token; alice's l402d verifies it (without asking LND)")
	v, err := d.api.Verify(ctx, apiclient.VerifyRequest{Macaroon: ch.Macaroon, Preimage: p.PaymentPreimage})
	if err != nil {
		return err
	}
	out, _ := json.Marshal(v)
	fmt.Printf("   %s\n", out)
	if !v.Valid {
		return errors.New("the paid token did not verify")
	}
	return nil
}

func printHowTo(alice, bob *daemon, gate string, o options) {
	step("Try it yourself:")
	fmt.Printf(`   alice's API key:  %[1]s/api.key (admin: %[1]s/admin.key)
   create:           curl -s -X POST http://%[2]s/api/l402/challenges -H "X-API-Key: $(cat %[1]s/api.key)" -d '{"resource":"/x","priceSats":21}'
   the gate (402):   curl -si http://%[3]s/api/weather/forecast
   bob's spend key:  %[6]s/spend.key (l402cli reads it from --datadir; the producer key api.key cannot pay)
   buy as bob:       %[4]s/l402cli --rpcserver %[5]s --datadir %[6]s get http://%[3]s/api/weather/today
   bob's balance:    curl -s http://%[5]s/api/consumer/balance -H "X-API-Key: $(cat %[6]s/spend.key)"
   dashboard:        http://%[2]s/dashboard (sign in with alice's api.key)
   health:           curl -s http://%[2]s/healthz -H "X-API-Key: $(cat %[1]s/api.key)"
`, alice.dataDir, alice.listen, gate, o.binDir, bob.listen, bob.dataDir)
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

// daemon is an l402d process.
type daemon struct {
	cmd              *exec.Cmd
	listen, dataDir  string
	apiKey, adminKey string
	// api is the REST API with the producer key.
	api *apiclient.Client
}

func startL402d(ctx context.Context, o options, name string, node *regtest.Node, extra ...string) (*daemon, error) {
	dir, err := filepath.Abs(filepath.Join(o.workDir, name))
	if err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d := &daemon{listen: listen, dataDir: filepath.Join(dir, "data")}
	args := append([]string{
		"--datadir", d.dataDir, "--listen", listen, "--network", "regtest",
		"--lnd.host", node.RPCAddr, "--lnd.tlscertpath", node.TLSCertPath, "--lnd.macaroondir", node.MacaroonDir,
	}, extra...)
	logf, err := os.Create(filepath.Join(dir, "l402d.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(filepath.Join(o.binDir, "l402d"), args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting l402d (run `make build` first): %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := (&apiclient.Client{BaseURL: "http://" + listen}).Healthz(ctx, false); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.stop()
			return nil, fmt.Errorf("l402d did not start; see %s", logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range []struct {
		dst  *string
		file string
	}{{&d.apiKey, "api.key"}, {&d.adminKey, "admin.key"}} {
		b, err := os.ReadFile(filepath.Join(d.dataDir, k.file))
		if err != nil {
			return nil, err
		}
		*k.dst = strings.TrimSpace(string(b))
	}
	d.api = &apiclient.Client{BaseURL: "http://" + listen, APIKey: d.apiKey}
	return d, nil
}

func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_ = d.cmd.Wait()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startUpstream serves a small weather API on loopback: the service the
// gate sells.
func startUpstream() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/{api}/{day}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"city":"New York","day":%q,"forecast":["Sunny, 72F","Partly cloudy, 68F","Rain, 61F"]}`+"\n", r.PathValue("day"))
	})
	go func() { _ = http.Serve(l, mux) }()
	return l, nil
}

// writeServices writes the gate's services file: the weather API at 50
// sats per token, valid an hour, offered in all three schemes (bob's
// consumer prefers the reusable L402 token), and the same API sold only
// as single-use MPP charges and only as x402 payments, at 5 sats each.
func writeServices(dir, upstream string) (string, error) {
	p, err := filepath.Abs(filepath.Join(dir, "services.yaml"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	body := fmt.Sprintf(`services:
  - name: weather
    path: /api/weather/*
    upstream: http://%[1]s
    price: 50
    token_validity: 1h
    description: 7-day forecast
  - name: weather-mpp
    path: /api/weather-mpp/*
    upstream: http://%[1]s
    price: 5
    schemes: [mpp]
    description: one forecast, paid as an MPP charge
  - name: weather-x402
    path: /api/weather-x402/*
    upstream: http://%[1]s
    price: 5
    schemes: [x402]
    description: one forecast, paid with x402
`, upstream)
	return p, os.WriteFile(p, []byte(body), 0o600)
}

// l402cli runs bin/l402cli against a daemon and shows its output.
func l402cli(ctx context.Context, o options, d *daemon, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(o.binDir, "l402cli"), append([]string{"--rpcserver", d.listen, "--datadir", d.dataDir}, args...)...)
	cmd.Stdout, cmd.Stderr = indent{os.Stdout}, indent{os.Stdout}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("l402cli %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// waitRevenue waits until the daemon's stats show at least sats of
// revenue, which the settlement watcher records moments after payment.
func waitRevenue(ctx context.Context, d *daemon, sats int64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := d.api.Stats(ctx, time.Time{}, time.Time{}); err == nil && st.Total.RevenueSats >= sats {
			fmt.Printf("   %d challenge(s) settled, revenue %d sats\n", st.Total.Settled, st.Total.RevenueSats)
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the sale was not recorded within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// indent prefixes every line it writes, to set tool output apart.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	_, err := io.WriteString(i.w, "   "+strings.ReplaceAll(s, "\n", "\n   ")+"\n")
	return len(p), err
}
