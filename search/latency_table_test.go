package search

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/search/rundir"
)

// madeUpTable is a table for cfg's space at input in where only the listed
// features cost anything (milliseconds per unit).
func madeUpTable(t *testing.T, cfg Config, in genotype.Input, ms map[string]float64) string {
	t.Helper()
	coef := make([]float64, len(bench.Features))
	for name, v := range ms {
		i := indexOf(t, name)
		coef[i] = v
	}
	tab := bench.NewLatencyTable(&bench.LatencyModel{Coefficients: coef, Threads: 1})
	tab.Space, tab.SpaceDigest = LatencySpace(cfg)
	tab.Input, tab.Classes, tab.Runs = in.String(), 2, 1
	return writeTableFile(t, tab)
}

func indexOf(t *testing.T, feature string) int {
	t.Helper()
	for i, f := range bench.Features {
		if f == feature {
			return i
		}
	}
	t.Fatalf("no feature %q", feature)
	return -1
}

func writeTableFile(t *testing.T, tab *bench.LatencyTable) string {
	t.Helper()
	b, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "robot.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostTable is the table measured on the project's machine (testdata;
// figures in docs/arm64.md, "A table measured here"), relabelled for cfg's
// space at input in: its milliseconds per unit are those measured.
func hostTable(t *testing.T, cfg Config, in genotype.Input) string {
	t.Helper()
	tab, err := bench.ReadLatencyTable(filepath.Join("testdata", "latency_table_host.json"))
	if err != nil {
		t.Fatal(err)
	}
	tab.Space, tab.SpaceDigest = LatencySpace(cfg)
	tab.Input = in.String()
	return writeTableFile(t, tab)
}

// pricyPooling makes pooling expensive (1 us per value pooled) and
// convolutions nearly free: the opposite of the host, where pooling costs
// next to nothing and convolutions most of the time.
var pricyPooling = map[string]float64{"constant": 0.01, "pool inputs": 1e-3, "1x1 conv MACs": 1e-10, "conv MACs (k > 1)": 1e-10}

// tableConfig is a MnasNet search (T = 1 ms) ranking by the table at path.
func tableConfig(t *testing.T, path string) Config {
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	cfg.Reward = RewardSettings{Mode: RewardMnasNet, TargetMs: 1, Table: path}.withDefaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The search's latencies and rewards follow its table: a pooling network
// and a convolution network of equal accuracy swap places between the host
// table and one that makes pooling expensive.
func TestLatencyTableFlipsRanking(t *testing.T) {
	base := testConfig(t, t.TempDir())
	in := (&fakeExecutor{}).Data().Input
	pool := genotype.MustParse("C(64,1,1) - P(2,2) - SM()")    // 16,384 values pooled, 16,384 MACs
	conv := genotype.MustParse("C(64,5,1) - C(64,5,1) - SM()") // nothing pooled, 14.9M MACs
	lat := map[string][2]float64{}
	for _, tc := range []struct{ name, path string }{
		{"host", hostTable(t, base, in)},
		{"pricy pooling", madeUpTable(t, base, in, pricyPooling)},
	} {
		s := newSearch(t, tableConfig(t, tc.path), &fakeExecutor{})
		if err := s.prepareLatency(context.Background()); err != nil {
			t.Fatal(err)
		}
		var ms [2]float64
		for i, g := range []genotype.Genotype{pool, conv} {
			net, err := g.Build(in, 2)
			if err != nil {
				t.Fatal(err)
			}
			if ms[i], err = s.latencyOf(context.Background(), net); err != nil {
				t.Fatal(err)
			}
		}
		lat[tc.name] = ms
		r := s.cfg.Reward
		t.Logf("%s table: pooling network %.4g ms (reward %.4f at accuracy 0.9), convolution network %.4g ms (reward %.4f)",
			tc.name, ms[0], r.reward(0.9, ms[0]), ms[1], r.reward(0.9, ms[1]))
	}
	if h := lat["host"]; !(h[0] < h[1]) {
		t.Errorf("host table: pooling network %v ms, convolution network %v ms; want the pooling one faster", h[0], h[1])
	}
	// By hand: 0.01 + 16,384 x 1e-3 + 16,384 x 1e-10 ms, and 0.01 +
	// (12*12*64*25 + 12*12*64*64*25) x 1e-10 ms.
	p := lat["pricy pooling"]
	if want := 0.01 + 16384e-3 + 16384e-10; math.Abs(p[0]-want) > 1e-9 {
		t.Errorf("pricy pooling: pooling network %v ms, want %v", p[0], want)
	}
	if want := 0.01 + (12*12*64*25+12*12*64*64*25)*1e-10; math.Abs(p[1]-want) > 1e-9 {
		t.Errorf("pricy pooling: convolution network %v ms, want %v", p[1], want)
	}
	r := tableConfig(t, "unused").Reward
	if !(r.reward(0.9, p[0]) < r.reward(0.9, p[1])) || !(r.reward(0.9, lat["host"][0]) > r.reward(0.9, lat["host"][1])) {
		t.Error("the rewards at equal accuracy do not swap with the tables")
	}
}

// A whole search ranks by its table: every trained trial's latency is the
// table's (counted from the layers, independently of the model's features),
// its reward MnasNet's of that latency, and the run keeps the table with
// where it came from.
func TestSearchRanksByTable(t *testing.T) {
	base := testConfig(t, t.TempDir())
	in := (&fakeExecutor{}).Data().Input
	path := madeUpTable(t, base, in, pricyPooling)
	cfg := tableConfig(t, path)
	s := newSearch(t, cfg, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, tr := range s.Trials() {
		if tr.Status != rundir.StatusOK {
			continue
		}
		ok++
		want := tableByHand(t, tr.Arch, in)
		if math.Abs(tr.LatencyMs-want) > 1e-9*want {
			t.Errorf("trial %d %s: latency %v ms, the table gives %v", tr.ID, tr.Arch, tr.LatencyMs, want)
		}
		acc := fakeReward(genotype.MustParse(tr.Arch))
		if r := acc * math.Pow(tr.LatencyMs/1, -0.07); math.Abs(tr.Reward-r) > 1e-12 {
			t.Errorf("trial %d: reward %v, want %v", tr.ID, tr.Reward, r)
		}
	}
	if ok < 10 {
		t.Fatalf("%d trained trials; the test needs more", ok)
	}
	var kept runTable
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(s.Dir(), FileLatencyTable))), &kept); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	if kept.Source.Path != path || kept.Source.SHA256 != hex.EncodeToString(sum[:]) || kept.Input != in.String() {
		t.Errorf("kept table from %+v for %s", kept.Source, kept.Input)
	}
	if rep := readFile(t, filepath.Join(s.Dir(), rundir.FileReport)); !strings.Contains(rep, "latency predicted by the table robot.json") {
		t.Errorf("the report does not name the table:\n%s", rep)
	}
	// The original may go: a resumed run uses its copy.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r := resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err != nil {
		t.Errorf("resumed without the original table: %v", err)
	}
	// A damaged copy is refused, not indexed past.
	r.Close()
	kept.MsPerUnit[0].Feature = "FLOPs"
	b, _ = json.Marshal(kept)
	if err := os.WriteFile(filepath.Join(s.Dir(), FileLatencyTable), b, 0o644); err != nil {
		t.Fatal(err)
	}
	damaged := resume(t, cfg, &fakeExecutor{})
	err := damaged.Run(context.Background(), nil)
	damaged.Close()
	if err == nil || !strings.Contains(err.Error(), `the run's copy of its latency table`) || !strings.Contains(err.Error(), `unknown feature "FLOPs"`) {
		t.Errorf("resumed with a damaged copy: %v", err)
	}
	// Given more trials, a resume reads the copy before it sets the old
	// plan's checkpoint, final phase and report aside: the run stays whole.
	if err := os.WriteFile(filepath.Join(s.Dir(), FileLatencyTable), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r2, err := Resume(s.Dir(), ResumeOptions{Trials: cfg.Trials + 5}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if err == nil {
		r2.Close()
	}
	if err == nil || !strings.Contains(err.Error(), FileLatencyTable+": invalid character") {
		t.Errorf("resumed for more trials with a damaged copy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), rundir.DirEarlier)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old plan was set aside before the damaged copy was read: %v", err)
	}
	// So does a well-formed table for another input put in its place.
	other := readFile(t, madeUpTable(t, base, genotype.Input{Height: 32, Width: 32, Channels: 1}, pricyPooling))
	if err := os.WriteFile(filepath.Join(s.Dir(), FileLatencyTable), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	r3, err := Resume(s.Dir(), ResumeOptions{Trials: cfg.Trials + 5}, func(Config) (Executor, error) { return &fakeExecutor{}, nil })
	if err == nil {
		r3.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "the run's copy of its latency table, "+filepath.Join(s.Dir(), FileLatencyTable)) || !strings.Contains(err.Error(), "measured at input 32x32x1") {
		t.Errorf("resumed for more trials with a table for another input: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), rundir.DirEarlier)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old plan was set aside before the copy was checked: %v", err)
	}
}

// tableByHand is pricyPooling's latency of arch at input in, from its
// layers: 1 us per value entering a pooling layer, 1e-10 ms per
// convolution MAC.
func tableByHand(t *testing.T, arch string, in genotype.Input) float64 {
	net, err := genotype.MustParse(arch).Build(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	ms, prev := 0.01, int64(in.Height*in.Width*in.Channels)
	for _, l := range net.Layers() {
		switch {
		case strings.HasPrefix(l.Layer, "P("):
			ms += float64(prev) * 1e-3
		case strings.HasPrefix(l.Layer, "C("):
			ms += float64(l.MACs) * 1e-10
		}
		prev = l.Out.Size()
	}
	return ms
}

// A table made for another input or space, or a missing one, stops the
// search before its run directory exists, with what to do; a table with a reward that
// uses no latency, or with measured latency, is a settings error.
func TestLatencyTableRefused(t *testing.T) {
	base := testConfig(t, t.TempDir())
	in := (&fakeExecutor{}).Data().Input
	study := base
	study.MetaQNN.Space = SpaceSpec{genotype.Study.Clone()}
	for _, tc := range []struct{ name, path, want string }{
		{"input", madeUpTable(t, base, genotype.Input{Height: 32, Width: 32, Channels: 1}, pricyPooling),
			"measured at input 32x32x1, this search's input is 16x16x1"},
		{"space", madeUpTable(t, study, in, pricyPooling), "measured for space study"},
		{"missing", filepath.Join(t.TempDir(), "robot.json"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exec := &fakeExecutor{}
			cfg := tableConfig(t, tc.path)
			s, err := New(cfg, exec)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nasctl bench latency-table --space") {
				t.Errorf("New: %v; want %q and what to do", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, cfg.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a run directory was made: %v", err)
			}
			if len(exec.trained) != 0 {
				t.Errorf("trained %d trials", len(exec.trained))
			}
		})
	}
	for _, r := range []RewardSettings{{Table: "robot.json"}, {Mode: RewardMnasNet, TargetMs: 1, Latency: LatencyMeasured, Table: "robot.json"}} {
		if ps := r.withDefaults().check(); len(ps) != 1 || !strings.HasPrefix(ps[0], "reward.latency_table: ") {
			t.Errorf("check(%+v) = %q", r, ps)
		}
	}
}

// A space digests the same when read back from a run's config.yaml, and
// differently from the other presets' spaces.
func TestLatencySpaceDigest(t *testing.T) {
	seen := map[string]string{}
	for _, name := range PresetNames() {
		cfg, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.WithDefaults()
		b, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, rundir.FileConfig), b, 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := ReadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		space, digest := LatencySpace(cfg)
		if s2, d2 := LatencySpace(back.WithDefaults()); s2 != space || d2 != digest {
			t.Errorf("%s: %s %s, read back %s %s", name, space, digest, s2, d2)
		}
		if other, ok := seen[digest]; ok {
			t.Errorf("presets %s and %s digest alike (%s)", other, name, digest)
		}
		seen[digest] = name
	}
}

// unbuildable is a method whose every candidate is too large for its input.
type unbuildable struct{ method }

func (unbuildable) sampler(*rand.Rand) (func() genotype.Genotype, error) {
	a, err := genotype.Parse("C(8,5,1) - C(8,5,1) - SM()")
	return func() genotype.Genotype { return a }, err
}

// A space none of whose candidates fits the input ends the latency
// calibration with an error that says so, instead of drawing forever.
func TestCalibrationGivesUp(t *testing.T) {
	in := genotype.Input{Height: 4, Width: 4, Channels: 1}
	sample, err := calibrationNets(unbuildable{}, 1, in, 2)
	if err != nil {
		t.Fatal(err)
	}
	if net, err := sample(0); net != nil || err == nil || !strings.Contains(err.Error(), "builds for input 4x4x1") {
		t.Errorf("net %v, error %v", net, err)
	}
}

// A table whose model gives a layer a negative cost (a fit on few or noisy
// timings, as one measured under emulation did) is used with a warning, as
// the search's own calibration warns; a sound table says nothing. A search
// that measures latencies with several workers warns that the timings run
// beside trainings.
func TestLatencyWarnings(t *testing.T) {
	base := testConfig(t, t.TempDir())
	in := (&fakeExecutor{}).Data().Input
	warnings := func(cfg Config) []string {
		s := newSearch(t, cfg, &fakeExecutor{})
		defer s.Close()
		var got []string
		s.Progress = func(e Event) {
			if strings.HasPrefix(e.Message, "warning: ") {
				got = append(got, e.Message)
			}
		}
		if err := s.prepareLatency(context.Background()); err != nil {
			t.Fatal(err)
		}
		return got
	}
	negative := map[string]float64{"constant": 0.01, "1x1 conv MACs": -1e-9, "conv MACs (k > 1)": 1e-9}
	if got := warnings(tableConfig(t, madeUpTable(t, base, in, negative))); len(got) != 1 || !strings.Contains(got[0], "a negative cost") {
		t.Errorf("a table with a negative cost: warnings %q", got)
	}
	if got := warnings(tableConfig(t, madeUpTable(t, base, in, pricyPooling))); len(got) != 0 {
		t.Errorf("a sound table: warnings %q", got)
	}
	for workers, want := range map[int]int{2: 1, 1: 0} {
		cfg := testConfig(t, t.TempDir())
		cfg.Final.Skip, cfg.Workers = true, workers
		cfg.Reward = RewardSettings{Mode: RewardMnasNet, TargetMs: 1, Latency: LatencyMeasured}.withDefaults()
		if got := warnings(cfg); len(got) != want || want > 0 && !strings.Contains(got[0], "give --workers 1") {
			t.Errorf("measured with %d workers: warnings %q", workers, got)
		}
	}
	// Trials trained by workers elsewhere: not --workers 1 (the trials in
	// flight on the broker), but where the workers run.
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip, cfg.Workers = true, 4
	cfg.Reward = RewardSettings{Mode: RewardMnasNet, TargetMs: 1, Latency: LatencyMeasured}.withDefaults()
	s := newSearch(t, cfg, remoteExecutor{&fakeExecutor{}})
	var got []string
	s.Progress = func(e Event) { got = append(got, e.Message) }
	if err := s.prepareLatency(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "run the workers on other machines") || strings.Contains(got[0], "--workers 1") {
		t.Errorf("measured with workers elsewhere: %q", got)
	}
}

// remoteExecutor is a fake executor whose trials train elsewhere.
type remoteExecutor struct{ *fakeExecutor }

func (remoteExecutor) TrainsElsewhere() bool { return true }

// A resumed run whose latency model is gone calibrates a new one and warns
// that the trials from here on are judged by it; a damaged one stops the
// resume with what to do.
func TestLatencyModelLostOnResume(t *testing.T) {
	withRuntime(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Final.Skip = true
	cfg.Reward = RewardSettings{Mode: RewardConstraint, MaxLatencyMs: 1000, Calibration: 20}
	cfg = cfg.WithDefaults()
	s := newSearch(t, cfg, &fakeExecutor{})
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(s.Dir(), rundir.FileLatencyModel)
	if err := os.WriteFile(path, []byte(`{"coefficients": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := resume(t, cfg, &fakeExecutor{})
	if err := r.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "the run's latency model is damaged; delete it and resume to calibrate a new one") {
		t.Errorf("resumed with a damaged latency model: %v", err)
	}
	r.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r = resume(t, cfg, &fakeExecutor{})
	var got []string
	r.Progress = func(e Event) { got = append(got, e.Message) }
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !strings.Contains(strings.Join(got, "\n"), "warning: latency_model.json is missing, though 30 trials were refused or ranked by it: calibrating a new one") {
		t.Errorf("resumed without the latency model:\n%s", strings.Join(got, "\n"))
	}
}
