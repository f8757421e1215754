// Package rundir is the run directory of a search and its schema: every
// method (MetaQNN, NASNet) writes the same files.
//
//	config.yaml     the run's settings (its "kind" key names the method)
//	data.json       what the trials train on (trained methods)
//	trials.jsonl    one line per finished trial, appended and synced
//	trials.csv      the same without the curves
//	agent.state     the agent's saved state and where it stands (Checkpoint)
//	agent.jsonl     what the agent did with each trial it learned
//	final.jsonl     the retrained best architectures (trained methods)
//	final_latency.json  their latency as timed here (latency-aware rewards)
//	top.json        the best distinct architectures of the search
//	report.md, report.csv, plots/, models/, winners/
//	bench/          nasctl bench's measurements of the winners
//	paused/         where final retrainings paused by a stop stand
//	earlier/        what a longer plan set aside (SetAside, Earlier)
//
// A Dir holds the directory's lock: one search writes a run at a time; the
// lock file names the writing process (Running).
// Readers (ReadTrials, Summaries) take no lock and read a half-written last
// line as not yet there.
package rundir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/gofrs/flock"
	"github.com/nasctl/nasctl/internal/atomicfile"
	"github.com/nasctl/nasctl/internal/shell"
	"go.yaml.in/yaml/v3"
)

// Files and folders of a run directory.
const (
	FileConfig       = "config.yaml"
	FileData         = "data.json"
	FileTrials       = "trials.jsonl"
	FileTrialsCSV    = "trials.csv"
	FileAgent        = "agent.state"
	FileNotes        = "agent.jsonl"
	FileFinal        = "final.jsonl"
	FileTop          = "top.json"
	FileReport       = "report.md"
	FileReportCSV    = "report.csv"
	FileLatencyModel = "latency_model.json"
	// FileFinalLatency is the final models' batch-1 latency as timed on
	// the search's machine once they are all retrained (FinalLatency).
	FileFinalLatency = "final_latency.json"
	// FileFinalProgress says how far the final retrainings in flight are
	// ([]FinalProgress), for the dashboard: rewritten as they report,
	// removed when the final phase ends.
	FileFinalProgress = "final-progress.json"
	// FileFailure says why the run's search last ended with an error
	// (Failure), so that a run that failed is not taken for one stopped;
	// a resume removes it.
	FileFailure = "failure.json"
	fileLock    = ".lock"
	// FileConfigWritten is config.yaml as nasctl last wrote it: a resume
	// compares the two, so that settings edited in place (which would mix
	// trials of two settings in one run) are refused.
	FileConfigWritten = ".config.yaml.written"
	DirModels         = "models"
	DirWinners        = "winners"
	DirPlots          = "plots"
	DirBench          = "bench"
	// DirEarlier holds what a run set aside when its plan changed
	// (Dir.SetAside).
	DirEarlier = "earlier"
	// DirPaused holds the state of each final retraining that a stop
	// paused (PausedName), which a resume goes on from.
	DirPaused = "paused"
)

// PausedName is the path, relative to the run, of the state of trial id's
// paused final retraining.
func PausedName(id int) string { return filepath.Join(DirPaused, fmt.Sprintf("trial-%04d.gob", id)) }

// ErrExists is returned by Create for a directory that already holds a run.
var ErrExists = errors.New("run already exists")

// Free returns an error wrapping ErrExists, with what to do, when path
// already holds a run; nil otherwise.
func Free(path string) error {
	if _, err := os.Stat(filepath.Join(path, FileConfig)); err != nil {
		// A run whose config.yaml is gone still holds its records: a new
		// search there would append its trials to the old ones.
		if recs := Orphaned(path); len(recs) > 0 {
			return fmt.Errorf("%s: %w: it holds %s but no %s: %s, or move the folder away, or choose another --name",
				path, ErrExists, english.WordSeries(recs, "and"), FileConfig, restoreConfig)
		}
		return nil
	}
	if pid := writer(path); pid > 0 {
		return fmt.Errorf("%s: %w, and nasctl process %d is searching it now; watch it with %s; or choose another --name",
			path, ErrExists, pid, WatchHint(path))
	}
	return fmt.Errorf("%s: %w; resume it with --resume %s, or choose another --name", path, ErrExists, shell.Quote(path))
}

// Orphaned returns the records of a run that path holds without its
// config.yaml (trials.jsonl, agent.state, final.jsonl, agent.jsonl).
func Orphaned(path string) []string {
	var recs []string
	for _, name := range []string{FileTrials, FileAgent, FileFinal, FileNotes} {
		if _, err := os.Stat(filepath.Join(path, name)); err == nil {
			recs = append(recs, name)
		}
	}
	return recs
}

// restoreConfig says how to mend a run that lost its config.yaml.
const restoreConfig = "put it back (from a copy of the run, or the settings its search was started with) and resume it with --resume"

// WatchHint says how to watch the run at path live: the dashboard's command
// and the run's page at nasctl ui's default address.
func WatchHint(path string) string {
	return fmt.Sprintf("nasctl ui --runs %s, then open http://127.0.0.1:8080/runs/%s",
		shell.Quote(filepath.Dir(path)), url.PathEscape(filepath.Base(path)))
}

// Dir is a run directory open for writing.
//
// Ownership: a Dir holds an exclusive lock on the directory and its trial
// log open until Close.
type Dir struct {
	Path string
	// Dropped names the files whose half-written last line opening the
	// run cut (a crash while a line was written): their records are
	// made again.
	Dropped []string
	lock    *flock.Flock
	log     *os.File
}

// Create makes path a new run whose config.yaml holds config, locked and
// with its log open.
func Create(path string, config []byte) (*Dir, error) {
	if err := Free(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	d, err := open(path)
	if err != nil {
		return nil, err
	}
	if err := d.WriteConfig(config); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// WriteConfig writes the run's config.yaml, and its copy
// (FileConfigWritten).
func (d *Dir) WriteConfig(config []byte) error {
	if err := d.WriteFile(FileConfigWritten, config); err != nil {
		return err
	}
	if err := d.WriteFile(FileConfig, config); err != nil {
		// The copy would now differ from config.yaml as if the user had
		// edited it; without a copy, a resume checks nothing.
		os.Remove(filepath.Join(d.Path, FileConfigWritten))
		return err
	}
	return nil
}

// Open opens an existing run for resuming. A last line torn by a crash in
// the middle of a write is dropped from every log.
func Open(path string) (*Dir, error) {
	if _, err := os.Stat(filepath.Join(path, FileConfig)); err != nil {
		if recs := Orphaned(path); errors.Is(err, os.ErrNotExist) && len(recs) > 0 {
			return nil, fmt.Errorf("%s holds a run's %s but no %s: %s", path, english.WordSeries(recs, "and"), FileConfig, restoreConfig)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a run directory (no %s); start a search with --name instead", path, FileConfig)
		}
		return nil, err
	}
	return open(path)
}

// open locks path, drops torn last lines, opens the trial log for appending
// and makes the folders.
func open(path string) (*Dir, error) {
	lock := flock.New(filepath.Join(path, fileLock))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, unwritable(fmt.Errorf("locking %s: %w", path, err))
	}
	if !ok {
		if pid := writer(path); pid > 0 {
			return nil, fmt.Errorf("%s is in use by another nasctl process (%d): wait for it to end, or stop it with Ctrl-C (kill -INT %d)", path, pid, pid)
		}
		return nil, fmt.Errorf("%s is in use by another nasctl process", path)
	}
	d := &Dir{Path: path, lock: lock}
	if err := d.prepare(); err != nil {
		lock.Unlock()
		return nil, unwritable(err)
	}
	if err := writePID(lock.Path()); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// unwritable adds what to do to an error of a run folder that cannot be
// written (a read-only disk or mount, another user's folder).
func unwritable(err error) error {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: a search writes into its run, even to resume a finished one; copy the run folder to a place you can write and resume it there", err)
	}
	return err
}

func (d *Dir) prepare() error {
	for _, name := range tornNames {
		if cut, err := truncateTorn(filepath.Join(d.Path, name)); err != nil {
			return err
		} else if cut {
			d.Dropped = append(d.Dropped, name)
		}
	}
	if err := d.prepareDirs(); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.Path, FileTrials), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	d.log = f
	return nil
}

// prepareDirs makes the run's folders that are missing.
func (d *Dir) prepareDirs() error {
	for _, sub := range []string{DirModels, DirWinners, DirPlots} {
		if err := os.MkdirAll(filepath.Join(d.Path, sub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// tornNames are the run's JSON-lines files, to which a search appends
// whole lines.
var tornNames = []string{FileTrials, FileFinal, FileNotes}

// truncateTorn cuts a file after its last newline (a write torn by a
// crash), and says whether there was anything to cut.
func truncateTorn(path string) (bool, error) {
	if torn, err := endsTorn(path); !torn || err != nil {
		return false, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return true, os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1))
}

// endsTorn reports whether the file at path ends in a line without its
// newline; a file that does not exist does not.
func endsTorn(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false, err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}

// Torn names the run's JSON-lines files at path that end in a
// half-written line: one being written while a search runs, and damage
// (a crash or a full disk while it was written) when none does. Opening
// the run (Open) cuts them.
func Torn(path string) []string {
	var torn []string
	for _, name := range tornNames {
		if t, _ := endsTorn(filepath.Join(path, name)); t {
			torn = append(torn, name)
		}
	}
	return torn
}

// Close releases the log and the lock.
func (d *Dir) Close() error {
	err := d.log.Close()
	if perr := clearPID(d.lock.Path()); err == nil {
		err = perr
	}
	if uerr := d.lock.Unlock(); err == nil {
		err = uerr
	}
	return err
}

// AppendTrial records a finished trial durably (written and synced).
func (d *Dir) AppendTrial(t Trial) error { return appendSynced(d.log, t) }

// AppendNote records what the agent did with a learned trial, durably.
func (d *Dir) AppendNote(n Note) error { return d.appendTo(FileNotes, n) }

// AppendFinal records a final-phase result durably.
func (d *Dir) AppendFinal(r FinalResult) error { return d.appendTo(FileFinal, r) }

func (d *Dir) appendTo(name string, v any) error {
	f, err := os.OpenFile(filepath.Join(d.Path, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	err = appendSynced(f, v)
	if cerr := f.Close(); err == nil {
		err = cerr
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

// WriteFile writes b to a path relative to the run, atomically.
func (d *Dir) WriteFile(rel string, b []byte) error {
	return atomicfile.Write(filepath.Join(d.Path, rel), b)
}

// Rescue writes data, which could not be written where it belongs (name is
// that file's name), to the temporary folder instead, and returns where:
// finished work that a full disk refused is not lost.
func Rescue(name string, data []byte) (string, error) {
	f, err := os.CreateTemp("", fmt.Sprintf("nasctl-%s-*-%s", time.Now().Format("20060102-150405"), name))
	if err != nil {
		return "", err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		os.Remove(f.Name()) // a part of the file would pass for the whole
		return "", err
	}
	return f.Name(), nil
}

// WriteJSON writes v as indented JSON to a path relative to the run,
// atomically.
func (d *Dir) WriteJSON(rel string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return d.WriteFile(rel, b)
}

// SetAside moves the run's files and folders of names that exist into
// earlier/NAME, or earlier/NAME.2 and so on when that is taken, and
// returns that folder relative to the run ("" when none of them exists).
// Nothing is copied or deleted: a crash leaves each file in one place or
// the other.
func (d *Dir) SetAside(name string, names ...string) (string, error) {
	var present []string
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(d.Path, n)); err == nil {
			present = append(present, n)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	if len(present) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(filepath.Join(d.Path, DirEarlier), 0o755); err != nil {
		return "", err
	}
	rel := filepath.Join(DirEarlier, name)
	for i := 2; ; i++ {
		err := os.Mkdir(filepath.Join(d.Path, rel), 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
		rel = filepath.Join(DirEarlier, fmt.Sprintf("%s.%d", name, i))
	}
	for _, n := range present {
		if err := os.Rename(filepath.Join(d.Path, n), filepath.Join(d.Path, rel, n)); err != nil {
			return "", err
		}
	}
	return rel, d.prepareDirs() // the run's folders moved are made again, empty
}

// Earlier lists the folders that SetAside made in the run at path,
// relative to it, in the order they were made: by the trial count in their
// names (trials-30 before trials-100), then by their .2, .3 suffixes.
func Earlier(path string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(path, DirEarlier))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return slices.Compare(numbers(a), numbers(b))
	})
	for i, n := range out {
		out[i] = filepath.Join(DirEarlier, n)
	}
	return out, nil
}

// numbers returns the numbers in name, in order ("trials-30.2": 30, 2);
// a name without any sorts first.
func numbers(name string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(name, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// ModelPath is where the search keeps the model of trial id while it ranks
// among the best.
func (d *Dir) ModelPath(id int) string { return filepath.Join(d.Path, ModelName(id)) }

// ModelName is ModelPath relative to the run.
func ModelName(id int) string { return filepath.Join(DirModels, modelFile(id)) }

func modelFile(id int) string { return fmt.Sprintf("trial-%04d.onnx", id) }

// ModelID reads the trial number back from the name of a file in the
// models folder (ok false for any other file). Numbers from 10000 on have
// more than ModelName's four digits.
func ModelID(file string) (id int, ok bool) {
	digits, pre := strings.CutPrefix(file, "trial-")
	digits, suf := strings.CutSuffix(digits, ".onnx")
	if !pre || !suf {
		return 0, false
	}
	id, err := strconv.Atoi(digits)
	if err != nil || id < 1 || modelFile(id) != file {
		return 0, false
	}
	return id, true
}

// WinnerName is where the final phase writes the model of a rank, relative
// to the run.
func WinnerName(rank int) string {
	return filepath.Join(DirWinners, fmt.Sprintf("rank-%02d.onnx", rank))
}

// BestName is the copy of the best winner, relative to the run.
var BestName = filepath.Join(DirWinners, "best.onnx")

// BestInt8Name is the copy of the best winner's int8 model (final.int8),
// relative to the run.
var BestInt8Name = filepath.Join(DirWinners, "int8", "best.onnx")

// Kind returns the value of the "kind" key of the run's config.yaml; a
// config.yaml without one is a MetaQNN run's (runs of older nasctl).
func Kind(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(path, FileConfig))
	if err != nil {
		return "", fmt.Errorf("%s is not a run directory: %w", path, err)
	}
	var k struct {
		Kind string `yaml:"kind"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(path, FileConfig), err)
	}
	if k.Kind == "" {
		return "metaqnn", nil
	}
	return k.Kind, nil
}

// Winners returns the final models of the run at path, by rank; without
// ranked ones, whatever winners/ holds (best.onnx is a copy of a rank, and
// counts alone).
func Winners(path string) []string {
	found, _ := filepath.Glob(filepath.Join(path, DirWinners, "rank-*.onnx"))
	if len(found) == 0 {
		found, _ = filepath.Glob(filepath.Join(path, DirWinners, "*.onnx"))
	}
	sort.Strings(found)
	return found
}
