package search

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
)

// Event reports the progress of a search to whoever draws it.
type Event struct {
	Kind      string       `json:"event"` // "start", "trial", "stopping", "final", "done"
	Trial     *Trial       `json:"trial,omitempty"`
	Final     *FinalResult `json:"final,omitempty"`
	Done      int          `json:"done"`  // trials finished
	Total     int          `json:"total"` // trials planned
	InFlight  int          `json:"in_flight"`
	Epsilon   float64      `json:"epsilon"`
	Best      float64      `json:"best_val_accuracy"`
	BestArch  string       `json:"best_arch,omitempty"`
	Elapsed   float64      `json:"elapsed_seconds"`
	Remaining float64      `json:"remaining_seconds"` // estimate, 0 when unknown
	Message   string       `json:"message,omitempty"`
}

// ErrStopped is returned by Run when a stop request ended the search before
// its schedule; the run can be resumed.
var ErrStopped = errors.New("search stopped before its end")

// Search is a MetaQNN search bound to a run directory.
type Search struct {
	cfg    Config
	store  *Store
	exec   Executor
	data   Data
	agent  *controller.MetaQNN
	trials []Trial
	byArch map[string]int // first trained trial of each architecture: index in trials
	nextID int
	start  time.Time
	// latency predicts latencies when the reward needs them (nil: measure).
	latency *bench.LatencyModel
	// Progress, when set, receives every event (from the Run goroutine).
	Progress func(Event)
}

// New prepares a search of cfg (already WithDefaults and checked) in store
// with exec, rebuilding the agent from trials already finished (a resumed
// run): the agent's state depends only on the seed and the finished trials,
// learned in trial order, so a resumed run goes on from where the last trial
// was recorded, exactly as an uninterrupted one with one worker. With
// several it differs: the trials sampled but not trained when it stopped are
// dropped, and the first trials after resuming are drawn from an agent that
// has learned every recorded trial, not all but the last lag-1.
func New(cfg Config, store *Store, exec Executor, trials []Trial) (*Search, error) {
	data := exec.Data()
	agent, err := controller.NewMetaQNN(cfg.Space.Space, data.Input, cfg.Agent)
	if err != nil {
		return nil, err
	}
	s := &Search{cfg: cfg, store: store, exec: exec, data: data, agent: agent, byArch: map[string]int{}, nextID: 1}
	if err := store.writeJSON(fileData, data); err != nil {
		return nil, err
	}
	// The log holds trials in the order they finished; the agent learns them
	// in trial order, as the search did.
	trials = slices.Clone(trials)
	sort.SliceStable(trials, func(i, j int) bool { return trials[i].ID < trials[j].ID })
	for _, t := range trials {
		if err := s.learn(t); err != nil {
			return nil, fmt.Errorf("resuming trial %d: %w", t.ID, err)
		}
	}
	return s, nil
}

// Trials returns the finished trials in the order the agent learned them,
// which is trial order: IDs increase, with gaps where a stopped search
// dropped trials it had sampled and not trained.
func (s *Search) Trials() []Trial { return s.trials }

// learn adds a finished trial to the search's memory and updates the agent.
// A failed trial (the executor failed, not the architecture) teaches the
// agent nothing and is not reused: the architecture may be tried again.
func (s *Search) learn(t Trial) error {
	s.trials = append(s.trials, t)
	s.nextID = max(s.nextID, t.ID+1)
	if t.Status == StatusFailed {
		return nil
	}
	arch, err := genotype.Parse(t.Arch)
	if err != nil {
		return err
	}
	traj, err := s.agent.Trajectory(arch)
	if err != nil {
		return err
	}
	s.agent.Observe(traj, t.Reward, s.rng(t.ID, 1))
	if _, ok := s.byArch[t.Arch]; !ok && t.Status != StatusReused {
		s.byArch[t.Arch] = len(s.trials) - 1
	}
	return nil
}

// rng returns the random stream of a trial: stream 0 samples its
// architecture, 1 drives its replay, 2 seeds its training.
func (s *Search) rng(id int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(s.cfg.Seed, uint64(id)<<2|stream))
}

