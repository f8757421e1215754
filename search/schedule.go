package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// proposal is a candidate of the agent's, recorded and as proposed.
type proposal struct {
	rec rundir.Candidate
	p   controller.Proposal
}

// queued is an admitted trial waiting for a worker.
type queued struct {
	proposal
	trial rundir.Trial
}

// outcome is a trial that a worker finished.
type outcome struct {
	trial   rundir.Trial
	out     *Outcome
	err     error
	seconds float64 // the evaluation's wall time
}

// scheduler is the state of the trials between their proposal and their
// learning. The agent proposes trial i after it has learned trials
// 1..i-lag, and learns them in trial order whatever order the workers finish
// them in, so that a search run from the start repeats exactly.
type scheduler struct {
	workers int
	// lag is how many trials may be proposed and not yet learned: one for
	// one worker; twice the workers for several, so that every worker can
	// stay busy while as many trials as workers have finished behind a
	// slower one with a lower ID.
	lag int
	// loggedLag is the look-ahead of logged trials that do not record
	// theirs (runs of nasctl before Candidate.Lag): the run's saved workers'.
	loggedLag int
	nextLearn int                  // the next trial the agent learns
	proposed  []proposal           // trials nextLearn.. in order: waiting, queued, in flight or finished
	finished  map[int]rundir.Trial // on disk, not yet learned
	replayed  map[int]bool         // of finished: recorded by an earlier run, answered from the log
	training  map[string]int       // architecture key -> the trial evaluating it, until learned
	waiting   map[int][]proposal   // duplicates of a trial being evaluated, by its ID
	queue     []queued             // admitted, waiting for a worker, in trial order
	pool      *pool[outcome]       // the workers; nil outside Run
	restored  []proposal           // proposed before a resume, to place again
	stop      <-chan struct{}      // closed to ask for a stop
	stopping  bool                 // a stop was asked for
	breaker   breaker
}

func newScheduler(workers, nextLearn int) scheduler {
	lag := lagOf(workers)
	return scheduler{workers: workers, lag: lag, loggedLag: lag, nextLearn: nextLearn,
		finished: map[int]rundir.Trial{}, replayed: map[int]bool{}, training: map[string]int{}, waiting: map[int][]proposal{}}
}

// lagOf is the look-ahead of a scheduler of workers workers (README.md,
// "The CPU preset, repeatable runs, and the study's settings").
func lagOf(workers int) int {
	if workers > 1 {
		return 2 * workers
	}
	return 1
}

// lagAt is the look-ahead trial id is proposed with: a logged trial's own,
// that it was drawn with (recorded; else the run's saved workers'), so
// that a resume with other workers replays the log as it was drawn, and
// the scheduler's for trials past the log.
func (s *Search) lagAt(id int) int {
	if t, ok := s.logged[id]; ok {
		return cmp.Or(t.Lag, s.sched.loggedLag)
	}
	// A trial an earlier run drew and did not record (abandoned by a second
	// Ctrl-C, lost in a crash) while it recorded later ones: drawn with the
	// look-ahead of the next trial it recorded.
	next := 0
	for lid := range s.logged {
		if lid > id && (next == 0 || lid < next) {
			next = lid
		}
	}
	if next > 0 {
		return cmp.Or(s.logged[next].Lag, s.sched.loggedLag)
	}
	return s.sched.lag
}

// stopped reports whether a stop was asked for, noting it when it was just
// asked for; it never blocks.
func (c *scheduler) stopped() bool {
	if !c.stopping {
		select {
		case <-c.stop:
			c.stopping, c.stop = true, nil
		default:
		}
	}
	return c.stopping
}

// nextID is the trial the agent proposes next.
func (c *scheduler) nextID() int { return c.nextLearn + len(c.proposed) }

// breaker ends a search whose executor keeps failing: maxFailures trials in
// a row (since the last one evaluated) failed by the executor or by the
// latency measurement, not by their architecture.
type breaker struct {
	failures int
	last     string
}

const maxFailures = 3

