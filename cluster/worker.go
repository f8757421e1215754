package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nats-io/nats.go/jetstream"
)

// pollWait is how long a free slot's request for a job lasts before it is
// made again; a job published meanwhile is handed over at once.
const pollWait = 5 * time.Second

// failDelay is how long a job that failed waits before it is handed out
// again, so that another worker may take it.
const failDelay = time.Second

// Worker runs jobs from the broker, Slots at a time, on its device: each
// with a local executor over the job's dataset, fetched from the broker
// once into Cache and checked against its content hash.
//
// For every job it takes, a worker: acknowledges it at once when the
// results bucket holds its result already; otherwise trains it, telling
// the broker it is still at work every third of the consumer's AckWait and
// giving up early when another worker's result appears; then writes the
// result create-only and only then acknowledges the job, so that a job is
// never gone without its result. A failure is noted (error.<key>) and the
// job handed back, to be delivered again up to the consumer's MaxDeliver.
// A delivery the broker no longer holds (acknowledged by another worker
// after this one's lease ran out, or taken before the broker restarted on
// an empty store) is neither acknowledged nor handed back (see delivery); a
// consumer the broker lost is made again (recreate).
type Worker struct {
	Broker   *Broker
	Device   runtime.Device
	DeviceID int
	// Slots is the number of jobs run at once; zero: 1.
	Slots int
	// Threads, when positive, replaces the search's ONNX Runtime threads
	// per job. Training is deterministic for given threads: a different
	// count may change a trial's numbers from those of a local run.
	Threads int
	// Name identifies the worker in logs and results; empty: HOST-PID.
	Name string
	// Cache is the folder where fetched datasets are kept.
	Cache string
	// Log, when set, receives what the worker is doing, a line at a time.
	Log func(format string, args ...any)

	// executor makes the executor of a dataset; nil: fetch it into Cache
	// and train with search.LocalExecutor (tests put a stand-in here).
	executor func(ctx context.Context, spec DataSpec) (search.Executor, error)

	mu    sync.Mutex
	execs []*keptExecutor // the datasets loaded or loading, the last used last
	// restoring makes one slot at a time make again what the broker lost;
	// remade counts the times it did.
	restoring sync.Mutex
	remade    atomic.Uint64
	// halt ends the taking of jobs, with haltErr as Run's answer: the
	// worker met a job of another nasctl version (handle).
	halt     chan struct{}
	haltOnce sync.Once
	haltErr  error
}

// Run takes jobs until ctx is cancelled, which abandons the jobs in flight
// (handed back at once for another worker), or until stop is closed, which
// takes no more and returns when those in flight are done; or until it
// takes a job of another format (another nasctl version), which it hands
// back, and then it returns that error once those in flight are done.
func (w *Worker) Run(ctx context.Context, stop <-chan struct{}) error {
	cons, err := w.Broker.consumer(ctx, w.Device)
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("broker %s: %w", w.Broker.url, err)
	}
	if w.Name == "" {
		host, _ := os.Hostname()
		w.Name = fmt.Sprintf("%s-%d", cmp.Or(host, "worker"), os.Getpid())
	}
	slots := max(w.Slots, 1)
	lease := leaseOf(info.Config)
	w.log("worker %s: %d slot(s) on %s, taking jobs from %s (%s); a silent worker's job moves on after %s",
		w.Name, slots, w.Device, w.Broker.url, Subject(w.Device), info.Config.AckWait)
	w.halt = make(chan struct{})
	taking := make(chan struct{}) // closed by stop or halt: no more jobs
	go func() {
		select {
		case <-stop:
		case <-w.halt:
		case <-ctx.Done():
		}
		close(taking)
	}()
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() { w.slot(ctx, taking, cons, lease) })
	}
	wg.Wait()
	if w.haltErr != nil {
		return w.haltErr
	}
	return ctx.Err()
}

// stopTaking makes the worker take no more jobs and Run return err once
// the jobs in flight are done.
func (w *Worker) stopTaking(err error) {
	w.haltOnce.Do(func() {
		w.haltErr = err
		close(w.halt)
	})
}

