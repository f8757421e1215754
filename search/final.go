package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/quantize"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
)

// Fitted is a candidate trained, exported and tested by Fit.
type Fitted struct {
	// Result is the training's; with an interrupted training, the epochs
	// finished and their best weights.
	Result *runtime.Result
	// Model is the exported inference model with its metadata: the trained
	// one (test accuracy included) or, after an interruption, the best
	// epoch finished (marked interrupted); nil otherwise.
	Model []byte
	// Test is the exported model's accuracy on the test split (a finished
	// training with status ok).
	Test *runtime.Evaluation
	// Worker names the remote worker that trained it (Outcome.Worker).
	Worker string
}

// Fit trains job's candidate on exec, exports the best weights as an
// inference model whose metadata holds the architecture, input,
// normalisation, classes, dataset hash, validation and test accuracy, the
// training's settings (runtime.TrainRecord) and extra, and tests the
// exported file: what nasctl train and the final phase do. Cancelling ctx
// returns its error with what the training finished.
func Fit(ctx context.Context, exec Executor, job Job, extra map[onnxgen.MetaKey]string) (*Fitted, error) {
	out, err := exec.Evaluate(ctx, job)
	if out == nil {
		return nil, err
	}
	if out.Training == nil {
		return nil, errors.New("the executor scored the candidate instead of training it")
	}
	f := &Fitted{Result: out.Training, Worker: out.Worker}
	r := out.Training
	training, _ := json.Marshal(job.Config.Record()) // strings and numbers always marshal
	meta := map[onnxgen.MetaKey]string{onnxgen.MetaValAccuracy: strconv.FormatFloat(r.ValAccuracy, 'f', 6, 64),
		onnxgen.MetaTraining: string(training)}
	for k, v := range extra {
		meta[k] = v
	}
	if errors.Is(err, runtime.ErrPaused) {
		return f, err // its state goes on, not a model of it
	}
	if err != nil {
		// Interrupted: keep the best epoch finished so far.
		if r.Weights != nil {
			meta[onnxgen.MetaInterrupted] = "true"
			var xerr error
			if f.Model, xerr = exportModel(exec.Data(), job.Genotype, r.Weights, meta, onnxgen.Inference); xerr != nil {
				return f, fmt.Errorf("%w; the best finished epoch could not be exported: %v", err, xerr)
			}
		}
		return f, err
	}
	if r.Status != runtime.StatusOK {
		return f, nil
	}
	model, err := exportModel(exec.Data(), job.Genotype, r.Weights, meta, onnxgen.Inference)
	if err != nil {
		return f, err
	}
	if f.Test, err = exec.Test(ctx, model); err != nil {
		return f, err
	}
	meta[onnxgen.MetaTestAccuracy] = strconv.FormatFloat(f.Test.Accuracy, 'f', 6, 64)
	f.Model, err = exportModel(exec.Data(), job.Genotype, r.Weights, meta, onnxgen.Inference)
	return f, err
}

// exportModel compiles g's inference model with weights and metadata
// (compile: onnxgen.Inference or InferenceUnfolded).
func exportModel(data Data, g genotype.Genotype, weights [][]float32, extra map[onnxgen.MetaKey]string,
	compile func(*genotype.Net, [][]float32, onnxgen.Metadata) ([]byte, error)) ([]byte, error) {
	net, err := g.Build(data.Input, len(data.Classes))
	if err != nil {
		return nil, err
	}
	if data.Split.Plan != "" {
		extra = maps.Clone(extra)
		if extra == nil {
			extra = map[onnxgen.MetaKey]string{}
		}
		extra[onnxgen.MetaSplit] = data.Split.String()
	}
	meta := onnxgen.Metadata{Arch: g.String(), Input: data.Input, Normalization: onnxgen.Normalization,
		Classes: data.Classes, DatasetHash: data.Hash, Extra: extra}
	return compile(net, weights, meta)
}

