package genotype

import (
	"strings"
	"testing"
)

func TestParsePrint(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"C(128,5,1) - C(64,1,1) - SM()", "C(128,5,1) - C(64,1,1) - SM()"},
		{"C(128,5,1)-C(64,1,1)-SM()", "C(128,5,1) - C(64,1,1) - SM()"},
		{"  P(2,2) -C( 32 , 3 , 1 )- FC(128) -FC(64)- SM ( ) ", "P(2,2) - C(32,3,1) - FC(128) - FC(64) - SM()"},
		{"GAP()", "GAP()"},
		{"C(16,3,1) - P(2,2) - GAP()", "C(16,3,1) - P(2,2) - GAP()"},
		// The study's typo 521 parses: filter counts are the space's business.
		{"C(521,5,1) - SM()", "C(521,5,1) - SM()"},
	}
	for _, tc := range tests {
		a, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := a.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantMsg string // substring of the error
	}{
		{"", "empty architecture"},
		{"C(64,3,1)", `layer 1 "C(64,3,1)": the architecture must end with GAP() or SM()`},
		{"C(64,3,1) - - SM()", "layer 2: empty layer"},
		{"C(64,3) - SM()", `layer 1 "C(64,3)": C takes 3 arguments, got 2 (C(filters,kernel,stride))`},
		{"C(64,3,1) - X(2) - SM()", `layer 2 "X(2)": unknown layer "X"`},
		{"C(64,0,1) - SM()", `layer 1 "C(64,0,1)": argument 2 "0" is not an integer`},
		{"C(64,-3,1) - SM()", `layer 1 "C(64,-3,1)": argument 2 "-3" is not an integer in [1, 1048576]`},
		{"C((1,1,1)) - SM()", `layer 1 "C((1,1,1))": expected NAME(args) with one pair`},
		{"C(1,1,1)) - SM()", "unbalanced parentheses: unexpected ')' at character 9"},
		{"SM() - C(64,3,1) - SM()", `layer 1 "SM()": a terminal layer (GAP or SM) must be the last layer`},
		{"C(64,3,1 - SM()", "unbalanced parentheses: a '(' is never closed"},
		{"FC(a) - SM()", `argument 1 "a" is not an integer`},
		{"GAP(1)", "GAP takes 0 arguments, got 1"},
		{"C(99999999,3,1) - SM()", "is not an integer in [1, 1048576]"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want %q", tc.in, tc.wantMsg)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("Parse(%q) error %q, want it to contain %q", tc.in, err, tc.wantMsg)
		}
	}
}

// FuzzParse checks that whatever parses prints back to a string that parses to
// the same architecture and prints identically.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"C(128,5,1) - C(64,1,1) - SM()",
		"P(2,2) - C(256,5,1) - C(128,1,1) - P(3,2) - C(64,3,1) - C(521,5,1) - C(128,3,1) - C(64,3,1) - P(3,3) - SM()",
		"C(16,3,1)-P(2,2)-FC(128)-FC(64)-SM()",
		"GAP()", "C(1,1,1) - GAP()", "FC(1)-SM()", "C((1,1,1)-SM()", "-", "C(1,1,1) - SM() - ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		printed := a.String()
		b, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) ok but its print %q does not parse: %v", s, printed, err)
		}
		if !a.Equal(b) {
			t.Fatalf("round trip changed %q: %v != %v", s, a, b)
		}
		if b.String() != printed {
			t.Fatalf("print not stable: %q then %q", printed, b.String())
		}
	})
}

func TestKindNames(t *testing.T) {
	for _, k := range []Kind{Conv, Pool, FC, GAP, Softmax} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseKind("conv"); err == nil || !strings.Contains(err.Error(), "valid: C(filters,kernel,stride)") {
		t.Errorf("ParseKind(conv) error %v, want the list of valid names", err)
	}
}
