package controller

import (
	"fmt"
	"strings"
)

// BaselineKind selects how the REINFORCE baseline b is computed from the
// rewards seen so far; every episode's advantage is R - b.
type BaselineKind uint8

const (
	// BaselineEMA is an exponential moving average of the rewards (Zoph & Le
	// 2017): b <- d*b + (1-d)*R per reward. It starts at the first reward, so
	// the episodes of the first batch are measured against that reward.
	BaselineEMA BaselineKind = iota
	// BaselineStudy is the founding study's rule (docs/study.md, section 5):
	// 0.65^3 for the first 20 episodes, then the largest of the mean of the
	// last 20 rewards, the mean of the last 100 (of all, while fewer) and 0.8
	// times the best reward so far.
	BaselineStudy
)

var baselineNames = []string{"ema", "study"}

// String returns "ema" or "study".
func (k BaselineKind) String() string {
	if int(k) < len(baselineNames) {
		return baselineNames[k]
	}
	return fmt.Sprintf("BaselineKind(%d)", k)
}

// ParseBaselineKind parses "ema" or "study"; its error lists the valid names.
func ParseBaselineKind(s string) (BaselineKind, error) {
	for i, n := range baselineNames {
		if n == s {
			return BaselineKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown baseline %q (valid: %s)", s, strings.Join(baselineNames, ", "))
}

// The study's baseline constants.
const (
	studyWarmup      = 20
	studyInitial     = 0.65 * 0.65 * 0.65
	studyShort       = 20
	studyLong        = 100
	studyBestPercent = 0.8
)

// baseline is the baseline's whole state; its exported fields are saved with
// the controller.
type baseline struct {
	Kind   BaselineKind
	Decay  float64   // EMA decay d
	Seen   int       // rewards observed
	EMA    float64   // EMA value (valid once Seen > 0)
	Recent []float64 // study: the last 100 rewards, oldest first
	Best   float64   // study: the best reward so far
}

// value returns the baseline before the next reward. For an EMA that has
// seen nothing it returns first, the value it will start from.
func (b *baseline) value(first float64) float64 {
	switch b.Kind {
	case BaselineStudy:
		if b.Seen < studyWarmup {
			return studyInitial
		}
		return max(meanLast(b.Recent, studyShort), meanLast(b.Recent, studyLong), studyBestPercent*b.Best)
	default:
		if b.Seen == 0 {
			return first
		}
		return b.EMA
	}
}

// observe takes one reward into the baseline.
func (b *baseline) observe(r float64) {
	switch b.Kind {
	case BaselineStudy:
		if b.Seen == 0 || r > b.Best {
			b.Best = r
		}
		b.Recent = append(b.Recent, r)
		if len(b.Recent) > studyLong {
			b.Recent = append(b.Recent[:0], b.Recent[len(b.Recent)-studyLong:]...)
		}
	default:
		if b.Seen == 0 {
			b.EMA = r
		} else {
			b.EMA = b.Decay*b.EMA + (1-b.Decay)*r
		}
	}
	b.Seen++
}

// meanLast returns the mean of the last n values of xs (of all, if fewer).
func meanLast(xs []float64, n int) float64 {
	if len(xs) > n {
		xs = xs[len(xs)-n:]
	}
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
