package cluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// DefaultListen is where an embedded broker listens unless told otherwise:
// loopback, so that nothing outside the machine reaches an unauthenticated
// broker by accident.
const DefaultListen = "127.0.0.1:4222"

// ErrNoCredentials is the refusal of a broker asked to listen beyond
// loopback without a token or NKEYs.
var ErrNoCredentials = errors.New("refusing to listen without credentials")

// ServerOptions configure an embedded broker.
type ServerOptions struct {
	// Listen is the client address, host:port; port 0 picks a free one.
	// Empty: DefaultListen. A host other than a loopback address needs
	// Token or NKeys.
	Listen string
	// Store is the folder of JetStream's files (streams, buckets): what
	// survives a restart of the broker. Required.
	Store string
	// Token, when set, is the secret every client presents.
	Token string
	// NKeys are the public keys ("U...") of the users allowed in; a client
	// proves it holds the matching seed. Token and NKeys exclude each other.
	NKeys []string
	// TLSCert and TLSKey, when set, are PEM files: clients must then use
	// TLS.
	TLSCert, TLSKey string
	// Settings fix the trials' stream and consumers, brought to these
	// values at every start.
	Settings Settings
	// Log, when set, receives the broker's warnings and errors.
	Log func(format string, args ...any)
}

// Server is a NATS server with JetStream running in this process.
//
// Ownership: a Server holds its listener, its store's files and the
// store's lock until Close.
type Server struct {
	s     *server.Server
	token string
	// self is the broker's own user NKEY, made at start, with which
	// clients in this process get in when the broker trusts NKEYs only.
	self   nkeys.KeyPair
	url    string
	remote string
	lock   *flock.Flock
}

// storeLock is the file in the store that a running broker holds locked:
// two brokers writing one store would corrupt it. storeURL, beside it,
// holds the running broker's address, for the refusal of a second one.
const (
	storeLock = "nasctl-broker.lock"
	storeURL  = "nasctl-broker.url"
)

// lockStore creates the store folder and takes its lock.
func lockStore(store string) (*flock.Flock, error) {
	if err := os.MkdirAll(store, 0o755); err != nil {
		return nil, fmt.Errorf("broker: store: %w (give a folder this user can create and write)", err)
	}
	l := flock.New(filepath.Join(store, storeLock))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("broker: store: locking %s: %w", l.Path(), err)
	}
	if !ok {
		return nil, storeInUse(store)
	}
	os.Remove(filepath.Join(store, storeURL)) // a dead broker's
	return l, nil
}

// storeInUse says what to do about a store another broker holds, perhaps
// another search's embedded one.
func storeInUse(store string) error {
	at, join := "", "nats://ITS-ADDRESS"
	if b, err := os.ReadFile(filepath.Join(store, storeURL)); err == nil && len(bytes.TrimSpace(b)) > 0 {
		join = string(bytes.TrimSpace(b))
		at = " at " + join
	}
	return fmt.Errorf("broker: store %s is in use by another broker%s (another search's --broker embedded, or a nasctl server): "+
		"a search can join that one with --broker %s instead of starting its own; or stop it, or give this one another store "+
		"(--store, or --broker-store with --broker embedded)", store, at, join)
}

// addressInUse says what to do about a listen address taken, most likely
// by another broker, or returns err, the server's failure to start, when
// it was not for that. The server says it in text only: what it says is
// checked by listening again.
func addressInUse(listen string, err error) error {
	if !strings.Contains(err.Error(), "listen") {
		return err
	}
	ln, lerr := net.Listen("tcp", listen)
	if lerr == nil {
		ln.Close()
	}
	if !errors.Is(lerr, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
		return err
	}
	host, port, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Errorf("%s is in use, probably by another broker (%w): a search can join that one with --broker nats://%s (tls:// if it uses TLS); "+
		"or listen on another address (--listen, or --broker-listen with --broker embedded)", listen, err, net.JoinHostPort(host, port))
}

// StartServer starts a broker, waits until it accepts clients and sets up
// the trials' stream, consumers and buckets on it.
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	o.Listen = cmp.Or(o.Listen, DefaultListen)
	opts, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	var self nkeys.KeyPair
	if len(opts.Nkeys) > 0 {
		if self, err = nkeys.CreateUser(); err != nil {
			return nil, err
		}
		pub, _ := self.PublicKey()
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: pub})
	}
	lock, err := lockStore(o.Store)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("broker: %w", err)
	}
	fatal, started := make(chan string, 1), new(atomic.Bool)
	s.SetLogger(logger{log: o.Log, fatal: fatal, started: started}, false, false)
	s.Start()
	if err := ready(s, fatal); err != nil {
		s.Shutdown()
		lock.Unlock()
		return nil, fmt.Errorf("broker on %s, store %s: %w", o.Listen, o.Store, addressInUse(o.Listen, err))
	}
	started.Store(true)
	if host, _, _ := splitListen(o.Listen); !isLoopback(host) && o.Token != "" && o.TLSCert == "" && o.Log != nil {
		o.Log("warning: the token crosses the network in clear; give a TLS certificate and key, or use NKEYs")
	}
	srv := &Server{s: s, token: o.Token, self: self, url: clientURL(s), remote: remoteURL(s), lock: lock}
	os.WriteFile(filepath.Join(o.Store, storeURL), []byte(srv.url+"\n"), 0o644) // for storeInUse; a hint only
	b, err := srv.connect(ctx, "nasctl server set-up")
	if err != nil {
		srv.Close()
		return nil, err
	}
	defer b.Close()
	l, err := ensureLayout(ctx, b.js, o.Settings, true)
	if err != nil {
		srv.Close()
		return nil, err
	}
	for _, d := range devices {
		if _, err := ensureConsumer(ctx, l.trials, o.Settings.WithDefaults().trialsConsumer(d), true); err != nil {
			srv.Close()
			return nil, err
		}
	}
	return srv, nil
}

