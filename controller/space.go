package controller

import (
	"fmt"

	"github.com/nasctl/nasctl/genotype"
)

// DecisionType is a kind of decision: its name and its number of choices.
// All decisions of one type share one embedding table and one softmax head of
// the controller.
type DecisionType struct {
	Name    string
	Choices int
}

// Space is a search space written as a fixed-length sequence of categorical
// decisions: an architecture is one choice per decision (an action vector).
type Space interface {
	// Types lists the decision types.
	Types() []DecisionType
	// Steps returns the type (an index into Types) of every decision, in order.
	Steps() []int
	// Valid sets valid[c] for every choice c of decision step, given the earlier
	// choices prev (len(prev) == step); len(valid) is the step type's Choices.
	// At least one choice must be valid.
	Valid(step int, prev []int, valid []bool)
}

// CheckActions returns an error naming the first decision of actions that is
// out of range or invalid in s, or nil.
func CheckActions(s Space, actions []int) error {
	steps := s.Steps()
	if len(actions) != len(steps) {
		return fmt.Errorf("got %d decisions, the space has %d", len(actions), len(steps))
	}
	types := s.Types()
	for t, a := range actions {
		typ := types[steps[t]]
		if a < 0 || a >= typ.Choices {
			return fmt.Errorf("decision %d (%s): choice %d is out of range 0-%d", t, typ.Name, a, typ.Choices-1)
		}
		valid := make([]bool, typ.Choices)
		s.Valid(t, actions[:t], valid)
		if !valid[a] {
			return fmt.Errorf("decision %d (%s): choice %d is not allowed after %v", t, typ.Name, a, actions[:t])
		}
	}
	return nil
}

// UniformSpace is a space of N decisions of one type in which every choice is
// always valid, such as the NATS-Bench topology space (6 edges, 5 operations).
type UniformSpace struct {
	N    int
	Type DecisionType
}

// Types returns the one decision type.
func (u UniformSpace) Types() []DecisionType { return []DecisionType{u.Type} }

// Steps returns N zeros.
func (u UniformSpace) Steps() []int { return make([]int, u.N) }

// Valid marks every choice valid.
func (u UniformSpace) Valid(_ int, _ []int, valid []bool) {
	for i := range valid {
		valid[i] = true
	}
}

// CellSpace is the NASNet cell search space of Zoph et al. (2018) with B blocks
// per cell: for the normal cell's blocks, then the reduction cell's, 5
// decisions per block (input1, input2, op1, op2, combine), the action vector of
// genotype.CellPair.Actions. There are three decision types: "input" (B+1
// choices; block b may choose only 0..b+1, the rest are masked), "op" (13) and
// "combine" (2).
type CellSpace struct {
	B int
}

// Decision types of a CellSpace.
const (
	CellInputType = iota
	CellOpType
	CellCombineType
)

// Types returns input, op and combine.
func (c CellSpace) Types() []DecisionType {
	return []DecisionType{
		{Name: "input", Choices: c.B + 1},
		{Name: "op", Choices: genotype.NumCellOps},
		{Name: "combine", Choices: genotype.NumCellCombines},
	}
}

// Steps returns input, input, op, op, combine for each of the 2B blocks.
func (c CellSpace) Steps() []int {
	block := []int{CellInputType, CellInputType, CellOpType, CellOpType, CellCombineType}
	out := make([]int, 0, 2*c.B*len(block))
	for range 2 * c.B {
		out = append(out, block...)
	}
	return out
}

// Valid allows block b's inputs 0..b+1 and every op and combination.
func (c CellSpace) Valid(step int, _ []int, valid []bool) {
	block := (step / genotype.CellActionsPerBlock) % c.B
	isInput := step%genotype.CellActionsPerBlock < 2
	for i := range valid {
		valid[i] = !isInput || i < block+2
	}
}

// Decode returns the cell pair of an action vector.
func (c CellSpace) Decode(actions []int) (genotype.Genotype, error) {
	return genotype.CellPairFromActions(actions)
}

// CellNetSpace is CellSpace whose action vectors decode into cell networks
// of one macro: the space of a NASNet search that trains its candidates.
type CellNetSpace struct {
	CellSpace
	Macro genotype.CellMacro
}

// Decode returns the cell network of an action vector.
func (c CellNetSpace) Decode(actions []int) (genotype.Genotype, error) {
	p, err := genotype.CellPairFromActions(actions)
	if err != nil {
		return nil, err
	}
	return genotype.CellNet{Pair: p, Macro: c.Macro}, nil
}
