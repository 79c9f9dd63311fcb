package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/metrics"
)

// TestREADMEDocumentsEveryFlag keeps README.md true: each of l402d's
// flags and its environment variable must be in it.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	app := newApp()
	flags := append([]cli.Flag(nil), app.Flags...)
	for _, c := range app.Commands {
		flags = append(flags, c.Flags...)
		if !strings.Contains(readme, "l402d "+c.Name) {
			t.Errorf("README.md does not mention the subcommand `l402d %s`", c.Name)
		}
	}
	for _, f := range flags {
		name := f.Names()[0]
		if !strings.Contains(readme, "`--"+name+"`") && !strings.Contains(readme, "--"+name+" ") {
			t.Errorf("README.md does not document --%s", name)
		}
		if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
			for _, e := range ev.GetEnvVars() {
				if !strings.Contains(readme, e) {
					t.Errorf("README.md does not document %s (--%s)", e, name)
				}
			}
		}
	}
}

// TestREADMEDocumentsEveryMetric: each of l402d's own Prometheus metrics
// must be in README.md's metrics table.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	m := metrics.New()
	v := reflect.ValueOf(m).Elem()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			name := fqName.FindStringSubmatch(d.String())
			if name == nil {
				t.Fatalf("no name in %s", d)
			}
			n++
			if !strings.Contains(readme, "`"+name[1]+"`") {
				t.Errorf("README.md does not document the metric %s", name[1])
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d metrics: the test no longer sees them", n)
	}
}
