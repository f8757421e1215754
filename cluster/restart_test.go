package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// answer is what an Evaluate run in the background returned.
type answer struct {
	out *search.Outcome
	err error
}

// evaluate runs e.Evaluate(j) in the background.
func evaluate(e *Executor, j search.Job) <-chan answer {
	answers := make(chan answer, 1)
	go func() {
		out, err := e.Evaluate(context.Background(), j)
		answers <- answer{out, err}
	}()
	return answers
}

// within waits a minute for the answer (a bound on a hang, not a speed
// check).
func within(t *testing.T, answers <-chan answer, logs *logLines) answer {
	t.Helper()
	select {
	case a := <-answers:
		return a
	case <-time.After(time.Minute):
		t.Fatalf("the driver got no result in a minute; the worker's log:\n%s", logs)
		return answer{}
	}
}

// startTestWorker runs a worker with slots slots and ex standing in for
// training, logging to logs; it stops with the test.
func startTestWorker(t *testing.T, srv *Server, slots int, ex search.Executor, logs *logLines) {
	t.Helper()
	w := &Worker{Broker: connect(t, srv, "w1"), Device: runtime.CPU, Slots: slots, Name: "w1", Log: logs.log,
		executor: func(context.Context, DataSpec) (search.Executor, error) { return ex, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A broker restarted on an empty store (a store on a tmpfs after a reboot,
// a container without a volume) no longer holds the jobs published
// before. The driver finds its job gone, publishes it again, says so, and
// gets its result; against a stock nats-server, which makes nothing at
// start, it first makes the stream, consumer and buckets again. The first
// delivery never ends (its worker slot is stuck): the result is the second
// slot's, from the job published again.
func TestDriverRepublishesLostJob(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(t *testing.T, addr, store string)
	}{
		{"nasctl server", func(t *testing.T, addr, store string) {
			srv, err := StartServer(context.Background(), ServerOptions{Listen: addr, Store: store, Token: testToken})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
		}},
		{"stock nats-server", startStock},
	} {
		t.Run(tc.name, func(t *testing.T) { testLostJob(t, tc.restart) })
	}
}

func testLostJob(t *testing.T, restart func(t *testing.T, addr, store string)) {
	defer func(d time.Duration) { checkEvery = d }(checkEvery)
	checkEvery = 200 * time.Millisecond
	srv, opts := startOnPort(t, ServerOptions{Store: t.TempDir(), Token: testToken})

	started, stuck := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	st := &stand{fail: func(search.Job) error {
		if first.CompareAndSwap(false, true) {
			close(started)
			<-stuck
		}
		return nil
	}}
	logs := &logLines{}
	startTestWorker(t, srv, 2, st, logs)
	t.Cleanup(func() { close(stuck) }) // before the worker is waited for
	said := &logLines{}
	e := newTestExecutor(t, srv, "lost")
	e.Say = said.log
	answers := evaluate(e, testJob(t, 12))
	<-started
	srv.Close()
	if err := os.RemoveAll(opts.Store); err != nil {
		t.Fatal(err)
	}
	restart(t, opts.Listen, opts.Store)

	a := within(t, answers, logs)
	if a.err != nil || a.out.Training.ValAccuracy != 0.512 {
		t.Fatalf("%v, %+v", a.err, a.out)
	}
	said.waitFor(t, "trial 12: the broker no longer holds it (removed with nasctl jobs --drop, or the broker restarted on an empty store); published again")
	if n := st.calls.Load(); n != 2 {
		t.Errorf("trained %d times, want 2 (the stuck delivery, the one published again); the worker's log:\n%s", n, logs)
	}
}

// startStock starts a plain nats-server with JetStream on addr, which
// makes none of what nasctl keeps on it.
func startStock(t *testing.T, addr, store string) {
	host, port, err := splitListen(addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: store,
		Authorization: testToken, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the stock nats-server is not accepting clients after 10 s")
	}
}

// A worker whose training fails while the broker is down keeps the note
// of why and stores it once the broker is back (same store, same port), as
// it would a result, before it hands the job back: it is what the driver
// says should every delivery fail. The next delivery trains.
func TestWorkerKeepsFailureNoteThroughOutage(t *testing.T) {
	ctx := context.Background()
	srv, opts := startRestartable(t)

	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	st := &stand{fail: func(search.Job) error {
		if !first.CompareAndSwap(false, true) {
			return nil
		}
		close(started)
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
		return errors.New("out of memory")
	}}
	logs := &logLines{}
	startTestWorker(t, srv, 1, st, logs)
	e := newTestExecutor(t, srv, "note")
	job := testJob(t, 5)
	answers := evaluate(e, job)
	<-started
	srv.Close()
	close(release)
	// Without the broker, a worker that does not wait loses the note and
	// goes on asking for jobs.
	if line := logs.waitFor(t, "waiting for the broker", "asking"); !strings.Contains(line, "storing its failure note failed") {
		t.Fatalf("with the broker down: %q", line)
	}
	restartServer(t, opts)
	logs.waitFor(t, "the broker is back; its failure note stored")

	a := within(t, answers, logs)
	if a.err != nil || a.out.Training.ValAccuracy != 0.505 {
		t.Fatalf("%v, %+v", a.err, a.out)
	}
	w, err := jobOf(e.run, e.data, job, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, key := w.encode()
	note, err := e.b.l.results.Get(ctx, errorKey(key))
	if err != nil || string(note.Value()) != "1 worker w1: out of memory" {
		t.Fatalf("the failure note: %v, %v", note, err)
	}
	if n := st.calls.Load(); n != 2 {
		t.Errorf("trained %d times, want 2; the worker's log:\n%s", n, logs)
	}
}

// publishJob publishes trial's job as a driver does, under its key, and
// returns the key and the job's sequence in StreamTrials.
func publishJob(t *testing.T, b *Broker, trial int) (string, uint64) {
	t.Helper()
	w, err := jobOf("stale", DataSpec{Hash: "sha256:00"}, testJob(t, trial), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, key := w.encode()
	ack, err := b.js.Publish(context.Background(), Subject(runtime.CPU), body, jetstream.WithMsgID(key))
	if err != nil {
		t.Fatal(err)
	}
	return key, ack.Sequence
}

// A worker still training a job delivered before its broker restarted on
// an empty store must not acknowledge that delivery: the new store numbers
// its jobs from 1 again, and the acknowledgement, which names the job by
// its number, would remove another job from the queue while that job is in
// flight (here with the test, standing for a second worker). The worker
// stores its result under the job's key, where a driver finds it, and says
// why it does not acknowledge. A delivery taken after the restart is
// acknowledged as ever.
func TestWorkerLeavesStaleDelivery(t *testing.T) {
	ctx := context.Background()
	srv, opts := startOnPort(t, ServerOptions{Store: t.TempDir(), Token: testToken})
	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	st := &stand{fail: func(search.Job) error {
		if first.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
		return nil
	}}
	logs := &logLines{}
	startTestWorker(t, srv, 1, st, logs)
	keyA, seqA := publishJob(t, connect(t, srv, "driver"), 1)
	<-started
	srv.Close()
	// The same address, an empty store (default AckWait: the job the test
	// takes stays with it).
	opts.Store = t.TempDir()
	fresh, err := StartServer(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fresh.Close)
	b := connect(t, fresh, "driver again")
	keyB, seqB := publishJob(t, b, 2)
	if seqB != seqA {
		t.Fatalf("trial 2 at sequence %d, trial 1 was at %d: the test needs them equal", seqB, seqA)
	}
	mB := takeJob(t, b)
	if mB.Headers().Get(jetstream.MsgIDHeader) != keyB {
		t.Fatal("the test did not get trial 2")
	}
	close(release)
	logs.waitFor(t, "run stale trial 1: ok, val 0.5010")

	if msg, err := b.l.trials.GetMsg(ctx, seqB); err != nil || msg.Header.Get(jetstream.MsgIDHeader) != keyB {
		t.Fatalf("trial 2, in flight at sequence %d, is no longer queued (%v) once the worker finished trial 1, delivered at the same sequence before the restart; the worker's log:\n%s", seqB, err, logs)
	}
	if line := logs.waitFor(t, "run stale trial 1: the broker no longer holds this delivery"); !strings.Contains(line, "this worker's result is stored under the job's key") {
		t.Errorf("the worker does not say that its result is stored: %q", line)
	}
	if r, err := b.l.results.Get(ctx, resultKey(keyA)); err != nil || !strings.Contains(string(r.Value()), `"worker":"w1"`) {
		t.Fatalf("trial 1's result on the new store: %v", err)
	}

	// Handed back, trial 2 goes to the worker, whose acknowledgement
	// removes it from the queue.
	if err := mB.Nak(); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "run stale trial 2: ok, val 0.5020")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		_, err := b.l.trials.GetMsg(ctx, seqB)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trial 2 still queued a minute after the worker finished it (%v); the worker's log:\n%s", err, logs)
		}
	}
}

// A delivery that another worker acknowledged (it took the job when this
// one's lease ran out) is gone from the broker: the worker says so, without
// blaming a restart, and claims a stored result only when there is one.
func TestGoneDeliverySaysWhatIsKnown(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, Settings{})
	b := connect(t, srv, "worker")
	for _, kept := range []string{"", "this worker's result is stored under the job's key"} {
		publishJob(t, b, len(kept)+1)
		m := takeJob(t, b)
		if err := m.DoubleAck(ctx); err != nil { // the other worker's
			t.Fatal(err)
		}
		logs := &logLines{}
		d := &delivery{m: m, b: b, what: "the job", log: logs.log, kept: kept}
		if err := d.ack(ctx); !errors.Is(err, errGone) {
			t.Fatalf("acknowledged again: %v", err)
		}
		line := logs.waitFor(t, "the job: the broker no longer holds this delivery")
		if !strings.Contains(line, "another worker took the job when this one's lease ran out") ||
			strings.Contains(line, "stored") != (kept != "") || kept != "" && !strings.HasSuffix(line, "; "+kept) {
			t.Errorf("kept %q: %q", kept, line)
		}
	}
}

// Two deliveries of one job finish (the first's lease ran out) on workers
// of the same name (--name given twice, or two slots of one worker): the
// second's result loses, and dropping its weights must leave the first's,
// which the stored result names, whole.
func TestLoserKeepsWinnersWeights(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, Settings{})
	b := connect(t, srv, "worker")
	key, _ := publishJob(t, b, 8)
	m := takeJob(t, b)
	logs := &logLines{}
	for _, weight := range []float32{1, 2} { // the winner's, then the loser's
		w := &Worker{Broker: b, Device: runtime.CPU, Name: "same", Log: logs.log}
		out := &search.Outcome{Training: &runtime.Result{Status: runtime.StatusOK, Weights: [][]float32{{weight}}}}
		w.finish(ctx, &delivery{m: m, b: b, what: "the job", log: logs.log}, key, out, lease{beat: time.Second, maxDeliver: 3})
	}
	logs.waitFor(t, "another worker's result came first; this one dropped")
	r, err := b.l.results.Get(ctx, resultKey(key))
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.outcome(ctx, 8, r.Value())
	if err != nil || out.Training.Weights[0][0] != 1 {
		t.Fatalf("the stored result's weights: %v, %v; the log:\n%s", err, out, logs)
	}
	objects, err := b.l.weights.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(objects); n != 1 {
		t.Errorf("%d weights objects, want the winner's alone", n)
	}
}

