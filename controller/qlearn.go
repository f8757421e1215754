package controller

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// QConfig configures tabular Q-learning as Baker et al. (2017) use it. Zero
// fields take their values.
type QConfig struct {
	// Alpha is the Q learning rate; 0 means 0.01 (and stays 0 with
	// TargetMean, which does not use it).
	Alpha float64 `yaml:"alpha" json:"alpha"`
	// Gamma is the discount; 0 means 1 (no discount over a finite horizon).
	Gamma float64 `yaml:"gamma" json:"gamma"`
	// InitQ is the value of an unseen state-action pair; 0 means 0.5.
	InitQ float64 `yaml:"init_q" json:"init_q"`
	// Replay is the number of trajectories sampled from the replay memory and
	// learnt from after every finished model; 0 means 128 (Baker et al.'s
	// reference code; their paper says 100), or -1 with TargetMean, which
	// replays nothing. Negative: no replay.
	Replay int `yaml:"replay" json:"replay"`
	// StudyUpdate reproduces the founding study's defective update: it walks
	// each trajectory forwards and multiplies max Q(next) by Alpha instead of
	// Gamma. Off by default; for reproducing the study only.
	StudyUpdate bool `yaml:"study_update" json:"study_update"`
	// Redraw is how many times a proposal that repeats an architecture of
	// the replay memory is drawn again before it is kept; 0 keeps it at once.
	Redraw int `yaml:"redraw" json:"redraw,omitempty"`
	// NextBest (MetaQNN only) is how many networks the agent checks, in
	// order of the table's values, for one not yet tried when a greedy
	// proposal (no layer drawn at random) is a repeat, before it redraws at
	// random (Redraw); 0 checks none. The order starts from the repeated
	// network and departs from it one action at a time, highest Q(s, a)
	// first, each departure completed greedily. With NextBest, a network
	// proposed and not yet learned (in training under the engine's lag)
	// counts as tried, for the redraws too (docs/search-quality.md, "Next
	// best instead of a redraw").
	NextBest int `yaml:"next_best" json:"next_best,omitempty"`
	// Target is what each step of a trajectory learns towards: TargetMax
	// (Q-learning, the default), TargetReturn or TargetMean.
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
}

// The learning targets of QConfig.Target. With TargetMax (Q-learning, as
// Baker et al.) the last step learns the reward and an earlier one Gamma x
// max Q(next). With TargetReturn every step learns the reward, discounted
// by Gamma per step to the end (Monte-Carlo control): no max over
// next actions, so values no longer climb to the luckiest continuation of
// a shared state (docs/search-quality.md, "The learning target").
//
// With TargetMean a step's value is the mean return (as TargetReturn's) of
// every remembered trajectory that took it: a step size of 1/n for its n-th
// visit, and no replay, which would only weigh some trajectories more than
// others. Alpha and Replay are not used.
const (
	TargetMax    = "max"
	TargetReturn = "return"
	TargetMean   = "mean"
)

// Check returns the configuration's first problem, or nil; zero fields are
// valid (they take their defaults).
func (c QConfig) Check() error {
	switch {
	case c.Alpha < 0 || c.Alpha > 1 || c.Gamma < 0 || c.Gamma > 1:
		return fmt.Errorf("alpha and gamma must be in [0, 1], got %v and %v", c.Alpha, c.Gamma)
	case c.Redraw < 0:
		return fmt.Errorf("redraw %d: want 0 or more", c.Redraw)
	case c.NextBest < 0:
		return fmt.Errorf("next_best %d: want 0 or more", c.NextBest)
	case c.Target != "" && c.Target != TargetMax && c.Target != TargetReturn && c.Target != TargetMean:
		return fmt.Errorf("target %q: want %s (Q-learning), %s (every step learns the reward) or %s (every step is worth the mean reward of the networks that took it)", c.Target, TargetMax, TargetReturn, TargetMean)
	case c.Target != "" && c.Target != TargetMax && c.StudyUpdate:
		return fmt.Errorf("study_update reproduces the study's max-target update: it does not go with target %s (drop one of them)", c.Target)
	}
	return nil
}

