package search

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
	"go.yaml.in/yaml/v3"
)

// Kind is a search method: an agent and the genotypes it proposes.
type Kind string

// The methods.
const (
	// KindMetaQNN is Baker et al.'s Q-learning over layer sequences.
	KindMetaQNN Kind = "metaqnn"
	// KindNASNet is the REINFORCE controller over NASNet cell pairs (Zoph
	// et al. 2018, the founding study's second method).
	KindNASNet Kind = "nasnet"
)

// ParseKind parses a method name; its error lists the valid ones.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindMetaQNN, KindNASNet:
		return k, nil
	case "":
		return KindMetaQNN, nil // config.yaml of older nasctl
	}
	return "", fmt.Errorf("unknown search kind %q (valid: %s, %s)", s, KindMetaQNN, KindNASNet)
}

// Config holds every setting of a search of either kind. It is read from
// YAML, overridden by flags, and saved with the run (config.yaml) so that a
// resumed run goes on with exactly the same settings. Zero fields take the
// defaults given on them (WithDefaults); the saved file holds the effective
// values. A --config file is stricter (LoadConfig): a key it writes as 0
// where a default would replace the 0 is refused (the controller's keys,
// reinforce.*, are not checked). Keys whose 0 means something (split_seed,
// threads, budget, give_up_after, centre, the reward's limits, redraw,
// next_best) are written even at 0: a copy of config.yaml given with
// --config would otherwise take the preset's value in their place. The
// presets are values of this struct.
type Config struct {
	// Kind is the method; empty: metaqnn.
	Kind Kind `yaml:"kind"`
	// Name of the run; its directory is Dir/Name. Empty: "<kind>-<preset or
	// problem>".
	Name string `yaml:"name"`
	// Dir holds the runs. Empty: "runs".
	Dir string `yaml:"dir"`
	// Seed determines the agent's choices, the weights and the shuffling.
	Seed uint64 `yaml:"seed"`
	// Trials is the number of trials planned; zero: the epsilon schedule's
	// total (metaqnn) or 800 (nasnet, the study's episodes).
	Trials int `yaml:"trials"`

	// Problem scores the trials from a formula or a table instead of
	// training them (nasnet only); its zero value trains on Data.
	Problem ProblemSettings `yaml:"problem,omitempty"`
	// Cells shapes the cell networks a nasnet search trains.
	Cells CellSettings `yaml:"cells,omitempty"`

	// Data is the image folder the trials train on (see nasctl dataset
	// --help for layouts).
	Data string `yaml:"data,omitempty"`
	// Input resizes the images: HxWxC, or HxW keeping the images' colour
	// (gray when every image is gray, else RGB); empty: the data's own size.
	Input string `yaml:"input,omitempty"`
	// SkipBad leaves out the folder's unreadable or corrupt files (the
	// executor lists them) instead of failing on the first.
	SkipBad bool `yaml:"skip_bad,omitempty"`
	// Split is the split plan (metaqnn: 30% test, 20% of the rest
	// validation; metaqnn-stratified: the same per class) and SplitSeed its
	// shuffle seed (the presets use 1, as nasctl train and eval do by
	// default). Empty plan: metaqnn.
	Split     string `yaml:"split,omitempty"`
	SplitSeed uint64 `yaml:"split_seed"`
	// DataFraction keeps this share of the training split for the search's
	// trials (the validation and test splits are kept whole; the final phase
	// trains on the whole training split). Zero: 1.
	DataFraction float64 `yaml:"data_fraction,omitempty"`

	// MetaQNN configures the MetaQNN agent (metaqnn).
	MetaQNN MetaQNNSettings `yaml:"metaqnn,omitempty"`
	// Reinforce configures the REINFORCE controller (nasnet).
	Reinforce ReinforceSettings `yaml:"reinforce,omitempty"`
	// NASNet chooses the agent of a nasnet search.
	NASNet NASNetSettings `yaml:"nasnet,omitempty"`

	// Train configures each trial's training.
	Train TrainSettings `yaml:"train,omitempty"`
	// Final configures the retraining of the best architectures, and how
	// many the report lists.
	Final FinalSettings `yaml:"final"`
	// Budget refuses architectures too costly to train, before training.
	Budget runtime.Budget `yaml:"budget"`
	// Reward makes the search latency-aware (MnasNet's soft reward or hard
	// limits); the zero value rewards validation accuracy.
	Reward RewardSettings `yaml:"reward,omitempty"`

	// Workers is the number of trials evaluated at once; zero: 1. Threads is
	// each worker's ONNX Runtime intra-op threads; zero: ONNX Runtime's
	// default (one per core).
	Workers int `yaml:"workers"`
	Threads int `yaml:"threads"`
	// Device is cpu or cuda; empty: cpu.
	Device string `yaml:"device,omitempty"`
}

// ProblemSettings select a problem of package problem.
type ProblemSettings struct {
	// Name is mock or natsbench; empty: the trials are trained.
	Name string `yaml:"name,omitempty"`
	// Blocks is B, the blocks per cell of the mock problem's cell pairs;
	// zero: 2 (the study's; Zoph et al. use 5).
	Blocks int `yaml:"blocks,omitempty"`
	// Dataset is the NATS-Bench accuracy column: cifar10, cifar100 or
	// imagenet16-120; empty: cifar10.
	Dataset string `yaml:"dataset,omitempty"`
}

// CellSettings shape the networks of a NASNet search that trains its
// cells: B blocks per cell, stacked as Macro says (docs/study.md, section 4).
type CellSettings struct {
	// Blocks is B; zero: 2 (the study's; Zoph et al. use 5).
	Blocks int `yaml:"blocks"`
	// CellMacro is the network around the cells; all zero: the study's
	// (genotype.StudyMacro); a zero stem or filter count alone: the study's.
	genotype.CellMacro `yaml:",inline"`
}

// IsZero reports unset settings (YAML omitempty).
func (c CellSettings) IsZero() bool { return c == CellSettings{} }

// MetaQNNSettings configure the MetaQNN agent.
type MetaQNNSettings struct {
	// Agent is qlearning (Baker et al.'s); random: the same space sampled
	// uniformly (every layer at epsilon 1), nothing learnt, the baseline
	// that shows what an agent buys; or evolution: regularized evolution
	// (Real et al. 2019) after the schedule's random first phase. Empty:
	// qlearning.
	Agent string `yaml:"agent,omitempty"`
	// Space is the search space: a preset name or a full description.
	Space SpaceSpec `yaml:"space,omitempty"`
	// Schedule is the epsilon schedule: a preset name or a list of phases.
	Schedule ScheduleSpec `yaml:"schedule,omitempty"`
	// QLearning configures Q-learning (alpha, gamma, initial Q, replay).
	QLearning controller.QConfig `yaml:"q_learning,omitempty"`
	// Evolution configures the evolution agent (population, tournament
	// size); its redraws are QLearning.Redraw.
	Evolution controller.EvolutionConfig `yaml:"evolution,omitempty"`
}

