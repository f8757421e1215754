package onnxgen

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/nasctl/nasctl/genotype"
	"google.golang.org/protobuf/proto"
)

// Names of the values every graph exchanges with its caller. The batch dimension
// N is dynamic; the last mini-batch of an epoch may be smaller.
const (
	InputImages   = "x"             // [N, C, H, W] float32 in [0, 1]
	InputLabels   = "y"             // [N, U] float32: 0/1 for 2 classes (U = 1), one-hot for K > 2 (U = K)
	InputStep     = "step"          // [1] float32: 1-based optimizer step count
	InputLR       = "lr"            // [1] float32: learning rate
	OutputLoss    = "loss"          // [1] float32: mean loss of the batch
	OutputCorrect = "correct"       // [1] float32: correctly classified images of the batch
	OutputProbs   = "probabilities" // [N, K] float32: class probabilities (K = 2 for two classes)
)

// Compiled is a serialized ONNX model and the order of its inputs and outputs.
type Compiled struct {
	Model   []byte
	Inputs  []string
	Outputs []string
}

// TrainOptions configure a training-step graph.
type TrainOptions struct {
	// Optimizer emits the update; nil means Adam with the study's settings.
	Optimizer Optimizer
	// Formulas overrides the choice of gradient formulations (see Formulas);
	// the zero value lets the compiler choose per layer shape.
	Formulas Formulas
	// Gradients adds each parameter's gradient as an output named "grad/<param>",
	// after the other outputs (used to check the backward pass).
	Gradients bool
}

// TrainGraph is a compiled training step.
//
// Inputs, in order: x, y, step, lr, the parameters (Params order), the
// optimizer slots (for each parameter, each of Slots, named "<param>/<slot>"),
// then the dropout keep-masks (Masks order). Outputs, in order: loss, correct,
// the new parameters ("<param>/new"), the new slots ("<param>/<slot>/new") in
// input order, then the gradients when asked.
type TrainGraph struct {
	Compiled
	Params []Param
	Slots  []string
	Masks  []Mask
}

// Mask is a dropout layer's mask input: a float32 tensor [N, Shape...] that
// holds DropoutScale(Rate) where a value is kept and 0 where it is dropped;
// the layer multiplies its input by it (inverted dropout) and its gradient
// likewise. The caller draws a mask for every step, keeping each value with
// probability 1 - Rate (see DropoutThreshold). Drawing the masks outside the
// graph makes them reproducible from a seed, and a multiplication is several
// times faster than ONNX Runtime's Dropout kernel.
type Mask struct {
	Name  string
	Shape []int64 // one image's shape: [C, H, W] or [units]
	Rate  float64
	Node  int // index of the genotype.Net dropout node
}

// SlotName is the graph name of a parameter's optimizer slot.
func SlotName(param, slot string) string { return param + "/" + slot }

