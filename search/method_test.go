package search

import (
	"strings"
	"testing"

	"github.com/nasctl/nasctl/controller"
)

// A run's description says how much the agent replays: Baker et al.'s 128
// unless told, and "no replay" for a negative count, not "replay -1"; with
// target mean it says what a value is, and no step size or replay.
func TestDescribeReplay(t *testing.T) {
	for replay, want := range map[int]string{0: ", replay 128)", 16: ", replay 16)", -1: ", no replay)"} {
		cfg, err := Preset("cpu")
		if err != nil {
			t.Fatal(err)
		}
		cfg.MetaQNN.QLearning.Target = controller.TargetReturn
		cfg.MetaQNN.QLearning.Replay = replay
		got := metaqnnMethod{cfg: cfg.WithDefaults()}.describe()
		if !strings.Contains(got, want) {
			t.Errorf("replay %d: %q, want it to contain %q", replay, got, want)
		}
	}
	cfg, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetaQNN.QLearning.Target = controller.TargetMean
	got := metaqnnMethod{cfg: cfg.WithDefaults()}.describe()
	want := "MetaQNN Q-learning (every step worth the mean reward of the networks that took it, a greedy draw that repeats replaced by the next best untried network (up to 100 checked), repeats drawn again up to 20 times, no replay)"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "alpha") {
		t.Errorf("target mean: %q, want it to start %q", got, want)
	}
}

// A run whose trials stop before the schedule's end is warned about: inside
// the random start, with the schedule scaled to the trials to give instead.
// A run to the end, or random search, is not.
func TestScheduleNote(t *testing.T) {
	for _, tc := range []struct {
		trials int
		agent  string
		want   string
	}{
		{6, AgentQLearning, "all 6 trials fall in the schedule's random start (60 trials): the agent never uses what it learns, and the run is a random search; give more --trials, or the schedule scaled to them: --schedule 1:2,0.5:1,0.3:1,0.1:1,0.02:1"},
		{100, AgentQLearning, "the schedule plans 225 trials; the 100 planned end at epsilon 0.5, and its later phases never run; for all its phases in these trials, give --schedule 1:27,0.8:6,0.6:7,0.5:7,0.4:8,0.3:8,0.2:8,0.1:8,0.05:10,0.02:11"},
		{100, AgentEvolution, ""}, // its population alone comes from the schedule
		{225, AgentQLearning, ""},
		{300, AgentQLearning, ""},
		{6, AgentRandom, ""},
	} {
		c, err := Preset("cpu")
		if err != nil {
			t.Fatal(err)
		}
		c.Trials, c.MetaQNN.Agent = tc.trials, tc.agent
		c = c.WithDefaults()
		if got := c.ScheduleNote(false); !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%d trials, %s: %q, want %q", tc.trials, tc.agent, got, tc.want)
		}
	}
	// A resume refuses --schedule: the note says a new run takes it, and
	// offers more --trials, which a resume takes.
	c, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	c.Trials = 6
	want := "all 6 trials fall in the schedule's random start (60 trials): the agent never uses what it learns, and the run is a random search; " +
		"give more --trials; the schedule of a run cannot change, so for one scaled to these trials start a new run with --schedule 1:2,0.5:1,0.3:1,0.1:1,0.02:1"
	if got := c.WithDefaults().ScheduleNote(true); got != want {
		t.Errorf("resumed: %q, want %q", got, want)
	}
	// A first phase below epsilon 1 is no random start.
	c, err = Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	c.Trials, c.MetaQNN.Schedule = 50, ScheduleSpec{controller.EpsilonSchedule{{Epsilon: 0.5, Models: 100}, {Epsilon: 0.1, Models: 100}}}
	if got, want := c.WithDefaults().ScheduleNote(false), "the schedule plans 200 trials; the 50 planned end at epsilon 0.5, and its later phases never run; for all its phases in these trials, give --schedule 0.5:25,0.1:25"; got != want {
		t.Errorf("a schedule from epsilon 0.5: %q, want %q", got, want)
	}
	// Resumed, the run keeps its schedule: the advice is the trials to
	// reach its end.
	if got, want := c.WithDefaults().ScheduleNote(true), "the schedule plans 200 trials; the 50 planned end at epsilon 0.5, and its later phases never run; give --trials 200 for all of them"; got != want {
		t.Errorf("resumed, a schedule from epsilon 0.5: %q, want %q", got, want)
	}
}

