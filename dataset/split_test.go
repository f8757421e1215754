package dataset

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSplitSizes(t *testing.T) {
	// Sizes by the formulas of SplitPlan, worked by hand:
	//   MetaQNN, 4000: test ceil(0.3*4000) = 1200, train floor(0.8*2800) = 2240,
	//   val 560 (the study's 50.535% "majority class" accuracy is 283/560).
	//   NASNet search, 4000: kept 800, test 240, train floor(0.89*560) = 498, val 62.
	//   MetaQNN, 101: test ceil(30.3) = 31, train floor(0.8*70) = 56, val 14.
	cases := []struct {
		plan                SplitPlan
		n, train, val, test int
	}{
		{SplitMetaQNN, 4000, 2240, 560, 1200},
		{SplitNASNetSearch, 4000, 498, 62, 240},
		{SplitNASNet, 4000, 2492, 308, 1200},
		{SplitMetaQNN, 101, 56, 14, 31},
		{SplitPlan{}, 10, 10, 0, 0},              // zero plan: everything trains
		{SplitPlan{Fraction: 0.5}, 7, 3, 0, 0},   // floor(3.5)
		{SplitPlan{TestShare: 0.5}, 0, 0, 0, 0},  // empty dataset
		{SplitPlan{ValShare: 0.25}, 8, 6, 2, 0},  // no test set
		{SplitPlan{TestShare: 0.01}, 3, 2, 0, 1}, // ceil: a test set as soon as the share is positive
		{SplitPlan{Fraction: 1, ValShare: 0.99}, 5, 0, 5, 0},
	}
	for _, c := range cases {
		s, err := c.plan.Apply(c.n, 1)
		if err != nil {
			t.Fatalf("%+v: %v", c.plan, err)
		}
		if len(s.Train) != c.train || len(s.Val) != c.val || len(s.Test) != c.test {
			t.Errorf("%+v on %d: %d/%d/%d, want %d/%d/%d", c.plan, c.n,
				len(s.Train), len(s.Val), len(s.Test), c.train, c.val, c.test)
		}
		// Disjoint, and within range.
		all := slices.Concat(s.Train, s.Val, s.Test)
		slices.Sort(all)
		if len(slices.Compact(slices.Clone(all))) != len(all) || (len(all) > 0 && (all[0] < 0 || all[len(all)-1] >= c.n)) {
			t.Errorf("%+v on %d: overlapping or out-of-range indices", c.plan, c.n)
		}
	}
}

func TestSplitDeterministic(t *testing.T) {
	a, _ := SplitMetaQNN.Apply(500, 7)
	b, _ := SplitMetaQNN.Apply(500, 7)
	c, _ := SplitMetaQNN.Apply(500, 8)
	if !slices.Equal(a.Train, b.Train) || !slices.Equal(a.Val, b.Val) || !slices.Equal(a.Test, b.Test) {
		t.Error("same seed, different split")
	}
	if slices.Equal(a.Test, c.Test) {
		t.Error("seeds 7 and 8 give the same test set")
	}
	// Shuffled: the test set is not simply the first images.
	if slices.IsSorted(a.Test) {
		t.Error("test indices are sorted: not shuffled")
	}
	d := &Dataset{Classes: []string{"a", "b"}, Labels: make([]int, 500)}
	e, err := d.Split(SplitMetaQNN, 7)
	if err != nil || !slices.Equal(e.Test, a.Test) {
		t.Errorf("Dataset.Split differs from SplitPlan.Apply (err %v)", err)
	}
}

