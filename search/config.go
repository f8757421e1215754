// Package search runs MetaQNN architecture searches: the trial loop around a
// controller.MetaQNN agent, trial execution (behind the Executor interface),
// the durable run directory with resume, the final retraining of the best
// architectures, and the report with its plots.
package search

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/dataset"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"go.yaml.in/yaml/v3"
)

// Config holds every option of a search. It is read from YAML, overridden by
// flags, and saved with the run (config.yaml) so that a resumed run goes on
// with exactly the same settings. Zero fields take the defaults given on them;
// the presets are values of this struct.
type Config struct {
	// Name of the run; its directory is Dir/Name. Empty: "metaqnn-<preset>".
	Name string `yaml:"name"`
	// Dir holds the runs. Empty: "runs".
	Dir string `yaml:"dir"`
	// Data is the image folder (see nasctl dataset --help for layouts).
	Data string `yaml:"data"`
	// Input resizes the images, HxWxC; empty: the data's own size.
	Input string `yaml:"input,omitempty"`
	// Split is the split plan (metaqnn: 30% test, 20% of the rest
	// validation) and SplitSeed its shuffle seed (the presets use 1, as
	// nasctl train and eval do by default). Empty plan: metaqnn.
	Split     string `yaml:"split"`
	SplitSeed uint64 `yaml:"split_seed"`
	// DataFraction keeps this share of the training split for the search's
	// trials (the validation and test splits are kept whole; the final phase
	// trains on the whole training split). Zero: 1.
	DataFraction float64 `yaml:"data_fraction"`

	// Space is the search space: a preset name or a full description.
	Space SpaceSpec `yaml:"space"`
	// Schedule is the epsilon schedule: a preset name or a list of phases.
	Schedule ScheduleSpec `yaml:"schedule"`
	// Agent configures Q-learning (alpha, gamma, initial Q, replay).
	Agent controller.QConfig `yaml:"agent"`

	// Train configures each trial's training.
	Train TrainSettings `yaml:"train"`
	// Final configures the retraining of the best architectures.
	Final FinalSettings `yaml:"final"`
	// Budget refuses architectures too costly to train, before training.
	Budget runtime.Budget `yaml:"budget"`
	// Reward makes the search latency-aware (MnasNet's soft reward or hard
	// limits); the zero value rewards validation accuracy.
	Reward RewardSettings `yaml:"reward,omitempty"`

	// Workers is the number of trials trained at once; zero: 1. Threads is
	// each worker's ONNX Runtime intra-op threads; zero: ONNX Runtime's
	// default (one per core).
	Workers int `yaml:"workers"`
	Threads int `yaml:"threads"`
	// Device is cpu or cuda; empty: cpu.
	Device string `yaml:"device"`
	// Seed determines the agent's choices, the weights and the shuffling.
	Seed uint64 `yaml:"seed"`
}

// TrainSettings configure the training of one trial (see runtime.TrainConfig).
type TrainSettings struct {
	Epochs    int     `yaml:"epochs"`     // zero: 15
	BatchSize int     `yaml:"batch_size"` // zero: 128
	LR        float64 `yaml:"lr"`         // zero: 1e-3 (Adam, beta1 0.5)
	Patience  int     `yaml:"patience"`   // zero: 6; negative: no early stopping
	// ConstantLR turns off Baker et al.'s learning-rate rule.
	ConstantLR bool `yaml:"constant_lr"`
}

// FinalSettings configure the final phase.
type FinalSettings struct {
	// TopK architectures by validation accuracy are retrained; zero: 10.
	TopK int `yaml:"top_k"`
	// EpochFactor multiplies Train.Epochs for the retraining; zero: 2.
	EpochFactor float64 `yaml:"epoch_factor"`
	// LR and Patience of the retraining; zero: Train's.
	LR       float64 `yaml:"lr,omitempty"`
	Patience int     `yaml:"patience,omitempty"`
	// Skip leaves out the final phase.
	Skip bool `yaml:"skip"`
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
	var sp genotype.Space
	if err := n.Decode(&sp); err != nil {
		return err
	}
	s.Space = sp
	return nil
}

