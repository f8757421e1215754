// Package genotype describes MetaQNN layer-sequence architectures: their text form,
// their shapes, parameter and multiply-accumulate counts under the study's
// semantics, and the search spaces that constrain them. It knows nothing of ONNX.
package genotype

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Kind is the kind of one layer of a layer-sequence architecture.
type Kind uint8

// Layer kinds, written C(filters,kernel,stride), P(kernel,stride), FC(units),
// GAP() and SM() in the study's text form.
const (
	Conv    Kind = iota + 1 // convolution followed by ReLU
	Pool                    // max-pooling with 'same' padding
	FC                      // fully connected layer followed by ReLU
	GAP                     // global average pooling, then the classifier (terminal)
	Softmax                 // the classifier on the current representation (terminal)
)

var kindNames = map[Kind]string{Conv: "C", Pool: "P", FC: "FC", GAP: "GAP", Softmax: "SM"}

// kindArity is the number of integer arguments each kind takes in the text form.
var kindArity = map[Kind]int{Conv: 3, Pool: 2, FC: 1, GAP: 0, Softmax: 0}

// String returns the kind's name in the text form ("C", "P", "FC", "GAP", "SM").
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Terminal reports whether the kind ends an architecture.
func (k Kind) Terminal() bool { return k == GAP || k == Softmax }

// ParseKind parses a layer name of the text form.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown layer %q (valid: C(filters,kernel,stride), P(kernel,stride), FC(units), GAP(), SM())", s)
}

// Layer is one layer of an architecture. Only the fields of its kind are set;
// the others are zero.
type Layer struct {
	Kind    Kind
	Filters int // Conv: output channels
	Kernel  int // Conv, Pool: square window side
	Stride  int // Conv, Pool
	Units   int // FC: output width
}

// C returns a convolution layer.
func C(filters, kernel, stride int) Layer {
	return Layer{Kind: Conv, Filters: filters, Kernel: kernel, Stride: stride}
}

// P returns a max-pooling layer.
func P(kernel, stride int) Layer { return Layer{Kind: Pool, Kernel: kernel, Stride: stride} }

// Dense returns a fully connected layer FC(units).
func Dense(units int) Layer { return Layer{Kind: FC, Units: units} }

// String returns the layer in the study's text form, e.g. "C(128,5,1)".
func (l Layer) String() string {
	switch l.Kind {
	case Conv:
		return fmt.Sprintf("C(%d,%d,%d)", l.Filters, l.Kernel, l.Stride)
	case Pool:
		return fmt.Sprintf("P(%d,%d)", l.Kernel, l.Stride)
	case FC:
		return fmt.Sprintf("FC(%d)", l.Units)
	default:
		return l.Kind.String() + "()"
	}
}

// Arch is a layer-sequence architecture: zero or more hidden layers followed by
// exactly one terminal layer (GAP or SM).
type Arch []Layer

// String returns the architecture in the study's text form, layers joined by " - ".
func (a Arch) String() string {
	parts := make([]string, len(a))
	for i, l := range a {
		parts[i] = l.String()
	}
	return strings.Join(parts, " - ")
}

// Equal reports whether a and b have the same layers.
func (a Arch) Equal(b Arch) bool { return slices.Equal(a, b) }

// Hidden returns the layers before the terminal one.
func (a Arch) Hidden() Arch {
	if len(a) > 0 && a[len(a)-1].Kind.Terminal() {
		return a[:len(a)-1]
	}
	return a
}

// LayerError is a problem with one layer of an architecture. Layer positions are
// 1-based, as a person counts them.
type LayerError struct {
	Layer int    // 1-based position; 0 when the problem concerns the whole architecture
	Text  string // the layer as written
	Msg   string
}

func (e *LayerError) Error() string {
	if e.Layer == 0 {
		return e.Msg
	}
	if e.Text == "" {
		return fmt.Sprintf("layer %d: %s", e.Layer, e.Msg)
	}
	return fmt.Sprintf("layer %d %q: %s", e.Layer, e.Text, e.Msg)
}

