package genotype

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The operation order is the study's action numbering, docs/study.md, section 4:
// identity; 1x3 then 3x1 conv; 1x7 then 7x1 conv; 3x3 dilated conv; 3x3 avg
// pool; 3x3, 5x5, 7x7 max pool; 1x1 conv; 3x3 conv; 3x3, 5x5, 7x7 sep conv.
func TestCellOpOrder(t *testing.T) {
	want := []string{
		"identity", "1x3 then 3x1 convolution", "1x7 then 7x1 convolution", "3x3 dilated convolution",
		"3x3 average pooling", "3x3 max pooling", "5x5 max pooling", "7x7 max pooling",
		"1x1 convolution", "3x3 convolution", "3x3 depthwise-separable convolution",
		"5x5 depthwise-separable convolution", "7x7 depthwise-separable convolution",
	}
	if len(want) != NumCellOps {
		t.Fatalf("want %d ops, NumCellOps = %d", len(want), NumCellOps)
	}
	for i, d := range want {
		op := CellOp(i)
		if op.Description() != d {
			t.Errorf("op %d: description %q, want %q", i, op.Description(), d)
		}
		got, err := ParseCellOp(op.String())
		if err != nil || got != op {
			t.Errorf("ParseCellOp(%q) = %v, %v; want %v", op.String(), got, err, op)
		}
	}
	if CellOp(NumCellOps).Valid() || CellOp(NumCellOps).String() != "CellOp(13)" {
		t.Errorf("CellOp(13): Valid %v String %q", CellOp(13).Valid(), CellOp(13))
	}
	_, err := ParseCellOp("sep3x3")
	if err == nil || !strings.Contains(err.Error(), "identity, conv_1x3_3x1") || !strings.Contains(err.Error(), "sep_conv_7x7") {
		t.Errorf("ParseCellOp error should list the valid names, got %v", err)
	}
	if _, err := ParseCellCombine("sum"); err == nil || !strings.Contains(err.Error(), "add, concat") {
		t.Errorf("ParseCellCombine error should list the valid names, got %v", err)
	}
	// The study's action indices (docs/study.md, section 4), written out.
	want = []string{"identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5",
		"max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"}
	names := CellOpNames()
	if !slices.Equal(names, want) {
		t.Errorf("CellOpNames() = %v, want the study's order %v", names, want)
	}
	names[0] = "changed"
	if CellOpNames()[0] != "identity" {
		t.Error("CellOpNames returns the table itself, not a copy")
	}
}

const studyLike = "normal: b0 = add(sep_conv_3x3(h1), identity(h0)); b1 = concat(max_pool_3x3(b0), conv_1x1(h0)) | " +
	"reduction: b0 = add(sep_conv_7x7(h0), max_pool_5x5(h1)); b1 = add(dil_conv_3x3(h1), avg_pool_3x3(b0))"

func TestParseCellPair(t *testing.T) {
	p, err := ParseCellPair(studyLike)
	if err != nil {
		t.Fatal(err)
	}
	want := CellPair{
		Normal: Cell{Blocks: []CellBlock{
			{In1: 1, In2: 0, Op1: CellSepConv3x3, Op2: CellIdentity, Combine: CellAdd},
			{In1: 2, In2: 0, Op1: CellMaxPool3x3, Op2: CellConv1x1, Combine: CellConcat},
		}},
		Reduction: Cell{Blocks: []CellBlock{
			{In1: 0, In2: 1, Op1: CellSepConv7x7, Op2: CellMaxPool5x5, Combine: CellAdd},
			{In1: 1, In2: 2, Op1: CellDilConv3x3, Op2: CellAvgPool3x3, Combine: CellAdd},
		}},
	}
	if !p.Equal(want) {
		t.Fatalf("got %v\nwant %v", p, want)
	}
	if p.String() != studyLike {
		t.Errorf("String:\n got %s\nwant %s", p, studyLike)
	}
	if p.B() != 2 || p.Validate() != nil {
		t.Errorf("B %d, Validate %v", p.B(), p.Validate())
	}
	// Spaces are optional.
	compact := strings.NewReplacer(" ", "").Replace(studyLike)
	q, err := ParseCellPair(compact)
	if err != nil || !q.Equal(p) {
		t.Errorf("compact form: %v, %v", q, err)
	}
	// Actions: 5 per block, normal first; inputs as raw indices.
	wantActions := []int{1, 0, 10, 0, 0, 2, 0, 5, 8, 1, 0, 1, 12, 6, 0, 1, 2, 3, 4, 0}
	if got := p.Actions(); !slices.Equal(got, wantActions) {
		t.Errorf("Actions = %v, want %v", got, wantActions)
	}
	back, err := CellPairFromActions(wantActions)
	if err != nil || !back.Equal(p) {
		t.Errorf("CellPairFromActions: %v, %v", back, err)
	}
}

