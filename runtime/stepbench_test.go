package runtime

import (
	"context"
	"flag"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

var benchArch = flag.String("arch", "C(16,5,1) - P(3,2) - C(32,3,1) - P(3,2) - C(32,3,1) - P(2,2) - SM()", "architecture of BenchmarkTrainStep")
var profilePrefix = flag.String("ortprofile", "", "write an ONNX Runtime profile of BenchmarkTrainStep with this prefix")

// BenchmarkTrainStep times one training step of -arch at batch 128 on 64x64x1.
func BenchmarkTrainStep(b *testing.B) {
	if err := Init(""); err != nil {
		b.Fatal(err)
	}
	net, err := genotype.MustParse(*benchArch).Build(genotype.StudyInput, 2)
	if err != nil {
		b.Fatal(err)
	}
	for _, level := range []GraphOptimization{OptExtended, OptAll} {
		b.Run(level.String(), func(b *testing.B) {
			var ms float64
			for b.Loop() {
				st, err := MeasureTrainStep(context.Background(), net, StepBenchConfig{Steps: 10, Optimization: level, ProfilePrefix: *profilePrefix})
				if err != nil {
					b.Fatal(err)
				}
				ms = st.Median
			}
			b.ReportMetric(ms, "ms/step")
			b.ReportMetric(128/(ms/1000), "images/s")
		})
	}
}
