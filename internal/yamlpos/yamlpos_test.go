package yamlpos

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSyntax(t *testing.T) {
	for doc, want := range map[string]struct {
		line, col int
		msg       string
	}{
		"a:\n  b: [\nc: x\n":   {2, 6, "YAML syntax: sequence end token ']' not found"},
		"a: 1\nb:\n\t- x\n":    {3, 1, "YAML syntax: found character '\t' that cannot start any token"},
		"a: {b: 1\nc: 2\n":     {2, 1, "YAML syntax: ',' or '}' must be specified"},
		"rules:\n  - id: 'x\n": {2, 9, "YAML syntax: could not find end character of single-quoted text"},
	} {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(doc), &n)
		if err == nil {
			t.Fatalf("%q parsed", doc)
		}
		line, col, msg := Syntax([]byte(doc), err)
		if line != want.line || col != want.col || msg != want.msg {
			t.Errorf("%q: %d:%d %q, want %d:%d %q (yaml.v3 said %v)", doc, line, col, msg, want.line, want.col, want.msg, err)
		}
	}
}
