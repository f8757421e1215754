package runtime

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// Exported models compute a binary classifier with many inputs as a sum of
// products instead of Gemm (onnxgen's narrow dense layers): their
// probabilities match a float64 forward pass written out here, on either side
// of the size where the formulation changes, and for a 3-class softmax head
// (which keeps Gemm).
func TestExportedClassifierMatchesReference(t *testing.T) {
	initRuntime(t)
	for _, tc := range []struct {
		size, classes int
	}{{24, 2}, {24, 3}, {8, 2}} { // 8*24*24 = 4,608 inputs (sum of products), 8*8*8 = 512 (Gemm)
		in := genotype.Input{Height: tc.size, Width: tc.size, Channels: 1}
		net, err := genotype.MustParse("C(8,1,1) - SM()").Build(in, tc.classes)
		if err != nil {
			t.Fatal(err)
		}
		w := onnxgen.Init(onnxgen.Params(net), rand.New(rand.NewPCG(5, uint64(tc.classes))))
		for _, b := range [][]float32{w[1], w[3]} { // biases start at zero; make them count
			for i := range b {
				b[i] = 0.1 * float32(i+1)
			}
		}
		model, err := onnxgen.Inference(net, w, onnxgen.Metadata{Arch: net.Arch.String(), Input: in, Classes: make([]string, tc.classes)})
		if err != nil {
			t.Fatal(err)
		}
		if narrow := bytes.Contains(model, []byte("GlobalAveragePool")); narrow != (tc.size == 24 && tc.classes == 2) {
			t.Errorf("%dx%d: sum of products %v", tc.size, tc.size, narrow)
		}
		m, err := NewModel(model, SessionOptions{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		const n = 3
		hw := tc.size * tc.size
		px := make([]float32, n*hw)
		r := rand.New(rand.NewPCG(9, 9))
		for i := range px {
			px[i] = r.Float32()
		}
		got, err := m.Predict(context.Background(), px, n)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		units := tc.classes
		if units == 2 {
			units = 1
		}
		convW, convB, denseW, denseB := w[0], w[1], w[2], w[3]
		for img := range n {
			logits := make([]float64, units)
			for u := range units {
				logits[u] = float64(denseB[u])
			}
			for f := range 8 {
				for p := range hw {
					a := math.Max(0, float64(convW[f])*float64(px[img*hw+p])+float64(convB[f]))
					for u := range units {
						logits[u] += a * float64(denseW[(f*hw+p)*units+u])
					}
				}
			}
			want := make([]float64, tc.classes)
			if tc.classes == 2 {
				want[1] = 1 / (1 + math.Exp(-logits[0]))
				want[0] = 1 - want[1]
			} else {
				sum := 0.0
				for u, z := range logits {
					want[u] = math.Exp(z)
					sum += want[u]
				}
				for u := range want {
					want[u] /= sum
				}
			}
			for k, v := range want {
				if d := math.Abs(float64(got[img*tc.classes+k]) - v); d > 1e-5 {
					t.Errorf("%dx%d, %d classes: image %d class %d: %v, want %v", tc.size, tc.size, tc.classes, img, k, got[img*tc.classes+k], v)
				}
			}
		}
	}
}