func (b *breaker) fail(reason string) { b.failures, b.last = b.failures+1, reason }
func (b *breaker) reset()             { b.failures = 0 }
func (b *breaker) tripped() bool      { return b.failures >= maxFailures }
func (b *breaker) err() error {
	return fmt.Errorf("%d trials in a row failed, the last with: %s", b.failures, b.last)
}

// loop evaluates trials until the planned number is learned, a stop or an
// error.
func (s *Search) loop(ctx context.Context, stop <-chan struct{}) error {
	c := &s.sched
	c.pool, c.stop = newPool[outcome](ctx, s.cfg.Workers), stop
	defer c.pool.close() // no evaluation outlives Run
	if err := s.placeRestored(ctx); err != nil {
		return err
	}
	said := false // that the search is stopping
	for {
		if err := s.advance(ctx); err != nil {
			return err
		}
		if c.breaker.tripped() {
			return c.breaker.err()
		}
		s.dispatch(ctx)
		if c.pool.busy == 0 {
			return s.end(ctx)
		}
		if c.stopped() && !said {
			said = true
			s.emit(Event{Kind: "stopping", Message: fmt.Sprintf("finishing %d trial(s) in flight; interrupt again to abandon them", c.pool.busy)})
		}
		select {
		case o := <-c.pool.results:
			c.pool.busy--
			if err := s.receive(ctx, o); err != nil {
				return err
			}
		case <-c.stop: // noted by stopped at the top of the loop
		case <-ctx.Done():
			return ctx.Err() // the deferred close abandons the trials in flight
		}
	}
}

// end returns how a loop with no trial in flight ends: stopped (queued
// trials are dropped: never evaluated, never recorded), cancelled, or done.
func (s *Search) end(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.sched.stopped() && len(s.trials) < s.cfg.Trials {
		return ErrStopped
	}
	return nil
}

// stopped reports how a stopped or interrupted run ends (how: "stopped",
// "interrupted"): every trial that finished during the stop, recorded but
// learned only by the resumed run (see advance), or it would go unseen;
// then a "stopped" event.
func (s *Search) stopped(how string) {
	ids := slices.Sorted(maps.Keys(s.sched.finished))
	for _, id := range ids {
		t := s.sched.finished[id]
		s.emit(Event{Kind: "saved", Trial: &t, Message: "recorded; the resumed run learns it"})
	}
	msg := fmt.Sprintf("%s: %d trials learned, %d more recorded", how, len(s.trials), len(ids))
	if s.finals.total > 0 {
		msg += fmt.Sprintf(", %d of %d final models", s.finals.done, s.finals.total)
	}
	s.emit(Event{Kind: "stopped", Message: msg})
}

// advance proposes every trial the lag allows before learning the next
// finished one, so that each trial is drawn from the same agent state
// whatever the timing; it learns in trial order and saves the agent once
// for all it learned.
func (s *Search) advance(ctx context.Context) error {
	c := &s.sched
	learned := 0
	for {
		halted := c.stopped() || ctx.Err() != nil || c.breaker.tripped()
		room := c.nextID() < c.nextLearn+s.lagAt(c.nextID()) && c.nextID() <= s.cfg.Trials
		if !halted && room {
			if err := s.propose(ctx); err != nil {
				return err
			}
			continue
		}
		t, ok := c.finished[c.nextLearn]
		if !ok {
			break
		}
		if halted && room {
			// An uninterrupted run proposes trial nextID before it learns
			// this one; the resumed run will, from the same agent state.
			// The trial is on disk and is learned then.
			break
		}
		if err := s.learn(t); err != nil {
			return err
		}
		learned++
	}
	if learned == 0 {
		return nil
	}
	return s.save()
}

// placeRestored places again the trials a resumed run had proposed and not
// learned, in order.
func (s *Search) placeRestored(ctx context.Context) error {
	c := &s.sched
	for _, pr := range c.restored {
		c.proposed = append(c.proposed, pr)
		if t, ok := s.logged[pr.rec.ID]; ok {
			if err := s.replay(t, pr); err != nil {
				return err
			}
		} else if err := s.place(ctx, pr); err != nil {
			return err
		}
	}
	c.restored = nil
	return nil
}

