package search

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

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
		if prob != nil {
			return nasnetMethod{cfg: cfg, space: prob.Space, rewards: prob.Title}, nil
		}
		cs := cfg.Cells
		return nasnetMethod{cfg: cfg, space: controller.CellNetSpace{CellSpace: controller.CellSpace{B: cs.Blocks}, Macro: cs.CellMacro},
			rewards: fmt.Sprintf("%s of cell networks %s (B = %d) trained on the data", cfg.DescribeReward(), cs.CellMacro, cs.Blocks)}, nil
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
	a, err := controller.NewMetaQNN(q.Space.Space, m.input, q.QLearning, q.Schedule.EpsilonSchedule, m.cfg.Seed)
	if err == nil {
		a.Random = q.Agent == AgentRandom
	}
	return a, err
}

// loader is an agent that restores its saved state.
type loader interface {
	controller.Agent
	Load(r io.Reader) error
}

func (m metaqnnMethod) newAgent() (controller.Agent, error) { return m.searcher() }

// searcher returns the configured agent: MetaQNN (Q-learning or random) or
// evolution.
func (m metaqnnMethod) searcher() (loader, error) {
	q := m.cfg.MetaQNN
	if q.Agent == AgentEvolution {
		return controller.NewEvolution(q.Space.Space, m.input, q.Evolution, q.QLearning, q.Schedule.EpsilonSchedule, m.cfg.Seed)
	}
	return m.agent()
}

func (m metaqnnMethod) loadAgent(r io.Reader) (controller.Agent, error) {
	a, err := m.searcher()
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
	redraw := ""
	if q.QLearning.Redraw > 0 {
		redraw = fmt.Sprintf(", repeats drawn again up to %d times", q.QLearning.Redraw)
	}
	if q.Agent == AgentEvolution {
		return fmt.Sprintf("regularized evolution (population %d, tournaments of %d; the first %d trials drawn as random search%s) over the %s space; reward: %s",
			q.Evolution.Population, q.Evolution.Sample, q.Evolution.Population, redraw, q.Space.Name, m.cfg.DescribeReward())
	}
	if q.Agent == AgentRandom {
		return fmt.Sprintf("random search (every layer uniform among the valid ones, the MetaQNN agent at epsilon 1 throughout%s) over the %s space; reward: %s",
			redraw, q.Space.Name, m.cfg.DescribeReward())
	}
	if q.QLearning.NextBest > 0 {
		redraw = fmt.Sprintf(", a greedy draw that repeats replaced by the next best untried network (up to %d checked)", q.QLearning.NextBest) + redraw
	}
	learn := fmt.Sprintf("alpha %g", q.QLearning.Alpha) + redraw
	if q.QLearning.Target == controller.TargetReturn {
		learn = "every step learns the reward, " + learn
	}
	replay := fmt.Sprintf("replay %d", q.QLearning.Replay)
	if q.QLearning.Replay < 0 {
		replay = "no replay"
	}
	if q.QLearning.Target == controller.TargetMean {
		learn, replay = "every step worth the mean reward of the networks that took it"+redraw, "no replay"
	}
	return fmt.Sprintf("MetaQNN Q-learning (%s, %s) over the %s space, %d-phase epsilon schedule; reward: %s",
		learn, replay, q.Space.Name, len(q.Schedule.EpsilonSchedule), m.cfg.DescribeReward())
}

func (m metaqnnMethod) sampler(rng *rand.Rand) (func() genotype.Genotype, error) {
	a, err := m.agent()
	if err != nil {
		return nil, err
	}
	return func() genotype.Genotype { arch, _ := a.Sample(1, rng); return arch }, nil
}

// nasnetMethod is the REINFORCE controller over a problem's space, or over
// the cell networks a trained search builds.
type nasnetMethod struct {
	cfg     Config
	space   controller.Space
	rewards string // what rewards the controller, for reports
}

