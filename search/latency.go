package search

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/bench"
	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search/rundir"
	"go.yaml.in/yaml/v3"
)

// Reward modes of a search.
const (
	RewardAccuracy   = "accuracy"   // validation accuracy (Baker et al.)
	RewardMnasNet    = "mnasnet"    // ACC * (LAT/T)^W (Tan et al. 2019, soft constraint)
	RewardConstraint = "constraint" // validation accuracy; architectures over MaxParams or MaxLatencyMs are refused before training
)

// Latency sources.
const (
	LatencyPredicted = "predicted" // a per-layer model calibrated on this machine at the start of the run, or a latency table
	LatencyMeasured  = "measured"  // timed on ONNX Runtime with random weights, before training
)

// RewardSettings make a search latency-aware. The zero value rewards
// validation accuracy alone.
type RewardSettings struct {
	// Mode: accuracy, mnasnet or constraint. Empty: accuracy.
	Mode string `yaml:"mode,omitempty"`
	// TargetMs is MnasNet's target latency T (mnasnet).
	TargetMs float64 `yaml:"target_ms,omitempty"`
	// Weight is MnasNet's exponent w; zero: -0.07 (the soft constraint).
	Weight float64 `yaml:"weight,omitempty"`
	// MaxParams and MaxLatencyMs are the hard limits (constraint); zero: no
	// limit.
	MaxParams    int64   `yaml:"max_params"`
	MaxLatencyMs float64 `yaml:"max_latency_ms"`
	// Latency is predicted or measured. Empty: predicted (measurements taken
	// while other trials train are disturbed by them).
	Latency string `yaml:"latency,omitempty"`
	// Threads of the latency measurements (the target's cores); zero: 1.
	// A latency table was measured with its own (recorded in it).
	Threads int `yaml:"latency_threads,omitempty"`
	// Calibration networks for the predicted latency; zero: 120.
	Calibration int `yaml:"calibration,omitempty"`
	// Table, when set, is the path of a latency table measured on the
	// target (nasctl bench latency-table): the predicted latency comes from
	// it instead of a model calibrated on this machine. The run keeps a copy
	// (latency_table.json), which a resumed run uses.
	Table string `yaml:"latency_table,omitempty"`
	// LastEpochs makes the accuracy rewarded the best validation accuracy of
	// the last LastEpochs epochs trained (the study's 5, after Zoph & Le)
	// instead of that of the best epoch; zero: the best epoch's.
	LastEpochs int `yaml:"last_epochs,omitempty"`
	// Exponent raises the accuracy to this power before the latency term
	// (the study's cube); zero: 1.
	Exponent float64 `yaml:"exponent,omitempty"`
}

func (r RewardSettings) withDefaults() RewardSettings {
	r.Mode = cmp.Or(r.Mode, RewardAccuracy)
	r.Weight = cmp.Or(r.Weight, -0.07)
	r.Latency = cmp.Or(r.Latency, LatencyPredicted)
	r.Threads = cmp.Or(r.Threads, 1)
	r.Calibration = cmp.Or(r.Calibration, 120)
	r.Exponent = cmp.Or(r.Exponent, 1)
	return r
}

