package controller

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// noRepeat is a space whose masks depend on earlier choices: n decisions of
// k choices, none equal to the one before it.
type noRepeat struct{ n, k int }

func (s noRepeat) Types() []DecisionType { return []DecisionType{{Name: "x", Choices: s.k}} }
func (s noRepeat) Steps() []int          { return make([]int, s.n) }
func (s noRepeat) Valid(t int, prev []int, valid []bool) {
	for i := range valid {
		valid[i] = t == 0 || i != prev[t-1]
	}
}

// tinyPolicy returns a small policy and its training graph for n episodes.
func tinyPolicy(t *testing.T, s Space, hidden, layers, embed, n int, entropy bool) (*policy, *trainGraph) {
	t.Helper()
	p, err := newPolicy(s, hidden, layers, embed, 0.5, rand.New(rand.NewPCG(7, 8)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTrainGraph(p, n, entropy)
	if err != nil {
		t.Fatal(err)
	}
	return p, g
}

func gradBuffers(p *policy) [][]float64 {
	out := make([][]float64, len(p.params))
	for i, q := range p.params {
		out[i] = make([]float64, len(q.data))
	}
	return out
}

// The plain-Go sampler and the gorgonia graph compute the same
// log-probabilities, masks and temperatures included: with weight -1 on one
// episode and 0 on the others the loss is that episode's log-probability.
func TestSamplerMatchesGraph(t *testing.T) {
	for _, s := range []Space{CellSpace{B: 3}, UniformSpace{N: 6, Type: DecisionType{Name: "op", Choices: 5}}, noRepeat{n: 8, k: 3}} {
		const n = 4
		p, g := tinyPolicy(t, s, 6, 2, 5, n, false)
		rng := rand.New(rand.NewPCG(1, 1))
		sm := newSampler(p)
		items := make([]batchItem, n)
		logps := make([]float64, n)
		for e := range items {
			temp := []float64{1, 0.7, 2.5, 5}[e]
			a, lp, err := sm.episode(s, temp, rng)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckActions(s, a); err != nil {
				t.Fatalf("sampled an invalid architecture: %v", err)
			}
			items[e] = batchItem{actions: a, temp: temp}
			logps[e] = lp
		}
		grads := gradBuffers(p)
		for e := range items {
			for i := range items {
				items[i].w = 0
			}
			items[e].w = -1
			g.set(s, items)
			got, err := g.run(grads)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-logps[e]) > 1e-12*max(1, math.Abs(got)) {
				t.Errorf("%T episode %d: graph log-probability %.15g, sampler %.15g", s, e, got, logps[e])
			}
		}
	}
}

// The gradient of the policy loss (REINFORCE term and entropy bonus, with
// masks and per-episode temperatures) matches central finite differences,
// (L(w+h) - L(w-h)) / 2h with h = 1e-5, on every weight of a tiny controller.
// Tolerance: |analytic - numeric| <= 1e-7 + 1e-6*|analytic|. The central
// difference's truncation error is O(h^2 L”') ~ 1e-10 and its rounding
// error ~ 1e-16 |L| / h ~ 1e-10 here, so the margin is three orders.
func TestGradientFiniteDifferences(t *testing.T) {
	for _, s := range []Space{CellSpace{B: 2}, noRepeat{n: 4, k: 3}} {
		const n = 3
		p, g := tinyPolicy(t, s, 3, 2, 2, n, true)
		rng := rand.New(rand.NewPCG(3, 4))
		sm := newSampler(p)
		items := make([]batchItem, n)
		for e := range items {
			temp := []float64{1, 1.7, 3}[e]
			a, _, err := sm.episode(s, temp, rng)
			if err != nil {
				t.Fatal(err)
			}
			items[e] = batchItem{actions: a, temp: temp, w: []float64{0.7, -0.4, 0.2}[e], v: 0.05}
		}
		g.set(s, items)
		grads := gradBuffers(p)
		if _, err := g.run(grads); err != nil {
			t.Fatal(err)
		}
		scratch := gradBuffers(p)
		loss := func() float64 {
			l, err := g.run(scratch)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		const h = 1e-5
		worst, checked := 0.0, 0
		for i, q := range p.params {
			for j := range q.data {
				w := q.data[j]
				q.data[j] = w + h
				up := loss()
				q.data[j] = w - h
				down := loss()
				q.data[j] = w
				num := (up - down) / (2 * h)
				diff := math.Abs(grads[i][j] - num)
				worst = max(worst, diff)
				checked++
				if diff > 1e-7+1e-6*math.Abs(grads[i][j]) {
					t.Errorf("%T %s[%d]: analytic %.10g, finite difference %.10g", s, q.name, j, grads[i][j], num)
				}
			}
		}
		t.Logf("%T: %d weights, largest |analytic - numeric| = %.2g", s, checked, worst)
	}
}

func TestLoadErrors(t *testing.T) {
	c, err := NewReinforce(CellSpace{B: 2}, ReinforceConfig{Hidden: 4, Layers: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadReinforce(bytes.NewReader(buf.Bytes()), CellSpace{B: 3}); err == nil || !strings.Contains(err.Error(), "saved state is for a space") {
		t.Errorf("other space: %v", err)
	}
	if _, err := LoadReinforce(strings.NewReader("hello"), CellSpace{B: 2}); err == nil || !strings.Contains(err.Error(), "bad header") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := LoadReinforce(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), CellSpace{B: 2}); err == nil {
		t.Error("truncated state loaded")
	}
	// A damaged state that names fewer weight matrices than it holds.
	var s savedState
	if err := gob.NewDecoder(bytes.NewReader(buf.Bytes()[len(stateMagic):])).Decode(&s); err != nil {
		t.Fatal(err)
	}
	s.Names = s.Names[:1]
	short := bytes.NewBufferString(stateMagic)
	if err := gob.NewEncoder(short).Encode(&s); err != nil {
		t.Fatal(err)
	}
	n := len(s.Params)
	if _, err := LoadReinforce(short, CellSpace{B: 2}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("has %d weight matrices, 1 names and %d and %d Adam moments; the configuration needs %d of each", n, n, n, n)) {
		t.Errorf("state with one name: %v", err)
	}
}

// The study's temperature: 5.0, x0.995 per episode, floor 1.0. 5*0.995^321 =
// 1.0004 and 5*0.995^322 = 0.9954, so episode 321 (0-based) is the last above 1.
func TestTemperatureSchedule(t *testing.T) {
	c, err := NewReinforce(UniformSpace{N: 2, Type: DecisionType{Name: "x", Choices: 2}}, ReinforceConfig{Hidden: 2, Layers: 1, BatchSize: 1000}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var temps []float64
	for range 400 {
		temps = append(temps, c.Temperature())
		if _, err := c.Propose(0); err != nil {
			t.Fatal(err)
		}
	}
	if temps[0] != 5 || math.Abs(temps[1]-4.975) > 1e-12 {
		t.Errorf("first temperatures %v", temps[:2])
	}
	if !(temps[321] > 1 && temps[321] < 1.001) || temps[322] != 1 || temps[399] != 1 {
		t.Errorf("temperature at 321, 322, 399: %v %v %v", temps[321], temps[322], temps[399])
	}
}

// The study's baseline, by hand: 0.65^3 = 0.274625 for 20 episodes, then
// max(mean of last 20, mean of last 100, 0.8 * best).
func TestStudyBaseline(t *testing.T) {
	b := baseline{Kind: BaselineStudy}
	for i := range 20 {
		if v := b.value(0); v != 0.274625 && math.Abs(v-0.274625) > 1e-15 {
			t.Fatalf("episode %d: %v", i, v)
		}
		b.observe(0.5)
	}
	// 20 rewards of 0.5: means 0.5, best 0.5 -> 0.8*0.5 = 0.4; max = 0.5.
	if v := b.value(0); v != 0.5 {
		t.Errorf("after 20 x 0.5: %v, want 0.5", v)
	}
	b.observe(1.0)
	// last 20: nineteen 0.5 and 1.0 -> 10.5/20 = 0.525; last 100 (21 values):
	// 11/21 = 0.5238; 0.8 * 1.0 = 0.8 -> 0.8.
	if v := b.value(0); math.Abs(v-0.8) > 1e-15 {
		t.Errorf("after a best of 1.0: %v, want 0.8", v)
	}
	for range 120 {
		b.observe(0.9)
	}
	// last 20 and last 100 are all 0.9; 0.8 * 1.0 = 0.8 -> 0.9.
	if v := b.value(0); math.Abs(v-0.9) > 1e-15 || len(b.Recent) != 100 {
		t.Errorf("after 120 x 0.9: %v (%d kept), want 0.9", v, len(b.Recent))
	}
	e := baseline{Kind: BaselineEMA, Decay: 0.9}
	if v := e.value(0.3); v != 0.3 {
		t.Errorf("EMA before any reward: %v, want the first reward 0.3", v)
	}
	e.observe(0.3)
	e.observe(0.5)
	// 0.9*0.3 + 0.1*0.5 = 0.32
	if v := e.value(0); math.Abs(v-0.32) > 1e-15 {
		t.Errorf("EMA: %v, want 0.32", v)
	}
}

// With the study's preset an episode whose |R - b| < 0.05 changes nothing;
// one with a larger advantage updates the weights.
func TestSkipRule(t *testing.T) {
	s := UniformSpace{N: 3, Type: DecisionType{Name: "x", Choices: 3}}
	cfg := ReinforceStudy
	cfg.Hidden, cfg.Layers = 4, 1
	c, err := NewReinforce(s, cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := func() []float64 {
		var w []float64
		for _, q := range c.pol.params {
			w = append(w, q.data...)
		}
		return w
	}
	before := snapshot()
	a, _ := c.Propose(1)
	info, err := c.Observe(1, a, 0.274625+0.049) // baseline 0.65^3 during warm-up
	if err != nil {
		t.Fatal(err)
	}
	if info.Update == nil || info.Update.Kept != 0 || !slices.Equal(before, snapshot()) || c.opt.step != 0 {
		t.Errorf("small advantage: update %+v, Adam steps %d; weights should not change", info.Update, c.opt.step)
	}
	a, _ = c.Propose(2)
	info, err = c.Observe(2, a, 0.274625+0.051)
	if err != nil {
		t.Fatal(err)
	}
	if info.Update == nil || info.Update.Kept != 1 || slices.Equal(before, snapshot()) || c.opt.step != 1 {
		t.Errorf("large advantage: update %+v; weights should change", info.Update)
	}
	if info.Update.GradNorm <= 0 {
		t.Errorf("gradient norm %v", info.Update.GradNorm)
	}
}

func TestGradientClipping(t *testing.T) {
	g := [][]float64{{3, 0}, {4}}
	if n := clipNorm(g, 1); n != 5 || math.Abs(globalNorm(g)-1) > 1e-15 || math.Abs(g[0][0]-0.6) > 1e-15 {
		t.Errorf("clip to 1: norm before %v, after %v, %v", n, globalNorm(g), g)
	}
	g = [][]float64{{3, 0}, {4}}
	if clipNorm(g, 0); g[1][0] != 4 {
		t.Error("clip 0 should not clip")
	}
}

func TestObserveOrder(t *testing.T) {
	c, err := NewReinforce(CellSpace{B: 1}, ReinforceConfig{Hidden: 4, Layers: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Observe(1, Proposal{Actions: []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, 1); err == nil {
		t.Error("observing without a proposal should fail")
	}
	a, _ := c.Propose(1)
	b := Proposal{Actions: slices.Clone(a.Actions)}
	b.Actions[2] = (b.Actions[2] + 1) % 13
	if _, err := c.Observe(1, b, 1); err == nil || !strings.Contains(err.Error(), "oldest proposal") {
		t.Errorf("observing another architecture: %v", err)
	}
	if err := c.Forget(1, b); err == nil || !strings.Contains(err.Error(), "oldest proposal") {
		t.Errorf("forgetting another architecture: %v", err)
	}
	if _, err := c.Observe(1, a, math.NaN()); err == nil {
		t.Error("NaN reward accepted")
	}
	if _, err := c.Observe(1, a, 0.7); err != nil {
		t.Error(err)
	}
	// A forgotten proposal is dropped: the next one is observed.
	x, _ := c.Propose(2)
	y, _ := c.Propose(3)
	if err := c.Forget(2, x); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Observe(3, y, 0.7); err != nil {
		t.Errorf("observing after a forgotten proposal: %v", err)
	}
	if got := fmt.Sprint(a.Genotype); !strings.Contains(got, "b0 = ") {
		t.Errorf("proposal genotype %q is not a cell pair", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (ReinforceConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := ReinforceStudy.Validate(); err != nil {
		t.Errorf("study config: %v", err)
	}
	err := ReinforceConfig{Hidden: -1, LearningRate: -1, BaselineDecay: 1, SkipBelow: -1}.Validate()
	for _, w := range []string{"hidden -1", "learning rate -1", "baseline decay 1", "skip threshold -1"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v should mention %q", err, w)
		}
	}
	for _, name := range ReinforcePresetNames() {
		if cfg, err := ReinforcePreset(name); err != nil || cfg.Validate() != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, err := ReinforcePreset("fast"); err == nil || !strings.Contains(err.Error(), "valid: paper, study, natsbench") {
		t.Errorf("unknown preset: %v", err)
	}
	c := ReinforceConfig{}.withDefaults()
	if c.Hidden != 35 || c.Layers != 2 || c.LearningRate != 6e-4 || c.Temperature != 5 || c.TemperatureDecay != 0.995 || c.MinTemperature != 1 || c.BatchSize != 1 {
		t.Errorf("defaults %+v", c)
	}
}

func TestRandomAgentAndCheckActions(t *testing.T) {
	s := CellSpace{B: 3}
	a, _ := NewRandomAgent(s, 9)
	counts := make([]int, 4)
	for range 2000 {
		p, err := a.Propose(0)
		if err != nil {
			t.Fatal(err)
		}
		x := p.Actions
		if err := CheckActions(s, x); err != nil {
			t.Fatal(err)
		}
		counts[x[10]]++ // normal cell, block 2, input1: 0..3 all valid
	}
	for i, n := range counts {
		if n < 400 {
			t.Errorf("block 2 input %d drawn %d times of 2000", i, n)
		}
	}
	bad := make([]int, 30)
	bad[5] = 3 // normal block 1 input1 = 3: block 1 may read 0..2
	if err := CheckActions(s, bad); err == nil || !strings.Contains(err.Error(), "decision 5 (input): choice 3 is not allowed") {
		t.Errorf("CheckActions: %v", err)
	}
}
