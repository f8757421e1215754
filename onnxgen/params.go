package onnxgen

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/nasctl/nasctl/genotype"
)

// Param is one tensor of a network's weights: a trainable tensor, or a
// batch normalisation's running statistic (State).
type Param struct {
	Name   string  // graph input or initializer name, e.g. "conv1.weight"
	Shape  []int64 // Conv weight [F, C/groups, kh, kw]; Dense weight [in, units]; bias [units]
	FanIn  int     // inputs that feed one output value (weights only)
	FanOut int     // outputs that one input value feeds (weights only)
	// Classifier marks the weight of the layer that produces the logits,
	// which no ReLU follows (see InitHe).
	Classifier bool
	Bias       bool // a bias (or a shift, a running mean): initialised to zero
	Ones       bool // a scale or a running variance: initialised to one
	State      bool // a running statistic: updated by the forward pass, not by the optimizer
	Node       int  // index of the genotype.Net node that owns it
}

// Size is the number of values of the tensor.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= int(d)
	}
	return n
}

// Params lists the weights of net in graph order: for each Conv and Dense
// node its weight, then its bias; for each batch normalisation its scale,
// shift, running mean and running variance.
func Params(net *genotype.Net) []Param {
	if net.Arch == nil {
		return nodeParams(net)
	}
	var ps []Param
	for i, nd := range net.Nodes {
		var prefix string
		var w []int64
		var fanIn, fanOut int
		classifier := false
		switch nd.Op {
		case genotype.OpConv:
			prefix = fmt.Sprintf("conv%d", nd.Layer+1)
			k := int64(nd.Kernel)
			w = []int64{int64(nd.Units), int64(nd.In.C), k, k}
			fanIn, fanOut = nd.Kernel*nd.Kernel*nd.In.C, nd.Kernel*nd.Kernel*nd.Units
		case genotype.OpDense:
			prefix = fmt.Sprintf("fc%d", nd.Layer+1)
			if nd.Classifier {
				prefix = "classifier"
			}
			classifier = nd.Classifier
			in := nd.In.Size()
			w = []int64{in, int64(nd.Units)}
			fanIn, fanOut = int(in), nd.Units
		default:
			continue
		}
		ps = append(ps,
			Param{Name: prefix + ".weight", Shape: w, FanIn: fanIn, FanOut: fanOut, Classifier: classifier, Node: i},
			Param{Name: prefix + ".bias", Shape: []int64{int64(nd.Units)}, Bias: true, Node: i})
	}
	return ps
}

// nodeParams names the weights of a network that is not a layer sequence
// by node ("n12.weight").
func nodeParams(net *genotype.Net) []Param {
	var ps []Param
	for i, nd := range net.Nodes {
		prefix := fmt.Sprintf("n%d", i+1)
		switch nd.Op {
		case genotype.OpConv:
			kh, kw, _ := nd.Window()
			cg := nd.In.C / nd.Group()
			ps = append(ps, Param{Name: prefix + ".weight", Shape: []int64{int64(nd.Units), int64(cg), int64(kh), int64(kw)},
				FanIn: kh * kw * cg, FanOut: kh * kw * nd.Units / nd.Group(), Node: i})
			if !nd.NoBias {
				ps = append(ps, Param{Name: prefix + ".bias", Shape: []int64{int64(nd.Units)}, Bias: true, Node: i})
			}
		case genotype.OpBatchNorm:
			c := []int64{int64(nd.In.C)}
			ps = append(ps, Param{Name: prefix + ".scale", Shape: c, Ones: true, Node: i}, Param{Name: prefix + ".shift", Shape: c, Bias: true, Node: i},
				Param{Name: prefix + ".mean", Shape: c, Bias: true, State: true, Node: i}, Param{Name: prefix + ".var", Shape: c, Ones: true, State: true, Node: i})
		case genotype.OpDense:
			in := nd.In.Size()
			ps = append(ps, Param{Name: "classifier.weight", Shape: []int64{in, int64(nd.Units)}, FanIn: int(in), FanOut: nd.Units, Classifier: true, Node: i},
				Param{Name: "classifier.bias", Shape: []int64{int64(nd.Units)}, Bias: true, Node: i})
		}
	}
	return ps
}

// InitScheme is how the weights of a network start. The zero value is
// Glorot's, the founding study's (Keras's default).
type InitScheme uint8

// The initialisation schemes.
const (
	// InitGlorot draws every weight uniformly within
	// sqrt(6/(fan_in+fan_out)) (Glorot & Bengio 2010): variance
	// 2/(fan_in+fan_out), which halves the signal's variance at every ReLU
	// layer whose fan-out is about its fan-in.
	InitGlorot InitScheme = iota
	// InitHe draws the weights of the hidden layers (every one but the
	// classifier, each next to a ReLU) uniformly within sqrt(6/fan_in):
	// variance 2/fan_in, which keeps the variance of the signal through
	// ReLU layers (He et al. 2015, "fan_in" mode; Keras's he_uniform). The
	// classifier, followed by no ReLU, keeps Glorot's.
	InitHe
)

var initNames = []string{"glorot", "he"}

// String returns "glorot" or "he".
func (s InitScheme) String() string {
	if int(s) < len(initNames) {
		return initNames[s]
	}
	return fmt.Sprintf("InitScheme(%d)", s)
}

// ParseInitScheme parses a scheme's name; its error lists the valid ones.
func ParseInitScheme(name string) (InitScheme, error) {
	if i := slices.Index(initNames, name); i >= 0 {
		return InitScheme(i), nil
	}
	return 0, fmt.Errorf("unknown initialisation %q (valid: %s)", name, strings.Join(initNames, ", "))
}

