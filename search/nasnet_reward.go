package search

import (
	"context"
	"fmt"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/natsbench"
)

// Reward scores the architectures a NASNet search proposes. NewReward makes
// the mock and natsbench rewards; the reward that trains cell networks
// (the cell-network issue) is a third implementation, added to NewReward
// with its RewardKind.
type Reward interface {
	// Space is the decision space the controller searches.
	Space() controller.Space
	// Cell returns the text form of an action vector of Space.
	Cell(actions []int) (string, error)
	// Evaluate scores an action vector of Space. episode (from 1) lets a
	// reward derive per-episode randomness; cancelling ctx abandons the
	// evaluation. A reward that trains may take minutes; the search
	// evaluates one architecture at a time.
	Evaluate(ctx context.Context, episode int, actions []int) (Evaluation, error)
	// Describe names the reward for reports, e.g. "mock reward, B = 2".
	Describe() string
}

// Evaluation is the outcome of one Evaluate.
type Evaluation struct {
	// Reward is what the controller learns from.
	Reward float64
	// Accuracy is what the reward derives from, where it has one (natsbench:
	// test accuracy in percent); 0 otherwise.
	Accuracy float64
}

// NewReward returns the reward cfg selects (cfg is WithDefaults and
// checked).
func NewReward(cfg NASNetConfig) (Reward, error) {
	switch cfg.Reward {
	case RewardMock:
		return mockReward{space: controller.CellSpace{B: cfg.Blocks}}, nil
	case RewardNATSBench:
		ds, err := natsbench.ParseDataset(cfg.Dataset)
		if err != nil {
			return nil, err
		}
		tab, err := natsbench.Embedded()
		if err != nil {
			return nil, err
		}
		return natsbenchReward{table: tab, dataset: ds}, nil
	}
	return nil, fmt.Errorf("unknown reward %v", cfg.Reward)
}

// mockReward is controller.MockReward on NASNet cell pairs of B blocks.
type mockReward struct{ space controller.CellSpace }

func (m mockReward) Space() controller.Space { return m.space }

func (m mockReward) Cell(actions []int) (string, error) {
	p, err := genotype.CellPairFromActions(actions)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

func (m mockReward) Evaluate(_ context.Context, _ int, actions []int) (Evaluation, error) {
	r, err := controller.MockReward(actions)
	return Evaluation{Reward: r}, err
}

func (m mockReward) Describe() string {
	return fmt.Sprintf("the founding study's mock reward of a NASNet cell pair, B = %d (optimum 0.998)", m.space.B)
}

// natsbenchReward is a NATS-Bench table column: reward = accuracy / 100.
type natsbenchReward struct {
	table   *natsbench.Table
	dataset natsbench.Dataset
}

func (n natsbenchReward) Space() controller.Space {
	return controller.UniformSpace{N: natsbench.NumEdges, Type: controller.DecisionType{Name: "op", Choices: natsbench.NumOps}}
}

func (n natsbenchReward) Cell(actions []int) (string, error) {
	c, err := natsbench.CellFromActions(actions)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

func (n natsbenchReward) Evaluate(_ context.Context, _ int, actions []int) (Evaluation, error) {
	c, err := natsbench.CellFromActions(actions)
	if err != nil {
		return Evaluation{}, err
	}
	acc := n.table.Accuracy(c, n.dataset)
	return Evaluation{Reward: acc / 100, Accuracy: acc}, nil
}

func (n natsbenchReward) Describe() string {
	_, opt := n.table.Optimum(n.dataset)
	return fmt.Sprintf("NATS-Bench %s test accuracy after 200 epochs / 100 (table optimum %.2f%%)", n.dataset, opt)
}
