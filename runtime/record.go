package runtime

import (
	"fmt"
	"strconv"
)

// Seed is a 64-bit seed as JSON carries it: a decimal string, because
// JavaScript and jq read JSON numbers as float64, which keeps 53 bits, and
// a trial's seed needs all 64 (a dashboard showed 14142573438532590000 for
// 14142573438532588651). It reads a number too, as files written before
// hold it.
type Seed uint64

// MarshalJSON writes the seed as a decimal string.
func (s Seed) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatUint(uint64(s), 10)), nil
}

// UnmarshalJSON reads a decimal string or a number; null changes nothing,
// as for Go's own types.
func (s *Seed) UnmarshalJSON(b []byte) error {
	text := string(b)
	if text == "null" {
		return nil
	}
	if q, err := strconv.Unquote(text); err == nil {
		text = q
	}
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return fmt.Errorf("seed %s: want a whole number from 0 to 2^64-1", b)
	}
	*s = Seed(v)
	return nil
}

// TrainRecord is how a model was trained: the settings of a TrainConfig with
// its defaults filled in, in words a reader of an exported model's metadata
// (onnxgen.MetaTraining) or of nasctl train --json can act on without
// nasctl's source.
type TrainRecord struct {
	Epochs    int     `json:"epochs"` // the most of one attempt
	BatchSize int     `json:"batch_size"`
	LR        float64 `json:"lr"` // the initial learning rate
	Optimizer string  `json:"optimizer"`
	// Schedule is the learning-rate rule: "constant", or its decay and its
	// restarts at chance ("x0.2 every 5 epochs; up to 5 restarts at chance,
	// lr x0.4").
	Schedule string `json:"schedule"`
	// Patience is the epochs without improvement that stop the training;
	// negative: no early stopping.
	Patience int    `json:"patience"`
	Monitor  string `json:"monitor"` // what picks the best epoch
	// Metric is "balanced_accuracy" when validation accuracy was the mean
	// of the classes' recalls (TrainConfig.Metric); empty: accuracy.
	Metric string `json:"metric,omitempty"`
	// Sampling is "balanced" when every class was drawn equally often
	// (TrainConfig.Sampling); empty: every image once per epoch.
	Sampling string `json:"sampling,omitempty"`
	// Weights is where the starting weights came from: "glorot" or "he"
	// (drawn from Seed), or "given" (TrainConfig.Init: a retraining).
	Weights string `json:"weights"`
	Centre  bool   `json:"centre"`  // the first layer's biases centred on the data
	Augment string `json:"augment"` // how the training images were varied (Augment.String)
	Seed    Seed   `json:"seed"`
	// GiveUpAfter: a training still at chance after this many epochs
	// stopped; zero: never.
	GiveUpAfter int `json:"give_up_after,omitempty"`
	// AverageEpochs: the weights kept are a moving average of this time
	// constant in epochs (TrainConfig.Average); zero: the weights themselves.
	AverageEpochs float64 `json:"average_epochs,omitempty"`
}

// Record returns c's settings as a TrainRecord.
func (c TrainConfig) Record() TrainRecord {
	c = c.WithDefaults()
	weights := c.WeightInit.String()
	if c.Init != nil {
		weights = "given"
	}
	r := TrainRecord{
		Epochs: c.Epochs, BatchSize: c.BatchSize, LR: c.LR, Optimizer: fmt.Sprint(c.Optimizer),
		Schedule: c.Schedule.describe(), Patience: c.Patience, Monitor: c.Monitor.String(),
		Weights: weights, Centre: c.Centre, Augment: c.Augment.String(), Seed: Seed(c.Seed),
		GiveUpAfter: c.Schedule.GiveUpAfter, AverageEpochs: max(c.Average, 0),
	}
	if c.Metric != MetricAccuracy {
		r.Metric = c.Metric.String()
	}
	if c.Sampling != SamplingShuffle {
		r.Sampling = c.Sampling.String()
	}
	return r
}

// describe says what the rule does to the learning rate (defaults filled in).
func (s LRSchedule) describe() string {
	if s.Constant {
		return "constant"
	}
	decay := fmt.Sprintf("x%g every %d epochs", s.DecayFactor, s.DecayEvery)
	if s.DecayFactor == 1 {
		decay = "constant"
	}
	if s.MaxRestarts < 0 {
		return decay + "; no restarts"
	}
	return fmt.Sprintf("%s; up to %d restarts at chance, lr x%g", decay, s.MaxRestarts, s.RestartFactor)
}
