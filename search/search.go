package search

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
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
// run): the agent's state depends only on the seed and the finished trials
// in the order they finished, so a resumed run goes on exactly from where the
// last trial was recorded.
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
	for _, t := range trials {
		if err := s.learn(t); err != nil {
			return nil, fmt.Errorf("resuming trial %d: %w", t.ID, err)
		}
	}
	return s, nil
}

// Trials returns the finished trials in the order they finished.
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

func (s *Search) loop(ctx context.Context, stop <-chan struct{}, total int) error {
	// Workers never block on sending: whatever the loop returns, it cancels
	// the trials in flight and waits for them, so no training outlives Run.
	results := make(chan outcome, s.cfg.Workers)
	workCtx, cancelWork := context.WithCancel(ctx)
	inflight := map[string]bool{} // architectures being trained
	var waiting []Trial           // duplicates of an architecture in flight
	busy := 0
	defer func() {
		cancelWork()
		for ; busy > 0; busy-- {
			<-results
		}
	}()
	stopping := false
	failures := 0
	for {
		// Start trials while workers are free and the schedule has slots.
		for !stopping && ctx.Err() == nil && busy < s.cfg.Workers {
			slot := len(s.trials) + busy + len(waiting)
			eps, ok := s.cfg.Schedule.At(slot)
			if !ok {
				break
			}
			id := s.nextID
			s.nextID++
			arch, _ := s.agent.Sample(eps, s.rng(id, 0))
			t := Trial{ID: id, Epsilon: eps, Arch: arch.String(), Seed: s.trialSeed(id)}
			if prev, ok := s.byArch[t.Arch]; ok {
				if err := s.record(s.reused(t, s.trials[prev])); err != nil {
					return err
				}
				continue
			}
			if inflight[t.Arch] {
				waiting = append(waiting, t)
				continue
			}
			net, err := arch.Build(s.data.Input, len(s.data.Classes))
			if err != nil {
				t.Status, t.Reason = StatusFailed, err.Error()
				if err := s.record(t); err != nil {
					return err
				}
				continue
			}
			t.Params, t.MACs = net.Params(), net.MACs()
			if s.cfg.Reward.needsLatency() {
				if t.LatencyMs, err = s.latencyOf(ctx, net); err != nil {
					return err
				}
			}
			why := s.cfg.Budget.Check(net)
			if why == "" {
				why = s.cfg.Reward.refuse(t.Params, t.LatencyMs)
			}
			if why != "" {
				t.Status, t.Reason = StatusRefused, why
				t.Finished = time.Now()
				if err := s.record(t); err != nil {
					return err
				}
				continue
			}
			inflight[t.Arch] = true
			busy++
			cfg := s.cfg.TrainConfig()
			cfg.Seed = t.Seed
			go func(t Trial, arch genotype.Arch) {
				res, err := s.exec.Train(workCtx, Job{Trial: t.ID, Arch: arch, Config: cfg})
				results <- outcome{trial: t, res: res, err: err}
			}(t, arch)
		}
		if busy == 0 {
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
			delete(inflight, o.trial.Arch)
			if o.err != nil && ctx.Err() != nil {
				continue // abandoned
			}
			t := s.finish(o)
			if t.Status == StatusFailed {
				failures++
			} else {
				failures = 0
			}
			if err := s.record(t); err != nil {
				return err
			}
			if t.Status == StatusOK {
				if err := s.keepModel(t, o.res); err != nil {
					return err
				}
			}
			// Duplicates that waited for this architecture reuse its reward.
			rest := waiting[:0]
			for _, w := range waiting {
				if w.Arch == t.Arch {
					if err := s.record(s.reused(w, t)); err != nil {
						return err
					}
				} else {
					rest = append(rest, w)
				}
			}
			waiting = rest
			if failures >= 3 {
				return fmt.Errorf("%d trials in a row failed, the last with: %s", failures, t.Reason)
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

// record makes a finished trial durable, teaches the agent, saves the
// agent's tables and reports it.
func (s *Search) record(t Trial) error {
	if t.Finished.IsZero() {
		t.Finished = time.Now()
	}
	if err := s.store.Append(t); err != nil {
		return fmt.Errorf("recording trial %d: %w", t.ID, err)
	}
	if err := s.learn(t); err != nil {
		return err
	}
	if err := s.store.writeJSON(fileQTable, s.agent.Table.Q); err != nil {
		return err
	}
	if err := s.store.writeJSON(fileReplay, s.agent.Table.Memory); err != nil {
		return err
	}
	if err := s.store.WriteCSV(s.trials); err != nil {
		return err
	}
	tc := t
	s.emit(Event{Kind: "trial", Trial: &tc, Epsilon: t.Epsilon})
	return nil
}

// ranked returns the distinct trained architectures, best reward first (the
// validation accuracy unless the reward is latency-aware; ties: the earlier
// trial).
func (s *Search) ranked() []Trial {
	var out []Trial
	for _, i := range s.byArch {
		if s.trials[i].Status == StatusOK {
			out = append(out, s.trials[i])
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
func (s *Search) keepModel(t Trial, res *runtime.Result) error {
	top := s.ranked()
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
func (s *Search) export(t Trial, weights [][]float32, extra map[string]string) ([]byte, error) {
	arch, err := genotype.Parse(t.Arch)
	if err != nil {
		return nil, err
	}
	net, err := arch.Build(s.data.Input, len(s.data.Classes))
	if err != nil {
		return nil, err
	}
	meta := onnxgen.Metadata{Arch: t.Arch, Input: s.data.Input, Normalization: "x/255 (pixels scaled to [0, 1])",
		Classes: s.data.Classes, DatasetHash: s.data.Hash, Extra: map[string]string{
			"nasctl.run":          s.cfg.Name,
			"nasctl.trial":        strconv.Itoa(t.ID),
			"nasctl.val_accuracy": strconv.FormatFloat(t.ValAccuracy, 'f', 6, 64),
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
