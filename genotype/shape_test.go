package genotype

import (
	"strings"
	"testing"
)

// The parameter counts of the study's top-5 table (seed document), at its 64x64x1
// input with a single sigmoid unit: an independent reference for the semantics
// (first convolution 'valid', the rest 'same', 'same' pooling, Flatten before SM).
func TestStudyTableParams(t *testing.T) {
	tests := []struct {
		arch   string
		params int64
	}{
		{"P(2,2) - C(256,5,1) - C(128,1,1) - P(3,2) - C(64,3,1) - C(521,5,1) - C(128,3,1) - C(64,3,1) - P(3,3) - SM()", 1623882},
		{"C(128,5,1) - C(256,5,1) - C(256,5,1) - SM()", 3383041},
		{"C(256,1,1) - C(521,5,1) - C(64,5,1) - P(5,3) - C(128,5,1) - P(2,3) - C(521,3,1) - P(5,2) - C(64,1,1) - SM()", 5009171},
		{"C(128,5,1) - C(64,1,1) - SM()", 241985},
		{"C(128,3,1) - C(128,1,1) - SM()", 509825},
	}
	for _, tc := range tests {
		n, err := MustParse(tc.arch).Build(StudyInput, 2)
		if err != nil {
			t.Fatalf("%s: %v", tc.arch, err)
		}
		if got := n.Params(); got != tc.params {
			t.Errorf("%s: params %d, want %d", tc.arch, got, tc.params)
		}
	}
}

// Each case's expected values are computed by hand in its comment.
func TestBuild(t *testing.T) {
	type node struct {
		op     Op
		out    string
		params int64
		macs   int64
		pads   Pads
		rate   float64
	}
	tests := []struct {
		name    string
		arch    string
		in      Input
		classes int
		nodes   []node
	}{{
		// FC chain after a strided pool; 4 non-SM layers -> D = 2, rates 1/4 and 2/4.
		name: "fc chain", arch: "C(8,3,1) - P(2,2) - FC(16) - FC(8) - SM()", in: Input{10, 10, 1}, classes: 2,
		nodes: []node{
			{op: OpConv, out: "8x8x8", params: 3*3*1*8 + 8, macs: 8 * 8 * 8 * 9},
			{op: OpMaxPool, out: "4x4x8"}, // ceil(8/2) = 4, pad (4-1)*2+2-8 = 0
			{op: OpDropout, out: "4x4x8", rate: 0.25},
			{op: OpFlatten, out: "128"},
			{op: OpDense, out: "16", params: 128*16 + 16, macs: 128 * 16},
			{op: OpDense, out: "8", params: 16*8 + 8, macs: 16 * 8},
			{op: OpDropout, out: "8", rate: 0.5},
			{op: OpDense, out: "1", params: 8 + 1, macs: 8}, // SM: Dense(1) after an FC, no Flatten
		},
	}, {
		// GAP head, K = 3 classes, RGB, strided 'valid' first convolution:
		// (9-3)/2+1 = 4; then 'same' 3x3 stride 1: pads 1/1. 3 non-SM layers -> D = 1.
		name: "gap head K=3", arch: "C(4,3,2) - C(6,3,1) - GAP()", in: Input{9, 9, 3}, classes: 3,
		nodes: []node{
			{op: OpConv, out: "4x4x4", params: 3*3*3*4 + 4, macs: 4 * 4 * 4 * 27},
			{op: OpConv, out: "4x4x6", params: 3*3*4*6 + 6, macs: 4 * 4 * 6 * 36, pads: Pads{1, 1, 1, 1}},
			{op: OpDropout, out: "4x4x6", rate: 0.5},
			{op: OpGlobalAvg, out: "6"},
			{op: OpDense, out: "3", params: 6*3 + 3, macs: 18},
		},
	}, {
		// Odd sizes and overlapping pooling: 7x5 -> P(3,2): ceil(7/2)=4 with total pad
		// 3*2+3-7 = 2 (1/1); ceil(5/2)=3 with 2*2+3-5 = 2 (1/1).
		name: "odd sizes", arch: "C(2,1,1) - P(3,2) - SM()", in: Input{7, 5, 1}, classes: 2,
		nodes: []node{
			{op: OpConv, out: "7x5x2", params: 1*1*1*2 + 2, macs: 7 * 5 * 2},
			{op: OpMaxPool, out: "4x3x2", pads: Pads{1, 1, 1, 1}},
			{op: OpDropout, out: "4x3x2", rate: 0.5},
			{op: OpFlatten, out: "24"},
			{op: OpDense, out: "1", params: 25, macs: 24},
		},
	}, {
		// Pool kernel smaller than its stride, and a strided 'same' convolution:
		// P(2,3) on 7: ceil(7/3) = 3, total pad 2*3+2-7 = 1 (0 before, 1 after);
		// C(4,3,2) on 3: ceil(3/2) = 2, total pad 1*2+3-3 = 2 (1/1).
		name: "strides", arch: "P(2,3) - C(4,3,2) - SM()", in: Input{7, 7, 1}, classes: 2,
		nodes: []node{
			{op: OpMaxPool, out: "3x3x1", pads: Pads{0, 0, 1, 1}},
			{op: OpConv, out: "2x2x4", params: 3*3*1*4 + 4, macs: 2 * 2 * 4 * 9, pads: Pads{1, 1, 1, 1}},
			{op: OpDropout, out: "2x2x4", rate: 0.5},
			{op: OpFlatten, out: "16"},
			{op: OpDense, out: "1", params: 17, macs: 16},
		},
	}, {
		// K = 10 softmax classifier straight on the input: no hidden layer, no dropout.
		name: "softmax only", arch: "SM()", in: Input{4, 4, 2}, classes: 10,
		nodes: []node{
			{op: OpFlatten, out: "32"},
			{op: OpDense, out: "10", params: 32*10 + 10, macs: 320},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := MustParse(tc.arch).Build(tc.in, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Nodes) != len(tc.nodes) {
				t.Fatalf("%d nodes, want %d: %+v", len(n.Nodes), len(tc.nodes), n.Nodes)
			}
			var params, macs int64
			for i, want := range tc.nodes {
				got := n.Nodes[i]
				if got.Op != want.op || got.Out.String() != want.out || got.Params != want.params ||
					got.MACs != want.macs || got.Pads != want.pads || got.Rate != want.rate {
					t.Errorf("node %d = %v out %v params %d macs %d pads %v rate %v; want %v out %v params %d macs %d pads %v rate %v",
						i, got.Op, got.Out, got.Params, got.MACs, got.Pads, got.Rate, want.op, want.out, want.params, want.macs, want.pads, want.rate)
				}
				params += want.params
				macs += want.macs
			}
			if n.Params() != params || n.MACs() != macs || n.FLOPs() != 2*macs {
				t.Errorf("totals params %d macs %d flops %d, want %d %d %d", n.Params(), n.MACs(), n.FLOPs(), params, macs, 2*macs)
			}
		})
	}
}

