package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Executor is a search.Executor whose trials train on workers: Evaluate
// publishes the job on its device's subject and waits for the job's result
// in the results bucket. Data and Test are the local executor's: the driver
// keeps its copy of the data to send it to the broker and to test the final
// models itself.
//
// Evaluate returns one result per job however many workers ran it (a
// result is written create-only, so the first one stays), and a driver
// that restarts and publishes the job again finds that result instead of
// training it again (see the package documentation). While it waits, it
// checks now and then that the broker still holds the job, and publishes
// it again, with what the broker lost with it, when the broker does not (a
// broker restarted on an empty store).
//
// Ownership: an Executor uses its Broker until Close, which does not close
// the Broker.
type Executor struct {
	b      *Broker
	local  search.Executor
	run    string
	device runtime.Device
	data   DataSpec
	// Say, when set, receives what a person watching the driver should
	// know (no worker is listening, a trial failed on every delivery, the
	// broker lost a job and it was published again).
	Say func(format string, args ...any)
	// StartWorker, when set, is the command that starts a worker for these
	// trials, for the message that none takes them (its credentials are
	// the caller's to know).
	StartWorker string
	cancel      context.CancelFunc
	done        chan struct{}
	// dataset is sent again to a broker that lost it; nil: not (tests).
	dataset *dataset.Dataset
	// restoring makes one trial at a time restore the broker's layout.
	restoring sync.Mutex
	// idleSaid is when the driver last said that no worker takes its
	// trials (unix nanoseconds; zero: never).
	idleSaid atomic.Int64
	// inFlight counts the trials of Evaluate not yet answered.
	inFlight atomic.Int32
}

var _ search.Executor = (*Executor)(nil)

// NewExecutor sends local's dataset to the broker (unless it is there
// already) and returns the executor of cfg's trials, which go to cfg's
// device.
func NewExecutor(ctx context.Context, b *Broker, cfg search.Config, local *search.LocalExecutor) (*Executor, error) {
	dev, err := runtime.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	if err := b.uploadDataset(ctx, local.Dataset()); err != nil {
		return nil, err
	}
	// The input as loaded here: a worker then needs no rule of its own for
	// an HxW size without channels.
	spec := DataSpec{Hash: local.Data().Hash, Input: local.Data().Input.String(), Split: cfg.Split, SplitSeed: cfg.SplitSeed, Fraction: cfg.DataFraction}
	e, err := newExecutor(ctx, b, cfg.Name, dev, spec, local)
	if err != nil {
		return nil, err
	}
	e.dataset = local.Dataset()
	return e, nil
}

// newExecutor makes the executor of run's jobs on data; local answers Data
// and Test.
func newExecutor(ctx context.Context, b *Broker, run string, device runtime.Device, data DataSpec, local search.Executor) (*Executor, error) {
	if _, err := b.consumer(ctx, device); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.Background())
	e := &Executor{b: b, local: local, run: run, device: device, data: data, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		b.recordExhausted(hctx, e.say)
	}()
	return e, nil
}

// SayIfNoWorker says, as a search starts, that no worker of its device
// waits for a job or trains one, so its trials wait until one starts.
// Workers busy with other trials (of this run resumed, or of another
// search) count: they take this run's in turn. Said, it is noWorker's
// note too: the next comes idleEvery later.
func (e *Executor) SayIfNoWorker(ctx context.Context) {
	c, err := e.b.consumer(ctx, e.device)
	if err != nil {
		return
	}
	info, err := c.Info(ctx)
	if err != nil || info.NumWaiting > 0 || info.NumAckPending > 0 {
		return
	}
	e.idleSaid.Store(time.Now().UnixNano())
	e.say("no worker is waiting for %s trials yet; the trials wait in the queue until one starts: %s", e.device, e.startWorker())
}

// startWorker is the command that starts a worker for this driver.
func (e *Executor) startWorker() string {
	return cmp.Or(e.StartWorker, fmt.Sprintf("nasctl worker --broker %s --device %s", e.b.URL(), e.device))
}

// TrainsElsewhere tells a search that its trials train on the workers, not
// in its process.
func (e *Executor) TrainsElsewhere() bool { return true }

// Data implements search.Executor.
func (e *Executor) Data() search.Data { return e.local.Data() }