// TrainSettings configure the training of one trial (see
// runtime.TrainConfig, whose defaults zero fields take).
type TrainSettings struct {
	Epochs    int     `yaml:"epochs"`
	BatchSize int     `yaml:"batch_size"`
	LR        float64 `yaml:"lr"`
	Patience  int     `yaml:"patience"` // negative (0 in a --config file): no early stopping
	// ConstantLR turns off Baker et al.'s learning-rate rule: its restarts
	// at chance, unless Restarts asks for them, and its decay.
	ConstantLR bool `yaml:"constant_lr"`
	// Restarts is how often a trial still at chance after its first epoch
	// starts again from fresh weights at 0.4 times the rate (Baker et al.'s
	// restarts), with a constant rate too; zero: 5 under the rule, none with
	// constant_lr.
	Restarts int `yaml:"restarts,omitempty"`
	// Optimizer is adam (beta1 0.5, as Baker et al.) or sgd; empty: adam.
	Optimizer string `yaml:"optimizer,omitempty"`
	// Momentum of sgd; zero: 0.9 (the study's).
	Momentum float64 `yaml:"momentum,omitempty"`
	// Monitor chooses the best epoch and stops early: val_accuracy or
	// val_loss (the study's for cell networks); empty: val_accuracy.
	Monitor string `yaml:"monitor,omitempty"`
	// Metric is what validation accuracy means for the trials and the
	// finals (rewards, best epochs, early stops, the winner): accuracy, or
	// balanced_accuracy (the mean of the classes' recalls, for classes of
	// very different sizes); empty: accuracy (runtime.Metric).
	Metric string `yaml:"metric,omitempty"`
	// Sampling is how an epoch draws the training images: shuffle (each
	// once) or balanced (every class equally often, for classes of very
	// different sizes); empty: shuffle (runtime.Sampling).
	Sampling string `yaml:"sampling,omitempty"`
	// Init is how weights start: glorot (the study's) or he; empty: glorot.
	Init string `yaml:"init,omitempty"`
	// Centre starts the first layer centred on the training images (see
	// runtime.TrainConfig.Centre).
	Centre bool `yaml:"centre"`
	// Augment varies the training images at random: none, mirror
	// (left-right), flips (left-right and top-bottom), shift:N (moved by up
	// to N pixels), brightness:B and contrast:C, or several of them,
	// "flips,shift:2,brightness:0.2"; empty: none (see runtime.Augment).
	Augment string `yaml:"augment,omitempty"`
	// GiveUpAfter stops a trial still at chance after this many epochs
	// (runtime.LRSchedule.GiveUpAfter); zero: never.
	GiveUpAfter int `yaml:"give_up_after"`
	// MedianStop stops trials that fall behind the earlier ones; zero: off.
	MedianStop MedianStop `yaml:"median_stop,omitempty"`
	// Halving stops trials by successive halving; zero: off. With
	// MedianStop too, a trial stops when either rule says so.
	Halving Halving `yaml:"halving,omitempty"`
}

// NASNetSettings choose the agent of a NASNet search.
type NASNetSettings struct {
	// Agent is reinforce (the recurrent controller, Reinforce configures
	// it); random: every decision uniform among the valid ones, nothing
	// learnt, the baseline; or evolution: regularized evolution over the
	// decisions. Empty: reinforce.
	Agent string `yaml:"agent,omitempty"`
	// Evolution configures the evolution agent; zero fields: a population
	// of 20 and tournaments of 3, as benchmark agents' evolution.
	Evolution controller.EvolutionConfig `yaml:"evolution,omitempty"`
}

// Agents of MetaQNNSettings and NASNetSettings.
const (
	AgentQLearning = "qlearning"
	AgentRandom    = "random"
	AgentEvolution = "evolution"
	AgentReinforce = "reinforce"
)

// MetaQNNAgents lists the agents of a layer-sequence search.
var MetaQNNAgents = []string{AgentQLearning, AgentRandom, AgentEvolution}

// NASNetAgents lists the agents of a NASNet search.
var NASNetAgents = []string{AgentReinforce, AgentRandom, AgentEvolution}

// Agent returns the run's agent: its kind's setting, or the kind's default
// (qlearning, reinforce) when unset.
func (c Config) Agent() string {
	if c.Kind == KindNASNet {
		return cmp.Or(c.NASNet.Agent, AgentReinforce)
	}
	return cmp.Or(c.MetaQNN.Agent, AgentQLearning)
}

// ScheduleNote warns, for a Q-learning run, when the planned trials stop
// before the epsilon schedule's end: at worst inside its first phase at
// epsilon 1, where the agent only explores, as random search does. It is ""
// otherwise (evolution takes only its population from the schedule, and
// checks that itself). Its advice is the schedule fitted to the trials,
// phase by phase; a resumed run keeps its schedule (--schedule is refused
// there), so its advice is more --trials or a new run.
func (c Config) ScheduleNote(resumed bool) string {
	sched := c.MetaQNN.Schedule.EpsilonSchedule
	if c.Kind != KindMetaQNN || c.Agent() != AgentQLearning || len(sched) == 0 || c.Trials >= sched.Total() {
		return ""
	}
	var phases []string
	for _, p := range sched.Scale(c.Trials) {
		phases = append(phases, fmt.Sprintf("%g:%d", p.Epsilon, p.Models))
	}
	// The phases themselves: --schedule scaled would scale the preset's or
	// --config's schedule, which a --schedule given replaced.
	scaled := "--schedule " + strings.Join(phases, ",")
	if start := sched[0].Models; sched[0].Epsilon == 1 && c.Trials <= start {
		advice := "give more --trials, or the schedule scaled to them: " + scaled
		if resumed {
			advice = "give more --trials; the schedule of a run cannot change, so for one scaled to these trials start a new run with " + scaled
		}
		return fmt.Sprintf("all %d trials fall in the schedule's random start (%d trials): the agent never uses what it learns, and the run is a random search; %s",
			c.Trials, start, advice)
	}
	advice := "for all its phases in these trials, give " + scaled
	if resumed {
		advice = fmt.Sprintf("give --trials %d for all of them", sched.Total())
	}
	return fmt.Sprintf("the schedule plans %d trials; the %d planned end at epsilon %g, and its later phases never run; %s",
		sched.Total(), c.Trials, sched.Epsilon(c.Trials-1), advice)
}

// measuredTrials is the budget at which Q-learning was measured ahead of
// random search by more than the spread between search seeds, on two of
// the three leaves datasets: the cpu preset's 225 trials
// (docs/search-quality.md, "Three search seeds with flips").
const measuredTrials = 225

// BaselineNote, for a Q-learning run of fewer trials than measuredTrials,
// says so and how to check what the agent buys: the same command with
// --agent random, over a few seeds each. "" otherwise.
func (c Config) BaselineNote() string {
	if c.Kind != KindMetaQNN || c.Agent() != AgentQLearning || c.Trials >= measuredTrials {
		return ""
	}
	return fmt.Sprintf("Q-learning was measured ahead of random search by more than the spread between seeds with %d trials on the leaves data "+
		"(docs/search-quality.md), not with fewer; to see what it buys in these %d trials on your images, run this command and the same with "+
		"--agent random, each with two or three --seed values, and set them side by side with nasctl runs compare", measuredTrials, c.Trials)
}

// Controlled reports whether the run's agent is the REINFORCE controller,
// whose baseline, updates and temperature the reports show.
func (c Config) Controlled() bool { return c.Kind == KindNASNet && c.Agent() == AgentReinforce }

// Optimizers of TrainSettings.
const (
	OptimizerAdam = "adam"
	OptimizerSGD  = "sgd"
)