func TestCellOutputs(t *testing.T) {
	for _, tc := range []struct {
		cell string
		want []int
	}{
		{"b0 = add(identity(h0), identity(h1))", []int{0}},
		{"b0 = add(identity(h0), identity(h1)); b1 = add(conv_3x3(b0), identity(h1))", []int{1}},
		{"b0 = add(identity(h0), identity(h1)); b1 = add(conv_3x3(h0), identity(h1)); b2 = add(conv_3x3(b0), identity(b0))", []int{1, 2}},
	} {
		c, err := ParseCell(tc.cell)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Outputs(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Outputs %v, want %v", tc.cell, got, tc.want)
		}
		if c.String() != tc.cell {
			t.Errorf("String %q, want %q", c, tc.cell)
		}
	}
}

// Every problem is reported, each with its column (1-based) and place.
func TestParseCellErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // substrings of the problems, in order
	}{
		{"b0 = add(sep3x3(h1), identity(h2)); b1 = mul(conv_1x1(b1), identity(h0))", []string{
			`col 10: b0 op1: unknown cell operation "sep3x3" (valid: identity,`,
			`col 31: b0 input2: unknown input "h2" (block b0 may read h0, h1)`,
			`col 42: b1: unknown combination "mul" (valid: add, concat)`,
			`col 55: b1 input1: b1 is not an earlier block (block b1 may read h0, h1 or b0)`,
		}},
		{"b1 = add(identity(h0), identity(h1))", []string{`col 1: b0: block 0 is labelled "b1"`}},
		{"b0 = add(identity(h0) identity(h1))", []string{`col 23: b0: want "bK = add|concat(op(input), op(input))": found "identity" where "," belongs`}},
		{"b0 = add(identity(h0), identity(h1)", []string{`col 36: b0: want "bK = add|concat(op(input), op(input))": text ends early`}},
		{"b0 = add(identity(h0), identity(h1)) x", []string{`col 38: b0: unexpected "x" after the block`}},
		{"b0 = add(identity(h0), identity(h1));", []string{`col 38: empty block after ';'`}},
		{"  ", []string{`col 3: cell has no blocks`}},
		{"b0 = add(identity(h0), identity(h1)); b1 = add(conv_3x3(b0), identity(h#))", []string{`col 72: b1: unexpected character "#"`}},
	} {
		_, err := ParseCell(tc.in)
		checkProblems(t, tc.in, err, tc.want)
	}
}

func TestParseCellPairErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"b0 = add(identity(h0), identity(h1))", []string{`no "|" between the two cells`}},
		{"normal: b0 = add(identity(h0), identity(h1)) | reduction: b0 = add(identity(h0), identity(h1)); b1 = add(identity(h0), identity(b0))",
			[]string{`col 48: reduction: has 2 blocks, the normal cell 1; both cells need the same B`}},
		{"normal: b0 = add(identity(h0), identity(h3)) | reduce: b0 = add(max(h0), identity(h1))", []string{
			`col 41: normal b0 input2: unknown input "h3"`,
			`col 48: want "reduction:" before the reduction cell`,
		}},
		{"normal: b0 = add(identity(h0), identity(h1)) | reduction: b0 = add(identity(h0), identity(h1)) | x", []string{`col 96: want "normal: <cell> | reduction: <cell>": more than one "|"`}},
	} {
		_, err := ParseCellPair(tc.in)
		checkProblems(t, tc.in, err, tc.want)
	}
}

