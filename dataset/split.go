package dataset

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
)

// SplitPlan says how to divide a dataset into training, validation and test
// sets. The images are shuffled with a seed, a leading share is kept, the test
// set is taken from the front of what is kept and the rest is divided into
// training then validation. Sizes follow the study's arithmetic (scikit-learn's
// train_test_split rounds the test set up; Keras' validation_split and the
// study's int(0.89*n) round the training set down):
//
//	kept  = floor(Fraction * n)
//	test  = ceil(TestShare * kept)
//	train = floor((1 - ValShare) * (kept - test))
//	val   = kept - test - train
//
// The shuffle is nasctl's own (PCG seeded with the seed), not NumPy's, so the
// sets have the study's sizes but not its members.
type SplitPlan struct {
	// Fraction is the share of the images kept, in (0, 1]. Zero means 1: keep
	// everything.
	Fraction float64
	// TestShare is the share of the kept images held out for testing, in [0, 1).
	// Zero means no test set.
	TestShare float64
	// ValShare is the share of the remaining (train+validation) images used for
	// validation, in [0, 1). Zero means no validation set.
	ValShare float64
	// Stratified splits each class apart by the arithmetic above, so that
	// every class keeps its share of the images in each set (up to the
	// rounding, class by class), and then shuffles each set. Without it a
	// small class may miss a set altogether.
	Stratified bool
}

// The study's plans.
var (
	// SplitMetaQNN: all images, 30% test, validation = 20% of the rest
	// (4,000 images: 2,240 train, 560 validation, 1,200 test).
	SplitMetaQNN = SplitPlan{Fraction: 1, TestShare: 0.3, ValShare: 0.2}
	// SplitNASNetSearch: keep 20% of the images, then 70/30, then 89% train and
	// 11% validation (4,000 images: 498 train, 62 validation, 240 test).
	SplitNASNetSearch = SplitPlan{Fraction: 0.2, TestShare: 0.3, ValShare: 0.11}
	// SplitNASNet: the study's final retraining of the NASNet search, on all
	// images: 70/30, then 89% train and 11% validation (4,000 images: 2,492
	// train, 308 validation, 1,200 test). A search that keeps a fifth of its
	// training split for the trials trains them on 498 images, as the
	// study's search does.
	SplitNASNet = SplitPlan{Fraction: 1, TestShare: 0.3, ValShare: 0.11}
)

// splitPlans names the presets for ParseSplitPlan: the study's, and each
// of them stratified under its name and stratifiedSuffix.
var splitPlans = map[string]SplitPlan{
	"metaqnn":       SplitMetaQNN,
	"nasnet":        SplitNASNet,
	"nasnet-search": SplitNASNetSearch,
}

// stratifiedSuffix names a plan's stratified form ("metaqnn-stratified").
const stratifiedSuffix = "-stratified"

func init() {
	for name, p := range maps.Clone(splitPlans) {
		p.Stratified = true
		splitPlans[name+stratifiedSuffix] = p
	}
}

