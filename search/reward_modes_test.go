package search

import (
	"math"
	"testing"

	"github.com/nasctl/nasctl/runtime"
)

// The study's reward (the best validation accuracy of the last 5 epochs,
// cubed) reads only the last attempt of a training that restarted: its
// first attempt reached 0.95 and 0.9 before it was restarted, its second
// 0.5, 0.6 and 0.55 (kept epoch 0.55). The last 5 epochs recorded are all
// five, but the accuracy is the second attempt's best, 0.6, and the reward
// 0.6^3 = 0.216. A result without epoch records keeps its own accuracy
// (0.7, cubed 0.343), and an unfinished training is worth 0.
func TestRewardLastEpochsOfTheLastAttempt(t *testing.T) {
	study := RewardSettings{LastEpochs: 5, Exponent: 3}.withDefaults()
	res := &runtime.Result{Status: runtime.StatusOK, ValAccuracy: 0.55, Restarts: 1, Epochs: []runtime.EpochRecord{
		{Attempt: 0, Epoch: 1, ValAccuracy: 0.95}, {Attempt: 0, Epoch: 2, ValAccuracy: 0.9},
		{Attempt: 1, Epoch: 1, ValAccuracy: 0.5}, {Attempt: 1, Epoch: 2, ValAccuracy: 0.6}, {Attempt: 1, Epoch: 3, ValAccuracy: 0.55}}}
	if got := study.rewardAccuracy(res); got != 0.6 {
		t.Errorf("restarted training: accuracy %v, want 0.6 (the last attempt's best)", got)
	}
	if got := study.accuracy(res); math.Abs(got-0.216) > 1e-12 {
		t.Errorf("restarted training: reward accuracy %v, want 0.6^3 = 0.216", got)
	}
	bare := &runtime.Result{Status: runtime.StatusOK, ValAccuracy: 0.7}
	if got := study.accuracy(bare); math.Abs(got-0.343) > 1e-12 {
		t.Errorf("no epoch records: reward accuracy %v, want 0.7^3 = 0.343", got)
	}
	failed := &runtime.Result{Status: runtime.StatusDiverged, ValAccuracy: 0.7, Epochs: res.Epochs}
	if got := study.accuracy(failed); got != 0 {
		t.Errorf("diverged training: reward accuracy %v, want 0", got)
	}
	// The default exponent is 1: the accuracy itself.
	if got := (RewardSettings{LastEpochs: 5}).withDefaults().accuracy(res); got != 0.6 {
		t.Errorf("default exponent: %v, want 0.6", got)
	}
}

// Only the constraint reward refuses: limits given with another reward
// (MnasNet's, which weighs the latency instead, or plain accuracy) refuse
// nothing.
func TestRewardOnlyConstraintRefuses(t *testing.T) {
	for _, mode := range []string{RewardAccuracy, RewardMnasNet} {
		r := RewardSettings{Mode: mode, TargetMs: 2, MaxParams: 1000, MaxLatencyMs: 0.5}.withDefaults()
		if got := r.refuse(5000, 3); got != "" {
			t.Errorf("%s reward: refused %q, want nothing refused", mode, got)
		}
	}
	c := RewardSettings{Mode: RewardConstraint, MaxParams: 1000, MaxLatencyMs: 0.5}.withDefaults()
	if got := c.refuse(5000, 0.1); got == "" {
		t.Error("constraint reward: 5000 parameters over 1000 accepted")
	}
}