func (r RewardSettings) check() []string {
	var ps []string
	switch r.Mode {
	case RewardAccuracy:
	case RewardMnasNet:
		if !(r.TargetMs > 0) {
			ps = append(ps, "reward.target_ms: the mnasnet reward needs a target latency T > 0 (--target-ms)")
		}
		if r.Weight >= 0 {
			ps = append(ps, fmt.Sprintf("reward.weight: %v; MnasNet's exponent is negative (-0.07)", r.Weight))
		}
	case RewardConstraint:
		if r.MaxParams <= 0 && !(r.MaxLatencyMs > 0) {
			ps = append(ps, "reward: the constraint reward needs max_params or max_latency_ms (--max-params N, --max-latency-ms L); for no limit use --reward accuracy")
		}
	default:
		ps = append(ps, fmt.Sprintf("reward.mode: %q (valid: accuracy, mnasnet, constraint)", r.Mode))
	}
	if r.Latency != LatencyPredicted && r.Latency != LatencyMeasured {
		ps = append(ps, fmt.Sprintf("reward.latency: %q (valid: predicted, measured)", r.Latency))
	}
	if r.LastEpochs < 0 || !(r.Exponent > 0) {
		ps = append(ps, fmt.Sprintf("reward: last_epochs %d must not be negative and exponent %v must be positive", r.LastEpochs, r.Exponent))
	}
	if r.Calibration < 2*len(bench.Features) {
		ps = append(ps, fmt.Sprintf("reward.calibration: at least %d networks", 2*len(bench.Features)))
	}
	if r.Table != "" && !r.needsLatency() {
		ps = append(ps, "reward.latency_table: this reward uses no latency; give --reward mnasnet --target-ms T, or --reward constraint --max-latency-ms L")
	}
	if r.Table != "" && r.Latency != LatencyPredicted {
		ps = append(ps, fmt.Sprintf("reward.latency_table: the table predicts the latency; it cannot go with latency %q (leave --latency out)", r.Latency))
	}
	return ps
}

// needsLatency reports whether trials need a latency.
func (r RewardSettings) needsLatency() bool {
	return r.Mode == RewardMnasNet || (r.Mode == RewardConstraint && r.MaxLatencyMs > 0)
}

// refuse returns why an architecture is over the hard limits, or "".
func (r RewardSettings) refuse(params int64, latencyMs float64) string {
	if r.Mode != RewardConstraint {
		return ""
	}
	if r.MaxParams > 0 && params > r.MaxParams {
		return fmt.Sprintf("%d parameters exceed the limit of %d", params, r.MaxParams)
	}
	if r.MaxLatencyMs > 0 && latencyMs > r.MaxLatencyMs {
		return fmt.Sprintf("latency %.4f ms exceeds the limit of %.4f ms", latencyMs, r.MaxLatencyMs)
	}
	return ""
}

// accuracy is the accuracy a training is rewarded for: that of its best
// epoch, or the best of its last LastEpochs epochs, raised to Exponent; 0
// when the training did not finish.
func (r RewardSettings) accuracy(res *runtime.Result) float64 {
	return math.Pow(r.rewardAccuracy(res), r.Exponent)
}

// rewardAccuracy is the validation accuracy that accuracy raises to the
// exponent: the kept epoch's, or the best of the last epochs.
func (r RewardSettings) rewardAccuracy(res *runtime.Result) float64 {
	acc := res.Reward()
	if acc == 0 {
		return 0
	}
	if r.LastEpochs > 0 {
		last := 0.0 // over the last attempt's epochs; a result without epochs keeps its accuracy
		for _, e := range res.Epochs[max(0, len(res.Epochs)-r.LastEpochs):] {
			if e.Attempt == res.Restarts {
				last = max(last, e.ValAccuracy)
			}
		}
		acc = cmp.Or(last, acc)
	}
	return acc
}

// reward combines a trained architecture's accuracy and latency. A latency
// below 1e-4 ms (a timer's zero) counts as 1e-4, the latency model's floor:
// zero raised to MnasNet's negative weight is infinite.
func (r RewardSettings) reward(acc, latencyMs float64) float64 {
	if r.Mode == RewardMnasNet {
		return acc * math.Pow(max(latencyMs, 1e-4)/r.TargetMs, r.Weight)
	}
	return acc
}

// latencyOf returns the latency of net: predicted by the run's model, or
// measured now.
func (s *Search) latencyOf(ctx context.Context, net *genotype.Net) (float64, error) {
	if s.latency != nil {
		return s.latency.Predict(net), nil
	}
	return bench.MeasureLatency(ctx, net, runtime.SessionOptions{IntraOpThreads: s.cfg.Reward.Threads}, 30)
}

