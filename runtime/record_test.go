package runtime

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/onnxgen"
)

// A TrainRecord gives the settings in effect, defaults filled in, in the
// words of the flags and the search config.
func TestTrainRecord(t *testing.T) {
	def, _ := Recipe("default")
	study, _ := Recipe("study")
	def.Augment, def.Seed, def.Epochs = AugmentFlips, 9, 30
	retrain := study
	retrain.Init = [][]float32{{1}}
	for _, tc := range []struct {
		name string
		cfg  TrainConfig
		want TrainRecord
	}{
		{"default", def, TrainRecord{Epochs: 30, BatchSize: 128, LR: 1e-3, Optimizer: "adam(beta1 0.5, beta2 0.999, eps 1e-07)",
			Schedule: "constant; up to 5 restarts at chance, lr x0.4", Patience: 6, Monitor: "val_accuracy",
			Weights: "he", Centre: true, Augment: "flips", Seed: 9}},
		{"study", study, TrainRecord{Epochs: 15, BatchSize: 128, LR: 1e-3, Optimizer: "adam(beta1 0.5, beta2 0.999, eps 1e-07)",
			Schedule: "x0.2 every 5 epochs; up to 5 restarts at chance, lr x0.4", Patience: 6, Monitor: "val_accuracy",
			Weights: "glorot", Augment: "none"}},
		{"retrain", retrain, TrainRecord{Epochs: 15, BatchSize: 128, LR: 1e-3, Optimizer: "adam(beta1 0.5, beta2 0.999, eps 1e-07)",
			Schedule: "x0.2 every 5 epochs; up to 5 restarts at chance, lr x0.4", Patience: 6, Monitor: "val_accuracy",
			Weights: "given", Augment: "none"}},
		{"sgd", TrainConfig{BatchSize: 32, LR: 0.05, Optimizer: onnxgen.SGD{Momentum: 0.9, Nesterov: true}, Patience: -1,
			Monitor: MonitorValLoss, Schedule: LRSchedule{Constant: true, GiveUpAfter: 2}},
			TrainRecord{Epochs: 15, BatchSize: 32, LR: 0.05, Optimizer: "sgd(momentum 0.9, nesterov)", Schedule: "constant",
				Patience: -1, Monitor: "val_loss", Weights: "glorot", Augment: "none", GiveUpAfter: 2}},
		{"no restarts", TrainConfig{Schedule: LRSchedule{MaxRestarts: -1, DecayEvery: 3, DecayFactor: 0.5}},
			TrainRecord{Epochs: 15, BatchSize: 128, LR: 1e-3, Optimizer: "adam(beta1 0.5, beta2 0.999, eps 1e-07)",
				Schedule: "x0.5 every 3 epochs; no restarts", Patience: 6, Monitor: "val_accuracy", Weights: "glorot", Augment: "none"}},
	} {
		if got := tc.cfg.Record(); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// A seed goes to JSON as a decimal string, whole: read as a JSON number,
// as JavaScript and jq read one, 14142573438532588651 would become
// 14142573438532590000. Files written before, which hold numbers, still
// read.
func TestSeedJSON(t *testing.T) {
	const big = Seed(14142573438532588651)
	b, err := json.Marshal(TrainRecord{Seed: big})
	if err != nil || !strings.Contains(string(b), `"seed":"14142573438532588651"`) {
		t.Fatalf("written: %s, %v", b, err)
	}
	var back TrainRecord
	if err := json.Unmarshal(b, &back); err != nil || back.Seed != big {
		t.Errorf("read back: %d, %v", back.Seed, err)
	}
	for text, want := range map[string]Seed{`14142573438532588651`: big, `"0"`: 0, `7`: 7, `"18446744073709551615"`: math.MaxUint64} {
		var s Seed
		if err := json.Unmarshal([]byte(text), &s); err != nil || s != want {
			t.Errorf("%s read as %d (%v), want %d", text, s, err, want)
		}
	}
	for _, bad := range []string{`-1`, `"x"`, `1.5`, `"18446744073709551616"`, `true`} {
		var s Seed
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s was read, as %d", bad, s)
		}
	}
	if s := big; json.Unmarshal([]byte(`null`), &s) != nil || s != big {
		t.Errorf("null changed the seed to %d", s)
	}
}