// Training compiles the training step of net: forward pass with dropout in
// training mode, loss (binary cross-entropy from logits for 2 classes, softmax
// cross-entropy for more), backward pass and optimizer update.
func Training(net *genotype.Net, opts TrainOptions) (*TrainGraph, error) {
	if opts.Optimizer == nil {
		opts.Optimizer = Adam{}
	}
	params := Params(net)
	if err := checkSizes(net, params, true); err != nil {
		return nil, err
	}
	g := newGraph()
	c := &compiler{g: g, net: net, train: true, formulas: opts.Formulas, paramList: params, state: map[string]string{}}
	c.declareData()
	g.input(InputStep, onnx.TensorProto_FLOAT, 1)
	g.input(InputLR, onnx.TensorProto_FLOAT, 1)
	names := c.declareParams(params, true)
	slots := opts.Optimizer.Slots()
	slotIn := make([][]string, len(params))
	for i, p := range params {
		for _, s := range slots {
			n := SlotName(p.Name, s)
			g.input(n, onnx.TensorProto_FLOAT, p.Shape...)
			slotIn[i] = append(slotIn[i], n)
		}
	}
	logits := c.forwardAny()
	restoreLoss := g.within("loss")
	loss, correct, dlogits := c.loss(logits)
	restoreLoss()
	grads := c.backwardAny(dlogits)

	g.rename(loss, OutputLoss)
	g.rename(correct, OutputCorrect)
	g.output(OutputLoss, onnx.TensorProto_FLOAT, 1)
	g.output(OutputCorrect, onnx.TensorProto_FLOAT, 1)
	restore := g.within("optimizer")
	newParams, newSlots := c.update(opts.Optimizer, params, grads, slotIn)
	restore()
	outs := []string{OutputLoss, OutputCorrect}
	for i, p := range params {
		g.retarget(newParams[i], p.Name+"/new")
		g.output(p.Name+"/new", onnx.TensorProto_FLOAT, p.Shape...)
		outs = append(outs, p.Name+"/new")
	}
	for i, p := range params {
		for j, s := range slots {
			n := SlotName(p.Name, s) + "/new"
			g.retarget(newSlots[i][j], n)
			g.output(n, onnx.TensorProto_FLOAT, p.Shape...)
			outs = append(outs, n)
		}
	}
	if opts.Gradients {
		for i, p := range params {
			if p.State {
				continue
			}
			n := "grad/" + p.Name
			g.rename(grads[i], n)
			g.output(n, onnx.TensorProto_FLOAT, p.Shape...)
			outs = append(outs, n)
		}
	}
	inputs := []string{InputImages, InputLabels, InputStep, InputLR}
	inputs = append(inputs, names...)
	for _, s := range slotIn {
		inputs = append(inputs, s...)
	}
	for _, m := range c.masks {
		inputs = append(inputs, m.Name)
	}
	b, err := proto.Marshal(g.model("nasctl_train", nil))
	if err != nil {
		return nil, fmt.Errorf("serializing the training graph: %w", err)
	}
	return &TrainGraph{Compiled: Compiled{Model: b, Inputs: inputs, Outputs: outs}, Params: params, Slots: slots, Masks: c.masks}, nil
}

// update emits the optimizer's update of the trainable parameters (all but
// running statistics, whose new values the forward pass computed; their
// slots pass through) and returns the new parameters and slots in params
// order.
func (c *compiler) update(opt Optimizer, params []Param, grads []string, slotIn [][]string) ([]string, [][]string) {
	var trainable []Param
	var tgrads []string
	var tslots [][]string
	for i, p := range params {
		if !p.State {
			trainable, tgrads, tslots = append(trainable, p), append(tgrads, grads[i]), append(tslots, slotIn[i])
		}
	}
	np, ns := c.flatUpdate(opt, trainable, tgrads, tslots)
	newParams, newSlots := make([]string, len(params)), make([][]string, len(params))
	t := 0
	for i, p := range params {
		if p.State {
			newParams[i] = c.state[p.Name]
			for _, s := range slotIn[i] {
				newSlots[i] = append(newSlots[i], c.g.op("Identity", []string{s}))
			}
			continue
		}
		newParams[i], newSlots[i] = np[t], ns[t]
		t++
	}
	return newParams, newSlots
}

// forwardAny emits the network's forward pass: a layer sequence's by the
// chain compiler, any other by forwardDAG.
func (c *compiler) forwardAny() string {
	if c.net.Chain() {
		return c.forward()
	}
	return c.forwardDAG()
}

// backwardAny is forwardAny's backward pass.
func (c *compiler) backwardAny(dz string) []string {
	if c.net.Chain() {
		return c.backward(dz)
	}
	return c.backwardDAG(dz)
}

