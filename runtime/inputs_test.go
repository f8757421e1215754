package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// Centring a first dense layer of a colour network uses each channel's own
// mean, over the images of the view only. In ten images of 4x4x3, every
// pixel of channel c of image i is c + 10 i, so over the view
// 2..5 the channel means are c + 10 (2+3+4+5)/4 = c + 35 (35, 36, 37),
// worked by hand; the images outside the view (0, 1, 6..9) must not count.
// Each unit's response to the image of those means, sum over inputs of
// weight x mean of the input's channel plus the bias, is then zero.
func TestCentreDenseRGBView(t *testing.T) {
	const n, h, w, channels = 10, 4, 4, 3
	plane := h * w
	pixels := make([]float32, n*channels*plane)
	for i := range n {
		for c := range channels {
			for p := range plane {
				pixels[(i*channels+c)*plane+p] = float32(c + 10*i)
			}
		}
	}
	ex := Examples{Pixels: pixels, Labels: make([]int, n), Indices: []int{2, 3, 4, 5}}
	net, err := genotype.MustParse("FC(4) - SM()").Build(genotype.Input{Height: h, Width: w, Channels: channels}, 2)
	if err != nil {
		t.Fatal(err)
	}
	params := onnxgen.Params(net)
	wts := onnxgen.InitWith(params, onnxgen.InitHe, rand.New(rand.NewPCG(5, 6)))
	centre(net, params, wts, channelMeans(ex, channels))
	mean := []float64{35, 36, 37}
	kernel, bias := wts[0], wts[1]
	units := len(bias)
	if units != 4 || len(kernel) != channels*plane*units {
		t.Fatalf("first layer: %d weights, %d biases; want %d and 4", len(kernel), units, channels*plane*units)
	}
	for u := range units {
		resp := float64(bias[u])
		for i := range channels * plane { // NCHW flattened: input i is in channel i / plane
			resp += float64(kernel[i*units+u]) * mean[i/plane]
		}
		if math.Abs(resp) > 1e-4 {
			t.Errorf("unit %d: response %.4g to the view's mean image, want 0", u, resp)
		}
	}
}

// apply draws from r once per image for AugmentMirror, twice for
// AugmentFlips and never for AugmentNone, as its comment says: after it, r
// continues as a generator of the same seed continues after that many
// IntN(2) draws (so that a seed gives the same flips whichever way the
// augmentation is chosen).
func TestAugmentDrawCount(t *testing.T) {
	const n, channels, h, w = 16, 2, 3, 4
	for _, tc := range []struct {
		aug   Augment
		draws int
	}{{AugmentNone, 0}, {AugmentMirror, n}, {AugmentFlips, 2 * n}} {
		r := rand.New(rand.NewPCG(9, 9))
		tc.aug.apply(make([]float32, n*channels*h*w), n, channels, h, w, r)
		ref := rand.New(rand.NewPCG(9, 9))
		for range tc.draws {
			ref.IntN(2)
		}
		if got, want := r.Uint64(), ref.Uint64(); got != want {
			t.Errorf("%s on %d images: the generator is not where %d draws leave it", tc.aug, n, tc.draws)
		}
	}
}

// A budget's limits are inclusive: a network at exactly MaxActivationBytes
// or MaxMACs is within them ("exceeds the limit" refuses), one byte or one
// multiply-accumulate less refuses it, and a zero limit is none.
func TestBudgetLimitsAreInclusive(t *testing.T) {
	net, err := genotype.MustParse("C(4,3,1) - FC(8) - SM()").Build(genotype.Input{Height: 8, Width: 8, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	act, macs := net.ActivationBytes(), net.MACs()
	for _, tc := range []struct {
		b      Budget
		refuse bool
	}{
		{Budget{}, false},
		{Budget{MaxActivationBytes: act}, false},
		{Budget{MaxActivationBytes: act - 1}, true},
		{Budget{MaxMACs: macs}, false},
		{Budget{MaxMACs: macs - 1}, true},
		{Budget{MaxActivationBytes: act, MaxMACs: macs}, false},
	} {
		if why := tc.b.Check(net); (why != "") != tc.refuse {
			t.Errorf("%+v for %d activation bytes and %d MACs: %q, want refused %v", tc.b, act, macs, why, tc.refuse)
		}
	}
}

// MeasureLatency's median and 90th percentile are those of its samples in
// increasing order: with 10 runs, worked by hand from the linear rule of
// Percentile, the median is the mean of the 5th and 6th smallest and the
// p90 (rank 0.9 x 9 = 8.1) the 9th smallest plus 0.1 of the gap to the 10th.
// The samples are sorted here, independently; nothing is timed against a
// bound.
func TestMeasureLatencyStatisticsOfSortedSamples(t *testing.T) {
	initRuntime(t)
	l, err := MeasureLatency(context.Background(), tinyModel(t), LatencyConfig{Batch: 1, Runs: 10, Warmup: 1, Session: SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Samples) != 10 {
		t.Fatalf("%d samples, want 10", len(l.Samples))
	}
	s := slices.Clone(l.Samples)
	slices.Sort(s)
	median, p90 := (s[4]+s[5])/2, s[8]+0.1*(s[9]-s[8])
	if math.Abs(l.Median-median) > 1e-12 || math.Abs(l.P90-p90) > 1e-12 {
		t.Errorf("median %v and p90 %v of samples %v; want %v and %v", l.Median, l.P90, l.Samples, median, p90)
	}
}
