package genotype

import (
	"strings"
	"testing"
)

func archStrings(ls []Layer) string {
	return Arch(ls).String()
}

// Valid actions of hand-picked states, derived from docs/study.md, section 3.
func TestActions(t *testing.T) {
	tests := []struct {
		name  string
		space Space
		in    Input
		after string // layers already chosen (text form without a terminal), "" for none
		want  string
	}{{
		// Baker: no pooling first; FC only at size <= 4; kernels smaller than 64.
		name: "baker start", space: Baker2017, in: StudyInput,
		want: "C(64,1,1) - C(64,3,1) - C(64,5,1) - C(128,1,1) - C(128,3,1) - C(128,5,1) - " +
			"C(256,1,1) - C(256,3,1) - C(256,5,1) - C(512,1,1) - C(512,3,1) - C(512,5,1) - GAP() - SM()",
	}, {
		// The study allows pooling first, any of its 6 pools (kernel <= 64).
		name: "study start", space: Study, in: StudyInput,
		want: "C(64,1,1) - C(64,3,1) - C(64,5,1) - C(128,1,1) - C(128,3,1) - C(128,5,1) - " +
			"C(256,1,1) - C(256,3,1) - C(256,5,1) - C(512,1,1) - C(512,3,1) - C(512,5,1) - " +
			"P(2,2) - P(2,3) - P(3,2) - P(3,3) - P(5,2) - P(5,3) - GAP() - SM()",
	}, {
		// 8x8 input, C(64,1,1) 'valid' keeps 8x8, P(2,2) -> 4x4: Baker's strict
		// bound leaves kernels 1 and 3; no pool after pool; FC allowed (4 <= 4).
		name: "baker 4x4 after pool", space: Baker2017, in: Input{8, 8, 1}, after: "C(64,1,1) - P(2,2)",
		want: "C(64,1,1) - C(64,3,1) - C(128,1,1) - C(128,3,1) - C(256,1,1) - C(256,3,1) - " +
			"C(512,1,1) - C(512,3,1) - FC(512) - FC(256) - FC(128) - GAP() - SM()",
	}, {
		// Study at 8x8 after a conv: kernels <= 8 all allowed, pools of kernel <= 8,
		// FC allowed at size 8.
		name: "study 8x8", space: Study, in: Input{8, 8, 1}, after: "C(64,1,1)",
		want: "C(64,1,1) - C(64,3,1) - C(64,5,1) - C(128,1,1) - C(128,3,1) - C(128,5,1) - " +
			"C(256,1,1) - C(256,3,1) - C(256,5,1) - C(512,1,1) - C(512,3,1) - C(512,5,1) - " +
			"P(2,2) - P(2,3) - P(3,2) - P(3,3) - P(5,2) - P(5,3) - FC(512) - FC(256) - FC(128) - GAP() - SM()",
	}, {
		// After FC(256) in Baker's space: only FC no wider, or SM.
		name: "baker after FC", space: Baker2017, in: Input{4, 4, 1}, after: "C(64,1,1) - FC(256)",
		want: "FC(256) - FC(128) - SM()",
	}, {
		// The study has no width rule; two FC in a row is its limit.
		name: "study after FC", space: Study, in: Input{4, 4, 1}, after: "C(64,1,1) - FC(256)",
		want: "FC(512) - FC(256) - FC(128) - SM()",
	}, {
		name: "two FC", space: Study, in: Input{4, 4, 1}, after: "C(64,1,1) - FC(256) - FC(256)",
		want: "SM()",
	}, {
		// Size 1: Baker allows no kernel (1 is not smaller than 1).
		name: "baker size 1", space: Baker2017, in: Input{1, 1, 1}, after: "C(64,1,1)",
		want: "FC(512) - FC(256) - FC(128) - GAP() - SM()",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.space.Start(tc.in)
			if tc.after != "" {
				for _, l := range MustParse(tc.after + " - SM()").Hidden() {
					st = tc.space.Step(st, l)
				}
			}
			if got := archStrings(tc.space.Actions(st)); got != tc.want {
				t.Errorf("actions\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	s := Study
	st := s.Start(StudyInput)
	for range s.MaxDepth {
		st = s.Step(st, C(64, 1, 1))
	}
	if got := archStrings(s.Actions(st)); got != "GAP() - SM()" {
		t.Errorf("at the depth limit: %s, want GAP() - SM()", got)
	}
	// An FC at the limit leaves only SM (GAP needs a spatial input).
	st = s.Start(Input{4, 4, 1})
	for range s.MaxDepth - 1 {
		st = s.Step(st, C(64, 1, 1))
	}
	st = s.Step(st, Dense(128))
	if got := archStrings(s.Actions(st)); got != "SM()" {
		t.Errorf("FC at the depth limit: %s, want SM()", got)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	a := MustParse("P(9,2) - P(2,2) - C(100,4,1) - FC(64) - GAP()")
	err := Baker2017.Validate(a, Input{8, 8, 1})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`layer 1 "P(9,2)": pool (kernel 9, stride 2) not in {(5,3) (3,2) (2,2)}`,
		`layer 1 "P(9,2)": pooling may not be the first layer`,
		`layer 1 "P(9,2)": kernel 9 is not smaller than the 8x8 representation`,
		`layer 2 "P(2,2)": pooling may not follow pooling`,
		`layer 3 "C(100,4,1)": filters 100 not in [64 128 256 512]`,
		`layer 3 "C(100,4,1)": kernel 4 not in [1 3 5]`,
		`layer 3 "C(100,4,1)": kernel 4 is not smaller than the 2x2 representation`,
		`layer 4 "FC(64)": units 64 not in [512 256 128]`,
		`layer 5 "GAP()": GAP cannot follow a fully connected layer (only FC or SM can)`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if ps, ok := err.(Problems); !ok || len(ps) != len(want) {
		t.Errorf("error is %T with %d problems", err, len(ps))
	}
}

func TestValidateStudyArchitectures(t *testing.T) {
	// The study's rank-2 architecture is valid in its own space; its rank-1
	// architecture uses the typo 521, which the study preset reports.
	if err := Study.Validate(MustParse("C(128,5,1) - C(256,5,1) - C(256,5,1) - SM()"), StudyInput); err != nil {
		t.Errorf("rank 2: %v", err)
	}
	err := Study.Validate(MustParse("P(2,2) - C(256,5,1) - C(128,1,1) - P(3,2) - C(64,3,1) - C(521,5,1) - C(128,3,1) - C(64,3,1) - P(3,3) - SM()"), StudyInput)
	if err == nil || err.Error() != `layer 6 "C(521,5,1)": filters 521 not in [64 128 256 512]` {
		t.Errorf("rank 1: %v", err)
	}
}

func TestBins(t *testing.T) {
	for size, want := range map[int]int{64: 0, 8: 0, 7: 1, 4: 1, 3: 2, 1: 2} {
		if got := Baker2017.Bin(size); got != want {
			t.Errorf("Bin(%d) = %d, want %d", size, got, want)
		}
	}
}

func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		s, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		s.ConvFilters[0] = -1 // a copy: the preset must not change
	}
	if Baker2017.ConvFilters[0] != 64 || Study.ConvFilters[0] != 64 {
		t.Error("Preset returned a shared slice")
	}
	if _, err := Preset("nope"); err == nil || !strings.Contains(err.Error(), "valid: baker2017, study") {
		t.Errorf("Preset(nope) = %v", err)
	}
	bad := Space{Name: "bad", ConvKernels: []int{0}, MaxFC: 1, SizeBins: []int{1, 4}}
	want := "conv_filters: must list at least one value\nconv_kernels[0]: 0 is not in [1, 1048576]\n" +
		"conv_strides: must list at least one value\nfc_units: must list at least one value\n" +
		"max_depth: must be at least 1, got 0\nfc_max_size: must be at least 1 when FC layers are allowed, got 0\n" +
		"size_bins: must be in descending order, got [1 4]"
	if err := bad.Verify(); err == nil || err.Error() != want {
		t.Errorf("Verify:\n%v\nwant\n%s", err, want)
	}
}

// The MAC bound: hand-computed on 8x8x1. C(4,3,1) 'valid' -> 6x6x4:
// 6*6*4*9*1 = 1296 MACs; C(8,3,1) 'same' after it: 6*6*8*9*4 = 10368.
func TestMaxMACs(t *testing.T) {
	s := Study.Clone()
	s.ConvFilters = []int{4, 8}
	s.MaxMACs = 1296 + 10368
	in := Input{8, 8, 1}
	st := s.Step(s.Start(in), C(4, 3, 1))
	if st.MACs != 1296 {
		t.Fatalf("MACs after the first layer %d, want 1296", st.MACs)
	}
	if why := s.Check(st, C(8, 3, 1)); len(why) != 0 {
		t.Errorf("C(8,3,1) reaching exactly the bound refused: %v", why)
	}
	if why := s.Check(st, C(8, 5, 1)); len(why) != 1 || !strings.Contains(why[0], "over the limit of 11664") {
		t.Errorf("C(8,5,1): %v", why)
	}
	// Terminal layers stay allowed whatever the total.
	st = s.Step(st, C(8, 3, 1))
	for _, l := range []Layer{{Kind: GAP}, {Kind: Softmax}} {
		if why := s.Check(st, l); len(why) != 0 {
			t.Errorf("%s refused: %v", l, why)
		}
	}
	// The walk's count agrees with Net's independent count.
	a := MustParse("C(4,3,1) - C(8,3,1) - P(2,2) - FC(16) - SM()")
	n, err := a.Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	st = s.Start(in)
	for _, l := range a.Hidden() {
		st = s.Step(st, l)
	}
	head := n.Nodes[len(n.Nodes)-1].MACs
	if st.MACs != n.MACs()-head {
		t.Errorf("walk counts %d MACs, Net %d (classifier %d)", st.MACs, n.MACs(), head)
	}
}