// FinalSettings configure the final phase.
type FinalSettings struct {
	// TopK architectures by reward are retrained and listed; zero: 10.
	TopK int `yaml:"top_k"`
	// EpochFactor multiplies Train.Epochs for the retraining; zero: 2.
	EpochFactor float64 `yaml:"epoch_factor,omitempty"`
	// LR and Patience of the retraining; zero: Train's.
	LR       float64 `yaml:"lr,omitempty"`
	Patience int     `yaml:"patience,omitempty"`
	// Augment of the retraining (as Train.Augment); empty: Train's.
	Augment string `yaml:"augment,omitempty"`
	// DecayEvery multiplies the retraining's rate by DecayFactor (zero:
	// 0.2) every DecayEvery epochs, with no restart at chance (the
	// retraining starts from the search's weights); zero: the trials'
	// schedule. On the leaves data it made the finals worse
	// (docs/search-quality.md, "A decaying rate in the final phase").
	DecayEvery  int     `yaml:"decay_every,omitempty"`
	DecayFactor float64 `yaml:"decay_factor,omitempty"`
	// Average keeps a moving average of the retraining's weights, over
	// about this many epochs (runtime.TrainConfig.Average); zero: the
	// weights themselves.
	Average float64 `yaml:"average,omitempty"`
	// Skip leaves out the final phase.
	Skip bool `yaml:"skip,omitempty"`
	// Int8 also writes each winner quantized to int8 (winners/int8/, as
	// nasctl export --int8 does); false: float32 winners only.
	Int8 bool `yaml:"int8,omitempty"`
}

// SpaceSpec is a search space in a configuration: written as a preset name
// or as a full description; always saved in full.
type SpaceSpec struct{ genotype.Space }

// UnmarshalYAML accepts a preset name or a mapping.
func (s *SpaceSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		p, err := SpacePreset(n.Value)
		if err != nil {
			return err
		}
		s.Space = p
		return nil
	}
	// A mapping replaces the keys it gives over the space already there,
	// the preset's in a --config file (max_depth: 6 alone keeps the rest of
	// it), or over the preset it names when that is another. A run's own
	// config.yaml is read over nothing, as it was written.
	sp := s.Space.Clone()
	for i := 0; i+1 < len(n.Content); i += 2 {
		if name := n.Content[i+1].Value; n.Content[i].Value == "name" && s.Name != "" && name != s.Name {
			if p, err := SpacePreset(name); err == nil {
				sp = p.Clone()
			}
		}
	}
	if err := n.Decode(&sp); err != nil {
		return err
	}
	s.Space = sp
	return nil
}

// MarshalYAML writes the full description.
func (s SpaceSpec) MarshalYAML() (any, error) { return s.Space, nil }

// IsZero reports an unset space (YAML omitempty).
func (s SpaceSpec) IsZero() bool { return s.Name == "" && len(s.ConvFilters) == 0 }

// ScheduleSpec is an epsilon schedule in a configuration: a preset name
// (baker2017, study, cpu), "eps:models,..." or a list of phases.
type ScheduleSpec struct{ controller.EpsilonSchedule }

// UnmarshalYAML accepts a preset name, "eps:models,..." or a list.
func (s *ScheduleSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		p, err := controller.ParseSchedule(n.Value)
		if err != nil {
			return err
		}
		s.EpsilonSchedule = p
		return nil
	}
	return n.Decode(&s.EpsilonSchedule)
}

// MarshalYAML writes the phases.
func (s ScheduleSpec) MarshalYAML() (any, error) { return []controller.Phase(s.EpsilonSchedule), nil }

// IsZero reports an unset schedule (YAML omitempty).
func (s ScheduleSpec) IsZero() bool { return len(s.EpsilonSchedule) == 0 }

// CPUSpace is the search space of the CPU preset: the study's space with
// filter counts divided by 8 and FC widths by 4, only non-overlapping pooling
// windows (kernel <= stride), whose gradient is several times cheaper on ONNX
// Runtime than that of overlapping ones, and at most 4M multiply-accumulates
// per image in the hidden layers (figures: docs/performance.md, "The CPU
// preset").
var CPUSpace = genotype.Space{
	Name:            "cpu",
	ConvFilters:     []int{8, 16, 32, 64},
	ConvKernels:     []int{1, 3, 5},
	ConvStrides:     []int{1},
	Pools:           []genotype.PoolShape{{Kernel: 2, Stride: 2}, {Kernel: 2, Stride: 3}, {Kernel: 3, Stride: 3}},
	FCUnits:         []int{128, 64, 32},
	MaxDepth:        8,
	MaxFC:           2,
	FCMaxSize:       8,
	NoPoolAfterPool: true,
	MaxMACs:         4_000_000,
	SizeBins:        []int{8, 4, 1},
}

// SpacePreset returns a named space: the genotype presets and "cpu".
func SpacePreset(name string) (genotype.Space, error) {
	if name == CPUSpace.Name {
		return CPUSpace.Clone(), nil
	}
	s, err := genotype.Preset(name)
	if err != nil {
		return genotype.Space{}, fmt.Errorf("unknown search space %q (valid: %s, %s)", name, strings.Join(genotype.PresetNames(), ", "), CPUSpace.Name)
	}
	return s, nil
}

// metaqnnPresets are the MetaQNN searches by name.
var metaqnnPresets = map[string]Config{
	// cpu: sized for a 2-core machine: the README's main job. The final
	// phase fine-tunes from the search weights at a third of the rate for
	// 30 epochs (figures: docs/performance.md, "The CPU preset").
	"cpu": {
		Input: "32x32", DataFraction: 0.5, SplitSeed: 1, Seed: 1,
		// Proposals that repeat a trained network are drawn again (up to 20
		// times), by every agent (docs/search-quality.md, "Repeats"); a
		// greedy repeat takes the next best untried network instead, and
		// every step learns the trial's reward ("Next best instead of a
		// redraw"); 225 trials ("A longer schedule").
		MetaQNN: MetaQNNSettings{Space: SpaceSpec{CPUSpace}, Schedule: ScheduleSpec{controller.ScheduleCPU},
			QLearning: controller.QConfig{Alpha: 0.3, Redraw: 20, NextBest: 100, Target: controller.TargetReturn}},
		// He weights and a first layer centred on the data keep the narrow
		// nets from starting as constant predictors; those that still are
		// give up after 2 epochs (docs/search-quality.md).
		Train: TrainSettings{Epochs: 10, BatchSize: 32, LR: 3e-3, ConstantLR: true,
			Init: "he", Centre: true, GiveUpAfter: 2},
		Final:  FinalSettings{EpochFactor: 3, LR: 1e-3, Patience: 10},
		Budget: runtime.Budget{MaxMACs: 5_000_000},
		// Networks over 160k parameters are refused before training: an
		// edge model's size (docs/search-quality.md, "A longer schedule").
		Reward:  RewardSettings{Mode: RewardConstraint, MaxParams: 160_000},
		Workers: 2, Threads: 1,
	},
	// study: the founding study's settings (a GPU's work: about 2 hours on an A10G).
	"study": {
		SplitSeed: 1, Seed: 1,
		MetaQNN: MetaQNNSettings{Space: SpaceSpec{genotype.Study}, Schedule: ScheduleSpec{controller.ScheduleStudy},
			QLearning: controller.QConfig{Replay: 10}},
		Train: TrainSettings{Epochs: 15, BatchSize: 128, LR: 1e-3},
	},
	// baker2017: Baker et al.'s space and schedule (2,700 models).
	"baker2017": {
		SplitSeed: 1, Seed: 1,
		MetaQNN: MetaQNNSettings{Space: SpaceSpec{genotype.Baker2017}, Schedule: ScheduleSpec{controller.ScheduleBaker2017}},
		Train:   TrainSettings{Epochs: 20, BatchSize: 128, LR: 1e-3},
	},
}