// export compiles a search trial's model with the run's metadata, its
// batch normalisations unfolded so that the final phase reads every weight
// back (onnxgen.Weights).
func (s *Search) export(t rundir.Trial, weights [][]float32, extra map[onnxgen.MetaKey]string) ([]byte, error) {
	g, err := s.method.genotype(t.Candidate)
	if err != nil {
		return nil, err
	}
	meta := map[onnxgen.MetaKey]string{
		onnxgen.MetaRun:         s.cfg.Name,
		onnxgen.MetaTrial:       strconv.Itoa(t.ID),
		onnxgen.MetaValAccuracy: strconv.FormatFloat(t.ValAccuracy, 'f', 6, 64),
	}
	for k, v := range extra {
		meta[k] = v
	}
	return exportModel(s.data, g, weights, meta, onnxgen.InferenceUnfolded)
}

// finalEpochs is the most epochs of a final retraining: EpochFactor times
// the trials' epochs, at least 1.
func (c Config) finalEpochs() int {
	return max(1, int(math.Round(float64(c.Train.Epochs)*c.Final.EpochFactor)))
}

// final retrains the top K architectures for EpochFactor times the epochs on
// the whole training split, starting from their search weights, evaluates them
// on the test split and exports them to winners/. Up to Workers retrain at
// once; each result is recorded as it finishes (final.jsonl), and results
// already recorded (a resumed run) are kept.
func (s *Search) final(ctx context.Context, stop <-chan struct{}) error {
	top := s.top(nil)
	done, todo, err := s.finalsToDo(top)
	if err != nil {
		return err
	}
	reuse, todo, err := s.earlierFinals(top, todo)
	if err != nil {
		return err
	}
	s.finals.done, s.finals.total = done, len(top)
	ph := &finalPhase{s: s, top: top, done: done, flight: finalFlight{dir: s.dir, at: map[int]rundir.FinalProgress{}, ended: map[int]bool{}},
		clock: newFlightClock(s.cfg.finalEpochs()), pause: make(chan struct{}), pauses: s.pausesFinals(), epochs: make(chan Event, 16)}
	ph.flight.clear() // what a killed process left
	defer ph.flight.clear()
	if len(todo)+len(reuse) > 0 {
		select {
		case <-stop: // asked during the last trials: no retraining starts
			return ErrStopped
		default:
		}
		s.emit(Event{Kind: "final_start", Message: s.finalStartMessage(len(top), done, len(todo), reuse)})
		s.missingWeights(top, todo)
	}
	ph.pool = newPool[finalResult](ctx, s.cfg.Workers)
	defer ph.pool.close()
	for _, e := range reuse {
		f, err := s.takeEarlier(e)
		if err == nil {
			err = ph.record(f)
		}
		if err != nil {
			return err
		}
	}
	stopping := false
	for len(todo) > 0 || ph.pool.busy > 0 {
		for len(todo) > 0 && !ph.pool.full() && ctx.Err() == nil && !stopping {
			ph.start(todo[0])
			todo = todo[1:]
		}
		if ph.pool.busy == 0 {
			break
		}
		select {
		case e := <-ph.epochs:
			if ph.flight.report(*e.Epoch) {
				s.emit(e)
			}
		case r := <-ph.pool.results:
			ph.pool.busy--
			if err := ph.finished(r); err != nil {
				return err
			}
		case <-stop:
			stop, stopping = nil, true // start no more; pause or finish those in flight
			ph.stopAsked()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if ph.done < len(top) {
		return ErrStopped
	}
	// Every final recorded: a state left of a network no longer among the
	// best (an earlier plan's, say) will not be taken.
	os.RemoveAll(filepath.Join(s.dir.Path, rundir.DirPaused))
	return nil
}

// finalStartMessage is the final phase's first line: of top
// architectures, done recorded before, todo to retrain and reuse taken
// from an earlier plan.
func (s *Search) finalStartMessage(top, done, todo int, reuse []earlierFinal) string {
	if len(reuse) == 0 {
		return fmt.Sprintf("final phase: retraining the %s (%d done before), up to %d epochs each",
			english.Plural(top, "best architecture", "best architectures"), done, s.cfg.finalEpochs())
	}
	retrain := "none to retrain"
	if todo > 0 {
		retrain = fmt.Sprintf("%d to retrain, up to %d epochs each", todo, s.cfg.finalEpochs())
	}
	return fmt.Sprintf("final phase of the %s: %d taken from %s, whose final phase trained them from the same weights and settings; %s (%d done before)",
		english.Plural(top, "best architecture", "best architectures"), len(reuse), reusedFrom(reuse), retrain, done)
}

// finalResult is a retraining's outcome.
type finalResult struct {
	f   rundir.FinalResult
	err error
}

// finalPhase is a final phase under way (Search.final), on the search's
// goroutine.
type finalPhase struct {
	s      *Search
	top    []rundir.Trial
	done   int // finals recorded
	flight finalFlight
	clock  *flightClock
	pause  chan struct{} // closed by a stop: local retrainings pause at an epoch's end
	pauses bool          // the retrainings are local, and pause
	epochs chan Event    // the progress of the retrainings in flight, emitted by the search
	pool   *pool[finalResult]
}

// record keeps a final model's result.
func (ph *finalPhase) record(f rundir.FinalResult) error {
	s := ph.s
	f.Finished = time.Now()
	if err := s.dir.AppendFinal(f); err != nil {
		return err
	}
	ph.flight.drop(f.Rank)
	ph.clock.stop(f.Rank)
	s.dropPaused(f.Trial)
	ph.done++
	s.finals.done = ph.done
	s.emit(Event{Kind: "final", Final: &f, Message: fmt.Sprintf("final %d of %d", ph.done, len(ph.top))})
	return nil
}

// start begins the retraining of rank (0-based, of top).
func (ph *finalPhase) start(rank int) {
	s, t := ph.s, ph.top[rank]
	progress := s.finalProgress(rank+1, t.ID, ph.epochs)
	tick := ph.clock.start(rank + 1)
	var resume *runtime.TrainState
	if ph.pauses { // a remote worker would start anew, whatever it is sent
		resume = s.pausedFor(rank+1, t)
	}
	ph.pool.run(func(ctx context.Context) finalResult {
		f, err := s.retrain(ctx, rank+1, t, func(r runtime.EpochRecord) {
			tick(r)
			progress(r)
		}, ph.pause, resume)
		return finalResult{f, err}
	})
}

// finished takes a retraining's outcome; an error it returns ends the
// phase.
func (ph *finalPhase) finished(r finalResult) error {
	var paused *pausedError
	switch {
	case errors.As(r.err, &paused):
		ph.flight.drop(paused.rank)
		ph.clock.stop(paused.rank)
		ph.s.emit(Event{Kind: "info", Message: paused.Error()})
		return nil
	case r.err != nil:
		// The others in flight are abandoned, but those that finished
		// meanwhile are kept: hours of work, each.
		ph.pool.cancel()
		for ph.pool.busy > 0 {
			o := <-ph.pool.results
			ph.pool.busy--
			if o.err == nil {
				if err := ph.record(o.f); err != nil {
					return err
				}
			}
		}
		return r.err
	}
	return ph.record(r.f)
}

// stopAsked pauses the local retrainings in flight at the end of their
// epoch, and says so; remote workers finish theirs.
func (ph *finalPhase) stopAsked() {
	// Remote workers report no epochs here, and finish what they train.
	msg := fmt.Sprintf("finishing %d retraining(s) on remote workers (their epochs are not reported here); interrupt again to abandon them", ph.pool.busy)
	if ph.pauses {
		close(ph.pause)
		msg = fmt.Sprintf("pausing %d retraining(s) in flight at the end of their epoch%s: a resume goes on from there; interrupt again to abandon them",
			ph.pool.busy, ph.clock.where())
	}
	ph.s.emit(Event{Kind: "stopping", Message: msg})
}

// finalsToDo splits the final phase's architectures top into those a
// resumed run recorded already (how many) and the ranks (0-based) still to
// retrain.
func (s *Search) finalsToDo(top []rundir.Trial) (done int, todo []int, err error) {
	recorded, err := rundir.ReadFinalRecords(s.dir.Path)
	if err != nil {
		return 0, nil, err
	}
	byTrial := map[int]bool{}
	for _, f := range recorded {
		byTrial[f.Trial] = true
	}
	for rank, t := range top {
		if byTrial[t.ID] {
			done++
		} else {
			todo = append(todo, rank)
		}
	}
	return done, todo, nil
}

// freshWeights is the reason of a final model trained without its search
// weights, which the final phase fine-tunes from (deleted, or pruned before
// the final phase was made larger).
const freshWeights = "search weights missing; trained from fresh weights"

// missingWeights warns, before the retrainings start, of the ranks (0-based,
// of top) whose search weights are gone: their final models will not be
// those of the run that kept them.
func (s *Search) missingWeights(top []rundir.Trial, todo []int) {
	var gone []string
	for _, rank := range todo {
		if _, err := os.Stat(s.dir.ModelPath(top[rank].ID)); errors.Is(err, os.ErrNotExist) {
			gone = append(gone, fmt.Sprintf("#%d (%s)", rank+1, rundir.ModelName(top[rank].ID)))
		}
	}
	if len(gone) > 0 {
		s.emit(Event{Kind: "info", Message: fmt.Sprintf("warning: the search weights of %s are missing: these retrain from fresh weights, and their final models will differ from those of a run that kept them",
			english.WordSeries(gone, "and"))})
	}
}

// finalEpochEvery is how often at most a retraining says how far it is: a
// final phase of the study's size trains each network for many minutes.
// A variable for the tests.
var finalEpochEvery = 30 * time.Second

// finalProgress returns the per-epoch callback of rank's retraining (run
// on its training's goroutine): at most every finalEpochEvery, an event
// for the search's goroutine to emit, dropped if that one is behind.
// Remote workers' epochs do not come back (a job's Progress is the
// worker's own).
func (s *Search) finalProgress(rank, trial int, epochs chan<- Event) func(runtime.EpochRecord) {
	began := time.Now()
	last := began
	most := s.cfg.finalEpochs()
	return func(r runtime.EpochRecord) {
		if time.Since(last) < finalEpochEvery {
			return
		}
		last = time.Now()
		p := &rundir.FinalProgress{Rank: rank, Trial: trial, Epoch: r.Epoch, MaxEpochs: most, ValAccuracy: r.ValAccuracy, Time: last, Started: began}
		select {
		case epochs <- Event{Kind: "final_epoch", Epoch: p, Message: fmt.Sprintf("final #%d: epoch %d of at most %d, val %.4f", rank, r.Epoch, most, r.ValAccuracy)}:
		default:
		}
	}
}

// finalFlight keeps FileFinalProgress: the latest progress of each
// retraining in flight, by rank. The file is for watching only, so a
// failure to write it is not the final phase's: it is left as it was.
type finalFlight struct {
	dir   *rundir.Dir
	at    map[int]rundir.FinalProgress
	ended map[int]bool // ranks recorded: their last epochs may still be queued
}

// report keeps p and says whether it is news: the last epochs of a
// retraining recorded since may still be queued.
func (f *finalFlight) report(p rundir.FinalProgress) bool {
	if f.ended[p.Rank] {
		return false
	}
	f.at[p.Rank] = p
	f.write()
	return true
}

// drop forgets a retraining that ended.
func (f *finalFlight) drop(rank int) {
	f.ended[rank] = true
	if _, ok := f.at[rank]; ok {
		delete(f.at, rank)
		f.write()
	}
}

func (f *finalFlight) write() {
	if len(f.at) == 0 {
		f.clear()
		return
	}
	f.dir.WriteJSON(rundir.FileFinalProgress, slices.SortedFunc(maps.Values(f.at), func(a, b rundir.FinalProgress) int { return a.Rank - b.Rank }))
}

func (f *finalFlight) clear() {
	os.Remove(filepath.Join(f.dir.Path, rundir.FileFinalProgress))
}

// finalConfig is how the final phase retrains trial t, its starting
// weights aside.
func (s *Search) finalConfig(t rundir.Trial) runtime.TrainConfig {
	cfg := s.cfg.TrainConfig()
	cfg.Seed = uint64(t.Seed)
	cfg.Epochs = s.cfg.finalEpochs()
	if s.cfg.Final.LR > 0 {
		cfg.LR = s.cfg.Final.LR
	}
	if s.cfg.Final.Patience > 0 {
		cfg.Patience = s.cfg.Final.Patience
	}
	if f := s.cfg.Final; f.DecayEvery > 0 {
		cfg.Schedule = runtime.LRSchedule{MaxRestarts: -1, DecayEvery: f.DecayEvery, DecayFactor: f.DecayFactor, GiveUpAfter: cfg.Schedule.GiveUpAfter}
	}
	cfg.Augment, _ = runtime.ParseAugment(s.cfg.finalAugment()) // checked with the config
	cfg.Average = s.cfg.Final.Average
	return cfg
}

// finalRecord is the record of the settings (runtime.TrainRecord as
// JSON) that retrain gives trial t's retraining, as its model's metadata
// and a paused state keep them: from the search weights when the run has
// them.
func (s *Search) finalRecord(t rundir.Trial) string {
	cfg := s.finalConfig(t)
	if _, err := os.Stat(s.dir.ModelPath(t.ID)); err == nil {
		cfg.Init = [][]float32{} // as retrain sets them
	}
	record, _ := json.Marshal(cfg.Record()) // strings and numbers always marshal
	return string(record)
}

// retrain runs the final phase for one architecture; progress, when set,
// hears of every epoch. Once pause closes, a local retraining stops at the
// end of its epoch, its state kept for a resume, which goes on from it
// (resume, when set): it returns a *pausedError then.
func (s *Search) retrain(ctx context.Context, rank int, t rundir.Trial, progress func(runtime.EpochRecord), pause <-chan struct{}, resume *runtime.TrainState) (rundir.FinalResult, error) {
	f := rundir.FinalResult{Rank: rank, Trial: t.ID, Arch: t.Arch, Params: t.Params, MACs: t.MACs, LatencyMs: t.LatencyMs,
		SearchValAccuracy: cmp.Or(t.RewardAccuracy, t.ValAccuracy)} // what ranked it, when the reward reads other epochs
	g, err := s.method.genotype(t.Candidate)
	if err != nil {
		return f, err
	}
	net, err := g.Build(s.data.Input, len(s.data.Classes))
	if err != nil {
		return f, err
	}
	cfg := s.finalConfig(t)
	cfg.Progress = progress
	if b, err := os.ReadFile(s.dir.ModelPath(t.ID)); err == nil {
		if cfg.Init, err = onnxgen.Weights(b, net); err != nil {
			return f, fmt.Errorf("search weights of trial %d: %w", t.ID, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return f, err
	} else {
		f.Reason = freshWeights
	}
	record, _ := json.Marshal(cfg.Record()) // strings and numbers always marshal
	cfg.Pause, cfg.Resume = pause, resume
	start := time.Now()
	fit, err := Fit(ctx, s.exec, Job{Trial: t.ID, Genotype: g, Config: cfg, Full: true}, map[onnxgen.MetaKey]string{
		onnxgen.MetaRun: s.cfg.Name, onnxgen.MetaTrial: strconv.Itoa(t.ID), onnxgen.MetaRank: strconv.Itoa(rank)})
	if errors.Is(err, runtime.ErrPaused) && fit != nil && fit.Result.State != nil {
		return f, s.savePaused(rank, t, string(record), fit.Result.State)
	}
	if err != nil {
		return f, fmt.Errorf("final training of trial %d: %w", t.ID, err)
	}
	res := fit.Result
	f.Seconds, f.Worker = time.Since(start).Seconds(), fit.Worker
	if cfg.Resume != nil {
		f.Seconds += cfg.Resume.Seconds // before the stop that paused it
	}
	f.Status, f.ValAccuracy, f.Epochs, f.AtChance = rundir.StatusOf(res.Status), res.ValAccuracy, res.Epochs, res.AtChance
	if best, ok := res.Best(); ok {
		f.ValLoss = &best.ValLoss
	}
	if res.Reason != "" {
		f.Reason = strings.TrimPrefix(f.Reason+"; "+res.Reason, "; ")
	}
	if fit.Model == nil {
		return f, nil
	}
	f.TestAccuracy, f.TestByClass = fit.Test.Accuracy, rundir.ByClass(s.data.Classes, fit.Test.Confusion)
	f.Model = rundir.WinnerName(rank)
	if err := s.dir.WriteFile(f.Model, fit.Model); err != nil {
		// Not recorded without its model, so a resume retrains it: the
		// model is kept elsewhere meanwhile (a full disk, say).
		name := fmt.Sprintf("%s-rank-%02d.onnx", s.cfg.Name, rank)
		if where, rerr := rundir.Rescue(name, fit.Model); rerr == nil {
			return f, fmt.Errorf("%w; final #%d (val %.4f, test %.4f) is saved in %s instead, and a resume trains it again", err, rank, f.ValAccuracy, f.TestAccuracy, where)
		}
		return f, err
	}
	if s.cfg.Final.Int8 {
		// Before the result is recorded: a resumed run retrains a winner
		// whose int8 model is missing.
		acc, ok, err := s.quantizeWinner(ctx, rank, fit.Model)
		switch {
		case err == nil && ok:
			f.Int8Model, f.Int8TestAccuracy = Int8WinnerName(rank), &acc
		case err == nil:
			f.Reason = strings.TrimPrefix(f.Reason+"; final.int8: no layer to run in int8, float32 only", "; ")
		}
		return f, err
	}
	return f, nil
}

// int8Here refuses, before any trial, a final phase that quantizes its
// models (final.int8) with an executor that keeps no training images in
// this process to calibrate them on: found at the final phase, every trial
// would have run first. The local executor and a broker's (cluster's,
// which loads the images here to test on) both keep them.
func (s *Search) int8Here() error {
	if _, ok := s.exec.(calibrationImages); ok || !s.cfg.Trains() || s.cfg.Final.Skip || !s.cfg.Final.Int8 {
		return nil
	}
	return errors.New("final.int8: this search's executor keeps no training images in this process to calibrate the int8 models on; " +
		"search with final.int8 false and quantize the winners afterwards with nasctl export --int8")
}

// calibrationImages is an executor that holds the training images in this
// process (LocalExecutor), on which final.int8 calibrates.
type calibrationImages interface {
	// CalibrationImages returns the first n images of the training split
	// (NCHW pixels; fewer when it has fewer) and how many they are.
	CalibrationImages(n int) ([]float32, int)
}

// CalibrationImages implements calibrationImages: the images that nasctl
// export --int8 --calibration takes from the same folder and split.
func (e *LocalExecutor) CalibrationImages(n int) ([]float32, int) {
	idx := e.full.Indices[:min(n, len(e.full.Indices))]
	size := e.input.Channels * e.input.Height * e.input.Width
	pixels := make([]float32, 0, len(idx)*size)
	for _, i := range idx {
		pixels = append(pixels, e.d.Pixels[i*size:(i+1)*size]...)
	}
	return pixels, len(idx)
}

// finalCalibrationImages is the number of training images that calibrate
// final.int8's quantization, nasctl export --int8's default.
const finalCalibrationImages = 200

// Int8WinnerName is the path of a winner's int8 model, relative to the run.
func Int8WinnerName(rank int) string {
	return filepath.Join(rundir.DirWinners, "int8", filepath.Base(rundir.WinnerName(rank)))
}

// quantizeWinner writes the int8 model of a winner (final.int8), its test
// accuracy measured, written into its metadata and returned; false for a
// model with no layer to quantize, which is left in float32.
func (s *Search) quantizeWinner(ctx context.Context, rank int, model []byte) (float64, bool, error) {
	pixels, n := s.exec.(calibrationImages).CalibrationImages(finalCalibrationImages)
	in := s.data.Input
	run := runtime.CalibrationRunner(ctx, pixels, [3]int{in.Channels, in.Height, in.Width}, runtime.SessionOptions{IntraOpThreads: s.cfg.Threads})
	q, err := quantize.Model(model, run, quantize.Options{Images: n,
		// The folder's name, not its path on this machine: the model
		// goes to devices, and the hash says which images they were.
		Data: fmt.Sprintf("%s (%s), the first %d training images", filepath.Base(s.cfg.Data), s.data.Hash, n)})
	if errors.Is(err, quantize.ErrNothingToQuantize) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("final.int8, rank %d: %w", rank, err)
	}
	ev, err := s.exec.Test(ctx, q)
	if err != nil {
		return 0, false, fmt.Errorf("final.int8, rank %d: testing: %w", rank, err)
	}
	if q, err = quantize.SetMetadata(q, onnxgen.MetaTestAccuracy, strconv.FormatFloat(ev.Accuracy, 'f', 6, 64)); err != nil {
		return 0, false, err
	}
	name := Int8WinnerName(rank)
	if err := os.MkdirAll(filepath.Join(s.dir.Path, filepath.Dir(name)), 0o755); err != nil {
		return 0, false, err
	}
	return ev.Accuracy, true, s.dir.WriteFile(name, q)
}
