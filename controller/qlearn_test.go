package controller

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
)

// A backward update on a hand-computed example (alpha 0.5, gamma 1, Q0 0.5):
// trajectory s0 -a-> s1 -b-> end, reward 1.
//
//	Q(s1,b) = 0.5 + 0.5*(1 - 0.5)          = 0.75
//	Q(s0,a) = 0.5 + 0.5*(max Q(s1,.) - 0.5) = 0.5 + 0.5*(0.75 - 0.5) = 0.625
//
// (walking forwards, Q(s0,a) would still see Q(s1,b) = 0.5 and stay 0.5).
// The study's defective update walks forwards with alpha in place of gamma:
//
//	Q(s0,a) = 0.5 + 0.5*(0.5*0.5 - 0.5) = 0.375, then Q(s1,b) = 0.75.
func TestQUpdateByHand(t *testing.T) {
	traj := []Transition{
		{State: "s0", Action: "a", Next: "s1", NextActions: []string{"b", "c"}},
		{State: "s1", Action: "b", Terminal: true},
	}
	q := NewQTable(QConfig{Alpha: 0.5, Replay: -1})
	q.Learn(traj, 1)
	if got := q.Value("s1", "b"); got != 0.75 {
		t.Errorf("Q(s1,b) = %v, want 0.75", got)
	}
	if got := q.Value("s0", "a"); got != 0.625 {
		t.Errorf("Q(s0,a) = %v, want 0.625", got)
	}
	if got := q.Value("s1", "c"); got != 0.5 {
		t.Errorf("unseen Q(s1,c) = %v, want 0.5", got)
	}
	study := NewQTable(QConfig{Alpha: 0.5, Replay: -1, StudyUpdate: true})
	study.Learn(traj, 1)
	if got := study.Value("s0", "a"); got != 0.375 {
		t.Errorf("study Q(s0,a) = %v, want 0.375", got)
	}
	if got := study.Value("s1", "b"); got != 0.75 {
		t.Errorf("study Q(s1,b) = %v, want 0.75", got)
	}
	// Gamma discounts the bootstrap: gamma 0.5 gives Q(s0,a) = 0.5 + 0.5*(0.375 - 0.5).
	g := NewQTable(QConfig{Alpha: 0.5, Gamma: 0.5, Replay: -1})
	g.Learn(traj, 1)
	if got := g.Value("s0", "a"); got != 0.4375 {
		t.Errorf("gamma 0.5: Q(s0,a) = %v, want 0.4375", got)
	}
}

// With TargetReturn every step learns the reward (alpha 0.5, Q0 0.5):
//
//	Q(s1,b) = Q(s0,a) = 0.5 + 0.5*(1 - 0.5) = 0.75
//
// then s0 -a-> s1 -c-> end with reward 0 pulls both steps it took down:
//
//	Q(s1,c) = 0.5 + 0.5*(0 - 0.5) = 0.25, Q(s0,a) = 0.75 + 0.5*(0 - 0.75) = 0.375,
//
// where Q-learning keeps Q(s0,a) up by the better continuation b:
//
//	Q(s0,a) = 0.625 + 0.5*(max(0.75, 0.25) - 0.625) = 0.6875.
//
// Gamma 0.5 discounts the reward by one step for s0: 0.5 + 0.5*(0.5 - 0.5) = 0.5.
func TestReturnTargetByHand(t *testing.T) {
	good := []Transition{
		{State: "s0", Action: "a", Next: "s1", NextActions: []string{"b", "c"}},
		{State: "s1", Action: "b", Terminal: true},
	}
	bad := []Transition{good[0], {State: "s1", Action: "c", Terminal: true}}
	ret := NewQTable(QConfig{Alpha: 0.5, Replay: -1, Target: TargetReturn})
	ret.Learn(good, 1)
	for _, sa := range [][2]string{{"s0", "a"}, {"s1", "b"}} {
		if got := ret.Value(sa[0], sa[1]); got != 0.75 {
			t.Errorf("return: Q(%s,%s) = %v, want 0.75", sa[0], sa[1], got)
		}
	}
	ret.Learn(bad, 0)
	if got := ret.Value("s1", "c"); got != 0.25 {
		t.Errorf("return: Q(s1,c) = %v, want 0.25", got)
	}
	if got := ret.Value("s0", "a"); got != 0.375 {
		t.Errorf("return: Q(s0,a) = %v, want 0.375", got)
	}
	qmax := NewQTable(QConfig{Alpha: 0.5, Replay: -1, Target: TargetMax})
	qmax.Learn(good, 1)
	qmax.Learn(bad, 0)
	if got := qmax.Value("s0", "a"); got != 0.6875 {
		t.Errorf("max: Q(s0,a) = %v, want 0.6875", got)
	}
	g := NewQTable(QConfig{Alpha: 0.5, Gamma: 0.5, Replay: -1, Target: TargetReturn})
	g.Learn(good, 1)
	if got, want := [2]float64{g.Value("s0", "a"), g.Value("s1", "b")}, [2]float64{0.5, 0.75}; got != want {
		t.Errorf("return, gamma 0.5: Q(s0,a), Q(s1,b) = %v, want %v", got, want)
	}
}

