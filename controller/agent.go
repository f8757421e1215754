package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/nasctl/nasctl/genotype"
)

// Agent searches architectures the way a Katib suggestion service does: it
// proposes the architecture of trial 1, 2, 3, ... and learns each trial's
// reward in the same order, and its whole state saves and restores exactly.
// The search engine drives every agent through it; an agent may be several
// proposals ahead of what it has learned (the engine's sampling lag).
//
// MetaQNN, Evolution, SpaceEvolution, Reinforce, QAgent and RandomAgent
// implement it.
type Agent interface {
	// Propose draws the architecture of trial, the next trial (numbered
	// from 1, consecutively).
	Propose(trial int) (Proposal, error)
	// Observe learns the reward of trial, the oldest trial proposed and
	// neither observed nor forgotten, whose proposal was p.
	Observe(trial int, p Proposal, reward float64) (Learned, error)
	// Forget drops trial (the oldest outstanding, proposed as p) without a
	// reward: its evaluation failed, which says nothing of the architecture.
	Forget(trial int, p Proposal) error
	// Save writes the agent's state: an agent restored from it proposes and
	// learns exactly as this one would have.
	Save(w io.Writer) error
}

// Proposal is the architecture an agent proposes for one trial.
type Proposal struct {
	// Genotype is the architecture: a layer sequence (MetaQNN) or what the
	// agent's Space decodes its actions into.
	Genotype genotype.Genotype
	// Actions are the decisions in the agent's Space; nil for MetaQNN, whose
	// decisions are layers.
	Actions []int
	// Epsilon is MetaQNN's exploration rate and Temperature the REINFORCE
	// controller's softmax temperature when the proposal was drawn; zero
	// for agents without one.
	Epsilon     float64
	Temperature float64
	// Greedy marks a MetaQNN proposal none of whose layers was drawn at
	// random: each was one of the table's best in its state, or, for a
	// proposal QConfig.NextBest found, came from the table's order (an
	// epsilon draw that happens to pick a best layer still counts as
	// random). It separates what the agent has learned from its
	// exploration in a phase's mean (docs/search-quality.md, "Greedy
	// trials"); false for the other agents.
	Greedy bool
}

// Learned is what an agent did with an observed reward, for the trial's
// record. Only the REINFORCE controller fills it.
type Learned struct {
	// Baseline is what the reward's advantage was measured against.
	Baseline float64 `json:"baseline"`
	// Update is set when the trial completed a batch: the policy update that
	// followed, or its skipping.
	Update *Update `json:"update,omitempty"`
}

// Compile-time checks of the implementations.
var (
	_ Agent = (*MetaQNN)(nil)
	_ Agent = (*Reinforce)(nil)
	_ Agent = (*QAgent)(nil)
	_ Agent = (*RandomAgent)(nil)
	_ Agent = (*Evolution)(nil)
	_ Agent = (*SpaceEvolution)(nil)
)

// AgentFactory makes a fresh agent for space whose randomness derives from
// seed.
type AgentFactory func(space Space, seed uint64) (Agent, error)

// Decoder is a Space whose action vectors are architectures of a genotype
// kind (CellSpace: NASNet cell pairs).
type Decoder interface {
	Decode(actions []int) (genotype.Genotype, error)
}

// Decisions is the genotype of an action vector in a Space that has no
// Decoder: its text form is the decisions, e.g. "0,3,1".
type Decisions []int

// String writes the decisions separated by commas.
func (d Decisions) String() string {
	parts := make([]string, len(d))
	for i, a := range d {
		parts[i] = strconv.Itoa(a)
	}
	return strings.Join(parts, ",")
}

// Key is the text form.
func (d Decisions) Key() string { return d.String() }

// Build reports that bare decisions describe no network.
func (d Decisions) Build(genotype.Input, int) (*genotype.Net, error) {
	return nil, fmt.Errorf("decisions %s describe no network (%w)", d, genotype.ErrNotCompilable)
}

// propose makes the proposal of an action vector of space.
func propose(space Space, actions []int) (Proposal, error) {
	p := Proposal{Actions: actions}
	if d, ok := space.(Decoder); ok {
		g, err := d.Decode(actions)
		if err != nil {
			return Proposal{}, err
		}
		p.Genotype = g
		return p, nil
	}
	p.Genotype = Decisions(actions)
	return p, nil
}

// RandomAgent proposes every architecture uniformly at random: at every
// decision, a choice uniform among the valid ones given the earlier choices.
type RandomAgent struct {
	space Space
	pcg   *rand.PCG
	rng   *rand.Rand
	valid []bool
}

// NewRandomAgent returns a random-search agent whose choices derive from seed.
func NewRandomAgent(space Space, seed uint64) (Agent, error) {
	pcg := rand.NewPCG(seed, seed^0x72616e646f6d) // "random"
	return &RandomAgent{space: space, pcg: pcg, rng: rand.New(pcg)}, nil
}

// Propose draws an architecture.
func (a *RandomAgent) Propose(int) (Proposal, error) {
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
	p, err := propose(a.space, actions)
	p.Epsilon = 1 // every decision explores, as MetaQNN's at epsilon 1
	return p, err
}

// Observe ignores the reward.
func (a *RandomAgent) Observe(int, Proposal, float64) (Learned, error) { return Learned{}, nil }

// Forget does nothing.
func (a *RandomAgent) Forget(int, Proposal) error { return nil }

// Save writes the random source's state.
func (a *RandomAgent) Save(w io.Writer) error {
	b, err := a.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(b)
}

// LoadRandomAgent restores a RandomAgent saved for space.
func LoadRandomAgent(r io.Reader, space Space) (*RandomAgent, error) {
	var b []byte
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		return nil, fmt.Errorf("random agent state: %w", err)
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("random agent state: %w", err)
	}
	return &RandomAgent{space: space, pcg: pcg, rng: rand.New(pcg)}, nil
}
