package rundir

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/runtime"
)

// Status is how a trial ended.
type Status string

// Trial statuses. The first three are the training's own (runtime.Status).
const (
	StatusOK       Status = "ok"       // evaluated; the reward is its metric's
	StatusDiverged Status = "diverged" // the loss became NaN or infinite; reward 0
	StatusRefused  Status = "refused"  // over a budget or limit, not trained; reward 0
	StatusFailed   Status = "failed"   // the evaluation failed (an error, in Reason); the agent learns nothing
	StatusReused   Status = "reused"   // evaluated before (see ReusedFrom): its result is reused
)

// Statuses lists every status in the order reports count them.
var Statuses = []Status{StatusOK, StatusReused, StatusRefused, StatusDiverged, StatusFailed}

// StatusOf is the trial status of a training that ended with s (ok,
// diverged or refused).
func StatusOf(s runtime.Status) Status { return Status(s) }

// Trained reports whether a trial of status s was evaluated by its executor
// and has a result of its own (ok or diverged).
func (s Status) Trained() bool { return s == StatusOK || s == StatusDiverged }

// Candidate is an agent's proposal as the run records it: enough to rebuild
// the proposal (the genotype from Arch, or from Actions in a decision space).
type Candidate struct {
	// ID numbers the trial from 1, in the order the agent proposed.
	ID   int    `json:"id"`
	Arch string `json:"arch"` // the genotype's text form
	// Actions are the decisions of an agent on a decision space (REINFORCE,
	// random search); MetaQNN's decisions are the layers of Arch.
	Actions []int `json:"actions,omitempty"`
	// Epsilon (MetaQNN) or Temperature (REINFORCE) the proposal was drawn at.
	Epsilon     float64 `json:"epsilon,omitempty"`
	Temperature float64 `json:"temperature,omitempty"`
	// Greedy: MetaQNN drew no layer at random (controller.Proposal.Greedy).
	Greedy bool `json:"greedy,omitempty"`
	// Lag is the scheduler's look-ahead the proposal was drawn with: trial
	// ID was drawn once the agent had learned trials 1 to ID - Lag. A
	// resume replays the log with each trial's own (runs recorded before
	// it: the look-ahead of the run's saved workers).
	Lag int `json:"lag,omitempty"`
}

// CandidateOf records proposal p of trial id.
func CandidateOf(id int, p controller.Proposal) Candidate {
	return Candidate{ID: id, Arch: p.Genotype.String(), Actions: p.Actions, Epsilon: p.Epsilon, Temperature: p.Temperature, Greedy: p.Greedy}
}

