package plugin_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArchitectureReferences keeps docs/ARCHITECTURE.md true: every
// `file.go:Symbol` it cites must be a declaration in that file, so a
// newcomer who follows the page always finds what it names.
func TestArchitectureReferences(t *testing.T) {
	root := filepath.Join("..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile("`([a-z0-9_/]+\\.go):([^`]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 20 {
		t.Fatalf("found only %d file:Symbol references; the pattern or the page changed", len(refs))
	}
	decls := map[string]map[string]bool{}
	for _, ref := range refs {
		file, sym := ref[1], ref[2]
		if decls[file] == nil {
			decls[file] = declarations(t, filepath.Join(root, file))
		}
		if !decls[file][sym] {
			t.Errorf("docs/ARCHITECTURE.md cites %s:%s, but %s declares no %s", file, sym, file, sym)
		}
	}
	// Plain file and folder mentions must exist too.
	for _, m := range regexp.MustCompile("`((?:[a-z0-9_]+/)+[a-zA-Z0-9_.]*)`").FindAllStringSubmatch(string(doc), -1) {
		p := m[1]
		if strings.Contains(p, "*") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("docs/ARCHITECTURE.md mentions %s, which does not exist", p)
		}
	}
}

// declarations lists a Go file's top-level names: funcs and types as
// Name, methods as (*T).Name or (T).Name.
func declarations(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Errorf("docs/ARCHITECTURE.md cites %s: %v", path, err)
		return map[string]bool{}
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				out[d.Name.Name] = true
				continue
			}
			switch rt := d.Recv.List[0].Type.(type) {
			case *ast.StarExpr:
				if id, ok := rt.X.(*ast.Ident); ok {
					out["(*"+id.Name+")."+d.Name.Name] = true
				}
			case *ast.Ident:
				out["("+rt.Name+")."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out[n.Name] = true
					}
				}
			}
		}
	}
	return out
}