// flatUpdate emits the optimizer update of all parameters at once: the
// parameters, their gradients and each slot are concatenated into vectors,
// updated by one chain of elementwise operators and split again: an update
// per tensor is about 12 operators each, whose per-operator overhead is a
// noticeable share of a small network's step (figures: docs/performance.md,
// "Elementwise choices in the training graph"). It returns the new
// parameters and slots ([param][slot]) in params order, shaped as the
// parameters.
func (c *compiler) flatUpdate(opt Optimizer, params []Param, grads []string, slotIn [][]string) ([]string, [][]string) {
	g := c.g
	flat := func(names []string) string {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = g.op("Reshape", []string{n, g.vec(-1)})
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return g.op("Concat", parts, attrInt("axis", 0))
	}
	sizes := make([]int64, len(params))
	for i, p := range params {
		sizes[i] = int64(p.Size())
	}
	unflat := func(v string) []string {
		parts := []string{v}
		if len(params) > 1 {
			parts = g.opN("Split", []string{v, g.ints(sizes, int64(len(sizes)))}, len(params), attrInt("axis", 0))
		}
		out := make([]string, len(params))
		for i, p := range params {
			out[i] = g.op("Reshape", []string{parts[i], g.ints(p.Shape, int64(len(p.Shape)))})
		}
		return out
	}
	slots := make([]string, len(opt.Slots()))
	for j := range slots {
		col := make([]string, len(params))
		for i := range params {
			col[i] = slotIn[i][j]
		}
		slots[j] = flat(col)
	}
	h := &hyper{step: InputStep, lr: InputLR, cache: map[string]string{}}
	np, ns := opt.update(g, flat(paramNames(params)), flat(grads), slots, h)
	newParams := unflat(np)
	newSlots := make([][]string, len(params))
	for j := range ns {
		for i, v := range unflat(ns[j]) {
			newSlots[i] = append(newSlots[i], v)
		}
	}
	return newParams, newSlots
}

// Evaluation compiles the evaluation graph of net: the forward pass in inference
// mode with the parameters as inputs. Inputs: x, y, then the parameters. Outputs:
// loss, correct, probabilities.
func Evaluation(net *genotype.Net) (*Compiled, error) {
	params := Params(net)
	if err := checkSizes(net, params, false); err != nil {
		return nil, err
	}
	g := newGraph()
	c := &compiler{g: g, net: net, paramList: params}
	c.declareData()
	names := c.declareParams(params, true)
	logits := c.forwardAny()
	loss, correct, _ := c.loss(logits)
	g.rename(loss, OutputLoss)
	g.rename(correct, OutputCorrect)
	c.probabilities(logits)
	g.output(OutputLoss, onnx.TensorProto_FLOAT, 1)
	g.output(OutputCorrect, onnx.TensorProto_FLOAT, 1)
	g.output(OutputProbs, onnx.TensorProto_FLOAT, -1, int64(net.Classes))
	b, err := proto.Marshal(g.model("nasctl_eval", nil))
	if err != nil {
		return nil, fmt.Errorf("serializing the evaluation graph: %w", err)
	}
	return &Compiled{Model: b, Inputs: append([]string{InputImages, InputLabels}, names...), Outputs: []string{OutputLoss, OutputCorrect, OutputProbs}}, nil
}

// Inference compiles the exported model: input "x" [N, C, H, W], output
// "probabilities" [N, K], the weights baked in as initializers (values in
// Params order; a batch normalisation folded into the convolution before
// it) and meta in metadata_props.
func Inference(net *genotype.Net, weights [][]float32, meta Metadata) ([]byte, error) {
	return inference(net, weights, meta, true)
}

// InferenceUnfolded is Inference with every weight as it is, batch
// normalisations included, so that Weights reads them all back (a search
// keeps its models so, to fine-tune them later).
func InferenceUnfolded(net *genotype.Net, weights [][]float32, meta Metadata) ([]byte, error) {
	return inference(net, weights, meta, false)
}

func inference(net *genotype.Net, weights [][]float32, meta Metadata, fold bool) ([]byte, error) {
	params := Params(net)
	if len(weights) != len(params) {
		return nil, fmt.Errorf("inference graph: %d weight tensors for %d parameters", len(weights), len(params))
	}
	if err := checkSizes(net, params, false); err != nil {
		return nil, err
	}
	g := newGraph()
	c := &compiler{g: g, net: net, export: true, paramList: params}
	in := net.Input
	g.input(InputImages, onnx.TensorProto_FLOAT, -1, int64(in.Channels), int64(in.Height), int64(in.Width))
	for i, p := range params {
		if len(weights[i]) != p.Size() {
			return nil, fmt.Errorf("inference graph: %s has %d values, want %d", p.Name, len(weights[i]), p.Size())
		}
	}
	if fold {
		weights = c.foldBatchNorms(weights)
	}
	for i, p := range params {
		if weights[i] != nil {
			g.floats(p.Name, weights[i], p.Shape...)
		}
	}
	c.params = paramNames(params)
	c.probabilities(c.forwardAny())
	g.output(OutputProbs, onnx.TensorProto_FLOAT, -1, int64(net.Classes))
	b, err := proto.Marshal(g.model("nasctl_model", meta.props()))
	if err != nil {
		return nil, fmt.Errorf("serializing the inference graph: %w", err)
	}
	return b, nil
}