// PresetNames lists the MetaQNN presets.
func PresetNames() []string { return []string{"cpu", "study", "baker2017"} }

// Preset returns a copy of a named MetaQNN configuration.
func Preset(name string) (Config, error) {
	c, ok := metaqnnPresets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (valid: %s)", name, strings.Join(PresetNames(), ", "))
	}
	c.Kind = KindMetaQNN
	c.MetaQNN.Space = SpaceSpec{c.MetaQNN.Space.Clone()}
	c.MetaQNN.Schedule = ScheduleSpec{append(controller.EpsilonSchedule(nil), c.MetaQNN.Schedule.EpsilonSchedule...)}
	c.Name = "metaqnn-" + name
	return c, nil
}

// DefaultNASNetPreset returns the preset a NASNet search on problem starts
// from unless told otherwise: cpu for a search that trains its cells
// (problem ""); for a problem, the controller preset nasctl benchmark
// agents uses: natsbench for natsbench (tuned on that table), paper
// otherwise (figures: docs/performance.md, "Controller presets").
func DefaultNASNetPreset(problem string) string {
	switch problem {
	case "":
		return "cpu"
	case "natsbench":
		return "natsbench"
	}
	return "paper"
}

// NASNetPresetNames lists the presets of a NASNet search on problem (""
// for one that trains its cells).
func NASNetPresetNames(problem string) []string {
	if problem == "" {
		return []string{"cpu", "study"}
	}
	return controller.ReinforcePresetNames()
}

// The trained NASNet presets.
var nasnetPresets = map[string]Config{
	// cpu: sized for a 2-core machine, the counterpart of metaqnn's cpu
	// preset on the same data and splits (figures: docs/performance.md,
	// "The NASNet CPU preset").
	"cpu": {
		Input: "32x32", DataFraction: 0.5, SplitSeed: 1, Trials: 60,
		Cells:     CellSettings{Blocks: 2, CellMacro: genotype.CellMacro{Stem: 8, Filters: 8, Normal: 1, Reductions: 1, Style: genotype.StyleNASNet}},
		Reinforce: ReinforceSettings{Preset: "natsbench", Controller: ControllerOf(controller.ReinforceNATSBench)},
		Train: TrainSettings{Epochs: 6, BatchSize: 32, LR: 0.05, Patience: 3, ConstantLR: true, Optimizer: OptimizerSGD, Momentum: 0.9,
			Monitor: runtime.MonitorValLoss.String()},
		Reward:  RewardSettings{LastEpochs: 5, Exponent: 3},
		Final:   FinalSettings{TopK: 4, EpochFactor: 3, LR: 0.02, Patience: 6},
		Workers: 2, Threads: 1,
	},
	// study: the founding study's cell search (docs/study.md, section 4):
	// its network, child training, reward and controller; the trials train
	// on a fifth of the training split (498 of 4,000 images, as the study's
	// search), the final phase on all of it (docs/study.md, section 7).
	"study": {
		Split: "nasnet", DataFraction: 0.2, SplitSeed: 1, Trials: 800,
		Cells:     CellSettings{Blocks: 2, CellMacro: genotype.StudyMacro},
		Reinforce: ReinforceSettings{Preset: "study", Controller: ControllerOf(controller.ReinforceStudy)},
		Train: TrainSettings{Epochs: 50, BatchSize: 32, LR: 0.1, Patience: 3, ConstantLR: true, Optimizer: OptimizerSGD, Momentum: 0.9,
			Monitor: runtime.MonitorValLoss.String()},
		Reward: RewardSettings{LastEpochs: 5, Exponent: 3},
	},
}

// NASNetPreset returns the configuration of a NASNet search on problem (""
// for one that trains its cells) from the named preset ("" for
// DefaultNASNetPreset), seed 1; its error lists the valid preset names.
// A search on a problem takes a controller preset; one that trains, a
// search preset (cpu or study) that includes its controller.
func NASNetPreset(problem, preset string) (Config, error) {
	if preset == "" {
		preset = DefaultNASNetPreset(problem)
	}
	if problem == "" {
		c, ok := nasnetPresets[preset]
		if !ok {
			return Config{}, fmt.Errorf("unknown preset %q for a search that trains its cells (valid: %s; the controller presets %s apply to --reward mock and natsbench)",
				preset, strings.Join(NASNetPresetNames(""), ", "), strings.Join(controller.ReinforcePresetNames(), ", "))
		}
		c.Kind, c.Seed, c.Name = KindNASNet, 1, "nasnet-"+preset
		return c, nil
	}
	c, err := controller.ReinforcePreset(preset)
	if err != nil {
		return Config{}, err
	}
	return Config{Kind: KindNASNet, Problem: ProblemSettings{Name: problem}, Seed: 1,
		Reinforce: ReinforceSettings{Preset: preset, Controller: ControllerOf(c)}}, nil
}

// LoadConfig reads a YAML configuration over base: keys present in the file
// replace base's values. Unknown keys are an error, and so is a key written
// with a value that stands for a default or makes no sense, such as lr: 0
// (checkGiven); train.patience: 0 is "never stop early", as nasctl train
// --patience 0.
func LoadConfig(path string, base Config) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c := base
	if err := decodeYAMLStrict(b, &c); errors.Is(err, io.EOF) {
		return c, nil
	} else if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.checkGiven(&doc); err != nil {
		return Config{}, fmt.Errorf("%s: invalid settings:\n%w", path, err)
	}
	return c, nil
}

