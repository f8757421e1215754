package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

func TestGenerateReproducible(t *testing.T) {
	ctx := context.Background()
	gen := func(opts Options) map[string][]byte {
		t.Helper()
		dir := t.TempDir()
		if _, err := Generate(ctx, dir, opts); err != nil {
			t.Fatal(err)
		}
		return readDir(t, dir)
	}
	a := gen(Options{Count: 120, Seed: 1, Workers: 1})
	if len(a) != 120 {
		t.Fatalf("wrote %d files, want 120", len(a))
	}
	// Same seed, another worker count: byte-identical files.
	b := gen(Options{Count: 120, Seed: 1, Workers: 3})
	if len(a) != len(b) {
		t.Fatalf("file counts differ: %d vs %d", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Fatalf("%s differs between two runs with seed 1", name)
		}
	}
	// Another seed: different images (not a single file in common).
	c := gen(Options{Count: 120, Seed: 2})
	for name, data := range a {
		if bytes.Equal(data, c[name]) {
			t.Errorf("%s is the same for seeds 1 and 2", name)
		}
	}
}

func TestGenerateNamesAndFormat(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	rep, err := Generate(context.Background(), dir, Options{Count: n, Seed: 7, Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	files := readDir(t, dir)
	var leaf, noLeaf int
	var total int64
	for i := range n {
		img, isLeaf := Render(Options{Seed: 7, Size: 32}, i)
		var name string
		if isLeaf {
			name = fmt.Sprintf("LEAF_%04d.png", leaf)
			leaf++
		} else {
			name = fmt.Sprintf("NO_%04d.png", noLeaf)
			noLeaf++
		}
		data, ok := files[name]
		if !ok {
			t.Fatalf("image %d: %s missing", i, name)
		}
		total += int64(len(data))
		got, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g, ok := got.(*image.Gray)
		if !ok {
			t.Fatalf("%s decodes as %T, want 8-bit gray", name, got)
		}
		if g.Bounds() != image.Rect(0, 0, 32, 32) || !bytes.Equal(g.Pix, img.Pix) {
			t.Fatalf("%s: pixels differ from Render(%d)", name, i)
		}
	}
	if len(files) != n {
		t.Errorf("%d files in the folder, want %d (no temporary files left)", len(files), n)
	}
	if want := (GenerateReport{Count: n, Leaf: leaf, Bytes: total}); rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
}

// TestLeafShare: each image is a leaf image with probability 0.5, independently,
// so the leaf count of 4,000 images is Binomial(4000, 0.5): mean 2000, standard
// deviation sqrt(4000*0.25) = 31.6. The bound is 5 standard deviations (158):
// a correct generator falls outside with probability below 1e-6 per seed.
func TestLeafShare(t *testing.T) {
	for seed := range uint64(4) {
		leaf := 0
		for i := range DefaultCount {
			if drawClass(imageRNG(seed, i)) {
				leaf++
			}
		}
		if leaf < 2000-158 || leaf > 2000+158 {
			t.Errorf("seed %d: %d leaf images of 4000, outside 2000 +- 158", seed, leaf)
		}
	}
}

// TestPixelFacts checks bounds that follow from docs/study.md, section 1:
// background 180-254 and discs 160-220 (so nothing above 254 anywhere), leaf
// bodies 40-120 and veins max(10, body-30) >= 10, distractors 50-150.
func TestPixelFacts(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		var leaves, plain, empty int
		for i := range 400 {
			img, leaf := Render(Options{Seed: 3, Rotate: rotate}, i)
			lo, hi := slices.Min(img.Pix), slices.Max(img.Pix)
			if hi > 254 {
				t.Fatalf("image %d: pixel %d above the background's 254", i, hi)
			}
			if leaf {
				leaves++
				// The last leaf drawn is never covered, so its body shows.
				hasBody := slices.ContainsFunc(img.Pix, func(v uint8) bool { return v >= 40 && v <= 120 })
				if lo < 10 || !hasBody {
					t.Fatalf("leaf image %d: darkest pixel %d, body pixel in [40, 120]: %v", i, lo, hasBody)
				}
				continue
			}
			plain++
			if lo < 50 {
				t.Fatalf("no-leaf image %d: pixel %d darker than the distractors' 50", i, lo)
			}
			if lo >= 160 {
				// No distractor: only background and discs.
				empty++
			}
		}
		// 0-3 distractors, uniform, so about a quarter of the no-leaf images have
		// none; with ~200 of them both kinds must appear.
		if leaves == 0 || plain == 0 || empty == 0 || empty == plain {
			t.Errorf("rotate %v: %d leaf, %d no-leaf, %d without distractor", rotate, leaves, plain, empty)
		}
	}
}

// TestRenderGolden pins the generator's pixels: a change of any drawing or
// random draw shows here. The hashes cover raw pixels, not PNG bytes, so they
// survive changes of Go's compressor. Regenerate with go test -run Golden -update
// after a deliberate change (and say so in the commit).
func TestRenderGolden(t *testing.T) {
	var got strings.Builder
	for _, o := range []Options{{Seed: 1}, {Seed: 1, Rotate: true}, {Seed: 42, Size: 96}} {
		for i := range 8 {
			img, leaf := Render(o, i)
			fmt.Fprintf(&got, "seed=%d rotate=%v size=%d image=%d leaf=%v sha256=%x\n",
				o.Seed, o.Rotate, img.Bounds().Dx(), i, leaf, sha256.Sum256(img.Pix))
		}
	}
	golden := filepath.Join("testdata", "render.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("rendered images differ from %s:\ngot:\n%s\nwant:\n%s", golden, got.String(), want)
	}
}

func TestRotateKeepsEverythingButOrientation(t *testing.T) {
	for i := range 40 {
		a, leafA := Render(Options{Seed: 5}, i)
		b, leafB := Render(Options{Seed: 5, Rotate: true}, i)
		if leafA != leafB {
			t.Fatalf("image %d: class changes with Rotate", i)
		}
		if !leafA && !bytes.Equal(a.Pix, b.Pix) {
			t.Fatalf("no-leaf image %d changes with Rotate", i)
		}
	}
}

func TestGenerateScalesWithSize(t *testing.T) {
	// A leaf of size 16-28 at 64 pixels covers roughly the same share of a
	// 128-pixel image: compare the share of body-dark pixels over many images.
	share := func(size int) float64 {
		dark, all := 0, 0
		for i := range 200 {
			img, leaf := Render(Options{Seed: 9, Size: size}, i)
			if !leaf {
				continue
			}
			for _, v := range img.Pix {
				if v <= 120 {
					dark++
				}
			}
			all += len(img.Pix)
		}
		return float64(dark) / float64(all)
	}
	s64, s128 := share(64), share(128)
	if s64 < 0.02 || math.Abs(s128-s64)/s64 > 0.15 {
		t.Errorf("dark share %.4f at 64 px, %.4f at 128 px: want them within 15%%", s64, s128)
	}
}

func TestGenerateRefusesExistingDataset(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A folder with other files is fine.
	if _, err := Generate(ctx, dir, Options{Count: 30, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(ctx, dir, Options{Count: 10, Seed: 2})
	if !errors.Is(err, ErrDatasetExists) || !strings.Contains(err.Error(), "30 LEAF_/NO_ images") {
		t.Fatalf("second Generate: %v, want ErrDatasetExists naming 30 images", err)
	}
	// Force replaces the whole dataset: no image of the larger one is left.
	rep, err := Generate(ctx, dir, Options{Count: 10, Seed: 2, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	files := readDir(t, dir)
	if len(files) != 11 || files["README.txt"] == nil {
		t.Errorf("after Force: %d files, want the 10 new images and README.txt", len(files))
	}
	if rep.Count != 10 {
		t.Errorf("report count %d, want 10", rep.Count)
	}
}

// A folder of the user's images, or one with class folders, is refused even
// with Force: the leaves would join one of the user's classes, or make the
// folder unreadable.
func TestGenerateRefusesOtherImages(t *testing.T) {
	for _, tc := range []struct{ name, entry, want string }{
		{"a class folder", "circle_01.PNG", "circle_01.PNG"},
		{"a dataset of class folders", "circle/", "circle/"},
		{"a linked class folder", "circle@", "circle/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, strings.TrimRight(tc.entry, "/@"))
			var err error
			switch {
			case strings.HasSuffix(tc.entry, "/"):
				err = os.Mkdir(p, 0o755)
			case strings.HasSuffix(tc.entry, "@"):
				err = os.Symlink(t.TempDir(), p)
			default:
				err = os.WriteFile(p, []byte("pixels"), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, force := range []bool{false, true} {
				_, err := Generate(context.Background(), dir, Options{Count: 10, Seed: 1, Force: force})
				if err == nil || !strings.Contains(err.Error(), "already holds other images or folders ("+tc.want+")") ||
					!strings.Contains(err.Error(), "give --out a new or empty folder") {
					t.Errorf("force %v: %v, want a refusal naming %s", force, err, tc.want)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 1 {
					t.Errorf("force %v: %d entries after the refusal, want the user's one", force, len(entries))
				}
			}
		})
	}
}

// A cancelled run removes the images it wrote, temporary files included,
// and says how many it had written.
func TestGenerateCancelLeavesNoPartialDataset(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	done := 0
	_, err := Generate(ctx, dir, Options{Count: 500, Seed: 1, Workers: 2, Progress: func(d, total int) {
		done = d
		if d == 20 {
			cancel()
		}
	}})
	var stopped *IncompleteError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &stopped) {
		t.Fatalf("err = %v, want an *IncompleteError of context.Canceled", err)
	}
	// Images in flight at the cancel are finished, so done may pass 20.
	if stopped.Written != done || done < 20 || done >= 500 || stopped.Count != 500 || stopped.Kept != 0 || stopped.Dir != dir {
		t.Errorf("%+v, with %d images reported written", stopped, done)
	}
	if files := readDir(t, dir); len(files) != 0 {
		t.Errorf("%d files left after cancelling, want none", len(files))
	}
}

// A stop that comes once the last image is written stops nothing: the
// dataset is whole and stays.
func TestGenerateCancelAfterLastImage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	rep, err := Generate(ctx, dir, Options{Count: 20, Seed: 1, Workers: 2, Progress: func(d, total int) {
		if d == total {
			cancel()
		}
	}})
	if err != nil || rep.Bytes == 0 {
		t.Fatalf("err = %v, report %+v; want the whole dataset", err, rep)
	}
	if files := readDir(t, dir); len(files) != 20 {
		t.Errorf("%d files, want 20", len(files))
	}
}

// A write that fails stops the run the same way: what was written goes,
// what was there before stays.
func TestGenerateFailureLeavesNoPartialDataset(t *testing.T) {
	dir := t.TempDir()
	// A folder where image 5 goes: renaming the image onto it fails, after
	// images 0-4 (one worker renders them in order).
	leaf := 0
	for i := range 5 {
		if drawClass(imageRNG(1, i)) {
			leaf++
		}
	}
	name := fileName(false, 5-leaf)
	if drawClass(imageRNG(1, 5)) {
		name = fileName(true, leaf)
	}
	if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(context.Background(), dir, Options{Count: 40, Seed: 1, Workers: 1})
	var stopped *IncompleteError
	if !errors.As(err, &stopped) || !strings.Contains(err.Error(), name) || stopped.Written != 5 || stopped.Count != 40 || stopped.Kept != 0 {
		t.Fatalf("err = %v (%+v), want an *IncompleteError naming %s after 5 of 40 images", err, stopped, name)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != name {
		t.Errorf("left %v (%v), want only the folder %s", entries, err, name)
	}
}

// TrainingGap agrees with the folders Generate writes, loaded and split
// as every command that trains does, for the small counts where a class
// may miss the training set.
func TestTrainingGapMatchesLoadedSplit(t *testing.T) {
	plans := map[string]SplitPlan{"metaqnn": SplitMetaQNN, "nasnet": SplitNASNet, "metaqnn-stratified": {Fraction: 1, TestShare: 0.3, ValShare: 0.2, Stratified: true}}
	gaps := 0
	for _, seed := range []uint64{1, 3} {
		for count := 3; count <= 12; count++ {
			o := Options{Count: count, Seed: seed, Size: 16}
			if o.Validate() != nil {
				continue // one class only
			}
			dir := t.TempDir()
			if _, err := Generate(context.Background(), dir, o); err != nil {
				t.Fatal(err)
			}
			d, _, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for name, plan := range plans {
				for _, splitSeed := range []uint64{1, 2} {
					s, err := d.Split(plan, splitSeed)
					if err != nil {
						t.Fatal(err)
					}
					want := ""
					for c, n := range d.ClassCounts(s.Train) {
						if n == 0 || len(s.Train) == 0 {
							want = d.Classes[c]
							break
						}
					}
					got, err := o.TrainingGap(plan, splitSeed)
					if err != nil || got != want {
						t.Errorf("seed %d, %d images, plan %s, split seed %d: TrainingGap %q (%v), the loaded split leaves out %q", seed, count, name, splitSeed, got, err, want)
					}
					if want != "" {
						gaps++
					}
				}
			}
		}
	}
	if gaps == 0 {
		t.Error("no count missed a class: the comparison tested nothing")
	}
}

func TestGenerateProgress(t *testing.T) {
	var calls []int
	_, err := Generate(context.Background(), t.TempDir(), Options{Count: 25, Progress: func(done, total int) {
		if total != 25 {
			t.Errorf("total %d, want 25", total)
		}
		calls = append(calls, done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, 25)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(calls, want) {
		t.Errorf("progress calls %v, want 1..25", calls)
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{Count: -1, Size: 8, Workers: -2}.Validate()
	for _, want := range []string{"count: must be positive, got -1", "size: must be in [16, 1024] pixels, got 8", "workers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
	if _, err := Generate(context.Background(), t.TempDir(), Options{Size: 3000}); err == nil {
		t.Error("Generate accepted size 3000")
	}
}

// BenchmarkGenerate4000 writes the study's dataset (4,000 64x64 images).
func BenchmarkGenerate4000(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		if _, err := Generate(context.Background(), dir, Options{Seed: 1, Force: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender measures drawing alone, one 64x64 image per iteration.
func BenchmarkRender(b *testing.B) {
	i := 0
	for b.Loop() {
		Render(Options{Seed: 1}, i)
		i++
	}
}
