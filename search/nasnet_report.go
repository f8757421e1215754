package search

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nasctl/nasctl/controller"
)

// TopCell is one distinct cell of a NASNet search, as top.json lists it.
type TopCell struct {
	Rank    int    `json:"rank"`
	Cell    string `json:"cell"`
	Actions []int  `json:"actions"`
	// Reward is the mean reward of the cell's samples (the mock and
	// natsbench rewards give every sample the same).
	Reward   float64 `json:"reward"`
	Accuracy float64 `json:"accuracy,omitempty"` // mean, where the reward has one
	Samples  int     `json:"samples"`
	First    int     `json:"first_episode"`
}

// TopCells returns the k best distinct cells of eps by mean reward (ties:
// the cell sampled first).
func TopCells(eps []Episode, k int) []TopCell {
	byCell := map[string]int{}
	var out []TopCell
	for _, e := range eps {
		i, ok := byCell[e.Cell]
		if !ok {
			i = len(out)
			byCell[e.Cell] = i
			out = append(out, TopCell{Cell: e.Cell, Actions: e.Actions, First: e.Episode})
		}
		out[i].Samples++
		out[i].Reward += e.Reward
		out[i].Accuracy += e.Accuracy
	}
	for i := range out {
		out[i].Reward /= float64(out[i].Samples)
		out[i].Accuracy /= float64(out[i].Samples)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Reward > out[j].Reward })
	out = out[:min(k, len(out))]
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

// RewardWindow summarizes consecutive episodes From..To (counted from 1).
type RewardWindow struct {
	From        int     `json:"from"`
	To          int     `json:"to"`
	Mean        float64 `json:"mean_reward"`
	Best        float64 `json:"best_reward"`
	Baseline    float64 `json:"mean_baseline"`
	Temperature float64 `json:"last_temperature"`
	Updates     int     `json:"updates"`
	Skipped     int     `json:"skipped_updates"`
}

func rewardWindow(eps []Episode) RewardWindow {
	w := RewardWindow{From: eps[0].Episode, To: eps[len(eps)-1].Episode, Temperature: eps[len(eps)-1].Temperature}
	for i, e := range eps {
		w.Mean += e.Reward
		w.Baseline += e.Baseline
		if i == 0 || e.Reward > w.Best {
			w.Best = e.Reward
		}
		if e.Update != nil {
			w.Updates++
			if e.Update.Skipped {
				w.Skipped++
			}
		}
	}
	w.Mean /= float64(len(eps))
	w.Baseline /= float64(len(eps))
	return w
}

// NASNetReport is what a NASNet run found.
type NASNetReport struct {
	Name       string            `json:"name"`
	Reward     string            `json:"reward"` // Reward.Describe
	Preset     string            `json:"preset"`
	Controller controller.Config `json:"controller"`
	Seed       uint64            `json:"seed"`
	Episodes   int               `json:"episodes"`
	Planned    int               `json:"planned"`
	Seconds    float64           `json:"seconds"` // sum of the episodes' wall times
	Windows    []RewardWindow    `json:"windows"` // per 100 episodes
	First      RewardWindow      `json:"first_100"`
	Last       RewardWindow      `json:"last_100"`
	All        RewardWindow      `json:"all"`
	Top        []TopCell         `json:"top"`
}

// reportWindow is the number of episodes per row of the report.
const reportWindow = 100

// BuildNASNetReport summarizes the episodes of a run of cfg; reward is the
// reward's description.
func BuildNASNetReport(cfg NASNetConfig, reward string, eps []Episode) NASNetReport {
	r := NASNetReport{Name: cfg.Name, Reward: reward, Preset: cfg.Preset, Controller: cfg.Controller.Config(),
		Seed: cfg.Seed, Episodes: len(eps), Planned: cfg.Episodes, Top: TopCells(eps, cfg.TopK)}
	if len(eps) == 0 {
		return r
	}
	for _, e := range eps {
		r.Seconds += e.Seconds
	}
	for i := 0; i < len(eps); i += reportWindow {
		r.Windows = append(r.Windows, rewardWindow(eps[i:min(i+reportWindow, len(eps))]))
	}
	r.First = rewardWindow(eps[:min(reportWindow, len(eps))])
	r.Last = rewardWindow(eps[max(0, len(eps)-reportWindow):])
	r.All = rewardWindow(eps)
	return r
}