// checkGiven returns the problems of the keys the YAML document doc sets,
// decoded into c, whose zero WithDefaults would replace without a word:
// written in a file, 0 is a value, not "the default", so it is refused with
// the key (as the flags refuse --lr 0), along with the negative values that
// mean nothing either. Configurations nasctl writes (config.yaml) hold none:
// defaults were applied before. train.patience: 0 becomes -1, never.
func (c *Config) checkGiven(doc *yaml.Node) error {
	var ps problems
	given := func(key string) bool { return yamlValue(doc, key) != nil }
	for _, k := range []struct {
		key  string
		v    float64
		want string
	}{
		{"trials", float64(c.Trials), "at least 1"},
		{"workers", float64(c.Workers), "at least 1"},
		{"data_fraction", c.DataFraction, "a share of the training split in (0, 1]"},
		{"train.epochs", float64(c.Train.Epochs), "at least 1"},
		{"train.batch_size", float64(c.Train.BatchSize), "at least 1"},
		{"train.lr", c.Train.LR, "a positive rate"},
		{"final.top_k", float64(c.Final.TopK), "at least 1"},
		{"final.epoch_factor", c.Final.EpochFactor, "a positive factor"},
		{"final.lr", c.Final.LR, "a positive rate"},
		{"final.decay_factor", c.Final.DecayFactor, "a factor in (0, 1]"},
		{"cells.blocks", float64(c.Cells.Blocks), fmt.Sprintf("1 to %d", MaxBlocks)},
		{"cells.stem", float64(c.Cells.Stem), "at least 1 filter"},
		{"cells.filters", float64(c.Cells.Filters), "at least 1 filter"},
		{"problem.blocks", float64(c.Problem.Blocks), fmt.Sprintf("1 to %d", MaxBlocks)},
	} {
		if given(k.key) && !(k.v > 0) {
			ps.add("%s: %v, want %s; a key left out takes the preset's value", k.key, k.v, k.want)
		}
	}
	if t := c.Train; given("train.momentum") && t.Momentum == 0 && t.Optimizer == OptimizerSGD {
		ps.add("train.momentum: 0 would stand for the default, 0.9; give a momentum in (0, 1), or leave the key out")
	}
	// Keys whose 0 the defaults replace, though 0 could be meant: refused
	// rather than changed behind the user's back.
	q := c.MetaQNN.QLearning
	for _, k := range []struct {
		key, def string
		zero     bool
	}{
		{"train.restarts", "5 (constant_lr: true for none)", c.Train.Restarts == 0 && !c.Train.ConstantLR},
		{"train.median_stop.min_trials", strconv.Itoa(defaultMedianMinTrials), c.Train.MedianStop.MinTrials == 0},
		{"train.halving.eta", strconv.Itoa(defaultHalvingEta), c.Train.Halving.Eta == 0},
		{"train.halving.min_trials", strconv.Itoa(defaultHalvingMinTrials), c.Train.Halving.MinTrials == 0},
		{"metaqnn.q_learning.alpha", "0.01", q.Alpha == 0 && q.Target != controller.TargetMean},
		{"metaqnn.q_learning.gamma", "1", q.Gamma == 0},
		{"metaqnn.q_learning.init_q", "0.5", q.InitQ == 0},
		{"metaqnn.q_learning.replay", "128 (-1 for no replay)", q.Replay == 0},
		{"metaqnn.evolution.population", "the schedule's first phase", c.MetaQNN.Evolution.Population == 0},
		{"metaqnn.evolution.sample", "a sixth of the population, at least 2", c.MetaQNN.Evolution.Sample == 0},
		{"nasnet.evolution.population", "20", c.NASNet.Evolution.Population == 0},
		{"nasnet.evolution.sample", "a sixth of the population, at least 2", c.NASNet.Evolution.Sample == 0},
		{"reward.weight", "-0.07", c.Reward.Weight == 0},
		{"reward.exponent", "1", c.Reward.Exponent == 0},
		{"reward.calibration", "120", c.Reward.Calibration == 0},
		{"reward.latency_threads", "1", c.Reward.Threads == 0},
	} {
		if k.zero && given(k.key) {
			ps.add("%s: 0 would stand for the default, %s; give another value, or leave the key out", k.key, k.def)
		}
	}
	if given("reward.max_params") && c.Reward.MaxParams < 0 {
		ps.add("reward.max_params: %d, want a positive limit (0 or left out: none)", c.Reward.MaxParams)
	}
	if given("reward.max_latency_ms") && c.Reward.MaxLatencyMs < 0 {
		ps.add("reward.max_latency_ms: %v, want a positive limit (0 or left out: none)", c.Reward.MaxLatencyMs)
	}
	if given("metaqnn.schedule") && len(c.MetaQNN.Schedule.EpsilonSchedule) == 0 {
		ps.add("metaqnn.schedule: empty, which would stand for the study's schedule; give its phases, or leave the key out for the preset's")
	}
	if given("train.patience") && c.Train.Patience == 0 {
		c.Train.Patience = -1 // as nasctl train --patience 0 records it
	}
	if given("final.patience") && c.Final.Patience <= 0 {
		// final.go takes a positive patience or Train's.
		ps.add("final.patience: %d: the final phase cannot turn early stopping off; for no early stop give a patience of at least its epochs (train.epochs x final.epoch_factor), or leave the key out for the preset's",
			c.Final.Patience)
	}
	return ps.err()
}

// yamlValue returns the node of the dotted key path ("train.lr") in the
// YAML document or mapping n, following aliases and merge keys (<<) as
// the decoder does, or nil when the key is not there.
func yamlValue(n *yaml.Node, path string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, key := range strings.Split(path, ".") {
		if n = mappingValue(n, key); n == nil {
			return nil
		}
	}
	return n
}

// mappingValue returns the value of key in mapping n, or nil; a key
// written in n wins over one a merge key brings in.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var merged *yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				merged = cmp.Or(merged, mappingValue(v, key))
			} else if k.Value == key {
				return v
			}
		}
	case yaml.SequenceNode: // << of several mappings
		for _, c := range n.Content {
			merged = cmp.Or(merged, mappingValue(c, key))
		}
	}
	return merged
}

// decodeYAMLStrict decodes the YAML document b into v: keys present replace
// v's values, unknown keys are an error, and an empty document is io.EOF.
func decodeYAMLStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(v)
	// yaml.v3 names the Go type ("field epoch not found in type
	// search.TrainSettings"); a user wrote a key.
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		for i, e := range typeErr.Errors {
			typeErr.Errors[i] = unknownYAMLField.ReplaceAllString(e, `unknown key "$1"`)
		}
	}
	return err
}

var unknownYAMLField = regexp.MustCompile(`field (.+?) not found in type [\w.]+`)

// Marshal returns the configuration as YAML.
func (c Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// Trains reports whether the search trains its trials (no problem scores
// them).
func (c Config) Trains() bool { return c.Problem.Name == "" }

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	c.Kind = cmp.Or(c.Kind, KindMetaQNN)
	c.Dir = cmp.Or(c.Dir, "runs")
	c.Workers = cmp.Or(c.Workers, 1)
	c.Final.TopK = cmp.Or(c.Final.TopK, 10)
	switch c.Kind {
	case KindMetaQNN:
		c = c.metaqnnDefaults()
	case KindNASNet:
		c = c.nasnetDefaults()
	}
	if c.Trains() {
		c = c.trainingDefaults()
	}
	return c
}

func (c Config) metaqnnDefaults() Config {
	m := &c.MetaQNN
	if m.Space.IsZero() {
		m.Space = SpaceSpec{genotype.Study.Clone()}
	}
	if m.Schedule.IsZero() {
		m.Schedule = ScheduleSpec{append(controller.EpsilonSchedule(nil), controller.ScheduleStudy...)}
	}
	m.QLearning = m.QLearning.WithDefaults()
	m.Agent = cmp.Or(m.Agent, AgentQLearning)
	if m.Agent == AgentEvolution {
		m.Evolution = m.Evolution.WithDefaults(m.Schedule.EpsilonSchedule)
	}
	if c.Trials == 0 {
		c.Trials = m.Schedule.Total()
	}
	c.Name = cmp.Or(c.Name, "metaqnn")
	return c
}

func (c Config) nasnetDefaults() Config {
	p := &c.Problem
	switch p.Name {
	case "mock":
		p.Blocks = cmp.Or(p.Blocks, 2)
	case "natsbench":
		p.Dataset = cmp.Or(p.Dataset, natsbench.CIFAR10.String())
	}
	c.Trials = cmp.Or(c.Trials, 800)
	n := &c.NASNet
	n.Agent = cmp.Or(n.Agent, AgentReinforce)
	switch n.Agent {
	case AgentReinforce:
		c.Reinforce.Preset = cmp.Or(c.Reinforce.Preset, DefaultNASNetPreset(p.Name))
	case AgentEvolution:
		n.Evolution = n.Evolution.WithDefaults(controller.EvolutionDefaultPopulation)
		fallthrough
	default:
		c.Reinforce = ReinforceSettings{} // no controller: config.yaml holds none
	}
	if c.Trains() {
		cs := &c.Cells
		if cs.CellMacro == (genotype.CellMacro{}) {
			cs.CellMacro = genotype.StudyMacro
		}
		cs.Blocks = cmp.Or(cs.Blocks, 2)
		cs.Stem = cmp.Or(cs.Stem, genotype.StudyMacro.Stem)
		cs.Filters = cmp.Or(cs.Filters, genotype.StudyMacro.Filters)
		c.Name = cmp.Or(c.Name, "nasnet")
	}
	if c.Name == "" {
		c.Name = "nasnet-" + p.Name
	}
	return c
}

