package search

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// final retrains the top K architectures for EpochFactor times the epochs on
// the whole training split, starting from their search weights, evaluates them
// on the test split and exports them to winners/. Up to Workers retrain at
// once; each result is recorded as it finishes, and results already recorded
// (a resumed run) are kept.
func (s *Search) final(ctx context.Context, stop <-chan struct{}) ([]FinalResult, error) {
	done, err := s.store.Finals()
	if err != nil {
		return nil, err
	}
	byTrial := map[int]FinalResult{}
	for _, f := range done {
		byTrial[f.Trial] = f
	}
	top := s.ranked()
	if len(top) > s.cfg.Final.TopK {
		top = top[:s.cfg.Final.TopK]
	}
	type result struct {
		f   FinalResult
		err error
	}
	results := make(chan result, len(top))
	workCtx, cancelWork := context.WithCancel(ctx)
	busy := 0
	defer func() {
		cancelWork()
		for ; busy > 0; busy-- {
			<-results
		}
	}()
	var out []FinalResult
	var todo []int // ranks (0-based) still to retrain
	for rank, t := range top {
		if f, ok := byTrial[t.ID]; ok {
			f.Rank = rank + 1
			out = append(out, f)
		} else {
			todo = append(todo, rank)
		}
	}
	stopping := false
	for len(todo) > 0 || busy > 0 {
		for len(todo) > 0 && busy < s.cfg.Workers && ctx.Err() == nil && !stopping {
			rank := todo[0]
			todo = todo[1:]
			busy++
			go func() {
				f, err := s.retrain(workCtx, rank+1, top[rank])
				results <- result{f, err}
			}()
		}
		if busy == 0 {
			break
		}
		select {
		case r := <-results:
			busy--
			if r.err != nil {
				return nil, r.err
			}
			if err := s.store.AppendFinal(r.f); err != nil {
				return nil, err
			}
			out = append(out, r.f)
			fc := r.f
			s.emit(Event{Kind: "final", Final: &fc, Message: fmt.Sprintf("final %d of %d", len(out), len(top))})
		case <-stop:
			stop, stopping = nil, true // start no more; finish those in flight
			s.emit(Event{Kind: "stopping", Message: fmt.Sprintf("finishing %d retraining(s) in flight; interrupt again to abandon them", busy)})
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(out) < len(top) {
		return nil, ErrStopped
	}
	return out, nil
}

// retrain runs the final phase for one architecture.
func (s *Search) retrain(ctx context.Context, rank int, t Trial) (FinalResult, error) {
	f := FinalResult{Rank: rank, Trial: t.ID, Arch: t.Arch, Params: t.Params, MACs: t.MACs, SearchValAccuracy: t.ValAccuracy, LatencyMs: t.LatencyMs}
	arch, err := genotype.Parse(t.Arch)
	if err != nil {
		return f, err
	}
	net, err := arch.Build(s.data.Input, len(s.data.Classes))
	if err != nil {
		return f, err
	}
	cfg := s.cfg.TrainConfig()
	cfg.Seed = t.Seed
	cfg.Epochs = max(1, int(math.Round(float64(cfg.Epochs)*s.cfg.Final.EpochFactor)))
	if s.cfg.Final.LR > 0 {
		cfg.LR = s.cfg.Final.LR
	}
	if s.cfg.Final.Patience > 0 {
		cfg.Patience = s.cfg.Final.Patience
	}
	if b, err := os.ReadFile(s.store.ModelPath(t.ID)); err == nil {
		if cfg.Init, err = onnxgen.Weights(b, net); err != nil {
			return f, fmt.Errorf("search weights of trial %d: %w", t.ID, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return f, err
	} else {
		f.Reason = "search weights missing; trained from fresh weights"
	}
	start := time.Now()
	res, err := s.exec.Train(ctx, Job{Trial: t.ID, Arch: arch, Config: cfg, Full: true})
	if err != nil {
		return f, fmt.Errorf("final training of trial %d: %w", t.ID, err)
	}
	f.Seconds = time.Since(start).Seconds()
	f.Status, f.ValAccuracy, f.Epochs = string(res.Status), res.ValAccuracy, res.Epochs
	if res.Reason != "" {
		f.Reason = res.Reason
	}
	if res.Status != "ok" {
		return f, nil
	}
	tt := t
	tt.ValAccuracy = res.ValAccuracy
	model, err := s.export(tt, res.Weights, nil)
	if err != nil {
		return f, err
	}
	ev, err := s.exec.Test(ctx, model)
	if err != nil {
		return f, err
	}
	f.TestAccuracy = ev.Accuracy
	model, err = s.export(tt, res.Weights, map[onnxgen.MetaKey]string{
		onnxgen.MetaRank:         strconv.Itoa(rank),
		onnxgen.MetaTestAccuracy: strconv.FormatFloat(ev.Accuracy, 'f', 6, 64),
	})
	if err != nil {
		return f, err
	}
	f.Model = fmt.Sprintf("%s/rank-%02d.onnx", dirWinners, rank)
	if err := s.store.writeFile(f.Model, model); err != nil {
		return f, err
	}
	return f, nil
}
