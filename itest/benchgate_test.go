//go:build itest

package itest

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// BenchmarkGateVsProxies prints a same-run table of paid (or merely
// proxied) request throughput and latency, measured with wrk, for:
//
//   - direct: the loopback upstream (a Go HTTP server answering 256 bytes);
//   - nginx as a bare proxy in front of it (no payment check), tuned as an
//     operator would (upstream keepalive, HTTP/1.1, access_log off), and
//     with nginx's default proxy settings (HTTP/1.0, a connection per
//     request to the upstream);
//   - Aperture v0.5.0 (the real binary, built from the module proxy by the
//     nested module itest/interop/aperture) with a token bob paid;
//   - l402d's gate with a token bob paid;
//   - nginx with auth_request asking l402d's /auth (docs/gate.md's
//     recipe), with the same token.
//
// Each load shape (wrk -t1 -c<n>) runs ROUNDS rounds; a round runs every
// target once, after a 1 s warm-up, in an order that rotates from round to
// round. nginx runs with worker_processes auto (Debian's nginx.conf has
// it; L402D_BENCH_NGINX_WORKERS sets it) for every nginx row, and a second
// nginx with the other setting ("1") adds a bare-proxy row, so the table
// shows which is faster (in two short runs on a loaded 2-CPU machine, auto
// passed 7–18 % more at -c32; at -c1 the runs disagreed, −5 % and +35 %). It
// reports per target the median req/s across rounds with the
// min–max, p50 and p99 (medians across rounds), then the ratios of the
// gate to the proxies, as Markdown for docs/PERFORMANCE.md. Any non-2xx
// response or socket error (but the final timeouts) fails the benchmark.
//
// Knobs: L402D_BENCH_ROUNDS (3), L402D_BENCH_DURATION (5s per target per
// round), L402D_BENCH_CONNS ("32,1"), L402D_BENCH_NGINX_WORKERS ("1" or
// "auto"), and L402D_BENCH_OUT (a file to write the table to as well).
//
// Run: make bench-gate  (go test -tags itest -run '^$' -bench GateVsProxies -benchtime 1x -v ./itest/)
func BenchmarkGateVsProxies(b *testing.B) {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := lookBin(tool); err != nil {
			b.Fatalf("%s is not installed (make deps load-deps installs it): %v", tool, err)
		}
	}
	rounds := envInt(b, "L402D_BENCH_ROUNDS", 3)
	dur := envDuration(b, "L402D_BENCH_DURATION", 5*time.Second)
	conns := envConns(b, "L402D_BENCH_CONNS", "32,1")
	workers := cmp.Or(os.Getenv("L402D_BENCH_NGINX_WORKERS"), "auto")
	loadStart := readLoadavg()

	upstream := startBenchUpstream(b)
	g := startGateDaemon(b, fmt.Sprintf("services:\n  - name: bench\n    upstream: http://%s\n    price: 10\n", upstream),
		"--gate.token-rate", "0", "--log.level", "warn", "--trusted-proxy", "127.0.0.1/32")
	gateAuth, _ := g.buy(b, "/bench", 10)

	aperture := startAperture(b, ensureAperture(b), upstream)
	apertureAuth := buyAperture(b, aperture, "/bench")

	ng := startBenchNginx(b, workers, upstream, g.gate)
	// The other worker_processes setting, for its bare proxy row only.
	otherWorkers := "1"
	if workers == "1" {
		otherWorkers = "auto"
	}
	ngOther := startBenchNginx(b, otherWorkers, upstream, g.gate)

	targets := []benchTarget{
		{name: "direct (Go upstream, 256 B)", addr: upstream, auth: gateAuth},
		{name: "nginx, upstream keepalive", addr: ng.keepalive, auth: gateAuth},
		{name: "nginx, no upstream keepalive (default)", addr: ng.plain, auth: gateAuth},
		{name: "Aperture v0.5.0, paid L402", addr: aperture, auth: apertureAuth},
		{name: "l402d gate, paid L402", addr: g.gate, auth: gateAuth},
		{name: "nginx auth_request → l402d /auth, paid L402", addr: ng.authRequest, auth: gateAuth},
		{name: "nginx, upstream keepalive, worker_processes " + otherWorkers, addr: ngOther.keepalive, auth: gateAuth},
	}
	const (
		tDirect = iota
		tNginxKeepalive
		tNginxPlain
		tAperture
		tGate
		tAuthRequest
		tNginxOther
	)
	for _, t := range targets {
		checkBenchTarget(b, t)
	}

	// results[c][t] are the rounds of target t at conns[c].
	results := make([][][]wrkResult, len(conns))
	for ci, c := range conns {
		results[ci] = make([][]wrkResult, len(targets))
		for r := range rounds {
			for i := range targets {
				ti := (i + r) % len(targets)
				t := targets[ti]
				runWrk(b, t, c, time.Second) // warm-up
				res := runWrk(b, t, c, dur)
				b.Logf("-c%d round %d: %-45s %9.0f req/s  p50 %v  p99 %v", c, r+1, t.name, res.rps, res.p50, res.p99)
				results[ci][ti] = append(results[ci][ti], res)
			}
		}
	}

	// The table.
	var md strings.Builder
	fmt.Fprintf(&md, "### The gate against nginx and Aperture (`make bench-gate`, one run)\n\n")
	fmt.Fprintf(&md, "%s\n\n", benchFacts(b, workers, loadStart))
	fmt.Fprintf(&md, "wrk -t1 with `--latency`, %d round(s) × %v per target and load shape, each after a 1 s warm-up; a round runs every target once, the order rotating from round to round. "+
		"Every request carries the same `Authorization: L402 …` header; every response was 2xx. "+
		"%s\n\n", rounds, dur, map[bool]string{true: "req/s: median across rounds (min–max); p50, p99: wrk's, median across rounds.", false: "req/s, p50, p99: wrk's, one round."}[rounds > 1])
	md.WriteString("| target |")
	for _, c := range conns {
		fmt.Fprintf(&md, " `-c%d` req/s | p50 | p99 |", c)
	}
	md.WriteString("\n|---|")
	for range conns {
		md.WriteString("---|---|---|")
	}
	md.WriteString("\n")
	for ti, t := range targets {
		fmt.Fprintf(&md, "| %s |", t.name)
		for ci := range conns {
			rs := results[ci][ti]
			lo, hi := minMax(rs, func(r wrkResult) float64 { return r.rps })
			fmt.Fprintf(&md, " %s%s | %s | %s |", kilo(medianOf(rs, func(r wrkResult) float64 { return r.rps })), span(kilo(lo), kilo(hi), "–"),
				micros(medianDur(rs, func(r wrkResult) time.Duration { return r.p50 })), micros(medianDur(rs, func(r wrkResult) time.Duration { return r.p99 })))
		}
		md.WriteString("\n")
	}

	md.WriteString(map[bool]string{true: "\n| ratio (median of the rounds' ratios, min–max) |", false: "\n| ratio (one round) |"}[rounds > 1])
	for _, c := range conns {
		fmt.Fprintf(&md, " `-c%d` |", c)
	}
	md.WriteString("\n|---|")
	for range conns {
		md.WriteString("---|")
	}
	md.WriteString("\n")
	ratioRow := func(label string, num, den int) {
		fmt.Fprintf(&md, "| %s |", label)
		for ci := range conns {
			var rs []float64
			for r := range rounds {
				rs = append(rs, results[ci][num][r].rps/results[ci][den][r].rps)
			}
			lo, hi := slices.Min(rs), slices.Max(rs)
			fmt.Fprintf(&md, " %s%s |", pct(medianF(rs)), span(pct(lo), pct(hi), "–"))
		}
		md.WriteString("\n")
	}
	ratioRow("gate / nginx (upstream keepalive), req/s", tGate, tNginxKeepalive)
	ratioRow("gate / nginx (default), req/s", tGate, tNginxPlain)
	ratioRow("gate / Aperture, req/s", tGate, tAperture)
	ratioRow("gate / direct, req/s", tGate, tDirect)
	ratioRow("nginx auth_request / nginx (default), req/s", tAuthRequest, tNginxPlain)
	ratioRow("nginx auth_request / nginx (upstream keepalive), req/s", tAuthRequest, tNginxKeepalive)
	ratioRow("nginx worker_processes "+otherWorkers+" / "+workers+" (upstream keepalive), req/s", tNginxOther, tNginxKeepalive)
	addedRow := func(label string, other int) {
		fmt.Fprintf(&md, "| %s |", label)
		for ci := range conns {
			var ds []float64
			for r := range rounds {
				ds = append(ds, float64(results[ci][tGate][r].p50-results[ci][other][r].p50))
			}
			fmt.Fprintf(&md, " %s%s |", signedMicros(time.Duration(medianF(ds))),
				span(signedMicros(time.Duration(slices.Min(ds))), signedMicros(time.Duration(slices.Max(ds))), " … "))
		}
		md.WriteString("\n")
	}
	addedRow("gate p50 − nginx (upstream keepalive) p50 (target at `-c1`: ≤ 100 µs)", tNginxKeepalive)
	addedRow("gate p50 − nginx (default) p50", tNginxPlain)
	fmt.Fprintf(&md, "\nLoad average at the start: %s; at the end: %s.\n", loadStart, readLoadavg())

	fmt.Printf("\n%s\n", md.String())
	if out := os.Getenv("L402D_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md.String()), 0o644); err != nil {
			b.Errorf("writing %s: %v", out, err)
		}
	}
	first := results[0]
	b.ReportMetric(medianOf(first[tGate], func(r wrkResult) float64 { return r.rps }), "gate-req/s")
	b.ReportMetric(medianOf(first[tNginxKeepalive], func(r wrkResult) float64 { return r.rps }), "nginx-req/s")
	b.ReportMetric(medianOf(first[tAperture], func(r wrkResult) float64 { return r.rps }), "aperture-req/s")
}

