package controller

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// ReinforceConfig configures a Reinforce. The zero value of every field means the
// documented default; the defaults are Zoph & Le's (2017) network and
// optimizer with the study's temperature schedule and an EMA baseline.
type ReinforceConfig struct {
	// Hidden is the number of LSTM units per layer; 0 means 35 (Zoph & Le 2017).
	Hidden int
	// Layers is the number of LSTM layers; 0 means 2 (Zoph & Le 2017).
	Layers int
	// Embedding is the size of the decision embeddings; 0 means Hidden.
	Embedding int
	// InitScale: weights start uniform in [-InitScale, InitScale]; 0 means
	// 0.08 (Zoph & Le 2017).
	InitScale float64

	// LearningRate is Adam's step size; 0 means 6e-4 (Zoph & Le 2017).
	LearningRate float64
	// Beta1, Beta2 and Epsilon are Adam's; 0 means 0.9, 0.999 and 1e-8.
	Beta1, Beta2, Epsilon float64
	// BatchSize is the number of architectures per update; 0 means 1.
	BatchSize int
	// ClipNorm bounds the global norm of the gradient; 0 means no clipping
	// (the study: 0.3).
	ClipNorm float64
	// EntropyWeight is the weight of an entropy bonus added to the objective;
	// 0 means none.
	EntropyWeight float64

	// Baseline selects the baseline; the zero value is BaselineEMA.
	Baseline BaselineKind
	// BaselineDecay is the EMA's decay d; 0 means 0.95.
	BaselineDecay float64
	// SkipBelow leaves out of an update every episode whose |R - b| is below
	// it, and skips an update left with no episode; 0 means none (the study:
	// 0.05).
	SkipBelow float64

	// Temperature is the softmax temperature of the first episode (logits are
	// divided by it before sampling); 0 means 5.0 (the study).
	Temperature float64
	// TemperatureDecay multiplies the temperature after every episode; 0
	// means 0.995 (the study).
	TemperatureDecay float64
	// MinTemperature is the temperature's floor; 0 means 1.0 (the study).
	MinTemperature float64
	// UntemperedLoss makes the loss use the untempered log-probabilities, as
	// the study's code does, instead of those of the distribution the
	// episode was sampled from (the default, the on-policy gradient).
	UntemperedLoss bool
}

// ReinforceStudy is the founding study's controller (docs/study.md, section 5): its
// baseline rule with updates skipped when |R - b| < 0.05, gradients clipped to
// norm 0.3, one architecture per update, temperature 5.0 x 0.995 per episode
// down to 1.0 for sampling only.
var ReinforceStudy = ReinforceConfig{
	Baseline:       BaselineStudy,
	SkipBelow:      0.05,
	ClipNorm:       0.3,
	UntemperedLoss: true,
}

// ReinforceNATSBench is the default configuration tuned for the NATS-Bench
// table reward (6 decisions of 5 choices, reward = accuracy / 100, budgets of
// a few hundred queries): Adam's learning rate raised from 6e-4 to 2e-3 and an
// entropy bonus of 1e-3 (figures: docs/performance.md, "Controller presets").
var ReinforceNATSBench = ReinforceConfig{LearningRate: 2e-3, EntropyWeight: 1e-3}

var reinforcePresets = []struct {
	name, about string
	cfg         ReinforceConfig
}{
	{"paper", "", ReinforceConfig{}},
	{"study", "", ReinforceStudy},
	// Its name says where it was tuned, which reads as a mistake on a
	// search that trains its cells (the NASNet cpu preset's): the about
	// says what it is for.
	{"natsbench", "small-budget settings tuned on the NATS-Bench table", ReinforceNATSBench},
}

// ReinforcePresetAbout says in a few words what the named preset is for,
// when its name does not; "" otherwise.
func ReinforcePresetAbout(name string) string {
	for _, p := range reinforcePresets {
		if p.name == name {
			return p.about
		}
	}
	return ""
}

