package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/web"
	"golang.org/x/crypto/bcrypt"
)

// The credentials the web subcommands print are accepted by the http
// section and match what they were made from.
func TestWebCredentialCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := cmdWeb([]string{"hash-password", "--cost", "4"}, strings.NewReader("s3cret pass\n"), &out, &errb); err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret pass")) != nil {
		t.Fatalf("hash-password printed %q, not a hash of the password", hash)
	}
	out.Reset()
	if err := cmdWeb([]string{"new-token"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || len(lines[0]) < 40 || lines[1] != web.TokenHash(lines[0]) {
		t.Fatalf("new-token printed %q", out.String())
	}
	out.Reset()
	if err := cmdWeb([]string{"hash-token"}, strings.NewReader(lines[0]+"\n"), &out, &errb); err != nil || strings.TrimSpace(out.String()) != lines[1] {
		t.Fatalf("hash-token printed %q, %v; want %q", out.String(), err, lines[1])
	}
	c := web.Config{BasicAuthUsers: map[string]string{"ops": hash}, BearerTokens: []string{lines[1]}}
	if err := c.Validate(); err != nil {
		t.Errorf("the printed credentials do not validate: %v", err)
	}
	if err := cmdWeb([]string{"hash-password", "on-the-command-line"}, strings.NewReader("x\n"), &out, &errb); err == nil {
		t.Error("a password on the command line was accepted")
	}
	if err := cmdWeb([]string{"hash-password"}, strings.NewReader(""), &out, &errb); err == nil {
		t.Error("an empty stdin was accepted")
	}
}