// Limit is the half-width of the uniform distribution that scheme s draws
// p's values from (p a weight, not a bias, scale or statistic).
func (s InitScheme) Limit(p Param) float64 {
	if s == InitHe && !p.Classifier {
		return math.Sqrt(6 / float64(p.FanIn))
	}
	return math.Sqrt(6 / float64(p.FanIn+p.FanOut))
}

// Init returns initial values for params: Glorot-uniform weights (limit
// sqrt(6/(fan_in+fan_out)), as Keras does), zero biases, shifts and means,
// unit scales and variances, drawn from r. It is InitWith(params, InitGlorot, r).
func Init(params []Param, r *rand.Rand) [][]float32 { return InitWith(params, InitGlorot, r) }

// InitWith returns initial values for params: weights uniform within
// scheme's Limit, zero biases, shifts and means, unit scales and variances,
// drawn from r.
func InitWith(params []Param, scheme InitScheme, r *rand.Rand) [][]float32 {
	out := make([][]float32, len(params))
	for i, p := range params {
		v := make([]float32, p.Size())
		if p.Ones {
			for j := range v {
				v[j] = 1
			}
		} else if !p.Bias {
			limit := scheme.Limit(p)
			for j := range v {
				v[j] = float32((2*r.Float64() - 1) * limit)
			}
		}
		out[i] = v
	}
	return out
}

// Metadata is written into an exported model's metadata_props, so the file alone
// says what it expects and where it came from.
type Metadata struct {
	Arch          string             // architecture text form
	Input         genotype.Input     // expected image size
	Normalization string             // how pixels are scaled, e.g. "x/255"
	Classes       []string           // class names, by output index
	DatasetHash   string             // SHA-256 of the training data
	Extra         map[MetaKey]string // more keys (accuracies, seeds...)
}

// MetaKey is a metadata_props key of an exported model.
type MetaKey string

// Metadata keys of exported models. The first six are written from Metadata's
// fields; the others are Extra keys that nasctl's commands write.
const (
	MetaArch          MetaKey = "nasctl.arch"
	MetaInput         MetaKey = "nasctl.input"
	MetaLayout        MetaKey = "nasctl.layout"
	MetaNormalization MetaKey = "nasctl.normalization"
	MetaClasses       MetaKey = "nasctl.classes" // a JSON array of strings
	MetaDatasetHash   MetaKey = "nasctl.dataset_sha256"

	MetaValAccuracy  MetaKey = "nasctl.val_accuracy"  // of the weights exported
	MetaTestAccuracy MetaKey = "nasctl.test_accuracy" // measured on the exported file
	MetaSeed         MetaKey = "nasctl.seed"          // of the training
	MetaRun          MetaKey = "nasctl.run"           // the search run's name
	MetaTrial        MetaKey = "nasctl.trial"         // the search trial the model comes from
	MetaRank         MetaKey = "nasctl.rank"          // in the search's final table
	MetaInterrupted  MetaKey = "nasctl.interrupted"   // "true": the training was cut short
	MetaTraining     MetaKey = "nasctl.training"      // how the weights were trained: a JSON object (runtime.TrainRecord)
	MetaSplit        MetaKey = "nasctl.split"         // the split of the training and of its accuracies: a JSON object (SplitRecord)
	// MetaTestDatasetHash is the data of the test accuracies when they were
	// measured on other data than the training's (export --int8 --calibration).
	MetaTestDatasetHash MetaKey = "nasctl.test_dataset_sha256"
	// MetaTestSplit is the split of the test accuracies when it is not the
	// training's (MetaSplit): --plan or --split-seed chose another.
	MetaTestSplit MetaKey = "nasctl.test_split"
)

// SplitRecord is how a model's data was split into training, validation and
// test images: the plan's name and the shuffle's seed. Measuring a model on
// its data split otherwise counts images it trained on as test images.
type SplitRecord struct {
	Plan string `json:"plan"`
	Seed uint64 `json:"seed"`
}

// String is the record as metadata: its JSON.
func (r SplitRecord) String() string {
	b, _ := json.Marshal(r) // a string and a number always marshal
	return string(b)
}

// Split returns the split info's metadata records, and whether there is one
// (models exported before the key existed have none).
// Interrupted reports a model saved from a training cut short
// (MetaInterrupted): it holds the best epoch finished before the interrupt.
func (info *ModelInfo) Interrupted() bool { return info.Meta[MetaInterrupted] == "true" }

func (info *ModelInfo) Split() (SplitRecord, bool, error) {
	v, ok := info.Meta[MetaSplit]
	if !ok {
		return SplitRecord{}, false, nil
	}
	var r SplitRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil || r.Plan == "" {
		return SplitRecord{}, false, fmt.Errorf("metadata %s: %q is not a split record like {\"plan\":\"metaqnn\",\"seed\":1}", MetaSplit, v)
	}
	return r, true, nil
}

// Normalization is how nasctl scales pixels, written into every export.
const Normalization = "x/255 (pixels scaled to [0, 1])"

func (m Metadata) props() map[MetaKey]string {
	p := map[MetaKey]string{}
	for k, v := range m.Extra {
		p[k] = v
	}
	p[MetaArch] = m.Arch
	p[MetaInput] = m.Input.String()
	p[MetaLayout] = "NCHW float32"
	p[MetaNormalization] = m.Normalization
	classes, _ := json.Marshal(m.Classes) // a []string always marshals
	p[MetaClasses] = string(classes)
	p[MetaDatasetHash] = m.DatasetHash
	return p
}

func sortedKeys(m map[MetaKey]string) []MetaKey {
	keys := make([]MetaKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