// ReinforcePresetNames returns the names ReinforcePreset knows.
func ReinforcePresetNames() []string {
	var names []string
	for _, p := range reinforcePresets {
		names = append(names, p.name)
	}
	return names
}

// ReinforcePreset returns a named configuration: "paper" (the zero ReinforceConfig,
// Zoph & Le 2017 with the study's temperature schedule and an EMA baseline),
// "study" (ReinforceStudy) or "natsbench" (ReinforceNATSBench). Its error lists the
// valid names.
func ReinforcePreset(name string) (ReinforceConfig, error) {
	for _, p := range reinforcePresets {
		if p.name == name {
			return p.cfg, nil
		}
	}
	return ReinforceConfig{}, fmt.Errorf("unknown controller preset %q (valid: %s)", name, strings.Join(ReinforcePresetNames(), ", "))
}

// WithDefaults returns c with every zero field replaced by its default, as
// the controller runs it.
func (c ReinforceConfig) WithDefaults() ReinforceConfig { return c.withDefaults() }

// withDefaults returns c with every zero field replaced by its default.
func (c ReinforceConfig) withDefaults() ReinforceConfig {
	c.Hidden = cmp.Or(c.Hidden, 35)
	c.Layers = cmp.Or(c.Layers, 2)
	c.Embedding = cmp.Or(c.Embedding, c.Hidden)
	c.BatchSize = cmp.Or(c.BatchSize, 1)
	c.InitScale = cmp.Or(c.InitScale, 0.08)
	c.LearningRate = cmp.Or(c.LearningRate, 6e-4)
	c.Beta1 = cmp.Or(c.Beta1, 0.9)
	c.Beta2 = cmp.Or(c.Beta2, 0.999)
	c.Epsilon = cmp.Or(c.Epsilon, 1e-8)
	c.BaselineDecay = cmp.Or(c.BaselineDecay, 0.95)
	c.Temperature = cmp.Or(c.Temperature, 5.0)
	c.TemperatureDecay = cmp.Or(c.TemperatureDecay, 0.995)
	c.MinTemperature = cmp.Or(c.MinTemperature, 1.0)
	return c
}

// Validate returns every problem of c (after defaults), or nil.
func (c ReinforceConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Hidden < 1 || c.Layers < 1 || c.Embedding < 1 || c.BatchSize < 1 {
		bad("hidden %d, layers %d, embedding %d and batch %d must be positive", c.Hidden, c.Layers, c.Embedding, c.BatchSize)
	}
	if !(c.LearningRate > 0) || !(c.InitScale > 0) || !(c.Epsilon > 0) {
		bad("learning rate %g, init scale %g and epsilon %g must be positive", c.LearningRate, c.InitScale, c.Epsilon)
	}
	if !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1) {
		bad("Adam betas %g, %g must be in [0, 1)", c.Beta1, c.Beta2)
	}
	if !(c.BaselineDecay >= 0 && c.BaselineDecay < 1) {
		bad("baseline decay %g must be in [0, 1)", c.BaselineDecay)
	}
	if c.Baseline > BaselineStudy {
		bad("unknown baseline %v", c.Baseline)
	}
	if c.ClipNorm < 0 || c.EntropyWeight < 0 || c.SkipBelow < 0 {
		bad("clip norm %g, entropy weight %g and skip threshold %g must not be negative", c.ClipNorm, c.EntropyWeight, c.SkipBelow)
	}
	if !(c.Temperature > 0) || !(c.MinTemperature > 0) || !(c.TemperatureDecay > 0) {
		bad("temperature %g, its decay %g and its floor %g must be positive", c.Temperature, c.TemperatureDecay, c.MinTemperature)
	}
	if c.TemperatureDecay > 1 {
		bad("temperature decay %g: want at most 1 (a factor above 1 raises the temperature without limit)", c.TemperatureDecay)
	}
	if c.Temperature < c.MinTemperature {
		bad("temperature %g is below its floor %g: lower the floor too (--min-temperature, or min_temperature in a config)", c.Temperature, c.MinTemperature)
	}
	if len(errs) > 0 {
		return fmt.Errorf("controller config: %w", errors.Join(errs...))
	}
	return nil
}

