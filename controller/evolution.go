package controller

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/nasctl/nasctl/genotype"
)

// EvolutionConfig configures regularized evolution. Zero fields take their
// defaults (WithDefaults).
type EvolutionConfig struct {
	// Population is how many of the most recent architectures compete for
	// parenthood; the first Population trials are drawn at random. Zero:
	// the epsilon schedule's first phase, so that, when that phase is at
	// epsilon 1 (every preset's), the random start is the one MetaQNN and
	// the random baseline share.
	Population int `yaml:"population,omitempty" json:"population,omitempty"`
	// Sample is how many members a tournament draws; the best is the
	// parent. Zero: a sixth of Population, at least 2.
	Sample int `yaml:"sample,omitempty" json:"sample,omitempty"`
}

// WithDefaults fills zero fields, the population from schedule.
func (c EvolutionConfig) WithDefaults(schedule EpsilonSchedule) EvolutionConfig {
	first := 1
	if len(schedule) > 0 {
		first = schedule[0].Models
	}
	c.Population = cmp.Or(c.Population, first)
	c.Sample = cmp.Or(c.Sample, max(2, c.Population/6))
	return c
}

// Check returns the first problem of settings filled by WithDefaults for a
// run of trials trials (0: of any length), or nil.
func (c EvolutionConfig) Check(trials int) error {
	switch {
	case c.Population < 2:
		return fmt.Errorf("population %d: a tournament needs at least 2 members; set a population of at least 2", c.Population)
	case c.Sample < 2:
		return fmt.Errorf("sample %d: a tournament of fewer than 2 picks its parent at random; set a sample of at least 2", c.Sample)
	case c.Sample > c.Population:
		return fmt.Errorf("sample %d is larger than the population %d; set a sample of at most %d (unset, it is a sixth of the population, at least 2)",
			c.Sample, c.Population, c.Population)
	case trials > 0 && c.Population >= trials:
		return fmt.Errorf("population %d leaves none of the run's %d trials to evolution (the first population trials are drawn at random); set a population below %d",
			c.Population, trials, trials)
	}
	return nil
}

// Evolution is regularized evolution (Real et al. 2019) over MetaQNN's
// layer space. Trials 1..Population are drawn as the random baseline draws
// them. After that, a trial draws Sample members of the population (the
// Population architectures observed last), takes the best as the parent and
// proposes a mutation of it: one layer replaced, inserted or removed, the
// parent's other layers kept where the space's rules allow them. Members
// leave the population by age, not by reward, so a lucky reward does not
// rule forever (docs/search-quality.md, "Regularized evolution").
//
// Each trial draws from its own random stream (as MetaQNN's), and with
// QConfig.Redraw a proposal that repeats an observed architecture is drawn
// again.
type Evolution struct {
	base    *MetaQNN // its space, input and seed; it samples the random start
	cfg     EvolutionConfig
	redraw  int
	members []member // every observed architecture, in order
	seen    map[string]bool
}

// member is an observed architecture and its reward.
type member struct {
	Arch    string  `json:"arch"`
	Actions []int   `json:"actions,omitempty"` // SpaceEvolution's decisions
	Reward  float64 `json:"reward"`
}

// NewEvolution returns an evolution agent over space at input in; the
// schedule sets the default population, q.Redraw the redraws.
func NewEvolution(space genotype.Space, in genotype.Input, cfg EvolutionConfig, q QConfig, schedule EpsilonSchedule, seed uint64) (*Evolution, error) {
	cfg = cfg.WithDefaults(schedule)
	if err := cfg.Check(0); err != nil {
		return nil, err
	}
	base, err := NewMetaQNN(space, in, QConfig{}, schedule, seed)
	if err != nil {
		return nil, err
	}
	return &Evolution{base: base, cfg: cfg, redraw: q.Redraw, seen: map[string]bool{}}, nil
}

// Config returns the configuration with defaults filled in.
func (e *Evolution) Config() EvolutionConfig { return e.cfg }

