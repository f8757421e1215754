package search

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
	"github.com/nasctl/nasctl/runtime"
	"go.yaml.in/yaml/v3"
)

// Status of a trial.
const (
	StatusOK       = "ok"       // trained; the reward is its best validation accuracy
	StatusDiverged = "diverged" // the loss became NaN or infinite; reward 0
	StatusRefused  = "refused"  // over the budget, not trained; reward 0
	StatusFailed   = "failed"   // training failed (an error, recorded in Reason); reward 0
	StatusReused   = "reused"   // trained before (see ReusedFrom): its reward is reused
)

// Trial is one finished trial as recorded in trials.jsonl.
type Trial struct {
	ID              int                   `json:"id"`
	Epsilon         float64               `json:"epsilon"`
	Arch            string                `json:"arch"`
	Params          int64                 `json:"params"`
	MACs            int64                 `json:"macs"`
	Status          string                `json:"status"`
	Reason          string                `json:"reason,omitempty"`
	Reward          float64               `json:"reward"`
	ValAccuracy     float64               `json:"val_accuracy"`
	LatencyMs       float64               `json:"latency_ms,omitempty"` // batch 1, predicted or measured (latency-aware rewards)
	BestEpoch       int                   `json:"best_epoch,omitempty"`
	Restarts        int                   `json:"restarts,omitempty"`
	Seconds         float64               `json:"seconds"`
	ImagesPerSecond float64               `json:"images_per_second,omitempty"`
	Seed            uint64                `json:"seed"`
	ReusedFrom      int                   `json:"reused_from,omitempty"`
	Finished        time.Time             `json:"finished"`
	Epochs          []runtime.EpochRecord `json:"epochs,omitempty"`
}

// FinalResult is one retrained architecture of the final phase, as recorded
// in final.jsonl.
type FinalResult struct {
	Rank              int                   `json:"rank"`
	Trial             int                   `json:"trial"`
	Arch              string                `json:"arch"`
	Params            int64                 `json:"params"`
	MACs              int64                 `json:"macs"`
	SearchValAccuracy float64               `json:"search_val_accuracy"`
	LatencyMs         float64               `json:"latency_ms,omitempty"` // as the search saw it (latency-aware rewards)
	ValAccuracy       float64               `json:"val_accuracy"`
	TestAccuracy      float64               `json:"test_accuracy"`
	Status            string                `json:"status"`
	Reason            string                `json:"reason,omitempty"`
	Seconds           float64               `json:"seconds"`
	Model             string                `json:"model,omitempty"` // path relative to the run directory
	Epochs            []runtime.EpochRecord `json:"epochs,omitempty"`
}

// Files of a run directory.
const (
	fileConfig  = "config.yaml"
	fileData    = "data.json"
	fileTrials  = "trials.jsonl"
	fileFinal   = "final.jsonl"
	fileQTable  = "qtable.json"
	fileReplay  = "replay.json"
	fileCSV     = "trials.csv"
	fileLock    = ".lock"
	dirModels   = "models"
	dirWinners  = "winners"
	dirPlots    = "plots"
	fileReportM = "report.md"
	fileReportC = "report.csv"
)

// Store is a run directory. Every finished trial is appended to trials.jsonl
// and synced to disk before the search goes on, so a crash or kill -9 loses
// at most the trials in flight; the agent's Q-table and replay memory are
// saved beside it after every batch of trials the agent learns (atomically,
// for people and tools: a resumed run rebuilds the agent from the log, see
// Search).
//
// Ownership: Store holds an exclusive lock on the directory (one search per
// run) and an open log file until Close.
type Store struct {
	runDir
}

// runDir is what every kind of run directory shares: the lock, the log
// appended to, atomic writes of the other files. MetaQNN's Store and
// NASNetStore embed it.
//
// Ownership: runDir holds an exclusive lock on the directory and its log file
// open until Close.
type runDir struct {
	Dir  string
	lock *flock.Flock
	log  *os.File
}

// runLayout names the files and folders of one kind of run.
type runLayout struct {
	log  string   // the JSONL file appended to
	logs []string // every JSONL file whose torn last line is dropped on opening (log included)
	dirs []string // folders made on opening
}

var metaqnnLayout = runLayout{
	log: fileTrials, logs: []string{fileTrials, fileFinal}, dirs: []string{dirModels, dirWinners, dirPlots},
}

// ErrRunExists is returned by Create for a directory that already holds a run.
var ErrRunExists = errors.New("run already exists")

// Create makes a new run directory for cfg.
func Create(dir string, cfg Config) (*Store, error) {
	r, err := createRun(dir, cfg, metaqnnLayout)
	if err != nil {
		return nil, err
	}
	return &Store{r}, nil
}

