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
	// outstanding names the trials proposed and neither observed nor
	// forgotten, oldest first; a layer sequence's trajectoryKey is its
	// String. With QConfig.NextBest they count as tried.
	outstanding []string
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

// Propose draws trial's architecture at the schedule's epsilon. While it
// repeats a network of the replay memory: a greedy draw (no layer drawn at
// random) gives way, with QConfig.NextBest, to an untried network found in
// the table's order (nextBest); any other draw, or a greedy one when that
// search found none, is drawn again from the same stream, up to
// QConfig.Redraw times. With NextBest, the networks proposed and not yet
// learned count as tried.
func (m *MetaQNN) Propose(trial int) (Proposal, error) {
	eps := m.schedule.Epsilon(trial - 1)
	if m.Random {
		eps = 1
	}
	rng := TrialRand(m.seed, trial, 0)
	w := m.sample(eps, rng)
	cfg := m.Table.cfg
	next := m.tracks()
	if cfg.Redraw > 0 || next {
		seen := m.Table.seen()
		for _, k := range m.outstanding {
			seen[k] = true
		}
		for i := 0; seen[trajectoryKey(w.traj)]; i++ {
			if next && w.random == 0 {
				nb, ok := m.nextBest(w, seen, rng, cfg.NextBest)
				if ok {
					w = nb
					break
				}
				next = false // one search per proposal: it has checked NextBest networks
			}
			if i == cfg.Redraw {
				break
			}
			w = m.sample(eps, rng)
		}
	}
	if m.tracks() {
		m.outstanding = append(m.outstanding, w.arch.String())
	}
	return Proposal{Genotype: w.arch, Epsilon: eps, Greedy: w.random == 0}, nil
}

// tracks reports whether the agent keeps its outstanding proposals: with
// QConfig.NextBest, which counts them as tried.
func (m *MetaQNN) tracks() bool { return m.Table.cfg.NextBest > 0 && !m.Random }

// settle drops the oldest outstanding proposal, now observed or forgotten
// as arch.
func (m *MetaQNN) settle(arch genotype.Arch) error {
	if !m.tracks() {
		return nil
	}
	if len(m.outstanding) == 0 || m.outstanding[0] != arch.String() {
		return fmt.Errorf("MetaQNN: %s is not its oldest outstanding proposal (the engine learns trials in the order proposed)", arch)
	}
	m.outstanding = m.outstanding[1:]
	return nil
}

// Observe learns trial's reward and replays the memory.
func (m *MetaQNN) Observe(trial int, p Proposal, reward float64) (Learned, error) {
	arch, ok := p.Genotype.(genotype.Arch)
	if !ok {
		return Learned{}, fmt.Errorf("MetaQNN observes layer sequences, not %T", p.Genotype)
	}
	if err := m.settle(arch); err != nil {
		return Learned{}, err
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

// Forget drops the oldest outstanding proposal; nothing is learnt.
func (m *MetaQNN) Forget(_ int, p Proposal) error {
	arch, ok := p.Genotype.(genotype.Arch)
	if !ok {
		return fmt.Errorf("MetaQNN forgets layer sequences, not %T", p.Genotype)
	}
	return m.settle(arch)
}

// metaqnnState is MetaQNN's saved state: its table, replay memory and
// outstanding proposals (the space, input, schedule and seed come from the
// run's settings).
type metaqnnState struct {
	Q           map[string]map[string]float64 `json:"q"`
	Memory      []Experience                  `json:"memory"`
	Outstanding []string                      `json:"outstanding,omitempty"`
}

// Save writes the Q-table, the replay memory and the outstanding proposals
// as JSON (floats exactly).
func (m *MetaQNN) Save(w io.Writer) error {
	return json.NewEncoder(w).Encode(metaqnnState{Q: m.Table.Q, Memory: m.Table.Memory, Outstanding: m.outstanding})
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
	m.Table.Q, m.Table.Memory, m.outstanding = s.Q, s.Memory, s.Outstanding
	return nil
}

// Sample builds an architecture at exploration rate eps and returns it with
// its trajectory.
func (m *MetaQNN) Sample(eps float64, rng *rand.Rand) (genotype.Arch, []Transition) {
	w := m.sample(eps, rng)
	return w.arch, w.traj
}

// sample is Sample, and counts the layers drawn at random.
func (m *MetaQNN) sample(eps float64, rng *rand.Rand) walked {
	return m.walk(func(_ int, s string, names []string) (string, bool) { return m.Table.draw(s, names, eps, rng) })
}

// walked is a layer sequence built by walk: its layers, their transitions,
// and how many layers were drawn at random.
type walked struct {
	arch   genotype.Arch
	traj   []Transition
	random int
}

// walk builds a layer sequence from the start state: in step i, in state s
// with valid actions names, it takes the action pick returns, which reports
// whether it was drawn at random.
func (m *MetaQNN) walk(pick func(i int, s string, names []string) (string, bool)) walked {
	st := m.Space.Start(m.Input)
	var w walked
	key, layers := m.stateKey(st, genotype.Layer{}), m.Space.Actions(st)
	names := layerNames(layers)
	for i := 0; !st.Done; i++ {
		a, r := pick(i, key, names)
		l := layers[slices.Index(names, a)]
		w.arch = append(w.arch, l)
		if r {
			w.random++
		}
		st = m.Space.Step(st, l)
		t := Transition{State: key, Action: a, Terminal: st.Done}
		if !st.Done {
			key, layers = m.stateKey(st, l), m.Space.Actions(st)
			names = layerNames(layers)
			t.Next, t.NextActions = key, names
		}
		w.traj = append(w.traj, t)
	}
	return w
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