func paramNames(ps []Param) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}

// compiler emits one network's forward pass, loss and backward pass into g.
type compiler struct {
	g         *graph
	net       *genotype.Net
	train     bool // dropout in training mode, keep what the backward pass needs
	export    bool // the inference graph: weights are constants, batch 1 is what counts
	formulas  Formulas
	params    []string
	paramList []Param           // Params(net)
	dag       []dagStep         // forward values per node of a graph network
	state     map[string]string // running statistic -> its new value (training)
	folds     map[int][]string  // convolution node -> its folded weight and bias
	folded    map[int]bool      // batch normalisations folded into their convolution
	masks     []Mask
	trace     []step // forward values per node
	batchN    string // [1] float: the batch size, for mean gradients
	// blocks are the blocked convolutions and poolings of the training
	// graph, by the node index of the convolution.
	blocks map[int]*blocked
}

// step records one node's forward values for the backward pass.
type step struct {
	in, out string // node input and output
	w, b    string // parameters (Conv, Dense)
	indices string // MaxPool argmax positions
	mask    string // Dropout keep mask
}

func (c *compiler) declareData() {
	in := c.net.Input
	c.g.input(InputImages, onnx.TensorProto_FLOAT, -1, int64(in.Channels), int64(in.Height), int64(in.Width))
	c.g.input(InputLabels, onnx.TensorProto_FLOAT, -1, int64(c.net.Output().C))
}

func (c *compiler) declareParams(ps []Param, asInputs bool) []string {
	for _, p := range ps {
		if asInputs {
			c.g.input(p.Name, onnx.TensorProto_FLOAT, p.Shape...)
		}
	}
	c.params = paramNames(ps)
	return c.params
}

// forward emits the network and returns the logits [N, U].
func (c *compiler) forward() string {
	g := c.g
	cur := InputImages
	pi := 0
	for i, nd := range c.net.Nodes {
		s := step{in: cur}
		restore := c.scope(i, "fwd")
		switch nd.Op {
		case genotype.OpConv:
			s.w, s.b = c.params[pi], c.params[pi+1]
			pi += 2
			if c.train && i+1 < len(c.net.Nodes) && c.formulas.blockable(nd, c.net.Nodes[i+1], pi == 2) {
				var bl *blocked
				bl, cur = c.blockedForward(nd, c.net.Nodes[i+1], cur, s.w, s.b)
				if c.blocks == nil {
					c.blocks = map[int]*blocked{}
				}
				c.blocks[i] = bl
				break
			}
			k := int64(nd.Kernel)
			p := pads(nd)
			cur = c.conv([]string{cur, s.w, s.b}, []int64{-1, int64(nd.In.C), int64(nd.In.H), int64(nd.In.W)}, []int64{int64(nd.Units), int64(nd.In.C), k, k},
				attrInts("kernel_shape", k, k), attrInts("strides", int64(nd.Stride), int64(nd.Stride)), attrInts("pads", p...))
			cur = g.op("Relu", []string{cur})
		case genotype.OpMaxPool:
			if c.blocks[i-1] != nil {
				break // pooled by the blocked convolution
			}
			k := int64(nd.Kernel)
			attrs := []*onnx.AttributeProto{attrInts("kernel_shape", k, k), attrInts("strides", int64(nd.Stride), int64(nd.Stride)), attrInts("pads", pads(nd)...)}
			if c.train && c.formulas.pool(nd) == PoolScatter {
				outs := g.opN("MaxPool", []string{cur}, 2, attrs...)
				cur, s.indices = outs[0], outs[1]
			} else {
				cur = g.op("MaxPool", []string{cur}, attrs...)
			}
		case genotype.OpDropout:
			if !c.train {
				restore()
				continue
			}
			m := Mask{Name: fmt.Sprintf("dropout/%d", len(c.masks)+1), Rate: nd.Rate, Node: len(c.trace)}
			if nd.Out.Flat {
				m.Shape = []int64{int64(nd.Out.C)}
			} else {
				m.Shape = []int64{int64(nd.Out.C), int64(nd.Out.H), int64(nd.Out.W)}
			}
			c.masks = append(c.masks, m)
			g.input(m.Name, onnx.TensorProto_FLOAT, append([]int64{-1}, m.Shape...)...)
			s.mask = m.Name
			cur = g.op("Mul", []string{cur, m.Name})
		case genotype.OpFlatten:
			cur = g.op("Flatten", []string{cur}, attrInt("axis", 1))
		case genotype.OpGlobalAvg:
			cur = g.op("Flatten", []string{g.op("GlobalAveragePool", []string{cur})}, attrInt("axis", 1))
		case genotype.OpDense:
			s.w, s.b = c.params[pi], c.params[pi+1]
			pi += 2
			if c.export && nd.Units == 1 && nd.In.Size() >= narrowDenseInputs {
				cur = c.narrowDense(nd, cur, s.w, s.b)
			} else {
				cur = g.op("Gemm", []string{cur, s.w, s.b})
			}
			if nd.ReLU {
				cur = g.op("Relu", []string{cur})
			}
		default:
			panic(fmt.Sprintf("onnxgen: unknown op %v", nd.Op))
		}
		restore()
		s.out = cur
		c.trace = append(c.trace, s)
	}
	return cur
}