func (s *Search) trialSeed(id int) uint64 { return s.rng(id, 2).Uint64() }

// outcome is a trial that a worker finished.
type outcome struct {
	trial Trial
	res   *runtime.Result
	err   error
}

// Run trains the remaining trials of the schedule, then (unless configured
// otherwise) the final phase, and writes the report. Closing stop makes it
// start no more trials and return ErrStopped once those in flight are
// recorded; cancelling ctx abandons the trials in flight (returning
// ctx.Err()). Either way every finished trial is on disk and the run can be
// resumed.
func (s *Search) Run(ctx context.Context, stop <-chan struct{}) error {
	s.start = time.Now()
	total := s.cfg.Schedule.Total()
	s.emit(Event{Kind: "start", Message: fmt.Sprintf("%d of %d trials done", len(s.trials), total)})
	if err := s.prepareLatency(ctx); err != nil {
		return err
	}
	if err := s.loop(ctx, stop, total); err != nil {
		return err
	}
	if s.cfg.Final.Skip {
		return s.report(nil)
	}
	finals, err := s.final(ctx, stop)
	if err != nil {
		return err
	}
	return s.report(finals)
}

// lag is how many trials may be sampled and not yet learned: the agent
// samples trial i after learning trials 1..i-lag (all but the last lag-1
// before it), in that order, whatever the order the workers finish them in,
// so a search run from the start repeats exactly. One worker: the next
// trial is sampled after the last one is learned. Several: twice as many
// trials as workers, so that every worker can stay busy while up to as many
// trials as workers have finished behind a slower one with a lower ID (with
// a lag of one per worker, a worker idles as soon as one trial has). What
// this saves on a real run was not measured.
func (s *Search) lag() int {
	if s.cfg.Workers <= 1 {
		return 1
	}
	return 2 * s.cfg.Workers
}

// queued is a sampled trial waiting for a worker.
type queued struct {
	trial Trial
	arch  genotype.Arch
}

