package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
)

const testToken = "s3cret-test-token"

// startServer starts a broker on a free loopback port with a token and a
// short AckWait, so that a lost job moves on within a test's patience.
func startServer(t testing.TB, s Settings) *Server {
	t.Helper()
	srv, err := StartServer(context.Background(), ServerOptions{Listen: "127.0.0.1:0", Store: t.TempDir(), Token: testToken, Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// connect opens a client over TCP, as a remote machine would.
func connect(t testing.TB, srv *Server, name string) *Broker {
	t.Helper()
	b, err := Connect(context.Background(), ClientOptions{URL: srv.URL(), Token: testToken, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// stand is an executor that answers at once (or after delay, for every
// trial or only slow's): a fixed training result with weights, or fails
// when fail says so. It counts its evaluations.
type stand struct {
	calls atomic.Int32
	fail  func(job search.Job) error
	delay time.Duration
	slow  int
}

func (s *stand) Data() search.Data { return search.Data{} }
func (s *stand) Test(context.Context, []byte) (*runtime.Evaluation, error) {
	return nil, errors.New("not here")
}

func (s *stand) Evaluate(ctx context.Context, j search.Job) (*search.Outcome, error) {
	s.calls.Add(1)
	if s.fail != nil {
		if err := s.fail(j); err != nil {
			return nil, err
		}
	}
	if s.delay > 0 && (s.slow == 0 || s.slow == j.Trial) {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return &search.Outcome{Training: &runtime.Result{Status: runtime.StatusInterrupted}}, ctx.Err()
		}
	}
	return &search.Outcome{Training: &runtime.Result{Status: runtime.StatusOK, ValAccuracy: 0.5 + float64(j.Trial)/1000,
		Epochs:  []runtime.EpochRecord{{Epoch: 1, ValAccuracy: 0.25, Seconds: 0.125}},
		Weights: [][]float32{{1, 2, 3}, {float32(j.Trial)}}}}, nil
}

// startWorker runs an in-process worker on its own connection with ex
// standing in for training; it stops with the test.
func startWorker(t testing.TB, srv *Server, name string, slots int, ex search.Executor) {
	t.Helper()
	w := &Worker{Broker: connect(t, srv, name), Device: runtime.CPU, Slots: slots, Name: name,
		executor: func(context.Context, DataSpec) (search.Executor, error) { return ex, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
}

// newTestExecutor is a driver on its own connection.
func newTestExecutor(t testing.TB, srv *Server, run string) *Executor {
	t.Helper()
	e, err := newExecutor(context.Background(), connect(t, srv, "driver"), run, runtime.CPU, DataSpec{Hash: "sha256:00"}, &stand{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func testJob(t testing.TB, trial int) search.Job {
	t.Helper()
	g, err := genotype.Parse("C(8,3,1) - P(2,2) - SM()")
	if err != nil {
		t.Fatal(err)
	}
	return search.Job{Trial: trial, Genotype: g, Config: runtime.TrainConfig{Epochs: 2, BatchSize: 16, Seed: uint64(trial)}}
}

// A job goes to a worker and its result, weights included, and the worker's
// name come back; the
// same job evaluated again (a restarted driver re-publishing it) gets the
// same result without a second training, and says so.
func TestEvaluateOnWorker(t *testing.T) {
	srv := startServer(t, Settings{})
	st := &stand{}
	startWorker(t, srv, "w1", 1, st)
	e := newTestExecutor(t, srv, "r")
	said := &logLines{}
	e.Say = said.log
	ctx := context.Background()
	for i := range 2 {
		out, err := e.Evaluate(ctx, testJob(t, 7))
		if err != nil {
			t.Fatal(err)
		}
		if out.Worker != "w1" {
			t.Errorf("the outcome names worker %q, want w1", out.Worker)
		}
		if out.Stored != (i == 1) { // the second answer was the broker's stored one
			t.Errorf("evaluation %d: stored %v", i+1, out.Stored)
		}
		r := out.Training
		if r.ValAccuracy != 0.507 || len(r.Epochs) != 1 || r.Epochs[0].Seconds != 0.125 || !slices.Equal(r.Weights[1], []float32{7}) {
			t.Fatalf("result %+v", r)
		}
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("trained %d times, want 1", n)
	}
	said.waitFor(t, "trial 7: taken from the result the broker stored at ")
}

// A job that fails on every delivery is recorded as failed with the
// worker's reason, after MaxDeliver deliveries, and leaves the queue. A
// later driver asking for the same job tries it again (the workers may
// have been fixed), and keeps the result that comes.
func TestFailsOnEveryDelivery(t *testing.T) {
	srv := startServer(t, Settings{MaxDeliver: 2})
	var broken atomic.Bool
	broken.Store(true)
	st := &stand{fail: func(search.Job) error {
		if broken.Load() {
			return errors.New("no GPU in here")
		}
		return nil
	}}
	startWorker(t, srv, "w1", 1, st)
	e := newTestExecutor(t, srv, "r")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.Evaluate(ctx, testJob(t, 3))
	if err == nil || !strings.Contains(err.Error(), "failed on all 2 deliveries; the last on worker w1: no GPU in here") {
		t.Fatalf("err = %v", err)
	}
	// The search records the trial with the worker of the last delivery.
	if on := (interface{ Worker() string })(nil); !errors.As(err, &on) || on.Worker() != "w1" {
		t.Errorf("the failure names no worker: %#v", err)
	}
	if n := st.calls.Load(); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
	// The failure is written before the job is deleted (a driver that dies
	// in between finds the job again, never a job without its failure), so
	// the deletion may come a moment after Evaluate returns.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := e.b.l.trials.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs left in %s", info.State.Msgs, StreamTrials)
		}
	}
	broken.Store(false)
	for range 2 { // tried again and trained; then the result stays
		if _, err := e.Evaluate(ctx, testJob(t, 3)); err != nil {
			t.Fatalf("again: %v", err)
		}
	}
	if n := st.calls.Load(); n != 3 {
		t.Errorf("%d deliveries in all, want 3", n)
	}
}

// A job whose last delivery a stopping worker handed back (a worker's
// second Ctrl-C Naks its jobs, which the broker counts as deliveries) is
// queued again with fresh deliveries rather than failed: here MaxDeliver 1,
// so one hand-back uses them all. Its driver follows the new copy without
// publishing one of its own or calling the job lost, and the next worker
// trains it.
func TestHandedBackOnLastDelivery(t *testing.T) {
	defer func(c time.Duration) { checkEvery = c }(checkEvery)
	checkEvery = 100 * time.Millisecond
	srv := startServer(t, Settings{MaxDeliver: 1})
	started := make(chan struct{})
	st := &stand{delay: time.Minute, fail: func(search.Job) error { close(started); return nil }}
	w := &Worker{Broker: connect(t, srv, "w1"), Device: runtime.CPU, Name: "w1",
		executor: func(context.Context, DataSpec) (search.Executor, error) { return st, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, nil) }()
	said := &logLines{}
	e := newTestExecutor(t, srv, "handed")
	e.Say = said.log
	answers := evaluate(e, testJob(t, 2))
	<-started
	cancel() // the second Ctrl-C
	<-done
	// The broker finds the job out of deliveries when a worker asks; that
	// worker then takes the new copy, and trains it until gate is closed.
	gate := make(chan struct{})
	startWorker(t, srv, "w2", 1, &stand{fail: func(search.Job) error { <-gate; return nil }})
	said.waitFor(t, "run handed trial 2: handed back on its last delivery (1 of 1) by a worker that stopped, runs another nasctl version or found its disk full; queued again, with fresh deliveries")
	// The driver looks for its job every checkEvery: ten looks later it
	// follows the one copy.
	time.Sleep(10 * checkEvery)
	q, err := connect(t, srv, "jobs").Queue(context.Background())
	close(gate)
	if err != nil || len(q) != 1 || q[0].Trial != 2 {
		t.Fatalf("queue after the hand-back: %+v, %v; want trial 2 once", q, err)
	}
	a := within(t, answers, said)
	if a.err != nil || a.out.Worker != "w2" {
		t.Errorf("the job handed back: %+v, %v; want trained by w2", a.out, a.err)
	}
	if line := said.String(); strings.Contains(line, "no longer holds it") {
		t.Errorf("the driver took the job moved for lost:\n%s", line)
	}
}

// The other order of TestHandedBackOnLastDelivery: the driver finds the
// job's message gone before the broker's copy of a job handed back on its
// last delivery is published (seen once in CI under the race detector).
// The driver's copy then goes first, and the broker's would be dropped as
// its duplicate; the driver says nothing of a lost job, as the note says
// where it went. With a failure's note instead, the job is called lost.
func TestHandedBackFoundGoneFirst(t *testing.T) {
	defer func(c time.Duration) { checkEvery = c }(checkEvery)
	checkEvery = 100 * time.Millisecond
	for _, c := range []struct {
		note string
		lost bool
	}{
		{"1 worker w1: " + handedBack, false},
		{"1 worker w1: out of memory", true},
	} {
		srv := startServer(t, Settings{MaxDeliver: 1})
		said := &logLines{}
		e := newTestExecutor(t, srv, "gone")
		e.Say = said.log
		j := testJob(t, 4)
		answers := evaluate(e, j)
		b := connect(t, srv, "jobs")
		var q []Queued
		for deadline := time.Now().Add(time.Minute); len(q) == 0; time.Sleep(20 * time.Millisecond) {
			var err error
			if q, err = b.Queue(context.Background()); err != nil || time.Now().After(deadline) {
				t.Fatalf("the job never queued: %v", err)
			}
		}
		w, err := jobOf("gone", DataSpec{Hash: "sha256:00"}, j, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, key := w.encode()
		if _, err := b.l.results.Put(context.Background(), errorKey(key), []byte(c.note)); err != nil {
			t.Fatal(err)
		}
		if err := b.l.trials.DeleteMsg(context.Background(), q[0].seq); err != nil {
			t.Fatal(err)
		}
		// The driver republishes at its next look; the job is queued once more.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if q, err = b.Queue(context.Background()); err == nil && len(q) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q: queue %+v, %v; want the job published again", c.note, q, err)
			}
		}
		time.Sleep(3 * checkEvery) // room for a word said after the publish
		if got := strings.Contains(said.String(), "no longer holds it"); got != c.lost {
			t.Errorf("%q: called lost %v, want %v; the driver said:\n%s", c.note, got, c.lost, said)
		}
		startWorker(t, srv, "w2", 1, &stand{})
		if a := within(t, answers, said); a.err != nil || a.out.Worker != "w2" {
			t.Errorf("%q: %+v, %v; want trained by w2", c.note, a.out, a.err)
		}
	}
}

// The broker's overhead per trial: the time from Evaluate's publish to its
// result back in the driver, for jobs that train nothing (the stand-in
// answers at once), one at a time over loopback TCP, with weights. The
// figure goes to docs/performance.md.
func TestBrokerOverhead(t *testing.T) {
	srv := startServer(t, Settings{})
	startWorker(t, srv, "w1", 1, &stand{})
	e := newTestExecutor(t, srv, "overhead")
	const n = 200
	ms := make([]float64, n)
	for i := range ms {
		start := time.Now()
		if _, err := e.Evaluate(context.Background(), testJob(t, i+1)); err != nil {
			t.Fatal(err)
		}
		ms[i] = float64(time.Since(start).Microseconds()) / 1000
	}
	slices.Sort(ms)
	t.Logf("broker overhead per trial over %d trials: median %.2f ms, p90 %.2f ms, max %.2f ms", n, ms[n/2], ms[n*9/10], ms[n-1])
}

func BenchmarkEvaluate(b *testing.B) {
	srv := startServer(b, Settings{})
	startWorker(b, srv, "w1", 1, &stand{})
	e := newTestExecutor(b, srv, "bench")
	i := 0
	for b.Loop() {
		i++
		if _, err := e.Evaluate(context.Background(), testJob(b, i)); err != nil {
			b.Fatal(err)
		}
	}
}

// A job that trains longer than the AckWait stays with its worker, whose
// heartbeats keep the lease: the other worker never gets it.
func TestHeartbeatsKeepALongJob(t *testing.T) {
	srv := startServer(t, Settings{AckWait: 1500 * time.Millisecond})
	st := &stand{delay: 3500 * time.Millisecond}
	startWorker(t, srv, "w1", 1, st)
	startWorker(t, srv, "w2", 1, st)
	e := newTestExecutor(t, srv, "long")
	if _, err := e.Evaluate(context.Background(), testJob(t, 1)); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("trained %d times, want 1", n)
	}
}

// A worker whose job gets a result from elsewhere (a worker that had lost
// its lease and finished anyway) stops training at its next heartbeat and
// acknowledges the job; the driver gets the first result.
func TestWorkerStopsWhenOvertaken(t *testing.T) {
	srv := startServer(t, Settings{AckWait: 600 * time.Millisecond})
	started := make(chan struct{}, 1)
	st := &stand{delay: time.Minute, slow: 4, fail: func(search.Job) error {
		select {
		case started <- struct{}{}:
		default:
		}
		return nil
	}}
	startWorker(t, srv, "w1", 1, st)
	e := newTestExecutor(t, srv, "overtaken")
	job := testJob(t, 4)
	w, err := jobOf(e.run, e.data, job, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, key := w.encode()
	go func() {
		<-started
		r := []byte(`{"v":1,"worker":"elsewhere","training":{"status":"ok","val_accuracy":0.75}}`)
		if _, err := e.b.l.results.Create(context.Background(), resultKey(key), r); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	out, err := e.Evaluate(context.Background(), job)
	if err != nil || out.Training.ValAccuracy != 0.75 {
		t.Fatalf("%v, %+v", err, out)
	}
	// The stand trains for a minute unless cancelled; the worker must be
	// free again well before that.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Evaluate(ctx, testJob(t, 5)); err != nil {
		t.Fatalf("the worker did not come back for the next job: %v", err)
	}
	t.Logf("overtaken job given up and the next one done in %.1fs", time.Since(start).Seconds())
}

// A driver whose trials no worker takes (none started, or all gone) says
// so while it waits, now and then; a worker that comes then trains them.
func TestDriverSaysNoWorker(t *testing.T) {
	defer func(c, i time.Duration) { checkEvery, idleEvery = c, i }(checkEvery, idleEvery)
	checkEvery, idleEvery = 100*time.Millisecond, 300*time.Millisecond
	srv := startServer(t, Settings{})
	e := newTestExecutor(t, srv, "idle")
	said := &logLines{}
	e.Say = said.log
	job := testJob(t, 3)
	done := make(chan error, 1)
	go func() {
		_, err := e.Evaluate(context.Background(), job)
		done <- err
	}()
	said.waitFor(t, "no worker is taking cpu trials: 1 wait in the queue and none is training")
	startWorker(t, srv, "w1", 1, &stand{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A search that starts while its device's only worker trains another
// search's trial says nothing about workers; one that starts with none
// says so once, and the driver's periodic look waits idleEvery before
// saying it again, however many trials look at once.
func TestDriverStartSaysNoWorkerOnce(t *testing.T) {
	defer func(c, i time.Duration) { checkEvery, idleEvery = c, i }(checkEvery, idleEvery)
	checkEvery, idleEvery = 50*time.Millisecond, time.Hour
	// The trials' evaluations end before the settings above are put back
	// (deferred first, done last), or they would read them as they change.
	ctx, cancel := context.WithCancel(context.Background())
	var evaluations sync.WaitGroup
	defer func() { cancel(); evaluations.Wait() }()
	evaluate := func(e *Executor, trial int) {
		job := testJob(t, trial)
		evaluations.Go(func() { e.Evaluate(ctx, job) })
	}
	srv := startServer(t, Settings{})
	racing := &logLines{}
	race := newTestExecutor(t, srv, "race")
	race.Say = racing.log
	for _, j := range []int{1, 2, 3} {
		evaluate(race, j)
	}
	time.Sleep(20 * checkEvery)
	if n := strings.Count(racing.String(), "no worker is taking cpu trials"); n != 1 {
		t.Errorf("%d notes from three trials looking at once; want 1:\n%s", n, racing)
	}
	said := &logLines{}
	lone := newTestExecutor(t, srv, "lone")
	lone.Say = said.log
	lone.SayIfNoWorker(context.Background())
	for _, j := range []int{1, 2, 3} { // three trials look, every checkEvery
		evaluate(lone, j)
	}
	time.Sleep(20 * checkEvery)
	if n := strings.Count(said.String(), "no worker is"); n != 1 || !strings.Contains(said.String(), "no worker is waiting for cpu trials yet") {
		t.Errorf("%d notes; want the start's once:\n%s", n, said)
	}

	gate := make(chan struct{})
	defer close(gate)
	started := make(chan struct{}, 8)
	startWorker(t, srv, "busy", 1, &stand{fail: func(search.Job) error { started <- struct{}{}; <-gate; return nil }})
	<-started // the worker holds one of the trials
	busy := &logLines{}
	other := newTestExecutor(t, srv, "other")
	other.Say = busy.log
	other.SayIfNoWorker(context.Background())
	if busy.String() != "" {
		t.Errorf("a worker in training, and the start says: %s", busy)
	}
}

// A driver whose trial waits with no worker at all is unserved (two looks
// a worker's poll apart say so); one with no trial in flight is not, even
// with another search's job waiting; nor is one whose trial a worker
// trains.
func TestUnserved(t *testing.T) {
	srv := startServer(t, Settings{})
	ctx, cancel := context.WithCancel(context.Background())
	var evaluations sync.WaitGroup
	defer func() { cancel(); evaluations.Wait() }()
	waiting, idle := newTestExecutor(t, srv, "waiting"), newTestExecutor(t, srv, "idle")
	job := testJob(t, 1)
	evaluations.Go(func() { waiting.Evaluate(ctx, job) })
	for waiting.unserved(ctx) == 0 {
		time.Sleep(10 * time.Millisecond) // published
	}
	if !waiting.Unserved(ctx) {
		t.Error("a trial waits with no worker: not unserved")
	}
	if idle.Unserved(ctx) {
		t.Error("no trial in flight, and unserved")
	}
	gate := make(chan struct{})
	defer close(gate)
	started := make(chan struct{}, 1)
	startWorker(t, srv, "w1", 1, &stand{fail: func(search.Job) error { started <- struct{}{}; <-gate; return nil }})
	<-started
	if waiting.Unserved(ctx) {
		t.Error("a worker trains the trial, and unserved")
	}
}

// A worker serving two searches keeps both datasets loaded; a third
// replaces the one used longest ago.
func TestWorkerKeepsTwoDatasets(t *testing.T) {
	var loads []string
	w := &Worker{executor: func(_ context.Context, spec DataSpec) (search.Executor, error) {
		loads = append(loads, spec.Hash)
		return &stand{}, nil
	}}
	for _, h := range []string{"a", "b", "a", "b", "a", "c", "a", "b"} {
		if _, err := w.executorFor(context.Background(), DataSpec{Hash: h}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a", "b", "c", "b"}; !slices.Equal(loads, want) {
		t.Errorf("loaded %q, want %q", loads, want)
	}
}

// loadsAt is a worker whose datasets load through a stand-in that blocks
// the first load of each hash in block until release is closed (or its job
// is abandoned, when it fails with abandonErr), and that counts the loads
// and the slots it logs as waiting.
type loadsAt struct {
	*Worker
	mu      sync.Mutex
	loads   map[string]int
	waiting map[string]int
	release chan struct{}
}

func newLoadsAt(abandonErr error, block ...string) *loadsAt {
	l := &loadsAt{loads: map[string]int{}, waiting: map[string]int{}, release: make(chan struct{})}
	l.Worker = &Worker{executor: func(ctx context.Context, spec DataSpec) (search.Executor, error) {
		l.mu.Lock()
		l.loads[spec.Hash]++
		n := l.loads[spec.Hash]
		l.mu.Unlock()
		if slices.Contains(block, spec.Hash) && n == 1 {
			select {
			case <-l.release:
			case <-ctx.Done():
				return nil, abandonErr
			}
		}
		return &stand{}, nil
	}, Log: func(format string, args ...any) {
		if line := fmt.Sprintf(format, args...); strings.HasSuffix(line, ": waiting for the load another job began") {
			l.mu.Lock()
			l.waiting[strings.TrimSuffix(strings.TrimPrefix(line, "dataset "), ": waiting for the load another job began")]++
			l.mu.Unlock()
		}
	}}
	return l
}

// count returns a counter of hash under the lock.
func (l *loadsAt) count(m map[string]int, hash string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return m[hash]
}

// until waits for a counter to reach n: the goroutines it waits for make
// progress whatever the machine's load.
func (l *loadsAt) until(t *testing.T, m map[string]int, hash string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a guard against a deadlock, not a timing
	for l.count(m, hash) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never reached %d", hash, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// get asks for hash's executor in a goroutine of its own.
func (l *loadsAt) get(ctx context.Context, hash string) <-chan error {
	done := make(chan error, 1)
	go func() {
		e, err := l.executorFor(ctx, DataSpec{Hash: hash})
		if err == nil && e == nil {
			err = errors.New("no executor")
		}
		done <- err
	}()
	return done
}

// A dataset that loads slowly keeps waiting only the slots that need it, and
// is loaded once: a slot asking for another dataset gets it meanwhile, a
// second slot asking for the same one waits for the first one's load, and
// two more datasets loaded meanwhile do not evict the one still loading.
func TestWorkerLoadsDatasetsOnce(t *testing.T) {
	l := newLoadsAt(context.Canceled, "slow")
	first := l.get(context.Background(), "slow")
	l.until(t, l.loads, "slow", 1)
	second := l.get(context.Background(), "slow")
	l.until(t, l.waiting, "slow", 1)
	for _, h := range []string{"fast", "faster"} { // keptExecutors would evict the oldest
		select { // a guard against a deadlock, not a timing
		case err := <-l.get(context.Background(), h):
			if err != nil {
				t.Fatalf("%s while slow loads: %v", h, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s waited for the slow dataset's load", h)
		}
	}
	close(l.release)
	for _, done := range []<-chan error{first, second} {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if err := <-l.get(context.Background(), "slow"); err != nil {
		t.Error(err)
	}
	if n := l.count(l.loads, "slow"); n != 1 {
		t.Errorf("slow loaded %d times, want once", n)
	}
}

// When the job loading a dataset is abandoned, a slot waiting for it loads
// it for itself, whatever error the abandoned load ended with (a broker's
// timeout, not only the context's).
func TestWorkerTakesOverAbandonedLoad(t *testing.T) {
	for _, abandonErr := range []error{context.Canceled, errors.New("nats: timeout")} {
		l := newLoadsAt(abandonErr, "slow")
		ctx, abandon := context.WithCancel(context.Background())
		first := l.get(ctx, "slow")
		l.until(t, l.loads, "slow", 1)
		second := l.get(context.Background(), "slow")
		l.until(t, l.waiting, "slow", 1)
		abandon()
		if err := <-first; !errors.Is(err, abandonErr) {
			t.Errorf("%v: the abandoned slot: %v", abandonErr, err)
		}
		if err := <-second; err != nil {
			t.Errorf("%v: the waiting slot: %v", abandonErr, err)
		}
		if n := l.count(l.loads, "slow"); n != 2 {
			t.Errorf("%v: slow loaded %d times, want twice (the abandoned load and the waiting slot's)", abandonErr, n)
		}
	}
}

// A worker that takes a job of another nasctl version (its driver is newer
// or older) trains nothing, leaves a note that reads as a hand-back (so
// that the job is queued again rather than failed should that be its last
// delivery), hands the job back, and stops with an error that says so:
// left running, it would use up every delivery of that driver's jobs.
func TestWorkerStopsOnOtherVersion(t *testing.T) {
	srv := startServer(t, Settings{MaxDeliver: 3})
	b := connect(t, srv, "newer driver")
	data, err := json.Marshal(job{Version: wireVersion + 1, Run: "newer", Trial: 4, Kind: "metaqnn", Genotype: "SM()"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.js.Publish(ctx, Subject(runtime.CPU), data); err != nil {
		t.Fatal(err)
	}
	st := &stand{}
	logs := &logLines{}
	w := &Worker{Broker: connect(t, srv, "older"), Device: runtime.CPU, Name: "older", Log: logs.log,
		executor: func(context.Context, DataSpec) (search.Executor, error) { return st, nil }}
	err = w.Run(ctx, nil)
	want := fmt.Sprintf("worker older handed back a job of another nasctl version and takes no more jobs: job format %d, this nasctl reads %d",
		wireVersion+1, wireVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run: %v; want %q", err, want)
	}
	if n := st.calls.Load(); n != 0 {
		t.Errorf("%d trainings of a job it cannot read", n)
	}
	// The log names the job by its run and trial, which still read.
	logs.waitFor(t, fmt.Sprintf("run newer trial 4: job format %d, this nasctl reads %d", wireVersion+1, wireVersion))
	note, err := b.l.results.Get(ctx, errorKey(jobKey(data)))
	if err != nil {
		t.Fatalf("the hand-back's note: %v", err)
	}
	if n, text := readNote(note.Value()); n != 1 || !handedBackNote(text) || !strings.HasPrefix(text, "worker older: job format") {
		t.Errorf("note %q of delivery %d; want delivery 1, the format and a hand-back", text, n)
	}
	// The job waits for a worker of its version, with deliveries left.
	info, err := b.l.trials.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Errorf("trials stream: %+v, %v; want the job kept", info, err)
	}
}

// A worker whose disk is full (here the dataset's fetch) hands its job
// back rather than failing it, and stops: left running, it would take and
// fail every job at once, using up their deliveries (one, here). The job,
// queued again, is trained by a healthy worker.
func TestWorkerStopsOnFullDisk(t *testing.T) {
	defer func(c time.Duration) { checkEvery = c }(checkEvery)
	checkEvery = 100 * time.Millisecond
	srv := startServer(t, Settings{MaxDeliver: 1})
	full := &os.PathError{Op: "write", Path: "/cache/.fetch-1/LEAF_0512.png", Err: syscall.ENOSPC}
	logs := &logLines{}
	w := &Worker{Broker: connect(t, srv, "full"), Device: runtime.CPU, Name: "full", Log: logs.log,
		executor: func(context.Context, DataSpec) (search.Executor, error) {
			return nil, fmt.Errorf("fetching dataset sha256:00: %w", full)
		}}
	said := &logLines{}
	e := newTestExecutor(t, srv, "disk")
	e.Say = said.log
	answers := evaluate(e, testJob(t, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.Run(ctx, nil)
	want := "worker full: fetching dataset sha256:00: write /cache/.fetch-1/LEAF_0512.png: no space left on device; " +
		"it handed the job back and takes no more jobs: free space in its --cache and temporary folder, then start it again"
	if err == nil || err.Error() != want {
		t.Fatalf("Run: %v; want %q", err, want)
	}
	startWorker(t, srv, "w2", 1, &stand{})
	a := within(t, answers, said)
	if a.err != nil || a.out.Worker != "w2" {
		t.Errorf("the job handed back: %+v, %v; want trained by w2\n%s", a.out, a.err, said.String())
	}
	// Said by whichever driver handles the advisory, which may come just
	// after the answer: waited for, as in TestHandedBackOnLastDelivery.
	said.waitFor(t, "handed back on its last delivery (1 of 1) by a worker that stopped, runs another nasctl version or found its disk full")
}

// A note that ends as a hand-back's, by a stopping worker or one of another
// version, gets the job queued again on its last delivery; a failure's
// does not.
func TestHandedBackNote(t *testing.T) {
	for text, want := range map[string]bool{
		"worker w1: " + handedBack: true,
		"worker w1: job format 6, this nasctl reads 5: run the same nasctl version on the driver and the workers; " + handedBackVersion: true,
		"worker w1: no GPU in here": false,
	} {
		if got := handedBackNote(text); got != want {
			t.Errorf("%q: %v", text, got)
		}
	}
}