// Propose draws trial's architecture: at random for the first Population
// trials (Epsilon 1), then a mutation of a tournament's winner (Epsilon 0).
func (e *Evolution) Propose(trial int) (Proposal, error) {
	rng := TrialRand(e.base.seed, trial, 0)
	pop := e.members[max(0, len(e.members)-e.cfg.Population):]
	seen := func() map[string]bool { return e.seen }
	if trial <= e.cfg.Population || len(pop) == 0 {
		arch := drawNew(e.redraw, seen, func() (genotype.Arch, string) { a, _ := e.base.Sample(1, rng); return a, a.String() })
		return Proposal{Genotype: arch, Epsilon: 1}, nil
	}
	parent, err := genotype.Parse(tournament(pop, e.cfg.Sample, rng).Arch)
	if err != nil {
		return Proposal{}, fmt.Errorf("evolution: population member: %w", err)
	}
	arch := drawNew(e.redraw, seen, func() (genotype.Arch, string) { a := e.mutate(parent, rng); return a, a.String() })
	return Proposal{Genotype: arch}, nil
}

// tournament draws k members of pop without replacement and returns the
// best (ties: the younger).
func tournament(pop []member, k int, rng *rand.Rand) member {
	idx := rng.Perm(len(pop))[:min(k, len(pop))]
	slices.Sort(idx)
	best := pop[idx[0]]
	for _, i := range idx[1:] {
		if pop[i].Reward >= best.Reward {
			best = pop[i]
		}
	}
	return best
}

// The mutations of a layer sequence.
const (
	mutateReplace = iota
	mutateInsert
	mutateRemove
	mutations
)

// mutate returns a valid architecture one mutation away from parent, or a
// random one when ten tries find none.
func (e *Evolution) mutate(parent genotype.Arch, rng *rand.Rand) genotype.Arch {
	for range 10 {
		child := e.mutateOnce(parent, rng.IntN(mutations), rng.IntN(len(parent)), rng)
		if child != nil && child.String() != parent.String() && e.base.Space.Validate(child, e.base.Input) == nil {
			return child
		}
	}
	a, _ := e.base.Sample(1, rng)
	return a
}

// mutateOnce applies mutation kind at layer i of parent: the layers before
// i are kept; then a layer is replaced, inserted before i or removed; then
// the parent's remaining layers follow where the rules allow them, and the
// end is the first terminal layer allowed (GAP or SM), or random layers
// until one is. It returns nil when the mutation does not apply at i.
func (e *Evolution) mutateOnce(parent genotype.Arch, kind, i int, rng *rand.Rand) genotype.Arch {
	sp := e.base.Space
	st := sp.Start(e.base.Input)
	child := genotype.Arch{}
	add := func(l genotype.Layer) {
		child = append(child, l)
		st = sp.Step(st, l)
	}
	for _, l := range parent[:i] {
		add(l)
	}
	rest := parent[i:]
	hidden := func(l genotype.Layer) bool { return !sp.Step(st, l).Done }
	switch kind {
	case mutateReplace:
		acts := slices.DeleteFunc(sp.Actions(st), func(l genotype.Layer) bool { return l == parent[i] })
		if len(acts) == 0 {
			return nil
		}
		add(acts[rng.IntN(len(acts))])
		rest = parent[i+1:]
	case mutateInsert:
		acts := slices.DeleteFunc(sp.Actions(st), func(l genotype.Layer) bool { return !hidden(l) })
		if len(acts) == 0 {
			return nil
		}
		add(acts[rng.IntN(len(acts))])
	case mutateRemove:
		if !hidden(parent[i]) {
			return nil
		}
		rest = parent[i+1:]
	}
	for _, l := range rest {
		if st.Done {
			break
		}
		if len(sp.Check(st, l)) == 0 {
			add(l)
		}
	}
	for !st.Done {
		acts := sp.Actions(st)
		if ends := slices.DeleteFunc(slices.Clone(acts), hidden); len(ends) > 0 {
			acts = ends
		}
		add(acts[rng.IntN(len(acts))])
	}
	return child
}

// Observe adds trial's architecture and reward to the population.
func (e *Evolution) Observe(_ int, p Proposal, reward float64) (Learned, error) {
	arch, ok := p.Genotype.(genotype.Arch)
	if !ok {
		return Learned{}, fmt.Errorf("evolution observes layer sequences, not %T", p.Genotype)
	}
	e.members = append(e.members, member{Arch: arch.String(), Reward: reward})
	e.seen[arch.String()] = true
	return Learned{}, nil
}

// Forget does nothing: a failed trial does not join the population.
func (e *Evolution) Forget(int, Proposal) error { return nil }

// Save writes every observed architecture and its reward, in order.
func (e *Evolution) Save(w io.Writer) error {
	return json.NewEncoder(w).Encode(struct {
		Members []member `json:"members"`
	}{e.members})
}

