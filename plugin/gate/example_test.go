package gate_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/gate"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// A Go program charges for its own handlers: the gate wraps them as
// middleware, with a producer over the node's LND. (Compiled, not run:
// it needs an LND; examples/paidapi is the whole program.)
func Example_middleware() {
	if err := serveQuotes(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func serveQuotes(ctx context.Context) error {
	store, err := storage.Open(ctx, storage.DefaultOptions("data"))
	if err != nil {
		return err
	}
	defer store.Close()
	lnd, err := invoices.NewLND(invoices.LNDConfig{Address: "localhost:10009", TLSCertPath: "/home/me/.lnd/tls.cert",
		MacaroonDir: "/home/me/.lnd/data/chain/bitcoin/mainnet", Network: "mainnet"})
	if err != nil {
		return err
	}
	prod, err := producer.New(producer.Config{Store: store, Backend: lnd})
	if err != nil {
		return err
	}
	if err := prod.Start(ctx); err != nil {
		return err
	}
	services, err := gate.ParseServices([]byte(`
services:
  - name: quotes
    path: /quotes/*
    price: 10
    pricing:
      - {path: /quotes/premium/*, price: 100}
    whitelist: [/quotes/health]
`), gate.ParseOptions{})
	if err != nil {
		return err
	}
	g, err := gate.New(gate.Config{Producer: prod, Lookup: prod, Services: services})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quotes/today", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Stack sats.") })
	return http.ListenAndServe("127.0.0.1:8080", g.Middleware(mux))
}

// Every problem in a services file comes back with its line and a fix.
func ExampleParseServices() {
	_, err := gate.ParseServices([]byte(`services:
  - name: weather
    path: /weather/*
    price: 0
    pricing:
      - path: /news/*
        price: 5
`), gate.ParseOptions{Name: "services.yaml"})
	fmt.Println(err)
	// Output:
	// services.yaml:4: services[0].price: is 0 (a price must be at least 1 sat: the price of a token for this service's paths, e.g. price: 10; to serve paths for free, list them under whitelist)
	// services.yaml:6: services[0].pricing[0].path: "/news/*" is outside the service's path "/weather/*" (price only paths this service serves)
}
