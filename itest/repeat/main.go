// Command repeat runs the integration tests several times and reports each
// test's pass rate, to find the tests that pass only sometimes.
//
// It runs the suite in two ways (-mode both, the default):
//
//   - shared: one `go test -count=N`, so every test runs N times on the
//     one regtest network its TestMain starts (what a test leaves behind
//     meets the next run);
//   - fresh: N separate `go test -count=1` runs, each on a new network
//     (what only a cold start shows).
//
// Each run's `go test -json` output is kept under -dir, so a failure can be
// read in full. The exit status is 1 if any test failed at least once.
//
//	go run ./itest/repeat -n 5            # make itest-repeat N=5
//	go run ./itest/repeat -n 3 -run Fault -mode fresh
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.n, "n", 5, "how many times to run each test in each mode")
	flag.StringVar(&o.mode, "mode", "both", "shared (one network, -count=N), fresh (N networks) or both")
	flag.StringVar(&o.run, "run", "", "go test -run pattern (default: every test)")
	flag.StringVar(&o.pkg, "pkg", "./itest/", "the package of the integration tests")
	flag.StringVar(&o.tags, "tags", "itest", "build tags")
	flag.StringVar(&o.timeout, "timeout", "90m", "go test -timeout of each run")
	flag.StringVar(&o.goCmd, "go", "go", "the go command")
	flag.StringVar(&o.dir, "dir", ".run/itest-repeat", "where each run's go test -json output is kept")
	flag.Parse()
	if o.n < 1 {
		fatalf("-n %d: run each test at least once", o.n)
	}
	var modes []string
	switch o.mode {
	case "both":
		modes = []string{"shared", "fresh"}
	case "shared", "fresh":
		modes = []string{o.mode}
	default:
		fatalf("-mode %q: use shared, fresh or both", o.mode)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	rep := report{}
	for _, mode := range modes {
		if err := o.runMode(mode, rep); err != nil {
			fatalf("%v", err)
		}
	}
	flaky := rep.print(os.Stdout, modes)
	if flaky > 0 {
		fmt.Printf("\n%d test(s) failed at least once; each run's output is in %s\n", flaky, o.dir)
		os.Exit(1)
	}
	fmt.Printf("\nevery test passed every run (%s)\n", strings.Join(modes, " and "))
}

type options struct {
	n                                    int
	mode, run, pkg, tags, timeout, goCmd string
	dir                                  string
}

// runMode runs the suite as mode says and adds the outcomes to rep.
func (o options) runMode(mode string, rep report) error {
	runs, count := o.n, 1
	if mode == "shared" {
		runs, count = 1, o.n
	}
	for i := 1; i <= runs; i++ {
		out := filepath.Join(o.dir, fmt.Sprintf("%s-%d.json", mode, i))
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "== %s run %d/%d (-count=%d), output in %s\n", mode, i, runs, count, out)
		fails := 0
		code, err := o.goTest(count, out, func(ev event) {
			if ev.Action == "fail" {
				fails++
			}
			rep.add(mode, ev)
		})
		if err != nil {
			return err
		}
		// A suite that fails with no failing test failed in TestMain (the
		// network did not start, a build error, a timeout): count it too.
		suite := event{Test: "(suite)", Action: "pass"}
		if code != 0 && fails == 0 {
			suite.Action = "fail"
		}
		rep.add(mode, suite)
		fmt.Fprintf(os.Stderr, "== %s run %d/%d: exit %d after %v\n", mode, i, runs, code, time.Since(t0).Round(time.Second))
	}
	return nil
}

// goTest runs go test -json once, keeping its output in path and passing
// every test event to add. A failing suite is an outcome, not an error.
func (o options) goTest(count int, path string, add func(event)) (int, error) {
	args := []string{"test", "-json", "-tags", o.tags, "-count", fmt.Sprint(count), "-timeout", o.timeout}
	if o.run != "" {
		args = append(args, "-run", o.run)
	}
	args = append(args, o.pkg)
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cmd := exec.Command(o.goCmd, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s %s: %w", o.goCmd, strings.Join(args, " "), err)
	}
	parseEvents(io.TeeReader(stdout, f), add)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// event is the part of a go test -json line the report needs.
type event struct {
	Action string
	Test   string
}

// parseEvents calls add for each test's pass, fail or skip in r.
func parseEvents(r io.Reader, add func(event)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			add(ev)
		}
	}
}

// tally counts one test's outcomes in one mode.
type tally struct{ pass, fail, skip int }

// report holds the tallies by test, then by mode.
type report map[string]map[string]*tally

func (r report) add(mode string, ev event) {
	byMode := r[ev.Test]
	if byMode == nil {
		byMode = map[string]*tally{}
		r[ev.Test] = byMode
	}
	t := byMode[mode]
	if t == nil {
		t = &tally{}
		byMode[mode] = t
	}
	switch ev.Action {
	case "pass":
		t.pass++
	case "fail":
		t.fail++
	case "skip":
		t.skip++
	}
}

// print writes one row per test with its passes over runs in each mode and
// returns how many tests failed at least once.
func (r report) print(w io.Writer, modes []string) int {
	names := make([]string, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "test\t%s\t\n", strings.Join(modes, "\t"))
	flaky := 0
	for _, name := range names {
		row := []string{name}
		failed := false
		for _, m := range modes {
			t := r[name][m]
			if t == nil {
				row = append(row, "-")
				continue
			}
			cell := fmt.Sprintf("%d/%d", t.pass, t.pass+t.fail)
			if t.skip > 0 {
				cell += fmt.Sprintf(" (%d skipped)", t.skip)
			}
			if t.fail > 0 {
				cell += " FLAKY"
				failed = true
			}
			row = append(row, cell)
		}
		if failed {
			flaky++
		}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
	}
	tw.Flush()
	return flaky
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "repeat: "+format+"\n", args...)
	os.Exit(2)
}