// Load replaces the agent's observations with saved ones.
func (e *Evolution) Load(r io.Reader) error {
	var s struct {
		Members []member `json:"members"`
	}
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("evolution state: %w", err)
	}
	e.members, e.seen = s.Members, map[string]bool{}
	for _, m := range s.Members {
		e.seen[m.Arch] = true
	}
	return nil
}

// SpaceEvolution is regularized evolution over a decision Space (NATS-Bench's
// cell, NASNet cells): the first Population trials are uniform among the
// valid decisions; after them a trial mutates the best of a tournament of
// Sample from the Population observed last, changing one decision to another
// valid one (later decisions the change made invalid are drawn again).
type SpaceEvolution struct {
	space   Space
	cfg     EvolutionConfig
	pcg     *rand.PCG
	rng     *rand.Rand
	members []member
}

// EvolutionDefaultPopulation is the schedule whose first phase gives
// SpaceEvolution its default population: 20, and tournaments of 3.
var EvolutionDefaultPopulation = EpsilonSchedule{{1, 20}}

// EvolutionFactory returns a factory of SpaceEvolution agents; zero fields
// of cfg mean a population of 20 and tournaments of 3 (a sixth).
func EvolutionFactory(cfg EvolutionConfig) AgentFactory {
	return func(space Space, seed uint64) (Agent, error) {
		cfg := cfg.WithDefaults(EvolutionDefaultPopulation)
		if err := cfg.Check(0); err != nil {
			return nil, err
		}
		pcg := rand.NewPCG(seed, seed^0x65766f6c) // "evol"
		return &SpaceEvolution{space: space, cfg: cfg, pcg: pcg, rng: rand.New(pcg)}, nil
	}
}

// validChoices returns the valid choices of step given prev.
func validChoices(space Space, step int, prev []int) []int {
	valid := make([]bool, space.Types()[space.Steps()[step]].Choices)
	space.Valid(step, prev, valid)
	var out []int
	for c, ok := range valid {
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// Propose draws trial's decisions: uniform for the first Population trials
// (Epsilon 1), then a mutation of a tournament's winner.
func (a *SpaceEvolution) Propose(trial int) (Proposal, error) {
	steps := len(a.space.Steps())
	pop := a.members[max(0, len(a.members)-a.cfg.Population):]
	actions := make([]int, 0, steps)
	if trial <= a.cfg.Population || len(pop) == 0 {
		for t := range steps {
			c := validChoices(a.space, t, actions)
			actions = append(actions, c[a.rng.IntN(len(c))])
		}
		p, err := propose(a.space, actions)
		p.Epsilon = 1
		return p, err
	}
	parent := tournament(pop, a.cfg.Sample, a.rng).Actions
	for range 10 {
		at := a.rng.IntN(steps)
		others := slices.DeleteFunc(validChoices(a.space, at, parent[:at]), func(c int) bool { return c == parent[at] })
		if len(others) == 0 {
			continue
		}
		actions = append(actions[:0], parent[:at]...)
		actions = append(actions, others[a.rng.IntN(len(others))])
		for t := at + 1; t < steps; t++ {
			c := validChoices(a.space, t, actions)
			if !slices.Contains(c, parent[t]) {
				actions = append(actions, c[a.rng.IntN(len(c))])
				continue
			}
			actions = append(actions, parent[t])
		}
		return propose(a.space, actions)
	}
	return propose(a.space, slices.Clone(parent))
}

// Observe adds the trial's decisions and reward to the population.
func (a *SpaceEvolution) Observe(_ int, p Proposal, reward float64) (Learned, error) {
	if err := CheckActions(a.space, p.Actions); err != nil {
		return Learned{}, err
	}
	a.members = append(a.members, member{Arch: p.Genotype.Key(), Actions: slices.Clone(p.Actions), Reward: reward})
	return Learned{}, nil
}

// Forget does nothing: a failed trial does not join the population.
func (a *SpaceEvolution) Forget(int, Proposal) error { return nil }

// spaceEvolutionState is a SpaceEvolution's saved state.
type spaceEvolutionState struct {
	Members []member `json:"members"`
	RNG     []byte   `json:"rng"`
}

// Save writes the observations and the random source's state.
func (a *SpaceEvolution) Save(w io.Writer) error {
	rng, err := a.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(spaceEvolutionState{Members: a.members, RNG: rng})
}

// Load replaces the agent's state with a saved one.
func (a *SpaceEvolution) Load(r io.Reader) error {
	var s spaceEvolutionState
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("evolution state: %w", err)
	}
	if err := a.pcg.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("evolution state: %w", err)
	}
	a.members = s.Members
	return nil
}
