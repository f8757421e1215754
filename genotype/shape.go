package genotype

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Input is the shape of one input image.
type Input struct {
	Height, Width, Channels int
}

// StudyInput is the study's input: 64x64 grayscale.
var StudyInput = Input{Height: 64, Width: 64, Channels: 1}

// String returns the input as HxWxC, e.g. "64x64x1"; an image size whose
// channels are left to the images (ParseImageSize) as HxW.
func (in Input) String() string {
	if in.Channels == 0 {
		return fmt.Sprintf("%dx%d", in.Height, in.Width)
	}
	return fmt.Sprintf("%dx%dx%d", in.Height, in.Width, in.Channels)
}

// ParseInput reads an input shape written HxWxC ("64x64x1") or HxW (one channel).
func ParseInput(s string) (Input, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) != 2 && len(parts) != 3 {
		return Input{}, fmt.Errorf("input shape %q: want HEIGHTxWIDTH or HEIGHTxWIDTHxCHANNELS, e.g. 32x32 or 64x64x1", s)
	}
	v := make([]int, 3)
	v[2] = 1
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 1<<14 {
			return Input{}, fmt.Errorf("input shape %q: %q is not a size in [1, 16384]", s, p)
		}
		v[i] = n
	}
	return Input{Height: v[0], Width: v[1], Channels: v[2]}, nil
}

// ParseImageSize reads the size images are resized to: HxWxC, or HxW to
// leave the channels to the images (Channels 0: one when every image is
// gray, else three), so that an RGB folder is not made gray unasked.
func ParseImageSize(s string) (Input, error) {
	in, err := ParseInput(s)
	if err == nil && strings.Count(s, "x")+strings.Count(s, "X") == 1 {
		in.Channels = 0
	}
	return in, err
}

// Shape is the shape of one image's activation. A flat vector has Flat set and its
// length in C (H = W = 1).
type Shape struct {
	C, H, W int
	Flat    bool
}

// Size is the number of values in the activation.
func (s Shape) Size() int64 { return int64(s.C) * int64(s.H) * int64(s.W) }

// String returns "HxWxC" for a spatial shape and the length for a flat one.
func (s Shape) String() string {
	if s.Flat {
		return strconv.Itoa(s.C)
	}
	return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C)
}

// Op is an operation of the network an architecture describes.
type Op uint8

// Operations of a Net. The first six are those of layer sequences, in the
// order the study's builder emits them; the rest appear in cell networks.
const (
	OpConv      Op = iota + 1 // convolution (with bias unless NoBias), then ReLU when ReLU is set
	OpMaxPool                 // max-pooling; padded cells never win
	OpDropout                 // inverted dropout during training, identity otherwise
	OpFlatten                 // CxHxW to a vector, channel-major
	OpDense                   // fully connected with bias; ReLU unless it is the classifier
	OpGlobalAvg               // mean over the spatial positions of each channel
	OpAvgPool                 // average pooling; padded cells are not counted
	OpAdd                     // element-wise sum of two inputs of one shape
	OpConcat                  // concatenation of the inputs along the channels
	OpReLU                    // max(x, 0)
	OpBatchNorm               // batch normalisation: batch statistics in training, running ones otherwise
)

var opNames = map[Op]string{OpConv: "Conv", OpMaxPool: "MaxPool", OpDropout: "Dropout",
	OpFlatten: "Flatten", OpDense: "Dense", OpGlobalAvg: "GlobalAveragePool", OpAvgPool: "AveragePool",
	OpAdd: "Add", OpConcat: "Concat", OpReLU: "Relu", OpBatchNorm: "BatchNormalization"}

func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Pads are the zero (convolution) or ignored (pooling) cells added on each side.
type Pads struct{ Top, Left, Bottom, Right int }