// prepareLatency takes the latency model from the run's latency table
// (useLatencyTable) when it has one; otherwise it loads the run's model, or
// calibrates one on architectures sampled from the space and saves it
// (latency_model.json), so a resumed run predicts with the same model.
func (s *Search) prepareLatency(ctx context.Context) error {
	r := s.cfg.Reward
	if s.cfg.Trains() && r.needsLatency() && r.Latency == LatencyMeasured {
		// A review measured a network at 0.175 ms with 2 workers and 0.094
		// ms with 1, and in nasctl bench.
		if e, ok := s.exec.(elsewhere); ok && e.TrainsElsewhere() {
			s.emit(Event{Kind: "info", Message: "note: latency measured times each network in this process, while the workers train the trials: " +
				"a worker on this machine slows the timings (up to 1.9 times on 2 cores), so run the workers on other machines, or leave --latency out (predicted)"})
		} else if s.cfg.Workers > 1 {
			s.emit(Event{Kind: "info", Message: fmt.Sprintf("warning: latency measured times each network while up to %d other trials train beside it, "+
				"which slowed the timings up to 1.9 times on 2 cores: give --workers 1 for timings that rank by latency, or leave --latency out (predicted)", s.cfg.Workers-1)})
		}
	}
	if !s.cfg.Trains() || !r.needsLatency() || r.Latency != LatencyPredicted {
		return nil
	}
	if r.Table != "" {
		return s.useLatencyTable()
	}
	path := filepath.Join(s.dir.Path, rundir.FileLatencyModel)
	if b, err := os.ReadFile(path); err == nil {
		var m bench.LatencyModel
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w: the run's latency model is damaged; delete it and resume to calibrate a new one "+
				"(the trials so far keep the latencies the old one predicted, and those after are refused or ranked by the new one), or start a new run", path, err)
		}
		// A model fitted on another feature set (runs of older nasctl
		// saved 6 coefficients) would make Predict index past them.
		if len(m.Coefficients) != len(bench.Features) {
			return fmt.Errorf("%s has %d coefficients, but this nasctl's latency model has %d: it was calibrated by an older nasctl; "+
				"delete the file and resume to calibrate a new one (the trials so far keep the latencies the old one predicted), or start a new run",
				path, len(m.Coefficients), len(bench.Features))
		}
		s.latency = &m
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if n := len(s.trials) + len(s.logged); n > 0 {
		// A model calibrated now differs from the one the recorded trials
		// were refused or ranked by (docs/performance.md, "Latency model").
		s.emit(Event{Kind: "info", Message: fmt.Sprintf("warning: %s is missing, though %s were refused or ranked by it: calibrating a new one, by which the trials from here on are; "+
			"a run judged by one model throughout needs its file back, or a new run", rundir.FileLatencyModel, english.Plural(n, "trial", "trials"))})
	}
	s.emit(Event{Kind: "info", Message: fmt.Sprintf("calibrating the latency model on %d architectures of the space", r.Calibration)})
	sample, err := calibrationNets(s.method, s.cfg.Seed, s.data.Input, len(s.data.Classes))
	if err != nil {
		return err
	}
	lm, err := bench.Calibrate(ctx, sample, r.Calibration, runtime.SessionOptions{IntraOpThreads: r.Threads}, 100)
	if err != nil {
		return err
	}
	if err := s.dir.WriteJSON(rundir.FileLatencyModel, lm); err != nil {
		return err
	}
	s.latency = lm
	s.emit(Event{Kind: "info", Message: fmt.Sprintf("latency model: %.1f%% mean absolute error on %d held-out architectures", lm.MAPE, lm.HeldOut)})
	if doubt := lm.Doubt(); doubt != "" {
		s.emit(Event{Kind: "info", Message: "warning: " + doubt + " (reward.calibration)"})
	}
	return nil
}

// calibrationDraws is how many candidates calibrationNets draws for one
// network before it gives up: a space whose candidates do not fit the input
// would otherwise be drawn from forever.
const calibrationDraws = 1000