// WithDefaults returns c with every zero field replaced by its default.
func (c QConfig) WithDefaults() QConfig {
	c.Target = cmp.Or(c.Target, TargetMax)
	if c.Target == TargetMean {
		// Not used; config.yaml then says so (alpha 0, no replay).
		c.Replay = cmp.Or(c.Replay, -1)
	} else {
		c.Alpha = cmp.Or(c.Alpha, 0.01)
	}
	c.Gamma = cmp.Or(c.Gamma, 1)
	c.InitQ = cmp.Or(c.InitQ, 0.5)
	c.Replay = cmp.Or(c.Replay, 128)
	return c
}

// Transition is one step of a trajectory: in State the agent took Action and
// reached Next, where NextActions were valid; Terminal marks the last step.
type Transition struct {
	State       string   `json:"s"`
	Action      string   `json:"a"`
	Next        string   `json:"next,omitempty"`
	NextActions []string `json:"next_actions,omitempty"`
	Terminal    bool     `json:"terminal,omitempty"`
}

// Experience is a finished trajectory and its reward, as kept in the replay
// memory.
type Experience struct {
	Trajectory []Transition `json:"trajectory"`
	Reward     float64      `json:"reward"`
}

// QTable is a tabular action-value function with epsilon-greedy choice,
// backward Q-learning updates and experience replay.
type QTable struct {
	cfg QConfig
	// Q holds the values learnt so far: Q[state][action]. Missing pairs are
	// worth InitQ.
	Q map[string]map[string]float64
	// Memory is the replay memory: every finished trajectory, in order.
	Memory []Experience
	// visits counts Learn's updates of each pair, for TargetMean; nil until
	// needed, then counted from Memory (so a restored table needs no more).
	visits map[string]map[string]int
}

// NewQTable returns an empty table.
func NewQTable(cfg QConfig) *QTable {
	return &QTable{cfg: cfg.WithDefaults(), Q: map[string]map[string]float64{}}
}

// Config returns the table's configuration with defaults filled in.
func (q *QTable) Config() QConfig { return q.cfg }

// Value returns Q(s, a).
func (q *QTable) Value(s, a string) float64 {
	if v, ok := q.Q[s][a]; ok {
		return v
	}
	return q.cfg.InitQ
}

func (q *QTable) set(s, a string, v float64) {
	row := q.Q[s]
	if row == nil {
		row = map[string]float64{}
		q.Q[s] = row
	}
	row[a] = v
}

// maxValue is max over actions of Q(s, a); 0 when there is no action.
func (q *QTable) maxValue(s string, actions []string) float64 {
	if len(actions) == 0 {
		return 0
	}
	best := q.Value(s, actions[0])
	for _, a := range actions[1:] {
		best = max(best, q.Value(s, a))
	}
	return best
}

// Choose picks an action in s: with probability eps uniformly at random,
// otherwise one of highest value, ties broken uniformly at random.
func (q *QTable) Choose(s string, actions []string, eps float64, rng *rand.Rand) string {
	a, _ := q.draw(s, actions, eps, rng)
	return a
}

// draw is Choose, and reports whether the action was drawn at random (the
// epsilon branch, whatever action it drew) rather than as one of highest
// value.
func (q *QTable) draw(s string, actions []string, eps float64, rng *rand.Rand) (string, bool) {
	if len(actions) == 0 {
		panic("controller: Choose with no valid action in state " + s)
	}
	if rng.Float64() < eps {
		return actions[rng.IntN(len(actions))], true
	}
	best := q.maxValue(s, actions)
	var ties []string
	for _, a := range actions {
		if q.Value(s, a) == best {
			ties = append(ties, a)
		}
	}
	return ties[rng.IntN(len(ties))], false
}