// CalibrationImages gives the final phase's int8 quantization (final.int8)
// the training images this process loaded to test on: the workers retrain
// the finals, this process quantizes them. None when the local executor
// holds no images (tests' stand-ins).
func (e *Executor) CalibrationImages(n int) ([]float32, int) {
	if c, ok := e.local.(interface{ CalibrationImages(int) ([]float32, int) }); ok {
		return c.CalibrationImages(n)
	}
	return nil, 0
}

// Test implements search.Executor: it tests on the driver.
func (e *Executor) Test(ctx context.Context, model []byte) (*runtime.Evaluation, error) {
	return e.local.Test(ctx, model)
}

// Evaluate implements search.Executor: the job's result, from whichever
// worker wrote it first, or an error when the job failed on every
// delivery. Cancelling ctx leaves the job queued: a later Evaluate of the
// same job (a resumed run) gets its result.
func (e *Executor) Evaluate(ctx context.Context, j search.Job) (*search.Outcome, error) {
	e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	var init *tensors
	if j.Config.Init != nil {
		var err error
		if init, err = e.b.putInit(ctx, j.Config.Init); err != nil {
			return nil, fmt.Errorf("trial %d: sending its starting weights: %w", j.Trial, err)
		}
	}
	w, err := jobOf(e.run, e.data, j, init)
	if err != nil {
		return nil, fmt.Errorf("trial %d: %w", j.Trial, err)
	}
	body, key := w.encode()
	p := &pending{trial: j.Trial, key: key, id: key, body: body, init: j.Config.Init}
	defer p.unwatch()
	// Watch before publishing, so that no result can slip in between.
	if err := p.rewatch(ctx, e.b.l.results); err != nil {
		return nil, fmt.Errorf("trial %d: watching for its result: %w", j.Trial, err)
	}
	prior, err := existing(ctx, p.watch, j.Trial)
	if err != nil {
		return nil, err
	}
	// A job published again (a restarted driver) within the duplicate
	// window is dropped by the broker: the first one is still queued, in
	// flight, or done, and its result is what the watch delivers. A
	// failure found here is an earlier driver's: tried again, under an ID
	// of its own.
	if prior != nil {
		if !failed(prior.Value()) {
			// Said, since a new run of the same name and settings takes it
			// too (the key is the job's), with the earlier training's time.
			e.say("trial %d: taken from the result the broker stored at %s (from an earlier session of this run, or of a run with the same name and settings), not trained again",
				j.Trial, prior.Created().Format(time.DateTime))
			out, err := e.b.outcome(ctx, j.Trial, prior.Value())
			if out != nil {
				out.Stored = true
			}
			return out, err
		}
		p.seen = prior.Revision()
		p.id = fmt.Sprintf("%s.retry-%d", key, p.seen)
		if err := e.b.l.results.Delete(ctx, errorKey(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			// Left, the earlier failure's note could be read as the retry's
			// last one should the retry use up its deliveries without one.
			e.say("trial %d: removing the earlier failure's note: %v; should this retry fail on every delivery without a note of its own, that earlier failure is the one reported", j.Trial, err)
		}
	}
	ack, err := e.b.js.Publish(ctx, Subject(e.device), body, jetstream.WithMsgID(p.id))
	if err != nil {
		return nil, fmt.Errorf("trial %d: publishing it on %s: %w", j.Trial, e.b.url, err)
	}
	p.seq = ack.Sequence // a duplicate's is the first copy's
	entry, err := e.await(ctx, p)
	if err != nil {
		return nil, err
	}
	return e.b.outcome(ctx, j.Trial, entry.Value())
}

// checkEvery is how often a driver waiting for a result makes sure that
// the broker still holds the job; a variable, for the tests.
var checkEvery = 30 * time.Second

// pending is a published job whose result Evaluate waits for.
type pending struct {
	trial   int
	key, id string // the job's key; the message ID it went under
	body    []byte
	init    [][]float32 // its starting weights, to store again with it
	seq     uint64      // its message's sequence in StreamTrials
	seen    uint64      // the revision of the failure it retries; 0: none
	watch   jetstream.KeyWatcher
	cancel  context.CancelFunc // ends the watch's context
	said    string             // the last trouble said about it
}

// rewatch watches the job's result, under a context of its own that
// unwatch ends: the client keeps a goroutine per watch until the watch's
// context ends, whatever Stop.
func (p *pending) rewatch(ctx context.Context, results jetstream.KeyValue) error {
	wctx, cancel := context.WithCancel(ctx)
	watch, err := results.Watch(wctx, resultKey(p.key))
	if err != nil {
		cancel()
		return err
	}
	p.watch, p.cancel = watch, cancel
	return nil
}

func (p *pending) unwatch() {
	if p.watch != nil {
		p.watch.Stop()
		p.cancel()
		p.watch = nil
	}
}

// await waits for the job's result: delivered by the watch, or found by a
// look every checkEvery. A look also finds a job the broker lost (one
// restarted on an empty store), which is published again, and makes again
// a watch the broker stopped; while there is none, it looks every second.
func (e *Executor) await(ctx context.Context, p *pending) (jetstream.KeyValueEntry, error) {
	for {
		wait := checkEvery
		if p.watch == nil {
			wait = min(wait, time.Second)
		}
		entry, err := next(ctx, p.watch, p.trial, p.seen, wait)
		switch {
		case entry != nil:
			return entry, nil
		case errors.Is(err, errWatchStopped):
			p.unwatch()
		case err != nil:
			return nil, err
		}
		entry, lost := e.look(ctx, p)
		if entry != nil {
			return entry, nil
		}
		if lost {
			e.recoverLost(ctx, p)
		} else {
			e.noWorker(ctx)
		}
		if p.watch == nil {
			p.rewatch(ctx, e.b.l.results) // the broker away: at the next look
		}
	}
}

// look returns the job's result from the bucket, or else reports whether
// the broker lost the job: no message at its sequence, another message
// there (a stream begun again), or no stream at all. The result is looked
// for first, so that a job done and acknowledged is not taken for lost; one
// done between the two looks is published again needlessly, and its
// worker finds the result and acknowledges it.
func (e *Executor) look(ctx context.Context, p *pending) (jetstream.KeyValueEntry, bool) {
	entry, rerr := e.b.l.results.Get(ctx, resultKey(p.key))
	if rerr == nil && fresh(entry, p.seen) {
		return entry, false
	}
	msg, err := e.b.l.trials.GetMsg(ctx, p.seq)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, true // a bucket that did not answer is gone too
	case rerr != nil && !errors.Is(rerr, jetstream.ErrKeyNotFound),
		err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, false // the broker away: look again later
	case err != nil:
		return nil, true
	}
	return nil, msg.Header.Get(jetstream.MsgIDHeader) != p.id
}

