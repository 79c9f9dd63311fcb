package apiclient_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// A producer's backend creates a challenge for a resource and, once the
// buyer presents the token, verifies it.
func Example() {
	l402d, wallet := startL402d()
	baseURL := l402d.URL // e.g. http://127.0.0.1:8402
	defer l402d.Close()
	ctx := context.Background()

	// README example begin
	c := &apiclient.Client{BaseURL: baseURL, APIKey: os.Getenv("L402D_API_KEY")}
	ch, err := c.CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: "/api/weather", PriceSats: 50})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("402: pay", ch.PriceSats, "sats for", ch.Resource)

	// The buyer pays ch.Invoice and sends back the preimage.
	preimage := wallet.pay(ch.Invoice)

	v, err := c.Verify(ctx, apiclient.VerifyRequest{Macaroon: ch.Macaroon, Preimage: preimage, Resource: "/api/weather"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid:", v.Valid, v.AmountSats, "sats")

	_, err = c.CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: "/api/weather"})
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code, apiErr.Field)
	}
	// README example end

	// Output:
	// 402: pay 50 sats for /api/weather
	// valid: true 50 sats
	// 400 invalid_field priceSats
}

// TestReadmeShowsExample keeps the README's Go client snippet the one
// Example runs.
func TestReadmeShowsExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, okBegin := strings.Cut(string(src), "// README example begin\n")
	body, _, okEnd := strings.Cut(rest, "\t// README example end")
	if !okBegin || !okEnd {
		t.Fatal("example_test.go lacks the README example markers")
	}
	// The snippet as README shows it: one tab of indentation less.
	snippet := strings.ReplaceAll("\n"+body, "\n\t", "\n")[1:]
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+snippet+"```") {
		t.Errorf("README.md does not show the example of plugin/apiclient/example_test.go; paste:\n%s", snippet)
	}
}

// startL402d serves l402d's real REST API (plugin/api) over a producer
// whose Lightning node is a stand-in: the wallet pays its invoices.
func startL402d() (*httptest.Server, *stubNode) {
	const key = "example-producer-key-0123"
	os.Setenv("L402D_API_KEY", key)
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	node := &stubNode{preimages: map[string]lntypes.Preimage{}}
	p, err := producer.New(producer.Config{Store: store, Backend: node})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	keys, err := api.NewKeys(key, "example-admin-key-0123456")
	if err != nil {
		log.Fatal(err)
	}
	return httptest.NewServer(api.New(api.Config{Keys: keys, Producer: p})), node
}

// stubNode stands in for LND: it mints invoices and, as the buyer's
// wallet, pays them by handing out their preimages.
type stubNode struct {
	invoices.Backend
	mu        sync.Mutex
	preimages map[string]lntypes.Preimage
}

func (n *stubNode) AddInvoice(_ context.Context, r invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var p lntypes.Preimage
	_, _ = rand.Read(p[:])
	inv := "lnbcrt" + p.Hash().String()
	n.preimages[inv] = p
	return invoices.Invoice{PaymentHash: p.Hash(), PaymentRequest: inv, ExpiresAt: time.Now().Add(r.Expiry)}, nil
}

func (n *stubNode) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{Pubkey: "02c0ffee00000000000000000000000000000000000000000000000000000000aa"}, nil
}

// pay returns the preimage of an invoice, as a wallet does once it paid.
func (n *stubNode) pay(invoice string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.preimages[invoice].String()
}