// calibrationNets returns the networks a latency model is calibrated on:
// candidates of m's space drawn at random (the seed's), built for input in
// with classes classes.
func calibrationNets(m method, seed uint64, in genotype.Input, classes int) (func(int) (*genotype.Net, error), error) {
	sm, ok := m.(sampler)
	if !ok {
		return nil, fmt.Errorf("a latency-aware reward needs a search that builds networks")
	}
	draw, err := sm.sampler(controller.TrialRand(seed, 0, 3))
	if err != nil {
		return nil, err
	}
	return func(int) (*genotype.Net, error) {
		var err error
		for range calibrationDraws {
			var net *genotype.Net
			if net, err = draw().Build(in, classes); err == nil {
				return net, nil
			}
		}
		return nil, fmt.Errorf("none of %d candidates of the space builds for input %s (the last: %v): give a larger --input, or a space that fits it", calibrationDraws, in, err)
	}, nil
}

// FileLatencyTable is the run's copy of the latency table it ranks by.
const FileLatencyTable = "latency_table.json"

// TableSource records which table a run ranks by: the path it was given and
// the SHA-256 of the file read there.
type TableSource struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// runTable is the run's copy of its latency table, with where it came from.
type runTable struct {
	bench.LatencyTable
	Source TableSource `json:"source"`
}

// useLatencyTable makes the run predict latencies with its latency table:
// the run's copy when it has one (a resumed run), else the file of
// Reward.Table, checked against the search's space and input and copied
// into the run.
func (s *Search) useLatencyTable() error {
	t, ok, err := s.runTableCopy()
	if err != nil {
		return err
	}
	if !ok {
		if t, err = readRunTable(s.cfg.Reward.Table); err != nil {
			return err
		}
	}
	if err := s.checkTable(t, t.Source.Path); err != nil {
		return err
	}
	if err := s.dir.WriteJSON(FileLatencyTable, t); err != nil {
		return err
	}
	s.latency = t.Model()
	s.emit(Event{Kind: "info", Message: fmt.Sprintf("latency from the table %s (%s)", t.Source.Path, t.Describe())})
	if doubt := s.latency.Doubt(); doubt != "" {
		s.emit(Event{Kind: "info", Message: "warning: " + doubt + " (nasctl bench latency-table --networks, --runs)"})
	}
	return nil
}

// runTableCopy reads the run's copy of its latency table; ok is false when
// it has none (yet). A resume reads it before anything is moved (retarget),
// so that a damaged copy stops it with the run as it was.
func (s *Search) runTableCopy() (t runTable, ok bool, err error) {
	copyPath := filepath.Join(s.dir.Path, FileLatencyTable)
	b, err := os.ReadFile(copyPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return t, false, nil
	case err != nil:
		return t, false, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, false, fmt.Errorf("%s: %w; put the table the run started with back there (its source is in config.yaml), or start a new run", copyPath, err)
	}
	if err := t.Validate(); err != nil {
		return t, false, fmt.Errorf("the run's copy of its latency table, %s, %w; start a new run", copyPath, err)
	}
	return t, true, nil
}

// checkTableCopy reads the run's copy of its latency table, if it has one,
// and checks it against the search's space and input, as useLatencyTable
// will: a resume does so before anything is moved (retarget).
func (s *Search) checkTableCopy() error {
	t, ok, err := s.runTableCopy()
	if err != nil || !ok {
		return err
	}
	if err := s.checkTable(t, "the run's copy of its latency table, "+filepath.Join(s.dir.Path, FileLatencyTable)); err != nil {
		return fmt.Errorf("%w; put the table the run started with back there, or start a new run", err)
	}
	return nil
}

