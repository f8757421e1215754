package runtime

import (
	"math/rand/v2"
	goruntime "runtime"
	"sync"

	"github.com/nasctl/nasctl/onnxgen"
)

// maskChunk is the number of mask values drawn from one random stream.
// The streams depend on the seed and the chunk's position only, so a mask
// is the same whatever the number of goroutines that draw it.
const maskChunk = 1 << 15

// drawMask fills mask for a dropout rate from seed: a value is kept (set to
// onnxgen.DropoutScale(rate)) when a 16-bit random number is at least
// onnxgen.DropoutThreshold(rate), and dropped (set to 0) otherwise. Chunks
// of maskChunk values are drawn from their own PCG streams, on up to
// GOMAXPROCS goroutines.
//
// Each random number gives four values, and the comparisons are branch-free
// (a branch per value is mispredicted at random): several times faster than
// a number and a branch per value (figures: docs/performance.md, "Dropout
// masks").
func drawMask(mask []float32, rate float64, seed uint64) {
	chunks := (len(mask) + maskChunk - 1) / maskChunk
	workers := min(goruntime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for c := range chunks {
			drawChunk(mask, c, rate, seed)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := w; c < chunks; c += workers {
				drawChunk(mask, c, rate, seed)
			}
		}()
	}
	wg.Wait()
}

// drawChunk draws chunk c of mask.
func drawChunk(mask []float32, c int, rate float64, seed uint64) {
	threshold, scale := onnxgen.DropoutThreshold(rate), onnxgen.DropoutScale(rate)
	mask = mask[c*maskChunk : min(len(mask), (c+1)*maskChunk)]
	r := rand.NewPCG(seed, uint64(c))
	// value[d] is the value for d = 1 when the 16-bit number is below the
	// threshold (dropped): (x - threshold) wraps around to a number with the
	// top bit set exactly when x < threshold.
	value := [2]float32{scale, 0}
	n := len(mask) &^ 3
	for i := 0; i < n; i += 4 {
		u := r.Uint64()
		m := mask[i : i+4 : i+4]
		m[0] = value[((uint32(u)&0xffff-threshold)>>31)&1]
		m[1] = value[((uint32(u>>16)&0xffff-threshold)>>31)&1]
		m[2] = value[((uint32(u>>32)&0xffff-threshold)>>31)&1]
		m[3] = value[((uint32(u>>48)-threshold)>>31)&1]
	}
	if n < len(mask) {
		u := r.Uint64()
		for j := n; j < len(mask); j++ {
			mask[j] = value[((uint32(u)&0xffff-threshold)>>31)&1]
			u >>= 16
		}
	}
}
