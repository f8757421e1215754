package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The listen rules: loopback needs nothing; any other address needs a
// token or NKEYs; and the rest of the options are checked before a start.
func TestServerOptionsCheck(t *testing.T) {
	seed, public, err := NewNKey()
	if err != nil || len(seed) == 0 {
		t.Fatal(err)
	}
	store := t.TempDir()
	for _, tc := range []struct {
		o    ServerOptions
		want string // "" for no error
	}{
		{ServerOptions{Listen: "127.0.0.1:0", Store: store}, ""},
		{ServerOptions{Listen: "localhost:4222", Store: store}, ""},
		{ServerOptions{Listen: "[::1]:4222", Store: store}, ""},
		{ServerOptions{Store: store}, ""}, // DefaultListen
		{ServerOptions{Listen: "0.0.0.0:4222", Store: store}, "refusing to listen without credentials on 0.0.0.0:4222"},
		{ServerOptions{Listen: ":4222", Store: store}, "without credentials"},
		{ServerOptions{Listen: "gpu-box:4222", Store: store}, "without credentials"},
		{ServerOptions{Listen: "0.0.0.0:4222", Store: store, Token: "t"}, ""},
		{ServerOptions{Listen: "0.0.0.0:4222", Store: store, NKeys: []string{public}}, ""},
		{ServerOptions{Store: store, Token: "t", NKeys: []string{public}}, "not both"},
		{ServerOptions{Store: store, NKeys: []string{"SUAB"}}, "not a user's public NKEY"},
		{ServerOptions{Store: store, TLSCert: "c.pem"}, "both a certificate and its key"},
		{ServerOptions{Listen: "127.0.0.1:0"}, "a store folder is required"},
		{ServerOptions{Listen: "127.0.0.1", Store: store}, "want host:port"},
		{ServerOptions{Listen: "127.0.0.1:99999", Store: store}, "bad port"},
	} {
		err := tc.o.Check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// A broker that trusts an NKEY lets in the client holding its seed (and
// sets itself up with a key of its own), and refuses one without it,
// saying what to give.
func TestNKeyAuth(t *testing.T) {
	seed, public, err := NewNKey()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(context.Background(), ServerOptions{Listen: "127.0.0.1:0", Store: t.TempDir(), NKeys: []string{public}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b, err := Connect(context.Background(), ClientOptions{URL: srv.URL(), NKeySeed: file})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	_, err = Connect(context.Background(), ClientOptions{URL: srv.URL()})
	if err == nil || !strings.Contains(err.Error(), "--broker-nkey") {
		t.Errorf("without the seed: %v", err)
	}
}

// A broker with a TLS certificate takes clients that trust its authority
// and turns away those that do not, pointing at --broker-tls-ca.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	srv, err := StartServer(context.Background(), ServerOptions{Listen: "127.0.0.1:0", Store: t.TempDir(), Token: testToken, TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "tls://") {
		t.Errorf("URL %s, want tls://", srv.URL())
	}
	b, err := Connect(context.Background(), ClientOptions{URL: srv.URL(), Token: testToken, TLSCA: cert})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	_, err = Connect(context.Background(), ClientOptions{URL: srv.URL(), Token: testToken})
	if err == nil || !strings.Contains(err.Error(), "give the authority that signed its certificate with --broker-tls-ca") ||
		strings.Contains(err.Error(), "does not use TLS") {
		t.Errorf("without the authority: %v", err)
	}
}

// A client that asks for TLS (a tls:// URL, or --broker-tls-ca) of a
// broker without it is told that the broker does not use TLS and what
// address to give instead, not to give an authority (the client refuses
// before any certificate is seen: nats.ErrSecureConnWanted). A broker with
// TLS whose certificate the client cannot verify still gets the
// --broker-tls-ca hint (TestTLS).
func TestTLSNotOffered(t *testing.T) {
	srv := startServer(t, Settings{})
	host := strings.TrimPrefix(srv.URL(), "nats://")
	cert, _ := selfSigned(t, t.TempDir())
	for _, o := range []ClientOptions{
		{URL: "tls://" + host, Token: testToken},
		{URL: "nats://" + host, Token: testToken, TLSCA: cert},
	} {
		_, err := Connect(context.Background(), o)
		want := "does not use TLS (nats: secure connection not available"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "connect to it with nats://"+host) ||
			strings.Contains(err.Error(), "give the authority") {
			t.Errorf("%s (CA %q): %v, want %q and nats://%s", o.URL, o.TLSCA, err, want, host)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1, its own authority, and
// its key.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nasctl test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// A certificate that is not for the host connected to (here for
// 127.0.0.1, reached as localhost) is a name to fix, not an authority to
// give: the error lists the names the certificate holds.
func TestTLSHostMismatch(t *testing.T) {
	cert, key := selfSigned(t, t.TempDir())
	srv, err := StartServer(context.Background(), ServerOptions{Listen: "127.0.0.1:0", Store: t.TempDir(), Token: testToken, TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
	_, err = Connect(context.Background(), ClientOptions{URL: u, Token: testToken, TLSCA: cert})
	for _, want := range []string{"; its certificate is for 127.0.0.1: connect by one of those (" + srv.URL() + ")",
		"or make its certificate for localhost, with subjectAltName=DNS:localhost"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", u, err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "--broker-tls-ca") {
		t.Errorf("%s: %v: the authority was given already", u, err)
	}
}

// An NKEY given to a broker that takes none says what to do.
func TestNKeyNotTaken(t *testing.T) {
	srv := startServer(t, Settings{})
	seed, _, err := NewNKey()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Connect(context.Background(), ClientOptions{URL: srv.URL(), Token: testToken, NKeySeed: file})
	if err == nil || !strings.Contains(err.Error(), "does not take NKEYs") || !strings.Contains(err.Error(), "drop --broker-nkey") ||
		!strings.Contains(err.Error(), "nasctl server --nkey") {
		t.Errorf("NKEY to a token broker: %v", err)
	}
}

// A broker address of another scheme (http://) is refused with what to
// write; nats.go would take it for nats://.
func TestBrokerURLScheme(t *testing.T) {
	srv := startServer(t, Settings{})
	host := strings.TrimPrefix(srv.URL(), "nats://")
	for _, u := range []string{"http://" + host, "nats://" + host + ",https://tok@" + host} {
		_, err := Connect(context.Background(), ClientOptions{URL: u, Token: testToken})
		if err == nil || !strings.Contains(err.Error(), "is not a broker's scheme: write nats://HOST:PORT") || strings.Contains(err.Error(), "tok@") {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"nats://" + host, host} {
		if err := CheckURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// A host and port that cannot be read are refused before dialling,
	// credentials not shown.
	for u, why := range map[string]string{"nats://" + host + ":99": "too many colons", "nats://h:99999": `port "99999" is not a number from 1 to 65535`,
		"nats://user:secret@h:abc": `broker nats://REDACTED@h:abc: invalid port ":abc" after host`} {
		if err := CheckURL(u); err == nil || !strings.Contains(err.Error(), why) || !strings.HasSuffix(err.Error(), "write nats://HOST:PORT, e.g. nats://gpu-box:4222") ||
			strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// An address where another service listens (one that closes the
// connection, one that says nothing) is named as not a NATS broker, with
// what to check, not as the bare EOF or timeout of the dial.
func TestBrokerAddressNotNATS(t *testing.T) {
	for name, serve := range map[string]func(net.Conn){
		"closes":       func(c net.Conn) { c.Close() },
		"says nothing": func(c net.Conn) { time.Sleep(10 * time.Second); c.Close() },
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serve(c)
			}
		}()
		_, err = Connect(context.Background(), ClientOptions{URL: "nats://" + ln.Addr().String()})
		ln.Close()
		want := "something answers at nats://" + ln.Addr().String() + ", but not as a NATS broker"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "check the port") {
			t.Errorf("a service that %s: %v; want %q", name, err, want)
		}
	}
}

// Messages about a broker name the port dialled, 4222 where the address
// gives none, and a host name that does not resolve says so.
func TestBrokerAddressMessages(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":               "nats://127.0.0.1:4222",
		"nats://broker":           "nats://broker:4222",
		"tls://REDACTED@h:5000":   "tls://REDACTED@h:5000",
		"nats://a, b:4300":        "nats://a:4222,b:4300",
		"nats://[::1]":            "nats://[::1]:4222",
		"nats://broker.lan:4222/": "nats://broker.lan:4222/",
	} {
		if got := withPort(in); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
	lookup := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nosuchhost.invalid", IsNotFound: true}}
	err := connectError(ClientOptions{URL: "nats://nosuchhost.invalid:4222"}, lookup)
	if err == nil || !strings.Contains(err.Error(), "no host is called nosuchhost.invalid here") || !errors.Is(err, lookup) {
		t.Errorf("an unknown host: %v", err)
	}
}
