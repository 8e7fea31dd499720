package web

import (
	"strings"
	"testing"
)

// Every mistake is reported at once, each naming its key.
func TestValidateNamesTheKey(t *testing.T) {
	c := Config{
		Listen:         "9310",
		TLS:            &TLSConfig{CertFile: "c.pem", ClientAuthType: "Always", MinVersion: "TLS10"},
		BasicAuthUsers: map[string]string{"alice": "plaintext", "a:b": "$2a$04$abcdefghijklmnopqrstuuGV0SNcNfYsmbXP8WzpG6.4bFqHs5tUK"},
		BearerTokens:   []string{"literal-token", "sha256:beef", "${FLOWGUARD_TEST_UNSET_VARIABLE}"},
		OpenPaths:      []string{"healthz"},
		Limits:         Limits{MaxConnections: -1},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"http.listen:",
		"http.tls_server_config: cert_file and key_file are both required",
		`http.tls_server_config.client_auth_type: "Always"`,
		`http.tls_server_config.min_version: "TLS10"`,
		"http.basic_auth_users.alice: not a bcrypt hash",
		`http.basic_auth_users: "a:b"`,
		"http.bearer_tokens[0]: give sha256:HEX or ${NAME}",
		"http.bearer_tokens[1]: sha256: wants 64 hex digits",
		"http.bearer_tokens[2]: environment variable FLOWGUARD_TEST_UNSET_VARIABLE is not set",
		`http.open_paths[0]: "healthz"`,
		"http.limits:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "literal-token") {
		t.Error("the error repeats a literal token")
	}
}

func TestDefaultsAndInsecure(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Listen != "127.0.0.1:9310" || c.Limits.MaxConnections != 512 || c.Timeouts.Idle == 0 || c.Limits.MaxPage != 1000 {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	for listen, want := range map[string]string{
		"127.0.0.1:9310": "",
		"[::1]:9310":     "",
		"localhost:9310": "",
		":9310":          "without TLS and authentication",
		"0.0.0.0:9310":   "without TLS and authentication",
	} {
		s, err := New(Config{Listen: listen}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Insecure(); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: Insecure() = %q, want %q", listen, got, want)
		}
	}
}