// benchTarget is one row of the table: what wrk loads, with which
// Authorization header.
type benchTarget struct {
	name, addr, auth string
}

func (t benchTarget) url() string { return "http://" + t.addr + "/bench" }

// benchBody is what the upstream answers.
var benchBody = strings.Repeat("x", 256)

// startBenchUpstream runs the loopback upstream of the gate benchmarks
// and returns its address.
func startBenchUpstream(b testing.TB) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, benchBody)
	}), ReadHeaderTimeout: 10 * time.Second}
	go up.Serve(l)
	b.Cleanup(func() { up.Close() })
	return l.Addr().String()
}

// checkBenchTarget sends one request the way wrk will and wants the
// upstream's answer.
func checkBenchTarget(b testing.TB, t benchTarget) {
	b.Helper()
	req, err := http.NewRequestWithContext(testCtx(b, time.Minute), "GET", t.url(), nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", t.auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != benchBody {
		b.Fatalf("%s: GET %s: %d %q, want 200 and the upstream's 256 bytes", t.name, t.url(), resp.StatusCode, tail(string(body), 5))
	}
}

// wrkResult is what one wrk run measured.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
}

// runWrk loads t with wrk -t1 -c<conns> for d and parses its report. A
// non-2xx response or a socket error fails the benchmark; wrk's timeouts
// are tolerated up to one per connection (the requests in flight at the
// end).
func runWrk(b testing.TB, t benchTarget, conns int, d time.Duration) wrkResult {
	b.Helper()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", secs), "--latency", "-H", "Authorization: " + t.auth, t.url()}
	out, err := exec.CommandContext(testCtx(b, d+2*time.Minute), "wrk", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk against %s: %v\n%s", t.name, err, out)
	}
	res, err := parseWrk(string(out), conns)
	if err != nil {
		b.Fatalf("wrk -c%d against %s: %v\n%s", conns, t.name, err, out)
	}
	return res
}

