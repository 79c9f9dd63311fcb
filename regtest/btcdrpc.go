package regtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// btcdClient is a minimal JSON-RPC client for the few btcd calls the
// launcher needs (block count, generate). It opens a new TLS connection per
// call, so a restarted btcd needs no reconnect logic.
type btcdClient struct {
	url, user, pass string
	http            *http.Client
}

func newBtcdClient(addr, user, pass, certPath string) (*btcdClient, error) {
	pemBytes, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading btcd RPC certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no certificate in %s", certPath)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	return &btcdClient{
		url:  "https://" + addr + "/",
		user: user,
		pass: pass,
		http: &http.Client{Transport: tr, Timeout: 2 * time.Minute},
	}, nil
}

// call invokes method with params and decodes the result into result.
func (c *btcdClient) call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("btcd %s: reading response: %w", method, err)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("btcd %s: HTTP %s: %.200s", method, resp.Status, raw)
	}
	if out.Error != nil {
		return fmt.Errorf("btcd %s: RPC error %d: %s", method, out.Error.Code, out.Error.Message)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(out.Result, result); err != nil {
		return fmt.Errorf("btcd %s: decoding result: %w", method, err)
	}
	return nil
}

// BlockCount returns the height of btcd's best chain.
func (c *btcdClient) BlockCount(ctx context.Context) (int64, error) {
	var n int64
	err := c.call(ctx, "getblockcount", nil, &n)
	return n, err
}

// Generate mines n blocks to btcd's --miningaddr and returns their hashes.
func (c *btcdClient) Generate(ctx context.Context, n int) ([]string, error) {
	var hashes []string
	err := c.call(ctx, "generate", []any{n}, &hashes)
	return hashes, err
}

// BestBlockHash returns the hash of btcd's best block.
func (c *btcdClient) BestBlockHash(ctx context.Context) (string, error) {
	var h string
	err := c.call(ctx, "getbestblockhash", nil, &h)
	return h, err
}

// ConnectPeer makes btcd open a temporary connection to the peer at addr.
func (c *btcdClient) ConnectPeer(ctx context.Context, addr string) error {
	return c.call(ctx, "node", []any{"connect", addr, "temp"}, nil)
}