// An exported dense layer with one output (the binary classifier) and at
// least narrowDenseInputs inputs multiplies and sums instead of calling Gemm:
// ONNX Runtime's CPU Gemm pads its packed constant weights to 16 columns, so
// such a layer reads 16 times its weights per image. Smaller layers keep
// Gemm (one operator instead of six), and so do training and evaluation
// graphs, as Gemm is faster at larger batches (figures: docs/performance.md,
// "Dense layers of exported models"). Layers with 2 to 15 outputs would gain
// too, but need a broadcast that the pure-Go runtime onnx-go lacks.
const narrowDenseInputs = 4096

// narrowDense computes x·w + b for w [K, 1] as the mean of x * wᵀ over K,
// times K. The mean is a GlobalAveragePool (onnx-go has no ReduceSum) and
// the reshapes copy the batch dimension with 0 (onnx-go misreads -1 when the
// rank grows). ONNX Runtime folds the transposition of the constant weights
// when it loads the model.
func (c *compiler) narrowDense(nd genotype.Node, x, w, b string) string {
	g := c.g
	k := int64(nd.In.Size())
	prod := g.op("Mul", []string{x, g.op("Transpose", []string{w}, attrInts("perm", 1, 0))}) // [N, K]
	mean := g.op("GlobalAveragePool", []string{g.op("Reshape", []string{prod, g.vec(0, 1, k, 1)})})
	sum := g.op("Mul", []string{g.op("Reshape", []string{mean, g.vec(0, 1)}), g.scalar(float32(k))})
	return g.op("Add", []string{sum, b})
}

// scope names the nodes of node i's pass ("fwd", "dW", "dx"...) in profiles.
func (c *compiler) scope(i int, pass string) (restore func()) {
	return c.g.within(fmt.Sprintf("%d.%s/%s", i+1, c.net.Nodes[i].Op, pass))
}

// pads returns ONNX pads [top, left, bottom, right].
func pads(nd genotype.Node) []int64 {
	p := nd.Pads
	return []int64{int64(p.Top), int64(p.Left), int64(p.Bottom), int64(p.Right)}
}

// probabilities emits the "probabilities" output from the logits.
func (c *compiler) probabilities(logits string) {
	g := c.g
	if c.net.Classes == 2 {
		p := g.op("Sigmoid", []string{logits})
		g.opTo(OutputProbs, "Concat", []string{g.op("Sub", []string{g.scalar(1), p}), p}, attrInt("axis", 1))
		return
	}
	g.opTo(OutputProbs, "Softmax", []string{logits}, attrInt("axis", 1))
}

