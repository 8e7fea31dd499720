package notifiers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// ExpandEnv replaces ${NAME} in s with the environment variable NAME, so
// that secrets (tokens, passwords, HMAC keys) stay out of the
// configuration file. "$$" stands for a literal "$"; a "$" followed by
// anything else is kept as it is. An unset or empty variable is an error
// that names the variable, never its value.
func ExpandEnv(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ at offset %d", i)
			}
			name := s[i+2 : i+2+end]
			if name == "" {
				return "", fmt.Errorf("empty ${} at offset %d", i)
			}
			v, ok := os.LookupEnv(name)
			if !ok || v == "" {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// Redactor hides known secret strings in text such as error messages.
// The zero value hides nothing.
type Redactor struct{ secrets []string }

// MinSecretLen is the shortest string a Redactor hides: shorter ones are
// too likely to match innocent text.
const MinSecretLen = 4

// Add registers secrets to hide; strings shorter than MinSecretLen are
// ignored. A secret's escaped forms (in a URL query, in a JSON string)
// are hidden too, since receivers echo them so.
func (r *Redactor) Add(secrets ...string) {
	for _, s := range secrets {
		if len(s) < MinSecretLen {
			continue
		}
		forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
		if j, err := json.Marshal(s); err == nil {
			forms = append(forms, string(j[1:len(j)-1]))
		}
		for _, f := range forms {
			if !slices.Contains(r.secrets, f) {
				r.secrets = append(r.secrets, f)
			}
		}
	}
	// Longest first, so that a secret holding another is hidden whole.
	slices.SortStableFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// MaxLen returns the length of the longest secret hidden (0 for none).
func (r *Redactor) MaxLen() int {
	if len(r.secrets) == 0 {
		return 0
	}
	return len(r.secrets[0])
}

// Snippet returns at most n bytes of the start of b with every secret
// hidden, for an error that quotes what a receiver answered. Read b with
// n + MaxLen() bytes when the answer is that long: a secret that straddles
// byte n is then recognised whole and hidden, never cut into a visible
// prefix; and when b was cut, a tail that is the beginning of a secret is
// dropped too.
func (r *Redactor) Snippet(b []byte, n int) string {
	s := r.String(string(b))
	if len(b) <= n {
		return s
	}
	if len(s) > n {
		s = s[:n]
	}
	for changed := true; changed; {
		changed = false
		for _, sec := range r.secrets {
			for k := min(len(sec), len(s)); k > 0; k-- {
				if strings.HasSuffix(s, sec[:k]) {
					s, changed = s[:len(s)-k], true
					break
				}
			}
		}
	}
	return strings.ToValidUTF8(s, "")
}

// String returns s with every registered secret replaced by "<redacted>".
func (r *Redactor) String(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "<redacted>")
	}
	return s
}

// Error returns err with its message redacted, or nil. The result does
// not wrap err (whose message holds the secret), but keeps Permanent.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	red := redactedError{msg: r.String(err.Error()), cause: err}
	if IsPermanent(err) {
		return Permanent(red)
	}
	return red
}

// redactedError carries a redacted message; Is/As still see the cause's
// type (net.ErrClosed, context.DeadlineExceeded) through errors.Is.
type redactedError struct {
	msg   string
	cause error
}

func (e redactedError) Error() string { return e.msg }

// Is lets errors.Is match sentinel errors of the cause without exposing
// its message through Unwrap.
func (e redactedError) Is(target error) bool { return errors.Is(e.cause, target) }
