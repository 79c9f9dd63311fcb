package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	shared := `{"Action":"run","Test":"TestA"}
{"Action":"pass","Test":"TestA"}
{"Action":"fail","Test":"TestB"}
{"Action":"pass","Test":"TestB"}
{"Action":"skip","Test":"TestC"}
{"Action":"output","Output":"not json at all"}
garbage
{"Action":"fail"}
`
	rep := report{}
	parseEvents(strings.NewReader(shared), func(ev event) { rep.add("shared", ev) })
	parseEvents(strings.NewReader(`{"Action":"pass","Test":"TestB"}`), func(ev event) { rep.add("fresh", ev) })

	var out strings.Builder
	flaky := rep.print(&out, []string{"shared", "fresh"})
	if flaky != 1 {
		t.Errorf("flaky = %d, want 1 (TestB)\n%s", flaky, out.String())
	}
	for _, want := range []string{"TestA  1/1", "TestB  1/2 FLAKY  1/1", "TestC  0/0 (1 skipped)"} {
		if !strings.Contains(squeeze(out.String()), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// squeeze collapses runs of spaces to two, as tabwriter's padding varies.
func squeeze(s string) string {
	for strings.Contains(s, "   ") {
		s = strings.ReplaceAll(s, "   ", "  ")
	}
	return s
}