// loss emits the mean loss [1], the number correct [1] and the gradient of the
// mean loss with respect to the logits.
func (c *compiler) loss(z string) (loss, correct, dz string) {
	g := c.g
	n := g.op("Cast", []string{g.op("Shape", []string{z}, attrInt("start", 0), attrInt("end", 1))}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	var perElem, pred, truth, probs string
	if c.net.Classes == 2 {
		// Numerically stable binary cross-entropy from logits:
		// relu(z) - z*y + softplus(-|z|).
		perElem = g.op("Add", []string{
			g.op("Sub", []string{g.op("Relu", []string{z}), g.op("Mul", []string{z, InputLabels})}),
			g.op("Softplus", []string{g.op("Neg", []string{g.op("Abs", []string{z})})})})
		pred = g.op("Greater", []string{z, g.scalar(0)})
		truth = g.op("Greater", []string{InputLabels, g.scalar(0.5)})
		probs = g.op("Sigmoid", []string{z})
	} else {
		perElem = g.op("Neg", []string{g.op("ReduceSum", []string{
			g.op("Mul", []string{InputLabels, g.op("LogSoftmax", []string{z}, attrInt("axis", 1))}), g.vec(1)})})
		pred = g.op("ArgMax", []string{z}, attrInt("axis", 1))
		truth = g.op("ArgMax", []string{InputLabels}, attrInt("axis", 1))
		probs = g.op("Softmax", []string{z}, attrInt("axis", 1))
	}
	// Mean over the batch; ReduceSum over all axes keeps a [1] shape after Reshape.
	total := g.op("ReduceSum", []string{g.op("Reshape", []string{perElem, g.vec(-1)}), g.vec(0)}, attrInt("keepdims", 1))
	loss = g.op("Div", []string{total, n})
	eq := g.op("Cast", []string{g.op("Equal", []string{pred, truth})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	correct = g.op("ReduceSum", []string{g.op("Reshape", []string{eq, g.vec(-1)}), g.vec(0)}, attrInt("keepdims", 1))
	// d(mean loss)/dz = (sigmoid(z) - y)/N, or (softmax(z) - y)/N.
	dz = g.op("Div", []string{g.op("Sub", []string{probs, InputLabels}), n})
	return loss, correct, dz
}

// backward emits the gradients of the parameters, in Params order, given the
// gradient of the loss with respect to the logits.
func (c *compiler) backward(dz string) []string {
	g := c.g
	grads := make([]string, len(c.params))
	index := map[string]int{}
	for i, p := range c.params {
		index[p] = i
	}
	// The gradient needs to flow back only as far as the first parameter.
	first := -1
	for i, s := range c.trace {
		if s.w != "" {
			first = i
			break
		}
	}
	gr := dz
	// gated: gr is already zero wherever the ReLU before it output zero (a
	// pooling gradient applied it, see poolShare), so that ReLU's gradient
	// can be skipped.
	gated := false
	for i := len(c.trace) - 1; i >= first && i >= 0; i-- {
		nd, s := c.net.Nodes[i], c.trace[i]
		needIn := i > first
		restore := c.scope(i, "bwd")
		switch nd.Op {
		case genotype.OpDense:
			gated = false
			if nd.ReLU {
				gr = reluGrad(g, s.out, gr)
			}
			grads[index[s.w]] = g.op("Gemm", []string{s.in, gr}, attrInt("transA", 1))
			grads[index[s.b]] = g.op("ReduceSum", []string{gr, g.vec(0)}, attrInt("keepdims", 0))
			if needIn {
				gr = g.op("Gemm", []string{gr, s.w}, attrInt("transB", 1))
			}
		case genotype.OpConv:
			grads[index[s.w]], grads[index[s.b]], gr = c.convBackward(i, s, gr, gated, needIn)
			gated = false
		case genotype.OpMaxPool:
			if c.blocks[i-1] != nil {
				break // the blocked convolution's backward takes the pooled gradient
			}
			if needIn {
				switch c.formulas.pool(nd) {
				case PoolScatter:
					gr = maxPoolGrad(g, s.in, s.indices, gr)
				case PoolUpsample:
					gr = c.poolGradUpsample(nd, s.in, s.out, gr)
				default:
					gr = c.poolGradPatches(nd, s.in, s.out, gr)
				}
				gated = c.formulas.gatesReLU(nd)
			}
		case genotype.OpDropout:
			if needIn {
				gr = g.op("Mul", []string{gr, s.mask})
			}
		case genotype.OpFlatten:
			if needIn {
				gr = g.op("Reshape", []string{gr, g.op("Shape", []string{s.in})})
			}
		case genotype.OpGlobalAvg:
			gated = false
			if needIn {
				hw := float32(nd.In.H * nd.In.W)
				gr4 := g.op("Reshape", []string{gr, g.vec(0, int64(nd.In.C), 1, 1)})
				gr = g.op("Expand", []string{g.op("Mul", []string{gr4, g.scalar(1 / hw)}), g.op("Shape", []string{s.in})})
			}
		}
		restore()
	}
	return grads
}

// convBackward emits the weight, bias and (with needIn) input gradients of
// convolution node i, given the gradient gr of its output; gated says that
// gr already holds the ReLU's gradient (see poolShare). It is called in node
// i's "bwd" scope; the plain convolution's gradients get scopes of their own
// ("db", "dW", "dx").
func (c *compiler) convBackward(i int, s step, gr string, gated, needIn bool) (dw, db, dx string) {
	nd := c.net.Nodes[i]
	if bl := c.blocks[i]; bl != nil {
		return c.blockedBackward(bl, gr, needIn)
	}
	if !gated {
		gr = reluGrad(c.g, s.out, gr)
	}
	restore := c.scope(i, "db")
	db = c.g.op("ReduceSum", []string{gr, c.g.vec(0, 2, 3)}, attrInt("keepdims", 0))
	restore()
	restore = c.scope(i, "dW")
	dw, patches := c.convWeightGradient(nd, s.in, gr)
	restore()
	if needIn {
		restore = c.scope(i, "dx")
		dx = c.convInputGradient(nd, s.w, gr, patches)
		restore()
	}
	return dw, db, dx
}

// reluGrad masks the gradient where the ReLU output is zero. A multiplication
// by the cast comparison measured faster than Where on ONNX Runtime's CPU
// provider (docs/performance.md, "Elementwise choices in the training graph").
func reluGrad(g *graph, out, gr string) string {
	mask := g.op("Cast", []string{g.op("Greater", []string{out, g.scalar(0)})}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
	return g.op("Mul", []string{gr, mask})
}

// maxPoolGrad routes each output gradient to the input position that won the
// max, adding where windows overlap (stride < kernel): ScatterElements with
// reduction "add" over the flat N*C*H*W input, using MaxPool's Indices output.
// MaxUnpool is not used: it assigns instead of adding and is wrong for
// overlapping windows.
func maxPoolGrad(g *graph, in, indices, gr string) string {
	flat := g.op("Reshape", []string{in, g.vec(-1)})
	zeros := g.op("ConstantOfShape", []string{g.op("Shape", []string{flat})})
	sum := g.op("ScatterElements", []string{zeros, g.op("Reshape", []string{indices, g.vec(-1)}), g.op("Reshape", []string{gr, g.vec(-1)})},
		attrInt("axis", 0), attrString("reduction", "add"))
	return g.op("Reshape", []string{sum, g.op("Shape", []string{in})})
}

// convWeightDilated (ConvWeightDilated) emits dL/dW [F, C, k, k] of a
// convolution from its input x [N, C, H, W] and output gradient gr
// [N, F, Ho, Wo]:
// dW[f,c,a,b] = sum_{n,i,j} gr[n,f,i,j] * xpad[n,c,s*i+a,s*j+b], computed as a
// convolution of x with the channels and batch swapped, the gradient as kernel
// dilated by the stride.
//
// For a direct convolution kernel (Formulas.DirectConv) with fewer filters
// than input channels, stride 1, the roles swap (convWeightDilatedSwapped).
func (c *compiler) convWeightDilated(nd genotype.Node, x, gr string) string {
	g := c.g
	xt := g.op("Transpose", []string{x}, attrInts("perm", 1, 0, 2, 3))
	gt := g.op("Transpose", []string{gr}, attrInts("perm", 1, 0, 2, 3))
	if c.formulas.DirectConv && nd.Stride == 1 && nd.Units < nd.In.C {
		return c.convWeightDilatedSwapped(nd, xt, gt)
	}
	s := int64(nd.Stride)
	w := c.conv([]string{xt, gt}, []int64{int64(nd.In.C), -1, int64(nd.In.H), int64(nd.In.W)}, []int64{int64(nd.Units), -1, int64(nd.Out.H), int64(nd.Out.W)},
		attrInts("pads", pads(nd)...), attrInts("dilations", s, s))
	// With a stride that does not divide the padded input, the last rows and
	// columns of the result lie beyond the kernel: crop to k x k.
	k := int64(nd.Kernel)
	ph := nd.In.H + nd.Pads.Top + nd.Pads.Bottom - (nd.Stride*(nd.Out.H-1) + 1) + 1
	pw := nd.In.W + nd.Pads.Left + nd.Pads.Right - (nd.Stride*(nd.Out.W-1) + 1) + 1
	if int64(ph) != k || int64(pw) != k {
		w = g.op("Slice", []string{w, g.vec(0, 0), g.vec(k, k), g.vec(2, 3)})
	}
	return g.op("Transpose", []string{w}, attrInts("perm", 1, 0, 2, 3))
}

// convWeightDilatedSwapped (stride 1) convolves the output gradient (batch
// and channels swapped, gt [F, N, Ho, Wo], padded with k-1-p) with the
// input as kernel (xt [C, N, H, W]): the result R[f, c, a', b'] =
// sum_n sum_{u,v} gpad[f, n, u+a', v+b'] x[n, c, u, v] is dW with its window
// flipped (a' = k-1-a, as in convInputFlipped), already [F, C, k, k]. A
// direct convolution kernel works on blocks of filters: this form has C of
// them where the other has F, so it wastes less of a block when F < C.
func (c *compiler) convWeightDilatedSwapped(nd genotype.Node, xt, gt string) string {
	g := c.g
	k := int64(nd.Kernel)
	top, left, bottom, right := flippedPads(nd)
	r := c.conv([]string{gt, xt}, []int64{int64(nd.Units), -1, int64(nd.Out.H), int64(nd.Out.W)}, []int64{int64(nd.In.C), -1, int64(nd.In.H), int64(nd.In.W)},
		attrInts("pads", top, left, bottom, right))
	return g.op("Slice", []string{r, g.vec(-1, -1), g.vec(-k-1, -k-1), g.vec(2, 3), g.vec(-1, -1)})
}

// conv emits a Conv of inputs (x, w and an optional bias) and declares the
// shapes of x and w (batch -1) in the graph's value_info, so that a runtime
// can pick a convolution kernel for them without inferring shapes.
// Exported models hold their weights as constants and declare nothing.
func (c *compiler) conv(inputs []string, xDims, wDims []int64, attrs ...*onnx.AttributeProto) string {
	if !c.export {
		c.g.declare(inputs[0], xDims...)
		c.g.declare(inputs[1], wDims...)
	}
	return c.g.op("Conv", inputs, attrs...)
}

// convInputTranspose (ConvInputTranspose) emits dL/dx of a convolution: the
// transposed convolution of the output gradient with the same weights,
// strides and pads.
func (c *compiler) convInputTranspose(nd genotype.Node, w, gr string) string {
	return c.g.op("ConvTranspose", []string{gr, w}, transposeAttrs(nd)...)
}

// MaskResolution is the resolution of dropout keep probabilities: a value is
// kept when a uniform 16-bit random number is at least DropoutThreshold(rate).
const MaskResolution = 1 << 16

// DropoutThreshold is the 16-bit threshold below which a value is dropped.
func DropoutThreshold(rate float64) uint32 {
	return uint32(rate*MaskResolution + 0.5)
}

// DropoutScale is the factor applied to kept values, the inverse of the exact
// keep probability of DropoutThreshold, so that the expectation is unchanged.
func DropoutScale(rate float64) float32 {
	return float32(float64(MaskResolution) / float64(MaskResolution-DropoutThreshold(rate)))
}