func (c Config) trainingDefaults() Config {
	c.Split = cmp.Or(c.Split, "metaqnn")
	c.DataFraction = cmp.Or(c.DataFraction, 1)
	d := runtime.TrainConfig{}.WithDefaults()
	t := &c.Train
	t.Epochs = cmp.Or(t.Epochs, d.Epochs)
	t.BatchSize = cmp.Or(t.BatchSize, d.BatchSize)
	t.LR = cmp.Or(t.LR, d.LR)
	t.Patience = cmp.Or(t.Patience, d.Patience)
	t.Optimizer = cmp.Or(t.Optimizer, OptimizerAdam)
	if t.Optimizer == OptimizerSGD {
		t.Momentum = cmp.Or(t.Momentum, 0.9)
	}
	t.Monitor = cmp.Or(t.Monitor, runtime.MonitorValAccuracy.String())
	t.Init = cmp.Or(t.Init, onnxgen.InitGlorot.String())
	if t.MedianStop.After > 0 {
		t.MedianStop.MinTrials = cmp.Or(t.MedianStop.MinTrials, defaultMedianMinTrials)
	}
	if t.Halving.First > 0 {
		t.Halving.Eta = cmp.Or(t.Halving.Eta, defaultHalvingEta)
		t.Halving.MinTrials = cmp.Or(t.Halving.MinTrials, defaultHalvingMinTrials)
	}
	c.Final.EpochFactor = cmp.Or(c.Final.EpochFactor, 2)
	c.Device = cmp.Or(c.Device, "cpu")
	c.Reward = c.Reward.withDefaults()
	return c
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

// problems collects the problems of a configuration, each with its field.
type problems []string

func (ps *problems) add(format string, args ...any) { *ps = append(*ps, fmt.Sprintf(format, args...)) }

// addLines adds every line of err under field.
func (ps *problems) addLines(field string, err error) {
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			ps.add("%s%s", field, line)
		}
	}
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return errors.New(strings.Join(ps, "\n"))
}

// Check returns every problem of the configuration (WithDefaults applied),
// one per line with its field, or nil. It does not look at the file system.
func (c Config) Check() error {
	var ps problems
	if _, err := ParseKind(string(c.Kind)); err != nil {
		ps.add("kind: %v", err)
	}
	if !validName.MatchString(c.Name) {
		ps.add("name: %q is not a valid run name (letters, digits, '.', '-' and '_', not starting with '.')", c.Name)
	}
	if c.Trials < 1 {
		ps.add("trials: %d, want at least 1", c.Trials)
	}
	if c.Final.TopK < 1 {
		ps.add("final.top_k: %d, want at least 1", c.Final.TopK)
	}
	if c.Workers < 1 || c.Threads < 0 {
		ps.add("workers must be at least 1 and threads not negative")
	}
	switch c.Kind {
	case KindMetaQNN:
		c.checkMetaQNN(&ps)
	case KindNASNet:
		c.checkNASNet(&ps)
	}
	if c.Trains() {
		c.checkTraining(&ps)
	}
	return ps.err()
}

func (c Config) checkMetaQNN(ps *problems) {
	if !c.Trains() {
		ps.add("problem: %q scores cell pairs; a metaqnn search trains its layer sequences (drop problem, or use kind nasnet)", c.Problem.Name)
	}
	ps.addLines("metaqnn.space.", c.MetaQNN.Space.Verify())
	if err := c.MetaQNN.Schedule.Check(); err != nil {
		ps.add("metaqnn.schedule: %v", err)
	}
	if a := c.MetaQNN.Agent; !slices.Contains(MetaQNNAgents, a) {
		ps.add("metaqnn.agent: %q (valid: %s)", a, strings.Join(MetaQNNAgents, ", "))
	}
	checkEvolution(ps, "metaqnn", c.MetaQNN.Agent, c.MetaQNN.Evolution, c.Trials)
	if err := c.MetaQNN.QLearning.Check(); err != nil {
		ps.add("metaqnn.q_learning: %v", err)
	}
	if a := c.MetaQNN.Agent; c.MetaQNN.QLearning.NextBest > 0 && a != AgentQLearning {
		ps.add("metaqnn.q_learning.next_best: follows the Q-table's values; agent %s has none (set it to 0, as --agent %s on the command line does)", a, a)
	}
}

// MaxBlocks is the most blocks per cell a NASNet search takes: the
// controller's network grows with B and is built before the first trial,
// seconds at 10, minutes at 50 (docs/limits.md, "Blocks per cell").
const (
	MaxBlocks    = 10
	whyMaxBlocks = " (Zoph et al. use 5; the controller's network grows with the blocks, and takes seconds to build at 10 and minutes at 50)"
)

func (c Config) checkNASNet(ps *problems) {
	p := c.Problem
	if !c.Trains() && !c.Cells.IsZero() {
		ps.add("cells: the %s problem scores cells without building networks; cells applies to searches that train (drop problem or cells)", p.Name)
	}
	switch p.Name {
	case "mock":
		if p.Blocks < 1 || p.Blocks > MaxBlocks {
			ps.add("problem.blocks: %d, want 1 to %d%s", p.Blocks, MaxBlocks, whyMaxBlocks)
		}
		if p.Dataset != "" {
			ps.add("problem.dataset: %q is a NATS-Bench column; it applies to problem natsbench only", p.Dataset)
		}
	case "natsbench":
		if _, err := natsbench.ParseDataset(p.Dataset); err != nil {
			ps.add("problem.dataset: %v", err)
		}
		if p.Blocks != 0 {
			ps.add("problem.blocks: the NATS-Bench cell is fixed (6 edges of 5 operations); blocks applies to problem mock only")
		}
	case "":
		cs := c.Cells
		if cs.Blocks < 1 || cs.Blocks > MaxBlocks {
			ps.add("cells.blocks: %d, want 1 to %d%s", cs.Blocks, MaxBlocks, whyMaxBlocks)
		}
		if err := cs.CellMacro.Validate(); err != nil {
			ps.add("cells: %v", strings.TrimPrefix(err.Error(), "cell network: "))
		}
		if in, err := genotype.ParseImageSize(c.Input); err == nil && cs.Reductions > 0 {
			// Each reduction halves the maps (rounding up); one that gets
			// 1x1 maps has nothing to reduce, and its doubled filters see
			// one pixel.
			side, most := min(in.Height, in.Width), 0
			for ; side > 1; side = (side + 1) / 2 {
				most++
			}
			if cs.Reductions > most {
				ps.add("cells.reductions: %d, but %s images are 1x1 after %d: at most %d make sense", cs.Reductions, c.Input, most, most)
			}
		}
		if p.Blocks != 0 || p.Dataset != "" {
			ps.add("problem: blocks and dataset apply to problems; a search that trains its cells sets cells.blocks")
		}
	default:
		ps.add("problem: unknown problem %q (valid: %s)", p.Name, strings.Join(problem.Names, ", "))
	}
	c.checkNASNetAgent(ps)
}