// parseWrk reads Requests/sec, the 50% and 99% latencies and the error
// lines of wrk's --latency report.
func parseWrk(out string, conns int) (wrkResult, error) {
	var r wrkResult
	var requests int64
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("latency %q: %v", line, err)
			}
			if f[0] == "50%" {
				r.p50 = d
			} else {
				r.p99 = d
			}
		case len(f) > 3 && f[1] == "requests" && f[2] == "in":
			requests, _ = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			return r, errors.New("the target answered non-2xx")
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			var c, rd, w, to int
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "Socket errors: connect %d, read %d, write %d, timeout %d", &c, &rd, &w, &to); err != nil {
				return r, fmt.Errorf("socket errors line %q: %v", line, err)
			}
			if c+rd+w > 0 || to > conns {
				return r, fmt.Errorf("socket errors: connect %d, read %d, write %d, timeout %d", c, rd, w, to)
			}
		}
	}
	if r.rps == 0 || r.p50 == 0 || r.p99 == 0 || requests == 0 {
		return r, errors.New("no Requests/sec, 50%, 99% or request count in wrk's report")
	}
	return r, nil
}

// ensureAperture returns Aperture v0.5.0's binary, cached under
// .cache/bin/aperture-v0.5.0/ and built there by the nested module
// itest/interop/aperture (its tool directive pins v0.5.0 with Aperture's
// own dependencies) when it is missing.
func ensureAperture(b testing.TB) string {
	b.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(root, ".cache", "bin", "aperture-v0.5.0", "aperture")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		b.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Dir(bin)), ".aperture-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	b.Logf("building Aperture v0.5.0 into %s (minutes on a cold build cache)", bin)
	build := exec.CommandContext(testCtx(b, 20*time.Minute), "go", "build", "-C", filepath.Join(root, "itest", "interop", "aperture"),
		"-o", filepath.Join(tmp, "aperture"), "github.com/lightninglabs/aperture/cmd/aperture")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building Aperture: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "aperture"), bin); err != nil {
		b.Fatal(err)
	}
	return bin
}

