package search

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PhaseStats summarizes the trials of one epsilon.
type PhaseStats struct {
	Epsilon  float64 `json:"epsilon"`
	Trials   int     `json:"trials"`
	Mean     float64 `json:"mean_reward"`
	SD       float64 `json:"sd_reward"`
	Best     float64 `json:"best_reward"`
	Constant int     `json:"constant_predictors"`
}

// Report is what a run found.
type Report struct {
	Name     string         `json:"name"`
	Trials   int            `json:"trials"`
	Counts   map[string]int `json:"counts"` // by status
	Seconds  float64        `json:"search_seconds"`
	Phases   []PhaseStats   `json:"phases"`
	Finals   []FinalResult  `json:"finals"`
	Majority float64        `json:"val_majority_share"`
	// Best is the final model with the best reward after retraining, nil
	// before the final phase; BestBy says what that reward was.
	Best   *FinalResult `json:"best,omitempty"`
	BestBy string       `json:"best_by,omitempty"`
}

// What BuildReport chose the best model by.
const (
	bestByAccuracy = "validation accuracy"
	bestByMnasNet  = "MnasNet's reward of validation accuracy and latency"
)

// constantPredictor: a validation accuracy within one point of the majority
// share is what a network that always answers the same class gets.
func constantPredictor(acc, majority float64) bool { return math.Abs(acc-majority) <= 0.01 }

// BuildReport summarizes trials and final results; majority is the validation
// split's majority-class share and reward the run's reward settings.
func BuildReport(name string, trials []Trial, finals []FinalResult, majority float64, reward RewardSettings) Report {
	r := Report{Name: name, Trials: len(trials), Counts: map[string]int{}, Finals: finals, Majority: majority}
	byEps := map[float64][]float64{}
	var order []float64
	for _, t := range trials {
		r.Counts[t.Status]++
		r.Seconds += t.Seconds
		if _, ok := byEps[t.Epsilon]; !ok {
			order = append(order, t.Epsilon)
		}
		byEps[t.Epsilon] = append(byEps[t.Epsilon], t.ValAccuracy)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(order)))
	for _, e := range order {
		rs := byEps[e]
		p := PhaseStats{Epsilon: e, Trials: len(rs)}
		for _, x := range rs {
			p.Mean += x
			p.Best = max(p.Best, x)
			if constantPredictor(x, majority) {
				p.Constant++
			}
		}
		p.Mean /= float64(len(rs))
		for _, x := range rs {
			p.SD += (x - p.Mean) * (x - p.Mean)
		}
		if len(rs) > 1 {
			p.SD = math.Sqrt(p.SD / float64(len(rs)-1))
		}
		r.Phases = append(r.Phases, p)
	}
	sort.Slice(r.Finals, func(i, j int) bool { return r.Finals[i].Rank < r.Finals[j].Rank })
	reward = reward.withDefaults()
	// Only the MnasNet reward weighs latency; the constraint reward refused
	// what was over the limits before training and ranks by accuracy.
	r.BestBy = bestByAccuracy
	if reward.Mode == RewardMnasNet {
		r.BestBy = bestByMnasNet
	}
	for i, f := range r.Finals {
		if f.Status == StatusOK && (r.Best == nil || reward.reward(f.ValAccuracy, f.LatencyMs) > reward.reward(r.Best.ValAccuracy, r.Best.LatencyMs)) {
			r.Best = &r.Finals[i]
		}
	}
	return r
}

