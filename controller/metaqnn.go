package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/nasctl/nasctl/genotype"
)

// MetaQNN is the agent of Baker et al. (2017): it builds a layer sequence one
// layer at a time under the constraints of a genotype.Space, choosing each
// layer epsilon-greedily from a Q-table. A state is the last layer (kind and
// parameters), the depth, the representation-size bin and the number of FC
// layers in a row; an action is the next layer. GAP and SM end a trajectory.
type MetaQNN struct {
	Space genotype.Space
	Input genotype.Input
	Table *QTable
}

// NewMetaQNN returns an agent with an empty Q-table for space at input in.
func NewMetaQNN(space genotype.Space, in genotype.Input, cfg QConfig) (*MetaQNN, error) {
	if err := space.Verify(); err != nil {
		return nil, fmt.Errorf("search space %s: %w", space.Name, err)
	}
	if in.Height < 1 || in.Width < 1 || in.Channels < 1 {
		return nil, fmt.Errorf("input %s: every dimension must be at least 1", in)
	}
	return &MetaQNN{Space: space, Input: in, Table: NewQTable(cfg)}, nil
}

// stateKey names a state of the Q-table.
func (m *MetaQNN) stateKey(st genotype.State, last genotype.Layer) string {
	prev := "start"
	if st.Depth > 0 || st.Done {
		prev = last.String()
	}
	return prev + " d" + strconv.Itoa(st.Depth) + " r" + strconv.Itoa(m.Space.Bin(st.Size())) + " fc" + strconv.Itoa(st.FCs)
}

// Sample builds an architecture at exploration rate eps and returns it with
// its trajectory.
func (m *MetaQNN) Sample(eps float64, rng *rand.Rand) (genotype.Arch, []Transition) {
	st := m.Space.Start(m.Input)
	var arch genotype.Arch
	var traj []Transition
	key, layers := m.stateKey(st, genotype.Layer{}), m.Space.Actions(st)
	names := layerNames(layers)
	for !st.Done {
		a := m.Table.Choose(key, names, eps, rng)
		l := layers[slices.Index(names, a)]
		arch = append(arch, l)
		st = m.Space.Step(st, l)
		t := Transition{State: key, Action: a, Terminal: st.Done}
		if !st.Done {
			key, layers = m.stateKey(st, l), m.Space.Actions(st)
			names = layerNames(layers)
			t.Next, t.NextActions = key, names
		}
		traj = append(traj, t)
	}
	return arch, traj
}

// Observe learns a trained architecture's reward and replays the memory.
func (m *MetaQNN) Observe(traj []Transition, reward float64, rng *rand.Rand) {
	m.Table.Remember(traj, reward, rng)
}

func layerNames(ls []genotype.Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

// Trajectory returns the transitions that sample arch, as Sample would have
// recorded them; arch must be valid in the agent's space.
func (m *MetaQNN) Trajectory(arch genotype.Arch) ([]Transition, error) {
	if err := m.Space.Validate(arch, m.Input); err != nil {
		return nil, fmt.Errorf("%s is not in the %s space: %w", arch, m.Space.Name, err)
	}
	st := m.Space.Start(m.Input)
	key := m.stateKey(st, genotype.Layer{})
	var traj []Transition
	for _, l := range arch {
		st = m.Space.Step(st, l)
		t := Transition{State: key, Action: l.String(), Terminal: st.Done}
		if !st.Done {
			key = m.stateKey(st, l)
			t.Next, t.NextActions = key, layerNames(m.Space.Actions(st))
		}
		traj = append(traj, t)
	}
	return traj, nil
}