// Trial is one finished trial as recorded in trials.jsonl.
type Trial struct {
	Candidate
	Params int64  `json:"params,omitempty"`
	MACs   int64  `json:"macs,omitempty"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Reward is what the agent learns from.
	Reward float64 `json:"reward"`
	// ValAccuracy is a trained trial's validation accuracy at its kept
	// epoch (the best by the training's monitor).
	ValAccuracy float64 `json:"val_accuracy,omitempty"`
	// RewardAccuracy is the validation accuracy the reward was computed
	// from, when the reward reads other epochs than the kept one (the
	// study's best of the last epochs, with the best epoch chosen by
	// validation loss); zero: ValAccuracy. Runs recorded before it lack it,
	// so their trials differ from a new run's by it alone.
	RewardAccuracy float64 `json:"reward_accuracy,omitempty"`
	// Score is a table problem's score (NATS-Bench: accuracy in percent;
	// mock: the mock reward), for trials scored without training.
	Score float64 `json:"score,omitempty"`
	// LatencyMs is the batch-1 latency, predicted or measured, of a search
	// whose reward weighs latency.
	LatencyMs float64 `json:"latency_ms,omitempty"`
	BestEpoch int     `json:"best_epoch,omitempty"`
	Restarts  int     `json:"restarts,omitempty"`
	// AtChance marks a trained trial that stayed a constant predictor
	// (runtime.Result.AtChance).
	AtChance bool `json:"at_chance,omitempty"`
	// Pruned marks a trial the median stopping rule stopped early
	// (runtime.Result.Pruned): its reward is that of a shorter training.
	Pruned          bool    `json:"pruned,omitempty"`
	Seconds         float64 `json:"seconds"`
	ImagesPerSecond float64 `json:"images_per_second,omitempty"`
	// WaitedSeconds is how long the training waited, before Seconds began,
	// for memory that other trainings held (runtime.Result.Waited).
	WaitedSeconds float64 `json:"waited_seconds,omitempty"`
	// Worker names the remote worker that trained the trial (nasctl worker
	// --name); empty: the search's own process.
	Worker string `json:"worker,omitempty"`
	// Stored marks a result the broker had stored before this run asked
	// (search.Outcome.Stored): not trained for it.
	Stored bool `json:"stored,omitempty"`
	// Seed seeded the trial's training.
	Seed       runtime.Seed          `json:"seed,omitempty"` // a string in JSON: see runtime.Seed
	ReusedFrom int                   `json:"reused_from,omitempty"`
	Finished   time.Time             `json:"finished"`
	Epochs     []runtime.EpochRecord `json:"epochs,omitempty"`
}

// MarshalJSON writes the trial with its epsilon even when it is 0 (a
// greedy phase, an evolved child), so that a script finds the key on every
// trial an epsilon schedule drew; trials of the REINFORCE controller, drawn
// at a temperature instead, have none.
func (t Trial) MarshalJSON() ([]byte, error) {
	type plain Trial // without this method
	out := struct {
		plain
		Epsilon *float64 `json:"epsilon,omitempty"` // shadows Candidate's
	}{plain: plain(t)}
	if t.Temperature == 0 {
		out.Epsilon = &t.Epsilon
	}
	return json.Marshal(out)
}

// Note is what the agent did with a trial it learned, as recorded in
// agent.jsonl (the REINFORCE controller's baseline and updates; MetaQNN
// writes none).
type Note struct {
	Trial int `json:"trial"`
	controller.Learned
}

// FinalProgress is how far one retraining of the final phase is, as
// FileFinalProgress holds it.
type FinalProgress struct {
	Rank        int       `json:"rank"`
	Trial       int       `json:"trial"`
	Epoch       int       `json:"epoch"`
	MaxEpochs   int       `json:"max_epochs"`
	ValAccuracy float64   `json:"val_accuracy"`
	Time        time.Time `json:"time"`
	// Started is when this retraining began (after a resume, in that
	// process).
	Started time.Time `json:"started"`
}

// FinalResult is one retrained architecture of the final phase, as recorded
// in final.jsonl.
type FinalResult struct {
	Rank              int      `json:"rank"`
	Trial             int      `json:"trial"`
	Arch              string   `json:"arch"`
	Params            int64    `json:"params"`
	MACs              int64    `json:"macs"`
	SearchValAccuracy float64  `json:"search_val_accuracy"`  // the trial's, that its reward was computed from (Trial.RewardAccuracy, else ValAccuracy)
	LatencyMs         float64  `json:"latency_ms,omitempty"` // as the search saw it (latency-aware rewards)
	ValAccuracy       float64  `json:"val_accuracy"`
	ValLoss           *float64 `json:"val_loss,omitempty"` // at the kept epoch; breaks ties of ValAccuracy; nil in runs recorded before it
	TestAccuracy      float64  `json:"test_accuracy"`
	Status            Status   `json:"status"`
	Reason            string   `json:"reason,omitempty"`
	Seconds           float64  `json:"seconds"`
	Model             string   `json:"model,omitempty"`  // path relative to the run directory
	Worker            string   `json:"worker,omitempty"` // the remote worker that retrained it; empty: the search's process
	// Reused is the folder (relative to the run) of the earlier plan whose
	// final phase retrained this model, copied instead of trained again: a
	// resume with more trials, the same network, search weights, settings
	// and images. Its figures, seconds and epochs are that training's.
	Reused string                `json:"reused,omitempty"`
	Epochs []runtime.EpochRecord `json:"epochs,omitempty"`
	// AtChance marks a retrained model that stayed a constant predictor
	// (runtime.Result.AtChance): it answers one class whatever the image.
	AtChance bool `json:"at_chance,omitempty"`
	// Int8Model and Int8TestAccuracy are the model's int8 form and its test
	// accuracy, when the run quantizes its winners (final.int8).
	Int8Model        string   `json:"int8_model,omitempty"`
	Int8TestAccuracy *float64 `json:"int8_test_accuracy,omitempty"`
	// TestByClass is, per class of the model, its test images and how many
	// of them the model answered right (the confusion matrix's rows): on
	// imbalanced classes a high accuracy can hide a class missed. Nil in
	// runs recorded before it.
	TestByClass []ClassRecall `json:"test_by_class,omitempty"`
	// Finished is when the result was recorded (zero in runs recorded
	// before it).
	Finished time.Time `json:"finished,omitempty"`
	// MeasuredLatencyMs is the model's batch-1 latency (p50) as timed on the
	// search's machine after the final phase (FileFinalLatency, which
	// ReadFinals reads it from; never in final.jsonl); nil: not timed.
	MeasuredLatencyMs *float64 `json:"measured_latency_ms,omitempty"`
}

// ClassRecall is how many of a class's images a model answered right.
type ClassRecall struct {
	Class  string `json:"class"`
	Right  int    `json:"right"`
	Images int    `json:"images"`
}

// Recall is the share of the class's images answered right (0 without
// images).
func (c ClassRecall) Recall() float64 {
	if c.Images == 0 {
		return 0
	}
	return float64(c.Right) / float64(c.Images)
}

// ByClass reads the recall of each class off a confusion matrix (rows:
// true class, columns: predicted) of the classes named.
func ByClass(classes []string, confusion [][]int) []ClassRecall {
	if len(confusion) != len(classes) {
		return nil
	}
	out := make([]ClassRecall, len(classes))
	for i, row := range confusion {
		out[i].Class = classes[i]
		for j, n := range row {
			out[i].Images += n
			if i == j {
				out[i].Right = n
			}
		}
	}
	return out
}

// LowestRecall is the class of the lowest recall among those with images (the
// first of equals); false when none has images.
func LowestRecall(byClass []ClassRecall) (ClassRecall, bool) {
	var low ClassRecall
	found := false
	for _, c := range byClass {
		if c.Images > 0 && (!found || c.Recall() < low.Recall()) {
			low, found = c, true
		}
	}
	return low, found
}

// BalancedAccuracy is the mean recall of the classes with images
// (runtime.MetricBalanced); 0 when none has images.
func BalancedAccuracy(byClass []ClassRecall) float64 {
	right, images := make([]int, len(byClass)), make([]int, len(byClass))
	for i, c := range byClass {
		right[i], images[i] = c.Right, c.Images
	}
	return runtime.MetricBalanced.Score(right, images)
}

// FinalLatency is what FileFinalLatency holds: the batch-1 latency of a
// run's final models, timed together in rounds on the search's machine once
// every final was retrained.
type FinalLatency struct {
	Threads int          `json:"threads"`
	Runs    int          `json:"runs"` // timed runs of each model
	Rounds  int          `json:"rounds"`
	Time    time.Time    `json:"time"`
	Models  []TimedFinal `json:"models"`
}

// TimedFinal is one final model's timing in FinalLatency.
type TimedFinal struct {
	Rank  int     `json:"rank"`
	Trial int     `json:"trial"`
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
}

// Checkpoint is where the agent's saved state stands in the run: it has
// learned trials 1..Learned and proposed the Outstanding ones after them
// (in flight, finished but not yet learned, or dropped by a stop).
type Checkpoint struct {
	Format      int         `json:"format"`
	Learned     int         `json:"learned"`
	Outstanding []Candidate `json:"outstanding,omitempty"`
}

// CheckpointFormat is the format this nasctl writes and reads.
const CheckpointFormat = 1

// LastAttempt is the epochs of the trial's last attempt (after its
// restarts).
func (t Trial) LastAttempt() []runtime.EpochRecord {
	var out []runtime.EpochRecord
	for _, e := range t.Epochs {
		if e.Attempt == t.Restarts {
			out = append(out, e)
		}
	}
	return out
}

// Untimed is the trial without what the clock measured (its seconds,
// finish time, throughput and wait), the worker and whether the broker had
// it stored: two runs of the same search record equal untimed trials.
func (t Trial) Untimed() Trial {
	t.Seconds, t.Finished, t.ImagesPerSecond, t.WaitedSeconds, t.Worker, t.Stored = 0, time.Time{}, 0, 0, "", false
	t.Epochs = slices.Clone(t.Epochs)
	for i := range t.Epochs {
		t.Epochs[i].Seconds = 0
	}
	return t
}

// Failure is why a run's search ended with an error, and when
// (FileFailure).
type Failure struct {
	Error string    `json:"error"`
	Time  time.Time `json:"time"`
}