// A stock nats-server restarted on an empty store makes nothing at start:
// the worker finds its consumer gone and makes it again, with the stream
// and buckets, by the same definitions as a driver (Broker.restoreLayout)
// and with the settings it had found there, then takes jobs; it does not
// wait for a driver to make them.
func TestWorkerRemakesConsumer(t *testing.T) {
	ctx := context.Background()
	set := Settings{AckWait: 7 * time.Second, MaxDeliver: 5, Duplicates: time.Hour, ResultTTL: 48 * time.Hour, MaxAckPending: 64}
	srv, opts := startOnPort(t, ServerOptions{Store: t.TempDir(), Token: testToken, Settings: set})
	addr := opts.Listen
	logs := &logLines{}
	startTestWorker(t, srv, 2, &stand{}, logs)
	logs.waitFor(t, "taking jobs from")
	srv.Close()
	if err := os.RemoveAll(opts.Store); err != nil {
		t.Fatal(err)
	}
	startStock(t, addr, opts.Store)

	// A bare connection, which makes nothing, looks.
	bare, err := dial(ctx, ClientOptions{URL: "nats://" + addr, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	want := set.trialsConsumer(runtime.CPU)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		c, err := bare.js.Consumer(ctx, StreamTrials, want.Durable)
		if err == nil {
			got := c.CachedInfo().Config
			if got.AckWait != want.AckWait || got.MaxDeliver != want.MaxDeliver || got.FilterSubject != want.FilterSubject ||
				got.MaxAckPending != want.MaxAckPending || got.AckPolicy != want.AckPolicy {
				t.Fatalf("consumer made again as %+v, want %+v", got, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no consumer %s on the stock nats-server a minute after its restart (%v); the worker's log:\n%s", want.Durable, err, logs)
		}
	}
	for _, name := range []string{StreamExhausted, "KV_" + BucketResults, "OBJ_" + BucketWeights, "OBJ_" + BucketDatasets} {
		if _, err := bare.js.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	l, err := ensureLayout(ctx, bare.js, Settings{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.settings(ctx); got.Duplicates != set.Duplicates || got.ResultTTL != set.ResultTTL {
		t.Errorf("stream and results made again with duplicates %s, TTL %s; want %s, %s", got.Duplicates, got.ResultTTL, set.Duplicates, set.ResultTTL)
	}

	b, err := Connect(ctx, ClientOptions{URL: "nats://" + addr, Token: testToken, Name: "driver"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e, err := newExecutor(ctx, b, "remade", runtime.CPU, DataSpec{Hash: "sha256:00"}, &stand{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := e.Evaluate(tctx, testJob(t, 6)); err != nil || out.Training.ValAccuracy != 0.506 {
		t.Fatalf("%v, %+v; the worker's log:\n%s", err, out, logs)
	}
}

// takeJob takes the next cpu job from b's queue, as a worker would.
func takeJob(t *testing.T, b *Broker) jetstream.Msg {
	t.Helper()
	cons, err := b.consumer(context.Background(), runtime.CPU)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := <-batch.Messages()
	if m == nil {
		t.Fatalf("no job: %v", batch.Error())
	}
	return m
}