// lease is what a worker needs to know of its consumer's settings.
type lease struct {
	beat       time.Duration // between heartbeats
	maxDeliver int
}

func leaseOf(c jetstream.ConsumerConfig) lease {
	return lease{beat: max(c.AckWait/3, 100*time.Millisecond), maxDeliver: c.MaxDeliver}
}

// slot takes one job at a time. A request the broker refuses is made
// again after a second; at once when the refusal was for a consumer the
// broker had lost (restarted on an empty store), made again by recreate.
func (w *Worker) slot(ctx context.Context, stop <-chan struct{}, cons jetstream.Consumer, l lease) {
	var lastErr string
	for !stopped(stop) && !stopped(w.halt) && ctx.Err() == nil {
		remade := w.remade.Load()
		err := w.take(ctx, stop, cons, &l)
		if err == nil || ctx.Err() != nil || w.recreate(ctx, remade) {
			lastErr = ""
			continue
		}
		if err.Error() != lastErr {
			w.log("asking %s for a job: %v (retrying)", w.Broker.url, err)
		}
		lastErr = err.Error()
		sleep(ctx, time.Second)
	}
}

// take asks the consumer for a job and runs it. It returns why the broker
// gave none, or nil when it had none to give within pollWait (or did not
// answer: the connection says when it is lost).
func (w *Worker) take(ctx context.Context, stop <-chan struct{}, cons jetstream.Consumer, l *lease) error {
	fctx, cancel := context.WithTimeout(ctx, pollWait)
	defer cancel()
	batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		return err
	}
	for m := range batch.Messages() {
		if stopped(stop) || stopped(w.halt) { // halt: closed before stop is, by stopTaking
			m.Nak() // taken after the stop: another worker's now
			continue
		}
		*l = w.leaseNow(ctx, cons, *l)
		w.handle(ctx, m, *l)
	}
	// Refused at once (no responders: no consumer) is an error; a request
	// that ran out its time is not.
	if err := batch.Error(); err != nil && fctx.Err() == nil {
		return err
	}
	return nil
}

// recreate makes again this worker's consumer, and whatever else nasctl
// keeps on the broker is missing (Broker.restoreLayout, as a driver does),
// when the broker has lost it: a broker restarted on an empty store, which
// a stock nats-server leaves empty. It reports whether a request that
// failed is worth making again at once: it made the consumer, or another
// slot did since remade (the count of remakes when the request was made).
// One slot at a time.
func (w *Worker) recreate(ctx context.Context, remade uint64) bool {
	if !w.Broker.nc.IsConnected() {
		return false
	}
	w.restoring.Lock()
	defer w.restoring.Unlock()
	if w.remade.Load() != remade {
		return true
	}
	_, err := w.Broker.js.Consumer(ctx, StreamTrials, ConsumerName(w.Device))
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false
	}
	const lost = "the broker no longer has this worker's consumer (restarted on an empty store?)"
	if _, err := w.Broker.restoreLayout(ctx, w.Device); err != nil {
		w.log("%s; making it again: %v (will retry)", lost, err)
		return false
	}
	w.log("%s; made it again, %s, with what else nasctl keeps on the broker", lost, ConsumerName(w.Device))
	w.remade.Add(1)
	return true
}