// checkEvolution checks the evolution settings evo of section (metaqnn or
// nasnet), whose agent is agent, for a run of trials.
func checkEvolution(ps *problems, section, agent string, evo controller.EvolutionConfig, trials int) {
	if agent != AgentEvolution {
		if evo != (controller.EvolutionConfig{}) {
			ps.add("%s.evolution: applies to %s.agent evolution, not %s (drop it)", section, section, agent)
		}
		return
	}
	if err := evo.Check(trials); err != nil {
		// No flag sets these: say where they go.
		ps.add("%s.evolution: %v (in a --config file: \"%s: {evolution: {population: P, sample: S}}\")", section, err, section)
	}
}

func (c Config) checkNASNetAgent(ps *problems) {
	n := c.NASNet
	if !slices.Contains(NASNetAgents, n.Agent) {
		ps.add("nasnet.agent: %q (valid: %s)", n.Agent, strings.Join(NASNetAgents, ", "))
	}
	checkEvolution(ps, "nasnet", n.Agent, n.Evolution, c.Trials)
	if n.Agent != AgentReinforce {
		return
	}
	if _, err := controller.ReinforcePreset(c.Reinforce.Preset); err != nil {
		ps.add("reinforce.preset: %v", err)
	}
	if err := c.Reinforce.Controller.Config().Validate(); err != nil {
		ps.addLines("reinforce: ", errors.New(strings.TrimPrefix(err.Error(), "controller config: ")))
	}
}

func (c Config) checkTraining(ps *problems) {
	if c.Data == "" {
		ps.add("data: an image folder is required (--data DIR; nasctl dataset generate --out DIR writes the leaves data)")
	}
	if c.Input != "" {
		if _, err := genotype.ParseImageSize(c.Input); err != nil {
			ps.add("input: %v", err)
		}
	}
	if _, err := dataset.ParseSplitPlan(c.Split); err != nil {
		ps.add("split: %v", err)
	}
	if !(c.DataFraction > 0 && c.DataFraction <= 1) {
		ps.add("data_fraction: %v is not in (0, 1]", c.DataFraction)
	}
	if c.Train.Epochs < 0 || c.Train.BatchSize < 0 || c.Train.LR < 0 {
		ps.add("train: epochs, batch_size and lr must not be negative")
	}
	if o := c.Train.Optimizer; o != OptimizerAdam && o != OptimizerSGD {
		ps.add("train.optimizer: %q (valid: %s, %s)", o, OptimizerAdam, OptimizerSGD)
	}
	if m, o := c.Train.Momentum, c.Train.Optimizer; m < 0 || m >= 1 || (m != 0 && o == OptimizerAdam) {
		ps.add("train.momentum: %v; it applies to optimizer sgd and must be in [0, 1)", m)
	}
	if _, err := runtime.ParseMonitor(c.Train.Monitor); err != nil {
		ps.add("train.monitor: %v", err)
	}
	if _, err := c.Train.metric(); err != nil {
		ps.add("train.metric: %v", err)
	}
	if _, err := c.Train.sampling(); err != nil {
		ps.add("train.sampling: %v", err)
	}
	if _, err := onnxgen.ParseInitScheme(c.Train.Init); err != nil {
		ps.add("train.init: %v", err)
	}
	var in genotype.Input
	if c.Input != "" {
		in, _ = genotype.ParseImageSize(c.Input) // its error is reported above
	}
	for _, p := range c.augmentProblems(in.Height, in.Width) {
		ps.add("%s", p)
	}
	if c.Train.GiveUpAfter < 0 {
		ps.add("train.give_up_after: %d, want 0 (never) or more epochs", c.Train.GiveUpAfter)
	}
	if c.Train.Restarts < 0 {
		ps.add("train.restarts: %d, want 0 (the rule's 5, or none with constant_lr) or more", c.Train.Restarts)
	}
	if m := c.Train.MedianStop; m.After < 0 || c.Train.Epochs >= 1 && m.After >= c.Train.Epochs {
		ps.add("train.median_stop.after (--median-stop): %d, want 0 (never) or an epoch from 1 to train.epochs - 1 (%d): a stop after the last epoch saves nothing", m.After, c.Train.Epochs-1)
	}
	if m := c.Train.MedianStop; m.MinTrials < 0 {
		ps.add("train.median_stop.min_trials: %d, want 0 (the default, %d) or more", m.MinTrials, defaultMedianMinTrials)
	}
	if h := c.Train.Halving; h.First < 0 || c.Train.Epochs >= 1 && h.First >= c.Train.Epochs {
		ps.add("train.halving.first (--halving): %d, want 0 (off) or an epoch from 1 to train.epochs - 1 (%d)", h.First, c.Train.Epochs-1)
	}
	if h := c.Train.Halving; h.Eta < 0 || h.Eta == 1 || h.MinTrials < 0 {
		ps.add("train.halving: eta %d and min_trials %d, want eta 0 (the default, %d) or 2 or more, and min_trials 0 (the default, %d) or more",
			h.Eta, h.MinTrials, defaultHalvingEta, defaultHalvingMinTrials)
	}
	if c.Final.EpochFactor < 0 || c.Final.LR < 0 || c.Final.Patience < 0 {
		ps.add("final: epoch_factor, lr and patience must not be negative")
	}
	if a := c.Final.Average; a < 0 || a > 1000 || math.IsNaN(a) {
		ps.add("final.average %g: a time constant in epochs, from 0 (off) to 1000", a)
	}
	if f := c.Final; f.DecayEvery < 0 || f.DecayFactor < 0 || f.DecayFactor > 1 || f.DecayFactor > 0 && f.DecayEvery == 0 {
		ps.add("final.decay_every %d, decay_factor %g: decay_every is 0 (the trials' schedule) or a period in epochs, and decay_factor is in (0, 1] (0: 0.2) and needs decay_every",
			f.DecayEvery, f.DecayFactor)
	}
	if _, err := runtime.ParseDevice(c.Device); err != nil {
		ps.add("device: %v", err)
	}
	*ps = append(*ps, c.Reward.check()...)
}

// metric is the trials' runtime.Metric; empty is accuracy.
func (t TrainSettings) metric() (runtime.Metric, error) {
	return runtime.ParseMetric(cmp.Or(t.Metric, runtime.MetricAccuracy.String()))
}

// sampling is the trials' runtime.Sampling; empty is shuffle.
func (t TrainSettings) sampling() (runtime.Sampling, error) {
	return runtime.ParseSampling(cmp.Or(t.Sampling, runtime.SamplingShuffle.String()))
}

// metricName and samplingName are the names of the trials' metric and
// sampling when they are not the defaults (accuracy, shuffle), else "": what
// a report or a run's summary records of them.
func (t TrainSettings) metricName() string {
	if m, _ := t.metric(); m != runtime.MetricAccuracy {
		return m.String()
	}
	return ""
}

func (t TrainSettings) samplingName() string {
	if s, _ := t.sampling(); s != runtime.SamplingShuffle {
		return s.String()
	}
	return ""
}

// augmentProblems are the problems of train.augment and final.augment,
// each with its key, for images of h x w pixels (zero: a size not known
// yet, not checked).
func (c Config) augmentProblems(h, w int) []string {
	var ps []string
	for _, aug := range [...]struct{ key, value string }{{"train.augment", c.Train.Augment}, {"final.augment", c.Final.Augment}} {
		a, err := runtime.ParseAugment(aug.value)
		if err == nil && h > 0 {
			err = a.Fits(h, w)
		}
		if err != nil {
			ps = append(ps, fmt.Sprintf("%s: %v", aug.key, err))
		}
	}
	return ps
}

// finalAugment is the final phase's augmentation: final.augment, else the
// trials' train.augment.
func (c Config) finalAugment() string { return cmp.Or(c.Final.Augment, c.Train.Augment) }

