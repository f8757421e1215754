package runtime

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// A training paused at the end of an epoch and resumed from its state (sent
// through encoding/gob, as a search saves it) goes on as if never paused:
// the same epochs and weights as the training run straight through, with
// the dropout masks, flips, decaying rate and averaged weights. A pause
// during the last epoch ends nothing early, and a state refuses another
// network.
func TestTrainPauseResume(t *testing.T) {
	initRuntime(t)
	net, train, val := tinyTask(t)
	flips, _ := ParseAugment("flips")
	for _, tc := range []struct {
		name   string
		cfg    TrainConfig
		pauses []int // after these epochs
	}{
		{"decay and flips", TrainConfig{Epochs: 7, BatchSize: 32, Seed: 7, Threads: 1, Augment: flips, Patience: -1,
			Schedule: LRSchedule{DecayEvery: 3, DecayFactor: 0.5, MaxRestarts: -1}}, []int{2, 5}},
		// Early stopping after epoch 4: the pauses come before it, the
		// second with an epoch since the best.
		{"averaged, early stopping", TrainConfig{Epochs: 7, BatchSize: 32, Seed: 9, Threads: 1, Average: 2, Patience: 3, Schedule: LRSchedule{Constant: true}},
			[]int{1, 2}},
		{"balanced sampling and metric", TrainConfig{Epochs: 5, BatchSize: 32, Seed: 11, Threads: 1, Patience: -1, Sampling: SamplingBalanced, Metric: MetricBalanced,
			Schedule: LRSchedule{Constant: true}}, []int{2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := Train(context.Background(), net, train, val, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got *Result
			var state *TrainState
			pauses := 0
			for _, at := range append(tc.pauses, 0) { // 0: to the end
				cfg := pausedAfter(tc.cfg, at)
				cfg.Resume = state
				res, err := Train(context.Background(), net, train, val, cfg)
				if at == 0 {
					if err != nil || res.State != nil {
						t.Fatalf("the last part: %v, state %v", err, res.State != nil)
					}
					got = res
					break
				}
				if !errors.Is(err, ErrPaused) || res.Status != StatusInterrupted || res.State == nil || res.State.Epoch != at || len(res.Epochs) != at {
					t.Fatalf("paused after epoch %d: %v, status %s, %d epochs, state %v", at, err, res.Status, len(res.Epochs), res.State != nil)
				}
				pauses++
				var b bytes.Buffer
				if err := gob.NewEncoder(&b).Encode(res.State); err != nil {
					t.Fatal(err)
				}
				state = new(TrainState)
				if err := gob.NewDecoder(&b).Decode(state); err != nil {
					t.Fatal(err)
				}
				if pauses == 1 {
					// As if the first part had taken long: its seconds, and
					// its steps', must carry to the end.
					state.Seconds += slowPart
					state.StepSeconds += slowPart
				}
			}
			if pauses != 2 || len(got.Epochs) != len(want.Epochs) {
				t.Fatalf("%d pauses, %d epochs; want 2 and %d", pauses, len(got.Epochs), len(want.Epochs))
			}
			for i, e := range got.Epochs {
				w := want.Epochs[i]
				e.Seconds, w.Seconds = 0, 0
				if e != w {
					t.Errorf("epoch %d: %+v, want %+v", i+1, e, w)
				}
			}
			if got.ValAccuracy != want.ValAccuracy || got.BestEpoch != want.BestEpoch || got.Status != want.Status || len(got.Weights) != len(want.Weights) {
				t.Errorf("result: val %v at epoch %d, %s; want val %v at epoch %d, %s", got.ValAccuracy, got.BestEpoch, got.Status, want.ValAccuracy, want.BestEpoch, want.Status)
			}
			for i := range want.Weights {
				if !slices.Equal(got.Weights[i], want.Weights[i]) {
					t.Errorf("weights %d differ", i)
				}
			}
			if got.Seconds < slowPart { // the paused parts' seconds count
				t.Errorf("%.3f s recorded for the paused training, want the first part's %g s and more", got.Seconds, slowPart)
			}
			// The throughput counts the first part's steps too: at most
			// every image of every epoch in slowPart seconds.
			if most := float64(len(got.Epochs)*train.Len()) / slowPart; !(got.ImagesPerSecond > 0) || got.ImagesPerSecond > most {
				t.Errorf("%.1f images per second recorded, want at most %.1f", got.ImagesPerSecond, most)
			}
		})
	}

	// A pause asked during the last epoch: the training ends as usual.
	cfg := TrainConfig{Epochs: 2, BatchSize: 32, Seed: 7, Threads: 1, Patience: -1, Schedule: LRSchedule{Constant: true}}
	pause := make(chan struct{})
	cfg.Pause = pause
	cfg.Progress = func(r EpochRecord) {
		if r.Epoch == 2 {
			close(pause)
		}
	}
	if res, err := Train(context.Background(), net, train, val, cfg); err != nil || res.State != nil || len(res.Epochs) != 2 {
		t.Errorf("paused in the last epoch: %v, %d epochs, state %v", err, len(res.Epochs), res.State != nil)
	}

	// A state of another network is refused.
	pause = make(chan struct{})
	cfg.Pause = pause
	cfg.Progress = func(r EpochRecord) {
		if r.Epoch == 1 {
			close(pause)
		}
	}
	paused, err := Train(context.Background(), net, train, val, cfg)
	if !errors.Is(err, ErrPaused) {
		t.Fatal(err)
	}
	other, err := genotype.MustParse("C(8,3,1) - P(2,2) - FC(8) - SM()").Build(genotype.Input{Height: 16, Width: 16, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pause, cfg.Progress, cfg.Resume = nil, nil, paused.State
	if _, err := Train(context.Background(), other, train, val, cfg); err == nil {
		t.Error("a paused state of another network was taken")
	}
	// A state of other training images: fewer, or one that is not among
	// these.
	short := *paused.State
	short.Order = short.Order[1:]
	alien := *paused.State
	alien.Order = slices.Clone(alien.Order)
	alien.Order[0] = -1
	for name, st := range map[string]*TrainState{"fewer images": &short, "another image": &alien} {
		cfg.Resume = st
		if _, err := Train(context.Background(), net, train, val, cfg); err == nil || !strings.Contains(err.Error(), "the state shuffles") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

// The attempt's best raw validation accuracy, which giving up and the
// StopBelow rule read, goes on from the state: a state that holds 1.5 (no
// accuracy reaches it) still holds it at the next pause.
func TestTrainPauseKeepsBestAccuracy(t *testing.T) {
	initRuntime(t)
	net, train, val := tinyTask(t)
	pauseAfter := func(cfg TrainConfig, epoch int) *TrainState {
		t.Helper()
		res, err := Train(context.Background(), net, train, val, pausedAfter(cfg, epoch))
		if !errors.Is(err, ErrPaused) || res.State == nil {
			t.Fatalf("pause after epoch %d: %v", epoch, err)
		}
		return res.State
	}
	cfg := TrainConfig{Epochs: 4, BatchSize: 32, Seed: 7, Threads: 1, Patience: -1, Schedule: LRSchedule{Constant: true}}
	st := pauseAfter(cfg, 1)
	st.BestAcc = 1.5
	cfg.Resume = st
	if got := pauseAfter(cfg, 2); got.BestAcc != 1.5 {
		t.Errorf("best raw accuracy %v after the resume, want the state's 1.5", got.BestAcc)
	}
}

// pausedAfter is cfg with a pause asked at the end of epoch (none for 0).
func pausedAfter(cfg TrainConfig, epoch int) TrainConfig {
	pause := make(chan struct{})
	cfg.Pause = pause
	cfg.Progress = func(r EpochRecord) {
		if r.Epoch == epoch {
			close(pause)
		}
	}
	return cfg
}

// slowPart is the seconds TestTrainPauseResume adds to a paused state.
const slowPart = 1000.0