// leaseNow reads the consumer's settings again, or keeps l when the
// broker does not say: nasctl server brings them to its own just after it
// accepts clients, so a worker that came in between read the defaults. The
// broker keeps them too, to make the consumer again with them if it is lost.
func (w *Worker) leaseNow(ctx context.Context, cons jetstream.Consumer, l lease) lease {
	info, err := cons.Info(ctx)
	if err != nil {
		return l
	}
	w.Broker.noteConsumer(info.Config)
	return leaseOf(info.Config)
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// handle runs one delivery of a job.
func (w *Worker) handle(ctx context.Context, m jetstream.Msg, l lease) {
	n := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		n = meta.NumDelivered
	}
	d := &delivery{m: m, b: w.Broker, what: "a job", n: n, log: w.log}
	j, key, err := decodeJob(m.Data())
	var other formatError
	if errors.As(err, &other) {
		// Named by its run and trial when those still read.
		var named job
		if json.Unmarshal(m.Data(), &named) == nil && named.Run != "" {
			d.what = named.describe()
		}
		// Its driver runs another version: this worker would fail each of
		// its jobs in an instant, using up their deliveries before a worker
		// of the right version could take them. It stops taking jobs and
		// hands this one back as not failed (docs/cluster.md, "Versions").
		w.stopTaking(fmt.Errorf("worker %s handed back a job of another nasctl version and takes no more jobs: %w", w.Name, err))
		w.log("%s: %v; handed back, and this worker takes no more jobs", d.what, err)
		w.noteHandBack(ctx, d, jobKey(m.Data()), fmt.Sprintf("%v; %s", err, handedBackVersion))
		w.handBack(ctx, d, func(m jetstream.Msg) error { return m.NakWithDelay(failDelay) })
		return
	}
	if err != nil {
		w.fail(ctx, d, jobKey(m.Data()), err, l)
		return
	}
	d.what = j.describe()
	if w.Broker.settled(ctx, key) {
		w.log("%s: already done, skipped", d.what)
		d.kept = "the job's result is stored under its key"
		w.ack(ctx, d)
		return
	}
	w.log("%s: training %s (delivery %d of %d)", d.what, j.Genotype, n, l.maxDeliver)
	tctx, cancel := context.WithCancel(ctx)
	var overtaken atomic.Bool
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		w.heartbeat(tctx, d, key, l.beat, func() { overtaken.Store(true); cancel() })
	}()
	out, err := w.run(tctx, j)
	cancel()
	<-beating
	switch {
	case ctx.Err() != nil:
		w.log("%s: abandoned; handing it back", d.what)
		w.noteHandBack(ctx, d, key, handedBack)
		w.handBack(ctx, d, jetstream.Msg.Nak)
	case overtaken.Load():
		w.log("%s: another worker's result came first", d.what)
		d.kept = theirs
		w.ack(ctx, d)
	case diskFault(err):
		// This worker's disk, not the job: failing it would use up the
		// job's deliveries on this machine, which takes the next job at
		// once and fails it alike (docs/cluster.md, "A worker's full disk").
		w.stopTaking(fmt.Errorf("worker %s: %w; it handed the job back and takes no more jobs: free space in its --cache and temporary folder, then start it again", w.Name, err))
		w.log("%s: %v; handed back, and this worker takes no more jobs", d.what, err)
		w.noteHandBack(ctx, d, key, fmt.Sprintf("%v; %s", err, handedBackDisk))
		w.handBack(ctx, d, func(m jetstream.Msg) error { return m.NakWithDelay(failDelay) })
	case err != nil:
		w.fail(ctx, d, key, err, l)
	default:
		w.finish(ctx, d, key, out, l)
	}
}

