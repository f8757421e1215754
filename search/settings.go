package search

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

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

// changedFrom names the settings of r that differ from those of base, as
// config.yaml's keys with r's values ("learning_rate 0.05"), in the order
// of the fields; those whose keys are in except are left out.
func (r ControllerSettings) changedFrom(base ControllerSettings, except ...string) []string {
	var out []string
	v, b := reflect.ValueOf(r), reflect.ValueOf(base)
	for i, f := range reflect.VisibleFields(v.Type()) {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			name = strings.ToLower(f.Name)
		}
		if !v.Field(i).Equal(b.Field(i)) && !slices.Contains(except, name) {
			out = append(out, fmt.Sprintf("%s %v", name, v.Field(i)))
		}
	}
	return out
}

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

// UnmarshalYAML reads keys over the current values; unknown keys are an
// error. yaml.v3 does not pass a decoder's KnownFields on to custom
// unmarshalers, so the keys are checked here, by the node's own lines (a
// mapping written out again and decoded strictly would count its own).
func (r *ReinforceSettings) UnmarshalYAML(n *yaml.Node) error {
	aux := reinforceYAML{Preset: r.Preset, Settings: plainController(r.Controller), Baseline: r.Controller.Baseline.String()}
	var problems []string
	known := yamlKeys(reflect.TypeFor[reinforceYAML]())
	for _, k := range keyNodes(n) {
		if k.Kind == yaml.ScalarNode && !known[k.Value] { // a key that is no scalar is Decode's error
			problems = append(problems, fmt.Sprintf("line %d: unknown key %q", k.Line, k.Value))
		}
	}
	var typeErr *yaml.TypeError
	if err := n.Decode(&aux); errors.As(err, &typeErr) {
		problems = append(problems, typeErr.Errors...)
	} else if err != nil {
		return fmt.Errorf("reinforce: %w", err)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b string) int { return cmp.Compare(lineOf(a), lineOf(b)) })
		return fmt.Errorf("reinforce: %w", &yaml.TypeError{Errors: problems})
	}
	kind, err := controller.ParseBaselineKind(aux.Baseline)
	if err != nil {
		return fmt.Errorf("reinforce.baseline: %w", err)
	}
	r.Preset, r.Controller = aux.Preset, ControllerSettings(aux.Settings)
	r.Controller.Baseline = kind
	return nil
}

// yamlKeys are the keys a struct of type t takes in YAML, its inline
// fields' included.
func yamlKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline"):
			maps.Copy(keys, yamlKeys(f.Type))
		case name != "":
			keys[name] = true
		default:
			keys[strings.ToLower(f.Name)] = true
		}
	}
	return keys
}

// keyNodes are the keys of mapping n, those a merge key (<<) brings in
// included.
func keyNodes(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var keys []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Tag == "!!merge" {
				keys = append(keys, keyNodes(n.Content[i+1])...)
			} else {
				keys = append(keys, k)
			}
		}
	case yaml.SequenceNode: // << of several mappings
		for _, c := range n.Content {
			keys = append(keys, keyNodes(c)...)
		}
	}
	return keys
}

// lineOf is the line of a yaml.v3 error ("line 4: ..."), 0 if it names none.
func lineOf(e string) int {
	var n int
	fmt.Sscanf(e, "line %d:", &n)
	return n
}