// Node is one operation of a Net.
type Node struct {
	Op    Op
	Layer int // index in Net.Parts of the part (layer or cell) the node implements
	// Inputs are the nodes the operation reads, by index in Net.Nodes, -1
	// for the input image; nil means the previous node (the image for the
	// first), as in every layer sequence.
	Inputs []int
	In     Shape // of the first input
	Out    Shape

	Kernel, Stride int     // OpConv, OpMaxPool, OpAvgPool: the window's height and the stride
	KernelW        int     // OpConv: the window's width when it is not square; 0: Kernel
	Dilation       int     // OpConv: spacing of the kernel's taps; 0 or 1: none
	Groups         int     // OpConv: groups of channels (C for depthwise); 0 or 1: none
	NoBias         bool    // OpConv: no bias (a batch normalisation follows)
	Pads           Pads    // OpConv, OpMaxPool, OpAvgPool
	Units          int     // OpConv: filters; OpDense: outputs
	ReLU           bool    // OpConv, OpDense: a ReLU follows
	Classifier     bool    // OpDense: the final layer producing the logits
	Rate           float64 // OpDropout: probability of dropping a value

	Params int64 // weights and biases
	MACs   int64 // multiply-accumulates per image
}

// Window returns a windowed node's kernel height and width and its
// dilation (at least 1).
func (nd Node) Window() (kh, kw, dilation int) {
	return nd.Kernel, cmp.Or(nd.KernelW, nd.Kernel), max(nd.Dilation, 1)
}

// Group returns a convolution's number of groups (at least 1).
func (nd Node) Group() int { return max(nd.Groups, 1) }

// Sources returns the nodes a node reads (-1: the image): Inputs, or the
// previous node.
func (n *Net) Sources(i int) []int {
	if ins := n.Nodes[i].Inputs; ins != nil {
		return ins
	}
	return []int{i - 1}
}

// Chain reports whether every node reads the one before it: a layer
// sequence's network.
func (n *Net) Chain() bool {
	for _, nd := range n.Nodes {
		if nd.Inputs != nil {
			return false
		}
	}
	return true
}

// Net is an architecture made concrete for an input shape and a number of
// classes, under the study's semantics:
//   - a convolution that is the first layer uses 'valid' padding, every other one
//     'same'; max-pooling uses 'same' padding (output ceil(n/stride));
//   - ReLU follows every convolution and hidden FC layer;
//   - a Flatten precedes the first FC or SM that follows a spatial layer;
//   - GAP is global average pooling followed by the classifier; SM is the
//     classifier alone;
//   - the classifier is Dense(1) with a sigmoid for 2 classes (the study's single
//     unit) and Dense(K) with a softmax for K > 2;
//   - dropout follows every layer i (0-based) with (i+1) % 2 == 0 except SM; the
//     k-th dropout has rate k/(2D), D = floor(number of non-SM layers / 2). After a
//     GAP layer it acts on the pooled features, before the classifier.
type Net struct {
	// Genotype is what the network was built from; Arch is that when it is
	// a layer sequence (nil otherwise).
	Genotype Genotype
	Arch     Arch
	// Parts name the parts nodes belong to (Node.Layer): the layers of a
	// layer sequence, the stem, cells and classifier of a cell network.
	Parts   []string
	Input   Input
	Classes int
	Nodes   []Node
}

