package search

import (
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/search/rundir"
)

// method is what the engine needs to know of a kind of search: how to make
// and restore its agent and how to rebuild a recorded candidate.
type method interface {
	// newAgent returns a fresh agent.
	newAgent() (controller.Agent, error)
	// loadAgent restores an agent saved by the run.
	loadAgent(r io.Reader) (controller.Agent, error)
	// genotype rebuilds the genotype of a recorded candidate.
	genotype(c rundir.Candidate) (genotype.Genotype, error)
	// describe names the agent and what rewards it, for reports.
	describe() string
}

// newMethod returns the method of cfg (WithDefaults and checked), whose
// trials are evaluated on data (trained searches) or scored by prob.
func newMethod(cfg Config, data Data, prob *problem.Problem) (method, error) {
	switch cfg.Kind {
	case KindMetaQNN:
		return metaqnnMethod{cfg: cfg, input: data.Input}, nil
	case KindNASNet:
		if prob == nil {
			return nil, fmt.Errorf("a nasnet search needs a problem (%v)", problem.Names)
		}
		return nasnetMethod{cfg: cfg, prob: prob}, nil
	}
	return nil, fmt.Errorf("unknown search kind %q", cfg.Kind)
}

// metaqnnMethod is MetaQNN over the configured layer space.
type metaqnnMethod struct {
	cfg   Config
	input genotype.Input
}

func (m metaqnnMethod) agent() (*controller.MetaQNN, error) {
	q := m.cfg.MetaQNN
	return controller.NewMetaQNN(q.Space.Space, m.input, q.QLearning, q.Schedule.EpsilonSchedule, m.cfg.Seed)
}

func (m metaqnnMethod) newAgent() (controller.Agent, error) { return m.agent() }

func (m metaqnnMethod) loadAgent(r io.Reader) (controller.Agent, error) {
	a, err := m.agent()
	if err != nil {
		return nil, err
	}
	return a, a.Load(r)
}

func (m metaqnnMethod) genotype(c rundir.Candidate) (genotype.Genotype, error) {
	return genotype.Parse(c.Arch)
}

func (m metaqnnMethod) describe() string {
	q := m.cfg.MetaQNN
	return fmt.Sprintf("MetaQNN Q-learning (alpha %g, replay %d) over the %s space, %d-phase epsilon schedule; reward: %s",
		q.QLearning.Alpha, q.QLearning.Replay, q.Space.Name, len(q.Schedule.EpsilonSchedule), m.cfg.Reward.describe())
}

// sampler draws architectures of the space at epsilon 1 (the latency model
// calibrates on them).
func (m metaqnnMethod) sampler(rng *rand.Rand) (func() genotype.Arch, error) {
	a, err := m.agent()
	if err != nil {
		return nil, err
	}
	return func() genotype.Arch { arch, _ := a.Sample(1, rng); return arch }, nil
}

// nasnetMethod is the REINFORCE controller over a problem's space.
type nasnetMethod struct {
	cfg  Config
	prob *problem.Problem
}

func (m nasnetMethod) newAgent() (controller.Agent, error) {
	return controller.NewReinforce(m.prob.Space, m.cfg.Reinforce.Controller.Config(), m.cfg.Seed)
}

func (m nasnetMethod) loadAgent(r io.Reader) (controller.Agent, error) {
	a, err := controller.LoadReinforce(r, m.prob.Space)
	if err != nil {
		return nil, err
	}
	// config.yaml holds the controller's settings with its defaults filled
	// in (see New).
	if a.Config() != m.cfg.Reinforce.Controller.Config() {
		return nil, fmt.Errorf("the controller settings in %s differ from those saved in %s; a run's settings cannot change (start a new run with --config)",
			rundir.FileConfig, rundir.FileAgent)
	}
	return a, nil
}

func (m nasnetMethod) genotype(c rundir.Candidate) (genotype.Genotype, error) {
	d, ok := m.prob.Space.(controller.Decoder)
	if !ok {
		return controller.Decisions(c.Actions), nil
	}
	return d.Decode(c.Actions)
}

func (m nasnetMethod) describe() string {
	c := m.cfg.Reinforce.Controller.Config()
	return fmt.Sprintf("REINFORCE controller (preset %s, LSTM %d x %d, baseline %s); reward: %s",
		m.cfg.Reinforce.Preset, c.Layers, c.Hidden, c.Baseline, m.prob.Title)
}
