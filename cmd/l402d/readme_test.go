package main

import (
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
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