// With TargetMean a step is worth the mean reward of the remembered
// trajectories that took it, whatever Alpha and Replay say: after good (1),
// bad (0) and good again (0.7),
//
//	Q(s0,a) = (1 + 0 + 0.7) / 3, Q(s1,b) = (1 + 0.7) / 2, Q(s1,c) = 0,
//
// and a table restored from its values and memory (no visit counts) goes on
// from the same means: one more bad (0.2) gives Q(s0,a) = 1.9 / 4.
func TestMeanTargetByHand(t *testing.T) {
	good := []Transition{
		{State: "s0", Action: "a", Next: "s1", NextActions: []string{"b", "c"}},
		{State: "s1", Action: "b", Terminal: true},
	}
	bad := []Transition{good[0], {State: "s1", Action: "c", Terminal: true}}
	if c := NewQTable(QConfig{Target: TargetMean}).Config(); c.Replay != -1 || c.Alpha != 0 {
		t.Errorf("target mean: replay %d and alpha %v by default, want -1 (none) and 0 (not used)", c.Replay, c.Alpha)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	q := NewQTable(QConfig{Alpha: 0.3, Replay: 128, Target: TargetMean})
	q.Remember(good, 1, rng)
	q.Remember(bad, 0, rng)
	q.Remember(good, 0.7, rng)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("Q(s0,a)", q.Value("s0", "a"), 1.7/3)
	near("Q(s1,b)", q.Value("s1", "b"), 0.85)
	near("Q(s1,c)", q.Value("s1", "c"), 0)
	restored := &QTable{cfg: q.cfg, Q: q.Q, Memory: q.Memory}
	restored.Remember(bad, 0.2, rng)
	near("restored Q(s0,a)", restored.Value("s0", "a"), 1.9/4)
	near("restored Q(s1,c)", restored.Value("s1", "c"), 0.1)
}

// Replay learns from the memory: with alpha 1 a remembered trajectory is
// learnt again, and the memory keeps every experience.
func TestReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	q := NewQTable(QConfig{Alpha: 0.1, Replay: 50})
	a := []Transition{{State: "s", Action: "a", Terminal: true}}
	b := []Transition{{State: "s", Action: "b", Terminal: true}}
	q.Remember(a, 1, rng)
	// One learning step from 0.5 towards 1 is 0.55; 50 more replays of the
	// only memory move it to 1 - 0.5*0.9^51.
	want := 1 - 0.5*math.Pow(0.9, 51)
	if got := q.Value("s", "a"); math.Abs(got-want) > 1e-12 {
		t.Errorf("after replay Q(s,a) = %v, want %v", got, want)
	}
	q.Remember(b, 0, rng)
	if len(q.Memory) != 2 || q.Memory[1].Reward != 0 {
		t.Errorf("memory %+v", q.Memory)
	}
	if q.Value("s", "b") >= 0.5*0.9 {
		t.Errorf("Q(s,b) = %v: the replays did not reach it", q.Value("s", "b"))
	}
}

func TestChooseTiesAndGreedy(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	q := NewQTable(QConfig{})
	counts := map[string]int{}
	for range 3000 {
		counts[q.Choose("s", []string{"a", "b", "c"}, 0, rng)]++
	}
	// All tied at 0.5: uniform tie-breaking; each about 1000 (binomial SD 26).
	for _, a := range []string{"a", "b", "c"} {
		if counts[a] < 850 || counts[a] > 1150 {
			t.Errorf("tie-breaking counts %v", counts)
		}
	}
	q.set("s", "b", 0.9)
	for range 100 {
		if a := q.Choose("s", []string{"a", "b", "c"}, 0, rng); a != "b" {
			t.Fatalf("greedy chose %s", a)
		}
	}
	// eps = 1: uniform whatever the values.
	counts = map[string]int{}
	for range 3000 {
		counts[q.Choose("s", []string{"a", "b", "c"}, 1, rng)]++
	}
	if counts["a"] < 850 || counts["a"] > 1150 {
		t.Errorf("eps 1 counts %v", counts)
	}
}

