package rules

import (
	"fmt"
	"strings"
)

// Template is a parsed alert message: text with {name} placeholders. "{{"
// and "}}" stand for literal braces.
type Template struct {
	src   string
	parts []tmplPart
}

// tmplPart is literal text, or a placeholder when name is set.
type tmplPart struct {
	text   string
	name   string
	filter string // "" or "service" (see templateFilters)
	off    int    // byte offset of the placeholder's "{" in the source
}

// templateFilters are what may follow a placeholder's name after a colon:
// "{src_port:service}" writes the port's service name (see ServiceName).
var templateFilters = map[string]func(string) string{"service": serviceOf}

// TemplateError is a syntax error in a template, at byte Offset.
type TemplateError struct {
	Offset int
	Msg    string
}

// Error returns the message with its offset.
func (e *TemplateError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

// ParseTemplate parses s. Placeholder names are letters, digits and
// underscores, optionally followed by ":filter" (templateFilters); which
// names are allowed is up to the caller (see Names).
func ParseTemplate(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, &TemplateError{i, `unclosed "{" (write "{{" for a literal brace)`}
			}
			name, filter, _ := strings.Cut(s[i+1:i+1+end], ":")
			if _, ok := templateFilters[filter]; filter != "" && !ok {
				return nil, &TemplateError{i, fmt.Sprintf("unknown filter %q in {%s} (the filter is service)", filter, s[i+1:i+1+end])}
			}
			if name == "" || strings.IndexFunc(name, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
			}) >= 0 {
				return nil, &TemplateError{i, fmt.Sprintf("bad placeholder {%s} (names are letters, digits and _; write {{ for a literal brace)", name)}
			}
			flush()
			t.parts = append(t.parts, tmplPart{name: name, filter: filter, off: i})
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

// String returns the template's source.
func (t *Template) String() string { return t.src }

// Names returns the placeholder names in order of appearance, repeats
// included.
func (t *Template) Names() []string {
	var names []string
	for _, p := range t.parts {
		if p.name != "" {
			names = append(names, p.name)
		}
	}
	return names
}

// Render appends the message to dst, asking lookup for each placeholder.
// A placeholder lookup does not know is written back as "{name}", so the
// gap shows. Render allocates only when dst must grow.
func (t *Template) Render(dst []byte, lookup func(name string) (string, bool)) []byte {
	for _, p := range t.parts {
		if p.name == "" {
			dst = append(dst, p.text...)
			continue
		}
		if v, ok := lookup(p.name); ok {
			if p.filter != "" {
				v = templateFilters[p.filter](v)
			}
			dst = append(dst, v...)
			continue
		}
		dst = append(dst, '{')
		dst = append(dst, p.name...)
		dst = append(dst, '}')
	}
	return dst
}
