package notifiers

import (
	"errors"
	"fmt"
	"os"
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

// Add registers secrets to hide; empty strings and strings shorter than
// four bytes (too likely to match innocently) are ignored.
func (r *Redactor) Add(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
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
