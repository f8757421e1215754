package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/runtime"
	"github.com/nasctl/nasctl/search"
)

// wireVersion numbers the job and result formats; a worker refuses jobs of
// another version rather than train something else than was asked.
const wireVersion = 8 // 2: TrainConfig.StopBelow; 3: TrainConfig.Augment, which a worker of format 2 would drop; 4: TrainConfig.Average; 5: stratified split plans (DataSpec.Split), which a worker of format 4 cannot parse; 6: TrainConfig.Metric and Sampling, which a worker of format 5 would drop; 7: TrainConfig.Augment by name, with shifts, which a worker of format 6 cannot parse; 8: brightness and contrast in TrainConfig.Augment, which a worker of format 7 cannot parse

// DataSpec names the images a job trains on and how they are split, so that
// a worker loads exactly what the driver loaded.
type DataSpec struct {
	// Hash is the dataset's content hash (dataset.Dataset.Hash), also the
	// name of its archive in the datasets bucket.
	Hash string `json:"hash"`
	// Input, Split, SplitSeed and Fraction are the search's settings of the
	// same names (search.Config): the size the images are loaded at, the
	// split plan and its seed, the share of the training split the trials
	// use.
	Input     string  `json:"input,omitempty"`
	Split     string  `json:"split"`
	SplitSeed uint64  `json:"split_seed"`
	Fraction  float64 `json:"fraction"`
}

// GenotypeKind is the kind of a genotype on the wire, which says which
// parser reads its text.
type GenotypeKind string

// The kinds that travel: layer sequences (genotype.Arch), cell networks
// (genotype.CellNet) and bare NASNet cell pairs (genotype.CellPair).
const (
	KindLayers  GenotypeKind = "layers"
	KindCellNet GenotypeKind = "cellnet"
	KindCells   GenotypeKind = "cells"
)

// kindNames lists the kinds, for errors.
const kindNames = "layers, cellnet, cells"

// kindOf is g's kind.
func kindOf(g genotype.Genotype) (GenotypeKind, error) {
	switch g.(type) {
	case genotype.Arch:
		return KindLayers, nil
	case genotype.CellNet:
		return KindCellNet, nil
	case genotype.CellPair:
		return KindCells, nil
	}
	return "", fmt.Errorf("a %T genotype cannot be sent to workers (kinds: %s)", g, kindNames)
}

// parseGenotype reads a genotype's text by its kind.
func parseGenotype(kind GenotypeKind, text string) (genotype.Genotype, error) {
	switch kind {
	case KindLayers:
		return genotype.Parse(text)
	case KindCellNet:
		return genotype.ParseCellNet(text)
	case KindCells:
		return genotype.ParseCellPair(text)
	}
	return nil, fmt.Errorf("unknown genotype kind %q (valid: %s)", kind, kindNames)
}

// job is a search.Job on the wire. Everything that decides the training is
// in it, so that its hash (the job's key) names its result.
type job struct {
	Version  int          `json:"v"`
	Run      string       `json:"run"`
	Trial    int          `json:"trial"`
	Kind     GenotypeKind `json:"kind"`
	Genotype string       `json:"genotype"`
	Actions  []int        `json:"actions,omitempty"`
	Full     bool         `json:"full,omitempty"`
	Data     DataSpec     `json:"data"`
	Train    trainConfig  `json:"train"`
	// Init names the starting weights in the weights bucket.
	Init *tensors `json:"init,omitempty"`
}

// trainConfig is runtime.TrainConfig on the wire, less what is the
// worker's own (DeviceID, Progress) and the starting weights (job.Init).
type trainConfig struct {
	Epochs    int                `json:"epochs"`
	BatchSize int                `json:"batch_size"`
	LR        float64            `json:"lr"`
	Optimizer *optimizer         `json:"optimizer,omitempty"`
	Patience  int                `json:"patience"`
	Monitor   runtime.Monitor    `json:"monitor,omitempty"`
	Metric    runtime.Metric     `json:"metric,omitempty"`
	Sampling  runtime.Sampling   `json:"sampling,omitempty"`
	Schedule  runtime.LRSchedule `json:"schedule"`
	Seed      uint64             `json:"seed"`
	Device    runtime.Device     `json:"device"`
	Threads   int                `json:"threads"`
	Budget    runtime.Budget     `json:"budget"`
	// WeightInit and Centre: how fresh weights start.
	WeightInit onnxgen.InitScheme `json:"weight_init,omitempty"`
	Centre     bool               `json:"centre,omitempty"`
	Augment    runtime.Augment    `json:"augment"` // by name (Augment.MarshalText)
	Average    float64            `json:"average,omitempty"`
	// StopBelow: the search's stopping thresholds, per epoch.
	StopBelow []float64 `json:"stop_below,omitempty"`
}

