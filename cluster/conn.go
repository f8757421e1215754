package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// ClientOptions say how to reach a broker.
type ClientOptions struct {
	// URL is the broker's address, nats://HOST:4222 (tls://HOST:4222 to
	// require TLS).
	URL string
	// Token is the broker's secret, when it has one.
	Token string
	// NKeySeed is a file holding a user NKEY seed, when the broker trusts
	// NKEYs.
	NKeySeed string
	// TLSCA is a PEM file of the authority that signed the broker's
	// certificate, when the system's do not know it; giving it implies TLS.
	TLSCA string
	// Name is the connection's name in the broker's monitoring.
	Name string
	// Log, when set, hears when the connection is lost and found again (it
	// reconnects by itself, for ever), and when Connect waits.
	Log func(format string, args ...any)
	// Wait makes Connect wait for a broker that does not answer yet,
	// trying again with a growing pause, until ctx ends. What waiting
	// would not fix (credentials, TLS, a malformed address) is returned at
	// once.
	Wait bool

	server *server.Server // in-process, for an embedded broker
	nkey   nkeys.KeyPair  // the embedded broker's own key, if any
}

// Broker is a client connection to the broker, with what nasctl keeps
// there opened.
//
// Ownership: a Broker holds its connection until Close; the Executors and
// Workers made on it must be closed or stopped before.
type Broker struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	l   *layout
	url string

	// found are the Settings of what this client found on the broker;
	// restoreLayout makes a lost layout again with them.
	mu    sync.Mutex
	found Settings
}

// errNoBroker marks a connection that failed because nothing answered.
var errNoBroker = errors.New("no broker answers")