// noWorker says, at most every idleEvery, that no worker takes this
// driver's device's trials: jobs queued, none in training and no worker
// asking for one. Workers that left after the start (killed, a machine
// gone) are otherwise noticed by no one.
func (e *Executor) noWorker(ctx context.Context) {
	last := e.idleSaid.Load()
	if last != 0 && time.Since(time.Unix(0, last)) < idleEvery {
		return
	}
	waiting := e.unserved(ctx)
	if waiting == 0 || !e.idleSaid.CompareAndSwap(last, time.Now().UnixNano()) {
		return // each trial in flight looks: one says it
	}
	e.say("no worker is taking %s trials: %d wait in the queue and none is training; start one (%s), or check that yours still reach this broker",
		e.device, waiting, e.startWorker())
}

// unserved is the number of jobs of the executor's device that wait in
// the queue while no worker of the device trains one or asks for one; 0
// when a worker does, or the broker does not answer.
func (e *Executor) unserved(ctx context.Context) uint64 {
	c, err := e.b.consumer(ctx, e.device)
	if err != nil {
		return 0
	}
	info, err := c.Info(ctx)
	if err != nil || info.NumWaiting > 0 || info.NumAckPending > 0 {
		return 0
	}
	return info.NumPending
}

// Unserved reports whether this executor has trials in flight while its
// device's jobs wait with no worker to train them, on two looks a worker's
// poll apart (a worker between two jobs looks the same for a moment): a
// search asked to stop need not wait for trials no worker is at. It takes
// that long, and is false once ctx ends.
func (e *Executor) Unserved(ctx context.Context) bool {
	for look := range 2 {
		if look > 0 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(pollWait + time.Second):
			}
		}
		if e.inFlight.Load() == 0 || e.unserved(ctx) == 0 {
			return false
		}
	}
	return true
}

