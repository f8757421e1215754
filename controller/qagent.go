package controller

import (
	"math/rand/v2"
	"strconv"
)

// QAgent is tabular Q-learning on a fixed-length decision Space (such as
// NATS-Bench's 6 edges), MetaQNN's method outside layer sequences: a state
// is the decision's position and the previous choice, an action the choice.
// Its epsilon follows a schedule over its proposals; after the schedule it
// stays at the last phase's epsilon.
type QAgent struct {
	space    Space
	table    *QTable
	schedule Schedule
	rng      *rand.Rand
	n        int
}

// QLearningFactory returns a factory of QAgents with cfg and schedule.
func QLearningFactory(cfg QConfig, schedule Schedule) AgentFactory {
	return func(space Space, seed uint64) (Agent, error) {
		if err := schedule.Check(); err != nil {
			return nil, err
		}
		return &QAgent{space: space, table: NewQTable(cfg), schedule: schedule,
			rng: rand.New(rand.NewPCG(seed, seed^0x716c6561726e))}, nil // "qlearn"
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

// Propose draws an architecture epsilon-greedily.
func (a *QAgent) Propose() ([]int, error) {
	eps, ok := a.schedule.At(a.n)
	if !ok {
		eps = a.schedule[len(a.schedule)-1].Epsilon
	}
	a.n++
	out, _ := a.trajectory(nil, func(s string, valid []string) string { return a.table.Choose(s, valid, eps, a.rng) })
	return out, nil
}

// Observe learns the reward of a proposed architecture and replays the memory.
func (a *QAgent) Observe(actions []int, reward float64) error {
	if err := CheckActions(a.space, actions); err != nil {
		return err
	}
	_, traj := a.trajectory(actions, nil)
	a.table.Remember(traj, reward, a.rng)
	return nil
}
