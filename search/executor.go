package search

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
)

// Job is one training of an architecture.
type Job struct {
	Trial  int
	Arch   genotype.Arch
	Config runtime.TrainConfig // its Seed is the trial's
	// Full trains on the whole training split (the final phase) instead of
	// the search's DataFraction of it.
	Full bool
}

// Data describes what an executor trains on.
type Data struct {
	Input   genotype.Input
	Classes []string
	Hash    string // dataset content hash, for model metadata
	Train   int    // images in the search's training set
	Full    int    // images in the whole training split
	Val     int
	Test    int
	// ValMajority is the share of the validation split's most frequent class:
	// the accuracy of a constant predictor.
	ValMajority float64
}

// Executor trains architectures. The search calls Train from up to Workers
// goroutines at once. Everything a Job needs travels in it, so that an
// executor may run jobs elsewhere.
type Executor interface {
	Data() Data
	// Train trains job's architecture; an error means the executor failed,
	// not the architecture (which ends as a Result status).
	Train(ctx context.Context, job Job) (*runtime.Result, error)
	// Test evaluates an exported model on the test split.
	Test(ctx context.Context, model []byte) (*runtime.Evaluation, error)
}

// LocalExecutor trains in this process through package runtime, on a dataset
// held in memory.
type LocalExecutor struct {
	d                      *dataset.Dataset
	train, full, val, test runtime.Examples
	session                runtime.SessionOptions
	input                  genotype.Input
}

// NewLocalExecutor loads cfg's dataset, splits it and keeps DataFraction of the
// training split (chosen with the split seed) for the search's trials.
func NewLocalExecutor(cfg Config, progress func(done, total int)) (*LocalExecutor, error) {
	var in genotype.Input
	if cfg.Input != "" {
		var err error
		if in, err = genotype.ParseInput(cfg.Input); err != nil {
			return nil, err
		}
	}
	d, _, err := dataset.Load(cfg.Data, dataset.LoadOptions{Height: in.Height, Width: in.Width, Channels: in.Channels, Progress: progress})
	if err != nil {
		return nil, err
	}
	plan, err := dataset.ParseSplitPlan(cfg.Split)
	if err != nil {
		return nil, err
	}
	split, err := d.Split(plan, cfg.SplitSeed)
	if err != nil {
		return nil, err
	}
	train := split.Train
	if cfg.DataFraction < 1 {
		train = append([]int(nil), train...)
		r := rand.New(rand.NewPCG(cfg.SplitSeed, 0x6672616374696f6e)) // "fraction"
		r.Shuffle(len(train), func(i, j int) { train[i], train[j] = train[j], train[i] })
		train = train[:max(1, int(float64(len(train))*cfg.DataFraction))]
	}
	ex := func(idx []int) runtime.Examples {
		return runtime.Examples{Pixels: d.Pixels, Labels: d.Labels, Indices: idx}
	}
	dev, err := runtime.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	return &LocalExecutor{d: d, train: ex(train), full: ex(split.Train), val: ex(split.Val), test: ex(split.Test),
		session: runtime.SessionOptions{Device: dev, IntraOpThreads: cfg.Threads},
		input:   genotype.Input{Height: d.Height, Width: d.Width, Channels: d.Channels}}, nil
}

// Data implements Executor.
func (e *LocalExecutor) Data() Data {
	return Data{Input: e.input, Classes: e.d.Classes, Hash: e.d.Hash, Train: e.train.Len(), Full: e.full.Len(), Val: e.val.Len(), Test: e.test.Len(),
		ValMajority: e.val.MajorityShare(len(e.d.Classes))}
}

// Train implements Executor.
func (e *LocalExecutor) Train(ctx context.Context, job Job) (*runtime.Result, error) {
	net, err := job.Arch.Build(e.input, len(e.d.Classes))
	if err != nil {
		return nil, fmt.Errorf("trial %d: %w", job.Trial, err)
	}
	train := e.train
	if job.Full {
		train = e.full
	}
	return runtime.Train(ctx, net, train, e.val, job.Config)
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
