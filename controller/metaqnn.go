package controller

import (
	"encoding/json"
	"fmt"
	"io"
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
//
// Trial i is drawn at the epsilon of the schedule's i-th model (the last
// phase's after its end) from a random stream of its own (stream 0 of the
// seed and i), and its replay after learning draws from stream 1: a trial's
// proposal depends only on the seed and on what the table has learned.
type MetaQNN struct {
	Space genotype.Space
	Input genotype.Input
	Table *QTable
	// Random makes the agent the random-search baseline of the same space:
	// every trial is drawn at epsilon 1 (each layer uniformly among the
	// valid ones) and nothing is learnt; with QConfig.Redraw it samples
	// without repeats, as the agent does.
	Random   bool
	schedule EpsilonSchedule
	seed     uint64
}

// NewMetaQNN returns an agent with an empty Q-table for space at input in,
// exploring along schedule, whose random choices derive from seed.
func NewMetaQNN(space genotype.Space, in genotype.Input, cfg QConfig, schedule EpsilonSchedule, seed uint64) (*MetaQNN, error) {
	if err := space.Verify(); err != nil {
		return nil, fmt.Errorf("search space %s: %w", space.Name, err)
	}
	if in.Height < 1 || in.Width < 1 || in.Channels < 1 {
		return nil, fmt.Errorf("input %s: every dimension must be at least 1", in)
	}
	if err := schedule.Check(); err != nil {
		return nil, err
	}
	return &MetaQNN{Space: space, Input: in, Table: NewQTable(cfg), schedule: slices.Clone(schedule), seed: seed}, nil
}

// TrialRand returns random stream k of trial under seed: MetaQNN samples
// trial's architecture from stream 0 and replays from stream 1; the search
// engine seeds the trial's training from stream 2.
func TrialRand(seed uint64, trial int, k uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(trial)<<2|k))
}

// stateKey names a state of the Q-table.
func (m *MetaQNN) stateKey(st genotype.State, last genotype.Layer) string {
	prev := "start"
	if st.Depth > 0 || st.Done {
		prev = last.String()
	}
	return prev + " d" + strconv.Itoa(st.Depth) + " r" + strconv.Itoa(m.Space.Bin(st.Size())) + " fc" + strconv.Itoa(st.FCs)
}

// Propose draws trial's architecture at the schedule's epsilon; with
// QConfig.Redraw, again from the same stream while it repeats one of the
// replay memory.
func (m *MetaQNN) Propose(trial int) (Proposal, error) {
	eps := m.schedule.Epsilon(trial - 1)
	if m.Random {
		eps = 1
	}
	rng := TrialRand(m.seed, trial, 0)
	type drawn struct {
		arch   genotype.Arch
		random int
	}
	d := drawNew(m.Table.cfg.Redraw, m.Table.seen, func() (drawn, string) {
		a, traj, random := m.sample(eps, rng)
		return drawn{a, random}, trajectoryKey(traj)
	})
	return Proposal{Genotype: d.arch, Epsilon: eps, Greedy: d.random == 0}, nil
}

// Observe learns trial's reward and replays the memory.
func (m *MetaQNN) Observe(trial int, p Proposal, reward float64) (Learned, error) {
	arch, ok := p.Genotype.(genotype.Arch)
	if !ok {
		return Learned{}, fmt.Errorf("MetaQNN observes layer sequences, not %T", p.Genotype)
	}
	if m.Random && m.Table.cfg.Redraw == 0 {
		return Learned{}, nil
	}
	traj, err := m.Trajectory(arch)
	if err != nil {
		return Learned{}, err
	}
	if m.Random {
		// Nothing is learnt; the memory only lets Redraw skip repeats.
		m.Table.Memory = append(m.Table.Memory, Experience{Trajectory: traj, Reward: reward})
		return Learned{}, nil
	}
	m.Table.Remember(traj, reward, TrialRand(m.seed, trial, 1))
	return Learned{}, nil
}

// Forget does nothing: MetaQNN keeps no outstanding proposals.
func (m *MetaQNN) Forget(int, Proposal) error { return nil }

// metaqnnState is MetaQNN's saved state: its table and replay memory (the
// space, input, schedule and seed come from the run's settings).
type metaqnnState struct {
	Q      map[string]map[string]float64 `json:"q"`
	Memory []Experience                  `json:"memory"`
}

// Save writes the Q-table and the replay memory as JSON (floats exactly).
func (m *MetaQNN) Save(w io.Writer) error {
	return json.NewEncoder(w).Encode(metaqnnState{Q: m.Table.Q, Memory: m.Table.Memory})
}

// Load replaces the agent's table and memory with saved ones.
func (m *MetaQNN) Load(r io.Reader) error {
	var s metaqnnState
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("MetaQNN state: %w", err)
	}
	if s.Q == nil {
		s.Q = map[string]map[string]float64{}
	}
	m.Table.Q, m.Table.Memory = s.Q, s.Memory
	return nil
}

// Sample builds an architecture at exploration rate eps and returns it with
// its trajectory.
func (m *MetaQNN) Sample(eps float64, rng *rand.Rand) (genotype.Arch, []Transition) {
	arch, traj, _ := m.sample(eps, rng)
	return arch, traj
}

// sample is Sample, and counts the layers drawn at random.
func (m *MetaQNN) sample(eps float64, rng *rand.Rand) (genotype.Arch, []Transition, int) {
	st := m.Space.Start(m.Input)
	var arch genotype.Arch
	var traj []Transition
	random := 0
	key, layers := m.stateKey(st, genotype.Layer{}), m.Space.Actions(st)
	names := layerNames(layers)
	for !st.Done {
		a, r := m.Table.draw(key, names, eps, rng)
		if r {
			random++
		}
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
	return arch, traj, random
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