// diskFault reports whether err is this machine's disk failing a write:
// full, out of quota or read-only.
func diskFault(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// theirs is what a delivery keeps (delivery.kept) when another worker
// stored the job's result.
const theirs = "another worker's result is stored under the job's key"

// ack acknowledges a delivery whose job has its result, and says so when
// the broker did not take it (errGone is said by the delivery).
func (w *Worker) ack(ctx context.Context, d *delivery) {
	if err := d.ack(ctx); err != nil && !errors.Is(err, errGone) {
		w.log("%s: acknowledging: %v (the result is stored; a redelivery will find it)", d.what, err)
	}
}

// handedBack, handedBackVersion and handedBackDisk end the note of a
// delivery handed back by a worker that stopped, that runs another nasctl
// version, or whose disk failed a write: a job
// whose last delivery was is published again, not failed (see
// Broker.exhausted).
// The driver reads them in notes that workers of other nasctl versions
// wrote: they must never change.
const (
	handedBack        = "handed back as the worker stopped (a second Ctrl-C)"
	handedBackVersion = "handed back by a worker of another nasctl version"
	handedBackDisk    = "handed back by a worker whose disk failed"
)

// noteHandBack leaves the note a failure leaves (see fail), saying why
// this worker handed the job back (why ends with handedBack,
// handedBackVersion or handedBackDisk): should that use up the job's deliveries, the
// driver's record says why. Best effort, a few seconds at most: the
// worker is stopping.
func (w *Worker) noteHandBack(ctx context.Context, d *delivery, key, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	note := noteOf(d, fmt.Sprintf("worker %s: %s", w.Name, why))
	w.Broker.l.results.Put(ctx, errorKey(key), note) // without it, the driver names the possible causes
}

// handBack hands a delivery back with send (a Nak); a worker that is
// stopping (ctx ended) still does, giving the broker a few seconds.
func (w *Worker) handBack(ctx context.Context, d *delivery, send func(jetstream.Msg) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.tell(ctx, send); err != nil && !errors.Is(err, errGone) {
		w.log("%s: handing it back: %v (it comes back after the AckWait)", d.what, err)
	}
}

// heartbeat tells the broker the job is in progress every beat, and calls
// overtaken when a result for it appears.
func (w *Worker) heartbeat(ctx context.Context, d *delivery, key string, beat time.Duration, overtaken func()) {
	t := time.NewTicker(beat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.inProgress(ctx)
		if w.Broker.settled(ctx, key) {
			overtaken()
			return
		}
	}
}

// run trains the job with the executor of its dataset.
func (w *Worker) run(ctx context.Context, j *job) (*search.Outcome, error) {
	exec, err := w.executorFor(ctx, j.Data)
	if err != nil {
		return nil, err
	}
	var init [][]float32
	if j.Init != nil {
		if init, err = w.Broker.getTensors(ctx, j.Init); err != nil {
			return nil, err
		}
	}
	sj, err := j.searchJob(init)
	if err != nil {
		return nil, err
	}
	sj.Config.Device, sj.Config.DeviceID = w.Device, w.DeviceID
	if w.Threads > 0 {
		sj.Config.Threads = w.Threads
	}
	what := j.describe()
	sj.Config.Progress = func(e runtime.EpochRecord) {
		w.log("%s: epoch %d/%d val %.4f (%.1fs)", what, e.Epoch, sj.Config.Epochs, e.ValAccuracy, e.Seconds)
	}
	return exec.Evaluate(ctx, sj)
}

// finish writes the job's result, then acknowledges the job. A broker
// that is away (down, restarting) is waited for: the training is done, and
// failing it for the outage would cost a delivery and a second training.
func (w *Worker) finish(ctx context.Context, d *delivery, key string, out *search.Outcome, l lease) {
	what := d.what
	r := result{Version: wireVersion, Worker: w.Name, Training: out.Training, Score: out.Score}
	if out.Training != nil && out.Training.Weights != nil {
		data, sizes := encodeTensors(out.Training.Weights)
		name := weightsName(key, w.Name)
		err := w.untilStored(ctx, d, "its weights", l.beat, func(ctx context.Context) error {
			_, err := w.Broker.l.weights.PutBytes(ctx, name, data)
			return err
		})
		if err != nil {
			w.unstored(ctx, d, key, fmt.Errorf("storing its weights: %w", err), l)
			return
		}
		r.Weights = &tensors{Object: name, Sizes: sizes}
	}
	body, err := json.Marshal(r)
	if err != nil {
		w.fail(ctx, d, key, err, l)
		return
	}
	// The result first: the broker accepts an acknowledgement even from a
	// worker whose lease ran out, so a job acknowledged before its result
	// is written could be lost with the worker.
	var wrote bool
	err = w.untilStored(ctx, d, "its result", l.beat, func(ctx context.Context) error {
		var err error
		wrote, err = w.Broker.putResult(ctx, key, body)
		return err
	})
	if err != nil {
		w.unstored(ctx, d, key, fmt.Errorf("storing its result: %w", err), l)
		return
	}
	// The result is the job's, whichever broker delivered it; the
	// acknowledgement is the delivery's (see delivery).
	d.kept = theirs
	if wrote {
		d.kept = "this worker's result is stored under the job's key"
	}
	w.ack(ctx, d)
	if !wrote {
		w.log("%s: another worker's result came first; this one dropped", what)
		if r.Weights != nil {
			w.Broker.l.weights.Delete(ctx, r.Weights.Object)
		}
		return
	}
	w.log("%s: %s", what, summary(out))
}

// untilStored runs store (of a result, its weights, a failure note) until
// it succeeds, fails in a way that waiting would not fix, or ctx ends.
// While the broker is away the job stays here: each try after a pause
// tells it InProgress, which renews the lease once the broker is back.
// Should the lease have run out meanwhile and another worker taken the
// job, the result written second is dropped (putResult), and the other
// worker stops at its next heartbeat when this one's is first. A broker
// back on an empty store has its buckets made again (recreate) first.
func (w *Worker) untilStored(ctx context.Context, d *delivery, thing string, beat time.Duration, store func(context.Context) error) error {
	what := d.what
	pause, waited := time.Second, false
	for {
		remade := w.remade.Load()
		err := store(ctx)
		if err == nil {
			if waited {
				w.log("%s: the broker is back; %s stored", what, thing)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if w.recreate(ctx, remade) {
			continue
		}
		if !w.Broker.away(err) {
			return err
		}
		if !waited {
			w.log("%s: storing %s failed (%v); keeping it, waiting for the broker, trying again with a growing pause", what, thing, err)
			waited = true
		}
		if sleep(ctx, pause); ctx.Err() != nil {
			return ctx.Err()
		}
		d.inProgress(ctx)
		// Never longer than a heartbeat, so that the lease is renewed in
		// time once the broker answers again.
		pause = min(2*pause, max(beat, time.Second))
	}
}

// unstored hands back a job whose result could not be stored: abandoned
// when the worker is stopping, else failed.
func (w *Worker) unstored(ctx context.Context, d *delivery, key string, err error, l lease) {
	if ctx.Err() != nil {
		w.log("%s: abandoned before its result was stored (it is trained again); handing it back", d.what)
		w.noteHandBack(ctx, d, key, handedBack)
		w.handBack(ctx, d, jetstream.Msg.Nak)
		return
	}
	w.fail(ctx, d, key, err, l)
}

// summary says how a job ended, for the log.
func summary(out *search.Outcome) string {
	r := out.Training
	if r == nil {
		return fmt.Sprintf("score %.4f", out.Score)
	}
	s := fmt.Sprintf("%s, val %.4f after %d epoch(s) in %.1fs", r.Status, r.ValAccuracy, len(r.Epochs), r.Seconds)
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// fail notes why the delivery failed, for the driver's record should every
// delivery fail, and hands the job back. A broker that is away is waited
// for, as for a result: the note is the driver's only word of why.
func (w *Worker) fail(ctx context.Context, d *delivery, key string, err error, l lease) {
	what := d.what
	w.log("%s: failed: %v", what, err)
	note := noteOf(d, fmt.Sprintf("worker %s: %v", w.Name, err))
	err = w.untilStored(ctx, d, "its failure note", l.beat, func(ctx context.Context) error {
		_, err := w.Broker.l.results.Put(ctx, errorKey(key), note)
		return err
	})
	if err != nil {
		w.log("%s: its failure note could not be stored (%v); should every delivery fail, the driver will not know why", what, err)
	}
	w.handBack(ctx, d, func(m jetstream.Msg) error { return m.NakWithDelay(failDelay) })
}

// executorFor returns the executor of a dataset, making it the first time.
// The worker keeps the last keptExecutors: two searches sharing a worker
// then do not load their datasets again at every job. A dataset is loaded
// once however many slots ask for it, and without holding the worker's
// lock, so that slots training another dataset are not kept waiting.
func (w *Worker) executorFor(ctx context.Context, spec DataSpec) (search.Executor, error) {
	for {
		k, load := w.keptFor(spec)
		if load {
			k.e, k.err = w.makeExecutor(ctx, spec)
			k.abandoned = k.err != nil && ctx.Err() != nil
			if k.err != nil {
				w.forget(k)
			}
			close(k.ready)
			return k.e, k.err
		}
		select {
		case <-k.ready:
		default:
			w.log("dataset %s: waiting for the load another job began", spec.Hash)
			select {
			case <-k.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if !k.abandoned {
			return k.e, k.err
		}
		// The job that was loading it was abandoned (whatever error that
		// left): load it for this one.
	}
}

// keptFor returns the kept entry of spec, the last used from now on, and
// whether the caller is to load it: a new entry, which replaces the entry
// used longest ago among those loaded when keptExecutors are kept (one
// still loading stays, for the slots waiting on it).
func (w *Worker) keptFor(spec DataSpec) (k *keptExecutor, load bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i := slices.IndexFunc(w.execs, func(k *keptExecutor) bool { return k.spec == spec }); i >= 0 {
		k := w.execs[i]
		w.execs = append(slices.Delete(w.execs, i, i+1), k)
		return k, false
	}
	for len(w.execs) >= keptExecutors {
		i := slices.IndexFunc(w.execs, (*keptExecutor).loaded)
		if i < 0 {
			break
		}
		w.execs = slices.Delete(w.execs, i, i+1)
	}
	k = &keptExecutor{spec: spec, ready: make(chan struct{})}
	w.execs = append(w.execs, k)
	return k, true
}

// forget removes an entry whose loading failed, for the next job to try again.
func (w *Worker) forget(k *keptExecutor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.execs = slices.DeleteFunc(w.execs, func(x *keptExecutor) bool { return x == k })
}

// makeExecutor loads spec's dataset (through the tests' stand-in when set).
func (w *Worker) makeExecutor(ctx context.Context, spec DataSpec) (search.Executor, error) {
	if w.executor != nil {
		return w.executor(ctx, spec)
	}
	return w.localExecutor(ctx, spec)
}

// keptExecutors is how many datasets a worker keeps loaded.
const keptExecutors = 2

// keptExecutor is a dataset's executor, once ready is closed (or the error
// that loading it ended with, and whether the job loading it was abandoned).
type keptExecutor struct {
	spec      DataSpec
	ready     chan struct{}
	e         search.Executor
	err       error
	abandoned bool
}

// loaded says whether the loading of k has ended.
func (k *keptExecutor) loaded() bool {
	select {
	case <-k.ready:
		return true
	default:
		return false
	}
}

// localExecutor fetches the dataset and loads it as the driver did. A
// cached copy that does not load, or not with its hash, is removed and
// fetched again, once.
func (w *Worker) localExecutor(ctx context.Context, spec DataSpec) (search.Executor, error) {
	if err := checkHash(spec.Hash); err != nil {
		return nil, err
	}
	e, err := w.loadDataset(ctx, spec)
	if err != nil && ctx.Err() == nil {
		w.log("%v; fetching it again", err)
		e, err = w.loadDataset(ctx, spec)
	}
	return e, err
}

func (w *Worker) loadDataset(ctx context.Context, spec DataSpec) (search.Executor, error) {
	w.log("loading dataset %s", spec.Hash)
	dir, err := w.Broker.fetchDataset(ctx, spec.Hash, w.Cache)
	if err != nil {
		return nil, err
	}
	cfg := search.Config{Data: dir, Input: spec.Input, Split: spec.Split, SplitSeed: spec.SplitSeed,
		DataFraction: cmp.Or(spec.Fraction, 1), Device: w.Device.String(), Threads: w.Threads}
	e, err := search.NewLocalExecutor(cfg, nil)
	if err == nil && e.Data().Hash != spec.Hash {
		err = fmt.Errorf("it loads as %s", e.Data().Hash)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dataset %s in %s: %w (removed)", spec.Hash, dir, err)
	}
	return e, nil
}

func (w *Worker) log(format string, args ...any) {
	if w.Log != nil {
		w.Log(format, args...)
	}
}
