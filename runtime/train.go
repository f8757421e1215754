package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/onnxgen"
)

// Examples is a view of a dataset: the images listed in Indices.
type Examples struct {
	Pixels  []float32 // every image, one after another, each C*H*W values (NCHW)
	Labels  []int     // the class of every image
	Indices []int     // the images of the view
}

// Len is the number of images in the view.
func (e Examples) Len() int { return len(e.Indices) }

// MajorityShare is the share of the view's most frequent class among classes:
// the accuracy of a constant predictor that picks it.
func (e Examples) MajorityShare(classes int) float64 {
	if e.Len() == 0 {
		return 0
	}
	return float64(slices.Max(e.ClassCounts(classes))) / float64(e.Len())
}

// ClassCounts is the number of the view's images in each of classes.
func (e Examples) ClassCounts(classes int) []int {
	counts := make([]int, classes)
	for _, i := range e.Indices {
		counts[e.Labels[i]]++
	}
	return counts
}

// LRSchedule is Baker et al.'s learning-rate rule: when validation accuracy after
// the first epoch is no better than chance, multiply the learning rate by
// RestartFactor, draw fresh weights and start again (at most MaxRestarts
// times); once learning, multiply it by DecayFactor every DecayEvery epochs.
// Zero fields take Baker et al.'s values.
type LRSchedule struct {
	// Constant turns the rule off: the learning rate never changes.
	Constant bool
	// RestartFactor multiplies the learning rate at a restart. Zero: 0.4.
	RestartFactor float64
	// MaxRestarts is the most restarts. Zero: 5; negative: none.
	MaxRestarts int
	// DecayEvery is the period of the decay in epochs. Zero: 5.
	DecayEvery int
	// DecayFactor multiplies the learning rate every DecayEvery epochs. Zero: 0.2.
	DecayFactor float64
	// ChanceMargin: "no better than chance" means a validation accuracy at most
	// the majority-class share plus this. Zero: 0.01 (one point).
	ChanceMargin float64
	// GiveUpAfter stops a run whose last attempt (no restart left, or the
	// rule off) is still no better than chance after this many epochs: a
	// network that has not left the constant prediction by then rarely does
	// (docs/search-quality.md). The Result is marked AtChance. Zero: never.
	GiveUpAfter int
}

// DefaultChanceMargin is LRSchedule.ChanceMargin's default: a validation
// accuracy at most one point over the majority share is no better than
// chance.
const DefaultChanceMargin = 0.01

// AtChance reports whether a validation accuracy acc is no better than
// chance by the default margin, where majority is the validation split's
// majority share: what Result.AtChance marks, for results recorded without
// it.
func AtChance(acc, majority float64) bool { return acc <= majority+DefaultChanceMargin }

func (s LRSchedule) withDefaults() LRSchedule {
	s.RestartFactor = cmp.Or(s.RestartFactor, 0.4)
	s.MaxRestarts = cmp.Or(s.MaxRestarts, 5)
	s.DecayEvery = cmp.Or(s.DecayEvery, 5)
	s.DecayFactor = cmp.Or(s.DecayFactor, 0.2)
	s.ChanceMargin = cmp.Or(s.ChanceMargin, DefaultChanceMargin)
	return s
}

// Budget refuses architectures too costly to train, before anything is
// allocated. Zero fields mean no limit.
type Budget struct {
	// MaxActivationBytes bounds genotype.Net.ActivationBytes: the float32
	// activations of one image's forward pass, kept for the backward pass.
	// Training needs about BatchSize times this, and as much again for the
	// gradients.
	MaxActivationBytes int64 `yaml:"max_activation_bytes" json:"max_activation_bytes"`
	// MaxMACs bounds the multiply-accumulates of one image's forward pass.
	MaxMACs int64 `yaml:"max_macs" json:"max_macs"`
	// MaxMemory bounds the memory a training session holds (see
	// EstimateTraining and CheckMemory), in bytes. Zero: the memory the
	// training machine has available when training starts (when the first
	// of the trainings in flight in the process started); negative: no limit,
	// and no waiting for other trainings' memory either (see Train).
	MaxMemory int64 `yaml:"max_memory,omitempty" json:"max_memory,omitempty"`
}

// Check returns why net exceeds the budget, or "" when it does not.
func (b Budget) Check(net *genotype.Net) string {
	var why []string
	if b.MaxActivationBytes > 0 && net.ActivationBytes() > b.MaxActivationBytes {
		why = append(why, fmt.Sprintf("activation memory %d bytes per image exceeds the limit of %d", net.ActivationBytes(), b.MaxActivationBytes))
	}
	if b.MaxMACs > 0 && net.MACs() > b.MaxMACs {
		why = append(why, fmt.Sprintf("%d multiply-accumulates per image exceed the limit of %d", net.MACs(), b.MaxMACs))
	}
	if len(why) == 0 {
		return ""
	}
	s := why[0]
	for _, w := range why[1:] {
		s += "; " + w
	}
	return s
}