func (m nasnetMethod) newAgent() (controller.Agent, error) {
	switch m.cfg.NASNet.Agent {
	case AgentRandom:
		return controller.NewRandomAgent(m.space, m.cfg.Seed)
	case AgentEvolution:
		return controller.EvolutionFactory(m.cfg.NASNet.Evolution)(m.space, m.cfg.Seed)
	}
	return controller.NewReinforce(m.space, m.cfg.Reinforce.Controller.Config(), m.cfg.Seed)
}

func (m nasnetMethod) loadAgent(r io.Reader) (controller.Agent, error) {
	switch m.cfg.NASNet.Agent {
	case AgentRandom:
		return controller.LoadRandomAgent(r, m.space)
	case AgentEvolution:
		a, err := m.newAgent()
		if err != nil {
			return nil, err
		}
		return a, a.(loader).Load(r)
	}
	a, err := controller.LoadReinforce(r, m.space)
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
	d, ok := m.space.(controller.Decoder)
	if !ok {
		return controller.Decisions(c.Actions), nil
	}
	return d.Decode(c.Actions)
}

func (m nasnetMethod) describe() string {
	switch n := m.cfg.NASNet; n.Agent {
	case AgentRandom:
		return "random search (every decision uniform among the valid ones, nothing learnt); reward: " + m.rewards
	case AgentEvolution:
		return fmt.Sprintf("regularized evolution (population %d, tournaments of %d; the first %d trials drawn at random, then one decision changed per trial); reward: %s",
			n.Evolution.Population, n.Evolution.Sample, n.Evolution.Population, m.rewards)
	}
	c := m.cfg.Reinforce.Controller.Config().WithDefaults()
	preset, sep := m.cfg.Reinforce.Preset, ","
	// A controller flag or an edited config changes the preset's settings,
	// which the line would otherwise hide.
	if p, err := controller.ReinforcePreset(preset); err == nil {
		shown := []string{"layers", "hidden", "baseline"} // in the line anyway
		if c.Embedding == c.Hidden {
			shown = append(shown, "embedding") // its default, from hidden
		}
		if about := controller.ReinforcePresetAbout(preset); about != "" {
			preset, sep = preset+", "+about, ";"
		}
		if changed := ControllerOf(c).changedFrom(ControllerOf(p.WithDefaults()), shown...); len(changed) > 0 {
			if sep == ";" {
				preset += ","
			}
			preset, sep = preset+" with "+strings.Join(changed, ", "), ";"
		}
	}
	return fmt.Sprintf("REINFORCE controller (preset %s%s LSTM %d x %d, baseline %s); reward: %s",
		preset, sep, c.Layers, c.Hidden, c.Baseline, m.rewards)
}

// sampler draws the space's candidates uniformly among the valid action
// vectors.
func (m nasnetMethod) sampler(rng *rand.Rand) (func() genotype.Genotype, error) {
	d, ok := m.space.(controller.Decoder)
	if !ok {
		return nil, fmt.Errorf("the %T space does not decode into networks", m.space)
	}
	steps, types := m.space.Steps(), m.space.Types()
	return func() genotype.Genotype {
		actions := make([]int, len(steps))
		for i, st := range steps {
			valid := make([]bool, types[st].Choices)
			m.space.Valid(i, actions[:i], valid)
			var choices []int
			for c, ok := range valid {
				if ok {
					choices = append(choices, c)
				}
			}
			actions[i] = choices[rng.IntN(len(choices))]
		}
		g, err := d.Decode(actions)
		if err != nil {
			panic(fmt.Sprintf("decoding valid actions %v: %v", actions, err)) // a space and its decoder disagree
		}
		return g
	}, nil
}

// sampler draws candidates of a method's space (the latency model
// calibrates on them).
type sampler interface {
	sampler(rng *rand.Rand) (func() genotype.Genotype, error)
}

var (
	_ sampler = metaqnnMethod{}
	_ sampler = nasnetMethod{}
)