func TestSplitPlanValidate(t *testing.T) {
	err := SplitPlan{Fraction: 1.5, TestShare: 1, ValShare: -0.1}.Validate()
	for _, want := range []string{"fraction", "test share", "validation share"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
	if _, err := (SplitPlan{TestShare: 2}).Apply(10, 1); err == nil {
		t.Error("Apply accepted test share 2")
	}
}

func TestParseSplitPlan(t *testing.T) {
	if p, err := ParseSplitPlan("nasnet-search"); err != nil || p != SplitNASNetSearch {
		t.Errorf("nasnet-search: %+v, %v", p, err)
	}
	_, err := ParseSplitPlan("bogus")
	if err == nil || !strings.Contains(err.Error(), "valid: metaqnn, metaqnn-stratified, nasnet, nasnet-search, nasnet-search-stratified, nasnet-stratified") {
		t.Errorf("bogus: %v", err)
	}
	if p, err := ParseSplitPlan("metaqnn-stratified"); err != nil || p != (SplitPlan{Fraction: 1, TestShare: 0.3, ValShare: 0.2, Stratified: true}) {
		t.Errorf("metaqnn-stratified: %+v, %v", p, err)
	}
}

// A stratified split divides each class by the plan's arithmetic, worked
// out here by hand: 90, 10 and 4 images under the metaqnn plan give test
// ceil(0.3 n), training floor(0.8 (n - test)), validation the rest. The
// sets cover every image once, mix the classes, and follow the seed.
func TestStratifiedSplit(t *testing.T) {
	var labels []int
	for l, n := range []int{90, 10, 4} {
		for range n {
			labels = append(labels, l)
		}
	}
	d := &Dataset{Classes: []string{"a", "b", "c"}, Labels: labels}
	plan, err := ParseSplitPlan("metaqnn-stratified")
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Split(plan, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"train": {50, 5, 1}, "val": {13, 2, 1}, "test": {27, 3, 2}}
	seen := make([]int, len(labels))
	for name, set := range map[string][]int{"train": s.Train, "val": s.Val, "test": s.Test} {
		if got := d.ClassCounts(set); !slices.Equal(got, want[name]) {
			t.Errorf("%s: %v images per class, want %v", name, got, want[name])
		}
		for _, i := range set {
			seen[i]++
		}
	}
	if slices.ContainsFunc(seen, func(n int) bool { return n != 1 }) {
		t.Errorf("an image in no set or in two: %v", seen)
	}
	var trainLabels []int
	for _, i := range s.Train {
		trainLabels = append(trainLabels, labels[i])
	}
	if slices.IsSorted(trainLabels) {
		t.Errorf("the training set is in class order: %v", trainLabels)
	}
	// Classes too small for a set leave it empty, not nil, which
	// ClassCounts would read as every image.
	two := &Dataset{Classes: []string{"a", "b"}, Labels: []int{0, 0, 1, 1}}
	if s, err := two.Split(plan, 1); err != nil || s.Train == nil || len(s.Train) != 0 || !slices.Equal(two.ClassCounts(s.Train), []int{0, 0}) {
		t.Errorf("two classes of 2 images: training set %#v (%v), want empty", s.Train, err)
	}
	again, _ := d.Split(plan, 7)
	other, _ := d.Split(plan, 8)
	if !reflect.DeepEqual(again, s) || reflect.DeepEqual(other, s) {
		t.Error("the split does not follow its seed")
	}
}

// Labels follow the model's classes: unchanged in the same order,
// renumbered in another or for a subset of the model's classes, and an
// error naming both lists and the class the model lacks otherwise.
func TestModelLabels(t *testing.T) {
	labels := []int{0, 1, 1, 2}
	data := []string{"a", "b", "c"}
	cases := []struct {
		model []string
		want  []int
	}{
		{[]string{"a", "b", "c"}, labels},
		{[]string{"c", "a", "b"}, []int{1, 2, 2, 0}},
		{[]string{"a", "b", "c", "d"}, labels}, // field data without class d
		{[]string{"d", "c", "x", "b", "a"}, []int{4, 3, 3, 1}},
	}
	for _, c := range cases {
		got, err := ModelLabels("d", data, labels, "m", c.model, "todo")
		if err != nil || !slices.Equal(got, c.want) || !slices.Equal(labels, []int{0, 1, 1, 2}) {
			t.Errorf("model classes %v: %v, %v (labels %v); want %v", c.model, got, err, labels, c.want)
		}
	}
	for _, model := range [][]string{{"a", "b"}, {"a", "b", "x"}, {"a", "b", "x", "y"}} {
		want := "d has the classes a, b, c, the model m " + strings.Join(model, ", ") + `; the model has no class "c"; todo`
		if _, err := ModelLabels("d", data, labels, "m", model, "todo"); err == nil || err.Error() != want {
			t.Errorf("model classes %v: %v, want %q", model, err, want)
		}
	}
	_, err := ModelLabels("d", []string{"a", "p", "q"}, labels, "m", []string{"a", "b"}, "todo")
	if err == nil || !strings.Contains(err.Error(), `the model has no class "p" or "q"; todo`) {
		t.Errorf("two unknown classes: %v", err)
	}
}

// Class names in Unicode NFD, as macOS writes folder names, match the same
// names in NFC and the other way round; a name present in both forms maps
// to itself. NFD "çherry" (c + U+0327) sorts before "date", NFC
// (U+00E7) after it, so the labels are renumbered.
func TestModelLabelsUnicodeForms(t *testing.T) {
	const nfc, nfd = "\u00e7herry \u00fc", "c\u0327herry u\u0308"
	labels := []int{0, 1, 2, 2}
	got, err := ModelLabels("d", []string{"apple", nfd, "date"}, labels, "m", []string{"apple", "date", nfc}, "todo")
	if err != nil || !slices.Equal(got, []int{0, 2, 1, 1}) {
		t.Errorf("NFD data, NFC model: %v, %v; want [0 2 1 1]", got, err)
	}
	got, err = ModelLabels("d", []string{"apple", "date", nfc}, labels, "m", []string{"apple", nfd, "date"}, "todo")
	if err != nil || !slices.Equal(got, []int{0, 2, 1, 1}) {
		t.Errorf("NFC data, NFD model: %v, %v; want [0 2 1 1]", got, err)
	}
	got, err = ModelLabels("d", []string{nfd, nfc}, []int{0, 1}, "m", []string{nfc, nfd}, "todo")
	if err != nil || !slices.Equal(got, []int{1, 0}) {
		t.Errorf("both forms: %v, %v; want [1 0]", got, err)
	}
	if m := MissingClasses([]string{nfd}, []string{"apple", nfc}); !slices.Equal(m, []string{"apple"}) {
		t.Errorf("MissingClasses = %q, want [apple]", m)
	}
}

// MissingClasses names the model's classes without data, in the model's
// order.
func TestMissingClasses(t *testing.T) {
	if m := MissingClasses([]string{"b", "d"}, []string{"d", "c", "b", "a"}); !slices.Equal(m, []string{"c", "a"}) {
		t.Errorf("MissingClasses = %q, want [c a]", m)
	}
	if m := MissingClasses([]string{"a", "b"}, []string{"a", "b"}); m != nil {
		t.Errorf("MissingClasses of the same classes = %q, want none", m)
	}
}

// Training images of one class three times as many as another's are named
// as imbalanced, with the rarest class; less than that is not.
func TestImbalance(t *testing.T) {
	d := &Dataset{Classes: []string{"none", "ball", "cube"}, Labels: []int{0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2}}
	want := "the classes are imbalanced in the training split (none 6, ball 3, cube 2: the largest 3.0 times the smallest): " +
		"accuracy, by which training and searches rank models, can stay high for a model that misses cube; " +
		"draw every class equally often and rank by balanced accuracy instead (--sampling balanced --metric balanced_accuracy of nasctl train and search), " +
		"check each class's recall (nasctl eval's confusion matrix, the final table of a search's report.md), or add images of the rarer classes"
	if got := d.Imbalance(Split{Train: seqTo(11)}); got != want {
		t.Errorf("Imbalance = %q, want %q", got, want)
	}
	// Among the split's warnings, unless models train on every class
	// equally often and are ranked by balanced accuracy.
	if ws := d.SplitWarnings(Split{Train: seqTo(11)}, "metaqnn", false); !slices.Contains(ws, want) {
		t.Errorf("SplitWarnings = %q, want the imbalance among them", ws)
	}
	if ws := d.SplitWarnings(Split{Train: seqTo(11)}, "metaqnn", true); slices.Contains(ws, want) {
		t.Errorf("SplitWarnings under balanced accuracy = %q, want no imbalance", ws)
	}
	// 5 of none against 2 of cube: under three times.
	if got := d.Imbalance(Split{Train: []int{0, 1, 2, 3, 4, 6, 7, 9, 10}}); got != "" {
		t.Errorf("5, 2, 2: %q, want none", got)
	}
	// A class without training images is Gaps', not this.
	if got := d.Imbalance(Split{Train: []int{0, 1, 2, 3, 4, 5, 6}}); got != "" {
		t.Errorf("no cube: %q, want none", got)
	}
}

// A class the split leaves out of a set is named, with its counts; classes
// in every set are not.
func TestGaps(t *testing.T) {
	d := &Dataset{Classes: []string{"a", "rare"}, Labels: []int{0, 0, 0, 1, 0}}
	got := d.Gaps(Split{Train: []int{0, 3}, Val: []int{1}, Test: []int{2, 4}})
	want := []string{`class "rare" has no validation or test images (1 training, 0 validation, 0 test): add images of it, or expect no measure of it there`}
	if !slices.Equal(got, want) {
		t.Errorf("Gaps = %q, want %q", got, want)
	}
	if got := d.Gaps(Split{Train: []int{0, 3}, Val: []int{1, 3}, Test: []int{2, 3}}); got != nil {
		t.Errorf("every class in every set: %q", got)
	}
	// The advice names the plan's stratified form, once there are gaps
	// and the plan is not stratified already.
	advice := "the split plan metaqnn-stratified (--plan) gives every class its share of each split, as far as its images allow"
	if got := WithStratifyAdvice(want, "metaqnn"); len(got) != 2 || got[1] != advice {
		t.Errorf("advice: %q", got)
	}
	for _, c := range []struct {
		gaps []string
		plan string
	}{{want, "metaqnn-stratified"}, {nil, "metaqnn"}} {
		if got := WithStratifyAdvice(c.gaps, c.plan); !slices.Equal(got, c.gaps) {
			t.Errorf("%q of %s: %q", c.gaps, c.plan, got)
		}
	}
}

// The stratified split of a small labelled set is pinned for seed 3, so a
// change of which images land where shows (runs with a given seed must
// stay reproducible). The reference is worked out here from the recipe
// applyStratified documents, with math/rand/v2 directly: the classes in
// label order, each class's indices (in image order) shuffled with a PCG
// stream of its own, (seed, 0x5eed5b117+label+1), and cut by SplitMetaQNN's
// arithmetic; then the training, validation and test sets of the union
// shuffled in that order with the stream (seed, 0x5eed5b117). Per class,
// by hand: test ceil(0.3 n), train floor(0.8 (n - test)), validation the
// rest:
//
//	class 0, images 0 2 5 7 10 (n = 5): test 2, train floor(2.4) = 2, val 1
//	class 1, images 1 3 6 9    (n = 4): test 2, train floor(1.6) = 1, val 1
//	class 2, images 4 8 11     (n = 3): test 1, train floor(1.6) = 1, val 1
//
// so 4 training, 3 validation and 5 test images.
func TestStratifiedSplitPinned(t *testing.T) {
	labels := []int{0, 1, 0, 1, 2, 0, 1, 0, 2, 1, 0, 2}
	const seed = 3
	plan, err := ParseSplitPlan("metaqnn-stratified")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dataset{Classes: []string{"a", "b", "c"}, Labels: labels}
	got, err := d.Split(plan, seed)
	if err != nil {
		t.Fatal(err)
	}
	// The recipe, by hand.
	classes := [][]int{{0, 2, 5, 7, 10}, {1, 3, 6, 9}, {4, 8, 11}}
	counts := [][3]int{{2, 2, 1}, {2, 1, 1}, {1, 1, 1}} // test, train, val
	var ref Split
	for l, idx := range classes {
		idx = slices.Clone(idx)
		r := rand.New(rand.NewPCG(seed, 0x5eed5b117+uint64(l)+1))
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		test, train := counts[l][0], counts[l][1]
		ref.Test = append(ref.Test, idx[:test]...)
		ref.Train = append(ref.Train, idx[test:test+train]...)
		ref.Val = append(ref.Val, idx[test+train:]...)
	}
	r := rand.New(rand.NewPCG(seed, 0x5eed5b117))
	for _, set := range [][]int{ref.Train, ref.Val, ref.Test} {
		r.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
	}
	// What the recipe gives, written out: the pin. By class it matches the
	// counts above: training 2 7 | 3 | 8, validation 5 | 6 | 11, test
	// 0 10 | 9 1 | 4.
	pinned := Split{Train: []int{2, 8, 3, 7}, Val: []int{5, 6, 11}, Test: []int{9, 4, 1, 0, 10}}
	if !reflect.DeepEqual(ref, pinned) {
		t.Errorf("the recipe gives %+v, the pin is %+v", ref, pinned)
	}
	if !reflect.DeepEqual(got, pinned) {
		t.Errorf("stratified split, seed %d: train %v, val %v, test %v; want train %v, val %v, test %v",
			seed, got.Train, got.Val, got.Test, pinned.Train, pinned.Val, pinned.Test)
	}
}

// Files with the same bytes are found as copies, a group counted once: one
// in another class is named as a wrong label, one in another set of the
// split as a held-out image that is not unseen, even when the group's first
// file is in no set; copies within one class and set are not named. The
// groups are counted on files written here.
func TestCopyWarnings(t *testing.T) {
	dir := t.TempDir()
	for i := range 6 {
		writeImage(t, dir, fmt.Sprintf("cats/%d.png", i), uniformGray(4, 4, uint8(10*i)))
		writeImage(t, dir, fmt.Sprintf("dogs/%d.png", i), uniformGray(4, 4, uint8(100+10*i)))
	}
	writeImage(t, dir, "dogs/copy-of-cat-2.png", uniformGray(4, 4, 20)) // another class
	writeImage(t, dir, "cats/copy-of-0.png", uniformGray(4, 4, 0))      // the same class
	writeImage(t, dir, "cats/copy-a-of-4.png", uniformGray(4, 4, 40))   // a group of three
	writeImage(t, dir, "cats/copy-b-of-4.png", uniformGray(4, 4, 40))
	d, _, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Copies) != 4 {
		t.Fatalf("copies %v, want 4 pairs", d.Copies)
	}
	idx := map[string]int{}
	for i, f := range d.Files {
		idx[f] = i
	}
	all := seqTo(d.Len())
	// Everything in one set: only the other class is named.
	got := d.CopyWarnings(Split{Train: all})
	if len(got) != 1 || !strings.HasPrefix(got[0], "1 group(s) of byte-for-byte copies span two classes (first: "+filepath.Join(dir, "cats", "2.png")+`, class "cats", and `+
		filepath.Join(dir, "dogs", "copy-of-cat-2.png")+`, class "dogs")`) {
		t.Errorf("one set: %q", got)
	}
	// A copy held out for testing, its original trained on; and a group
	// whose first file is in no set, one copy trained on, one tested.
	out := func(names ...string) func(int) bool {
		return func(i int) bool { return slices.Contains(names, d.Files[i]) }
	}
	test := []int{idx["cats/copy-of-0.png"], idx["cats/copy-b-of-4.png"]}
	train := slices.DeleteFunc(slices.Clone(all), out("cats/copy-of-0.png", "cats/copy-b-of-4.png", "cats/4.png"))
	got = d.CopyWarnings(Split{Train: train, Test: test})
	if len(got) != 2 || !strings.HasPrefix(got[1], "2 group(s) of byte-for-byte copies span two sets of the split (first: "+filepath.Join(dir, "cats", "0.png")+", training, and "+
		filepath.Join(dir, "cats", "copy-of-0.png")+", test)") {
		t.Errorf("split across sets: %q", got)
	}
}

func seqTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
