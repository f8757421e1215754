package search

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/natsbench"
	"go.yaml.in/yaml/v3"
)

// RewardKind selects the reward of a NASNet search. Training the cell
// networks (the study's reward) arrives with the cell-network issue as a
// third kind; see Reward.
type RewardKind uint8

const (
	// RewardMock is the founding study's mock reward of a cell pair
	// (controller.MockReward): a test objective, no training.
	RewardMock RewardKind = iota
	// RewardNATSBench is a NATS-Bench table look-up: a cell's test accuracy
	// after 200 epochs divided by 100.
	RewardNATSBench
)

var rewardNames = []string{"mock", "natsbench"}

// RewardNames returns the valid reward names.
func RewardNames() []string { return append([]string(nil), rewardNames...) }

// String returns "mock" or "natsbench".
func (k RewardKind) String() string {
	if int(k) < len(rewardNames) {
		return rewardNames[k]
	}
	return fmt.Sprintf("RewardKind(%d)", k)
}

// ParseRewardKind parses a reward name; its error lists the valid names.
func ParseRewardKind(s string) (RewardKind, error) {
	for i, n := range rewardNames {
		if n == s {
			return RewardKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown reward %q (valid: %s)", s, strings.Join(rewardNames, ", "))
}

// MarshalText writes the name, for YAML and JSON.
func (k RewardKind) MarshalText() ([]byte, error) {
	if int(k) >= len(rewardNames) {
		return nil, fmt.Errorf("unknown reward %d", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText parses the name.
func (k *RewardKind) UnmarshalText(b []byte) error {
	v, err := ParseRewardKind(string(b))
	*k = v
	return err
}

// NASNetConfig holds every setting of a NASNet search. It is read from
// YAML, overridden by flags and saved with the run (config.yaml), so that a
// resumed run goes on with exactly the same settings. Zero fields take the
// defaults given on them (WithDefaults); the saved file holds the effective
// values.
type NASNetConfig struct {
	// Kind marks config.yaml as a NASNet run's; WithDefaults sets it to
	// KindNASNet.
	Kind string `yaml:"kind"`
	// Name of the run; its directory is Dir/Name. Empty: "nasnet-<reward>".
	Name string `yaml:"name"`
	// Dir holds the runs. Empty: "runs".
	Dir string `yaml:"dir"`
	// Reward scores the proposed cells; the zero value is mock.
	Reward RewardKind `yaml:"reward"`
	// Blocks is B, the blocks per cell of the mock reward's cell pairs;
	// zero: 2 (the study's; Zoph et al. use 5). Unused by natsbench, whose
	// cell is fixed (6 edges of 5 operations).
	Blocks int `yaml:"blocks,omitempty"`
	// Dataset is the NATS-Bench accuracy column: cifar10, cifar100 or
	// imagenet16-120; empty: cifar10. natsbench only.
	Dataset string `yaml:"dataset,omitempty"`
	// Episodes is the number of architectures sampled; zero: 800 (the study).
	Episodes int `yaml:"episodes"`
	// Preset names the controller preset (controller.ReinforcePreset) the
	// Controller settings started from; informational.
	Preset string `yaml:"preset"`
	// Controller configures the REINFORCE controller.
	Controller ReinforceSettings `yaml:"controller"`
	// TopK is the number of distinct cells listed in top.json and the
	// report; zero: 10.
	TopK int `yaml:"top_k"`
	// Seed determines the controller's weights and samples.
	Seed uint64 `yaml:"seed"`
}

// ReinforceSettings is controller.Config as config.yaml holds it: the same
// fields (a conversion between the two types keeps them in step) with
// snake_case keys and the baseline by name. Zero values mean the
// controller's defaults, documented on controller.Config.
type ReinforceSettings struct {
	Hidden           int                     `yaml:"hidden"`
	Layers           int                     `yaml:"layers"`
	Embedding        int                     `yaml:"embedding"`
	InitScale        float64                 `yaml:"init_scale"`
	LearningRate     float64                 `yaml:"learning_rate"`
	Beta1            float64                 `yaml:"beta1"`
	Beta2            float64                 `yaml:"beta2"`
	Epsilon          float64                 `yaml:"epsilon"`
	BatchSize        int                     `yaml:"batch_size"`
	ClipNorm         float64                 `yaml:"clip_norm"`
	EntropyWeight    float64                 `yaml:"entropy_weight"`
	Baseline         controller.BaselineKind `yaml:"-"` // written as its name by MarshalYAML
	BaselineDecay    float64                 `yaml:"baseline_decay"`
	SkipBelow        float64                 `yaml:"skip_below"`
	Temperature      float64                 `yaml:"temperature"`
	TemperatureDecay float64                 `yaml:"temperature_decay"`
	MinTemperature   float64                 `yaml:"min_temperature"`
	UntemperedLoss   bool                    `yaml:"untempered_loss"`
}

// SettingsOf returns c as saved settings.
func SettingsOf(c controller.Config) ReinforceSettings { return ReinforceSettings(c) }

// Config returns the controller configuration.
func (r ReinforceSettings) Config() controller.Config { return controller.Config(r) }

// reinforceYAML is ReinforceSettings with the baseline as a name.
type reinforceYAML struct {
	Settings plainReinforce `yaml:",inline"`
	Baseline string         `yaml:"baseline"`
}

// plainReinforce has ReinforceSettings' fields without its YAML methods.
type plainReinforce ReinforceSettings

// MarshalYAML writes the settings with the baseline's name.
func (r ReinforceSettings) MarshalYAML() (any, error) {
	return reinforceYAML{Settings: plainReinforce(r), Baseline: r.Baseline.String()}, nil
}

// UnmarshalYAML reads keys over the current values; unknown keys are an
// error (yaml.v3 does not pass a decoder's KnownFields on to custom
// unmarshalers, so the mapping is decoded again strictly).
func (r *ReinforceSettings) UnmarshalYAML(n *yaml.Node) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	aux := reinforceYAML{Settings: plainReinforce(*r), Baseline: r.Baseline.String()}
	if err := decodeYAMLStrict(b, &aux); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("controller: %w", err)
	}
	kind, err := controller.ParseBaselineKind(aux.Baseline)
	if err != nil {
		return fmt.Errorf("controller.baseline: %w", err)
	}
	*r = ReinforceSettings(aux.Settings)
	r.Baseline = kind
	return nil
}

// DefaultNASNetPreset returns the controller preset a search with reward k
// starts from unless told otherwise, as nasctl benchmark agents does:
// natsbench for natsbench (tuned on that table), paper otherwise. On the
// mock reward (800 episodes, B = 2, seeds 1-5) paper's last-100 mean reward
// is 0.969-0.980, the study preset's 0.944-0.958: the study's skip rule
// leaves out two thirds of the updates.
func DefaultNASNetPreset(k RewardKind) string {
	if k == RewardNATSBench {
		return "natsbench"
	}
	return "paper"
}

// NewNASNetConfig returns the configuration of a search with reward k from
// the named controller preset ("" for DefaultNASNetPreset(k)) and seed 1,
// as MetaQNN's presets; its error lists the valid preset names.
func NewNASNetConfig(k RewardKind, preset string) (NASNetConfig, error) {
	if preset == "" {
		preset = DefaultNASNetPreset(k)
	}
	c, err := controller.ReinforcePreset(preset)
	if err != nil {
		return NASNetConfig{}, err
	}
	return NASNetConfig{Reward: k, Preset: preset, Controller: SettingsOf(c), Seed: 1}, nil
}

// LoadNASNetConfig reads a YAML configuration over base: keys present in the
// file replace base's values. Unknown keys are an error.
func LoadNASNetConfig(path string, base NASNetConfig) (NASNetConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return NASNetConfig{}, err
	}
	c := base
	if err := decodeYAMLStrict(b, &c); err != nil && !errors.Is(err, io.EOF) {
		return NASNetConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WithDefaults fills zero fields. The controller's own zero fields stay
// zero (they mean its defaults); the run saves the filled-in values the
// controller reports (see NewNASNet).
func (c NASNetConfig) WithDefaults() NASNetConfig {
	c.Kind = KindNASNet
	if c.Name == "" {
		c.Name = "nasnet-" + c.Reward.String()
	}
	if c.Dir == "" {
		c.Dir = "runs"
	}
	switch c.Reward {
	case RewardMock:
		if c.Blocks == 0 {
			c.Blocks = 2
		}
	case RewardNATSBench:
		if c.Dataset == "" {
			c.Dataset = natsbench.CIFAR10.String()
		}
	}
	if c.Episodes == 0 {
		c.Episodes = 800
	}
	if c.TopK == 0 {
		c.TopK = 10
	}
	return c
}

// Check returns every problem of the configuration, one per line with its
// field, or nil. It does not look at the file system.
func (c NASNetConfig) Check() error {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if c.Kind != KindNASNet {
		add("kind: %q, want %q", c.Kind, KindNASNet)
	}
	if !validName.MatchString(c.Name) {
		add("name: %q is not a valid run name (letters, digits, '.', '-' and '_', not starting with '.')", c.Name)
	}
	switch c.Reward {
	case RewardMock:
		if c.Blocks < 1 {
			add("blocks: %d, want at least 1", c.Blocks)
		}
		if c.Dataset != "" {
			add("dataset: %q is a NATS-Bench column; it applies to reward natsbench only", c.Dataset)
		}
	case RewardNATSBench:
		if _, err := natsbench.ParseDataset(c.Dataset); err != nil {
			add("dataset: %v", err)
		}
		if c.Blocks != 0 {
			add("blocks: the NATS-Bench cell is fixed (6 edges of 5 operations); blocks applies to reward mock only")
		}
	default:
		add("reward: unknown reward %v (valid: %s)", c.Reward, strings.Join(rewardNames, ", "))
	}
	if c.Episodes < 1 {
		add("episodes: %d, want at least 1", c.Episodes)
	}
	if c.TopK < 1 {
		add("top_k: %d, want at least 1", c.TopK)
	}
	if err := c.Controller.Config().Validate(); err != nil {
		for _, line := range strings.Split(strings.TrimPrefix(err.Error(), "controller config: "), "\n") {
			add("controller: %s", line)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return errors.New(strings.Join(ps, "\n"))
}

// Marshal returns the configuration as YAML.
func (c NASNetConfig) Marshal() ([]byte, error) { return yaml.Marshal(c) }