// propose asks the agent for the next trial and places it: answered from
// the log when an earlier run recorded it, else reused, waiting for a
// duplicate, refused or queued.
func (s *Search) propose(ctx context.Context) error {
	c := &s.sched
	id := c.nextID()
	p, err := s.agent.Propose(id)
	if err != nil {
		return fmt.Errorf("proposing trial %d: %w", id, err)
	}
	pr := proposal{rundir.CandidateOf(id, p), p}
	pr.rec.Lag = s.lagAt(id)
	c.proposed = append(c.proposed, pr)
	if t, ok := s.logged[id]; ok {
		return s.replay(t, pr)
	}
	return s.place(ctx, pr)
}

// replay takes a trial recorded by an earlier run as the proposal's result.
func (s *Search) replay(t rundir.Trial, pr proposal) error {
	delete(s.logged, t.ID)
	if t.Arch != pr.rec.Arch {
		return fmt.Errorf("%s: trial %d is %s, but the agent proposes %s: the log, %s or the settings changed since; start a new run",
			s.dir.Path, t.ID, t.Arch, pr.rec.Arch, rundir.FileAgent)
	}
	if t.Status != rundir.StatusReused && t.Status != rundir.StatusRefused {
		s.sched.training[pr.p.Genotype.Key()] = t.ID
	}
	s.sched.finished[t.ID], s.sched.replayed[t.ID] = t, true
	return nil
}

// place records a duplicate's reused result, makes it wait for the trial
// evaluating its architecture, or admits it.
func (s *Search) place(ctx context.Context, pr proposal) error {
	c := &s.sched
	key := pr.p.Genotype.Key()
	if prev, ok := s.byKey[key]; ok {
		return s.done(reused(s.newTrial(pr), s.trials[prev]))
	}
	// A duplicate of a trial not yet learned reuses its result, or waits
	// for it; a failed trial has none, so the duplicate is evaluated itself.
	if first, ok := c.training[key]; ok {
		ft, over := c.finished[first]
		if !over {
			c.waiting[first] = append(c.waiting[first], pr)
			return nil
		}
		if ft.Status != rundir.StatusFailed {
			return s.done(reused(s.newTrial(pr), ft))
		}
	}
	return s.admit(ctx, pr)
}

// newTrial is the record of a proposal before its evaluation.
func (s *Search) newTrial(pr proposal) rundir.Trial {
	t := rundir.Trial{Candidate: pr.rec}
	if s.cfg.Trains() {
		t.Seed = runtime.Seed(controller.TrialRand(s.cfg.Seed, pr.rec.ID, 2).Uint64())
	}
	return t
}

// admit queues a trial for evaluation, or records why it will not be
// evaluated: the cheap refusals (budget, parameter limit) come before the
// latency, which is computed only when the reward needs it.
func (s *Search) admit(ctx context.Context, pr proposal) error {
	t := s.newTrial(pr)
	if s.cfg.Trains() {
		ok, err := s.check(ctx, &t, pr)
		if err != nil || !ok {
			return err
		}
	}
	c := &s.sched
	c.training[pr.p.Genotype.Key()] = t.ID
	i, _ := slices.BinarySearchFunc(c.queue, t.ID, func(x queued, id int) int { return x.rec.ID - id })
	c.queue = slices.Insert(c.queue, i, queued{pr, t})
	return nil
}