func (s *Search) loop(ctx context.Context, stop <-chan struct{}, total int) error {
	// Workers never block on sending: whatever the loop returns, it cancels
	// the trials in flight and waits for them, so no training outlives Run.
	results := make(chan outcome, s.cfg.Workers)
	workCtx, cancelWork := context.WithCancel(ctx)
	busy := 0
	defer func() {
		cancelWork()
		for ; busy > 0; busy-- {
			<-results
		}
	}()
	var (
		lag       = s.lag()
		nextLearn = s.nextID           // the next trial the agent learns
		finished  = map[int]Trial{}    // on disk, not yet learned
		training  = map[string]int{}   // architecture -> trial training it (queued, in flight or not yet learned)
		waiting   = map[int][]queued{} // duplicates of a trial being trained, by its ID
		queue     []queued             // sampled, waiting for a worker, in trial order
		stopping  bool
		failures  int    // failed trials (see failed) since the last one that trained
		lastFail  string // the reason of the last failed trial
	)
	// done makes a finished trial durable; the agent learns it in turn.
	done := func(t Trial) error {
		if t.Finished.IsZero() {
			t.Finished = time.Now()
		}
		if err := s.store.Append(t); err != nil {
			return fmt.Errorf("recording trial %d: %w", t.ID, err)
		}
		finished[t.ID] = t
		return nil
	}
	// failed counts a trial that the executor or the latency measurement
	// failed (not one whose architecture does not build).
	failed := func(t Trial) {
		failures++
		lastFail = t.Reason
	}
	// admit queues a trial that needs training, or records why it will not
	// be trained: the cheap refusals (budget, parameter limit) come before
	// the latency, which is computed only when the reward needs it.
	admit := func(q queued) error {
		t := q.trial
		net, err := q.arch.Build(s.data.Input, len(s.data.Classes))
		if err != nil {
			t.Status, t.Reason = StatusFailed, err.Error()
			return done(t)
		}
		t.Params, t.MACs = net.Params(), net.MACs()
		why := s.cfg.Budget.Check(net)
		if why == "" {
			why = s.cfg.Reward.refuse(t.Params, 0) // the parameter limit alone
		}
		if why == "" && s.cfg.Reward.needsLatency() {
			if t.LatencyMs, err = s.latencyOf(ctx, net); err != nil {
				if ctx.Err() != nil {
					return err
				}
				t.Status, t.Reason = StatusFailed, "measuring its latency: "+err.Error()
				failed(t)
				return done(t)
			}
			why = s.cfg.Reward.refuse(t.Params, t.LatencyMs)
		}
		if why != "" {
			t.Status, t.Reason = StatusRefused, why
			return done(t)
		}
		training[t.Arch] = t.ID
		q.trial = t
		i, _ := slices.BinarySearchFunc(queue, t.ID, func(x queued, id int) int { return x.trial.ID - id })
		queue = slices.Insert(queue, i, q)
		return nil
	}
	// sample draws the next trial of the schedule; false when it is over.
	sample := func() (bool, error) {
		slot := len(s.trials) + s.nextID - nextLearn
		eps, ok := s.cfg.Schedule.At(slot)
		if !ok {
			return false, nil
		}
		id := s.nextID
		s.nextID++
		arch, _ := s.agent.Sample(eps, s.rng(id, 0))
		t := Trial{ID: id, Epsilon: eps, Arch: arch.String(), Seed: s.trialSeed(id)}
		if prev, ok := s.byArch[t.Arch]; ok {
			return true, done(s.reused(t, s.trials[prev]))
		}
		// A duplicate of a trial not yet learned reuses its result, or waits
		// for it; a failed trial has none, so the duplicate trains itself.
		if first, ok := training[t.Arch]; ok {
			ft, over := finished[first]
			if !over {
				waiting[first] = append(waiting[first], queued{t, arch})
				return true, nil
			}
			if ft.Status != StatusFailed {
				return true, done(s.reused(t, ft))
			}
		}
		return true, admit(queued{t, arch})
	}
	// advance samples every trial the lag allows before learning the next
	// finished one, so each trial is drawn from the same agent state
	// whatever the timing; it learns in trial order and saves the agent's
	// tables once for all it learned.
	advance := func() error {
		learned := 0
		for {
			if !stopping && ctx.Err() == nil && failures < maxFailures && s.nextID < nextLearn+lag {
				more, err := sample()
				if err != nil {
					return err
				}
				if more {
					continue
				}
			}
			t, ok := finished[nextLearn]
			if !ok {
				break
			}
			delete(finished, nextLearn)
			nextLearn++
			if training[t.Arch] == t.ID {
				delete(training, t.Arch)
			}
			if err := s.record(t); err != nil {
				return err
			}
			learned++
		}
		if learned == 0 {
			return nil
		}
		return s.save()
	}
	// flush learns, in trial order, every finished trial left when the
	// search ends early (past the gaps of trials sampled and never trained).
	flush := func() error {
		learned := 0
		for id := nextLearn; id < s.nextID; id++ {
			if t, ok := finished[id]; ok {
				delete(finished, id)
				if err := s.record(t); err != nil {
					return err
				}
				learned++
			}
		}
		if learned == 0 {
			return nil
		}
		return s.save()
	}
	// giveUp ends a search whose executor keeps failing.
	giveUp := func() error {
		if err := flush(); err != nil {
			return err
		}
		return fmt.Errorf("%d trials in a row failed, the last with: %s", failures, lastFail)
	}
	for {
		if err := advance(); err != nil {
			return err
		}
		if failures >= maxFailures {
			return giveUp()
		}
		for !stopping && ctx.Err() == nil && busy < s.cfg.Workers && len(queue) > 0 {
			q := queue[0]
			queue = queue[1:]
			busy++
			cfg := s.cfg.TrainConfig()
			cfg.Seed = q.trial.Seed
			go func(t Trial, arch genotype.Arch) {
				res, err := s.exec.Train(workCtx, Job{Trial: t.ID, Arch: arch, Config: cfg})
				results <- outcome{trial: t, res: res, err: err}
			}(q.trial, q.arch)
		}
		if busy == 0 {
			// Stopped (trials still queued are dropped: never trained,
			// never recorded) or the schedule is over.
			if err := flush(); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if stopping && len(s.trials) < total {
				return ErrStopped
			}
			return nil
		}
		select {
		case o := <-results:
			busy--
			if o.err != nil && ctx.Err() != nil {
				continue // abandoned
			}
			t := s.finish(o)
			if t.Status == StatusFailed {
				failed(t)
			} else {
				failures = 0
			}
			if err := done(t); err != nil {
				return err
			}
			if t.Status == StatusOK {
				if err := s.keepModel(t, o.res, slices.Collect(maps.Values(finished))); err != nil {
					return err
				}
			}
			// Duplicates that waited for this architecture reuse its
			// result. A failed trial has none to lend: the first of them
			// that is admitted trains the architecture, the rest wait for it.
			ws := waiting[t.ID]
			delete(waiting, t.ID)
			for i, w := range ws {
				if t.Status != StatusFailed {
					if err := done(s.reused(w.trial, t)); err != nil {
						return err
					}
					continue
				}
				if err := admit(w); err != nil {
					return err
				}
				if training[t.Arch] == w.trial.ID {
					if rest := ws[i+1:]; len(rest) > 0 {
						waiting[w.trial.ID] = rest
					}
					break
				}
			}
			if failures >= maxFailures {
				return giveUp()
			}
		case <-stop:
			if !stopping {
				stopping = true
				stop = nil
				s.emit(Event{Kind: "stopping", Message: fmt.Sprintf("finishing %d trial(s) in flight; interrupt again to abandon them", busy)})
			}
		case <-ctx.Done():
			return ctx.Err() // the deferred drain abandons the trials in flight
		}
	}
}

