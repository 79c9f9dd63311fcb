// Command paidapi is a Go program that charges for its own HTTP API in
// sats, with the l402d gate as net/http middleware: no proxy in front,
// no hosted service, only the node runner's own LND.
//
//	go run ./examples/paidapi -lnd.host localhost:10009 -lnd.dir ~/.lnd -network mainnet
//
// GET /quotes/today costs 10 sats, /quotes/premium/* 100 sats, and
// /quotes/health is free. An unpaid request gets a 402 with an invoice and
// a macaroon; pay the invoice, then retry with
// "Authorization: L402 <macaroon>:<preimage>" for as long as the token
// lasts (24 hours here).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/gate"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "paidapi:", err)
		os.Exit(1)
	}
}

func run() error {
	home, _ := os.UserHomeDir()
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve the API on")
	dataDir := flag.String("datadir", "paidapi-data", "where the tokens' root keys are kept")
	lndHost := flag.String("lnd.host", "localhost:10009", "LND gRPC host:port")
	lndDir := flag.String("lnd.dir", filepath.Join(home, ".lnd"), "LND's directory")
	network := flag.String("network", "mainnet", "the node's network")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	// The producer: root keys in a local store, invoices on your LND.
	store, err := storage.Open(ctx, storage.DefaultOptions(*dataDir))
	if err != nil {
		return err
	}
	defer store.Close()
	lnd, err := invoices.NewLND(invoices.LNDConfig{
		Address:     *lndHost,
		TLSCertPath: filepath.Join(*lndDir, "tls.cert"),
		MacaroonDir: filepath.Join(*lndDir, "data", "chain", "bitcoin", *network),
		Network:     *network,
	})
	if err != nil {
		return err
	}
	defer lnd.Close()
	prod, err := producer.New(producer.Config{Store: store, Backend: lnd, Logger: log})
	if err != nil {
		return err
	}
	if err := prod.Start(ctx); err != nil {
		return err
	}

	// What is for sale. The same services can come from a YAML file
	// with gate.LoadServices (see docs/gate.md).
	services, err := gate.NewServices(gate.File{Services: []gate.ServiceConfig{{
		Name:          "quotes",
		Path:          "/quotes/*",
		PriceSats:     10,
		Pricing:       []gate.PriceRule{{Path: "/quotes/premium/*", PriceSats: 100}},
		Whitelist:     []string{"/quotes/health"},
		TokenValidity: 24 * time.Hour,
	}}}, gate.ParseOptions{})
	if err != nil {
		return err
	}
	g, err := gate.New(gate.Config{Producer: prod, Lookup: prod, Services: services, Logger: log})
	if err != nil {
		return err
	}

	// The program's own handlers know nothing of payments.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quotes/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /quotes/today", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Stay humble, stack sats.")
	})
	mux.HandleFunc("GET /quotes/premium/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Premium quote %s: running your own node pays.\n", r.PathValue("id"))
	})

	srv := &http.Server{Addr: *listen, Handler: g.Middleware(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("paidapi listening", "addr", *listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
