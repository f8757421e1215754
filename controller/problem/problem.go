// Package problem holds the search problems whose architectures are scored
// without training: the founding study's mock reward of NASNet cell pairs
// and the NATS-Bench (NAS-Bench-201) topology table. The agents benchmark
// measures agents on them, and a NASNet search can take its rewards from
// them.
package problem

import (
	"fmt"
	"strings"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/natsbench"
)

// Problem is a decision space whose architectures have a score known
// without training.
type Problem struct {
	// Name is "mock" or "natsbench" (Names); tests may make others.
	Name string
	// Space is where agents propose; it decodes action vectors into
	// genotypes (controller.Decoder).
	Space controller.Space
	// Score returns an architecture's score: the mock reward, or the
	// NATS-Bench test accuracy in percent. It is deterministic and safe for
	// concurrent use.
	Score func(actions []int) (float64, error)
	// Reward maps a score to the reward agents learn from; nil means the
	// score itself.
	Reward func(score float64) float64
	// Optimum is the best score in the space.
	Optimum float64
	// Title describes the problem for reports and plots.
	Title string
	// Unit is the score's unit for plots; empty for a unitless score.
	Unit string
	// Accuracy says that the score is an accuracy in percent, which reports
	// show beside the reward.
	Accuracy bool
}

// Names are the problems New knows.
var Names = []string{"mock", "natsbench"}

// New returns the named problem: "mock" with blocks blocks per cell, or
// "natsbench" with the accuracy column dataset.
func New(name string, blocks int, dataset string) (*Problem, error) {
	switch name {
	case "mock":
		return Mock(blocks)
	case "natsbench":
		ds, err := natsbench.ParseDataset(dataset)
		if err != nil {
			return nil, err
		}
		return NATSBench(ds)
	}
	return nil, fmt.Errorf("unknown problem %q (valid: %s)", name, strings.Join(Names, ", "))
}

// MockOptimum is the mock reward's upper clamp, which many cells reach.
const MockOptimum = 0.998

// Mock is the founding study's mock reward (MockReward) on NASNet cell pairs
// of blocks blocks per cell.
func Mock(blocks int) (*Problem, error) {
	if blocks < 1 {
		return nil, fmt.Errorf("mock problem: %d blocks per cell, want at least 1", blocks)
	}
	return &Problem{
		Name: "mock", Space: controller.CellSpace{B: blocks}, Score: MockReward, Optimum: MockOptimum,
		Title: fmt.Sprintf("the founding study's mock reward of a NASNet cell pair, B = %d (optimum %.3f)", blocks, MockOptimum),
	}, nil
}

// NATSBench is a column of the embedded NATS-Bench topology table: score =
// test accuracy after 200 epochs in percent, reward = score / 100.
func NATSBench(ds natsbench.Dataset) (*Problem, error) {
	tab, err := natsbench.Embedded()
	if err != nil {
		return nil, err
	}
	_, opt := tab.Optimum(ds)
	return &Problem{
		Name:  "natsbench",
		Space: NATSBenchSpace{controller.UniformSpace{N: natsbench.NumEdges, Type: controller.DecisionType{Name: "op", Choices: natsbench.NumOps}}},
		Score: func(actions []int) (float64, error) {
			cell, err := natsbench.CellFromActions(actions)
			if err != nil {
				return 0, err
			}
			return tab.Accuracy(cell, ds), nil
		},
		Reward:   func(acc float64) float64 { return acc / 100 },
		Optimum:  opt,
		Title:    fmt.Sprintf("NATS-Bench %s test accuracy after 200 epochs (optimum %.2f)", ds, opt),
		Unit:     "accuracy points",
		Accuracy: true,
	}, nil
}

// NATSBenchSpace is the NATS-Bench topology space: 6 edges of 5 operations,
// every choice valid; its action vectors decode into natsbench.Cell.
type NATSBenchSpace struct{ controller.UniformSpace }

// Decode returns the cell of an action vector.
func (NATSBenchSpace) Decode(actions []int) (genotype.Genotype, error) {
	return natsbench.CellFromActions(actions)
}

// RewardOf returns the reward agents learn from for score.
func (p *Problem) RewardOf(score float64) float64 {
	if p.Reward == nil {
		return score
	}
	return p.Reward(score)
}