// Build makes the architecture concrete for the input shape and number of
// classes (at least 2). It fails when a layer cannot be applied, for example a
// 'valid' convolution larger than its input or a convolution after an FC layer.
func (a Arch) Build(in Input, classes int) (*Net, error) {
	if len(a) == 0 {
		return nil, &LayerError{Msg: "empty architecture"}
	}
	if classes < 2 {
		return nil, fmt.Errorf("classes = %d: need at least 2", classes)
	}
	if in.Height < 1 || in.Width < 1 || in.Channels < 1 {
		return nil, fmt.Errorf("input %s: every dimension must be at least 1", in)
	}
	if !a[len(a)-1].Kind.Terminal() {
		return nil, &LayerError{Layer: len(a), Text: a[len(a)-1].String(), Msg: "the architecture must end with GAP() or SM()"}
	}
	nonSM := 0
	for _, l := range a {
		if l.Kind != Softmax {
			nonSM++
		}
	}
	dropouts := nonSM / 2
	n := &Net{Genotype: a, Arch: a, Input: in, Classes: classes}
	for _, l := range a {
		n.Parts = append(n.Parts, l.String())
	}
	cur := Shape{C: in.Channels, H: in.Height, W: in.Width}
	k := 0 // dropouts placed so far
	for i, l := range a {
		fail := func(format string, args ...any) error {
			return &LayerError{Layer: i + 1, Text: l.String(), Msg: fmt.Sprintf(format, args...)}
		}
		if l.Kind.Terminal() && i != len(a)-1 {
			return nil, fail("a terminal layer (GAP or SM) must be the last layer")
		}
		if (l.Kind == Conv || l.Kind == Pool || l.Kind == GAP) && cur.Flat {
			return nil, fail("%s needs a spatial input but follows a fully connected layer", l.Kind)
		}
		switch l.Kind {
		case Conv:
			nd := Node{Op: OpConv, Layer: i, In: cur, Kernel: l.Kernel, Stride: l.Stride, Units: l.Filters, ReLU: true}
			if i == 0 {
				if l.Kernel > cur.H || l.Kernel > cur.W {
					return nil, fail("kernel %d exceeds the %dx%d input of a 'valid' first convolution", l.Kernel, cur.H, cur.W)
				}
				nd.Out = Shape{C: l.Filters, H: (cur.H-l.Kernel)/l.Stride + 1, W: (cur.W-l.Kernel)/l.Stride + 1}
			} else {
				var oh, ow int
				oh, nd.Pads.Top, nd.Pads.Bottom = same(cur.H, l.Kernel, l.Stride)
				ow, nd.Pads.Left, nd.Pads.Right = same(cur.W, l.Kernel, l.Stride)
				nd.Out = Shape{C: l.Filters, H: oh, W: ow}
			}
			nd.Params = int64(l.Kernel)*int64(l.Kernel)*int64(cur.C)*int64(l.Filters) + int64(l.Filters)
			nd.MACs = nd.Out.Size() * int64(l.Kernel) * int64(l.Kernel) * int64(cur.C)
			n.Nodes = append(n.Nodes, nd)
		case Pool:
			nd := Node{Op: OpMaxPool, Layer: i, In: cur, Kernel: l.Kernel, Stride: l.Stride}
			var oh, ow int
			oh, nd.Pads.Top, nd.Pads.Bottom = same(cur.H, l.Kernel, l.Stride)
			ow, nd.Pads.Left, nd.Pads.Right = same(cur.W, l.Kernel, l.Stride)
			nd.Out = Shape{C: cur.C, H: oh, W: ow}
			n.Nodes = append(n.Nodes, nd)
		case FC:
			n.flatten(i)
			in := n.last(cur)
			nd := Node{Op: OpDense, Layer: i, In: in, Out: Shape{C: l.Units, H: 1, W: 1, Flat: true}, Units: l.Units, ReLU: true}
			nd.Params = in.Size()*int64(l.Units) + int64(l.Units)
			nd.MACs = in.Size() * int64(l.Units)
			n.Nodes = append(n.Nodes, nd)
		case GAP:
			n.Nodes = append(n.Nodes, Node{Op: OpGlobalAvg, Layer: i, In: cur, Out: Shape{C: cur.C, H: 1, W: 1, Flat: true}})
		}
		cur = n.last(cur)
		if l.Kind != Softmax && (i+1)%2 == 0 {
			k++
			n.Nodes = append(n.Nodes, Node{Op: OpDropout, Layer: i, In: cur, Out: cur, Rate: float64(k) / float64(2*dropouts)})
		}
		if l.Kind.Terminal() {
			n.flatten(i)
			in := n.last(cur)
			units := classes
			if classes == 2 {
				units = 1
			}
			nd := Node{Op: OpDense, Layer: i, In: in, Out: Shape{C: units, H: 1, W: 1, Flat: true}, Units: units, Classifier: true}
			nd.Params = in.Size()*int64(units) + int64(units)
			nd.MACs = in.Size() * int64(units)
			n.Nodes = append(n.Nodes, nd)
			cur = nd.Out
		}
	}
	return n, nil
}