// TrainConfig configures Train. Zero fields take the study's settings.
type TrainConfig struct {
	// Epochs is the most epochs of one attempt (a restart begins a new
	// attempt). Zero: 15.
	Epochs int
	// BatchSize is the mini-batch size; the last batch of an epoch holds the
	// rest. Zero: 128.
	BatchSize int
	// LR is the initial learning rate. Zero: 1e-3.
	LR float64
	// Optimizer emits the update. Nil: Adam with beta1 0.5, beta2 0.999.
	Optimizer onnxgen.Optimizer
	// Patience stops training when the monitored quantity has not improved
	// for this many epochs; the best weights are restored in any case.
	// Zero: 6; negative: never stop early.
	Patience int
	// Monitor is what picks the best epoch and stops early. Zero value:
	// validation accuracy (Baker et al.); MonitorValLoss is the founding
	// study's choice for the cell networks.
	Monitor Monitor
	// Metric is what "validation accuracy" means everywhere in training:
	// the share of images right (the zero value) or MetricBalanced, the
	// mean of the classes' recalls, for classes of very different sizes.
	Metric Metric
	// Sampling is how an epoch orders the training images: a fresh shuffle
	// of them all (the zero value), or SamplingBalanced, every class drawn
	// equally often.
	Sampling Sampling
	// Schedule is the learning-rate rule. Zero value: Baker et al.'s.
	Schedule LRSchedule
	// WeightInit is how fresh weights are drawn. Zero value: Glorot's (the
	// study's); onnxgen.InitHe suits ReLU networks.
	WeightInit onnxgen.InitScheme
	// Centre starts the first weighted layer centred on the data: its biases
	// are minus its response to the training images' mean pixel, so that its
	// units are not all on or all off for every image (docs/search-quality.md,
	// "Constant predictors"). Fresh weights only (not Init).
	Centre bool
	// Augment flips, shifts and exposes the training images at random (see
	// Augment); zero value: none.
	Augment Augment
	// Average, when above zero, validates and keeps an exponential moving
	// average of the weights instead of the weights themselves: its time
	// constant is Average epochs (a decay of 1 - 1/(Average x steps per
	// epoch) per step). The steps, and the schedule's decisions (restarts,
	// giving up, StopBelow), follow the weights themselves; the best epoch
	// and early stopping follow the average. The average starts at the
	// starting weights, and again at every restart
	// (docs/search-quality.md, "Averaged weights in the final phase (tried,
	// not kept)"). The budget's memory estimate leaves out the average's
	// copy of the weights (small beside the activations).
	Average float64
	// Seed determines the initial weights, the shuffling, the dropout masks
	// and the augmentation's draws.
	Seed uint64
	// Device, DeviceID and Threads (intra-op threads; zero: ONNX Runtime's
	// default) select where the graphs run.
	Device   Device
	DeviceID int
	Threads  int
	// Budget refuses too costly architectures before any allocation.
	Budget Budget
	// Init, when set, are the starting weights (in onnxgen.Params order), for
	// instance to retrain a search's model for longer. Restarts then keep the
	// given weights out of it: they draw fresh ones from Seed.
	Init [][]float32
	// StopBelow[e-1], when above zero, stops an attempt after its epoch e if
	// its best validation accuracy so far is below it: the thresholds of a
	// stopping rule such as the search's median rule (docs/search-quality.md,
	// "Median stopping"). The Result keeps the best epoch and is marked
	// Pruned.
	StopBelow []float64
	// Progress, when set, is called after every epoch.
	Progress func(EpochRecord)
	// Pause, once closed, ends the training at the end of its epoch in
	// flight, unless that epoch ends it anyway: Train then returns
	// ErrPaused and a Result whose State is where the training stands.
	Pause <-chan struct{}
	// Resume, when set, goes on from a paused training's State instead of
	// starting: the same network, images and settings (Init aside) train
	// on as if never paused (docs/performance.md, "Pausing a retraining").
	Resume *TrainState
}

// WithDefaults returns c with every zero field replaced by its default (see
// the fields), the schedule's included.
func (c TrainConfig) WithDefaults() TrainConfig {
	c.Epochs = cmp.Or(c.Epochs, 15)
	c.BatchSize = cmp.Or(c.BatchSize, 128)
	c.LR = cmp.Or(c.LR, 1e-3)
	if c.Optimizer == nil {
		c.Optimizer = onnxgen.Adam{}
	}
	c.Patience = cmp.Or(c.Patience, 6)
	c.Schedule = c.Schedule.withDefaults()
	return c
}

// Recipes are named training settings over the zero TrainConfig (nasctl
// train --recipe): study is the founding study's (Glorot weights, Baker et
// al.'s rule: x0.2 every 5 epochs), which stalls small networks once the rate
// has decayed; default keeps the study's Adam and batch but a constant rate
// (restarts at chance kept), He weights and a first layer centred on the
// data (figures: docs/search-quality.md, "nasctl train").
var recipes = map[string]TrainConfig{
	"default": {Schedule: LRSchedule{DecayFactor: 1}, WeightInit: onnxgen.InitHe, Centre: true},
	"study":   {},
}

// RecipeNames lists the recipes, the default first.
func RecipeNames() []string { return []string{"default", "study"} }

// Recipe returns a named recipe; its error lists the valid names.
func Recipe(name string) (TrainConfig, error) {
	r, ok := recipes[name]
	if !ok {
		return TrainConfig{}, fmt.Errorf("unknown recipe %q (valid: %s)", name, strings.Join(RecipeNames(), ", "))
	}
	return r, nil
}

// Graph optimisation levels per graph kind, chosen by measurement (figures:
// docs/performance.md, "Graph optimisation levels"). Training graphs:
// "extended", as the layout changes of "all" need constant weights, which a
// training graph lacks (on the CPU, the NCHWc rewrite gives it those
// kernels, see blockConvs). Forward-only graphs: "all", whose NCHWc
// convolutions speed up batch-1 prediction; exported models load at it (the
// zero SessionOptions), and so does the evaluation graph of training.
const (
	TrainOptimization = OptExtended
	EvalOptimization  = OptAll
)

// EpochRecord is one epoch of training.
type EpochRecord struct {
	Attempt       int     `json:"attempt"` // 0 for the first attempt, then one per restart
	Epoch         int     `json:"epoch"`   // 1-based, within the attempt
	LR            float64 `json:"lr"`
	TrainLoss     float64 `json:"train_loss"`
	TrainAccuracy float64 `json:"train_accuracy"` // with dropout active
	ValLoss       float64 `json:"val_loss"`
	ValAccuracy   float64 `json:"val_accuracy"`
	Seconds       float64 `json:"seconds"`
}