// checkProblems checks that err, from parsing in, is a CellProblems of
// len(want) problems, the i-th containing want[i].
func checkProblems(t *testing.T, in string, err error, want []string) {
	t.Helper()
	var probs CellProblems
	if !errors.As(err, &probs) {
		t.Errorf("%q: error %v is not a CellProblems", in, err)
		return
	}
	if len(probs) != len(want) {
		t.Errorf("%q: %d problems, want %d:\n%v", in, len(probs), len(want), err)
		return
	}
	for i, w := range want {
		if !strings.Contains(probs[i].Error(), w) {
			t.Errorf("%q: problem %d = %q, want it to contain %q", in, i, probs[i].Error(), w)
		}
	}
}

func TestCellValidate(t *testing.T) {
	p := CellPair{
		Normal: Cell{Blocks: []CellBlock{
			{In1: 2, In2: -1, Op1: 13, Op2: CellConv3x3, Combine: 2},
		}},
		Reduction: Cell{},
	}
	err := p.Validate()
	want := "normal b0 input1: b0 is not an earlier block (block b0 may read h0, h1); " +
		"normal b0 input2: input index -1 is negative; " +
		"normal b0 op1: operation index 13 is out of range 0-12; " +
		"normal b0 combine: combination index 2 is out of range 0-1; " +
		"reduction: cell has no blocks"
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n got %v\nwant %s", err, want)
	}
}

func TestCellPairFromActionsErrors(t *testing.T) {
	_, err := CellPairFromActions([]int{0, 1, 2})
	if err == nil || !strings.Contains(err.Error(), "got 3 integers, want 10*B integers") {
		t.Errorf("short vector: %v", err)
	}
	// B = 1: normal block then reduction block.
	_, err = CellPairFromActions([]int{0, 2, 13, 0, 1, -1, 1, 0, 0, 2})
	want := "action 1 (normal b0 input2): 2 is out of range 0-1; " +
		"action 2 (normal b0 op1): 13 is out of range 0-12; " +
		"action 5 (reduction b0 input1): -1 is out of range 0-1; " +
		"action 9 (reduction b0 combine): 2 is out of range 0-1"
	if err == nil || err.Error() != want {
		t.Errorf("bad vector:\n got %v\nwant %s", err, want)
	}
}

// FuzzParseCellPair: whatever parses prints to a text that parses to the same
// pair and prints identically, and is valid; nothing panics.
func FuzzParseCellPair(f *testing.F) {
	for _, s := range []string{
		studyLike,
		"normal: b0 = add(identity(h0), identity(h1)) | reduction: b0 = concat(conv_3x3(h1), sep_conv_5x5(h1))",
		"normal:b0=add(identity(h0),identity(h1));b1=add(identity(b0),identity(b0))|reduction:b0=add(identity(h0),identity(h1));b1=add(identity(h0),identity(b0))",
		"normal: b0 = add(identity(h0), identity(h9)) | reduction: ",
		"normal: | reduction: b0 = ;",
		"normal: b0 = add(identity(h0), identity(b00)) | reduction: b0 = add(identity(h0), identity(b-1))",
		"",
		"|",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCellPair(s)
		if err != nil {
			var probs CellProblems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error %v is not a non-empty CellProblems", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%q parses but is invalid: %v", s, err)
		}
		text := p.String()
		q, err := ParseCellPair(text)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, text, err)
		}
		if !q.Equal(p) || q.String() != text {
			t.Fatalf("round trip %q -> %q -> %q", s, text, q)
		}
		r, err := CellPairFromActions(p.Actions())
		if err != nil || !r.Equal(p) {
			t.Fatalf("actions round trip of %q: %v %v", s, r, err)
		}
	})
}