// check fills a trained trial's size and latency and records it when it
// will not be trained: it does not build, it is over the budget or a limit,
// or its latency could not be measured. It reports whether to train it.
func (s *Search) check(ctx context.Context, t *rundir.Trial, pr proposal) (bool, error) {
	net, err := pr.p.Genotype.Build(s.data.Input, len(s.data.Classes))
	if err != nil {
		t.Status, t.Reason = rundir.StatusFailed, err.Error()
		return false, s.done(*t)
	}
	t.Params, t.MACs = net.Params(), net.MACs()
	why := s.cfg.Budget.Check(net)
	if why == "" {
		why = s.cfg.Reward.refuse(t.Params, 0) // the parameter limit alone
	}
	if why == "" && s.cfg.Reward.needsLatency() {
		if t.LatencyMs, err = s.latencyOf(ctx, net); err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			t.Status, t.Reason = rundir.StatusFailed, "measuring its latency: "+err.Error()
			s.sched.breaker.fail(t.Reason)
			return false, s.done(*t)
		}
		if why := notFinite(*t); why != "" { // a degenerate latency model's; neither refuse nor train by it
			switch {
			case s.cfg.Reward.Table != "":
				why += " (predicted from the run's latency table: start a new run with another --latency-table)"
			case s.latency != nil:
				why += fmt.Sprintf(" (predicted by the run's latency model: delete %s and resume to calibrate a new one)", rundir.FileLatencyModel)
			}
			t.Status, t.Reason, t.LatencyMs = rundir.StatusFailed, why, 0
			s.sched.breaker.fail(t.Reason)
			return false, s.done(*t)
		}
		why = s.cfg.Reward.refuse(t.Params, t.LatencyMs)
	}
	if why != "" {
		t.Status, t.Reason = rundir.StatusRefused, why
		return false, s.done(*t)
	}
	return true, nil
}

// dispatch hands queued trials to free workers.
func (s *Search) dispatch(ctx context.Context) {
	c := &s.sched
	for !c.stopped() && ctx.Err() == nil && !c.pool.full() && len(c.queue) > 0 {
		q := c.queue[0]
		c.queue = c.queue[1:]
		cfg := s.cfg.TrainConfig()
		cfg.Seed, cfg.StopBelow = uint64(q.trial.Seed), s.stopBelow(q.trial.ID, q.p.Greedy)
		job := Job{Trial: q.trial.ID, Genotype: q.p.Genotype, Actions: q.p.Actions, Config: cfg}
		c.pool.run(func(ctx context.Context) outcome {
			start := time.Now()
			out, err := s.exec.Evaluate(ctx, job)
			return outcome{trial: q.trial, out: out, err: err, seconds: time.Since(start).Seconds()}
		})
	}
}

// receive records a trial a worker finished and settles the duplicates that
// waited for it.
func (s *Search) receive(ctx context.Context, o outcome) error {
	c := &s.sched
	if o.err != nil && ctx.Err() != nil {
		return nil // abandoned
	}
	t := s.finish(o)
	if t.Status == rundir.StatusFailed {
		c.breaker.fail(t.Reason)
	} else {
		c.breaker.reset()
	}
	// The model is written before the trial is recorded: a kill between the
	// two leaves a model for a trial a resumed run trains again, never a
	// recorded trial without the weights its final training starts from.
	if t.Status == rundir.StatusOK && o.out.Training != nil {
		if err := s.saveModel(t, o.out.Training.Weights); err != nil {
			return err
		}
	}
	if err := s.done(t); err != nil {
		return err
	}
	if err := s.pruneModels(); err != nil {
		return err
	}
	// Duplicates that waited for this architecture reuse its result. A
	// failed trial has none to lend: the first of them that is admitted is
	// evaluated, the rest wait for it.
	ws := c.waiting[t.ID]
	delete(c.waiting, t.ID)
	for i, w := range ws {
		if t.Status != rundir.StatusFailed {
			if err := s.done(reused(s.newTrial(w), t)); err != nil {
				return err
			}
			continue
		}
		if err := s.admit(ctx, w); err != nil {
			return err
		}
		if c.training[w.p.Genotype.Key()] == w.rec.ID {
			if rest := ws[i+1:]; len(rest) > 0 {
				c.waiting[w.rec.ID] = rest
			}
			break
		}
	}
	return nil
}

