//go:build itest

package itest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// testCA is a certificate authority of the test's own, as a company or a
// node runner with a private CA has.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a server certificate for host.
func (ca *testCA) serverCert(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

// tlsFront serves h over TLS with cert on every interface (the container
// reaches it through the docker network's gateway) and returns its port.
func tlsFront(t *testing.T, cert tls.Certificate, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	must(t, err)
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestImageBuysOverHTTPS: the image, on the regtest docker network beside
// bob's LND, buys from alice's l402d gate served over TLS with a
// certificate from a CA of the test's own, which it trusts the way the
// README tells a user to (mount the CA's PEM, point SSL_CERT_FILE at it).
// The payment goes through bob's LND to alice's; a second service whose
// certificate comes from a CA the container does not trust is refused
// before anything is paid.
func TestImageBuysOverHTTPS(t *testing.T) {
	n := imageNet(t)
	t0 := time.Now()

	// The seller: alice's l402d gate in front of a small upstream, behind
	// a TLS front (as nginx or Caddy would be) for the host seller.test.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "paid content of %s over https", r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	g := startGateDaemon(t, fmt.Sprintf("services:\n  - name: tlsshop\n    path: /shop/*\n    upstream: %s\n    price: 21\n", upstream.URL))
	gateURL, _ := url.Parse("http://" + g.gate)
	front := httputil.NewSingleHostReverseProxy(gateURL)
	const host = "seller.test"
	ca, otherCA := newTestCA(t, "l402d itest CA"), newTestCA(t, "a CA nobody installed")
	port := tlsFront(t, ca.serverCert(t, host), front)
	untrustedPort := tlsFront(t, otherCA.serverCert(t, host), front)

	// The buyer: the image with spending on, bob's LND files mounted
	// read-only, and the CA installed as a user would.
	dir := t.TempDir()
	lndFiles, data, caDir := filepath.Join(dir, "lnd"), filepath.Join(dir, "data"), filepath.Join(dir, "ca")
	for _, d := range []string{lndFiles, data, caDir} {
		must(t, os.MkdirAll(d, 0o700))
	}
	bob := n.Node("bob")
	copyFile(t, bob.TLSCertPath, filepath.Join(lndFiles, "tls.cert"))
	copyFile(t, bob.AdminMacaroonPath, filepath.Join(lndFiles, "admin.macaroon"))
	must(t, os.WriteFile(filepath.Join(caDir, "my-ca.pem"), ca.pem, 0o644))
	listen := freeAddr(t)
	name := "l402d-https-" + strings.ToLower(n.Project())
	dockerRun(t, name,
		"--user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()),
		"--network", n.DockerNetwork(), "-p", listen+":8402",
		"--add-host", host+":"+dockerGateway(t),
		"-v", data+":/data", "-v", lndFiles+":/lnd:ro", "-v", caDir+":/etc/l402d-ca:ro",
		"-e", "SSL_CERT_FILE=/etc/l402d-ca/my-ca.pem",
		imageTag,
		"--network", "regtest", "--lnd.host", "bob:10009",
		"--lnd.tlscertpath", "/lnd/tls.cert", "--lnd.macaroonpath", "/lnd/admin.macaroon",
		// seller.test resolves to the docker gateway, a private address.
		"--consumer.enable", "--consumer.allow-private",
	)
	d := &daemon{t: t, name: name, listen: listen, dataDir: data}
	waitFor(t, 60*time.Second, "the container to reach bob's LND", func() error {
		key, err := os.ReadFile(filepath.Join(data, "spend.key"))
		if err != nil {
			return err
		}
		h, err := d.api(strings.TrimSpace(string(key))).Healthz(t.Context(), false)
		if err != nil {
			return err
		}
		if !h.LND.Up {
			return fmt.Errorf("LND down")
		}
		return nil
	})
	spend := d.spendKey(t)

	// A CA it was not given: refused at the TLS handshake, nothing paid.
	code, res := d.callKey(t, spend, "POST", "/api/consumer/access", map[string]any{"url": fmt.Sprintf("https://%s:%s/shop/x", host, untrustedPort)})
	if code == 200 || !strings.Contains(fmt.Sprint(res), "certificate") {
		t.Fatalf("untrusted CA: %d %v", code, res)
	}

	u := fmt.Sprintf("https://%s:%s/shop/weather", host, port)
	code, res = d.callKey(t, spend, "POST", "/api/consumer/access", map[string]any{"url": u})
	pay := obj(res["payment"])
	if code != 200 || res["paid"] != true || res["body"] != "paid content of /shop/weather over https" || pay["state"] != "succeeded" || num(pay["amountSats"]) != 21 {
		t.Fatalf("access %s: %d %v", u, code, res)
	}
	hash := str(pay["paymentHash"])
	if ps := bobPayments(t, hash); len(ps) != 1 || ps[0].Status != lnrpc.Payment_SUCCEEDED || ps[0].ValueSat != 21 {
		t.Fatalf("bob's LND has for %s: %v", hash, ps)
	}
	waitSettled(t, g.daemon, hash, 21)
	// The token is reused over the same TLS connection path, unpaid.
	code, res = d.callKey(t, spend, "POST", "/api/consumer/access", map[string]any{"url": u})
	if code != 200 || res["paid"] != false || res["fromCache"] != true {
		t.Fatalf("second access: %d %v", code, res)
	}
	t.Logf("the image bought over HTTPS (own CA via SSL_CERT_FILE) through bob's LND in %v", time.Since(t0).Round(time.Millisecond))
}