// Monitor is the quantity that chooses a training's best epoch.
type Monitor uint8

// The monitored quantities.
const (
	MonitorValAccuracy Monitor = iota // highest validation accuracy; ties: lowest validation loss
	MonitorValLoss                    // lowest validation loss
)

var monitorNames = []string{"val_accuracy", "val_loss"}

// String returns "val_accuracy" or "val_loss".
func (m Monitor) String() string { return nameOf(monitorNames, m, "Monitor") }

// ParseMonitor parses a monitor's name; its error lists the valid ones.
func ParseMonitor(s string) (Monitor, error) { return parseName[Monitor](monitorNames, s, "monitor") }

// nameOf is v's word among names (by value), or "what(v)" for a value
// without one.
func nameOf[T ~uint8](names []string, v T, what string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", what, v)
}

// parseName is the value that names gives the word s; its error lists the
// valid words.
func parseName[T ~uint8](names []string, s, what string) (T, error) {
	if i := slices.Index(names, s); i >= 0 {
		return T(i), nil
	}
	return 0, fmt.Errorf("unknown %s %q (valid: %s)", what, s, strings.Join(names, ", "))
}

// better reports whether epoch e improves on the best epoch so far. Equal
// accuracies are ordered by loss: a few hundred validation images often
// reach the same accuracy at several epochs (docs/search-quality.md, "Ties").
func (m Monitor) better(e, best EpochRecord) bool {
	if m == MonitorValLoss {
		return e.ValLoss < best.ValLoss
	}
	return e.ValAccuracy > best.ValAccuracy || e.ValAccuracy == best.ValAccuracy && e.ValLoss < best.ValLoss
}

// Metric is how a validation is scored (TrainConfig.Metric).
type Metric uint8

// The metrics.
const (
	MetricAccuracy Metric = iota // the share of images right
	// MetricBalanced is the mean over the classes present of each class's
	// recall (its images right over its images): a constant predictor
	// scores 1/K of K classes, whatever their sizes.
	MetricBalanced
)

var metricNames = []string{"accuracy", "balanced_accuracy"}

// String returns "accuracy" or "balanced_accuracy".
func (m Metric) String() string { return nameOf(metricNames, m, "Metric") }

// ParseMetric parses a metric's name; its error lists the valid ones.
func ParseMetric(s string) (Metric, error) { return parseName[Metric](metricNames, s, "metric") }

// Chance is the score of the best constant predictor on ex: the majority
// share for accuracy, 1/K for balanced accuracy over the K classes ex has.
func (m Metric) Chance(ex Examples, classes int) float64 {
	if m != MetricBalanced {
		return ex.MajorityShare(classes)
	}
	present := 0
	for _, n := range ex.ClassCounts(classes) {
		if n > 0 {
			present++
		}
	}
	if present == 0 {
		return 0
	}
	return 1 / float64(present)
}

// Score is the metric of right answers per class out of images per class.
func (m Metric) Score(right, images []int) float64 {
	var r, n, recall float64
	present := 0
	for c := range images {
		r, n = r+float64(right[c]), n+float64(images[c])
		if images[c] > 0 {
			recall += float64(right[c]) / float64(images[c])
			present++
		}
	}
	switch {
	case present == 0:
		return 0
	case m == MetricBalanced:
		return recall / float64(present)
	}
	return r / n
}

// Sampling is how an epoch draws its training images (TrainConfig.Sampling).
type Sampling uint8

// The samplings.
const (
	SamplingShuffle Sampling = iota // every image once, in a fresh order
	// SamplingBalanced draws as many images as the training set holds,
	// each by a class chosen uniformly and then one of its images: a small
	// class is seen as often as a large one (its images repeated, the large
	// classes' partly left out in each epoch), as class weights in the
	// loss would weigh it, in expectation.
	SamplingBalanced
)

var samplingNames = []string{"shuffle", "balanced"}

// String returns "shuffle" or "balanced".
func (s Sampling) String() string { return nameOf(samplingNames, s, "Sampling") }

// ParseSampling parses a sampling's name; its error lists the valid ones.
func ParseSampling(s string) (Sampling, error) {
	return parseName[Sampling](samplingNames, s, "sampling")
}

// byClass lists the view's images of each class that has some.
func (e Examples) byClass() [][]int {
	var classes [][]int
	at := map[int]int{}
	for _, i := range e.Indices {
		c, ok := at[e.Labels[i]]
		if !ok {
			c = len(classes)
			at[e.Labels[i]] = c
			classes = append(classes, nil)
		}
		classes[c] = append(classes[c], i)
	}
	return classes
}

// drawBalanced fills order with images drawn by SamplingBalanced from
// classes (byClass's lists), with rng.
func drawBalanced(order []int, classes [][]int, rng *rand.Rand) {
	for i := range order {
		c := classes[rng.IntN(len(classes))]
		order[i] = c[rng.IntN(len(c))]
	}
}

// Status is how a training run ended.
type Status string

const (
	StatusOK       Status = "ok"       // trained; ValAccuracy is the reward
	StatusDiverged Status = "diverged" // a loss became NaN or infinite; reward 0
	StatusRefused  Status = "refused"  // over the budget, nothing was trained; reward 0
	// StatusInterrupted: the context was cancelled; the Result holds the
	// epochs finished and the best weights among them (if any).
	StatusInterrupted Status = "interrupted"
)