// Reinforce is the REINFORCE agent: an LSTM policy over a Space, trained with
// a baseline, Adam, an annealed softmax temperature and an optional entropy
// bonus, one update per BatchSize observed episodes. It implements Agent.
//
// Propose samples the next episode's architecture; Observe (or Forget) takes
// the rewards of proposed architectures in the order they were proposed. A
// Reinforce is not safe for concurrent use; distinct agents are
// independent. It holds no native memory.
type Reinforce struct {
	space Space
	cfg   ReinforceConfig // with defaults

	pol   *policy
	samp  *sampler
	graph *trainGraph
	opt   *adam
	base  baseline
	grads [][]float64

	pcg         *rand.PCG
	rng         *rand.Rand
	episode     int     // episodes proposed
	temperature float64 // of the next episode

	pending []pending // proposed, not yet observed
	batch   []observed
	updates int
	last    Update
}

type pending struct {
	Actions     []int
	Temperature float64
}

type observed struct {
	Actions     []int
	Temperature float64
	Reward      float64
}

// Update describes one policy update.
type Update struct {
	// Index counts updates from 0, skipped ones included.
	Index int `json:"index"`
	// Baseline is the baseline the batch's advantages were measured against.
	Baseline float64 `json:"baseline"`
	// Kept is the number of episodes the update used; 0 means it was skipped.
	Kept int `json:"kept"`
	// Loss is the REINFORCE loss (entropy bonus included) before the step.
	Loss float64 `json:"loss,omitempty"`
	// GradNorm is the gradient's global norm before clipping.
	GradNorm float64 `json:"grad_norm,omitempty"`
}

// NewReinforce returns a controller for space with fresh weights; every random
// choice it makes, initial weights included, derives from seed.
func NewReinforce(space Space, cfg ReinforceConfig, seed uint64) (*Reinforce, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pcg := rand.NewPCG(seed, seed^0x6e617363746c) // "nasctl"
	rng := rand.New(pcg)
	pol, err := newPolicy(space, cfg.Hidden, cfg.Layers, cfg.Embedding, cfg.InitScale, rng)
	if err != nil {
		return nil, err
	}
	c := &Reinforce{
		space: space, cfg: cfg, pol: pol, pcg: pcg, rng: rng,
		temperature: cfg.Temperature,
		base:        baseline{Kind: cfg.Baseline, Decay: cfg.BaselineDecay},
	}
	if err := c.build(); err != nil {
		return nil, err
	}
	return c, nil
}

// build makes the parts that derive from the policy and the config.
func (c *Reinforce) build() error {
	c.samp = newSampler(c.pol)
	g, err := newTrainGraph(c.pol, c.cfg.BatchSize, c.cfg.EntropyWeight > 0)
	if err != nil {
		return err
	}
	c.graph = g
	if c.opt == nil {
		c.opt = newAdam(c.pol, c.cfg.LearningRate, c.cfg.Beta1, c.cfg.Beta2, c.cfg.Epsilon)
	}
	c.grads = make([][]float64, len(c.pol.params))
	for i, q := range c.pol.params {
		c.grads[i] = make([]float64, len(q.data))
	}
	return nil
}

// ReinforceFactory returns a factory of Reinforce agents with cfg.
func ReinforceFactory(cfg ReinforceConfig) AgentFactory {
	return func(space Space, seed uint64) (Agent, error) { return NewReinforce(space, cfg, seed) }
}

// Config returns the configuration with defaults filled in.
func (c *Reinforce) Config() ReinforceConfig { return c.cfg }

// Space returns the controller's search space.
func (c *Reinforce) Space() Space { return c.space }

// Episode returns the number of episodes proposed so far.
func (c *Reinforce) Episode() int { return c.episode }

// Temperature returns the temperature the next episode will be sampled at.
func (c *Reinforce) Temperature() float64 { return c.temperature }

