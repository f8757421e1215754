package search

import (
	"strings"
	"testing"

	"github.com/nasctl/nasctl/controller"
)

// A run's description says how much the agent replays: Baker et al.'s 128
// unless told, and "no replay" for a negative count, not "replay -1"; with
// target mean it says what a value is, and no step size or replay.
func TestDescribeReplay(t *testing.T) {
	for replay, want := range map[int]string{0: ", replay 128)", 16: ", replay 16)", -1: ", no replay)"} {
		cfg, err := Preset("cpu")
		if err != nil {
			t.Fatal(err)
		}
		cfg.MetaQNN.QLearning.Target = controller.TargetReturn
		cfg.MetaQNN.QLearning.Replay = replay
		got := metaqnnMethod{cfg: cfg.WithDefaults()}.describe()
		if !strings.Contains(got, want) {
			t.Errorf("replay %d: %q, want it to contain %q", replay, got, want)
		}
	}
	cfg, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetaQNN.QLearning.Target = controller.TargetMean
	got := metaqnnMethod{cfg: cfg.WithDefaults()}.describe()
	want := "MetaQNN Q-learning (every step worth the mean reward of the networks that took it, a greedy draw that repeats replaced by the next best untried network (up to 100 checked), repeats drawn again up to 20 times, no replay)"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "alpha") {
		t.Errorf("target mean: %q, want it to start %q", got, want)
	}
}
