package search

import (
	"cmp"
	"slices"

	"gonum.org/v1/gonum/stat"

	"github.com/nasctl/nasctl/search/rundir"
)

// Halving is asynchronous successive halving (Li et al. 2020, "A System
// for Massively Parallel Hyperparameter Tuning"), in the form that stops
// trials rather than pausing them: at each rung, the epochs First,
// First*Eta, First*Eta^2 and so on below train.epochs, a trial goes on only
// if its best validation accuracy so far is among the best 1/Eta of the
// earlier trials that reached the same rung; otherwise it stops there and
// is recorded as pruned, with the reward of its shorter training. Many
// networks are screened for a few epochs and few train in full.
// Measurements: docs/search-quality.md, "Successive halving".
type Halving struct {
	// First is the first rung's epoch; zero: off.
	First int `yaml:"first"`
	// Eta is the factor between rungs, and 1/Eta the share that goes on;
	// zero: 3.
	Eta int `yaml:"eta,omitempty"`
	// MinTrials is how many earlier trials must have reached a rung before
	// it stops any; zero: 10.
	MinTrials int `yaml:"min_trials,omitempty"`
	// SpareGreedy lets MetaQNN's greedy proposals (no layer drawn at
	// random) train in full: only the exploring ones are screened.
	SpareGreedy bool `yaml:"spare_greedy,omitempty"`
}

// defaultHalvingEta is Halving.Eta's default, as in the paper.
const defaultHalvingEta = 3

// defaultHalvingMinTrials is Halving.MinTrials' default: the median rule's,
// so that both rules wait for as many earlier trials.
const defaultHalvingMinTrials = defaultMedianMinTrials

// IsZero reports the rule off (YAML omitempty).
func (h Halving) IsZero() bool { return h.First == 0 }

// eta is Eta, or its default when unset; never below 2 (Check refuses 1).
func (h Halving) eta() int { return max(cmp.Or(h.Eta, defaultHalvingEta), 2) }

// rungs are the epochs at which a trial of the given length may stop. A
// rung at the last epoch would stop nothing, so there is none.
func (h Halving) rungs(epochs int) []int {
	var out []int
	for r := h.First; r >= 1 && r < epochs; r *= h.eta() {
		out = append(out, r)
	}
	return out
}

// thresholds returns a trial's runtime.TrainConfig.StopBelow: zero except
// at the rungs, where it is the (1 - 1/Eta) quantile (linearly
// interpolated) of the best validation accuracy after that epoch of the
// earlier trained trials that ran at least that many epochs. A trial that
// stopped at a rung, by this rule or otherwise, counts at that rung and
// the ones before. A rung with fewer than MinTrials such trials stops
// nothing; nil when no rung stops anything.
func (h Halving) thresholds(earlier []rundir.Trial, epochs int) []float64 {
	rungs := h.rungs(epochs)
	if len(rungs) == 0 {
		return nil
	}
	at := make([][]float64, len(rungs))
	for _, t := range earlier {
		if t.Status != rundir.StatusOK {
			continue
		}
		c := bestSoFar(t)
		for i, r := range rungs {
			if len(c) >= r {
				at[i] = append(at[i], c[r-1])
			}
		}
	}
	var out []float64
	for i, r := range rungs {
		if len(at[i]) < max(h.MinTrials, 1) {
			continue
		}
		if out == nil {
			out = make([]float64, epochs)
		}
		slices.Sort(at[i])
		out[r-1] = stat.Quantile(1-1/float64(h.eta()), stat.LinInterp, at[i], nil)
	}
	return out
}