// finish fills a trial from its evaluation.
func (s *Search) finish(o outcome) rundir.Trial {
	t := o.trial
	t.Finished = time.Now()
	if o.err != nil {
		t.Status, t.Reason = rundir.StatusFailed, o.err.Error()
		if on := (interface{ Worker() string })(nil); errors.As(o.err, &on) {
			t.Worker = on.Worker() // a remote worker's failure: which one
		}
		return t
	}
	t.Worker, t.Stored = o.out.Worker, o.out.Stored
	r := o.out.Training
	if r == nil { // a problem's score
		t.Status, t.Score, t.Reward, t.Seconds = rundir.StatusOK, o.out.Score, s.prob.RewardOf(o.out.Score), o.seconds
		return finite(t)
	}
	t.Status, t.Reason, t.ValAccuracy = rundir.StatusOf(r.Status), r.Reason, r.ValAccuracy
	t.Reward = s.cfg.Reward.reward(s.cfg.Reward.accuracy(r), t.LatencyMs)
	if ra := s.cfg.Reward.rewardAccuracy(r); ra != r.ValAccuracy {
		t.RewardAccuracy = ra
	}
	t.BestEpoch, t.Restarts, t.Epochs, t.Seconds, t.ImagesPerSecond = r.BestEpoch, r.Restarts, r.Epochs, r.Seconds, r.ImagesPerSecond
	t.WaitedSeconds = r.Waited
	t.AtChance, t.Pruned = r.AtChance, r.Pruned
	if t.RewardAccuracy > 0 && !runtime.AtChance(t.RewardAccuracy, s.data.ValMajority) {
		// The kept epoch (by validation loss) is at chance, but an epoch
		// the reward reads learnt: the trial did not stay at chance.
		t.AtChance = false
	}
	return finite(t)
}

// finite fails a trial whose reward or accuracy is not a finite number: no
// agent can learn it, and trials.jsonl (JSON) cannot hold it, so recording
// it would stop the run, and every resume of it, at this trial.
func finite(t rundir.Trial) rundir.Trial {
	if why := notFinite(t); why != "" {
		t.Status, t.Reason = rundir.StatusFailed, why
		t.Reward, t.ValAccuracy, t.RewardAccuracy, t.Score, t.LatencyMs = 0, 0, 0, 0, 0
	}
	return t
}

// notFinite names the first of t's figures that is not a finite number, or
// returns "".
func notFinite(t rundir.Trial) string {
	for _, v := range []struct {
		name string
		v    float64
	}{{"latency", t.LatencyMs}, {"accuracy", t.ValAccuracy}, {"score", t.Score}, {"reward", t.Reward}} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) {
			return fmt.Sprintf("its %s, %v, is not a finite number", v.name, v.v)
		}
	}
	return ""
}

// stopBelow is trial id's stopping thresholds (median stopping, successive
// halving, the higher of the two), from the trials the agent had learned
// when it proposed the trial (IDs up to id - lag), so that they do not
// depend on the timing of the workers. Halving.SpareGreedy spares greedy
// proposals from halving.
func (s *Search) stopBelow(id int, greedy bool) []float64 {
	n, _ := slices.BinarySearchFunc(s.trials, id-s.sched.lag+1, func(t rundir.Trial, id int) int { return t.ID - id })
	median := s.cfg.Train.MedianStop.thresholds(s.trials[:n], s.cfg.Train.Epochs)
	var halving []float64
	if h := s.cfg.Train.Halving; !greedy || !h.SpareGreedy {
		halving = h.thresholds(s.trials[:n], s.cfg.Train.Epochs)
	}
	if median == nil {
		return halving
	}
	if halving == nil {
		return median
	}
	for i := range median {
		median[i] = max(median[i], halving[i])
	}
	return median
}

// reused is a duplicate of an architecture already evaluated: Baker et al.
// do not train it again but reuse its reward.
func reused(t, prev rundir.Trial) rundir.Trial {
	t.Status, t.ReusedFrom = rundir.StatusReused, prev.ID
	t.Reward, t.ValAccuracy, t.Score, t.Params, t.MACs, t.LatencyMs = prev.Reward, prev.ValAccuracy, prev.Score, prev.Params, prev.MACs, prev.LatencyMs
	t.RewardAccuracy = prev.RewardAccuracy
	t.Finished = time.Now()
	return t
}

// done makes a finished trial durable; the agent learns it in turn.
func (s *Search) done(t rundir.Trial) error {
	if t.Finished.IsZero() {
		t.Finished = time.Now()
	}
	if err := s.dir.AppendTrial(t); err != nil {
		return fmt.Errorf("recording trial %d: %w", t.ID, err)
	}
	s.sched.finished[t.ID] = t
	return nil
}

