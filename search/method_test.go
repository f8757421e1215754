package search

import (
	"strings"
	"testing"
)

// A run's description says how much the agent replays: Baker et al.'s 128
// unless told, and "no replay" for a negative count, not "replay -1".
func TestDescribeReplay(t *testing.T) {
	for replay, want := range map[int]string{0: ", replay 128)", 16: ", replay 16)", -1: ", no replay)"} {
		cfg, err := Preset("cpu")
		if err != nil {
			t.Fatal(err)
		}
		cfg.MetaQNN.QLearning.Replay = replay
		got := metaqnnMethod{cfg: cfg.WithDefaults()}.describe()
		if !strings.Contains(got, want) {
			t.Errorf("replay %d: %q, want it to contain %q", replay, got, want)
		}
	}
}