// optimizer is an onnxgen.Optimizer on the wire: its name and settings.
type optimizer struct {
	Name     string  `json:"name"`
	Beta1    float32 `json:"beta1,omitempty"`
	Beta2    float32 `json:"beta2,omitempty"`
	Epsilon  float32 `json:"epsilon,omitempty"`
	Momentum float32 `json:"momentum,omitempty"`
	Nesterov bool    `json:"nesterov,omitempty"`
}

func optimizerOf(o onnxgen.Optimizer) (*optimizer, error) {
	switch o := o.(type) {
	case nil:
		return nil, nil
	case onnxgen.Adam:
		return &optimizer{Name: o.Name(), Beta1: o.Beta1, Beta2: o.Beta2, Epsilon: o.Epsilon}, nil
	case onnxgen.SGD:
		return &optimizer{Name: o.Name(), Momentum: o.Momentum, Nesterov: o.Nesterov}, nil
	}
	return nil, fmt.Errorf("the optimizer %s (%T) cannot be sent to workers (adam, sgd)", o.Name(), o)
}

func (o *optimizer) optimizer() (onnxgen.Optimizer, error) {
	switch {
	case o == nil:
		return nil, nil
	case o.Name == onnxgen.Adam{}.Name():
		return onnxgen.Adam{Beta1: o.Beta1, Beta2: o.Beta2, Epsilon: o.Epsilon}, nil
	case o.Name == onnxgen.SGD{}.Name():
		return onnxgen.SGD{Momentum: o.Momentum, Nesterov: o.Nesterov}, nil
	}
	return nil, fmt.Errorf("unknown optimizer %q (valid: adam, sgd)", o.Name)
}

// tensors names a list of float32 tensors in the weights bucket: their
// values one tensor after another, little-endian, and each one's length.
type tensors struct {
	Object string `json:"object"`
	Sizes  []int  `json:"sizes"`
}

