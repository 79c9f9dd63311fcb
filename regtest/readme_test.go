package regtest

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeExampleInSync checks that README.md shows, line for line, the
// example that itest's TestRegtestExample runs.
func TestReadmeExampleInSync(t *testing.T) {
	src, err := os.ReadFile("../itest/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "\t// README example begin\n", "\t// README example end"
	s := string(src)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("itest/example_test.go lacks the %q and %q markers", strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	var want strings.Builder
	for _, line := range strings.SplitAfter(s[i+len(begin):j], "\n") {
		want.WriteString(strings.TrimPrefix(line, "\t"))
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+want.String()+"```") {
		t.Errorf("regtest/README.md does not show the example of itest/example_test.go; paste:\n%s", want.String())
	}
}
