package search

import (
	"errors"
	"fmt"
	"io"

	"github.com/nasctl/nasctl/controller"
	"go.yaml.in/yaml/v3"
)

// ReinforceSettings configure the REINFORCE controller of a NASNet search:
// the preset its settings started from (informational) and the settings.
type ReinforceSettings struct {
	Preset     string             `yaml:"preset"`
	Controller ControllerSettings `yaml:",inline"`
}

// ControllerSettings is controller.ReinforceConfig as config.yaml holds it:
// the same fields (a conversion between the two types keeps them in step)
// with snake_case keys and the baseline by name. Zero values mean the
// controller's defaults, documented on controller.ReinforceConfig.
type ControllerSettings struct {
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

// ControllerOf returns c as saved settings.
func ControllerOf(c controller.ReinforceConfig) ControllerSettings { return ControllerSettings(c) }

// Config returns the controller configuration.
func (r ControllerSettings) Config() controller.ReinforceConfig { return controller.ReinforceConfig(r) }

// reinforceYAML is ReinforceSettings with the baseline as a name.
type reinforceYAML struct {
	Preset   string          `yaml:"preset"`
	Settings plainController `yaml:",inline"`
	Baseline string          `yaml:"baseline"`
}

// plainController has ControllerSettings' fields without YAML methods.
type plainController ControllerSettings

// MarshalYAML writes the settings with the baseline's name.
func (r ReinforceSettings) MarshalYAML() (any, error) {
	return reinforceYAML{Preset: r.Preset, Settings: plainController(r.Controller), Baseline: r.Controller.Baseline.String()}, nil
}

// IsZero reports unset settings (YAML omitempty).
func (r ReinforceSettings) IsZero() bool { return r == ReinforceSettings{} }

// fileLines makes the line numbers of err, an error of decoding mapping n
// written again (one line per key, as the settings' values are scalars),
// those of n's keys in the file.
func fileLines(err error, n *yaml.Node) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) || n.Kind != yaml.MappingNode {
		return err
	}
	for i, e := range typeErr.Errors {
		typeErr.Errors[i] = yamlLine.ReplaceAllStringFunc(e, func(l string) string {
			var k int
			if _, err := fmt.Sscanf(l, "line %d:", &k); err == nil && k >= 1 && 2*k-2 < len(n.Content) {
				return fmt.Sprintf("line %d:", n.Content[2*k-2].Line)
			}
			return l
		})
	}
	return err
}

// UnmarshalYAML reads keys over the current values; unknown keys are an
// error (yaml.v3 does not pass a decoder's KnownFields on to custom
// unmarshalers, so the mapping is decoded again strictly).
func (r *ReinforceSettings) UnmarshalYAML(n *yaml.Node) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	aux := reinforceYAML{Preset: r.Preset, Settings: plainController(r.Controller), Baseline: r.Controller.Baseline.String()}
	if err := decodeYAMLStrict(b, &aux); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reinforce: %w", fileLines(err, n))
	}
	kind, err := controller.ParseBaselineKind(aux.Baseline)
	if err != nil {
		return fmt.Errorf("reinforce.baseline: %w", err)
	}
	r.Preset, r.Controller = aux.Preset, ControllerSettings(aux.Settings)
	r.Controller.Baseline = kind
	return nil
}