// maxFailures failed trials in a row (since the last one that trained) end
// a search: the executor, not the architectures, is broken.
const maxFailures = 3

// reused is a duplicate of an architecture already trained: Baker et al. do
// not train it again but reuse its reward.
func (s *Search) reused(t Trial, prev Trial) Trial {
	t.Status, t.ReusedFrom = StatusReused, prev.ID
	t.Reward, t.ValAccuracy, t.Params, t.MACs, t.LatencyMs = prev.Reward, prev.ValAccuracy, prev.Params, prev.MACs, prev.LatencyMs
	t.Finished = time.Now()
	return t
}

// finish fills a trial from its training outcome.
func (s *Search) finish(o outcome) Trial {
	t := o.trial
	t.Finished = time.Now()
	if o.err != nil {
		t.Status, t.Reason = StatusFailed, o.err.Error()
		return t
	}
	r := o.res
	t.Status = map[runtime.Status]string{runtime.StatusOK: StatusOK, runtime.StatusDiverged: StatusDiverged, runtime.StatusRefused: StatusRefused}[r.Status]
	t.Reason, t.ValAccuracy = r.Reason, r.ValAccuracy
	t.Reward = s.cfg.Reward.reward(r.Reward(), t.LatencyMs)
	t.BestEpoch, t.Restarts, t.Epochs, t.Seconds, t.ImagesPerSecond = r.BestEpoch, r.Restarts, r.Epochs, r.Seconds, r.ImagesPerSecond
	return t
}

// record teaches the agent a trial already on disk and reports it; save
// then writes the agent's tables.
func (s *Search) record(t Trial) error {
	if err := s.learn(t); err != nil {
		return err
	}
	tc := t
	s.emit(Event{Kind: "trial", Trial: &tc, Epsilon: t.Epsilon})
	return nil
}

// save writes the agent's Q-table and replay memory and trials.csv, once per
// batch of trials learned. They are for people and tools: a resumed run
// rebuilds the agent from trials.jsonl, so a crash between a trial and its
// batch's save loses nothing.
func (s *Search) save() error {
	if err := s.store.writeJSON(fileQTable, s.agent.Table.Q); err != nil {
		return err
	}
	if err := s.store.writeJSON(fileReplay, s.agent.Table.Memory); err != nil {
		return err
	}
	return s.store.WriteCSV(s.trials)
}

// ranked returns the distinct trained architectures, best reward first (the
// validation accuracy unless the reward is latency-aware; ties: the earlier
// trial).
func (s *Search) ranked() []Trial { return s.rankedWith(nil) }

