// Package yamlpos places YAML syntax errors. yaml.v3 names the line where
// the broken construct started (0-based for some errors, so often the line
// before) and no column; this package parses the document again with a
// second parser whose errors carry the offending token's line and column.
package yamlpos

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
)

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// Syntax returns where the syntax error err (from yaml.v3 parsing data)
// is: 1-based line and column (0 when unknown) and a message without the
// position, starting "YAML syntax: ".
func Syntax(data []byte, err error) (line, col int, msg string) {
	_, perr := goccyparser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if errors.As(perr, &se) && se.Token != nil && se.Token.Position != nil {
		return se.Token.Position.Line, se.Token.Position.Column, "YAML syntax: " + se.Message
	}
	msg = err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return line, 0, "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")
}