// MarshalYAML writes the full description.
func (s SpaceSpec) MarshalYAML() (any, error) { return s.Space, nil }

// ScheduleSpec is an epsilon schedule in a configuration: a preset name
// (baker2017, study, cpu), "eps:models,..." or a list of phases.
type ScheduleSpec struct{ controller.Schedule }

// UnmarshalYAML accepts a preset name, "eps:models,..." or a list.
func (s *ScheduleSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		p, err := controller.ParseSchedule(n.Value)
		if err != nil {
			return err
		}
		s.Schedule = p
		return nil
	}
	return n.Decode(&s.Schedule)
}

// MarshalYAML writes the phases.
func (s ScheduleSpec) MarshalYAML() (any, error) { return []controller.Phase(s.Schedule), nil }

// CPUSpace is the search space of the CPU preset: the study's space with
// filter counts divided by 8 and FC widths by 4, only non-overlapping pooling
// windows (kernel <= stride), whose gradient is several times cheaper on ONNX
// Runtime than that of overlapping ones, and at most 4M multiply-accumulates
// per image in the hidden layers (about 1,000 training images per second on
// one core of this project's machine).
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

// Presets of a whole search.
var presets = map[string]Config{
	// cpu: sized for a 2-core machine: the README's main job.
	"cpu": {
		Input: "32x32x1", DataFraction: 0.5, SplitSeed: 1, Seed: 1,
		Space: SpaceSpec{CPUSpace}, Schedule: ScheduleSpec{controller.ScheduleCPU},
		Agent: controller.QConfig{Alpha: 0.1},
		Train: TrainSettings{Epochs: 10, BatchSize: 32, LR: 3e-3, ConstantLR: true},
		// The retraining fine-tunes from the search weights: 30 epochs at a
		// third of the rate, stopping after 10 without progress. On one
		// run's 10 winners (runs of this machine), against 20 epochs at 3e-3
		// with patience 6: best-by-validation test accuracy 99.08% against
		// 97.75%, 3 against 1 winners above 98%; the best epochs fell at
		// 26-30, so twice the epochs is not enough at this rate.
		Final:   FinalSettings{EpochFactor: 3, LR: 1e-3, Patience: 10},
		Budget:  runtime.Budget{MaxMACs: 5_000_000},
		Workers: 2, Threads: 1,
	},
	// study: the founding study's settings (a GPU's work: about 2 hours on an A10G).
	"study": {
		SplitSeed: 1, Seed: 1,
		Space: SpaceSpec{genotype.Study}, Schedule: ScheduleSpec{controller.ScheduleStudy},
		Agent: controller.QConfig{Replay: 10},
		Train: TrainSettings{Epochs: 15, BatchSize: 128, LR: 1e-3},
	},
	// baker2017: Baker et al.'s space and schedule (2,700 models).
	"baker2017": {
		SplitSeed: 1, Seed: 1,
		Space: SpaceSpec{genotype.Baker2017}, Schedule: ScheduleSpec{controller.ScheduleBaker2017},
		Train: TrainSettings{Epochs: 20, BatchSize: 128, LR: 1e-3},
	},
}

// PresetNames lists the search presets.
func PresetNames() []string { return []string{"cpu", "study", "baker2017"} }

// Preset returns a copy of a named search configuration.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (valid: %s)", name, strings.Join(PresetNames(), ", "))
	}
	c.Space = SpaceSpec{c.Space.Clone()}
	c.Schedule = ScheduleSpec{append(controller.Schedule(nil), c.Schedule.Schedule...)}
	if c.Name == "" {
		c.Name = "metaqnn-" + name
	}
	return c, nil
}