// createRun makes dir a new run of layout whose config.yaml holds cfg,
// locked and with its log open.
func createRun(dir string, cfg interface{ Marshal() ([]byte, error) }, layout runLayout) (runDir, error) {
	b, err := cfg.Marshal()
	if err != nil {
		return runDir{}, err
	}
	if _, err := os.Stat(filepath.Join(dir, fileConfig)); err == nil {
		return runDir{}, fmt.Errorf("%s: %w; resume it with --resume %s, or choose another --name", dir, ErrRunExists, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return runDir{}, err
	}
	r, err := openRun(dir, layout)
	if err != nil {
		return runDir{}, err
	}
	if err := renameio.WriteFile(filepath.Join(dir, fileConfig), b, 0o644); err != nil {
		r.Close()
		return runDir{}, err
	}
	return r, nil
}

// Open opens an existing run for resuming and returns its saved configuration
// and finished trials, in the order they finished. A last line torn by a
// crash in the middle of a write is dropped.
func Open(dir string) (*Store, Config, []Trial, error) {
	var cfg Config
	if err := readRunConfig(dir, KindMetaQNN, &cfg); err != nil {
		return nil, Config{}, nil, err
	}
	r, err := openRun(dir, metaqnnLayout)
	if err != nil {
		return nil, Config{}, nil, err
	}
	trials, err := readJSONL[Trial](filepath.Join(dir, fileTrials), true)
	if err != nil {
		r.Close()
		return nil, Config{}, nil, err
	}
	return &Store{r}, cfg, trials, nil
}

// readRunConfig decodes dir's config.yaml into cfg, strictly (unknown keys
// are an error), after checking that the run is of kind.
func readRunConfig(dir, kind string, cfg any) error {
	path := filepath.Join(dir, fileConfig)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s is not a run directory (no %s); start a search with --name instead", dir, fileConfig)
		}
		return err
	}
	if k, err := kindOf(b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	} else if k != kind {
		return fmt.Errorf("%s holds a %s run, not a %s one; resume it with: nasctl search %s --resume %s", dir, k, kind, k, dir)
	}
	if err := decodeYAMLStrict(b, cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// decodeYAMLStrict decodes the YAML document b into v: keys present replace
// v's values, unknown keys are an error, and an empty document is io.EOF.
func decodeYAMLStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// Kinds of run directory. A config.yaml without a kind key is a MetaQNN run.
const (
	KindMetaQNN = "metaqnn"
	KindNASNet  = "nasnet"
)

// kindOf returns the kind of run a config.yaml describes.
func kindOf(config []byte) (string, error) {
	var k struct {
		Kind string `yaml:"kind"`
	}
	if err := yaml.Unmarshal(config, &k); err != nil {
		return "", err
	}
	switch k.Kind {
	case "", KindMetaQNN:
		return KindMetaQNN, nil
	case KindNASNet:
		return KindNASNet, nil
	}
	return "", fmt.Errorf("unknown run kind %q (valid: %s, %s)", k.Kind, KindMetaQNN, KindNASNet)
}

// RunKind returns the kind of the run in dir: KindMetaQNN or KindNASNet.
func RunKind(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileConfig))
	if err != nil {
		return "", fmt.Errorf("%s is not a run directory: %w", dir, err)
	}
	k, err := kindOf(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, fileConfig), err)
	}
	return k, nil
}

// openRun locks dir, drops torn last lines of its logs, opens its log for
// appending and makes its folders.
func openRun(dir string, layout runLayout) (runDir, error) {
	lock := flock.New(filepath.Join(dir, fileLock))
	ok, err := lock.TryLock()
	if err != nil {
		return runDir{}, fmt.Errorf("locking %s: %w", dir, err)
	}
	if !ok {
		return runDir{}, fmt.Errorf("%s is in use by another nasctl process", dir)
	}
	// Drop a torn last line before appending after it.
	for _, name := range layout.logs {
		if err := truncateTorn(filepath.Join(dir, name)); err != nil {
			lock.Unlock()
			return runDir{}, err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, layout.log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		lock.Unlock()
		return runDir{}, err
	}
	for _, d := range layout.dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.Close()
			lock.Unlock()
			return runDir{}, err
		}
	}
	return runDir{Dir: dir, lock: lock, log: f}, nil
}

// truncateTorn cuts a file after its last newline (a write torn by a crash).
func truncateTorn(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && (len(b) == 0 || b[len(b)-1] == '\n')) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1))
}

// readJSONL reads one JSON value per line.
func readJSONL[T any](path string, missingOK bool) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		if missingOK && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out []T
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var v T
			if jerr := json.Unmarshal(line, &v); jerr != nil {
				return nil, fmt.Errorf("%s line %d: %w", path, n, jerr)
			}
			out = append(out, v)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Close releases the log and the lock.
func (s *runDir) Close() error {
	err := s.log.Close()
	if uerr := s.lock.Unlock(); err == nil {
		err = uerr
	}
	return err
}

