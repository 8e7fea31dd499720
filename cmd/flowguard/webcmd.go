package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"strings"

	"github.com/flowguard/flowguard/web"
)

const webUsage = `Usage:
  flowguard web hash-password [--cost N]  read a password from stdin, print its bcrypt
                                         hash for http.basic_auth_users
  flowguard web new-token                print a random bearer token, then the
                                         sha256:HEX line for http.bearer_tokens
  flowguard web hash-token               read a token from stdin, print its sha256:HEX
`

func cmdWeb(args []string, in io.Reader, out, errw io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, webUsage)
		if len(args) == 0 {
			return usagef("web: missing subcommand")
		}
		return nil
	}
	switch args[0] {
	case "hash-password":
		fs := newFlagSet("web hash-password", "flowguard web hash-password [--cost N] < password", out, errw)
		cost := fs.Int("cost", 0, "bcrypt cost, 4 to 31 (0: 10)")
		if pos, err := parseInterleaved(fs, args[1:]); err != nil || len(pos) > 0 {
			return cmp.Or(err, usagef("web hash-password: the password is read from stdin, not the command line"))
		}
		pass, err := readSecret(in)
		if err != nil {
			return err
		}
		h, err := web.HashPassword(pass, *cost)
		if err != nil {
			return usagef("web hash-password: %w", err)
		}
		fmt.Fprintln(out, h)
		return nil
	case "new-token":
		fs := newFlagSet("web new-token", "flowguard web new-token", out, errw)
		if pos, err := parseInterleaved(fs, args[1:]); err != nil || len(pos) > 0 {
			return cmp.Or(err, usagef("web new-token: takes no argument"))
		}
		tok, h, err := web.NewToken()
		if err != nil {
			return fmt.Errorf("web new-token: %w", err)
		}
		fmt.Fprintf(out, "%s\n%s\n", tok, h)
		return nil
	case "hash-token":
		fs := newFlagSet("web hash-token", "flowguard web hash-token < token", out, errw)
		if pos, err := parseInterleaved(fs, args[1:]); err != nil || len(pos) > 0 {
			return cmp.Or(err, usagef("web hash-token: the token is read from stdin, not the command line"))
		}
		tok, err := readSecret(in)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, web.TokenHash(tok))
		return nil
	}
	return unknownCommand("web", args[0], []string{"hash-password", "new-token", "hash-token"})
}

// readSecret reads the first line of in, without its line end.
func readSecret(in io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("web: stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("web: nothing on stdin")
	}
	return line, nil
}
