package runtime

import (
	"errors"
	"fmt"
	"slices"
)

// ErrPaused is Train's error when TrainConfig.Pause ended it at the end of
// an epoch: its Result's State goes on with TrainConfig.Resume.
var ErrPaused = errors.New("training paused at the end of an epoch")

// TrainState is where a paused training stands: everything its next epoch
// reads, so that a training resumed from it goes on as if never paused.
// Its fields are exported for encoding (encoding/gob) only.
type TrainState struct {
	Attempt int // the attempt in flight (restarts so far)
	Epoch   int // its epochs finished
	// Since, BestAcc and Best are the attempt's early-stopping state: the
	// epochs since the best, the best raw validation accuracy, the best
	// epoch's record.
	Since   int
	BestAcc float64
	Best    EpochRecord
	LR      float64 // the learning rate now
	Order   []int   // the training images in their last shuffle's order
	// The random sources' states: the weights and shuffles, the dropout
	// masks, the augmentation (Flips: its flips and shifts).
	Shuffle, Dropout, Flips []byte
	Step                    float32     // optimizer steps taken
	Params                  [][]float32 // the weights being trained
	Slots                   [][]float32 // the optimizer's state, param-major as the graph's
	Average                 [][]float32 // the moving average (TrainConfig.Average); nil when off
	// What the Result held: the epochs so far, and the attempt's best.
	Epochs      []EpochRecord
	ValAccuracy float64
	BestEpoch   int
	Weights     [][]float32
	StepSeconds float64
	StepImages  int
	Seconds     float64 // of training before the pause, all pauses included
}

// pausedAt is where attempt's loop stands at a pause.
type pausedAt struct {
	attempt, epoch, since int
	bestAcc               float64
	best                  EpochRecord
}

// paused reports whether cfg.Pause is closed.
func (t *trainer) paused() bool {
	select {
	case <-t.cfg.Pause:
		return true
	default:
		return false
	}
}

// snapshot copies where the training stands.
func (t *trainer) snapshot(st *runState, res *Result, at pausedAt) (*TrainState, error) {
	s := &TrainState{Attempt: at.attempt, Epoch: at.epoch, Since: at.since, BestAcc: at.bestAcc, Best: at.best, LR: st.lr,
		Order: slices.Clone(st.order), Step: t.step.Data()[0], Params: copies(t.params[t.cur]), Slots: copies(t.slots[t.cur]),
		Epochs: slices.Clone(res.Epochs), ValAccuracy: res.ValAccuracy, BestEpoch: res.BestEpoch, Weights: res.Weights,
		StepSeconds: st.stepSeconds, StepImages: st.stepImages}
	if t.avg != nil {
		s.Average = copies(t.avg)
	}
	var err error
	for _, r := range []struct {
		src *[]byte
		pcg interface{ MarshalBinary() ([]byte, error) }
	}{{&s.Shuffle, st.src}, {&s.Dropout, t.dropSrc}, {&s.Flips, t.flipSrc}} {
		if *r.src, err = r.pcg.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// restore sets the trainer, st and res to where s stands, after checking
// that s is a state of this network and training split.
func (t *trainer) restore(s *TrainState, st *runState, res *Result, train Examples) error {
	if err := t.fits(s, train); err != nil {
		return fmt.Errorf("resuming a paused training: %w", err)
	}
	t.cur = 0
	for i, p := range t.params[0] {
		copy(p.Data(), s.Params[i])
	}
	for i, x := range t.slots[0] {
		copy(x.Data(), s.Slots[i])
	}
	for i, a := range t.avg {
		copy(a.Data(), s.Average[i])
	}
	t.step.Data()[0] = s.Step
	for _, r := range []struct {
		pcg interface{ UnmarshalBinary([]byte) error }
		b   []byte
	}{{st.src, s.Shuffle}, {t.dropSrc, s.Dropout}, {t.flipSrc, s.Flips}} {
		if err := r.pcg.UnmarshalBinary(r.b); err != nil {
			return fmt.Errorf("resuming a paused training: %w", err)
		}
	}
	st.lr, st.order = s.LR, slices.Clone(s.Order)
	st.stepSeconds, st.stepImages = s.StepSeconds, s.StepImages
	res.Epochs, res.ValAccuracy, res.BestEpoch, res.Weights = slices.Clone(s.Epochs), s.ValAccuracy, s.BestEpoch, s.Weights
	return nil
}

// fits checks that s has this trainer's tensors and train's images.
func (t *trainer) fits(s *TrainState, train Examples) error {
	if len(s.Order) != train.Len() {
		return fmt.Errorf("the state shuffles %d training images, these are %d", len(s.Order), train.Len())
	}
	in := map[int]bool{}
	for _, i := range train.Indices {
		in[i] = true
	}
	for _, i := range s.Order {
		if !in[i] {
			return fmt.Errorf("the state shuffles image %d, which is not among these training images", i)
		}
	}
	if (s.Average != nil) != (t.avg != nil) {
		return errors.New("the state's weights are averaged and these settings' are not, or the reverse")
	}
	sets := []struct {
		what     string
		got      [][]float32
		want     []*Tensor[float32]
		optional bool // nil: none yet
	}{{"weights", s.Params, t.params[0], false}, {"optimizer state", s.Slots, t.slots[0], false}, {"averaged weights", s.Average, t.avg, false},
		{"best weights", s.Weights, t.params[0], true}} // none before an epoch is kept
	for _, set := range sets {
		if set.optional && set.got == nil {
			continue
		}
		if len(set.got) != len(set.want) {
			return fmt.Errorf("the state has %d tensors of %s, this network %d", len(set.got), set.what, len(set.want))
		}
		for i, x := range set.want {
			if len(set.got[i]) != len(x.Data()) {
				return fmt.Errorf("the state's %s tensor %d has %d values, this network's %d", set.what, i, len(set.got[i]), len(x.Data()))
			}
		}
	}
	return nil
}

// copies returns copies of xs' values.
func copies(xs []*Tensor[float32]) [][]float32 {
	out := make([][]float32, len(xs))
	for i, x := range xs {
		out[i] = slices.Clone(x.Data())
	}
	return out
}