// appendSynced appends one JSON line to f and syncs it to disk.
func appendSynced(f *os.File, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

// Append records a finished trial durably.
func (s *Store) Append(t Trial) error { return appendSynced(s.log, t) }

// AppendFinal records a final-phase result durably.
func (s *Store) AppendFinal(r FinalResult) error {
	f, err := os.OpenFile(filepath.Join(s.Dir, fileFinal), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return appendSynced(f, r)
}

// Finals returns the final-phase results recorded so far.
func (s *Store) Finals() ([]FinalResult, error) {
	return readJSONL[FinalResult](filepath.Join(s.Dir, fileFinal), true)
}

// writeJSON writes v as indented JSON, atomically.
func (s *runDir) writeJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(filepath.Join(s.Dir, name), b, 0o644)
}

// ModelPath is where the search keeps the model of a trial while it ranks
// among the best.
func (s *Store) ModelPath(id int) string {
	return filepath.Join(s.Dir, dirModels, fmt.Sprintf("trial-%04d.onnx", id))
}

// writeFile writes b to a path relative to the run, atomically.
func (s *runDir) writeFile(rel string, b []byte) error {
	return renameio.WriteFile(filepath.Join(s.Dir, rel), b, 0o644)
}

// WriteCSV writes every trial as trials.csv (without the per-epoch curves,
// which are in trials.jsonl).
func (s *Store) WriteCSV(trials []Trial) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"id", "epsilon", "arch", "params", "macs", "status", "reward", "val_accuracy", "best_epoch", "epochs", "restarts", "seconds", "seed", "reused_from", "reason"})
	for _, t := range trials {
		w.Write([]string{strconv.Itoa(t.ID), fmtF(t.Epsilon), t.Arch, strconv.FormatInt(t.Params, 10), strconv.FormatInt(t.MACs, 10),
			t.Status, fmtF(t.Reward), fmtF(t.ValAccuracy), strconv.Itoa(t.BestEpoch), strconv.Itoa(len(t.Epochs)), strconv.Itoa(t.Restarts),
			fmtF(t.Seconds), strconv.FormatUint(t.Seed, 10), strconv.Itoa(t.ReusedFrom), t.Reason})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return s.writeFile(fileCSV, buf.Bytes())
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// RunSummary describes a run directory for nasctl runs list. For a NASNet
// run, Trials and Planned count episodes, Best is the best reward and
// BestArch its cell.
type RunSummary struct {
	Name     string    `json:"name"`
	Dir      string    `json:"dir"`
	Kind     string    `json:"kind"` // KindMetaQNN or KindNASNet
	Trials   int       `json:"trials"`
	Planned  int       `json:"planned"`
	Best     float64   `json:"best_val_accuracy"`
	BestArch string    `json:"best_arch,omitempty"`
	Finals   int       `json:"final_models"`
	BestTest float64   `json:"best_test_accuracy,omitempty"`
	Updated  time.Time `json:"updated"`
	Data     string    `json:"data,omitempty"` // the image folder of a MetaQNN run
}

// Summarize reads a run directory without locking or changing it (a search
// may be writing it; a line being written is skipped).
func Summarize(dir string) (*RunSummary, error) {
	kind, err := RunKind(dir)
	if err != nil {
		return nil, err
	}
	if kind == KindNASNet {
		return summarizeNASNet(dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, fileConfig))
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, fileConfig), err)
	}
	trials, err := readJSONLTolerant[Trial](filepath.Join(dir, fileTrials))
	if err != nil {
		return nil, err
	}
	finals, err := readJSONLTolerant[FinalResult](filepath.Join(dir, fileFinal))
	if err != nil {
		return nil, err
	}
	sum := &RunSummary{Name: filepath.Base(dir), Dir: dir, Kind: KindMetaQNN, Trials: len(trials), Planned: cfg.Schedule.Total(), Finals: len(finals), Data: cfg.Data}
	for _, t := range trials {
		if t.Reward > sum.Best {
			sum.Best, sum.BestArch = t.Reward, t.Arch
		}
		if t.Finished.After(sum.Updated) {
			sum.Updated = t.Finished
		}
	}
	for _, f := range finals {
		sum.BestTest = max(sum.BestTest, f.TestAccuracy)
	}
	if sum.Updated.IsZero() {
		if fi, err := os.Stat(filepath.Join(dir, fileConfig)); err == nil {
			sum.Updated = fi.ModTime()
		}
	}
	return sum, nil
}

// readJSONLTolerant is readJSONL that ignores an unparsable last line (one
// being written, or torn).
func readJSONLTolerant[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out []T
	for n, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ListRuns summarizes every run directory under dir, newest first.
func ListRuns(dir string) ([]*RunSummary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*RunSummary
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), fileConfig)); err != nil {
			continue
		}
		s, err := Summarize(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Updated.After(out[j].Updated) })
	return out, nil
}