// Markdown renders the report.
func (r NASNetReport) Markdown() string {
	var b strings.Builder
	c := r.Controller
	fmt.Fprintf(&b, "# NASNet search %s\n\n", r.Name)
	fmt.Fprintf(&b, "Reward: %s.\n\n", r.Reward)
	skip := ""
	if c.SkipBelow > 0 {
		skip = fmt.Sprintf(", updates skipped when |R - b| < %g", c.SkipBelow)
	}
	clip := ""
	if c.ClipNorm > 0 {
		clip = fmt.Sprintf(", gradient norm clipped to %g", c.ClipNorm)
	}
	fmt.Fprintf(&b, "Controller (preset %s): REINFORCE, LSTM %d x %d, Adam %g, %d architecture(s) per update, baseline %s%s%s, "+
		"temperature %g x %g per episode down to %g, entropy bonus %g; seed %d.\n\n",
		r.Preset, c.Layers, c.Hidden, c.LearningRate, c.BatchSize, c.Baseline, skip, clip,
		c.Temperature, c.TemperatureDecay, c.MinTemperature, c.EntropyWeight, r.Seed)
	if r.Episodes == 0 {
		fmt.Fprintf(&b, "No episode yet (%d planned).\n", r.Planned)
		return b.String()
	}
	fmt.Fprintf(&b, "%d of %d episodes, %d updates (%d skipped), %s.\n\n", r.Episodes, r.Planned, r.All.Updates, r.All.Skipped,
		time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(&b, "Mean reward: first %d episodes %.4f, last %d episodes %.4f; best %.4f.\n\n",
		r.First.To-r.First.From+1, r.First.Mean, r.Last.To-r.Last.From+1, r.Last.Mean, r.All.Best)
	b.WriteString("## Reward per 100 episodes\n\n")
	b.WriteString("| episodes | mean reward | best | mean baseline | temperature at end | updates | skipped |\n|---|---|---|---|---|---|---|\n")
	for _, w := range r.Windows {
		fmt.Fprintf(&b, "| %d-%d | %.4f | %.4f | %.4f | %.3f | %d | %d |\n", w.From, w.To, w.Mean, w.Best, w.Baseline, w.Temperature, w.Updates, w.Skipped)
	}
	b.WriteString("\n## Best cells\n\n| rank | reward | samples | first episode | cell |\n|---|---|---|---|---|\n")
	for _, t := range r.Top {
		// NATS-Bench cells are written with '|', which ends a table cell.
		fmt.Fprintf(&b, "| %d | %.4f | %d | %d | %s |\n", t.Rank, t.Reward, t.Samples, t.First, strings.ReplaceAll(t.Cell, "|", `\|`))
	}
	b.WriteString("\nPlots: plots/reward.png (reward per episode, its moving average and the baseline), plots/temperature.png (and .svg). " +
		"Every episode: episodes.jsonl, episodes.csv; best cells: top.json, top-cells.txt.\n")
	return b.String()
}

func (s *NASNetSearch) report() NASNetReport {
	return BuildNASNetReport(s.cfg, s.reward.Describe(), s.episodes)
}

// ReadNASNetReport builds the report of a NASNet run directory from its
// files, without locking it.
func ReadNASNetReport(dir string) (NASNetReport, error) {
	cfg, eps, err := readNASNetRun(dir)
	if err != nil {
		return NASNetReport{}, err
	}
	desc := cfg.Reward.String() + " reward"
	if rw, err := NewReward(cfg); err == nil {
		desc = rw.Describe()
	}
	cfg.Name = filepath.Base(dir)
	return BuildNASNetReport(cfg, desc, eps), nil
}

// writeSummary writes top.json, top-cells.txt and episodes.csv.
func (s *NASNetSearch) writeSummary() error {
	top := TopCells(s.episodes, s.cfg.TopK)
	if err := s.store.writeJSON(fileTop, top); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# rank\treward\tsamples\tfirst_episode\tcell\n")
	for _, t := range top {
		fmt.Fprintf(&b, "%d\t%.6f\t%d\t%d\t%s\n", t.Rank, t.Reward, t.Samples, t.First, t.Cell)
	}
	if err := s.store.writeFile(fileTopCells, []byte(b.String())); err != nil {
		return err
	}
	if err := s.store.WriteCSV(s.episodes); err != nil {
		return err
	}
	s.lastWrite = time.Now()
	return nil
}

// writeResults writes the summary, report.md and the plots.
func (s *NASNetSearch) writeResults() error {
	if err := s.writeSummary(); err != nil {
		return err
	}
	if err := s.store.writeFile(fileReportM, []byte(s.report().Markdown())); err != nil {
		return err
	}
	return s.writePlots()
}
