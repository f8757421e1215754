package controller

import (
	"math/rand/v2"
)

// Agent searches a Space: it proposes architectures (action vectors) and
// observes their rewards. Observe is called once per proposal, in the order of
// the proposals. The Controller, RandomAgent and (with the MetaQNN issue) the
// tabular Q-learning agent implement it.
type Agent interface {
	Propose() ([]int, error)
	Observe(actions []int, reward float64) error
}

// AgentFactory makes a fresh agent for space whose randomness derives from seed.
type AgentFactory func(space Space, seed uint64) (Agent, error)

// ReinforceFactory returns a factory of Controllers with cfg.
func ReinforceFactory(cfg Config) AgentFactory {
	return func(space Space, seed uint64) (Agent, error) { return New(space, cfg, seed) }
}

// RandomAgent proposes every architecture uniformly at random: at every
// decision, a choice uniform among the valid ones given the earlier choices.
type RandomAgent struct {
	space Space
	rng   *rand.Rand
	valid []bool
}

// NewRandomAgent returns a random-search agent whose choices derive from seed.
func NewRandomAgent(space Space, seed uint64) (Agent, error) {
	return &RandomAgent{space: space, rng: rand.New(rand.NewPCG(seed, seed^0x72616e646f6d))}, nil // "random"
}

// Propose draws an architecture.
func (a *RandomAgent) Propose() ([]int, error) {
	types, steps := a.space.Types(), a.space.Steps()
	actions := make([]int, 0, len(steps))
	for t, typ := range steps {
		k := types[typ].Choices
		if cap(a.valid) < k {
			a.valid = make([]bool, k)
		}
		valid := a.valid[:k]
		a.space.Valid(t, actions, valid)
		var idx []int
		for j, v := range valid {
			if v {
				idx = append(idx, j)
			}
		}
		actions = append(actions, idx[a.rng.IntN(len(idx))])
	}
	return actions, nil
}

// Observe ignores the reward.
func (a *RandomAgent) Observe([]int, float64) error { return nil }