// 10,000 architectures sampled at epsilon 1 from each preset are valid in it
// and build at the study's input.
func TestSampledArchitecturesValid(t *testing.T) {
	for _, name := range genotype.PresetNames() {
		space, _ := genotype.Preset(name)
		m, err := NewMetaQNN(space, genotype.StudyInput, QConfig{}, ScheduleStudy, 1)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 3))
		kinds := map[genotype.Kind]int{}
		for range 10000 {
			arch, traj := m.Sample(1, rng)
			if err := space.Validate(arch, genotype.StudyInput); err != nil {
				t.Fatalf("%s: %s: %v", name, arch, err)
			}
			if _, err := arch.Build(genotype.StudyInput, 2); err != nil {
				t.Fatalf("%s: %s: %v", name, arch, err)
			}
			if len(traj) != len(arch) || !traj[len(traj)-1].Terminal {
				t.Fatalf("trajectory of %d steps for %d layers", len(traj), len(arch))
			}
			for _, l := range arch {
				kinds[l.Kind]++
			}
		}
		// Every kind of layer appears.
		for _, k := range []genotype.Kind{genotype.Conv, genotype.Pool, genotype.FC, genotype.GAP, genotype.Softmax} {
			if kinds[k] == 0 {
				t.Errorf("%s: no %s layer in 10,000 samples", name, k)
			}
		}
	}
}

func TestSchedules(t *testing.T) {
	if ScheduleBaker2017.Total() != 2700 || ScheduleStudy.Total() != 270 {
		t.Errorf("totals %d %d", ScheduleBaker2017.Total(), ScheduleStudy.Total())
	}
	s, err := ParseSchedule("1.0:2, 0.5:1")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{1, 1, 0.5} {
		if e, ok := s.At(i); !ok || e != want {
			t.Errorf("At(%d) = %v %v", i, e, ok)
		}
	}
	if _, ok := s.At(3); ok {
		t.Error("At past the end")
	}
	for _, bad := range []string{"", "1.5:3", "0.5:0", "x", "0.5"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
	// Baker et al.'s 1500, 3x100, 6x150 of 2,700: each phase ends where its
	// end, scaled, rounds to (1500/9 = 166.7 ends the first at 167).
	for _, tc := range []struct {
		total int
		want  []int
	}{
		{300, []int{167, 11, 11, 11, 17, 16, 17, 17, 16, 17}},
		{50, []int{28, 2, 1, 2, 3, 3, 3, 2, 3, 3}},
		{2700, []int{1500, 100, 100, 100, 150, 150, 150, 150, 150, 150}},
	} {
		got := ScheduleBaker2017.Scale(tc.total)
		var models []int
		for i, p := range got {
			models = append(models, p.Models)
			if p.Epsilon != ScheduleBaker2017[i].Epsilon {
				t.Errorf("Scale(%d): phase %d at epsilon %v", tc.total, i, p.Epsilon)
			}
		}
		if !slices.Equal(models, tc.want) || got.Total() != tc.total {
			t.Errorf("Scale(%d) = %v, want %v", tc.total, models, tc.want)
		}
	}
	// Fewer models than phases: each model goes to the phase it falls in.
	if got := ScheduleBaker2017.Scale(4); !slices.Equal(got, EpsilonSchedule{{1, 2}, {0.8, 1}, {0.3, 1}}) {
		t.Errorf("Scale(4) = %v", got)
	}
}

// Trajectory rebuilds exactly what Sample recorded.
func TestTrajectoryMatchesSample(t *testing.T) {
	m, err := NewMetaQNN(genotype.Study, genotype.StudyInput, QConfig{}, ScheduleStudy, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 200 {
		arch, traj := m.Sample(1, rng)
		got, err := m.Trajectory(arch)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, traj) {
			t.Fatalf("%s: trajectory\n%+v\nsampled\n%+v", arch, got, traj)
		}
	}
	if _, err := m.Trajectory(genotype.MustParse("C(7,3,1) - SM()")); err == nil {
		t.Error("an architecture outside the space gave a trajectory")
	}
}

func TestQConfigCheck(t *testing.T) {
	for _, c := range []struct {
		cfg  QConfig
		want string // "" for valid
	}{
		{QConfig{}, ""},
		{QConfig{Redraw: 20}, ""},
		{QConfig{Redraw: -1}, "redraw -1"},
		{QConfig{NextBest: -2}, "next_best -2"},
		{QConfig{Alpha: 1.5}, "alpha and gamma"},
		{QConfig{Target: TargetReturn}, ""},
		{QConfig{Target: TargetMean}, ""},
		{QConfig{Target: "average"}, `target "average": want max (Q-learning), return`},
		{QConfig{Target: TargetMean, StudyUpdate: true}, "does not go with target mean"},
		{QConfig{Target: TargetReturn, StudyUpdate: true}, "does not go with target return"},
	} {
		err := c.cfg.Check()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: Check() = %v, want %q", c.cfg, err, c.want)
		}
	}
}