// encodeTensors lays ts out as bytes (see tensors).
func encodeTensors(ts [][]float32) ([]byte, []int) {
	sizes := make([]int, len(ts))
	n := 0
	for i, t := range ts {
		sizes[i] = len(t)
		n += len(t)
	}
	b := make([]byte, 0, 4*n)
	for _, t := range ts {
		for _, v := range t {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b, sizes
}

// decodeTensors reads what encodeTensors wrote.
func decodeTensors(b []byte, sizes []int) ([][]float32, error) {
	n := 0
	for _, s := range sizes {
		n += s
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("weights: %d bytes for %d values", len(b), n)
	}
	ts := make([][]float32, len(sizes))
	for i, s := range sizes {
		ts[i] = make([]float32, s)
		for j := range ts[i] {
			ts[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b))
			b = b[4:]
		}
	}
	return ts, nil
}

// jobOf is the wire form of a search's job; the starting weights, if any,
// are named init (stored by the caller).
func jobOf(run string, data DataSpec, j search.Job, init *tensors) (*job, error) {
	kind, err := kindOf(j.Genotype)
	if err != nil {
		return nil, err
	}
	opt, err := optimizerOf(j.Config.Optimizer)
	if err != nil {
		return nil, err
	}
	c := j.Config
	return &job{Version: wireVersion, Run: run, Trial: j.Trial, Kind: kind, Genotype: j.Genotype.String(), Actions: j.Actions, Full: j.Full,
		Data: data, Init: init,
		Train: trainConfig{Epochs: c.Epochs, BatchSize: c.BatchSize, LR: c.LR, Optimizer: opt, Patience: c.Patience, Monitor: c.Monitor, Metric: c.Metric, Sampling: c.Sampling, Schedule: c.Schedule,
			Seed: c.Seed, Device: c.Device, Threads: c.Threads, Budget: c.Budget, WeightInit: c.WeightInit, Centre: c.Centre,
			Augment: c.Augment, Average: c.Average, StopBelow: c.StopBelow}}, nil
}

// encode returns the job's bytes and its key: the hex SHA-256 of the bytes,
// so that the same job always has the same key.
func (j *job) encode() ([]byte, string) {
	b, _ := json.Marshal(j) // plain data: cannot fail
	return b, jobKey(b)
}

// jobKey is the key of a job's bytes.
func jobKey(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// decodeJob reads a job, checking its version.
func decodeJob(b []byte) (*job, string, error) {
	var j job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, "", fmt.Errorf("reading a job: %w", err)
	}
	if j.Version != wireVersion {
		return nil, "", formatError(j.Version)
	}
	return &j, jobKey(b), nil
}

// formatError is a job of another format than this nasctl's: its driver
// runs another nasctl version. The job is not at fault, and a worker that
// took it would fail every job of that driver (Worker.handle).
type formatError int

func (f formatError) Error() string {
	return fmt.Sprintf("job format %d, this nasctl reads %d: run the same nasctl version on the driver and the workers", int(f), wireVersion)
}

// searchJob is the job as the local executor takes it, with the starting
// weights read already (init).
func (j *job) searchJob(init [][]float32) (search.Job, error) {
	g, err := parseGenotype(j.Kind, j.Genotype)
	if err != nil {
		return search.Job{}, fmt.Errorf("trial %d: %w", j.Trial, err)
	}
	opt, err := j.Train.Optimizer.optimizer()
	if err != nil {
		return search.Job{}, fmt.Errorf("trial %d: %w", j.Trial, err)
	}
	t := j.Train
	return search.Job{Trial: j.Trial, Genotype: g, Actions: j.Actions, Full: j.Full,
		Config: runtime.TrainConfig{Epochs: t.Epochs, BatchSize: t.BatchSize, LR: t.LR, Optimizer: opt, Patience: t.Patience, Monitor: t.Monitor, Metric: t.Metric, Sampling: t.Sampling,
			Schedule: t.Schedule, Seed: t.Seed, Device: t.Device, Threads: t.Threads, Budget: t.Budget, Init: init,
			WeightInit: t.WeightInit, Centre: t.Centre, Augment: t.Augment, Average: t.Average, StopBelow: t.StopBelow}}, nil
}

// describe names the job in logs: run, trial, phase.
func (j *job) describe() string {
	s := fmt.Sprintf("run %s trial %d", j.Run, j.Trial)
	if j.Full {
		s += " (final phase)"
	}
	return s
}

// result is a job's one result on the wire (the results bucket): a
// training's, a problem's score, or the failure of every delivery.
type result struct {
	Version int    `json:"v"`
	Worker  string `json:"worker,omitempty"`
	// Failed says that the job failed on every delivery, and the last
	// reason; nothing else is set then.
	Failed   string          `json:"failed,omitempty"`
	Training *runtime.Result `json:"training,omitempty"`
	Score    float64         `json:"score,omitempty"`
	// Weights name the training's best weights in the weights bucket.
	Weights *tensors `json:"weights,omitempty"`
}

// Keys in the results bucket.
func resultKey(key string) string { return "result." + key }
func errorKey(key string) string  { return "error." + key }

// A delivery's note under errorKey says why it failed or was handed back,
// after the delivery's number ("3 worker gpu-2: out of memory"). The
// driver gives it as the reason only when it is the last delivery's: a
// killed delivery leaves none, and an earlier one's would name the wrong
// worker and cause.
func noteOf(d *delivery, text string) []byte { return []byte(fmt.Sprintf("%d %s", d.n, text)) }

// readNote splits a note into its delivery's number and its text.
func readNote(b []byte) (uint64, string) {
	num, text, _ := strings.Cut(string(b), " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, string(b)
	}
	return n, text
}

// weightsName is where a worker stores a job's trained weights: the worker
// and a random part are in the name so that two deliveries of the same job
// finishing (one whose lease ran out, one that took it over), on workers
// of one name or two slots of one worker, neither overwrite nor delete
// each other's.
func weightsName(key, worker string) string {
	return "trained/" + key + "/" + safeName(worker) + "-" + rand.Text()[:12]
}

// initName is where the driver stores starting weights: by content, so
// that a job and its re-publication share them.
func initName(b []byte) string {
	sum := sha256.Sum256(b)
	return "init/" + hex.EncodeToString(sum[:])
}

// safeName keeps a worker's name to what object and log readers expect.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}

// trainConfigFields are the runtime.TrainConfig fields the wire form
// carries or leaves to the worker on purpose; a test checks the list against
// the struct, so that a field added there is not silently dropped here.
// Pause and Resume stay with the search: a remote retraining is not paused
// by a stop, it finishes.
var trainConfigFields = slices.Sorted(slices.Values([]string{
	"Epochs", "BatchSize", "LR", "Optimizer", "Patience", "Monitor", "Metric", "Sampling", "Schedule", "Seed", "Device", "DeviceID", "Threads", "Budget", "Init", "Progress",
	"WeightInit", "Centre", "Augment", "Average", "StopBelow", "Pause", "Resume"}))