// NumParams returns the number of weights of the policy.
func (c *Reinforce) NumParams() int { return c.pol.numParams() }

// LastUpdate returns the most recent update (zero before the first).
func (c *Reinforce) LastUpdate() Update { return c.last }

// Propose samples the next architecture at the current temperature, then
// anneals the temperature.
func (c *Reinforce) Propose(int) (Proposal, error) {
	actions, _, err := c.samp.episode(c.space, c.temperature, c.rng)
	if err != nil {
		return Proposal{}, err
	}
	p, err := propose(c.space, slices.Clone(actions))
	if err != nil {
		return Proposal{}, err
	}
	p.Temperature = c.temperature
	c.pending = append(c.pending, pending{Actions: actions, Temperature: c.temperature})
	c.episode++
	c.temperature = max(c.cfg.MinTemperature, c.temperature*c.cfg.TemperatureDecay)
	return p, nil
}

// Observe takes the reward of the oldest proposed, not yet observed
// architecture, which must be p, and updates the policy when it completes a
// batch.
func (c *Reinforce) Observe(_ int, p Proposal, reward float64) (Learned, error) {
	if math.IsNaN(reward) || math.IsInf(reward, 0) {
		return Learned{}, fmt.Errorf("controller: reward %v for %v is not a finite number", reward, p.Actions)
	}
	o, err := c.takePending(p.Actions)
	if err != nil {
		return Learned{}, err
	}
	c.batch = append(c.batch, observed{Actions: o.Actions, Temperature: o.Temperature, Reward: reward})
	l := Learned{Baseline: c.base.value(c.batch[0].Reward)}
	if len(c.batch) == c.cfg.BatchSize {
		u, err := c.update()
		if err != nil {
			return l, err
		}
		l.Update = &u
	}
	return l, nil
}

// Forget drops the oldest proposed architecture, which must be p, without
// a reward.
func (c *Reinforce) Forget(_ int, p Proposal) error {
	_, err := c.takePending(p.Actions)
	return err
}

// takePending removes the oldest outstanding proposal, which must be actions.
func (c *Reinforce) takePending(actions []int) (pending, error) {
	if len(c.pending) == 0 {
		return pending{}, errors.New("controller: reward observed for an architecture that was not proposed")
	}
	if !slices.Equal(c.pending[0].Actions, actions) {
		return pending{}, fmt.Errorf("controller: reward observed for %v, but the oldest proposal waiting for its reward is %v", actions, c.pending[0].Actions)
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	return p, nil
}

// update runs one REINFORCE step on the full batch, then feeds the batch's
// rewards to the baseline.
func (c *Reinforce) update() (Update, error) {
	b := c.base.value(c.batch[0].Reward)
	u := Update{Index: c.updates, Baseline: b}
	var kept []int
	for i, o := range c.batch {
		if c.cfg.SkipBelow == 0 || math.Abs(o.Reward-b) >= c.cfg.SkipBelow {
			kept = append(kept, i)
		}
	}
	u.Kept = len(kept)
	if len(kept) > 0 {
		items := make([]batchItem, len(c.batch))
		for i, o := range c.batch {
			temp := o.Temperature
			if c.cfg.UntemperedLoss {
				temp = 1
			}
			items[i] = batchItem{actions: o.Actions, temp: temp}
		}
		for _, i := range kept {
			items[i].w = (c.batch[i].Reward - b) / float64(len(kept))
			items[i].v = c.cfg.EntropyWeight / float64(len(kept))
		}
		c.graph.set(c.space, items)
		loss, err := c.graph.run(c.grads)
		if err != nil {
			return u, err
		}
		u.Loss = loss
		u.GradNorm = clipNorm(c.grads, c.cfg.ClipNorm)
		c.opt.update(c.pol, c.grads)
	}
	for _, o := range c.batch {
		c.base.observe(o.Reward)
	}
	c.batch = c.batch[:0]
	c.updates++
	c.last = u
	return u, nil
}