// TrainConfig is the runtime configuration of a search trial.
func (c Config) TrainConfig() runtime.TrainConfig {
	d, _ := runtime.ParseDevice(c.Device)
	m, _ := runtime.ParseMonitor(c.Train.Monitor)
	metric, _ := c.Train.metric()
	sampling, _ := c.Train.sampling()
	init, _ := onnxgen.ParseInitScheme(c.Train.Init)
	aug, _ := runtime.ParseAugment(c.Train.Augment)
	var opt onnxgen.Optimizer // nil: runtime's Adam
	if c.Train.Optimizer == OptimizerSGD {
		opt = onnxgen.SGD{Momentum: float32(c.Train.Momentum)}
	}
	sched := runtime.LRSchedule{Constant: c.Train.ConstantLR, MaxRestarts: c.Train.Restarts, GiveUpAfter: c.Train.GiveUpAfter}
	if sched.Constant && sched.MaxRestarts > 0 {
		// A constant rate with restarts: the rule, without its decay.
		sched.Constant, sched.DecayFactor = false, 1
	}
	return runtime.TrainConfig{
		Epochs: c.Train.Epochs, BatchSize: c.Train.BatchSize, LR: c.Train.LR, Patience: c.Train.Patience, Optimizer: opt, Monitor: m, Metric: metric, Sampling: sampling,
		Schedule: sched, WeightInit: init, Centre: c.Train.Centre, Augment: aug,
		Device: d, Threads: c.Threads, Budget: c.Budget,
	}
}

// checkUnedited refuses a run whose config.yaml differs in its settings
// from what nasctl last wrote there (rundir.FileConfigWritten; runs made
// before nasctl kept that copy are not checked): resumed, it would train
// the trials left with other settings than those recorded, and mix the
// two in one run.
func checkUnedited(dir string) error {
	written, err := os.ReadFile(filepath.Join(dir, rundir.FileConfigWritten))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	now, err := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	if errors.Is(err, os.ErrNotExist) {
		return nil // ReadConfig says what to do
	} else if err != nil {
		return err
	}
	if err := cutShort(dir); err != nil {
		return err
	}
	changes, err := settingsChanged(written, now)
	if err != nil || len(changes) == 0 { // comments or layout only
		return err
	}
	// The settings a resume may change have flags, which record the change.
	var flags []string
	for _, c := range changes {
		key, _, _ := strings.Cut(c, ":")
		if flag, ok := resumeFlags[key]; ok {
			flags = append(flags, fmt.Sprintf("%s: resume with %s instead", key, flag))
		}
	}
	if len(changes) > 6 {
		changes = append(changes[:5], fmt.Sprintf("and %d more", len(changes)-5))
	}
	hint := ""
	if len(flags) > 0 {
		hint = " (" + strings.Join(flags, "; ") + ")"
	}
	return fmt.Errorf("%s was edited since nasctl wrote it (%s): resumed, the run would go on with other settings than those of the trials it recorded. "+
		"Put them back (nasctl's copy is %s)%s, or start a new run from the edited file (nasctl search KIND --config FILE --name NEW); "+
		"to go on with the edit all the same, delete %s (the trials and final models recorded keep their settings)",
		filepath.Join(dir, rundir.FileConfig), strings.Join(changes, "; "), rundir.FileConfigWritten, hint, rundir.FileConfigWritten)
}

// cutShort says that the run's config.yaml in dir is cut short (a full
// disk, a copy stopped): a beginning of what nasctl wrote, whose missing
// keys would read as settings changed to their defaults; nil when it is
// not, or there is no copy to tell by.
func cutShort(dir string) error {
	written, err := os.ReadFile(filepath.Join(dir, rundir.FileConfigWritten))
	if err != nil {
		return nil
	}
	now, err := os.ReadFile(filepath.Join(dir, rundir.FileConfig))
	if err != nil || len(now) == 0 || len(now) >= len(written) || !bytes.HasPrefix(written, now) {
		return nil
	}
	return fmt.Errorf("%s is cut short: it holds the first %d of the %d bytes nasctl wrote; put nasctl's copy back (cp %s %s) and resume",
		filepath.Join(dir, rundir.FileConfig), len(now), len(written), shell.Quote(filepath.Join(dir, rundir.FileConfigWritten)), shell.Quote(filepath.Join(dir, rundir.FileConfig)))
}

// resumeFlags are the saved settings a resume may change, by the flag that
// does it (Resume).
var resumeFlags = map[string]string{"trials": "--trials N", "data": "--data DIR", "final.skip": "--skip-final", "final.augment": "--final-augment (no final recorded yet)"}

// settingsChanged lists the settings that differ between two
// configurations, with defaults (a key left out for its default is no
// change), as "key.path: old -> new", sorted by key.
func settingsChanged(before, after []byte) ([]string, error) {
	old, err := flatConfig(before)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rundir.FileConfigWritten, err)
	}
	cur, err := flatConfig(after)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rundir.FileConfig, err)
	}
	keys := maps.Clone(old)
	maps.Copy(keys, cur)
	var changes []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		o, inOld := old[k]
		c, inCur := cur[k]
		switch {
		case !inOld:
			changes = append(changes, fmt.Sprintf("%s: added, %s", k, c))
		case !inCur:
			changes = append(changes, fmt.Sprintf("%s: removed, was %s", k, o))
		case o != c:
			changes = append(changes, fmt.Sprintf("%s: %s -> %s", k, o, c))
		}
	}
	return changes, nil
}

// flatConfig reads a configuration, with defaults, as its values by their
// dotted key paths ("train.epochs"), written with fmt.Sprint.
func flatConfig(b []byte) (map[string]string, error) {
	var c Config
	if err := decodeYAMLStrict(b, &c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	full, err := c.WithDefaults().Marshal()
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(full, &doc); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, sub := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
			}
			return
		}
		out[prefix] = fmt.Sprint(v)
	}
	walk("", doc)
	return out, nil
}

// ReadConfig reads the config.yaml of the run in dir, strictly (unknown
// keys are an error).
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, rundir.FileConfig)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Config{}, fmt.Errorf("%s is not a run directory (no %s in it): give a run's folder (nasctl runs list --dir DIR lists the runs in DIR)", dir, rundir.FileConfig)
	case errors.Is(err, syscall.ENOTDIR):
		return Config{}, fmt.Errorf("%s is a file, not a run directory: give a run's folder, the one that holds %s", dir, rundir.FileConfig)
	case err != nil:
		return Config{}, err
	}
	var c Config
	var typeErr *yaml.TypeError
	err = decodeYAMLStrict(b, &c)
	switch {
	case errors.Is(err, io.EOF):
		// nasctl never writes an empty one: defaults would pass for the
		// run's settings, and a resume would not reproduce its trials.
		return Config{}, fmt.Errorf("%s is empty: the run's settings are lost, and the run cannot be read or resumed without them; put them back (a copy of the run, or the settings its search was started with) or start a new run", path)
	case errors.As(err, &typeErr):
		// Unknown keys come from an older format or from an edit gone
		// wrong ("::: not yaml [" reads as the key "::").
		return Config{}, fmt.Errorf("%s: %w (the file was edited or damaged, or written by a nasctl older than its run-directory format; mend the file, or start a new run)", path, err)
	case err != nil:
		return Config{}, fmt.Errorf("%s is not valid YAML: %w; mend the file (it holds the run's settings) or start a new run", path, err)
	}
	return c, nil
}