// Learn updates the table from one trajectory and its terminal reward. It
// walks the trajectory backwards, so the reward reaches every step in one
// pass; each step's target (QConfig.Target; intermediate rewards are 0)
// moves Q by Alpha. With StudyUpdate it walks forwards with Alpha * max
// Q(next).
func (q *QTable) Learn(traj []Transition, reward float64) {
	update := func(i int) {
		t := traj[i]
		target := reward
		alpha := q.cfg.Alpha
		switch {
		case q.cfg.Target == TargetMean:
			target = reward * math.Pow(q.cfg.Gamma, float64(len(traj)-1-i))
			alpha = 1 / float64(q.visit(t.State, t.Action))
		case q.cfg.Target == TargetReturn:
			target = reward * math.Pow(q.cfg.Gamma, float64(len(traj)-1-i))
		case !t.Terminal:
			f := q.cfg.Gamma
			if q.cfg.StudyUpdate {
				f = q.cfg.Alpha
			}
			target = f * q.maxValue(t.Next, t.NextActions)
		}
		old := q.Value(t.State, t.Action)
		q.set(t.State, t.Action, old+alpha*(target-old))
	}
	if q.cfg.StudyUpdate {
		for i := range traj {
			update(i)
		}
		return
	}
	for i := len(traj) - 1; i >= 0; i-- {
		update(i)
	}
}

// Remember adds a finished trajectory to the replay memory, learns from it,
// then learns from Replay trajectories drawn uniformly (with replacement) from
// the memory, as Baker et al. do after every trained model.
// With TargetMean it learns from the new trajectory only.
func (q *QTable) Remember(traj []Transition, reward float64, rng *rand.Rand) {
	if q.cfg.Target == TargetMean {
		q.countVisits() // from the memory before this trajectory
	}
	q.Memory = append(q.Memory, Experience{Trajectory: traj, Reward: reward})
	q.Learn(traj, reward)
	if q.cfg.Target == TargetMean {
		return
	}
	for range max(q.cfg.Replay, 0) {
		e := q.Memory[rng.IntN(len(q.Memory))]
		q.Learn(e.Trajectory, e.Reward)
	}
}

// countVisits counts the memory's visits of each pair, once.
func (q *QTable) countVisits() {
	if q.visits != nil {
		return
	}
	q.visits = map[string]map[string]int{}
	for _, e := range q.Memory {
		for _, t := range e.Trajectory {
			q.bump(t.State, t.Action)
		}
	}
}

func (q *QTable) bump(s, a string) int {
	row := q.visits[s]
	if row == nil {
		row = map[string]int{}
		q.visits[s] = row
	}
	row[a]++
	return row[a]
}

// visit counts one more visit of (s, a) and returns the count.
func (q *QTable) visit(s, a string) int {
	q.countVisits()
	return q.bump(s, a)
}

// seen returns the trajectories of the replay memory by their actions
// joined (trajectoryKey).
func (q *QTable) seen() map[string]bool {
	seen := make(map[string]bool, len(q.Memory))
	for _, e := range q.Memory {
		seen[trajectoryKey(e.Trajectory)] = true
	}
	return seen
}

// trajectoryKey names a trajectory by its actions.
func trajectoryKey(traj []Transition) string {
	var b strings.Builder
	for i, t := range traj {
		if i > 0 {
			b.WriteString(" - ")
		}
		b.WriteString(t.Action)
	}
	return b.String()
}

// drawNew calls draw, and again up to n times while seen holds the key of
// what it drew (QConfig.Redraw); it returns the last draw.
func drawNew[T any](n int, seen func() map[string]bool, draw func() (T, string)) T {
	v, key := draw()
	if n <= 0 {
		return v
	}
	known := seen()
	for i := 0; i < n && known[key]; i++ {
		v, key = draw()
	}
	return v
}

// Phase is a stretch of an epsilon schedule: Models models at Epsilon.
type Phase struct {
	Epsilon float64 `yaml:"epsilon" json:"epsilon"`
	Models  int     `yaml:"models" json:"models"`
}