// same returns the output size and the padding before and after of a 'same'
// window: output ceil(n/stride), the padding split with the extra cell after.
func same(n, kernel, stride int) (out, before, after int) {
	out = (n + stride - 1) / stride
	total := max((out-1)*stride+kernel-n, 0)
	return out, total / 2, total - total/2
}

// last returns the output shape of the last node, or in when there is none.
func (n *Net) last(in Shape) Shape {
	if len(n.Nodes) == 0 {
		return in
	}
	return n.Nodes[len(n.Nodes)-1].Out
}

// flatten appends a Flatten node when the current representation is spatial.
func (n *Net) flatten(layer int) {
	cur := n.last(Shape{C: n.Input.Channels, H: n.Input.Height, W: n.Input.Width})
	if cur.Flat {
		return
	}
	n.Nodes = append(n.Nodes, Node{Op: OpFlatten, Layer: layer, In: cur, Out: Shape{C: int(cur.Size()), H: 1, W: 1, Flat: true}})
}

// Output is the shape of the logits: 1 for two classes, K otherwise.
func (n *Net) Output() Shape { return n.Nodes[len(n.Nodes)-1].Out }

// Params is the number of trainable parameters.
func (n *Net) Params() int64 {
	var p int64
	for _, nd := range n.Nodes {
		p += nd.Params
	}
	return p
}

// MACs is the number of multiply-accumulates of one image's forward pass
// (convolutions and dense layers; pooling and activations are not counted).
func (n *Net) MACs() int64 {
	var m int64
	for _, nd := range n.Nodes {
		m += nd.MACs
	}
	return m
}

// FLOPs is 2 x MACs.
func (n *Net) FLOPs() int64 { return 2 * n.MACs() }

// ActivationBytes is the float32 memory of every activation of one image's
// forward pass (the input and each node's output; ReLU works in place), which is
// what training keeps for the backward pass.
func (n *Net) ActivationBytes() int64 {
	total := int64(n.Input.Height) * int64(n.Input.Width) * int64(n.Input.Channels)
	for _, nd := range n.Nodes {
		if nd.Op != OpFlatten {
			total += nd.Out.Size()
		}
	}
	return 4 * total
}

// PeakActivationBytes is the largest float32 memory one node needs for its input
// and output at once, for one image: the peak of inference with buffer reuse.
func (n *Net) PeakActivationBytes() int64 {
	var peak int64
	for _, nd := range n.Nodes {
		if nd.Op == OpFlatten || nd.Op == OpDropout {
			continue
		}
		peak = max(peak, nd.In.Size()+nd.Out.Size())
	}
	return 4 * peak
}

// LayerSummary aggregates the nodes of one architecture layer.
type LayerSummary struct {
	Index   int    // 0-based position in the architecture
	Layer   string // text form
	Out     Shape  // output of the layer (for GAP and SM: the logits)
	Params  int64
	MACs    int64
	Dropout float64 // rate of the dropout after the layer, 0 if none
	// Unused marks a part that builds no node: a cell whose output no later
	// cell reads, left out of the network (CellNet.Build).
	Unused bool
}

// Layers returns one summary per part: per layer of a layer sequence, per
// stem, cell and classifier of a cell network.
func (n *Net) Layers() []LayerSummary {
	out := make([]LayerSummary, len(n.Parts))
	for i, name := range n.Parts {
		out[i] = LayerSummary{Index: i, Layer: name, Unused: true}
	}
	for _, nd := range n.Nodes {
		s := &out[nd.Layer]
		s.Unused = false
		s.Params += nd.Params
		s.MACs += nd.MACs
		if nd.Op == OpDropout {
			s.Dropout = nd.Rate
		}
		s.Out = nd.Out
	}
	return out
}