// maxArg bounds every integer argument so that counts cannot overflow.
const maxArg = 1 << 20

// Parse reads an architecture in the study's text form, for example
// "C(128,5,1) - C(64,1,1) - SM()". Spaces are optional. Any positive filter, kernel,
// stride and unit count parses; whether they are allowed is a search space's
// business (Space.Validate). The architecture must end with its only terminal
// layer, GAP() or SM().
func Parse(s string) (Arch, error) {
	texts, err := splitLayers(s)
	if err != nil {
		return nil, err
	}
	arch := make(Arch, 0, len(texts))
	for i, t := range texts {
		l, err := parseLayer(t)
		if err != nil {
			return nil, &LayerError{Layer: i + 1, Text: t, Msg: err.Error()}
		}
		if l.Kind.Terminal() && i != len(texts)-1 {
			return nil, &LayerError{Layer: i + 1, Text: t, Msg: "a terminal layer (GAP or SM) must be the last layer"}
		}
		arch = append(arch, l)
	}
	if last := arch[len(arch)-1]; !last.Kind.Terminal() {
		return nil, &LayerError{Layer: len(arch), Text: texts[len(texts)-1],
			Msg: "the architecture must end with GAP() or SM()"}
	}
	return arch, nil
}

// splitLayers splits the text form at the '-' separators outside parentheses.
func splitLayers(s string) ([]string, error) {
	var texts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, &LayerError{Msg: fmt.Sprintf("unbalanced parentheses: unexpected ')' at character %d", i+1)}
			}
		case '-':
			if depth == 0 {
				texts = append(texts, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, &LayerError{Msg: "unbalanced parentheses: a '(' is never closed"}
	}
	texts = append(texts, strings.TrimSpace(s[start:]))
	if len(texts) == 1 && texts[0] == "" {
		return nil, &LayerError{Msg: `empty architecture; write layers like "C(32,3,1) - P(2,2) - SM()"`}
	}
	for i, t := range texts {
		if t == "" {
			return nil, &LayerError{Layer: i + 1, Msg: `empty layer (two separators "-" in a row, or one at an end)`}
		}
	}
	return texts, nil
}

func parseLayer(t string) (Layer, error) {
	open := strings.IndexByte(t, '(')
	if open < 0 || !strings.HasSuffix(t, ")") {
		return Layer{}, fmt.Errorf("expected NAME(args), e.g. C(64,3,1)")
	}
	kind, err := ParseKind(strings.TrimSpace(t[:open]))
	if err != nil {
		return Layer{}, err
	}
	body := strings.TrimSpace(t[open+1 : len(t)-1])
	if strings.ContainsAny(body, "()") {
		return Layer{}, fmt.Errorf("expected NAME(args) with one pair of parentheses")
	}
	var args []int
	if body != "" {
		for j, f := range strings.Split(body, ",") {
			f = strings.TrimSpace(f)
			v, err := strconv.Atoi(f)
			if err != nil || v < 1 || v > maxArg {
				return Layer{}, fmt.Errorf("argument %d %q is not an integer in [1, %d]", j+1, f, maxArg)
			}
			args = append(args, v)
		}
	}
	if want := kindArity[kind]; len(args) != want {
		return Layer{}, fmt.Errorf("%s takes %d arguments, got %d (%s)", kind, want, len(args), usageOf(kind))
	}
	l := Layer{Kind: kind}
	switch kind {
	case Conv:
		l.Filters, l.Kernel, l.Stride = args[0], args[1], args[2]
	case Pool:
		l.Kernel, l.Stride = args[0], args[1]
	case FC:
		l.Units = args[0]
	}
	return l, nil
}

func usageOf(k Kind) string {
	switch k {
	case Conv:
		return "C(filters,kernel,stride)"
	case Pool:
		return "P(kernel,stride)"
	case FC:
		return "FC(units)"
	}
	return k.String() + "()"
}

// MustParse is Parse for architectures known to be valid, such as test
// tables; it panics on error.
func MustParse(s string) Arch {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}