// Markdown renders the report.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# MetaQNN search %s\n\n", r.Name)
	var counts []string
	for _, k := range []string{StatusOK, StatusReused, StatusRefused, StatusDiverged, StatusFailed} {
		if r.Counts[k] > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", r.Counts[k], k))
		}
	}
	fmt.Fprintf(&b, "%d trials (%s), %s of training.\n\n", r.Trials, strings.Join(counts, ", "), time.Duration(r.Seconds*float64(time.Second)).Round(time.Second))
	if len(r.Finals) > 0 {
		b.WriteString("## Best architectures\n\nRetrained from their search weights on the whole training split, then evaluated on the test split.\n\n")
		latency := false
		for _, f := range r.Finals {
			latency = latency || f.LatencyMs > 0
		}
		head, sep := "| rank | architecture | parameters | MACs | search val acc | val acc | test acc | model |", "|---|---|---|---|---|---|---|---|"
		if latency {
			head, sep = head+" latency ms |", sep+"---|"
		}
		b.WriteString(head + "\n" + sep + "\n")
		for _, f := range r.Finals {
			test := fmt.Sprintf("%.2f%%", 100*f.TestAccuracy)
			if f.Status != StatusOK {
				test = f.Status
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %.2f%% | %.2f%% | %s | %s |", f.Rank, f.Arch, thousands(f.Params), thousands(f.MACs),
				100*f.SearchValAccuracy, 100*f.ValAccuracy, test, f.Model)
			if latency {
				fmt.Fprintf(&b, " %.4f |", f.LatencyMs)
			}
			b.WriteString("\n")
		}
		if r.Best != nil {
			fmt.Fprintf(&b, "\nBest after retraining (by %s): rank %d, %s, copied to %s/best.onnx: test accuracy %.2f%%.\n",
				r.BestBy, r.Best.Rank, r.Best.Model, dirWinners, 100*r.Best.TestAccuracy)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Validation accuracy per epsilon\n\n")
	fmt.Fprintf(&b, "Constant predictors: validation accuracy within one point of the majority share (%.2f%%).\n\n", 100*r.Majority)
	b.WriteString("| epsilon | trials | mean | sd | best | constant predictors |\n|---|---|---|---|---|---|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %.1f | %d | %.4f | %.4f | %.4f | %d (%.0f%%) |\n", p.Epsilon, p.Trials, p.Mean, p.SD, p.Best, p.Constant, 100*float64(p.Constant)/float64(p.Trials))
	}
	b.WriteString("\nPlots: plots/accuracy.png, plots/epsilon.png, plots/params.png (and .svg).\n")
	return b.String()
}

// CSV renders the final table.
func (r Report) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"rank", "trial", "arch", "params", "macs", "search_val_accuracy", "val_accuracy", "test_accuracy", "status", "model", "latency_ms"})
	for _, f := range r.Finals {
		latency := "" // the search used no latency
		if f.LatencyMs > 0 {
			latency = fmtF(f.LatencyMs)
		}
		w.Write([]string{strconv.Itoa(f.Rank), strconv.Itoa(f.Trial), f.Arch, strconv.FormatInt(f.Params, 10), strconv.FormatInt(f.MACs, 10),
			fmtF(f.SearchValAccuracy), fmtF(f.ValAccuracy), fmtF(f.TestAccuracy), f.Status, f.Model, latency})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// report writes report.md, report.csv and the plots.
func (s *Search) report(finals []FinalResult) error {
	r := BuildReport(s.cfg.Name, s.trials, finals, s.data.ValMajority, s.cfg.Reward)
	if r.Best != nil {
		b, err := os.ReadFile(filepath.Join(s.store.Dir, r.Best.Model))
		if err != nil {
			return err
		}
		if err := s.store.writeFile(dirWinners+"/best.onnx", b); err != nil {
			return err
		}
	}
	if err := s.store.writeFile(fileReportM, []byte(r.Markdown())); err != nil {
		return err
	}
	c, err := r.CSV()
	if err != nil {
		return err
	}
	if err := s.store.writeFile(fileReportC, c); err != nil {
		return err
	}
	if err := WritePlots(s.store.Dir+"/"+dirPlots, s.trials, s.cfg.Schedule.Schedule, s.data.ValMajority); err != nil {
		return err
	}
	s.emit(Event{Kind: "done", Message: r.Markdown()})
	return nil
}

// ReadReport builds the report of a run directory from its files, without
// locking it.
func ReadReport(dir string) (Report, error) {
	var cfg Config
	if err := readRunConfig(dir, KindMetaQNN, &cfg); err != nil {
		return Report{}, err
	}
	trials, err := readJSONLTolerant[Trial](filepath.Join(dir, fileTrials))
	if err != nil {
		return Report{}, err
	}
	finals, err := readJSONLTolerant[FinalResult](filepath.Join(dir, fileFinal))
	if err != nil {
		return Report{}, err
	}
	var data Data
	if b, err := os.ReadFile(filepath.Join(dir, fileData)); err == nil {
		if err := json.Unmarshal(b, &data); err != nil {
			return Report{}, fmt.Errorf("%s: %w", filepath.Join(dir, fileData), err)
		}
	}
	return BuildReport(filepath.Base(dir), trials, finals, data.ValMajority, cfg.Reward), nil
}
