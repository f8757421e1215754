package problem

import (
	"math"

	"github.com/nasctl/nasctl/genotype"
)

// MockReward is the founding study's stand-in for training a NASNet child
// network (docs/study.md, section 6), computed from an action vector of
// genotype.CellPair.Actions (5 integers per block: input1, input2, op1, op2,
// combine; the normal cell's blocks, then the reduction cell's). Over all
// blocks of both cells:
//
//	high     = share of ops > 8           low     = share of ops < 4
//	in_div   = distinct inputs / (max input + 1)
//	comb_var = distinct combines / number of blocks
//	op_div   = distinct ops / 13          mean    = mean op index
//	r        = 0.5 + 0.4*high - 0.1*low + 0.15*in_div + 0.1*comb_var
//	               + 0.15*op_div + 0.13*sin(mean*pi/6.5)
//	reward   = clamp(r*r, 0.5, 0.998)
//
// It rewards some operations by construction: a test objective for agents,
// not a proxy of accuracy. A vector that is not a valid cell pair returns a
// genotype.CellProblems error that says what is expected.
func MockReward(actions []int) (float64, error) {
	t, err := MockTerms(actions)
	return t.Reward, err
}

// MockBreakdown is every term of MockReward, for checking it by hand.
type MockBreakdown struct {
	High, Low, InDiv, CombVar, OpDiv, Mean float64
	R                                      float64 // before squaring and clamping
	Reward                                 float64
}

// MockTerms returns MockReward with its terms.
func MockTerms(actions []int) (MockBreakdown, error) {
	if _, err := genotype.CellPairFromActions(actions); err != nil {
		return MockBreakdown{}, err
	}
	var inputs, ops, combines []int
	for i := 0; i < len(actions); i += genotype.CellActionsPerBlock {
		inputs = append(inputs, actions[i], actions[i+1])
		ops = append(ops, actions[i+2], actions[i+3])
		combines = append(combines, actions[i+4])
	}
	high, low, sum := 0, 0, 0
	for _, o := range ops {
		if o > 8 {
			high++
		}
		if o < 4 {
			low++
		}
		sum += o
	}
	n := float64(len(ops))
	t := MockBreakdown{
		High:    float64(high) / n,
		Low:     float64(low) / n,
		InDiv:   float64(distinct(inputs)) / float64(maxInt(inputs)+1),
		CombVar: float64(distinct(combines)) / float64(len(combines)),
		OpDiv:   float64(distinct(ops)) / genotype.NumCellOps,
		Mean:    float64(sum) / n,
	}
	t.R = 0.5 + 0.4*t.High - 0.1*t.Low + 0.15*t.InDiv + 0.1*t.CombVar + 0.15*t.OpDiv +
		0.13*math.Sin(t.Mean*math.Pi/6.5)
	t.Reward = min(max(t.R*t.R, 0.5), 0.998)
	return t, nil
}

func distinct(xs []int) int {
	seen := map[int]bool{}
	for _, x := range xs {
		seen[x] = true
	}
	return len(seen)
}

func maxInt(xs []int) int {
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}