// Result is the outcome of Train.
type Result struct {
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"` // why it diverged or was refused
	Params int64  `json:"params"`
	MACs   int64  `json:"macs"`
	// ValAccuracy is the validation accuracy of the best epoch (by the
	// monitor; the reward), BestEpoch of the last attempt; the returned
	// weights are from there.
	ValAccuracy float64       `json:"val_accuracy"`
	BestEpoch   int           `json:"best_epoch"`
	Restarts    int           `json:"restarts"`
	Epochs      []EpochRecord `json:"epochs"`
	Seconds     float64       `json:"seconds"`
	// Waited is the seconds Train waited, before Seconds began, for other
	// trainings of this process to leave room in memory (zero: none).
	Waited float64 `json:"waited_seconds,omitempty"`
	// ImagesPerSecond is the training throughput of the steps alone (drawing
	// the dropout masks and running the graph, as MeasureTrainStep times them;
	// not loading batches or evaluating).
	ImagesPerSecond float64 `json:"images_per_second"`
	// AtChance marks a run whose best validation accuracy is no better than
	// chance (the schedule's ChanceMargin over the majority share): a
	// constant predictor, whatever the architecture could do.
	AtChance bool `json:"at_chance,omitempty"`
	// Pruned marks a run that TrainConfig.StopBelow stopped: its accuracy
	// is that of a shorter training.
	Pruned  bool        `json:"pruned,omitempty"`
	Weights [][]float32 `json:"-"` // best weights, onnxgen.Params order
	// State is where a paused training stands (TrainConfig.Pause), to go
	// on from with TrainConfig.Resume; nil otherwise.
	State *TrainState `json:"-"`
}

// Best returns the record of the best epoch (BestEpoch of the last
// attempt), and false when there is none.
func (r *Result) Best() (EpochRecord, bool) {
	for i := len(r.Epochs) - 1; i >= 0; i-- {
		if e := r.Epochs[i]; e.Epoch == r.BestEpoch && e.Attempt == r.Restarts {
			return e, true
		}
	}
	return EpochRecord{}, false
}

// Reward is the validation accuracy, or 0 when the run did not finish training.
func (r *Result) Reward() float64 {
	if r.Status != StatusOK {
		return 0
	}
	return r.ValAccuracy
}