// startAperture runs Aperture as an insecure (plain HTTP) proxy in front
// of upstream, its authenticator on alice's LND, its state in a temp
// sqlite database, with one service priced 10 sat at /bench. It returns
// Aperture's address.
func startAperture(b testing.TB, bin, upstream string) string {
	b.Helper()
	alice := testNet(b).Node("alice")
	dir := b.TempDir()
	listen := freeAddr(b)
	// Aperture reads <basedir>/aperture.yaml; the rest is on flags,
	// which win over the file.
	conf := fmt.Sprintf(`services:
  - name: "bench"
    hostregexp: '.*'
    pathregexp: '^/bench.*$'
    address: "%s"
    protocol: http
    price: 10
`, upstream)
	if err := os.WriteFile(filepath.Join(dir, "aperture.yaml"), []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	startBenchProc(b, "aperture", dir, syscall.SIGTERM, bin,
		"--basedir", dir, "--listenaddr", listen, "--insecure", "--debuglevel", "warn",
		"--dbbackend", "sqlite", "--sqlite.dbfile", filepath.Join(dir, "aperture.db"),
		"--authenticator.network", "regtest", "--authenticator.lndhost", alice.RPCAddr,
		"--authenticator.tlspath", alice.TLSCertPath, "--authenticator.macdir", alice.MacaroonDir)
	waitListening(b, "aperture", dir, listen)
	return listen
}

// buyAperture gets Aperture's 402 for path, has bob pay its invoice and
// returns the Authorization value.
func buyAperture(b testing.TB, addr, path string) string {
	b.Helper()
	r := (&gateDaemon{gate: addr}).get(b, path)
	if r.code != http.StatusPaymentRequired {
		b.Fatalf("Aperture: GET %s unpaid: %d %v %s", path, r.code, r.header, r.raw)
	}
	ch, err := l402.ParseChallenge(r.header)
	if err != nil || ch.Macaroon == "" || !strings.HasPrefix(ch.Invoice, "lnbcrt") {
		b.Fatalf("Aperture's challenge %q: %+v %v", r.header.Values("WWW-Authenticate"), ch, err)
	}
	return "L402 " + ch.Macaroon + ":" + payInvoice(b, "bob", ch.Invoice)
}

// benchNginx are the addresses of one nginx's three servers.
type benchNginx struct {
	keepalive, plain, authRequest string
}

// startBenchNginx runs Debian's nginx as the current user with a temp
// prefix and three servers in front of upstream: a bare proxy as an
// operator tunes it (HTTP/1.1 and a keepalive pool to the upstream), a
// bare proxy with nginx's defaults (HTTP/1.0, a connection per request),
// and docs/gate.md's auth_request recipe asking the gate's /auth.
// workers is worker_processes ("1" or "auto").
func startBenchNginx(b testing.TB, workers, upstream, gate string) benchNginx {
	b.Helper()
	bin, err := lookBin("nginx")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	n := benchNginx{keepalive: freeAddr(b), plain: freeAddr(b), authRequest: freeAddr(b)}
	userLine := ""
	if os.Geteuid() == 0 {
		// As root nginx would hand its workers to nobody.
		userLine = "user root root;"
		if u, err := user.Current(); err == nil {
			if grp, err := user.LookupGroupId(u.Gid); err == nil {
				userLine = fmt.Sprintf("user %s %s;", u.Username, grp.Name)
			}
		}
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes %[1]s;
%[2]s
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    # wrk's connections are never closed after 1,000 requests (nginx's
    # default), as Go's servers never close them.
    keepalive_requests 1000000;

    upstream bench_keepalive {
        server %[4]s;
        keepalive 64;
        keepalive_requests 1000000;
    }

    # The bare proxy, as an operator sets it up.
    server {
        listen %[5]s;
        location / {
            proxy_pass http://bench_keepalive;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    # The bare proxy with nginx's defaults: HTTP/1.0 to the upstream.
    server {
        listen %[6]s;
        location / {
            proxy_pass http://%[4]s;
        }
    }

    # docs/gate.md's forward-auth recipe.
    server {
        listen %[7]s;
%[8]s
    }
}
`, workers, userLine, dir, upstream, n.keepalive, n.plain, n.authRequest, fill(nginxRecipe, gate, upstream))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	// SIGTERM: the master stops its workers before it exits.
	startBenchProc(b, "nginx", dir, syscall.SIGTERM, bin, "-p", dir, "-c", path)
	for _, addr := range []string{n.keepalive, n.plain, n.authRequest} {
		waitListening(b, "nginx", dir, addr)
	}
	return n
}

// startBenchProc runs bin in its own process group with its output in
// <dir>/<name>.out until the benchmark ends: then stop goes to it, and
// after 15 s SIGKILL to its group.
func startBenchProc(b testing.TB, name, dir string, stop syscall.Signal, bin string, args ...string) {
	b.Helper()
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if b.Failed() {
			logs, _ := os.ReadFile(filepath.Join(dir, name+".out"))
			b.Logf("%s output:\n%s", name, tail(string(logs), 40))
		}
	})
}

// waitListening waits until addr accepts HTTP requests, with the
// process's output if it does not.
func waitListening(b testing.TB, name, dir, addr string) {
	b.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, name+".out"))
			elog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("%s does not listen on %s: %v\n%s\n%s", name, addr, err, tail(string(logs), 40), tail(string(elog), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lookBin finds a program on PATH or in /usr/sbin (nginx is there, off a
// user's PATH).
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/" + name)
}

// benchFacts describes the machine and the programs measured.
func benchFacts(b testing.TB, workers, load string) string {
	b.Helper()
	run := func(name string, args ...string) string {
		bin, err := lookBin(name)
		if err != nil {
			return name + ": not found"
		}
		out, _ := exec.Command(bin, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(line)
	}
	cpu := "?"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	wrkV, _, _ := strings.Cut(run("wrk", "-v"), " Copyright")
	return fmt.Sprintf("Machine: %d CPUs (%s), %s; %s; %s (worker_processes %s); %s; Aperture v0.5.0 (sqlite); %s; load average at the start %s.",
		runtime.NumCPU(), cpu, run("uname", "-sr"), run("go", "version"), run("nginx", "-v"), workers, wrkV,
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), load)
}

// readLoadavg returns the 1, 5 and 15 minute load averages.
func readLoadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func envInt(b testing.TB, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(b testing.TB, name string, def time.Duration) time.Duration {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		b.Fatalf("%s=%q: want a duration of at least 1s", name, v)
	}
	return d
}

func envConns(b testing.TB, name, def string) []int {
	b.Helper()
	v := cmp.Or(os.Getenv(name), def)
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want connection counts such as 32,1", name, v)
		}
		out = append(out, n)
	}
	return out
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(rs []wrkResult, f func(wrkResult) float64) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	return medianF(v)
}

func medianDur(rs []wrkResult, f func(wrkResult) time.Duration) time.Duration {
	return time.Duration(medianOf(rs, func(r wrkResult) float64 { return float64(f(r)) }))
}

func minMax(rs []wrkResult, f func(wrkResult) float64) (float64, float64) {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	return slices.Min(v), slices.Max(v)
}

// kilo formats a rate as 12.3k.
func kilo(v float64) string { return fmt.Sprintf("%.1fk", v/1000) }

// pct formats a ratio as a percentage.
func pct(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) }

// micros formats a latency in µs below 1 ms, else in ms.
func micros(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

// span formats a range after a median, " (lo–hi)", or nothing when the
// rounds agree (one round).
func span(lo, hi, sep string) string {
	if lo == hi {
		return ""
	}
	return " (" + lo + sep + hi + ")"
}

func signedMicros(d time.Duration) string {
	if d >= 0 {
		return "+" + micros(d)
	}
	return "−" + micros(-d)
}
