package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/internal/plottest"
	"github.com/nasctl/nasctl/natsbench"
)

// nasnetConfig is a small, fast search: a 1 x 12 LSTM over the mock
// reward's B = 2 cell pairs, from a controller preset.
func nasnetConfig(t *testing.T, dir, preset string, episodes, batch int) NASNetConfig {
	t.Helper()
	cfg, err := NewNASNetConfig(RewardMock, preset)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Name, cfg.Episodes, cfg.Seed = dir, "run", episodes, 7
	cfg.Controller.Hidden, cfg.Controller.Layers, cfg.Controller.BatchSize = 12, 1, batch
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newNASNet(t *testing.T, cfg NASNetConfig) *NASNetSearch {
	t.Helper()
	rw, err := NewReward(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewNASNet(cfg, rw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runUntil runs s, closing its stop channel once episode stopAt is recorded
// (never for 0), and closes s.
func runUntil(t *testing.T, s *NASNetSearch, stopAt int) error {
	t.Helper()
	defer s.Close()
	stop := make(chan struct{})
	s.Progress = func(e NASNetEvent) {
		if e.Kind == "episode" && e.Done == stopAt {
			close(stop)
		}
	}
	return s.Run(context.Background(), stop)
}

// sameEpisodes compares two logs, wall times left out.
func sameEpisodes(t *testing.T, got, want []Episode) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d episodes, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		g.Seconds, w.Seconds = 0, 0
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("episode %d differs:\n got %+v %+v\nwant %+v %+v", i+1, g, g.Update, w, w.Update)
		}
	}
}

func readEpisodes(t *testing.T, dir string) []Episode {
	t.Helper()
	eps, err := readJSONL[Episode](filepath.Join(dir, fileEpisodes), false)
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

// A run stopped and resumed, again and again, with the damage a kill -9
// can do in between (a torn last line, a controller state older than the
// log, or none at all), logs exactly the episodes of an uninterrupted run
// and ends with a byte-identical controller state. The batches (3) do not
// divide the stops, so resumes replay episodes logged after the last saved
// update. Both baselines and the study's skip rule are covered.
func TestNASNetResumeEqualsUninterrupted(t *testing.T) {
	for _, preset := range []string{"paper", "study"} {
		t.Run(preset, func(t *testing.T) {
			whole := nasnetConfig(t, t.TempDir(), preset, 60, 3)
			if err := runUntil(t, newNASNet(t, whole), 0); err != nil {
				t.Fatal(err)
			}
			wholeDir := filepath.Join(whole.Dir, whole.Name)
			want := readEpisodes(t, wholeDir)
			if n := len(want); n != 60 || want[59].Update == nil {
				t.Fatalf("uninterrupted: %d episodes", n)
			}

			cfg := nasnetConfig(t, t.TempDir(), preset, 60, 3)
			dir := filepath.Join(cfg.Dir, cfg.Name)
			if err := runUntil(t, newNASNet(t, cfg), 13); !errors.Is(err, ErrStopped) {
				t.Fatalf("first part: %v", err)
			}
			// kill -9 during a write: a torn line after episode 13.
			f, err := os.OpenFile(filepath.Join(dir, fileEpisodes), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(f, `{"episode":14,"actions":[0,1,`)
			f.Close()
			for _, part := range []struct {
				stopAt      int
				removeState bool
			}{{29, false}, {44, true}, {0, false}} {
				if part.removeState {
					// Killed before the state's first save: start from the
					// seed and replay the whole log.
					if err := os.Remove(filepath.Join(dir, fileController)); err != nil {
						t.Fatal(err)
					}
				}
				s, err := ResumeNASNet(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = runUntil(t, s, part.stopAt)
				if part.stopAt > 0 && !errors.Is(err, ErrStopped) || part.stopAt == 0 && err != nil {
					t.Fatalf("part to %d: %v", part.stopAt, err)
				}
			}
			sameEpisodes(t, readEpisodes(t, dir), want)
			a, _ := os.ReadFile(filepath.Join(dir, fileController))
			b, _ := os.ReadFile(filepath.Join(wholeDir, fileController))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("controller states differ (%d and %d bytes)", len(a), len(b))
			}
		})
	}
}

// gatedReward holds the evaluation of one episode until released or
// cancelled, as a long training would.
type gatedReward struct {
	Reward
	at      int
	entered chan struct{}
	release chan struct{}
}

func (g gatedReward) Evaluate(ctx context.Context, episode int, actions []int) (Evaluation, error) {
	if episode == g.at {
		close(g.entered)
		select {
		case <-g.release:
		case <-ctx.Done():
			return Evaluation{}, ctx.Err()
		}
	}
	return g.Reward.Evaluate(ctx, episode, actions)
}

func gated(t *testing.T, cfg NASNetConfig, at int) gatedReward {
	rw, err := NewReward(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return gatedReward{Reward: rw, at: at, entered: make(chan struct{}), release: make(chan struct{})}
}

// A stop request during an evaluation is acknowledged at once, the episode
// in flight is finished and recorded, and the run stops; cancelling
// abandons the episode in flight: nothing of it is recorded, and the resumed
// run samples it again.
func TestNASNetStopAndCancelInFlight(t *testing.T) {
	cfg := nasnetConfig(t, t.TempDir(), "paper", 12, 2)
	g := gated(t, cfg, 5)
	s, err := NewNASNet(cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var kinds []string
	s.Progress = func(e NASNetEvent) {
		kinds = append(kinds, e.Kind)
		if e.Kind == "stopping" {
			if !strings.Contains(e.Message, "finishing episode 5 in flight") {
				t.Errorf("stopping message %q", e.Message)
			}
			close(g.release)
		}
	}
	go func() { <-g.entered; close(stop) }()
	if err := s.Run(context.Background(), stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("Run: %v", err)
	}
	if n := len(s.Episodes()); n != 5 {
		t.Errorf("%d episodes recorded, want 5 (the one in flight finished)", n)
	}
	s.Close()

	cfg2 := nasnetConfig(t, t.TempDir(), "paper", 12, 2)
	g2 := gated(t, cfg2, 8)
	s2, err := NewNASNet(cfg2, g2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-g2.entered; cancel() }()
	if err := s2.Run(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if n := len(readEpisodes(t, s2.Dir())); n != 7 {
		t.Errorf("%d episodes on disk after cancelling episode 8, want 7", n)
	}
	s2.Close()
	s3, err := ResumeNASNet(s2.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, s3, 0); err != nil {
		t.Fatal(err)
	}
	whole := nasnetConfig(t, t.TempDir(), "paper", 12, 2)
	if err := runUntil(t, newNASNet(t, whole), 0); err != nil {
		t.Fatal(err)
	}
	sameEpisodes(t, readEpisodes(t, s2.Dir()), readEpisodes(t, filepath.Join(whole.Dir, whole.Name)))
}

// A NATS-Bench run: every episode's reward is the table's accuracy / 100,
// its cell the benchmark's architecture string; the derived files and the
// report agree with the log.
func TestNASNetNATSBench(t *testing.T) {
	cfg, err := NewNASNetConfig(RewardNATSBench, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Episodes, cfg.TopK = t.TempDir(), 30, 5
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if cfg.Preset != "natsbench" || cfg.Dataset != "cifar10" || cfg.Name != "nasnet-natsbench" {
		t.Errorf("defaults: preset %q, dataset %q, name %q", cfg.Preset, cfg.Dataset, cfg.Name)
	}
	s := newNASNet(t, cfg)
	dir := s.Dir()
	if err := runUntil(t, s, 0); err != nil {
		t.Fatal(err)
	}
	tab, err := natsbench.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	eps := readEpisodes(t, dir)
	for _, e := range eps {
		c, err := natsbench.ParseCell(e.Cell)
		if err != nil || !reflect.DeepEqual(c.Actions(), e.Actions) {
			t.Fatalf("episode %d: cell %q for %v: %v", e.Episode, e.Cell, e.Actions, err)
		}
		if acc := tab.Accuracy(c, natsbench.CIFAR10); e.Accuracy != acc || e.Reward != acc/100 {
			t.Errorf("episode %d: accuracy %v reward %v, table %v", e.Episode, e.Accuracy, e.Reward, acc)
		}
	}
	var top []TopCell
	if err := readJSONFile(filepath.Join(dir, fileTop), &top); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(top, TopCells(eps, 5)) || len(top) != 5 {
		t.Errorf("top.json %+v", top)
	}
	for i := 1; i < len(top); i++ {
		if top[i].Reward > top[i-1].Reward {
			t.Errorf("top cells out of order at %d", i)
		}
	}
	rep, err := ReadNASNetReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	for _, want := range []string{"NATS-Bench cifar10", "table optimum 94.37%", "30 of 30 episodes", "| 1-30 |", strings.ReplaceAll(top[0].Cell, "|", `\|`)} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{fileEpisodesCSV, fileTopCells, fileReportM, "plots/reward.png", "plots/reward.svg", "plots/temperature.png", "plots/temperature.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, fileEpisodesCSV))
	if n := strings.Count(string(csv), "\n"); n != 31 {
		t.Errorf("episodes.csv has %d lines, want a header and 30", n)
	}
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Top cells: distinct by text form, ranked by mean reward, ties to the
// cell sampled first, counted and averaged over their samples.
func TestTopCells(t *testing.T) {
	eps := []Episode{
		{Episode: 1, Cell: "a", Reward: 0.5}, {Episode: 2, Cell: "b", Reward: 0.9}, {Episode: 3, Cell: "a", Reward: 0.7},
		{Episode: 4, Cell: "c", Reward: 0.9}, {Episode: 5, Cell: "d", Reward: 0.1},
	}
	got := TopCells(eps, 3)
	want := []TopCell{{Rank: 1, Cell: "b", Reward: 0.9, Samples: 1, First: 2}, {Rank: 2, Cell: "c", Reward: 0.9, Samples: 1, First: 4},
		{Rank: 3, Cell: "a", Reward: 0.6, Samples: 2, First: 1}}
	for i := range want {
		if got[i].Rank != want[i].Rank || got[i].Cell != want[i].Cell || math.Abs(got[i].Reward-want[i].Reward) > 1e-12 ||
			got[i].Samples != want[i].Samples || got[i].First != want[i].First {
			t.Errorf("rank %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
	if len(got) != 3 {
		t.Errorf("%d cells, want 3", len(got))
	}
}

// config.yaml round-trips (the baseline by name), keys of a file replace
// the base's, unknown keys are errors even inside the controller section,
// and Check names every problem with its field.
func TestNASNetConfigYAML(t *testing.T) {
	cfg := nasnetConfig(t, "runs", "study", 100, 4)
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: nasnet", "reward: mock", "baseline: study", "skip_below: 0.05", "batch_size: 4"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, b)
		}
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, b, 0o644)
	got, err := LoadNASNetConfig(path, NASNetConfig{})
	if err != nil || !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, cfg)
	}
	os.WriteFile(path, []byte("episodes: 50\ncontroller:\n  baseline: ema\n  learning_rate: 0.002\n"), 0o644)
	got, err = LoadNASNetConfig(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Episodes, want.Controller.Baseline, want.Controller.LearningRate = 50, controller.BaselineEMA, 0.002
	if !reflect.DeepEqual(got, want) {
		t.Errorf("overlay:\n got %+v\nwant %+v", got, want)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"controller:\n  hiden: 3\n", "field hiden not found"},
		{"controller:\n  baseline: mean\n", `unknown baseline "mean" (valid: ema, study)`},
		{"reward: train\n", `unknown reward "train" (valid: mock, natsbench)`},
		{"episode: 3\n", "field episode not found"},
	} {
		os.WriteFile(path, []byte(tc.yaml), 0o644)
		if _, err := LoadNASNetConfig(path, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	bad := cfg
	bad.Name, bad.Episodes, bad.Dataset, bad.Controller.Temperature = ".x", -1, "cifar10", 0.5
	err = bad.Check()
	for _, want := range []string{"name:", "episodes: -1", "dataset: \"cifar10\" is a NATS-Bench column", "controller: temperature 0.5 is below its floor"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v; want %q", err, want)
		}
	}
}

// A run directory is opened only by its own kind of search, with a hint at
// the right command; runs lists both kinds.
func TestRunKinds(t *testing.T) {
	dir := t.TempDir()
	mq := testConfig(t, dir)
	mq.Name = "mq"
	st, err := Create(filepath.Join(dir, "mq"), mq)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	nn := nasnetConfig(t, dir, "paper", 4, 1)
	nn.Name = "nn"
	if err := runUntil(t, newNASNet(t, nn), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ResumeNASNet(filepath.Join(dir, "mq"), nil); err == nil || !strings.Contains(err.Error(), "holds a metaqnn run, not a nasnet one; resume it with: nasctl search metaqnn --resume") {
		t.Errorf("ResumeNASNet of a MetaQNN run: %v", err)
	}
	if _, _, _, err := Open(filepath.Join(dir, "nn")); err == nil || !strings.Contains(err.Error(), "nasctl search nasnet --resume") {
		t.Errorf("Open of a NASNet run: %v", err)
	}
	runs, err := ListRuns(dir)
	if err != nil || len(runs) != 2 {
		t.Fatalf("ListRuns: %v %d", err, len(runs))
	}
	kinds := map[string]*RunSummary{}
	for _, r := range runs {
		kinds[r.Kind] = r
	}
	if r := kinds[KindNASNet]; r == nil || r.Name != "nn" || r.Trials != 4 || r.Planned != 4 || r.Best < 0.5 || r.BestArch == "" {
		t.Errorf("NASNet summary %+v", r)
	}
	if r := kinds[KindMetaQNN]; r == nil || r.Name != "mq" {
		t.Errorf("MetaQNN summary %+v", r)
	}
}

// syntheticEpisodes are 300 episodes from closed forms (a rising reward
// with a fixed wiggle, a lagging baseline, the study's temperature), so the
// figures never change.
func syntheticEpisodes() []Episode {
	eps := make([]Episode, 300)
	for i := range eps {
		x := float64(i)
		eps[i] = Episode{
			Episode:     i + 1,
			Reward:      0.75 + 0.2*(1-math.Exp(-x/120)) + 0.04*math.Sin(x*1.7),
			Baseline:    0.7 + 0.2*(1-math.Exp(-x/150)),
			Temperature: max(1, 5*math.Pow(0.995, x)),
		}
	}
	return eps
}

// The reward and temperature figures match the golden images (see
// plottest.Golden; regenerate with go test -regen-golden).
func TestNASNetPlotsGolden(t *testing.T) {
	eps := syntheticEpisodes()
	for name, mk := range map[string]func([]Episode) (*plot.Plot, error){"reward": NASNetRewardPlot, "temperature": NASNetTemperaturePlot} {
		p, err := mk(eps)
		if err != nil {
			t.Fatal(err)
		}
		plottest.Golden(t, p, "nasnet_"+name)
	}
}

// Settings edited in config.yaml after the start are refused on resuming:
// the controller's state was made with the saved ones.
func TestNASNetResumeRefusesChangedSettings(t *testing.T) {
	cfg := nasnetConfig(t, t.TempDir(), "paper", 4, 1)
	s := newNASNet(t, cfg)
	dir := s.Dir()
	if err := runUntil(t, s, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fileConfig)
	b, _ := os.ReadFile(path)
	edited := strings.Replace(string(b), "learning_rate: 0.0006", "learning_rate: 0.001", 1)
	if edited == string(b) {
		t.Fatalf("no learning rate in\n%s", b)
	}
	os.WriteFile(path, []byte(edited), 0o644)
	if _, err := ResumeNASNet(dir, nil); err == nil || !strings.Contains(err.Error(), "a run's settings cannot change") {
		t.Errorf("ResumeNASNet after an edit: %v", err)
	}
}