// ready waits until s accepts clients. The server reports a failure to
// start (the port taken, a store it cannot use) only to its logger, then
// waits for nothing: that report ends the wait at once.
func ready(s *server.Server, fatal <-chan string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if s.ReadyForConnections(100 * time.Millisecond) {
			return nil
		}
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
	}
	return errors.New("not accepting clients after 30 s")
}

// Check reports what is wrong with o (a missing store, a non-loopback
// address without credentials, half a TLS pair, a bad NKEY) before
// anything starts.
func (o ServerOptions) Check() error {
	o.Listen = cmp.Or(o.Listen, DefaultListen)
	_, err := o.natsOptions()
	return err
}

// natsOptions checks o and turns it into the server's options.
func (o ServerOptions) natsOptions() (*server.Options, error) {
	host, port, err := splitListen(o.Listen)
	if err != nil {
		return nil, err
	}
	if o.Store == "" {
		return nil, errors.New("broker: a store folder is required (where the trials and results are kept)")
	}
	if o.Token != "" && len(o.NKeys) > 0 {
		return nil, errors.New("broker: give a token or NKEYs, not both")
	}
	if !isLoopback(host) && o.Token == "" && len(o.NKeys) == 0 {
		return nil, fmt.Errorf("broker: %w on %s: anyone who reaches it could read the datasets and results and hand the workers jobs; "+
			"give it a token or NKEYs, or listen on 127.0.0.1", ErrNoCredentials, o.Listen)
	}
	opts := &server.Options{Host: host, Port: port, JetStream: true, StoreDir: o.Store, NoSigs: true, NoLog: o.Log == nil,
		Authorization: o.Token, ServerName: "nasctl"}
	for _, k := range o.NKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			return nil, fmt.Errorf("broker: %q is not a user's public NKEY (they start with U; nasctl server --new-nkey FILE makes one)", k)
		}
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: k})
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return nil, errors.New("broker: TLS needs both a certificate and its key")
		}
		if opts.TLSConfig, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey}); err != nil {
			return nil, fmt.Errorf("broker: TLS: %w", err)
		}
		opts.TLS = true
	}
	return opts, nil
}

// splitListen parses host:port; port 0 asks for a free one.
func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("broker: listen address %q: %w (want host:port, e.g. %s)", listen, err, DefaultListen)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("broker: listen address %q: bad port %q", listen, p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// isLoopback reports whether host names this machine only.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientURL is the address clients on this machine use.
func clientURL(s *server.Server) string {
	u := s.ClientURL()
	// A broker listening on every interface is reached here on loopback.
	for _, any := range []string{"0.0.0.0", "[::]"} {
		u = strings.Replace(u, "//"+any+":", "//127.0.0.1:", 1)
	}
	return u
}

// remoteURL is the address clients on other machines use: a broker
// listening on every interface is reached there by this machine's name.
func remoteURL(s *server.Server) string {
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		return s.ClientURL()
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsUnspecified() {
		return u.String()
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "THIS-MACHINE" // said in the address itself: put its name or IP here
	}
	u.Host = net.JoinHostPort(name, u.Port())
	return u.String()
}

// URL is the broker's client address, as reached from this machine.
func (s *Server) URL() string { return s.url }

// RemoteURL is the broker's client address as reached from other
// machines: URL, but with this machine's host name when the broker listens
// on every interface.
func (s *Server) RemoteURL() string { return s.remote }

// Connect opens a client in this process, with the broker's credentials.
func (s *Server) Connect(ctx context.Context, name string) (*Broker, error) {
	return withLayout(ctx)(s.connect(ctx, name))
}

func (s *Server) connect(ctx context.Context, name string) (*Broker, error) {
	// In process, TLS is neither needed nor asked for: no tls:// scheme.
	u := strings.Replace(s.url, "tls://", "nats://", 1)
	return dial(ctx, ClientOptions{URL: u, Token: s.token, Name: name, server: s.s, nkey: s.self})
}

// Close stops the broker and releases its store, which stays on disk.
func (s *Server) Close() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
	s.lock.Unlock()
}

// NewNKey makes a user NKEY: the seed, a client's secret, and the public
// key the broker is given.
func NewNKey() (seed []byte, public string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	if seed, err = kp.Seed(); err != nil {
		return nil, "", err
	}
	public, err = kp.PublicKey()
	return seed, public, err
}

// logger passes the broker's warnings and errors to log, when set. Until
// started is set, its first fatal error goes to fatal alone: the start's
// error then says it, once.
type logger struct {
	log     func(format string, args ...any)
	fatal   chan<- string
	started *atomic.Bool
}

func (l logger) Noticef(string, ...any)         {} // the start-up banner and the like
func (l logger) Warnf(format string, v ...any)  { l.print("warning: "+format, v...) }
func (l logger) Errorf(format string, v ...any) { l.print("error: "+format, v...) }
func (l logger) Debugf(string, ...any)          {}
func (l logger) Tracef(string, ...any)          {}

func (l logger) Fatalf(format string, v ...any) {
	if !l.started.Load() {
		select {
		case l.fatal <- fmt.Sprintf(format, v...):
			return
		default: // one is enough
		}
	}
	l.print("fatal: "+format, v...)
}

func (l logger) print(format string, v ...any) {
	if l.log != nil {
		l.log(format, v...)
	}
}