// checkTable returns an error, naming the table as name, unless t was
// measured for the search's space and input.
func (s *Search) checkTable(t runTable, name string) error {
	space, digest := LatencySpace(s.cfg)
	if err := t.Check(space, digest, s.data.Input); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// readRunTable reads the latency table at path and notes where it came from.
func readRunTable(path string) (runTable, error) {
	t, err := bench.ReadLatencyTable(path)
	if err != nil {
		return runTable{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return runTable{}, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	sum := sha256.Sum256(b)
	return runTable{LatencyTable: *t, Source: TableSource{Path: path, SHA256: hex.EncodeToString(sum[:])}}, nil
}

// LatencySpace names the space a search draws its networks from and digests
// its settings, which a latency table must have been measured for.
func LatencySpace(cfg Config) (name, digest string) {
	var settings any
	switch cfg.Kind {
	case KindNASNet:
		name, settings = "nasnet-cells", cfg.Cells
	default:
		name, settings = cfg.MetaQNN.Space.Name, cfg.MetaQNN.Space.Space
	}
	// YAML, as config.yaml holds them: a space read back from a run's
	// config.yaml digests as the one it was written from.
	b, _ := yaml.Marshal(settings) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return name, hex.EncodeToString(sum[:6])
}

// MeasureLatencyTable calibrates the latency model of cfg's latency-aware
// rewards on networks of its space built for input in with classes classes,
// timing each over runs batch-1 runs with threads intra-op threads, and
// returns it as a table for the space and input (the caller describes the
// machine). runtime must be initialised.
func MeasureLatencyTable(ctx context.Context, cfg Config, in genotype.Input, classes, networks, runs, threads int) (*bench.LatencyTable, error) {
	m, err := newMethod(cfg, Data{Input: in, Classes: make([]string, classes)}, nil)
	if err != nil {
		return nil, err
	}
	sample, err := calibrationNets(m, cfg.Seed, in, classes)
	if err != nil {
		return nil, err
	}
	lm, err := bench.Calibrate(ctx, sample, networks, runtime.SessionOptions{IntraOpThreads: threads}, runs)
	if err != nil {
		return nil, err
	}
	t := bench.NewLatencyTable(lm)
	t.Space, t.SpaceDigest = LatencySpace(cfg)
	t.Input, t.Classes, t.Runs = in.String(), classes, runs
	t.ONNXRuntime, t.Date = runtime.Version(), time.Now().UTC()
	return t, nil
}

// Describe says what the reward is, for reports; runs whose rewards have
// different descriptions cannot be compared by reward. Config.DescribeReward
// names the run's metric too.
func (r RewardSettings) Describe() string { return r.describe(validationAccuracy) }

// validationAccuracy is the reward's accuracy under the default metric.
const validationAccuracy = "validation accuracy"

// DescribeReward is Reward.Describe for c's runs, the validation accuracy
// named as train.metric has it (ValidationOf): "validation balanced
// accuracy" where every validation accuracy is balanced.
func (c Config) DescribeReward() string { return c.Reward.describe(c.ValidationOf(0).Name) }

// describe is Describe with acc the validation accuracy's name.
func (r RewardSettings) describe(acc string) string {
	r = r.withDefaults()
	switch r.Mode {
	case RewardMnasNet:
		s := fmt.Sprintf("MnasNet's ACC x (LAT/T)^%g with T = %g ms (%s)", r.Weight, r.TargetMs, r.latencySource())
		if a := r.accuracyText(acc); a != validationAccuracy {
			s += ", ACC = " + a
		}
		return s
	case RewardConstraint:
		var limits []string
		if r.MaxParams > 0 {
			limits = append(limits, fmt.Sprintf("%d parameters", r.MaxParams))
		}
		if r.MaxLatencyMs > 0 {
			limits = append(limits, fmt.Sprintf("%g ms (%s)", r.MaxLatencyMs, strings.TrimSuffix(r.latencySource(), " latency")))
		}
		return r.accuracyText(acc) + ", architectures over " + strings.Join(limits, " or ") + " refused"
	}
	return r.accuracyText(acc)
}

// latencySource says where latencies come from, for reports.
func (r RewardSettings) latencySource() string {
	if r.Table != "" {
		return "latency predicted by the table " + filepath.Base(r.Table)
	}
	return r.Latency + " latency"
}

// accuracyText says what accuracy is rewarded, acc the validation
// accuracy's name.
func (r RewardSettings) accuracyText(acc string) string {
	s := acc
	if r.LastEpochs > 0 {
		s = fmt.Sprintf("best %s of the last %d epochs, or of all when fewer", acc, r.LastEpochs)
	}
	if r.Exponent != 1 {
		s = fmt.Sprintf("(%s)^%g", s, r.Exponent)
	}
	return s
}
