package onnxgen

import (
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// Each graph refuses a network with a tensor past MaxElements values, naming
// it; the counts are the study's shape rules by hand: 64x64x1 flattens to
// 4,096 values, so FC(600000) has a weight of 2,457,600,000 values.
func TestCheckSizes(t *testing.T) {
	in := genotype.Input{Height: 64, Width: 64, Channels: 1}
	cases := []struct {
		arch string
		want string // in the error; "" for none
	}{
		{"FC(600000) - SM()", "parameter fc1.weight would hold 2,457,600,000 values, more than the 2,147,483,647"},
		{"C(600000,1,1) - SM()", "output of node 0 (64x64x600000) for one image would hold 2,457,600,000 values"},
		// (4,096 + 1) x 33,000 + 2 x (33,000 + 1) x 33,000 + 33,001: each
		// weight fits, their sum does not.
		{"FC(33000) - FC(33000) - FC(33000) - SM()", "training step's vector of all trainable values would hold 2,313,300,001 values"},
		{"FC(100) - SM()", ""},
	}
	for _, tc := range cases {
		net, err := genotype.MustParse(tc.arch).Build(in, 2)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Training(net, TrainOptions{})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.arch, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: training graph: %v, want %q", tc.arch, err, tc.want)
		}
		if _, err := Evaluation(net); err == nil && !strings.Contains(tc.want, "trainable") {
			t.Errorf("%s: evaluation graph built", tc.arch)
		}
	}
}