// A controller changed from its preset (a flag, an edited config) says how,
// and one as its preset says nothing more: two runs with different
// controllers must not read the same.
func TestDescribeChangedController(t *testing.T) {
	for _, tc := range []struct {
		change func(*ControllerSettings)
		want   string
	}{
		{func(*ControllerSettings) {}, "REINFORCE controller (preset paper, LSTM 2 x 35, baseline ema)"},
		{func(c *ControllerSettings) { c.LearningRate, c.EntropyWeight = 0.05, 0.1 },
			"REINFORCE controller (preset paper with learning_rate 0.05, entropy_weight 0.1; LSTM 2 x 35, baseline ema)"},
		// The embedding follows the hidden size unless set: not a change.
		{func(c *ControllerSettings) { c.Hidden = 64 }, "REINFORCE controller (preset paper, LSTM 2 x 64, baseline ema)"},
		{func(c *ControllerSettings) { c.Embedding = 16 }, "REINFORCE controller (preset paper with embedding 16; LSTM 2 x 35, baseline ema)"},
	} {
		cfg, err := NASNetPreset("mock", "paper")
		if err != nil {
			t.Fatal(err)
		}
		tc.change(&cfg.Reinforce.Controller)
		if got := describeConfig(cfg.WithDefaults(), Data{}); !strings.HasPrefix(got, tc.want) {
			t.Errorf("description %q, want %q", got, tc.want)
		}
	}
	// A preset named after its table says what it is for: the NASNet cpu
	// preset's controller, on a search that trains its cells.
	cfg, err := NASNetPreset("", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	want := "REINFORCE controller (preset natsbench, small-budget settings tuned on the NATS-Bench table; LSTM 2 x 35, baseline ema)"
	if got := describeConfig(cfg.WithDefaults(), Data{}); !strings.HasPrefix(got, want) {
		t.Errorf("the cpu preset: %q, want %q", got, want)
	}
	cfg.Reinforce.Controller.LearningRate = 0.05
	want = "REINFORCE controller (preset natsbench, small-budget settings tuned on the NATS-Bench table, with learning_rate 0.05; LSTM 2 x 35, baseline ema)"
	if got := describeConfig(cfg.WithDefaults(), Data{}); !strings.HasPrefix(got, want) {
		t.Errorf("the cpu preset changed: %q, want %q", got, want)
	}
}

// A Q-learning run below the budget it was measured at is told how to
// check what the agent buys; one at it, and other agents, are not.
func TestBaselineNote(t *testing.T) {
	for _, tc := range []struct {
		agent  string
		trials int
		want   string
	}{
		{AgentQLearning, 100, "Q-learning was measured ahead of random search by more than the spread between seeds with 225 trials on the leaves data (docs/search-quality.md), not with fewer; to see what it buys in these 100 trials on your images, run this command and the same with --agent random, each with two or three --seed values"},
		{AgentQLearning, 225, ""},
		{AgentRandom, 100, ""},
		{AgentEvolution, 100, ""},
	} {
		c := Config{Kind: KindMetaQNN, Trials: tc.trials, MetaQNN: MetaQNNSettings{Agent: tc.agent}}
		if got := c.BaselineNote(); !strings.HasPrefix(got, tc.want) || (got == "") != (tc.want == "") {
			t.Errorf("%s, %d trials: %q, want %q", tc.agent, tc.trials, got, tc.want)
		}
	}
	if got := (Config{Kind: KindNASNet, Trials: 10}).BaselineNote(); got != "" {
		t.Errorf("a cell search: %q", got)
	}
}
