package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nasctl/nasctl/genotype"
)

// tableFor is a valid table of model for the space "cpu" (digest abc) at
// 32x32x1.
func tableFor(m *LatencyModel) *LatencyTable {
	t := NewLatencyTable(m)
	t.Space, t.SpaceDigest, t.Input, t.Classes, t.Runs = "cpu", "abc", "32x32x1", 2, 10
	t.Machine = Machine{OS: "linux", Arch: "arm64", CPU: "Cortex-A72", Cores: 4}
	t.ONNXRuntime, t.Date = "1.30.0", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	return t
}

func writeTable(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "table.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A table written and read back predicts what its model predicts, to the
// last bit (JSON keeps float64 exactly).
func TestLatencyTableRoundTrip(t *testing.T) {
	m := &LatencyModel{Coefficients: []float64{0.02, 1e-7, 3e-7, 2e-8, 1e-6, 0.001, 0.002, 5e-6, 2e-7, 1e-6}, Threads: 1, MAPE: 4.5, HeldOut: 24, Fitted: 96}
	got, err := ReadLatencyTable(writeTable(t, tableFor(m)))
	if err != nil {
		t.Fatal(err)
	}
	net, err := genotype.MustParse("C(16,3,1) - P(2,2) - C(32,1,1) - FC(64) - SM()").Build(genotype.Input{Height: 32, Width: 32, Channels: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := got.Model().Predict(net), m.Predict(net); a != b {
		t.Errorf("predicted %v ms from the table, %v from the model", a, b)
	}
	if got.Machine.Arch != "arm64" || got.ONNXRuntime != "1.30.0" || got.Model().MAPE != 4.5 {
		t.Errorf("read back %+v", got)
	}
}

// Every problem of a table is named, with what to do.
func TestReadLatencyTableErrors(t *testing.T) {
	valid := func() *LatencyTable {
		return tableFor(&LatencyModel{Coefficients: make([]float64, len(Features)), Threads: 1})
	}
	for _, tc := range []struct {
		name  string
		table any
		want  []string
	}{
		{"not json", "{", []string{"is not a table written by nasctl bench latency-table"}},
		{"unknown key", map[string]any{"coefficients": []float64{1}}, []string{"is not a table", `unknown field "coefficients"`}},
		{"format", func() any { v := valid(); v.Format = 7; return v }(), []string{"format: 7, this nasctl reads format 1"}},
		{"no space, bad input", func() any { v := valid(); v.Space, v.Input = "", "32 by 32"; return v }(),
			[]string{"space, space_digest: missing", "input: "}},
		{"features", func() any {
			v := valid()
			v.MsPerUnit[1].Feature = "1x1 conv FLOPs"
			v.MsPerUnit[2] = v.MsPerUnit[0]
			return v
		}(), []string{`ms_per_unit[1]: unknown feature "1x1 conv FLOPs"`, `ms_per_unit[2]: "constant" appears twice`,
			`no entry for "1x1 conv MACs"`, `no entry for "conv MACs (k > 1)"`, "nasctl bench latency-table --space SPACE"}},
		{"threads", func() any { v := valid(); v.Threads = 0; return v }(), []string{"threads: 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var path string
			if s, ok := tc.table.(string); ok {
				path = filepath.Join(t.TempDir(), "table.json")
				os.WriteFile(path, []byte(s), 0o644)
			} else {
				path = writeTable(t, tc.table)
			}
			_, err := ReadLatencyTable(path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	_, err := ReadLatencyTable(filepath.Join(t.TempDir(), "robot.json"))
	if err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "--out") {
		t.Errorf("missing file: %v", err)
	}
}

// A table fits the space (name and settings) and input it was measured for
// and nothing else.
func TestLatencyTableCheck(t *testing.T) {
	tab := tableFor(&LatencyModel{Coefficients: make([]float64, len(Features)), Threads: 1})
	in32, in64 := genotype.Input{Height: 32, Width: 32, Channels: 1}, genotype.Input{Height: 64, Width: 64, Channels: 1}
	if err := tab.Check("cpu", "abc", in32); err != nil {
		t.Errorf("its own space and input: %v", err)
	}
	for _, tc := range []struct {
		space, digest string
		in            genotype.Input
		want          string
	}{
		{"study", "abc", in32, "measured for space cpu (settings abc), this search's space is study"},
		{"cpu", "def", in32, "this search's space is cpu (settings def)"},
		{"cpu", "abc", in64, "measured at input 32x32x1, this search's input is 64x64x1"},
	} {
		err := tab.Check(tc.space, tc.digest, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nasctl bench latency-table --space "+tc.space) {
			t.Errorf("Check(%s, %s, %s) = %v; want %q and what to do", tc.space, tc.digest, tc.in, err, tc.want)
		}
		// Checked against flags, no search is involved.
		err = tab.CheckGiven(tc.space, tc.digest, tc.in)
		want := strings.ReplaceAll(tc.want, "this search's space", "the space given")
		want = strings.ReplaceAll(want, "this search's input", "the input given")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "this search") {
			t.Errorf("CheckGiven(%s, %s, %s) = %v; want %q and no search", tc.space, tc.digest, tc.in, err, want)
		}
	}
}

// A model that prices a feature below zero says so, naming it; one whose
// costs are all positive has nothing to doubt.
func TestLatencyModelDoubt(t *testing.T) {
	coef := make([]float64, len(Features))
	for i := range coef {
		coef[i] = 1e-3
	}
	coef[0] = -0.01 // the constant may be negative
	m := &LatencyModel{Coefficients: coef, Fitted: 16}
	if d := m.Doubt(); d != "" {
		t.Errorf("positive costs: %q", d)
	}
	coef[2], coef[6] = -1.046e-08, -0.003439
	want := "the latency model, fitted on 16 networks, gives 2 features a negative cost in ms per unit (conv MACs (k > 1) -1.05e-08, convs (k > 1) -0.00344): a larger layer of that kind is predicted faster"
	if d := m.Doubt(); !strings.HasPrefix(d, want) {
		t.Errorf("negative costs:\n got %q\nwant %q...", d, want)
	}
}
