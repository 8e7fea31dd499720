// Package leaktest checks that text operators see (errors, log lines,
// stats, metrics) holds no configured secret: not whole, and not a piece
// of one, such as the prefix an error snippet cut off. Notifier tests
// run every text they can provoke through Check.
package leaktest

import (
	"strings"
	"testing"
)

// MinPiece is the shortest piece of a secret that counts as a leak. Tests
// should use secrets without common words, so that any piece this long
// found in a text can only come from the secret.
const MinPiece = 6

// Find returns the longest piece of a secret (at least MinPiece bytes,
// or the whole secret when it is shorter) that text holds, or "".
func Find(text string, secrets ...string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for l := len(s); l >= min(MinPiece, len(s)); l-- {
			for i := 0; i+l <= len(s); i++ {
				if strings.Contains(text, s[i:i+l]) {
					return s[i : i+l]
				}
			}
		}
	}
	return ""
}

// Check fails t when text, shown as where, holds a piece of a secret.
func Check(t testing.TB, where, text string, secrets ...string) {
	t.Helper()
	if p := Find(text, secrets...); p != "" {
		t.Errorf("%s leaks %q (a piece of a secret):\n%s", where, p, text)
	}
}