// Connect reaches the broker and opens the trials' stream and buckets,
// creating them with the default Settings when the broker has none (a
// stock nats-server).
func Connect(ctx context.Context, o ClientOptions) (*Broker, error) {
	pause := time.Second
	for {
		b, err := withLayout(ctx)(dial(ctx, o))
		if err == nil || !o.Wait || !errors.Is(err, errNoBroker) {
			return b, err
		}
		if pause == time.Second && o.Log != nil {
			o.Log("waiting for the broker at %s to start (trying again every few seconds; Ctrl-C stops)", withPort(redact(o.URL)))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// withLayout opens the trials' stream and buckets on a connection just
// dialled (creating what is missing), or passes its error on.
func withLayout(ctx context.Context) func(*Broker, error) (*Broker, error) {
	return func(b *Broker, err error) (*Broker, error) {
		if err != nil {
			return nil, err
		}
		if b.l, err = ensureLayout(ctx, b.js, Settings{}, false); err != nil {
			b.Close()
			return nil, err
		}
		b.found = b.l.settings(ctx)
		return b, nil
	}
}

// dial connects without opening anything.
func dial(ctx context.Context, o ClientOptions) (*Broker, error) {
	if err := CheckURL(o.URL); err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.Name(o.Name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.NKeySeed != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("broker: NKEY seed %s: %w", o.NKeySeed, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.server != nil {
		opts = append(opts, nats.InProcessServer(o.server))
	}
	if o.nkey != nil {
		pub, err := o.nkey.PublicKey()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Nkey(pub, o.nkey.Sign))
	}
	if o.Log != nil {
		u := redact(o.URL)
		var outages atomic.Int64
		opts = append(opts,
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if err != nil { // nil: closed on purpose
					o.Log("lost the broker %s (%v); reconnecting", u, err)
					go remindAway(nc, outages.Add(1), &outages, u, o.Log)
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) { o.Log("reconnected to the broker %s", u) }),
			nats.ErrorHandler(asyncError(u, o.Log)))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, connectError(o, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("broker %s has no JetStream: start nats-server with -js, or use nasctl server", redact(o.URL))
		}
		return nil, fmt.Errorf("broker %s: %w", redact(o.URL), err)
	}
	return &Broker{nc: nc, js: js, url: redact(o.URL)}, nil
}

// stillAway is how often a client whose broker is away says it still is:
// without it, a search or worker would print one line and then nothing,
// like one stuck.
var stillAway = time.Minute

// remindAway says every stillAway that the broker u is still away, until
// nc is connected again or closed, or a later outage (another number in
// outages than this one's) took over the reminding.
func remindAway(nc *nats.Conn, outage int64, outages *atomic.Int64, u string, log func(string, ...any)) {
	since := time.Now()
	for {
		time.Sleep(stillAway)
		if nc.IsConnected() || nc.IsClosed() || outages.Load() != outage {
			return
		}
		log("the broker %s is still away (%s); still reconnecting: finished work is kept until it is back", u, time.Since(since).Round(time.Second))
	}
}

// connectError says what to do about a failed connection.
func connectError(o ClientOptions, err error) error {
	u := redact(o.URL)
	var he x509.HostnameError
	switch {
	case errors.Is(err, nats.ErrAuthorization):
		if o.Token == "" && o.NKeySeed == "" && !hasUserInfo(o.URL) {
			return fmt.Errorf("broker %s refused the connection: it needs credentials; give its token (--broker-token or NASCTL_BROKER_TOKEN) or an NKEY seed file (--broker-nkey)", u)
		}
		return fmt.Errorf("broker %s refused the credentials given: check the token or NKEY seed against the broker's", u)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("%w at %s: start one with nasctl server (or --broker embedded in the search), or check the address and the firewall", errNoBroker, withPort(u))
	case errors.Is(err, nats.ErrSecureConnWanted):
		// A tls:// URL or --broker-tls-ca, and a broker without TLS.
		return fmt.Errorf("broker %s does not use TLS (%w): connect to it with %s and without --broker-tls-ca, or start it with TLS (nasctl server --tls-cert and --tls-key)", u, err, plainURL(u))
	case errors.Is(err, nats.ErrNkeysNotSupported):
		return fmt.Errorf("broker %s does not take NKEYs (%w): drop --broker-nkey (and give its token, if it has one), or start the broker with nasctl server --nkey and the seed's public key", u, err)
	case errors.As(err, &he):
		return fmt.Errorf("broker %s: TLS: %w; %s", u, err, hostnameAdvice(u, he))
	case errors.As(err, new(*tls.CertificateVerificationError)) || strings.Contains(err.Error(), "x509"):
		return fmt.Errorf("broker %s: TLS: %w (give the authority that signed its certificate with --broker-tls-ca)", u, err)
	case errors.Is(err, nats.ErrTLS):
		return fmt.Errorf("broker %s: TLS: %w", u, err)
	}
	if dns := (*net.DNSError)(nil); errors.As(err, &dns) && dns.IsNotFound {
		return fmt.Errorf("broker %s: no host is called %s here (%w): check the broker's address, or use its IP address", u, dns.Name, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection was made, and what answered closed it or said
		// nothing a NATS broker says first: another service on that port.
		return fmt.Errorf("broker %s: something answers at %s, but not as a NATS broker (%w): check the port (nasctl server listens on 4222 unless --listen says otherwise), "+
			"or, behind a proxy or port forward, that the broker behind it is running", u, withPort(u), err)
	}
	return fmt.Errorf("broker %s: %w", u, err)
}

// withPort is a broker address as the client dials it: the port NATS
// uses by default, 4222, written where the address gives none, so that a
// message about it names the port tried.
func withPort(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		full := p
		if !strings.Contains(p, "://") {
			full = "nats://" + p
		}
		if u, err := url.Parse(full); err == nil && u.Host != "" && u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), "4222")
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// hostnameAdvice says, for a certificate that is not for the host
// connected to (u's), which names it holds and what to do.
func hostnameAdvice(u string, he x509.HostnameError) string {
	san := "DNS:" + he.Host
	if net.ParseIP(he.Host) != nil {
		san = "IP:" + he.Host
	}
	remake := fmt.Sprintf("make its certificate for %s, with subjectAltName=%s", he.Host, san)
	if he.Certificate == nil {
		return remake
	}
	names := slices.Clone(he.Certificate.DNSNames)
	for _, ip := range he.Certificate.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "its certificate holds no host name or IP address (subjectAltName); " + remake
	}
	connect := "connect by one of those"
	if p, err := url.Parse(u); err == nil && p.Port() != "" && !strings.Contains(names[0], "*") {
		p.Host = net.JoinHostPort(names[0], p.Port())
		connect = fmt.Sprintf("connect by one of those (%s)", p)
	}
	return fmt.Sprintf("its certificate is for %s: %s, or %s", strings.Join(names, ", "), connect, remake)
}

// CheckURL refuses a broker address whose scheme is not a broker's; an
// address without a scheme is nats://. Several may be given, separated by
// commas.
func CheckURL(raw string) error {
	for _, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		scheme, _, ok := strings.Cut(s, "://")
		switch {
		case !ok:
		case scheme == "nats" || scheme == "tls" || scheme == "ws" || scheme == "wss":
		default:
			return fmt.Errorf("broker %s: %s:// is not a broker's scheme: write nats://HOST:PORT (tls://HOST:PORT for TLS)", redact(s), scheme)
		}
		if err := checkHostPort(s); err != nil {
			return fmt.Errorf("broker %s: %v: write nats://HOST:PORT, e.g. nats://gpu-box:4222", redact(s), err)
		}
	}
	return nil
}

// checkHostPort refuses an address whose host and port cannot be read
// ("nats://host:4222:99"), which would otherwise fail only when dialled.
func checkHostPort(s string) error {
	full := s
	if !strings.Contains(s, "://") {
		full = "nats://" + s
	}
	u, err := url.Parse(full)
	if err != nil {
		return errors.Unwrap(err) // not the *url.Error, which quotes the whole address
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	if p := u.Port(); p != "" {
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return err
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	return nil
}

// asyncError passes what the client reports on its own (outside any
// request) to log, in words. A watch's consumer found inactive is not
// said: the connection was lost, which is said, and the client resets the
// watch once it is back (a driver also looks for its results now and then).
func asyncError(u string, log func(string, ...any)) nats.ErrHandler {
	return func(_ *nats.Conn, _ *nats.Subscription, err error) {
		switch {
		case errors.Is(err, nats.ErrConsumerNotActive):
		case errors.Is(err, nats.ErrAuthorization):
			log("the broker %s refused this client's credentials when reconnecting (restarted with others?); still trying", u)
		case errors.Is(err, nats.ErrSlowConsumer):
			log("this client fell behind what the broker %s sent it; some messages were dropped", u)
		default:
			log("the broker %s reported: %v", u, err)
		}
	}
}

// plainURL is the broker of the address raw without TLS: nats://HOST:PORT
// (credentials in raw left out, as they would be redacted).
func plainURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "nats://HOST:PORT"
	}
	return "nats://" + u.Host
}

// hasUserInfo reports whether the URL raw carries credentials itself
// (nats://TOKEN@host, nats://user:password@host).
func hasUserInfo(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

// redact leaves a token or password given in a URL out of messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Cut as text: an address that does not parse may still hold them.
		scheme, rest, ok := strings.Cut(raw, "://")
		if at := strings.LastIndex(rest, "@"); ok && at >= 0 {
			return scheme + "://REDACTED" + rest[at:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// RedactURL is a broker address (or a comma-separated list) as it may be
// printed: credentials in it replaced.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redact(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// URL is the broker's address, credentials left out.
func (b *Broker) URL() string { return b.url }

// Close closes the connection.
func (b *Broker) Close() { b.nc.Close() }

// away reports whether err, from a request to the broker, means that the
// broker is away (down, restarting, unreachable), which waiting fixes, as
// opposed to a refusal.
func (b *Broker) away(err error) bool {
	return !b.nc.IsConnected() && !b.nc.IsClosed() ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout)
}

// consumer opens the durable consumer of device's workers, creating it with
// the Settings found on the broker (the defaults where it had none) when
// missing.
func (b *Broker) consumer(ctx context.Context, device runtime.Device) (jetstream.Consumer, error) {
	c, err := ensureConsumer(ctx, b.l.trials, b.settings().WithDefaults().trialsConsumer(device), false)
	if err != nil {
		return nil, err
	}
	if info := c.CachedInfo(); info != nil {
		b.noteConsumer(info.Config)
	}
	return c, nil
}

// settings returns the Settings found on the broker so far.
func (b *Broker) settings() Settings {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.found
}

// noteConsumer keeps the settings of a trials consumer as found.
func (b *Broker) noteConsumer(c jetstream.ConsumerConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.found.AckWait, b.found.MaxDeliver, b.found.MaxAckPending = c.AckWait, c.MaxDeliver, c.MaxAckPending
}

// restoreLayout makes again whatever of what nasctl keeps on the broker is
// missing (a broker restarted on an empty store: nasctl server makes it all
// at every start, a stock nats-server does not), with the Settings this
// client found there, and returns device's consumer. Drivers and workers
// both call it, so that the definitions are layout.go's alone.
func (b *Broker) restoreLayout(ctx context.Context, device runtime.Device) (jetstream.Consumer, error) {
	if _, err := ensureLayout(ctx, b.js, b.settings(), false); err != nil {
		return nil, err
	}
	return b.consumer(ctx, device)
}