// LoadConfig reads a YAML configuration over base (a preset): keys present in
// the file replace base's values. Unknown keys are an error.
func LoadConfig(path string, base Config) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	c := base
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Dir == "" {
		c.Dir = "runs"
	}
	if c.Split == "" {
		c.Split = "metaqnn"
	}
	if c.DataFraction == 0 {
		c.DataFraction = 1
	}
	if c.Space.Name == "" && len(c.Space.ConvFilters) == 0 {
		c.Space = SpaceSpec{genotype.Study.Clone()}
	}
	if len(c.Schedule.Schedule) == 0 {
		c.Schedule = ScheduleSpec{append(controller.Schedule(nil), controller.ScheduleStudy...)}
	}
	c.Agent = c.Agent.WithDefaults()
	c.Reward = c.Reward.withDefaults()
	if c.Train.Epochs == 0 {
		c.Train.Epochs = 15
	}
	if c.Train.BatchSize == 0 {
		c.Train.BatchSize = 128
	}
	if c.Train.LR == 0 {
		c.Train.LR = 1e-3
	}
	if c.Train.Patience == 0 {
		c.Train.Patience = 6
	}
	if c.Final.TopK == 0 {
		c.Final.TopK = 10
	}
	if c.Final.EpochFactor == 0 {
		c.Final.EpochFactor = 2
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Device == "" {
		c.Device = "cpu"
	}
	return c
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

// Check returns every problem of the configuration, each with its field, or
// nil. It does not look at the file system.
func (c Config) Check() error {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if !validName.MatchString(c.Name) {
		add("name: %q is not a valid run name (letters, digits, '.', '-' and '_', not starting with '.')", c.Name)
	}
	if c.Data == "" {
		add("data: an image folder is required")
	}
	if c.Input != "" {
		if _, err := genotype.ParseInput(c.Input); err != nil {
			add("input: %v", err)
		}
	}
	if _, err := dataset.ParseSplitPlan(c.Split); err != nil {
		add("split: %v", err)
	}
	if !(c.DataFraction > 0 && c.DataFraction <= 1) {
		add("data_fraction: %v is not in (0, 1]", c.DataFraction)
	}
	if err := c.Space.Verify(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			add("space.%s", line)
		}
	}
	if err := c.Schedule.Check(); err != nil {
		add("schedule: %v", err)
	}
	if c.Agent.Alpha < 0 || c.Agent.Alpha > 1 || c.Agent.Gamma < 0 || c.Agent.Gamma > 1 {
		add("agent: alpha and gamma must be in [0, 1]")
	}
	if c.Train.Epochs < 0 || c.Train.BatchSize < 0 || c.Train.LR < 0 {
		add("train: epochs, batch_size and lr must not be negative")
	}
	if c.Final.TopK < 0 || c.Final.EpochFactor < 0 || c.Final.LR < 0 || c.Final.Patience < 0 {
		add("final: top_k, epoch_factor, lr and patience must not be negative")
	}
	if c.Workers < 1 || c.Threads < 0 {
		add("workers must be at least 1 and threads not negative")
	}
	if _, err := runtime.ParseDevice(c.Device); err != nil {
		add("device: %v", err)
	}
	ps = append(ps, c.Reward.check()...)
	if len(ps) == 0 {
		return nil
	}
	return errors.New(strings.Join(ps, "\n"))
}

// TrainConfig is the runtime configuration of a search trial.
func (c Config) TrainConfig() runtime.TrainConfig {
	d, _ := runtime.ParseDevice(c.Device)
	return runtime.TrainConfig{
		Epochs: c.Train.Epochs, BatchSize: c.Train.BatchSize, LR: c.Train.LR, Patience: c.Train.Patience,
		Schedule: runtime.LRSchedule{Constant: c.Train.ConstantLR}, Device: d, Threads: c.Threads, Budget: c.Budget,
	}
}

// Marshal returns the configuration as YAML.
func (c Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }
