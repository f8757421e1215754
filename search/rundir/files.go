package rundir

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
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// ReadJSONL reads one JSON value per line of path (none when the file does
// not exist). A last line without its newline is one being written, or torn
// by a crash: it is left out. A line that does not decode ends the reading
// with a *LineError, returned with the values before it, which a viewer can
// still show.
func ReadJSONL[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []T
	for n, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return out, &LineError{Path: path, Line: n + 1, Err: err}
		}
		out = append(out, v)
	}
	return out, nil
}

// LineError is a line of a JSON-lines file that does not decode.
type LineError struct {
	Path string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s line %d: %v", e.Path, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadTrials returns the trials of the run at path in trial order (the log
// holds them in the order they finished). A damaged line's error (a
// *LineError) says how to go on from the trials before it, which are
// returned with it.
func ReadTrials(path string) ([]Trial, error) {
	ts, err := ReadJSONL[Trial](filepath.Join(path, FileTrials))
	if le := (*LineError)(nil); errors.As(err, &le) {
		err = fmt.Errorf("%w (a search only appends whole lines, so this one was damaged since; keep a copy of the run, then, to go on from the trials before it, delete line %d and those after it and %s, and resume: the agent learns the trials left again)",
			err, le.Line, FileAgent)
	}
	slices.SortStableFunc(ts, func(a, b Trial) int { return a.ID - b.ID })
	return ts, err
}

// FirstDifference returns the index of the first trial at which two runs
// differ, untimed (see Trial.Untimed), or -1 when they are the same trial
// for trial: a search repeats exactly when its runs have no difference.
func FirstDifference(a, b []Trial) int {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i].Untimed(), b[i].Untimed()) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// ReadFinals returns the final-phase results of the run at path, with the
// latencies FileFinalLatency holds for them (a model's by its rank and
// trial: a final retrained again is the same architecture).
func ReadFinals(path string) ([]FinalResult, error) {
	finals, err := ReadFinalRecords(path)
	if err != nil {
		return nil, err
	}
	timed, err := ReadFinalLatency(path)
	if err != nil || timed == nil {
		return finals, err
	}
	for _, m := range timed.Models {
		for i, f := range finals {
			if f.Rank == m.Rank && f.Trial == m.Trial && f.Status == StatusOK {
				finals[i].MeasuredLatencyMs = &m.P50Ms
			}
		}
	}
	return finals, nil
}

// ReadFinalRecords returns the final-phase results of the run at path as
// final.jsonl records them, without their timings.
func ReadFinalRecords(path string) ([]FinalResult, error) {
	fs, err := ReadJSONL[FinalResult](filepath.Join(path, FileFinal))
	if le := (*LineError)(nil); errors.As(err, &le) {
		err = fmt.Errorf("%w (a search only appends whole lines, so this one was damaged since; keep a copy of the run, then delete line %d and those after it, and resume: the final phase retrains the models of the lines deleted)",
			err, le.Line)
	}
	return fs, err
}

// ReadFinalLatency reads FileFinalLatency of the run at path; nil, nil
// when the run has none.
func ReadFinalLatency(path string) (*FinalLatency, error) {
	b, err := os.ReadFile(filepath.Join(path, FileFinalLatency))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var t FinalLatency
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, &DamagedTimings{Path: filepath.Join(path, FileFinalLatency), Err: err}
	}
	return &t, nil
}

// DamagedTimings is the error of a FileFinalLatency that cannot be read.
type DamagedTimings struct {
	Path string
	Err  error
}

func (e *DamagedTimings) Error() string {
	return fmt.Sprintf("%s: %v: the final models' timings are damaged; a resume of the run times them again", e.Path, e.Err)
}

func (e *DamagedTimings) Unwrap() error { return e.Err }

// ReadNotes returns what the agent did with each trial it learned.
func ReadNotes(path string) ([]Note, error) { return ReadJSONL[Note](filepath.Join(path, FileNotes)) }

// SaveAgent writes the checkpoint and the agent's state (what save writes)
// to agent.state atomically: a JSON line, then the agent's own bytes.
func (d *Dir) SaveAgent(cp Checkpoint, save func(io.Writer) error) error {
	cp.Format = CheckpointFormat
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(cp); err != nil {
		return err
	}
	if err := save(&buf); err != nil {
		return fmt.Errorf("saving the agent: %w", err)
	}
	return d.WriteFile(FileAgent, buf.Bytes())
}

// Relearn says how to go on from a checkpoint that cannot be used: without
// one, a resume learns the log again from the agent's seed, checked trial
// by trial.
const Relearn = "keep a copy of the run, then delete " + FileAgent + " and resume: the agent learns the trials of " + FileTrials + " again"

// LoadAgent reads agent.state: the checkpoint and a reader of the agent's
// state. It returns a nil checkpoint when the run has none yet.
func (d *Dir) LoadAgent() (*Checkpoint, io.Reader, error) {
	path := filepath.Join(d.Path, FileAgent)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(bytes.NewReader(b))
	head, err := r.ReadBytes('\n')
	if err != nil {
		return nil, nil, fmt.Errorf("%s: no checkpoint line (%s)", path, Relearn)
	}
	var cp Checkpoint
	if err := json.Unmarshal(head, &cp); err != nil {
		return nil, nil, fmt.Errorf("%s: %w (%s)", path, err, Relearn)
	}
	if cp.Format != CheckpointFormat {
		return nil, nil, fmt.Errorf("%s has format %d; this nasctl reads format %d (%s)", path, cp.Format, CheckpointFormat, Relearn)
	}
	return &cp, r, nil
}

// KeepNotes drops the notes of trials after learned: a resumed search learns
// them again from the checkpoint and writes their notes anew.
func (d *Dir) KeepNotes(learned int) error {
	notes, err := ReadNotes(d.Path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	kept := 0
	for _, n := range notes {
		if n.Trial <= learned {
			if err := enc.Encode(n); err != nil {
				return err
			}
			kept++
		}
	}
	if kept == len(notes) {
		return nil
	}
	return d.WriteFile(FileNotes, buf.Bytes())
}

// WriteTrialsCSV writes trials as trials.csv (without the per-epoch curves,
// which are in trials.jsonl), with what the agent noted of each; trains says
// whether the run trains its trials (else a problem scores them). A value a
// trial cannot have is an empty cell, not a 0 that a spreadsheet would
// average: the training columns of a trial not trained here (refused,
// failed, reused, or scored), the accuracy of a scored one, the score of a
// trained one, the epsilon of the REINFORCE controller's (it has a
// temperature instead), the latency of a search that does not weigh it.
func (d *Dir) WriteTrialsCSV(trials []Trial, notes map[int]Note, trains bool) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"id", "epsilon", "temperature", "arch", "actions", "params", "macs", "status", "reward", "val_accuracy", "score",
		"baseline", "update", "best_epoch", "epochs", "restarts", "seconds", "seed", "reused_from", "reason", "greedy", "pruned", "at_chance",
		"reward_accuracy", "latency_ms", "images_per_second", "waited_seconds", "worker"})
	for _, t := range trials {
		acts := make([]string, len(t.Actions))
		for i, a := range t.Actions {
			acts[i] = strconv.Itoa(a)
		}
		baseline, update := "", ""
		if n, ok := notes[t.ID]; ok {
			baseline = fmtF(n.Baseline)
			if u := n.Update; u != nil {
				update = "applied"
				if u.Kept == 0 {
					update = "skipped"
				}
			}
		}
		measured := t.Status != StatusRefused && t.Status != StatusFailed
		trained := trains && (t.Status == StatusOK || t.Status == StatusDiverged)
		epsilon, acc, score, bestEpoch, epochs, restarts, seed, reusedFrom, speed, waited := "", "", "", "", "", "", "", "", "", ""
		if t.Temperature == 0 {
			epsilon = fmtF(t.Epsilon)
		}
		if trains && measured {
			acc = fmtF(t.ValAccuracy)
		}
		if !trains && measured {
			score = fmtF(t.Score)
		}
		if trained {
			bestEpoch, epochs, restarts = strconv.Itoa(t.BestEpoch), strconv.Itoa(len(t.Epochs)), strconv.Itoa(t.Restarts)
			seed = strconv.FormatUint(uint64(t.Seed), 10) // above int64's range as often as not
			speed, waited = optF(t.ImagesPerSecond), fmtF(t.WaitedSeconds)
		}
		if t.Status == StatusReused {
			reusedFrom = strconv.Itoa(t.ReusedFrom)
		}
		w.Write([]string{strconv.Itoa(t.ID), epsilon, optF(t.Temperature), t.Arch, strings.Join(acts, ","),
			optI(t.Params), optI(t.MACs), string(t.Status), fmtF(t.Reward), acc,
			score, baseline, update, bestEpoch, epochs, restarts,
			fmtF(t.Seconds), seed, reusedFrom, t.Reason, strconv.FormatBool(t.Greedy), strconv.FormatBool(t.Pruned),
			strconv.FormatBool(t.AtChance), optF(t.RewardAccuracy), optF(t.LatencyMs), speed, waited, t.Worker})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return d.WriteFile(FileTrialsCSV, buf.Bytes())
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// optF and optI write zero, which no trial has for the value (a
// temperature, a parameter count), as an empty cell.
func optF(v float64) string {
	if v == 0 {
		return ""
	}
	return fmtF(v)
}

func optI(v int64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

// ReadFailure reads the run in dir's FileFailure: the zero Failure when
// its search did not end with an error (or was resumed since), or the
// file cannot be read.
func ReadFailure(dir string) Failure {
	var f Failure
	b, err := os.ReadFile(filepath.Join(dir, FileFailure))
	if err != nil || json.Unmarshal(b, &f) != nil {
		return Failure{} // a damaged record reads as none
	}
	return f
}