// EpsilonText writes an epsilon for people: the decimals it needs, at least
// one and at most four (1.0, 0.05, 0.005). The dashboard's epsText (web/app.js)
// writes the same text.
func EpsilonText(eps float64) string {
	s := strings.TrimRight(strconv.FormatFloat(eps, 'f', 4, 64), "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return s
}

// EpsilonSchedule is MetaQNN's exploration schedule: its phases in order.
type EpsilonSchedule []Phase

// Epsilon schedules: Baker et al.'s (2,700 models), the study's (270), and one
// sized for a 2-core CPU (225 models; see the search package's CPU preset).
var (
	ScheduleBaker2017 = EpsilonSchedule{{1.0, 1500}, {0.9, 100}, {0.8, 100}, {0.7, 100}, {0.6, 150}, {0.5, 150}, {0.4, 150}, {0.3, 150}, {0.2, 150}, {0.1, 150}}
	ScheduleStudy     = EpsilonSchedule{{1.0, 150}, {0.9, 10}, {0.8, 10}, {0.7, 10}, {0.6, 15}, {0.5, 15}, {0.4, 15}, {0.3, 15}, {0.2, 15}, {0.1, 15}}
	ScheduleCPU       = EpsilonSchedule{{1.0, 60}, {0.8, 15}, {0.6, 15}, {0.5, 15}, {0.4, 18}, {0.3, 18}, {0.2, 18}, {0.1, 18}, {0.05, 24}, {0.02, 24}}
)

var schedules = map[string]EpsilonSchedule{"baker2017": ScheduleBaker2017, "study": ScheduleStudy, "cpu": ScheduleCPU}

// ParseSchedule returns a named schedule (baker2017, study, cpu) or parses
// "eps:models,eps:models,...", e.g. "1.0:20,0.5:10,0.1:10".
func ParseSchedule(s string) (EpsilonSchedule, error) {
	if p, ok := schedules[s]; ok {
		return append(EpsilonSchedule(nil), p...), nil
	}
	var out EpsilonSchedule
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var p Phase
		if _, err := fmt.Sscanf(part, "%g:%d", &p.Epsilon, &p.Models); err != nil {
			return nil, fmt.Errorf("schedule %q: phase %d %q: want EPSILON:MODELS, e.g. 1.0:20 (or a preset: baker2017, study, cpu)", s, i+1, part)
		}
		out = append(out, p)
	}
	if err := out.Check(); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", s, err)
	}
	return out, nil
}

// Check returns the first problem of the schedule, or nil.
func (s EpsilonSchedule) Check() error {
	if len(s) == 0 {
		return fmt.Errorf("empty schedule")
	}
	for i, p := range s {
		if p.Epsilon < 0 || p.Epsilon > 1 {
			return fmt.Errorf("phase %d: epsilon %v is not in [0, 1]", i+1, p.Epsilon)
		}
		if p.Models < 1 {
			return fmt.Errorf("phase %d: %d models; want at least 1", i+1, p.Models)
		}
	}
	return nil
}

// Total is the number of models of the schedule.
func (s EpsilonSchedule) Total() int {
	n := 0
	for _, p := range s {
		n += p.Models
	}
	return n
}

// At returns the epsilon of the i-th model (0-based) and whether the
// schedule has one.
func (s EpsilonSchedule) At(i int) (float64, bool) {
	for _, p := range s {
		if i < p.Models {
			return p.Epsilon, true
		}
		i -= p.Models
	}
	return 0, false
}

// Epsilon returns the epsilon of the i-th model (0-based); past the end of
// the schedule, the last phase's.
func (s EpsilonSchedule) Epsilon(i int) float64 {
	if eps, ok := s.At(i); ok {
		return eps
	}
	return s[len(s)-1].Epsilon
}

// Scale returns the schedule stretched or shrunk to total models, keeping each
// phase's share: a phase ends where its end, scaled, rounds to, so that no
// phase takes the others' rounding. A phase whose share rounds to no model
// is left out.
func (s EpsilonSchedule) Scale(total int) EpsilonSchedule {
	var out EpsilonSchedule
	all, cum, end := s.Total(), 0, 0
	for _, p := range s {
		cum += p.Models
		next := int(math.Round(float64(cum) * float64(total) / float64(all)))
		if next > end {
			out = append(out, Phase{p.Epsilon, next - end})
		}
		end = next
	}
	return out
}
