package runtime

import (
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// Device is the hardware a Session runs on, through an ONNX Runtime execution
// provider. Parse it from text once, with ParseDevice.
type Device int

const (
	// CPU runs on ONNX Runtime's CPU execution provider. The zero value.
	CPU Device = iota
	// CUDA runs on an NVIDIA GPU through the CUDA execution provider. It needs
	// a GPU build of ONNX Runtime ("make setup-cuda"; the library "make setup"
	// installs is CPU only) and CUDA on the host: see CheckDevice.
	CUDA
)

var deviceNames = []string{CPU: "cpu", CUDA: "cuda"}

// String returns the device's name as ParseDevice accepts it.
func (d Device) String() string {
	if d.valid() {
		return deviceNames[d]
	}
	return fmt.Sprintf("Device(%d)", int(d))
}

// valid reports whether d is one of the named devices.
func (d Device) valid() bool { return d >= 0 && int(d) < len(deviceNames) }

// ParseDevice parses a device name ("cpu" or "cuda", in any case). The error
// lists the valid names.
func ParseDevice(s string) (Device, error) {
	for i, name := range deviceNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return Device(i), nil
		}
	}
	return 0, fmt.Errorf("unknown device %q (valid: %s)", s, strings.Join(deviceNames, ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (d Device) MarshalText() ([]byte, error) { return marshalName(d, d.valid(), "device") }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDevice.
func (d *Device) UnmarshalText(text []byte) error { return unmarshalName(d, text, ParseDevice) }

// GraphOptimization is ONNX Runtime's graph optimisation level for a session.
// Which level is fastest depends on the graph, so measure per graph kind
// (TrainOptimization, EvalOptimization; docs/performance.md, "Graph
// optimisation levels").
type GraphOptimization int

const (
	// OptAll enables every optimisation, layout changes included. The zero
	// value, and ONNX Runtime's own default.
	OptAll GraphOptimization = iota
	// OptDisabled runs the graph as written (only required rewrites).
	OptDisabled
	// OptBasic: constant folding and redundant-node elimination.
	OptBasic
	// OptExtended: OptBasic plus operator fusions.
	OptExtended
	// OptLayout: OptExtended plus layout optimisations (ORT_ENABLE_LAYOUT).
	OptLayout
)

// optOrder lists the levels in order of increasing optimisation, as errors
// list them.
var optOrder = []GraphOptimization{OptDisabled, OptBasic, OptExtended, OptLayout, OptAll}

var optNames = map[GraphOptimization]string{
	OptDisabled: "disabled",
	OptBasic:    "basic",
	OptExtended: "extended",
	OptLayout:   "layout",
	OptAll:      "all",
}

// ortLevels maps to onnxruntime_go's values. ORT_ENABLE_LAYOUT (3) has no
// constant in onnxruntime_go v1.26.0.
var ortLevels = map[GraphOptimization]ort.GraphOptimizationLevel{
	OptDisabled: ort.GraphOptimizationLevelDisableAll,
	OptBasic:    ort.GraphOptimizationLevelEnableBasic,
	OptExtended: ort.GraphOptimizationLevelEnableExtended,
	OptLayout:   ort.GraphOptimizationLevel(3),
	OptAll:      ort.GraphOptimizationLevelEnableAll,
}

// String returns the level's name as ParseGraphOptimization accepts it.
func (g GraphOptimization) String() string {
	if g.valid() {
		return optNames[g]
	}
	return fmt.Sprintf("GraphOptimization(%d)", int(g))
}

// valid reports whether g is one of the named levels.
func (g GraphOptimization) valid() bool {
	_, ok := optNames[g]
	return ok
}

// ParseGraphOptimization parses a level name ("disabled", "basic",
// "extended", "layout" or "all", in any case). The error lists the valid names.
func ParseGraphOptimization(s string) (GraphOptimization, error) {
	for _, g := range optOrder {
		if strings.EqualFold(strings.TrimSpace(s), optNames[g]) {
			return g, nil
		}
	}
	names := make([]string, len(optOrder))
	for i, g := range optOrder {
		names[i] = optNames[g]
	}
	return 0, fmt.Errorf("unknown graph optimisation level %q (valid: %s)", s, strings.Join(names, ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (g GraphOptimization) MarshalText() ([]byte, error) {
	return marshalName(g, g.valid(), "graph optimisation level")
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseGraphOptimization.
func (g *GraphOptimization) UnmarshalText(text []byte) error {
	return unmarshalName(g, text, ParseGraphOptimization)
}

// marshalName is the MarshalText of an enumeration: v's name, or an error
// naming the kind of value when v is not valid.
func marshalName[T interface {
	~int
	fmt.Stringer
}](v T, valid bool, kind string) ([]byte, error) {
	if !valid {
		return nil, fmt.Errorf("invalid %s %d", kind, int(v))
	}
	return []byte(v.String()), nil
}

// unmarshalName is the UnmarshalText of an enumeration: it sets *v to the
// value parse finds in text, and leaves it unchanged on an error.
func unmarshalName[T any](v *T, text []byte, parse func(string) (T, error)) error {
	x, err := parse(string(text))
	if err != nil {
		return err
	}
	*v = x
	return nil
}

// SessionOptions configures NewSession. The zero value runs on the CPU with
// ONNX Runtime's default threads and optimisation level.
type SessionOptions struct {
	// Device selects the execution provider. Zero value: CPU.
	Device Device
	// DeviceID is the GPU ordinal when Device is CUDA; ignored on the CPU.
	// Zero value: the first GPU.
	DeviceID int
	// IntraOpThreads is the number of threads ONNX Runtime uses inside one
	// operator. Zero value: ONNX Runtime's default (one per physical core).
	IntraOpThreads int
	// Optimization is the graph optimisation level. Zero value: OptAll, ONNX
	// Runtime's default.
	Optimization GraphOptimization
	// ProfilePrefix, when set, makes ONNX Runtime write a per-operator timing
	// profile (Chrome trace JSON) to a file starting with it when the session
	// closes.
	ProfilePrefix string
	// NCHWc runs the convolutions whose shapes the graph declares on ONNX
	// Runtime's blocked-layout kernels (see blockConvs), on the CPU when the
	// library has them; ignored otherwise. For graphs whose weights are
	// inputs: ONNX Runtime already does this for constant weights.
	NCHWc bool
	// NoSpin stops the intra-op threads from spinning while they wait for
	// work: sessions timed in turn (package bench) would otherwise spin
	// beside the one being timed.
	NoSpin bool
}

// validate returns every problem with o, or nil.
func (o SessionOptions) validate() error {
	var problems []string
	if !o.Device.valid() {
		problems = append(problems, fmt.Sprintf("Device: invalid value %d", int(o.Device)))
	}
	if o.DeviceID < 0 {
		problems = append(problems, fmt.Sprintf("DeviceID: must be 0 or more, got %d", o.DeviceID))
	}
	if o.IntraOpThreads < 0 {
		problems = append(problems, fmt.Sprintf("IntraOpThreads: must be 0 (default) or more, got %d", o.IntraOpThreads))
	}
	if !o.Optimization.valid() {
		problems = append(problems, fmt.Sprintf("Optimization: invalid value %d", int(o.Optimization)))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("invalid session options: %s", strings.Join(problems, "; "))
}
