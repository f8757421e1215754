package runtime

import (
	"fmt"
	"math"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/onnxgen"
)

// Each value is kept with probability 1 - DropoutThreshold(rate)/2^16 and
// then holds DropoutScale(rate), so the mask's mean is 1 (inverted dropout).
// 10^6 values: the kept share is within 5 standard deviations.
func TestDrawMaskRate(t *testing.T) {
	const n = 1_000_003 // not a multiple of the chunk or of 4
	mask := make([]float32, n)
	for i, rate := range []float64{0, 0.125, 0.3, 0.5, 0.875} {
		drawMask(mask, rate, uint64(i+1))
		scale := onnxgen.DropoutScale(rate)
		kept := 0
		for j, v := range mask {
			switch v {
			case scale:
				kept++
			case 0:
			default:
				t.Fatalf("rate %g: value %d is %g, want 0 or %g", rate, j, v, scale)
			}
		}
		p := 1 - float64(onnxgen.DropoutThreshold(rate))/onnxgen.MaskResolution
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(kept)-n*p) > 5*sd+0.5 {
			t.Errorf("rate %g: kept %d of %d values, want %.0f ± %.0f", rate, kept, n, n*p, 5*sd)
		}
	}
}

// A mask depends on its seed only, not on how many goroutines draw it, and
// its chunks are drawn from different streams.
func TestDrawMaskSameOnAnyProcs(t *testing.T) {
	const n = 5*maskChunk + 7
	draw := func(procs int, seed uint64) []float32 {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		m := make([]float32, n)
		drawMask(m, 0.5, seed)
		return m
	}
	one, two, three := draw(1, 7), draw(2, 7), draw(3, 7)
	if !slices.Equal(one, two) || !slices.Equal(one, three) {
		t.Fatal("the same seed gave different masks on 1, 2 and 3 goroutines")
	}
	if slices.Equal(one, draw(2, 8)) {
		t.Error("seeds 7 and 8 gave the same mask")
	}
	if slices.Equal(one[:maskChunk], one[maskChunk:2*maskChunk]) {
		t.Error("the first two chunks of a mask are equal")
	}
}

// BenchmarkDrawMask draws the dropout masks of one step of the deep
// reference network (batch 128: three 16x15x15 masks and one 8x15x15).
func BenchmarkDrawMask(b *testing.B) {
	sizes := []int{128 * 16 * 225, 128 * 16 * 225, 128 * 16 * 225, 128 * 8 * 225}
	masks := make([][]float32, len(sizes))
	for i, s := range sizes {
		masks[i] = make([]float32, s)
	}
	for _, procs := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", procs), func(b *testing.B) {
			defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
			for i := 0; b.Loop(); i++ {
				for j, m := range masks {
					drawMask(m, 0.25, uint64(i*len(masks)+j))
				}
			}
		})
	}
}