// Train trains net on train, validating on val after every epoch, and returns
// the best weights. A NaN or infinite loss ends the run as StatusDiverged and an
// architecture over cfg.Budget as StatusRefused, both with a nil error; errors
// are for bad input and ONNX Runtime failures. When ctx is cancelled, Train
// returns ctx.Err() with a StatusInterrupted Result that keeps the finished
// epochs and their best weights, so that the caller may still save them.
// Trainings of one process that fit the machine alone but not side by side
// wait for each other (unless cfg.Budget.MaxMemory is negative): a
// cancellation during the wait returns StatusInterrupted with no epoch.
func Train(ctx context.Context, net *genotype.Net, train, val Examples, cfg TrainConfig) (*Result, error) {
	cfg = cfg.WithDefaults()
	res := &Result{Params: net.Params(), MACs: net.MACs()}
	if why := cfg.Budget.Check(net); why != "" {
		res.Status, res.Reason = StatusRefused, why
		return res, nil
	}
	if why := cfg.Budget.CheckMemory(net, cfg.BatchSize, cfg.Optimizer); why != "" {
		res.Status, res.Reason = StatusRefused, why
		return res, nil
	}
	if err := checkExamples(net, train, "training"); err != nil {
		return nil, err
	}
	if err := checkExamples(net, val, "validation"); err != nil {
		return nil, err
	}
	if err := cfg.Augment.Fits(net.Input.Height, net.Input.Width); err != nil {
		return nil, err
	}
	// Trainings side by side must fit the machine together (memoryGate);
	// the wait is not training time, so Seconds starts after it.
	wait := time.Now()
	need := trainingNeed(net, EstimateTraining(net, cfg.BatchSize, cfg.Optimizer))
	release, waited, err := trainings.acquire(ctx, cfg.Budget, need)
	if waited {
		res.Waited = time.Since(wait).Seconds()
	}
	if err != nil {
		res.Status = StatusInterrupted
		return res, err
	}
	defer release()
	start := time.Now()
	t, err := newTrainer(net, cfg)
	if err != nil {
		return nil, err
	}
	// Close and collect before the release: the tensors' elements are Go
	// slices, which the collector would keep until the heap doubled, beside
	// the training admitted next.
	defer func() {
		t.close()
		goruntime.GC()
	}()
	err = t.run(ctx, train, val, res)
	res.Seconds = time.Since(start).Seconds()
	if cfg.Resume != nil {
		res.Seconds += cfg.Resume.Seconds
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, ErrPaused) {
		res.Status = StatusInterrupted
		if res.State != nil {
			res.State.Seconds = res.Seconds
		}
		return res, err
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func checkExamples(net *genotype.Net, ex Examples, what string) error {
	if ex.Len() == 0 {
		return fmt.Errorf("the %s set is empty", what)
	}
	size := net.Input.Channels * net.Input.Height * net.Input.Width
	if len(ex.Pixels)%size != 0 || len(ex.Pixels)/size != len(ex.Labels) {
		return fmt.Errorf("%s set: %d pixel values and %d labels do not make images of %s", what, len(ex.Pixels), len(ex.Labels), net.Input)
	}
	for _, i := range ex.Indices {
		if i < 0 || i >= len(ex.Labels) {
			return fmt.Errorf("%s set: image index %d out of range [0, %d)", what, i, len(ex.Labels))
		}
		if l := ex.Labels[i]; l < 0 || l >= net.Classes {
			return fmt.Errorf("%s set: image %d has label %d, but the network has %d classes", what, i, l, net.Classes)
		}
	}
	return nil
}

// trainer holds the sessions and tensors of one training run.
type trainer struct {
	net   *genotype.Net
	cfg   TrainConfig
	tg    *onnxgen.TrainGraph
	train *Session
	eval  *Session
	// plain runs the training graph without NCHWc kernels, for a batch that
	// train cannot take (see Session.BatchMultiple); made when first needed.
	plain  *Session
	params [2][]*Tensor[float32] // ping-pong sets
	slots  [2][]*Tensor[float32] // ping-pong sets, param-major as in the graph
	cur    int                   // the set that holds the current values
	step   *Tensor[float32]
	lr     *Tensor[float32]
	loss   *Tensor[float32]
	right  *Tensor[float32]
	probs  map[int64]*Tensor[float32] // eval probabilities by batch size
	batch  map[int64][2]*Tensor[float32]
	masks  map[int64][]*Tensor[float32] // dropout masks by batch size
	owned  []*Tensor[float32]
	drop   *rand.Rand // draws the dropout masks
	flips  *rand.Rand // draws the training images' augmentations (cfg.Augment)
	// dropSrc and flipSrc are drop's and flips' sources, which a paused
	// training saves.
	dropSrc, flipSrc *rand.PCG
	units            int // logits per image: 1 for two classes, else K
	image            int // values per image
	// avg is the moving average of the weights (cfg.Average), nil when
	// off; decay is its factor per step.
	avg   []*Tensor[float32]
	decay float32
}

func newTrainer(net *genotype.Net, cfg TrainConfig) (*trainer, error) {
	return newTrainerWith(net, cfg, trainSession(cfg), onnxgen.Formulas{})
}

// trainSession returns the options of cfg's training session.
func trainSession(cfg TrainConfig) SessionOptions {
	return SessionOptions{Device: cfg.Device, DeviceID: cfg.DeviceID, IntraOpThreads: cfg.Threads, Optimization: TrainOptimization, NCHWc: true}
}

// newTrainerWith is newTrainer with the training session's options (sopts:
// device, threads, optimisation level, profile...) and gradient formulations
// given; the evaluation session takes sopts's device and threads.
func newTrainerWith(net *genotype.Net, cfg TrainConfig, sopts SessionOptions, formulas onnxgen.Formulas) (t *trainer, err error) {
	t = &trainer{net: net, cfg: cfg, probs: map[int64]*Tensor[float32]{}, batch: map[int64][2]*Tensor[float32]{},
		masks: map[int64][]*Tensor[float32]{}, dropSrc: rand.NewPCG(cfg.Seed, 0x64726f70), flipSrc: rand.NewPCG(cfg.Seed, 0x666c6970),
		units: net.Output().C, image: net.Input.Channels * net.Input.Height * net.Input.Width}
	t.drop, t.flips = rand.New(t.dropSrc), rand.New(t.flipSrc)
	defer func() {
		if err != nil {
			t.close()
			t = nil
		}
	}()
	// With NCHWc kernels, convolutions are cheap enough that the gradients
	// are convolutions too.
	formulas.DirectConv = sopts.NCHWc && sopts.Device == CPU && nchwcBlockSize() > 0
	t.tg, err = onnxgen.Training(net, onnxgen.TrainOptions{Optimizer: cfg.Optimizer, Formulas: formulas})
	if err != nil {
		return t, err
	}
	eg, err := onnxgen.Evaluation(net)
	if err != nil {
		return t, err
	}
	if t.train, err = NewSession(t.tg.Model, t.tg.Inputs, t.tg.Outputs, sopts); err != nil {
		return t, err
	}
	eopts := sopts
	eopts.Optimization = EvalOptimization
	eopts.ProfilePrefix = ""
	if t.eval, err = NewSession(eg.Model, eg.Inputs, eg.Outputs, eopts); err != nil {
		return t, err
	}
	for set := range 2 {
		for _, p := range t.tg.Params {
			x, err := t.zeros(p.Shape...)
			if err != nil {
				return t, err
			}
			t.params[set] = append(t.params[set], x)
			if set == 0 && cfg.Average > 0 {
				a, err := t.zeros(p.Shape...)
				if err != nil {
					return t, err
				}
				t.avg = append(t.avg, a)
			}
			for range t.tg.Slots {
				s, err := t.zeros(p.Shape...)
				if err != nil {
					return t, err
				}
				t.slots[set] = append(t.slots[set], s)
			}
		}
	}
	for _, x := range []**Tensor[float32]{&t.step, &t.lr, &t.loss, &t.right} {
		if *x, err = t.zeros(1); err != nil {
			return t, err
		}
	}
	return t, nil
}

func (t *trainer) zeros(shape ...int64) (*Tensor[float32], error) {
	x, err := NewZeroTensor[float32](shape...)
	if err == nil {
		t.owned = append(t.owned, x)
	}
	return x, err
}

func (t *trainer) close() {
	for _, x := range t.owned {
		x.Close()
	}
	if t.train != nil {
		t.train.Close()
	}
	if t.eval != nil {
		t.eval.Close()
	}
	if t.plain != nil {
		t.plain.Close()
	}
}

// batchTensors returns the image and label tensors for a batch of n images.
func (t *trainer) batchTensors(n int64) ([2]*Tensor[float32], error) {
	if b, ok := t.batch[n]; ok {
		return b, nil
	}
	in := t.net.Input
	x, err := t.zeros(n, int64(in.Channels), int64(in.Height), int64(in.Width))
	if err != nil {
		return [2]*Tensor[float32]{}, err
	}
	y, err := t.zeros(n, int64(t.units))
	if err != nil {
		return [2]*Tensor[float32]{}, err
	}
	t.batch[n] = [2]*Tensor[float32]{x, y}
	return t.batch[n], nil
}

// maskTensors returns the dropout keep-mask tensors for a batch of n images.
func (t *trainer) maskTensors(n int64) ([]*Tensor[float32], error) {
	if m, ok := t.masks[n]; ok {
		return m, nil
	}
	var ms []*Tensor[float32]
	for _, m := range t.tg.Masks {
		x, err := t.zeros(append([]int64{n}, m.Shape...)...)
		if err != nil {
			return nil, err
		}
		ms = append(ms, x)
	}
	t.masks[n] = ms
	return ms, nil
}

// drawMasks fills the dropout masks for the next step.
func (t *trainer) drawMasks(ms []*Tensor[float32]) {
	for i, m := range ms {
		drawMask(m.Data(), t.tg.Masks[i].Rate, t.drop.Uint64())
	}
}

// fill copies the images idx into the batch tensors.
func (t *trainer) fill(b [2]*Tensor[float32], ex Examples, idx []int) {
	x, y := b[0].Data(), b[1].Data()
	clear(y)
	for j, i := range idx {
		copy(x[j*t.image:(j+1)*t.image], ex.Pixels[i*t.image:(i+1)*t.image])
		if t.units == 1 {
			y[j] = float32(ex.Labels[i])
		} else {
			y[j*t.units+ex.Labels[i]] = 1
		}
	}
}

// setWeights writes w into the current parameter set and the average, and
// zeroes the slots.
func (t *trainer) setWeights(w [][]float32) {
	for i, p := range t.params[t.cur] {
		copy(p.Data(), w[i])
	}
	for i, a := range t.avg {
		copy(a.Data(), w[i])
	}
	for _, s := range t.slots[t.cur] {
		clear(s.Data())
	}
	t.step.Data()[0] = 0
}

// weights returns a copy of the weights that validate: the average when
// there is one, else the current set.
func (t *trainer) weights() [][]float32 { return copies(t.validated()) }

// validated is the parameter set that validation runs and the Result
// keeps: the average when there is one, else the current set.
func (t *trainer) validated() []*Tensor[float32] {
	if t.avg != nil {
		return t.avg
	}
	return t.params[t.cur]
}

// averageDecay is the per-step decay of an average over epochs epochs of
// steps steps each: 1 - 1/(epochs x steps), at least 0.
func averageDecay(epochs float64, steps int) float32 {
	return float32(max(0, 1-1/(epochs*float64(steps))))
}

// average moves the average towards the current weights by one step.
func (t *trainer) average() {
	d := t.decay
	for i, a := range t.avg {
		av, w := a.Data(), t.params[t.cur][i].Data()
		for j := range av {
			av[j] = d*av[j] + (1-d)*w[j]
		}
	}
}

// divergedError ends a run whose loss is not finite.
type divergedError struct {
	what string // "training" or "validation"
	loss float64
}

func (e *divergedError) Error() string { return fmt.Sprintf("%s loss became %v", e.what, e.loss) }

// runState is what one attempt of a run hands to the next.
type runState struct {
	src   *rand.PCG  // rng's source
	rng   *rand.Rand // draws the weights and shuffles
	order []int      // the training images, shuffled every epoch
	// classes are the training images of each class, for SamplingBalanced
	// (nil otherwise); drawn is the epoch's draw from them.
	classes [][]int
	drawn   []int
	lr      float64   // the current learning rate
	chance  float64   // validation score of the best constant predictor
	mean    []float64 // the training images' mean per channel, when centring
	// stepSeconds and stepImages count the training steps, timed as
	// MeasureTrainStep times a step: the dropout masks and the run.
	stepSeconds float64
	stepImages  int
}

// run trains attempt after attempt (a restart of Baker et al.'s schedule
// begins a new one) and records the outcome in res.
func (t *trainer) run(ctx context.Context, train, val Examples, res *Result) error {
	st := &runState{
		src:    rand.NewPCG(t.cfg.Seed, 0x6e6173637472),
		order:  append([]int(nil), train.Indices...),
		lr:     t.cfg.LR,
		chance: t.cfg.Metric.Chance(val, t.net.Classes),
	}
	st.rng = rand.New(st.src)
	if t.cfg.Sampling == SamplingBalanced {
		st.classes, st.drawn = train.byClass(), make([]int, train.Len())
	}
	if t.cfg.Centre {
		st.mean = channelMeans(train, t.net.Input.Channels)
	}
	if t.avg != nil {
		t.decay = averageDecay(t.cfg.Average, (train.Len()+t.cfg.BatchSize-1)/t.cfg.BatchSize)
	}
	first, resume := 0, t.cfg.Resume
	if resume != nil {
		if err := t.restore(resume, st, res, train); err != nil {
			return err
		}
		first = resume.Attempt
	} else if err := t.initialWeights(st); err != nil {
		return err
	}
	defer func() {
		if st.stepSeconds > 0 {
			res.ImagesPerSecond = float64(st.stepImages) / st.stepSeconds
		}
	}()
	for attempt := first; ; attempt++ {
		restart, err := t.attempt(ctx, train, val, res, st, attempt, resume)
		resume = nil // for the first attempt only
		if err != nil || !restart {
			return err
		}
		st.lr *= t.cfg.Schedule.RestartFactor
		t.setWeights(t.fresh(st))
	}
}

// fresh draws new weights from st.rng, centred when the configuration
// says so.
func (t *trainer) fresh(st *runState) [][]float32 {
	w := onnxgen.InitWith(t.tg.Params, t.cfg.WeightInit, st.rng)
	if st.mean != nil {
		centre(t.net, t.tg.Params, w, st.mean)
	}
	return w
}

// channelMeans returns the mean pixel value of each channel over ex's images.
func channelMeans(ex Examples, channels int) []float64 {
	size := len(ex.Pixels) / max(len(ex.Labels), 1)
	plane := size / channels
	sums := make([]float64, channels)
	for _, i := range ex.Indices {
		img := ex.Pixels[i*size : (i+1)*size]
		for c := range channels {
			var s float64
			for _, v := range img[c*plane : (c+1)*plane] {
				s += float64(v)
			}
			sums[c] += s
		}
	}
	for c := range sums {
		sums[c] /= float64(plane * max(ex.Len(), 1))
	}
	return sums
}

// centre sets the biases of the first weighted layer of w (in params order)
// to minus the layer's response to an input whose every value is its
// channel's mean: sum over the unit's weights of weight x mean. Pooling
// before the layer is taken as keeping the means.
func centre(net *genotype.Net, params []onnxgen.Param, w [][]float32, mean []float64) {
	first := slices.IndexFunc(params, func(p onnxgen.Param) bool { return !p.Bias && !p.Ones && !p.State })
	if first < 0 || first+1 >= len(params) || !params[first+1].Bias || params[first+1].Node != params[first].Node {
		return
	}
	nd := net.Nodes[params[first].Node]
	weights, bias := w[first], w[first+1]
	switch nd.Op {
	case genotype.OpConv: // [F, C/groups, kh, kw]
		f, cg := len(bias), nd.In.C/nd.Group()
		window := len(weights) / (f * cg)
		for u := range f {
			group := u / (f / nd.Group())
			var s float64
			for c := range cg {
				m := mean[min(group*cg+c, len(mean)-1)]
				for _, x := range weights[(u*cg+c)*window : (u*cg+c+1)*window] {
					s += float64(x) * m
				}
			}
			bias[u] = float32(-s)
		}
	case genotype.OpDense: // [in, units], in flattened NCHW
		units, plane := len(bias), max(nd.In.H*nd.In.W, 1)
		if nd.In.Flat {
			plane = len(weights) / units / len(mean)
		}
		for u := range units {
			var s float64
			for i := 0; i < len(weights)/units; i++ {
				s += float64(weights[i*units+u]) * mean[min(i/plane, len(mean)-1)]
			}
			bias[u] = float32(-s)
		}
	}
}

// initialWeights sets cfg.Init, or fresh weights when it is nil.
func (t *trainer) initialWeights(st *runState) error {
	w := t.cfg.Init
	if w == nil {
		t.setWeights(t.fresh(st))
		return nil
	}
	if len(w) != len(t.tg.Params) {
		return fmt.Errorf("initial weights: %d tensors for %d parameters", len(w), len(t.tg.Params))
	}
	for i, p := range t.tg.Params {
		if len(w[i]) != p.Size() {
			return fmt.Errorf("initial weights: %s has %d values, want %d", p.Name, len(w[i]), p.Size())
		}
	}
	t.setWeights(w)
	return nil
}

// attempt trains up to cfg.Epochs epochs from the current weights, keeping
// the best epoch's weights in res, and reports whether the schedule restarts
// (validation no better than chance after the first epoch). It sets
// res.Status unless it restarts or fails: StatusDiverged for a loss that is
// not finite, else StatusOK.
// A paused attempt goes on from resume (nil: it begins).
func (t *trainer) attempt(ctx context.Context, train, val Examples, res *Result, st *runState, attempt int, resume *TrainState) (restart bool, err error) {
	cfg, sched := t.cfg, t.cfg.Schedule
	res.Restarts = attempt
	// The best epoch of this attempt so far is kept in res, so that an
	// interruption still returns it.
	since, bestAcc := 0, 0.0 // bestAcc: the attempt's best validation accuracy so far, whatever Monitor picks
	var best EpochRecord
	first := 1
	if resume != nil {
		since, bestAcc, best, first = resume.Since, resume.BestAcc, resume.Best, resume.Epoch+1
	} else {
		res.ValAccuracy, res.BestEpoch, res.Weights = 0, 0, nil
	}
	for epoch := first; epoch <= cfg.Epochs; epoch++ {
		rec, raw, err := t.epoch(ctx, train, val, st)
		var d *divergedError
		if errors.As(err, &d) {
			res.Status = StatusDiverged
			res.Reason = fmt.Sprintf("%v in epoch %d of attempt %d (learning rate %.3g)", d, epoch, attempt+1, st.lr)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		rec.Attempt, rec.Epoch = attempt, epoch
		res.Epochs = append(res.Epochs, rec)
		if cfg.Progress != nil {
			cfg.Progress(rec)
		}
		// The schedule's decisions read the weights being trained: an
		// average still holds much of the starting weights early on.
		if epoch == 1 && !sched.Constant && attempt < sched.MaxRestarts && raw <= st.chance+sched.ChanceMargin {
			return true, nil
		}
		if res.Weights == nil || cfg.Monitor.better(rec, best) {
			best, res.ValAccuracy, res.BestEpoch, since = rec, rec.ValAccuracy, epoch, 0
			res.Weights = t.weights()
		} else if since++; cfg.Patience > 0 && since >= cfg.Patience {
			break
		}
		bestAcc = max(bestAcc, raw)
		if epoch == sched.GiveUpAfter && res.ValAccuracy <= st.chance+sched.ChanceMargin && (t.avg == nil || bestAcc <= st.chance+sched.ChanceMargin) {
			break
		}
		if epoch <= len(cfg.StopBelow) && bestAcc < cfg.StopBelow[epoch-1] {
			res.Pruned = true
			break
		}
		if !sched.Constant && epoch%sched.DecayEvery == 0 {
			st.lr *= sched.DecayFactor
			t.lr.Data()[0] = float32(st.lr)
		}
		if t.paused() && epoch < cfg.Epochs {
			res.State, err = t.snapshot(st, res, pausedAt{attempt: attempt, epoch: epoch, since: since, bestAcc: bestAcc, best: best})
			if err == nil {
				err = ErrPaused
			}
			return false, err
		}
	}
	res.Status = StatusOK
	res.AtChance = res.ValAccuracy <= st.chance+sched.ChanceMargin
	return false, nil
}

// epoch trains one epoch at st.lr and validates. raw is the validation
// accuracy of the weights being trained: the record's, unless an average is
// validated (then it costs a second validation). A loss that is not finite
// returns a *divergedError. The record's Attempt and Epoch are left to the
// caller.
func (t *trainer) epoch(ctx context.Context, train, val Examples, st *runState) (rec EpochRecord, raw float64, err error) {
	began := time.Now()
	loss, acc, err := t.trainEpoch(ctx, train, st)
	if err != nil {
		return rec, 0, err
	}
	vloss, vacc, err := t.evaluate(ctx, val, t.validated())
	if err != nil {
		return rec, 0, err
	}
	if math.IsNaN(vloss) || math.IsInf(vloss, 0) {
		return rec, 0, &divergedError{what: "validation", loss: vloss}
	}
	raw = vacc
	if t.avg != nil {
		if _, raw, err = t.evaluate(ctx, val, t.params[t.cur]); err != nil {
			return rec, 0, err
		}
	}
	return EpochRecord{LR: st.lr, TrainLoss: loss, TrainAccuracy: acc, ValLoss: vloss, ValAccuracy: vacc,
		Seconds: time.Since(began).Seconds()}, raw, nil
}

// trainEpoch shuffles st.order (or draws the epoch's images class by class,
// SamplingBalanced) and takes one training step per batch of it,
// returning the mean loss and the accuracy (dropout active) over the epoch.
// A loss that is not finite stops it with a *divergedError.
func (t *trainer) trainEpoch(ctx context.Context, train Examples, st *runState) (loss, acc float64, err error) {
	order := st.order
	if st.classes != nil {
		order = st.drawn
		drawBalanced(order, st.classes, st.rng)
	} else {
		st.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	t.lr.Data()[0] = float32(st.lr)
	var lossSum, right float64
	for lo := 0; lo < len(order); lo += t.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		idx := order[lo:min(lo+t.cfg.BatchSize, len(order))]
		b, err := t.batchTensors(int64(len(idx)))
		if err != nil {
			return 0, 0, err
		}
		t.fill(b, train, idx)
		in := t.net.Input
		t.cfg.Augment.apply(b[0].Data(), len(idx), in.Channels, in.Height, in.Width, t.flips)
		ms, err := t.maskTensors(int64(len(idx)))
		if err != nil {
			return 0, 0, err
		}
		s := time.Now()
		t.drawMasks(ms)
		t.step.Data()[0]++
		if err := t.trainStep(b, ms); err != nil {
			return 0, 0, err
		}
		st.stepSeconds += time.Since(s).Seconds()
		st.stepImages += len(idx)
		t.average() // not timed: the throughput is the step's, as MeasureTrainStep's
		l := float64(t.loss.Data()[0])
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return 0, 0, &divergedError{what: "training", loss: l}
		}
		lossSum += l * float64(len(idx))
		right += float64(t.right.Data()[0])
	}
	return lossSum / float64(len(order)), right / float64(len(order)), nil
}

// trainStep runs one optimizer step on batch b, from the current set into the
// other one, and makes that one current.
func (t *trainer) trainStep(b [2]*Tensor[float32], masks []*Tensor[float32]) error {
	next := 1 - t.cur
	in := make([]Value, 0, len(t.tg.Inputs))
	in = append(in, b[0], b[1], t.step, t.lr)
	for _, p := range t.params[t.cur] {
		in = append(in, p)
	}
	for _, s := range t.slots[t.cur] {
		in = append(in, s)
	}
	for _, m := range masks {
		in = append(in, m)
	}
	out := make([]Value, 0, len(t.tg.Outputs))
	out = append(out, t.loss, t.right)
	for _, p := range t.params[next] {
		out = append(out, p)
	}
	for _, s := range t.slots[next] {
		out = append(out, s)
	}
	sess := t.train
	if n := b[0].Shape()[0]; n%sess.BatchMultiple() != 0 {
		if t.plain == nil {
			opts := sess.Options()
			opts.NCHWc, opts.ProfilePrefix = false, ""
			p, err := NewSession(t.tg.Model, t.tg.Inputs, t.tg.Outputs, opts)
			if err != nil {
				return fmt.Errorf("training step on %d images: %w", n, err)
			}
			t.plain = p
		}
		sess = t.plain
	}
	if err := sess.Run(in, out); err != nil {
		return fmt.Errorf("training step: %w", err)
	}
	t.cur = next
	return nil
}

// evaluate returns the mean loss and the score (TrainConfig.Metric) of the
// weights params on ex. A prediction is the most probable class, ties to
// the lower index, as Model.Evaluate has it.
func (t *trainer) evaluate(ctx context.Context, ex Examples, params []*Tensor[float32]) (loss, acc float64, err error) {
	var lossSum, right float64
	var byClass, images []int // right answers and images per class, for a balanced score
	if t.cfg.Metric == MetricBalanced {
		byClass, images = make([]int, t.net.Classes), make([]int, t.net.Classes)
	}
	for lo := 0; lo < ex.Len(); lo += t.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		idx := ex.Indices[lo:min(lo+t.cfg.BatchSize, ex.Len())]
		n := int64(len(idx))
		b, err := t.batchTensors(n)
		if err != nil {
			return 0, 0, err
		}
		t.fill(b, ex, idx)
		probs, ok := t.probs[n]
		if !ok {
			if probs, err = t.zeros(n, int64(t.net.Classes)); err != nil {
				return 0, 0, err
			}
			t.probs[n] = probs
		}
		in := []Value{b[0], b[1]}
		for _, p := range params {
			in = append(in, p)
		}
		if err := t.eval.Run(in, []Value{t.loss, t.right, probs}); err != nil {
			return 0, 0, fmt.Errorf("evaluation: %w", err)
		}
		lossSum += float64(t.loss.Data()[0]) * float64(n)
		right += float64(t.right.Data()[0])
		if byClass != nil {
			k := t.net.Classes
			p := probs.Data()
			for j, i := range idx {
				images[ex.Labels[i]]++
				if argmax(p[j*k:(j+1)*k]) == ex.Labels[i] {
					byClass[ex.Labels[i]]++
				}
			}
		}
	}
	if byClass != nil {
		return lossSum / float64(ex.Len()), t.cfg.Metric.Score(byClass, images), nil
	}
	return lossSum / float64(ex.Len()), right / float64(ex.Len()), nil
}
