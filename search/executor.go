package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
)

// Job is one evaluation of a candidate.
type Job struct {
	Trial    int
	Genotype genotype.Genotype
	// Actions are the candidate's decisions (decision-space agents).
	Actions []int
	// Config configures the training; its Seed is the trial's.
	Config runtime.TrainConfig
	// Full trains on the whole training split (the final phase) instead of
	// the search's DataFraction of it.
	Full bool
}

// Outcome is what an executor measured of a candidate: a training's result,
// or a problem's score.
type Outcome struct {
	// Training is the result of training the candidate; nil when a problem
	// scored it.
	Training *runtime.Result
	// Score is the problem's score of the candidate (see problem.Problem).
	Score float64
	// Worker names the remote worker that answered; empty for an executor
	// in this process.
	Worker string
	// Stored: the answer is a result the broker had stored (from an earlier
	// session of the run, or of a run with the same name and settings), not
	// a training of this session.
	Stored bool
}

// Data describes what an executor trains on.
type Data struct {
	Input   genotype.Input
	Classes []string
	Hash    string // dataset content hash, for model metadata
	// Split is how the images were split (model metadata); empty for an
	// executor that trains nothing.
	Split onnxgen.SplitRecord
	Train int // images in the search's training set
	Full  int // images in the whole training split
	Val   int
	Test  int
	// ValMajority is the validation score of the best constant predictor
	// under the run's metric (runtime.Metric.Chance): the share of the
	// validation split's most frequent class, or 1/K of K classes for
	// balanced accuracy.
	ValMajority float64
}

// Executor evaluates candidates. The search calls Evaluate from up to
// Workers goroutines at once. Everything a Job needs travels in it, so that
// an executor may run jobs elsewhere.
type Executor interface {
	Data() Data
	// Evaluate trains job's candidate, or scores it; an error means the
	// executor failed, not the candidate (whose failure to train ends as a
	// training status).
	Evaluate(ctx context.Context, job Job) (*Outcome, error)
	// Test evaluates an exported model on the test split.
	Test(ctx context.Context, model []byte) (*runtime.Evaluation, error)
}

// elsewhere is an executor whose trials train on other processes
// (cluster.Executor's workers), which may or may not share this machine.
type elsewhere interface {
	TrainsElsewhere() bool
}

// Both executors implement Executor.
var (
	_ Executor = (*LocalExecutor)(nil)
	_ Executor = ProblemExecutor{}
)

// LocalExecutor trains in this process through package runtime, on a dataset
// held in memory.
type LocalExecutor struct {
	d                      *dataset.Dataset
	train, full, val, test runtime.Examples
	session                runtime.SessionOptions
	input                  genotype.Input
	split                  onnxgen.SplitRecord
	skipped                []*dataset.BadFile
	gaps                   []string
	metric                 runtime.Metric
}

// NewLocalExecutor loads cfg's dataset, splits it and keeps DataFraction of the
// training split (chosen with the split seed) for the search's trials.
func NewLocalExecutor(cfg Config, progress func(done, total int)) (*LocalExecutor, error) {
	var in genotype.Input
	if cfg.Input != "" {
		var err error
		if in, err = genotype.ParseImageSize(cfg.Input); err != nil {
			return nil, err
		}
	}
	plan, err := dataset.ParseSplitPlan(cfg.Split)
	if err != nil {
		return nil, err
	}
	var skipped []*dataset.BadFile
	d, split, err := dataset.LoadSplit(cfg.Data, dataset.LoadOptions{Height: in.Height, Width: in.Width, Channels: in.Channels, Progress: progress,
		SkipBad: cfg.SkipBad, Skipped: func(bad []*dataset.BadFile) { skipped = bad }}, plan, cfg.SplitSeed)
	if err != nil {
		return nil, err
	}
	if len(split.Train) == 0 || len(split.Val) == 0 {
		return nil, fmt.Errorf("%s: its %d images leave %d for training and %d for validation under the split plan %s; a classifier needs more images",
			cfg.Data, d.Len(), len(split.Train), len(split.Val), cfg.Split)
	}
	train := split.Train
	if cfg.DataFraction < 1 {
		train = append([]int(nil), train...)
		r := rand.New(rand.NewPCG(cfg.SplitSeed, 0x6672616374696f6e)) // "fraction"
		r.Shuffle(len(train), func(i, j int) { train[i], train[j] = train[j], train[i] })
		train = train[:max(1, int(float64(len(train))*cfg.DataFraction))]
	}
	dev, err := runtime.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	metric, err := cfg.Train.metric()
	if err != nil {
		return nil, err
	}
	sampling, err := cfg.Train.sampling()
	if err != nil {
		return nil, err
	}
	// The config's check knows the images' size only from an input it
	// gives; here it is the size read.
	if ps := cfg.augmentProblems(d.Height, d.Width); len(ps) > 0 {
		return nil, errors.New(ps[0])
	}
	return &LocalExecutor{d: d, metric: metric, train: examples(d, train), full: examples(d, split.Train), val: examples(d, split.Val), test: examples(d, split.Test),
		session: runtime.SessionOptions{Device: dev, IntraOpThreads: cfg.Threads},
		input:   genotype.Input{Height: d.Height, Width: d.Width, Channels: d.Channels}, split: onnxgen.SplitRecord{Plan: cfg.Split, Seed: cfg.SplitSeed},
		skipped: skipped, gaps: append(d.SplitWarnings(split, cmp.Or(cfg.Split, "metaqnn"), metric == runtime.MetricBalanced && sampling == runtime.SamplingBalanced), fractionGaps(d, split.Train, train, cfg.DataFraction)...)}, nil
}