// idleEvery is how often a driver says again that no worker takes its
// trials.
var idleEvery = 5 * time.Minute

// recoverLost publishes a lost job again, and says so once; a failure to is
// said once too, and tried again at the next look. A job that was not lost
// but moved (published again after a hand-back, Broker.handedBackLast) is
// followed without a word. The watch is made again: one on a bucket made
// again may never deliver.
func (e *Executor) recoverLost(ctx context.Context, p *pending) {
	const lost = "the broker no longer holds it (removed with nasctl jobs --drop, or the broker restarted on an empty store)"
	// Read before the publish: the broker deletes the note after its copy,
	// which this publish would then duplicate.
	handed := e.handedBackNoted(ctx, p)
	moved, err := e.republish(ctx, p)
	if err != nil {
		if say := fmt.Sprintf("trial %d: %s; publishing it again: %v (will retry)", p.trial, lost, err); say != p.said && ctx.Err() == nil {
			e.say("%s", say)
			p.said = say
		}
		return
	}
	if !moved && !handed {
		e.say("trial %d: %s; published again", p.trial, lost)
	}
	p.said = ""
	p.unwatch()
}

// handedBackNoted reports whether the job's note says that a worker handed
// it back on its last delivery: a job the broker moves (Broker.handedBackLast),
// whose message this driver can find gone before the broker's copy is
// published. This driver's copy then goes first, under the same ID, and the
// broker's is dropped as its duplicate: one copy either way, and no word
// (docs/cluster.md, "Hand-backs on the last delivery").
func (e *Executor) handedBackNoted(ctx context.Context, p *pending) bool {
	entry, err := e.b.l.results.Get(ctx, errorKey(p.key))
	if err != nil {
		return false
	}
	n, text := readNote(entry.Value())
	return handedBackNote(text) && n == uint64(e.b.settings().WithDefaults().MaxDeliver)
}

// republish publishes a lost job again, after making again what the broker
// lost with it. It goes under an ID of its own: a broker that lost the job
// but not its duplicate window would drop it under the old one. It reports
// whether the broker held a copy under that ID already: the job was moved,
// not lost.
func (e *Executor) republish(ctx context.Context, p *pending) (moved bool, err error) {
	if err := e.restore(ctx); err != nil {
		return false, err
	}
	if p.init != nil {
		if _, err := e.b.putInit(ctx, p.init); err != nil {
			return false, fmt.Errorf("sending its starting weights: %w", err)
		}
	}
	id := lostID(p.key, p.seq)
	ack, err := e.b.js.Publish(ctx, Subject(e.device), p.body, jetstream.WithMsgID(id))
	if err != nil {
		return false, err
	}
	p.id, p.seq = id, ack.Sequence
	return ack.Duplicate, nil
}

// restore makes again what nasctl keeps on a broker that lost it: nasctl
// server makes its stream, consumers and buckets at every start, a stock
// nats-server does not, and neither brings back the dataset. One trial at
// a time: those after find it done.
func (e *Executor) restore(ctx context.Context) error {
	e.restoring.Lock()
	defer e.restoring.Unlock()
	if _, err := e.b.restoreLayout(ctx, e.device); err != nil {
		return err
	}
	if e.dataset != nil {
		return e.b.uploadDataset(ctx, e.dataset)
	}
	return nil
}

// errWatchStopped is a watch the broker ended (a bucket it lost, say).
var errWatchStopped = errors.New("the broker stopped the watch on its result")

// existing returns the value there when the watch began, nil for none;
// next returns the first answer written after the failure at revision seen
// (see fresh), or nil when none comes within d; a nil watch delivers
// nothing. Deletions are passed over.
func existing(ctx context.Context, watch jetstream.KeyWatcher, trial int) (jetstream.KeyValueEntry, error) {
	return watched(ctx, watch, trial, true, 0)
}

func next(ctx context.Context, watch jetstream.KeyWatcher, trial int, seen uint64, d time.Duration) (jetstream.KeyValueEntry, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	entry, err := watched(wctx, watch, trial, false, seen)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, nil // d is up
	}
	return entry, err
}

