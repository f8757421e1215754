package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// QAgent is tabular Q-learning on a fixed-length decision Space (such as
// NATS-Bench's 6 edges), MetaQNN's method outside layer sequences: a state
// is the decision's position and the previous choice, an action the choice.
// Trial i is drawn at the schedule's epsilon of model i (after the schedule,
// the last phase's).
type QAgent struct {
	space    Space
	table    *QTable
	schedule EpsilonSchedule
	pcg      *rand.PCG
	rng      *rand.Rand
}

// QLearningFactory returns a factory of QAgents with cfg and schedule.
func QLearningFactory(cfg QConfig, schedule EpsilonSchedule) AgentFactory {
	return func(space Space, seed uint64) (Agent, error) {
		if err := schedule.Check(); err != nil {
			return nil, err
		}
		if cfg.NextBest > 0 {
			return nil, fmt.Errorf("next_best %d: only MetaQNN's layer search takes it; drop it for this agent", cfg.NextBest)
		}
		pcg := rand.NewPCG(seed, seed^0x716c6561726e) // "qlearn"
		return &QAgent{space: space, table: NewQTable(cfg), schedule: schedule, pcg: pcg, rng: rand.New(pcg)}, nil
	}
}

// trajectory walks actions through the space and returns the transitions.
func (a *QAgent) trajectory(actions []int, choose func(state string, valid []string) string) ([]int, []Transition) {
	types, steps := a.space.Types(), a.space.Steps()
	var traj []Transition
	out := make([]int, 0, len(steps))
	validNames := func(t int) []string {
		valid := make([]bool, types[steps[t]].Choices)
		a.space.Valid(t, out, valid)
		var names []string
		for c, ok := range valid {
			if ok {
				names = append(names, strconv.Itoa(c))
			}
		}
		return names
	}
	state := func(t int) string {
		prev := -1
		if t > 0 {
			prev = out[t-1]
		}
		return strconv.Itoa(t) + ":" + strconv.Itoa(prev)
	}
	names := validNames(0)
	for t := range steps {
		s := state(t)
		var c string
		if actions != nil {
			c = strconv.Itoa(actions[t])
		} else {
			c = choose(s, names)
		}
		v, _ := strconv.Atoi(c)
		out = append(out, v)
		tr := Transition{State: s, Action: c, Terminal: t == len(steps)-1}
		if !tr.Terminal {
			names = validNames(t + 1)
			tr.Next, tr.NextActions = state(t+1), names
		}
		traj = append(traj, tr)
	}
	return out, traj
}

// Propose draws trial's architecture epsilon-greedily (with QConfig.Redraw,
// again while it repeats one of the replay memory).
func (a *QAgent) Propose(trial int) (Proposal, error) {
	eps := a.schedule.Epsilon(trial - 1)
	choose := func(s string, valid []string) string { return a.table.Choose(s, valid, eps, a.rng) }
	out := drawNew(a.table.cfg.Redraw, a.table.seen, func() ([]int, string) {
		out, traj := a.trajectory(nil, choose)
		return out, trajectoryKey(traj)
	})
	p, err := propose(a.space, out)
	p.Epsilon = eps
	return p, err
}

// Observe learns the reward of a proposed architecture and replays the memory.
func (a *QAgent) Observe(_ int, p Proposal, reward float64) (Learned, error) {
	if err := CheckActions(a.space, p.Actions); err != nil {
		return Learned{}, err
	}
	_, traj := a.trajectory(p.Actions, nil)
	a.table.Remember(traj, reward, a.rng)
	return Learned{}, nil
}

// Forget does nothing: a QAgent keeps no outstanding proposals.
func (a *QAgent) Forget(int, Proposal) error { return nil }

// qagentState is a QAgent's saved state.
type qagentState struct {
	Q      map[string]map[string]float64 `json:"q"`
	Memory []Experience                  `json:"memory"`
	RNG    []byte                        `json:"rng"`
}

// Save writes the table, the memory and the random source's state.
func (a *QAgent) Save(w io.Writer) error {
	rng, err := a.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(qagentState{Q: a.table.Q, Memory: a.table.Memory, RNG: rng})
}

// Load replaces the agent's state with a saved one.
func (a *QAgent) Load(r io.Reader) error {
	var s qagentState
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("Q-learning agent state: %w", err)
	}
	if err := a.pcg.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("Q-learning agent state: %w", err)
	}
	if s.Q == nil {
		s.Q = map[string]map[string]float64{}
	}
	a.table.Q, a.table.Memory = s.Q, s.Memory
	return nil
}
