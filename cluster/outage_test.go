package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nats-io/nats.go"
)

// logLines collects a worker's log and tells when a line with a given
// text appears.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// waitFor waits for a line containing one of texts and returns it; it
// fails the test after a minute (a bound on a hang, not a speed check).
func (l *logLines) waitFor(t *testing.T, texts ...string) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		i := slices.IndexFunc(l.lines, func(s string) bool {
			return slices.ContainsFunc(texts, func(x string) bool { return strings.Contains(s, x) })
		})
		var line string
		if i >= 0 {
			line = l.lines[i]
		}
		l.mu.Unlock()
		if i >= 0 {
			return line
		}
	}
	t.Fatalf("no line with %q in a minute; the log:\n%s", texts, l.String())
	return ""
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startRestartable starts a broker whose options start it again on the
// same port and store, with a short AckWait.
func startRestartable(t *testing.T) (*Server, ServerOptions) {
	t.Helper()
	return startOnPort(t, ServerOptions{Store: t.TempDir(), Token: testToken, Settings: Settings{AckWait: 2 * time.Second}})
}

// startOnPort starts a broker with opts on a free loopback port, and
// returns opts with that port, to start it again there.
func startOnPort(t *testing.T, opts ServerOptions) (*Server, ServerOptions) {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	srv, err := StartServer(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.Listen = u.Host
	return srv, opts
}

// restartServer starts the broker of startRestartable's options again; it
// stops with the test.
func restartServer(t *testing.T, opts ServerOptions) {
	t.Helper()
	srv, err := StartServer(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
}

// A worker that finishes a trial while the broker is down keeps the result
// and stores it once the broker is back (same store, same port), on the
// same delivery: the trial is trained once, and the driver gets it.
func TestWorkerWaitsOutBrokerOutage(t *testing.T) {
	srv, opts := startRestartable(t)

	started, release := make(chan struct{}), make(chan struct{})
	st := &stand{fail: func(search.Job) error {
		close(started)
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
		return nil
	}}
	logs := &logLines{}
	startTestWorker(t, srv, 1, st, logs)
	e := newTestExecutor(t, srv, "outage")
	answers := evaluate(e, testJob(t, 9))
	<-started
	srv.Close()
	close(release)
	// The first try to store fails: without the broker, a worker that
	// gives up fails the delivery here.
	if line := logs.waitFor(t, "waiting for the broker", "failed:"); !strings.Contains(line, "waiting for the broker") {
		t.Fatalf("with the broker down: %q", line)
	}
	restartServer(t, opts)
	logs.waitFor(t, "the broker is back")
	a := within(t, answers, logs)
	if a.err != nil || a.out.Training.ValAccuracy != 0.509 {
		t.Fatalf("%v, %+v", a.err, a.out)
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("trained %d times, want 1; the worker's log:\n%s", n, logs)
	}
}

// A worker's Connect with Wait waits for a broker started after it, and
// returns when its context ends; without Wait it fails at once.
func TestConnectWaitsForBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // free, for the broker started later
	o := ClientOptions{URL: "nats://" + addr, Token: testToken}
	if _, err := Connect(context.Background(), o); !errors.Is(err, errNoBroker) {
		t.Fatalf("without Wait: %v", err)
	}

	logs := &logLines{}
	o.Wait, o.Log = true, logs.log
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() {
		_, err := Connect(ctx, o)
		cancelled <- err
	}()
	logs.waitFor(t, "waiting for the broker at nats://"+addr)
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	connected := make(chan error, 1)
	go func() {
		b, err := Connect(context.Background(), o)
		if err == nil {
			b.Close()
		}
		connected <- err
	}()
	time.Sleep(1500 * time.Millisecond) // a try or two without a broker
	srv, err := StartServer(context.Background(), ServerOptions{Listen: addr, Store: t.TempDir(), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := <-connected; err != nil {
		t.Fatal(err)
	}

	// What waiting would not fix is not waited for.
	o.Token = "wrong"
	if _, err := Connect(context.Background(), o); err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("wrong token: %v", err)
	}
}

// A broker that cannot start says why at once: the port taken, a store it
// cannot use, a store another broker holds. For the port or store of
// another broker (a second search with --broker embedded), it says how to
// join that one.
func TestStartServerFailures(t *testing.T) {
	ctx := context.Background()
	store := t.TempDir()
	srv, err := StartServer(ctx, ServerOptions{Listen: "127.0.0.1:0", Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A store whose jetstream folder cannot be made: the lock is taken,
	// and JetStream fails inside the server.
	blocked := t.TempDir()
	if err := os.WriteFile(filepath.Join(blocked, "jetstream"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		o    ServerOptions
		want string
		also []string // what to do
	}{
		{"port taken", ServerOptions{Listen: u.Host, Store: t.TempDir()}, "address already in use",
			[]string{u.Host + " is in use, probably by another broker", "join that one with --broker " + srv.URL(), "--broker-listen"}},
		{"store under a file", ServerOptions{Listen: "127.0.0.1:0", Store: filepath.Join(file, "sub")}, "not a directory", nil},
		{"jetstream folder a file", ServerOptions{Listen: "127.0.0.1:0", Store: blocked}, "JetStream", nil},
		{"store in use", ServerOptions{Listen: "127.0.0.1:0", Store: store}, "in use by another broker at " + srv.URL(),
			[]string{"join that one with --broker " + srv.URL() + " instead", "--broker-store"}},
	} {
		// The error says the cause; the log does not say it again.
		var logged []string
		tc.o.Log = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
		s, err := StartServer(ctx, tc.o)
		if err == nil {
			s.Close()
		}
		for _, want := range append(tc.also, tc.want) {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q", tc.what, err, want)
			}
		}
		for _, l := range logged {
			if strings.Contains(l, tc.want) {
				t.Errorf("%s: the log says the cause too: %q", tc.what, l)
			}
		}
	}
}

// Workers that read the consumer's settings before nasctl server brought
// them to its own (a worker waiting for the broker comes in just after it
// accepts clients, before its set-up) heartbeat by the new AckWait: a job
// longer than it stays with its worker.
func TestWorkerFollowsAckWaitChange(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, Settings{}) // AckWait 60 s: a heartbeat every 20 s
	st := &stand{delay: 3500 * time.Millisecond}
	startWorker(t, srv, "w1", 1, st)
	startWorker(t, srv, "w2", 1, st)
	b := connect(t, srv, "set-up")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		c, err := b.consumer(ctx, runtime.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := c.Info(ctx); err == nil && info.NumWaiting == 2 {
			break // both workers have read the settings and ask for jobs
		}
		if time.Now().After(deadline) {
			t.Fatal("the workers never asked for a job")
		}
	}
	short := Settings{AckWait: 1500 * time.Millisecond}.WithDefaults()
	if _, err := ensureConsumer(ctx, b.l.trials, short.trialsConsumer(runtime.CPU), true); err != nil {
		t.Fatal(err)
	}
	e := newTestExecutor(t, srv, "changed")
	if _, err := e.Evaluate(ctx, testJob(t, 1)); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("trained %d times, want 1", n)
	}
}

// What the client reports on its own goes to the client's log in words,
// not to stderr in the library's; a watch's consumer found inactive while
// the broker is away is not said (the lost connection is, and the watch is
// reset on reconnection).
func TestAsyncErrorsToLog(t *testing.T) {
	srv := startServer(t, Settings{})
	logs := &logLines{}
	b, err := Connect(context.Background(), ClientOptions{URL: srv.URL(), Token: testToken, Log: logs.log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cb := b.nc.ErrorHandler()
	cb(b.nc, nil, nats.ErrConsumerNotActive)
	cb(b.nc, nil, nats.ErrSlowConsumer)
	want := "this client fell behind what the broker " + srv.URL() + " sent it"
	if s := logs.String(); !strings.HasPrefix(s, want) || strings.Contains(s, "\n") {
		t.Errorf("the log:\n%s\nwant one line: %q", s, want)
	}
}

// A client whose broker is away says so again every stillAway while it
// is, not only once, and stops saying it once the broker is back.
func TestClientRemindsBrokerAway(t *testing.T) {
	defer func(d time.Duration) { stillAway = d }(stillAway)
	stillAway = 100 * time.Millisecond
	srv, opts := startRestartable(t)
	logs := &logLines{}
	b, err := Connect(context.Background(), ClientOptions{URL: srv.URL(), Token: testToken, Name: "driver", Log: logs.log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv.Close()
	logs.waitFor(t, "lost the broker")
	logs.waitFor(t, "is still away")
	restartServer(t, opts)
	logs.waitFor(t, "reconnected to the broker")
	time.Sleep(5 * stillAway)
	text := logs.String()
	if after := text[strings.LastIndex(text, "reconnected to the broker"):]; strings.Contains(after, "still away") {
		t.Errorf("still reminding after the broker came back:\n%s", text)
	}
}
