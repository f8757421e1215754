package search

import (
	"slices"

	"github.com/nasctl/nasctl/search/rundir"
)

// MedianStop is the median stopping rule (Golovin et al. 2017, Google
// Vizier; Katib and Optuna offer it too): from epoch After on, a trial
// whose best validation accuracy so far is below the median of the earlier
// trials' best after the same epoch stops there, keeping its best epoch. Its
// reward is that of the shorter training, and its record says so (pruned).
// Measurements: docs/search-quality.md, "Median stopping".
type MedianStop struct {
	// After is the first epoch after which a trial may stop; zero: never.
	After int `yaml:"after"`
	// MinTrials is how many earlier trials the rule waits for; zero: 10.
	MinTrials int `yaml:"min_trials,omitempty"`
}

// defaultMedianMinTrials is MedianStop.MinTrials' default.
const defaultMedianMinTrials = 10

// IsZero reports the rule off (YAML omitempty).
func (m MedianStop) IsZero() bool { return m.After == 0 }

// thresholds returns a trial's runtime.TrainConfig.StopBelow: for every
// epoch from After to the one before the last, the median of the earlier
// trials' best validation accuracy after that epoch. Earlier trials are
// those trained (not reused, refused or failed); one that stopped sooner
// (patience, at chance, or this rule) counts with the best it reached,
// which can only lower the median. It returns nil while fewer than MinTrials are known.
func (m MedianStop) thresholds(earlier []rundir.Trial, epochs int) []float64 {
	if m.After == 0 {
		return nil
	}
	var curves [][]float64
	for _, t := range earlier {
		if t.Status != rundir.StatusOK {
			continue
		}
		if c := bestSoFar(t); len(c) > 0 {
			curves = append(curves, c)
		}
	}
	if len(curves) < max(m.MinTrials, 1) {
		return nil
	}
	out := make([]float64, epochs)
	at := make([]float64, len(curves))
	for e := m.After; e < epochs; e++ { // a stop after the last epoch saves nothing
		for i, c := range curves {
			at[i] = c[min(e, len(c))-1]
		}
		out[e-1] = median(at)
	}
	return out
}

// median sorts x and returns its middle value, or the mean of the middle
// two (gonum's stat.Quantile picks one of them).
func median(x []float64) float64 {
	slices.Sort(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// bestSoFar is a trained trial's best validation accuracy after each epoch
// of its last attempt.
func bestSoFar(t rundir.Trial) []float64 {
	var out []float64
	best := 0.0
	for _, e := range t.LastAttempt() {
		best = max(best, e.ValAccuracy)
		out = append(out, best)
	}
	return out
}