// watched reads the watch up to the end of the values there at its start
// (initial), returning the last one, or up to the next value written.
func watched(ctx context.Context, watch jetstream.KeyWatcher, trial int, initial bool, seen uint64) (jetstream.KeyValueEntry, error) {
	var updates <-chan jetstream.KeyValueEntry
	if watch != nil {
		updates = watch.Updates()
	}
	var last jetstream.KeyValueEntry
	for {
		select {
		case entry, ok := <-updates:
			switch {
			case !ok:
				return nil, fmt.Errorf("trial %d: %w", trial, errWatchStopped)
			case entry == nil: // the end of the values there at the start
				if initial {
					return last, nil
				}
			case !fresh(entry, seen):
			case initial:
				last = entry
			default:
				return entry, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fresh reports whether entry answers a job that retries the failure at
// revision seen (0: none): a value put, other than that failure. Not any
// revision after seen: a broker restarted on an empty store numbers them
// from 1 again. (A watch that reconnects may show the failure again.)
func fresh(entry jetstream.KeyValueEntry, seen uint64) bool {
	return entry.Operation() == jetstream.KeyValuePut && (entry.Revision() != seen || !failed(entry.Value()))
}

// Close stops recording exhausted trials; the Broker stays open.
func (e *Executor) Close() {
	e.cancel()
	<-e.done
}

func (e *Executor) say(format string, args ...any) {
	if e.Say != nil {
		e.Say(format, args...)
	}
}

// putInit stores starting weights under their content's name.
func (b *Broker) putInit(ctx context.Context, ws [][]float32) (*tensors, error) {
	data, sizes := encodeTensors(ws)
	name := initName(data)
	if _, err := b.l.weights.GetInfo(ctx, name); errors.Is(err, jetstream.ErrObjectNotFound) {
		if _, err := b.l.weights.PutBytes(ctx, name, data); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return &tensors{Object: name, Sizes: sizes}, nil
}

// getTensors reads tensors from the weights bucket.
func (b *Broker) getTensors(ctx context.Context, t *tensors) ([][]float32, error) {
	data, err := b.l.weights.GetBytes(ctx, t.Object)
	if err != nil {
		return nil, fmt.Errorf("weights %s: %w", t.Object, err)
	}
	return decodeTensors(data, t.Sizes)
}

// outcome turns a result read from the bucket into the executor's answer.
func (b *Broker) outcome(ctx context.Context, trial int, value []byte) (*search.Outcome, error) {
	var r result
	if err := json.Unmarshal(value, &r); err != nil {
		return nil, fmt.Errorf("trial %d: reading its result: %w", trial, err)
	}
	if r.Failed != "" {
		return nil, &trialFailure{reason: r.Failed, worker: r.Worker}
	}
	if r.Training == nil {
		return &search.Outcome{Score: r.Score, Worker: r.Worker}, nil
	}
	if r.Weights != nil {
		var err error
		if r.Training.Weights, err = b.getTensors(ctx, r.Weights); err != nil {
			return nil, fmt.Errorf("trial %d: %w", trial, err)
		}
	}
	return &search.Outcome{Training: r.Training, Worker: r.Worker}, nil
}

// recordExhausted records a failed result for every job that used up its
// deliveries and deletes the job, which a work queue would keep. The
// broker's advisories wait in StreamExhausted until a driver handles them,
// so that one sent while no driver ran is not lost; any driver may handle
// any advisory, as each step is idempotent.
func (b *Broker) recordExhausted(ctx context.Context, say func(string, ...any)) {
	cons, err := b.l.exhausted.Consumer(ctx, consumerDrivers)
	if err != nil {
		say("cannot follow the trials that fail on every delivery: %v", err)
		return
	}
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(16, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			sleep(ctx, time.Second) // the broker is away; the connection reconnects
			continue
		}
		for m := range batch.Messages() {
			if err := b.exhausted(ctx, m.Data(), say); err != nil {
				say("recording a trial that failed on every delivery: %v (will retry)", err)
				m.NakWithDelay(time.Second)
				continue
			}
			m.Ack()
		}
		cancel()
	}
}

// exhaustedReason is why a job failed on all its deliveries, given the
// note a delivery left (nil: none): the note's words when it is the last
// delivery's, else what may have happened, with the earlier note.
func exhaustedReason(deliveries uint64, note []byte) string {
	why := fmt.Sprintf("failed on all %d deliveries; no worker finished it: workers killed, stopped answering, or handed it back (a worker's second Ctrl-C)", deliveries)
	if note == nil {
		return why
	}
	n, text := readNote(note)
	if n == deliveries {
		return fmt.Sprintf("failed on all %d deliveries; the last on %s", deliveries, text)
	}
	return fmt.Sprintf("%s; delivery %d of them left a note: %s", why, n, text)
}

// trialFailure is a trial that failed on every delivery; Worker names the
// worker of the last (a search records it with the trial).
type trialFailure struct{ reason, worker string }

func (f *trialFailure) Error() string  { return f.reason }
func (f *trialFailure) Worker() string { return f.worker }

// noteWorker is the worker a delivery's note names ("worker NAME: ..."),
// or "".
func noteWorker(text string) string {
	rest, ok := strings.CutPrefix(text, "worker ")
	if !ok {
		return ""
	}
	name, _, ok := strings.Cut(rest, ": ")
	if !ok {
		return ""
	}
	return name
}

// exhausted handles one max-deliveries advisory.
func (b *Broker) exhausted(ctx context.Context, advisory []byte, say func(string, ...any)) error {
	var adv server.JSConsumerDeliveryExceededAdvisory
	if err := json.Unmarshal(advisory, &adv); err != nil {
		return nil // not one of ours to read; dropping it loses nothing
	}
	msg, err := b.l.trials.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // handled already
	}
	if err != nil {
		return err
	}
	key := jobKey(msg.Data)
	var note []byte
	if e, err := b.l.results.Get(ctx, errorKey(key)); err == nil {
		note = e.Value()
	}
	if n, text := readNote(note); note != nil && n == adv.Deliveries && handedBackNote(text) {
		return b.handedBackLast(ctx, msg, key, adv.Deliveries, say)
	}
	why := exhaustedReason(adv.Deliveries, note)
	_, last := readNote(note)
	r, _ := json.Marshal(result{Version: wireVersion, Failed: why, Worker: noteWorker(last)})
	if _, err := b.putResult(ctx, key, r); err != nil {
		return err
	}
	if j, _, err := decodeJob(msg.Data); err == nil {
		say("%s %s", j.describe(), why)
	}
	if err := b.l.trials.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}

// handedBackNote reports whether a delivery's note says that its worker
// handed the job back (noteHandBack) rather than failed it.
func handedBackNote(text string) bool {
	return strings.HasSuffix(text, handedBack) || strings.HasSuffix(text, handedBackVersion) || strings.HasSuffix(text, handedBackDisk)
}

// handedBackLast publishes again a job whose last delivery a stopping
// worker (or one of another version) handed back, so that it gets fresh
// deliveries: the broker counts a hand-back as a delivery, and three
// workers restarted would otherwise fail a trial none of them failed. The copy goes under the message ID the
// job's driver gives it when it finds the job moved (Executor.republish),
// so that the driver's own copy is dropped as a duplicate and it follows
// this one.
func (b *Broker) handedBackLast(ctx context.Context, msg *jetstream.RawStreamMsg, key string, deliveries uint64, say func(string, ...any)) error {
	// In this order, so that a step that fails is repeated with the
	// advisory: the copy (a duplicate the second time), then the old
	// message; the note last, since a retry reads it to come here again.
	if _, err := b.js.Publish(ctx, msg.Subject, msg.Data, jetstream.WithMsgID(lostID(key, msg.Sequence))); err != nil {
		return err
	}
	if err := b.l.trials.DeleteMsg(ctx, msg.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	j, _, jerr := decodeJob(msg.Data)
	if jerr == nil {
		say("%s: handed back on its last delivery (%d of %d) by a worker that stopped, runs another nasctl version or found its disk full; queued again, with fresh deliveries",
			j.describe(), deliveries, deliveries)
	}
	if err := b.l.results.Delete(ctx, errorKey(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && jerr == nil {
		// Left, it would be read as the copy's last note should the copy
		// use up its deliveries without one: one more round at most.
		say("%s: removing the hand-back's note: %v", j.describe(), err)
	}
	return nil
}

// lostID is the message ID of job key published again after its message
// at seq was lost or moved.
func lostID(key string, seq uint64) string { return fmt.Sprintf("%s.lost-%d", key, seq) }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