func TestClassifierUnits(t *testing.T) {
	for _, tc := range []struct{ classes, units int }{{2, 1}, {3, 3}, {10, 10}} {
		n, err := MustParse("C(4,3,1) - GAP()").Build(Input{8, 8, 1}, tc.classes)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Output().C; got != tc.units {
			t.Errorf("classes %d: %d logits, want %d", tc.classes, got, tc.units)
		}
	}
}

func TestMemory(t *testing.T) {
	// C(2,1,1) - P(3,2) - SM() on 7x5x1 (see TestBuild): activations input 35,
	// conv 70, pool 24, dropout 24, logits 1 (Flatten is a view) = 154 floats.
	n, err := MustParse("C(2,1,1) - P(3,2) - SM()").Build(Input{7, 5, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.ActivationBytes(); got != 4*154 {
		t.Errorf("ActivationBytes = %d, want %d", got, 4*154)
	}
	// Largest in+out: conv 35+70 = 105.
	if got := n.PeakActivationBytes(); got != 4*105 {
		t.Errorf("PeakActivationBytes = %d, want %d", got, 4*105)
	}
}

func TestLayers(t *testing.T) {
	n, err := MustParse("C(4,3,2) - C(6,3,1) - GAP()").Build(Input{9, 9, 3}, 3)
	if err != nil {
		t.Fatal(err)
	}
	ls := n.Layers()
	want := []struct {
		out     string
		params  int64
		dropout float64
	}{{"4x4x4", 112, 0}, {"4x4x6", 222, 0.5}, {"3", 21, 0}}
	for i, w := range want {
		if ls[i].Out.String() != w.out || ls[i].Params != w.params || ls[i].Dropout != w.dropout {
			t.Errorf("layer %d = %+v, want %+v", i, ls[i], w)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		arch    string
		in      Input
		classes int
		want    string
	}{
		{"C(8,5,1) - SM()", Input{4, 4, 1}, 2, `layer 1 "C(8,5,1)": kernel 5 exceeds the 4x4 input of a 'valid' first convolution`},
		{"FC(8) - C(4,3,1) - SM()", Input{8, 8, 1}, 2, `layer 2 "C(4,3,1)": C needs a spatial input but follows a fully connected layer`},
		{"FC(8) - GAP()", Input{8, 8, 1}, 2, `layer 2 "GAP()": GAP needs a spatial input`},
		{"C(8,3,1) - SM()", Input{8, 8, 1}, 1, "need at least 2"},
	}
	for _, tc := range tests {
		_, err := MustParse(tc.arch).Build(tc.in, tc.classes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%s) error %v, want %q", tc.arch, err, tc.want)
		}
	}
}

func TestParseInput(t *testing.T) {
	for s, want := range map[string]Input{"64x64x1": {64, 64, 1}, "32x48x3": {32, 48, 3}, "28x28": {28, 28, 1}, " 8X8X3 ": {8, 8, 3}} {
		got, err := ParseInput(s)
		if err != nil || got != want {
			t.Errorf("ParseInput(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "64", "64x", "0x64x1", "64x64x1x1", "axbxc"} {
		if _, err := ParseInput(s); err == nil {
			t.Errorf("ParseInput(%q) accepted", s)
		}
	}
	if got := StudyInput.String(); got != "64x64x1" {
		t.Errorf("StudyInput = %q", got)
	}
}

// An image size without channels leaves them to the images, and prints as
// it was written.
func TestParseImageSize(t *testing.T) {
	for s, want := range map[string]Input{"32x32": {32, 32, 0}, " 24X40 ": {24, 40, 0}, "32x32x1": {32, 32, 1}, "32x32x3": {32, 32, 3}} {
		got, err := ParseImageSize(s)
		if err != nil || got != want {
			t.Errorf("ParseImageSize(%q) = %v, %v; want %v", s, got, err, want)
		}
		if back, err := ParseImageSize(got.String()); err != nil || back != got {
			t.Errorf("ParseImageSize(%q.String() = %q) = %v, %v", s, got.String(), back, err)
		}
	}
	if _, err := ParseImageSize("32x"); err == nil {
		t.Error(`ParseImageSize("32x") accepted`)
	}
}