// With Redraw, neither the agent at a low epsilon nor the random baseline
// proposes an architecture it has already been told the reward of; without
// it, the greedy agent repeats its best path.
func TestRedrawSkipsRepeats(t *testing.T) {
	space := genotype.Study
	space.MaxDepth = 4
	in := genotype.Input{Height: 16, Width: 16, Channels: 1}
	repeats := func(cfg QConfig, random bool, eps float64) int {
		m, err := NewMetaQNN(space, in, cfg, EpsilonSchedule{{1, 10}, {eps, 30}}, 3)
		if err != nil {
			t.Fatal(err)
		}
		m.Random = random
		_, n, _ := search40(t, m)
		return n
	}
	without := repeats(QConfig{Alpha: 0.5}, false, 0.1)
	with := repeats(QConfig{Alpha: 0.5, Redraw: 50}, false, 0.1)
	t.Logf("repeats in 40 proposals: %d without redraw, %d with", without, with)
	if without < 10 {
		t.Errorf("without redraw the greedy agent repeated %d of 40 proposals; want many (else this test shows nothing)", without)
	}
	// A few repeats remain once the greedy path's neighbours at epsilon 0.1
	// are used up (50 draws find nothing new).
	if with > without/3 {
		t.Errorf("with redraw 50 the agent repeated %d of 40 proposals, without %d", with, without)
	}
	if n := repeats(QConfig{Redraw: 50}, true, 0.1); n != 0 {
		t.Errorf("with redraw 50 random search repeated %d of 40 proposals", n)
	}
}

// search40 runs trials 1 to 40 of m with a reward that favours short
// networks (1 - 0.1 per layer), which gives the greedy path a clear best. It
// returns the proposals, how many repeated an earlier one, and how many
// were greedy.
func search40(t *testing.T, m *MetaQNN) (archs []string, repeats, greedy int) {
	t.Helper()
	seen := map[string]bool{}
	for trial := 1; trial <= 40; trial++ {
		p, err := m.Propose(trial)
		if err != nil {
			t.Fatal(err)
		}
		if k := p.Genotype.Key(); seen[k] {
			repeats++
		} else {
			seen[k] = true
		}
		if p.Greedy {
			greedy++
		}
		arch := p.Genotype.(genotype.Arch)
		archs = append(archs, arch.String())
		if _, err := m.Observe(trial, p, 1-0.1*float64(len(arch))); err != nil {
			t.Fatal(err)
		}
	}
	return archs, repeats, greedy
}

// A proposal is greedy when none of its layers took the epsilon branch.
// After one remembered network, that network is the greedy path, alone above
// the initial value in each of its states, so at epsilon 0.3 a proposal is
// greedy with probability 0.7^4 = 0.2401 for its four layers, and a greedy
// proposal is that network; at epsilon 0 every proposal is greedy, at 1 none.
func TestProposalGreedy(t *testing.T) {
	in := genotype.Input{Height: 8, Width: 8, Channels: 1}
	arch, err := genotype.Parse("C(64,3,1) - P(2,2) - C(128,1,1) - SM()")
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	for _, eps := range []float64{0, 0.3, 1} {
		m, err := NewMetaQNN(genotype.Study, in, QConfig{Alpha: 0.1}, EpsilonSchedule{{Epsilon: eps, Models: 1}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		traj, err := m.Trajectory(arch)
		if err != nil {
			t.Fatal(err)
		}
		m.Table.Remember(traj, 0.9, rand.New(rand.NewPCG(1, 1)))
		greedy := 0
		for trial := 1; trial <= n; trial++ {
			p, err := m.Propose(trial)
			if err != nil {
				t.Fatal(err)
			}
			if p.Greedy {
				greedy++
				if p.Genotype.String() != arch.String() {
					t.Fatalf("epsilon %v: greedy proposal %s, want %s", eps, p.Genotype, arch)
				}
			}
		}
		// Binomial SD at 0.2401: 0.0068 of n; 0.03 is over 4 SD.
		want := math.Pow(1-eps, float64(len(arch)))
		if got := float64(greedy) / n; math.Abs(got-want) > 0.03 {
			t.Errorf("epsilon %v: %.4f of the proposals greedy, want %.4f", eps, got, want)
		}
	}
}

// Progress lines, reports and plots write an epsilon with the decimals it
// needs: the cpu schedule's last two phases are 0.05 and 0.02, not 0.1 and
// 0.0, and a user's 0.005 is not 0.01.
func TestEpsilonText(t *testing.T) {
	for eps, want := range map[float64]string{1: "1.0", 0.8: "0.8", 0.1: "0.1", 0.05: "0.05", 0.02: "0.02", 0.005: "0.005",
		0: "0.0", 0.25: "0.25", 1.0 / 3: "0.3333", 0.1 + 0.2: "0.3", 1e-7: "0.0"} {
		if got := EpsilonText(eps); got != want {
			t.Errorf("EpsilonText(%v) = %q, want %q", eps, got, want)
		}
	}
}