// SplitPlanNames returns the names ParseSplitPlan accepts, sorted.
func SplitPlanNames() []string {
	names := make([]string, 0, len(splitPlans))
	for n := range splitPlans {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ParseSplitPlan returns the preset called name ("metaqnn", "nasnet-search").
func ParseSplitPlan(name string) (SplitPlan, error) {
	p, ok := splitPlans[name]
	if !ok {
		return SplitPlan{}, fmt.Errorf("unknown split plan %q (valid: %s)", name, strings.Join(SplitPlanNames(), ", "))
	}
	return p, nil
}

// Validate reports every field of p out of range, or nil.
func (p SplitPlan) Validate() error {
	var errs []error
	if !(p.Fraction >= 0 && p.Fraction <= 1) {
		errs = append(errs, fmt.Errorf("fraction: must be in (0, 1], got %v", p.Fraction))
	}
	if !(p.TestShare >= 0 && p.TestShare < 1) {
		errs = append(errs, fmt.Errorf("test share: must be in [0, 1), got %v", p.TestShare))
	}
	if !(p.ValShare >= 0 && p.ValShare < 1) {
		errs = append(errs, fmt.Errorf("validation share: must be in [0, 1), got %v", p.ValShare))
	}
	return errors.Join(errs...)
}

// Split holds image indices of each set. The sets are disjoint; images left
// out by SplitPlan.Fraction are in none.
type Split struct {
	Train, Val, Test []int
}

// Apply splits the indices 0..n-1 according to p, shuffled with seed.
func (p SplitPlan) Apply(n int, seed uint64) (Split, error) {
	if err := p.Validate(); err != nil {
		return Split{}, err
	}
	if n < 0 {
		return Split{}, fmt.Errorf("split: negative image count %d", n)
	}
	return p.cut(rand.New(rand.NewPCG(seed, 0x5eed5b117)).Perm(n)), nil
}

// cut divides the shuffled indices perm into the sets by p's arithmetic.
func (p SplitPlan) cut(perm []int) Split {
	kept := int(math.Floor(cmp.Or(p.Fraction, 1) * float64(len(perm))))
	test := int(math.Ceil(p.TestShare * float64(kept)))
	train := int(math.Floor((1 - p.ValShare) * float64(kept-test)))
	return Split{
		Test:  perm[:test:test],
		Train: perm[test : test+train : test+train],
		Val:   perm[test+train : kept : kept],
	}
}

// applyStratified splits the images of each label apart (labels[i] is
// image i's), each class shuffled with a stream of its own, and shuffles
// each set of the union.
func (p SplitPlan) applyStratified(labels []int, seed uint64) (Split, error) {
	if err := p.Validate(); err != nil {
		return Split{}, err
	}
	byLabel := map[int][]int{}
	for i, l := range labels {
		byLabel[l] = append(byLabel[l], i)
	}
	s := Split{Train: []int{}, Val: []int{}, Test: []int{}} // empty, not nil: ClassCounts(nil) counts every image
	for _, l := range slices.Sorted(maps.Keys(byLabel)) {
		idx := byLabel[l]
		rng := rand.New(rand.NewPCG(seed, 0x5eed5b117+uint64(l)+1))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		part := p.cut(idx)
		s.Train, s.Val, s.Test = append(s.Train, part.Train...), append(s.Val, part.Val...), append(s.Test, part.Test...)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed5b117))
	for _, set := range [][]int{s.Train, s.Val, s.Test} {
		rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
	}
	return s, nil
}

// Split splits the images of d according to plan, shuffled with seed; see
// SplitPlan.
func (d *Dataset) Split(plan SplitPlan, seed uint64) (Split, error) {
	if plan.Stratified {
		return plan.applyStratified(d.Labels, seed)
	}
	return plan.Apply(d.Len(), seed)
}

// SplitWarnings are what a command that reads d split by s (with the plan
// named plan) warns of: what reading changed of the images (ReadNotes),
// the classes it leaves out of a set (Gaps, with the plan's stratified
// form as advice), the copies across classes or sets (CopyWarnings) and
// classes far apart in size (Imbalance), unless
// balanced says that the models train on every class equally often and
// are ranked by balanced accuracy, which a rare class missed brings down.
func (d *Dataset) SplitWarnings(s Split, plan string, balanced bool) []string {
	ws := append(d.ReadNotes(), WithStratifyAdvice(d.Gaps(s), plan)...)
	ws = append(ws, d.CopyWarnings(s)...)
	if w := d.Imbalance(s); w != "" && !balanced {
		ws = append(ws, w)
	}
	return ws
}

// imbalanceRatio is how many times the smallest class the largest class of
// a training split must hold for Imbalance to name it.
const imbalanceRatio = 3

// Imbalance says, when the largest class of the split's training images
// holds at least imbalanceRatio times as many images as the smallest, that
// accuracy can hide a rare class; "" otherwise (and for classes without
// training images, which Gaps names). Accuracy is what searches reward and
// pick by: a model that answers the large class alone scores its share.
func (d *Dataset) Imbalance(s Split) string {
	if len(s.Train) == 0 || len(d.Classes) < 2 {
		return ""
	}
	counts := d.ClassCounts(s.Train)
	lo, hi := slices.Min(counts), slices.Max(counts)
	if lo == 0 || hi < imbalanceRatio*lo {
		return ""
	}
	parts := make([]string, len(counts))
	for c, n := range counts {
		parts[c] = fmt.Sprintf("%s %d", d.Classes[c], n)
	}
	rare := d.Classes[slices.Index(counts, lo)]
	return fmt.Sprintf("the classes are imbalanced in the training split (%s: the largest %.1f times the smallest): accuracy, by which training and searches rank models, "+
		"can stay high for a model that misses %s; draw every class equally often and rank by balanced accuracy instead "+
		"(--sampling balanced --metric balanced_accuracy of nasctl train and search), "+
		"check each class's recall (nasctl eval's confusion matrix, the final table of a search's report.md), "+
		"or add images of the rarer classes", strings.Join(parts, ", "), float64(hi)/float64(lo), rare)
}

// Gaps names the classes of d that the split s leaves without training,
// validation or test images (a split that is not stratified, or a class
// too small for its shares, may miss a set), where an accuracy measured
// says nothing of that class. Nil when every class is in every set.
func (d *Dataset) Gaps(s Split) []string {
	var sets [3][]int
	for i, idx := range [][]int{s.Train, s.Val, s.Test} {
		sets[i] = make([]int, len(d.Classes))
		if idx != nil { // ClassCounts(nil) counts every image
			sets[i] = d.ClassCounts(idx)
		}
	}
	var gaps []string
	for c, name := range d.Classes {
		var missing []string
		for i, what := range []string{"training", "validation", "test"} {
			if sets[i][c] == 0 {
				missing = append(missing, what)
			}
		}
		if len(missing) > 0 {
			gaps = append(gaps, fmt.Sprintf("class %q has no %s images (%d training, %d validation, %d test): add images of it, or expect no measure of it there",
				name, strings.Join(missing, " or "), sets[0][c], sets[1][c], sets[2][c]))
		}
	}
	return gaps
}

// CopyWarnings names the files whose bytes repeat (Copies) where it
// matters: in two classes, where all but one are labelled wrong, or in two
// sets of split s, where a held-out image is measured as unseen though a
// copy of it is trained on, or measured twice. Each group of identical files
// is counted once; copies within one class and set only weigh that image
// more, and are not named.
func (d *Dataset) CopyWarnings(s Split) []string {
	sets := [...]string{"", "training", "validation", "test"} // 0: in no set
	setOf := make([]int, d.Len())
	for k, idx := range [][]int{s.Train, s.Val, s.Test} {
		for _, i := range idx {
			setOf[i] = k + 1
		}
	}
	groups := map[int][]int{} // first file -> the group, first included
	var firsts []int
	for _, c := range d.Copies {
		if groups[c[0]] == nil {
			groups[c[0]] = []int{c[0]}
			firsts = append(firsts, c[0])
		}
		groups[c[0]] = append(groups[c[0]], c[1])
	}
	slices.Sort(firsts) // the groups in the order of their first file
	var nClass, nSet int
	var classPair, setPair [2]int
	for _, f := range firsts {
		g := groups[f]
		if i := slices.IndexFunc(g, func(i int) bool { return d.Labels[i] != d.Labels[f] }); i > 0 {
			if nClass++; nClass == 1 {
				classPair = [2]int{f, g[i]}
			}
		}
		// A member in the earliest set (training first), and one in another.
		a := -1
		for _, i := range g {
			if setOf[i] > 0 && (a < 0 || setOf[i] < setOf[a]) {
				a = i
			}
		}
		if b := slices.IndexFunc(g, func(i int) bool { return a >= 0 && setOf[i] > 0 && setOf[i] != setOf[a] }); b >= 0 {
			if nSet++; nSet == 1 {
				setPair = [2]int{a, g[b]}
			}
		}
	}
	file := func(i int) string { return filepath.Join(d.Dir, filepath.FromSlash(d.Files[i])) }
	var out []string
	if nClass > 0 {
		a, b := classPair[0], classPair[1]
		out = append(out, fmt.Sprintf("%d group(s) of byte-for-byte copies span two classes (first: %s, class %q, and %s, class %q): all but one of each group are labelled wrong; remove them",
			nClass, file(a), d.Classes[d.Labels[a]], file(b), d.Classes[d.Labels[b]]))
	}
	if nSet > 0 {
		a, b := setPair[0], setPair[1]
		out = append(out, fmt.Sprintf("%d group(s) of byte-for-byte copies span two sets of the split (first: %s, %s, and %s, %s): a held-out copy of a training image is not unseen, and one in validation and test is measured twice; remove the copies",
			nSet, file(a), sets[setOf[a]], file(b), sets[setOf[b]]))
	}
	return out
}

// WithStratifyAdvice returns gaps (Gaps of a split by the plan of that
// name) with, when there are gaps and the plan is not stratified, a last
// line that names the plan's stratified form, which gives every class its
// share of each split as far as its images allow.
func WithStratifyAdvice(gaps []string, plan string) []string {
	if len(gaps) == 0 || strings.HasSuffix(plan, stratifiedSuffix) {
		return gaps
	}
	return append(gaps, fmt.Sprintf("the split plan %s%s (--plan) gives every class its share of each split, as far as its images allow", plan, stratifiedSuffix))
}
