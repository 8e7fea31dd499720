package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	pool                      *x509.CertPool
	caFile, certFile, keyFile string
	client                    tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	p := testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth)
	p.certFile = write("server.pem", "CERTIFICATE", srvDER)
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	p.keyFile = write("server-key.pem", "EC PRIVATE KEY", kb)
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

func tlsGet(url string, tc *tls.Config) (int, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, Config{TLS: &TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: "TLS13"}})
	addr := serve(t, s, toyMux(nil, nil))
	if code, err := tlsGet("https://"+addr+"/healthz", &tls.Config{RootCAs: p.pool}); err != nil || code != 200 {
		t.Fatalf("HTTPS: %d %v", code, err)
	}
	if _, err := tlsGet("https://"+addr+"/healthz", &tls.Config{RootCAs: p.pool, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was served with min_version TLS13")
	}
	if _, err := tlsGet("https://"+addr+"/healthz", &tls.Config{}); err == nil {
		t.Error("a client that does not trust the CA was served")
	}
	if code, err := tlsGet("http://"+addr+"/healthz", nil); err == nil && code == 200 {
		t.Error("plain HTTP was served on the TLS port")
	}
}

func TestTLSClientCertificates(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, Config{TLS: &TLSConfig{CertFile: p.certFile, KeyFile: p.keyFile,
		ClientCAFile: p.caFile, ClientAuthType: "RequireAndVerifyClientCert"}})
	addr := serve(t, s, toyMux(nil, nil))
	if code, err := tlsGet("https://"+addr+"/healthz", &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}}); err != nil || code != 200 {
		t.Fatalf("with a client certificate: %d %v", code, err)
	}
	if _, err := tlsGet("https://"+addr+"/healthz", &tls.Config{RootCAs: p.pool}); err == nil {
		t.Error("a client without a certificate was served")
	}
}