// learn teaches the agent the next trial in order and reports it. A failed
// trial (the executor failed, not the architecture) teaches nothing and is
// not reused: the architecture may be evaluated again.
func (s *Search) learn(t rundir.Trial) error {
	c := &s.sched
	pr := c.proposed[0]
	if pr.rec.ID != t.ID {
		return fmt.Errorf("learning trial %d: trial %d is next", t.ID, pr.rec.ID)
	}
	c.proposed = c.proposed[1:]
	replayed := c.replayed[t.ID]
	delete(c.finished, t.ID)
	delete(c.replayed, t.ID)
	c.nextLearn++
	key := pr.p.Genotype.Key()
	if c.training[key] == t.ID {
		delete(c.training, key)
	}
	var l controller.Learned
	var err error
	if t.Status == rundir.StatusFailed {
		err = s.agent.Forget(t.ID, pr.p)
	} else {
		l, err = s.agent.Observe(t.ID, pr.p, t.Reward)
	}
	if err != nil {
		return fmt.Errorf("learning trial %d: %w", t.ID, err)
	}
	if l != (controller.Learned{}) {
		n := rundir.Note{Trial: t.ID, Learned: l}
		if err := s.dir.AppendNote(n); err != nil {
			return err
		}
		s.notes[t.ID] = n
	}
	s.remember(t)
	e := Event{Kind: "trial", Trial: &t, Replayed: replayed}
	if l != (controller.Learned{}) {
		e.Learned = &l
	}
	s.emit(e)
	return nil
}

// csvEvery is how often a search that does not train rewrites trials.csv
// while it learns. The file holds every trial, so writing it per trial made
// a search of thousands of table-scored trials quadratic
// (docs/performance.md, "Searches without training"); trials.jsonl is the
// record, and the report writes the CSV whole at the end, on a stop and
// after a failure. A trained trial takes seconds: those runs write it with
// every batch.
const csvEvery = 10 * time.Second

// save writes the agent's checkpoint and trials.csv once per batch of
// trials learned (trials.csv at most every csvEvery in a search that does
// not train). A crash between a trial and its batch's save loses nothing:
// a resumed run learns the trials after the checkpoint again from the log.
func (s *Search) save() error {
	c := &s.sched
	cp := rundir.Checkpoint{Learned: c.nextLearn - 1}
	for _, pr := range c.proposed {
		cp.Outstanding = append(cp.Outstanding, pr.rec)
	}
	if err := s.dir.SaveAgent(cp, s.agent.Save); err != nil {
		return err
	}
	if !s.cfg.Trains() && time.Since(s.csvAt) < csvEvery {
		return nil
	}
	s.csvAt = time.Now()
	return s.dir.WriteTrialsCSV(s.trials, s.notes, s.cfg.Trains())
}

// saveModel saves a finished trial's model if it ranks among the top K
// with it (its search weights start the final phase).
func (s *Search) saveModel(t rundir.Trial, weights [][]float32) error {
	for _, x := range s.top(append(slices.Collect(maps.Values(s.sched.finished)), t)) {
		if x.ID != t.ID {
			continue
		}
		b, err := s.export(t, weights, nil)
		if err != nil {
			return err
		}
		return s.dir.WriteFile(rundir.ModelName(t.ID), b)
	}
	return nil
}

// pruneModels deletes the saved models of trials no longer among the top K.
// A search whose trials do not train saves none.
func (s *Search) pruneModels() error {
	if !s.cfg.Trains() {
		return nil
	}
	keep := map[int]bool{}
	for _, x := range s.top(slices.Collect(maps.Values(s.sched.finished))) {
		keep[x.ID] = true
	}
	entries, err := os.ReadDir(filepath.Join(s.dir.Path, rundir.DirModels))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if id, ok := rundir.ModelID(e.Name()); ok && !keep[id] {
			os.Remove(s.dir.ModelPath(id))
		}
	}
	return nil
}
