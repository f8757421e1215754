package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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
	execs map[DataSpec]search.Executor
}

// Run takes jobs until ctx is cancelled, which abandons the jobs in flight
// (handed back at once for another worker), or until stop is closed, which
// takes no more and returns when those in flight are done.
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
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() { w.slot(ctx, stop, cons, lease) })
	}
	wg.Wait()
	return ctx.Err()
}

// lease is what a worker needs to know of its consumer's settings.
type lease struct {
	beat       time.Duration // between heartbeats
	maxDeliver int
}

func leaseOf(c jetstream.ConsumerConfig) lease {
	return lease{beat: max(c.AckWait/3, 100*time.Millisecond), maxDeliver: c.MaxDeliver}
}

// slot takes one job at a time.
func (w *Worker) slot(ctx context.Context, stop <-chan struct{}, cons jetstream.Consumer, l lease) {
	var lastErr string
	for !stopped(stop) && ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, pollWait)
		batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() == nil && err.Error() != lastErr {
				w.log("asking %s for a job: %v (retrying)", w.Broker.url, err)
			}
			lastErr = err.Error()
			sleep(ctx, time.Second)
			continue
		}
		lastErr = ""
		for m := range batch.Messages() {
			if stopped(stop) {
				m.Nak() // taken after the stop: another worker's now
				continue
			}
			l = w.leaseNow(ctx, cons, l)
			w.handle(ctx, m, l)
		}
		cancel()
	}
}

// leaseNow reads the consumer's settings again, or keeps l when the
// broker does not say: nasctl server brings them to its own just after it
// accepts clients, so a worker that came in between read the defaults.
func (w *Worker) leaseNow(ctx context.Context, cons jetstream.Consumer, l lease) lease {
	info, err := cons.Info(ctx)
	if err != nil {
		return l
	}
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
	delivery := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		delivery = meta.NumDelivered
	}
	j, key, err := decodeJob(m.Data())
	if err != nil {
		w.fail(ctx, m, jobKey(m.Data()), "a job", err, l)
		return
	}
	if w.Broker.settled(ctx, key) {
		w.log("%s: already done, skipped", j.describe())
		m.Ack()
		return
	}
	w.log("%s: training %s (delivery %d of %d)", j.describe(), j.Genotype, delivery, l.maxDeliver)
	tctx, cancel := context.WithCancel(ctx)
	var overtaken atomic.Bool
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		w.heartbeat(tctx, m, key, l.beat, func() { overtaken.Store(true); cancel() })
	}()
	out, err := w.run(tctx, j)
	cancel()
	<-beating
	switch {
	case ctx.Err() != nil:
		w.log("%s: abandoned, handed back", j.describe())
		m.Nak()
	case overtaken.Load():
		w.log("%s: another worker's result came first", j.describe())
		m.Ack()
	case err != nil:
		w.fail(ctx, m, key, j.describe(), err, l)
	default:
		w.finish(ctx, m, j, key, out, l)
	}
}

// heartbeat tells the broker the job is in progress every beat, and calls
// overtaken when a result for it appears.
func (w *Worker) heartbeat(ctx context.Context, m jetstream.Msg, key string, beat time.Duration, overtaken func()) {
	t := time.NewTicker(beat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.InProgress()
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
func (w *Worker) finish(ctx context.Context, m jetstream.Msg, j *job, key string, out *search.Outcome, l lease) {
	what := j.describe()
	r := result{Version: wireVersion, Worker: w.Name, Training: out.Training, Score: out.Score}
	if out.Training != nil && out.Training.Weights != nil {
		data, sizes := encodeTensors(out.Training.Weights)
		name := weightsName(key, w.Name)
		err := w.untilStored(ctx, m, what, "its weights", l.beat, func(ctx context.Context) error {
			_, err := w.Broker.l.weights.PutBytes(ctx, name, data)
			return err
		})
		if err != nil {
			w.unstored(ctx, m, key, what, fmt.Errorf("storing its weights: %w", err), l)
			return
		}
		r.Weights = &tensors{Object: name, Sizes: sizes}
	}
	body, err := json.Marshal(r)
	if err != nil {
		w.fail(ctx, m, key, what, err, l)
		return
	}
	// The result first: the broker accepts an acknowledgement even from a
	// worker whose lease ran out, so a job acknowledged before its result
	// is written could be lost with the worker.
	var wrote bool
	err = w.untilStored(ctx, m, what, "its result", l.beat, func(ctx context.Context) error {
		var err error
		wrote, err = w.Broker.putResult(ctx, key, body)
		return err
	})
	if err != nil {
		w.unstored(ctx, m, key, what, fmt.Errorf("storing its result: %w", err), l)
		return
	}
	if err := m.DoubleAck(ctx); err != nil {
		w.log("%s: acknowledging: %v (the result is stored; a redelivery will find it)", what, err)
	}
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
// worker stops at its next heartbeat when this one's is first.
func (w *Worker) untilStored(ctx context.Context, m jetstream.Msg, what, thing string, beat time.Duration, store func(context.Context) error) error {
	pause, waited := time.Second, false
	for {
		err := store(ctx)
		if err == nil {
			if waited {
				w.log("%s: the broker is back; %s stored", what, thing)
			}
			return nil
		}
		if ctx.Err() != nil || !w.Broker.away(err) {
			return err
		}
		if !waited {
			w.log("%s: storing %s failed (%v); keeping it, waiting for the broker, trying again with a growing pause", what, thing, err)
			waited = true
		}
		if sleep(ctx, pause); ctx.Err() != nil {
			return ctx.Err()
		}
		m.InProgress()
		// Never longer than a heartbeat, so that the lease is renewed in
		// time once the broker answers again.
		pause = min(2*pause, max(beat, time.Second))
	}
}

// unstored hands back a job whose result could not be stored: abandoned
// when the worker is stopping, else failed.
func (w *Worker) unstored(ctx context.Context, m jetstream.Msg, key, what string, err error, l lease) {
	if ctx.Err() != nil {
		w.log("%s: abandoned before its result was stored, handed back", what)
		m.Nak()
		return
	}
	w.fail(ctx, m, key, what, err, l)
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
func (w *Worker) fail(ctx context.Context, m jetstream.Msg, key, what string, err error, l lease) {
	w.log("%s: failed: %v", what, err)
	note := []byte(fmt.Sprintf("worker %s: %v", w.Name, err))
	err = w.untilStored(ctx, m, what, "its failure note", l.beat, func(ctx context.Context) error {
		_, err := w.Broker.l.results.Put(ctx, errorKey(key), note)
		return err
	})
	if err != nil {
		w.log("%s: its failure note could not be stored (%v); should every delivery fail, the driver will not know why", what, err)
	}
	m.NakWithDelay(failDelay)
}

// executorFor returns the executor of a dataset, making it the first time;
// the worker keeps the last one only (a worker usually serves one search).
func (w *Worker) executorFor(ctx context.Context, spec DataSpec) (search.Executor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.execs[spec]; ok {
		return e, nil
	}
	newExec := w.executor
	if newExec == nil {
		newExec = w.localExecutor
	}
	e, err := newExec(ctx, spec)
	if err != nil {
		return nil, err
	}
	w.execs = map[DataSpec]search.Executor{spec: e}
	return e, nil
}

// localExecutor fetches the dataset and loads it as the driver did. A
// cached copy that does not load, or not with its hash, is removed and
// fetched again, once.
func (w *Worker) localExecutor(ctx context.Context, spec DataSpec) (search.Executor, error) {
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