// fractionGaps names the classes that the training split full has and the
// trials' share of it, train, lacks: the trials could not learn them.
func fractionGaps(d *dataset.Dataset, full, train []int, fraction float64) []string {
	if len(train) == len(full) || len(full) == 0 {
		return nil
	}
	all, some := d.ClassCounts(full), d.ClassCounts(train)
	var gaps []string
	for c, name := range d.Classes {
		if all[c] > 0 && some[c] == 0 {
			gaps = append(gaps, fmt.Sprintf("class %q has no image among the %d the trials train on (data_fraction %g of %d training images): the trials cannot learn it; add images, or raise --data-fraction",
				name, len(train), fraction, len(full)))
		}
	}
	return gaps
}

// Gaps names the classes the split leaves out of a set (dataset.Gaps), or
// the trials' share of the training images, and the images that are copies
// of one in another class or set (dataset.Dataset.CopyWarnings).
func (e *LocalExecutor) Gaps() []string { return e.gaps }

// Skipped returns the files left out under Config.SkipBad.
func (e *LocalExecutor) Skipped() []*dataset.BadFile { return e.skipped }

// Data implements Executor.
func (e *LocalExecutor) Data() Data {
	return Data{Input: e.input, Classes: e.d.Classes, Hash: e.d.Hash, Split: e.split, Train: e.train.Len(), Full: e.full.Len(), Val: e.val.Len(), Test: e.test.Len(),
		ValMajority: e.metric.Chance(e.val, len(e.d.Classes))}
}

// Dataset returns the images the executor trains on (not a copy), for an
// executor that sends them elsewhere.
func (e *LocalExecutor) Dataset() *dataset.Dataset { return e.d }

// Evaluate implements Executor: it trains the candidate.
func (e *LocalExecutor) Evaluate(ctx context.Context, job Job) (*Outcome, error) {
	net, err := job.Genotype.Build(e.input, len(e.d.Classes))
	if err != nil {
		return nil, fmt.Errorf("trial %d: %w", job.Trial, err)
	}
	train := e.train
	if job.Full {
		train = e.full
	}
	res, err := runtime.Train(ctx, net, train, e.val, job.Config)
	if res == nil {
		return nil, err
	}
	return &Outcome{Training: res}, err // an interrupted training keeps its best epoch
}

// Test implements Executor.
func (e *LocalExecutor) Test(ctx context.Context, model []byte) (*runtime.Evaluation, error) {
	m, err := runtime.NewModel(model, e.session)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.Evaluate(ctx, e.test, 256)
}

// ProblemExecutor scores candidates with a problem (a formula or a table)
// instead of training them.
type ProblemExecutor struct{ Problem *problem.Problem }

// Data implements Executor: nothing is trained.
func (ProblemExecutor) Data() Data { return Data{} }

// Evaluate implements Executor: it scores the candidate's actions.
func (e ProblemExecutor) Evaluate(_ context.Context, job Job) (*Outcome, error) {
	s, err := e.Problem.Score(job.Actions)
	if err != nil {
		return nil, fmt.Errorf("trial %d: %w", job.Trial, err)
	}
	return &Outcome{Score: s}, nil
}

// Test implements Executor: a problem has no test split.
func (e ProblemExecutor) Test(context.Context, []byte) (*runtime.Evaluation, error) {
	return nil, fmt.Errorf("the %s problem scores architectures from a table; it has no test images", e.Problem.Name)
}

// examples is the view of d's images idx.
func examples(d *dataset.Dataset, idx []int) runtime.Examples {
	return runtime.Examples{Pixels: d.Pixels, Labels: d.Labels, Indices: idx}
}