// rankedWith ranks the learned trials together with trained ones the agent
// has not learned yet.
func (s *Search) rankedWith(unlearned []Trial) []Trial {
	var out []Trial
	for _, i := range s.byArch {
		if s.trials[i].Status == StatusOK {
			out = append(out, s.trials[i])
		}
	}
	for _, t := range unlearned {
		if t.Status == StatusOK {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Reward != out[j].Reward {
			return out[i].Reward > out[j].Reward
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// keepModel saves a trial's model while it ranks among the top K (its search
// weights start the final phase) and deletes models that dropped out.
func (s *Search) keepModel(t Trial, res *runtime.Result, unlearned []Trial) error {
	top := s.rankedWith(unlearned)
	if len(top) > s.cfg.Final.TopK {
		top = top[:s.cfg.Final.TopK]
	}
	keep := map[int]bool{}
	for _, x := range top {
		keep[x.ID] = true
	}
	if keep[t.ID] {
		b, err := s.export(t, res.Weights, nil)
		if err != nil {
			return err
		}
		if err := s.store.writeFile(relModel(t.ID), b); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.store.Dir + "/" + dirModels)
	if err != nil {
		return err
	}
	for _, e := range entries {
		var id int
		if _, err := fmt.Sscanf(e.Name(), "trial-%04d.onnx", &id); err == nil && !keep[id] {
			os.Remove(s.store.ModelPath(id))
		}
	}
	return nil
}

func relModel(id int) string { return dirModels + "/" + fmt.Sprintf("trial-%04d.onnx", id) }

// export compiles a trial's inference model with its metadata.
func (s *Search) export(t Trial, weights [][]float32, extra map[onnxgen.MetaKey]string) ([]byte, error) {
	arch, err := genotype.Parse(t.Arch)
	if err != nil {
		return nil, err
	}
	net, err := arch.Build(s.data.Input, len(s.data.Classes))
	if err != nil {
		return nil, err
	}
	meta := onnxgen.Metadata{Arch: t.Arch, Input: s.data.Input, Normalization: onnxgen.Normalization,
		Classes: s.data.Classes, DatasetHash: s.data.Hash, Extra: map[onnxgen.MetaKey]string{
			onnxgen.MetaRun:         s.cfg.Name,
			onnxgen.MetaTrial:       strconv.Itoa(t.ID),
			onnxgen.MetaValAccuracy: strconv.FormatFloat(t.ValAccuracy, 'f', 6, 64),
		}}
	for k, v := range extra {
		meta.Extra[k] = v
	}
	return onnxgen.Inference(net, weights, meta)
}

// emit fills the running totals of an event and reports it.
func (s *Search) emit(e Event) {
	if s.Progress == nil {
		return
	}
	total := s.cfg.Schedule.Total()
	e.Done, e.Total = len(s.trials), total
	if top := s.ranked(); len(top) > 0 {
		e.Best, e.BestArch = top[0].ValAccuracy, top[0].Arch
	}
	e.Elapsed = time.Since(s.start).Seconds()
	if e.Epsilon == 0 {
		e.Epsilon, _ = s.cfg.Schedule.At(min(len(s.trials), total-1))
	}
	e.Remaining = s.remaining()
	s.Progress(e)
}

// remaining estimates the seconds left: the mean time of the trials trained
// so far times those left (over the workers), plus the final phase at the
// same rate scaled by its epochs and data.
func (s *Search) remaining() float64 {
	var sum float64
	var n int
	for _, t := range s.trials {
		if t.Status == StatusOK || t.Status == StatusDiverged {
			sum += t.Seconds
			n++
		}
	}
	if n == 0 {
		return 0
	}
	mean := sum / float64(n)
	left := float64(max(s.cfg.Schedule.Total()-len(s.trials), 0))
	// The share of trials that need training (not reused) so far.
	share := float64(n) / float64(len(s.trials))
	est := left * share * mean / float64(s.cfg.Workers)
	if !s.cfg.Final.Skip {
		scale := s.cfg.Final.EpochFactor * float64(s.data.Full) / float64(max(s.data.Train, 1))
		est += float64(s.cfg.Final.TopK) * mean * scale
	}
	return est
}
