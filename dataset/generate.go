package dataset

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// The study's dataset: 4,000 images of 64x64 pixels.
const (
	DefaultCount = 4000
	DefaultSize  = 64
)

// MinSize and MaxSize bound Options.Size: below 16 pixels the shapes lose their
// form, and above 1024 an image no longer suits the small networks nasctl designs.
const (
	MinSize = 16
	MaxSize = 1024
)

// Options configures the leaves generator. The zero value generates the study's
// dataset with seed 0.
type Options struct {
	// Count is the number of images. Zero means DefaultCount (4,000).
	Count int
	// Size is the width and height of the images in pixels, in [MinSize, MaxSize].
	// Zero means DefaultSize (64). Positions, sizes and line widths of the shapes
	// are specified for 64 pixels and scaled by Size/64.
	Size int
	// Seed selects the dataset: the same Options give the same images, byte for
	// byte. Zero is a seed like any other.
	Seed uint64
	// Rotate turns each leaf (body and veins) by the random angle the study drew
	// for it but never applied. False, the default, keeps the study's axis-aligned
	// leaves. The angle is drawn either way, so a rotated dataset has the same
	// labels and the same background and leaf positions as the unrotated one of
	// the same seed.
	Rotate bool
	// Force lets Generate replace a dataset already in the output folder: its
	// LEAF_/NO_ images are deleted first. False makes Generate refuse with
	// ErrDatasetExists. A folder that holds other images, or folders (class
	// folders, say), is refused either way; other files are left alone.
	Force bool
	// Workers is the number of images rendered at once. Zero means
	// runtime.GOMAXPROCS(0). The output does not depend on it.
	Workers int
	// Progress, if not nil, is called after each image is written with the
	// number written so far and Count. Calls never overlap.
	Progress func(done, total int)
}

// withDefaults returns o with its zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	o.Count = cmp.Or(o.Count, DefaultCount)
	o.Size = cmp.Or(o.Size, DefaultSize)
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// Validate reports every invalid field of o (after defaults), or nil.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("count: must be positive, got %d", o.Count))
	}
	if o.Size < MinSize || o.Size > MaxSize {
		errs = append(errs, fmt.Errorf("size: must be in [%d, %d] pixels, got %d", MinSize, MaxSize, o.Size))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers: must be positive, got %d", o.Workers))
	}
	if o.Count > 0 && o.Count < 100 { // the classes are drawn per image: a few may all be one
		leaf := 0
		for i := range o.Count {
			if drawClass(imageRNG(o.Seed, i)) {
				leaf++
			}
		}
		if leaf == 0 || leaf == o.Count {
			errs = append(errs, fmt.Errorf("count: with seed %d, the class drawn for each of the %d image(s) would be the same, and a classifier needs both; give a larger count or another seed", o.Seed, o.Count))
		}
	}
	return errors.Join(errs...)
}

// TrainingGap returns a class that the split by plan, with the shuffle
// seed, of the dataset o describes leaves without training images (the
// split Load and then Dataset.Split make of the folder Generate writes),
// or "" when every class has some. Only a few images can miss a class:
// their classes are drawn per image, and the split shuffles them.
func (o Options) TrainingGap(plan SplitPlan, seed uint64) (string, error) {
	o = o.withDefaults()
	leaf := 0
	for i := range o.Count {
		if drawClass(imageRNG(o.Seed, i)) {
			leaf++
		}
	}
	// Load reads the files in name order: every LEAF_ image (label 1) before
	// every NO_ image (label 0).
	d := &Dataset{Classes: []string{ClassNoLeaf, ClassLeaf}, Labels: make([]int, o.Count)}
	for i := range leaf {
		d.Labels[i] = 1
	}
	s, err := d.Split(plan, seed)
	if err != nil {
		return "", err
	}
	train := make([]int, len(d.Classes))
	if len(s.Train) > 0 { // ClassCounts(nil) would count every image
		train = d.ClassCounts(s.Train)
	}
	for c, n := range train {
		if n == 0 {
			return d.Classes[c], nil
		}
	}
	return "", nil
}

// ErrDatasetExists is returned (wrapped) by Generate when the output folder
// already holds LEAF_/NO_ images and Options.Force is false.
var ErrDatasetExists = errors.New("folder already holds a leaves dataset")

// GenerateReport describes a generated dataset.
type GenerateReport struct {
	Count int   // images written
	Leaf  int   // images of class "leaf" (LEAF_ files); the others are "no_leaf"
	Bytes int64 // total size of the PNG files
}

// datasetFile matches the names Generate writes; tmpPrefix starts the names of
// its temporary files (hidden, so Load ignores them).
var datasetFile = regexp.MustCompile(`^(LEAF|NO)_[0-9]+\.png$`)

const tmpPrefix = ".nasctl-tmp-"

// fileName is the name of the n-th image (counting from 0) of its class.
func fileName(leaf bool, n int) string {
	if leaf {
		return fmt.Sprintf("%s%04d.png", PrefixLeaf, n)
	}
	return fmt.Sprintf("%s%04d.png", PrefixNoLeaf, n)
}

// Generate writes the leaves dataset described by opts into dir, creating dir if
// needed: 8-bit grayscale PNG files LEAF_0000.png, LEAF_0001.png, ... and
// NO_0000.png, ..., numbered per class in the order of the image index.
//
// Each file is written under a temporary name and renamed into place, so an
// interrupted run never leaves a truncated PNG. A run that stops before the
// end (its context cancelled, a write failed) removes the images it wrote
// and returns an *IncompleteError: a folder of the first N images would
// pass for a whole dataset of N, and a run cannot be finished later, since
// the folder does not record the options it was made with. Files are not
// synced to disk one by one: a power loss, unlike a crash, may still lose
// the last ones written.
//
// Output is identical for identical opts, whatever opts.Workers, with the same
// Go release (a new release may compress PNG files differently; the pixels stay
// the same).
func Generate(ctx context.Context, dir string, opts Options) (GenerateReport, error) {
	if err := opts.Validate(); err != nil {
		return GenerateReport{}, err
	}
	opts = opts.withDefaults()
	if err := prepareDir(dir, opts.Force); err != nil {
		return GenerateReport{}, err
	}

	// Class of every image, hence every file name. The class is the first draw of
	// an image's own random stream, so this pass is cheap.
	names := make([]string, opts.Count)
	var rep GenerateReport
	for i := range names {
		leaf := drawClass(imageRNG(opts.Seed, i))
		if leaf {
			names[i] = fileName(true, rep.Leaf)
			rep.Leaf++
		} else {
			names[i] = fileName(false, i-rep.Leaf)
		}
	}
	rep.Count = opts.Count

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64 // next image index to render
		mu       sync.Mutex   // guards written, firstErr, rep.Bytes and Progress calls
		written  []string     // names of the images written, in the order they were
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for range min(opts.Workers, opts.Count) {
		wg.Go(func() {
			enc := png.Encoder{CompressionLevel: png.DefaultCompression, BufferPool: &encoderPool{}}
			var buf bytes.Buffer
			for {
				i := int(next.Add(1) - 1)
				if i >= opts.Count || ctx.Err() != nil {
					return
				}
				img, _ := Render(opts, i)
				buf.Reset()
				if err := enc.Encode(&buf, img); err != nil {
					fail(fmt.Errorf("encode %s: %w", names[i], err))
					return
				}
				if err := writeAtomic(dir, names[i], buf.Bytes()); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				written = append(written, names[i])
				rep.Bytes += int64(buf.Len())
				if opts.Progress != nil {
					opts.Progress(len(written), opts.Count)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil && len(written) < opts.Count {
		firstErr = ctx.Err() // a stop after the last image stopped nothing
	}
	if firstErr != nil {
		return GenerateReport{}, removeIncomplete(dir, written, opts.Count, firstErr)
	}
	return rep, nil
}

// IncompleteError is Generate's error when it stopped before writing every
// image: its context was cancelled (Err is then context.Canceled) or a
// write failed. Generate removes the images it wrote; Kept counts those it
// failed to remove, which remain as a partial dataset.
type IncompleteError struct {
	Dir            string
	Written, Count int   // images written before the stop, of the Count asked for
	Kept           int   // of the Written, those still in Dir
	Err            error // why it stopped
	RemoveErr      error // why the Kept images could not be removed; nil when Kept is 0
}

func (e *IncompleteError) Error() string {
	if e.Kept == 0 {
		return fmt.Sprintf("%v after %d of %d images; the %d written were removed", e.Err, e.Written, e.Count, e.Written)
	}
	return fmt.Sprintf("%v after %d of %d images; removing them failed (%v), and %s holds %d of them, a partial dataset",
		e.Err, e.Written, e.Count, e.RemoveErr, e.Dir, e.Kept)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// removeIncomplete removes the images written of a run that stopped for
// err, and returns the *IncompleteError that says so.
func removeIncomplete(dir string, written []string, count int, err error) error {
	e := &IncompleteError{Dir: dir, Written: len(written), Count: count, Err: err}
	for _, name := range written {
		rerr := os.Remove(filepath.Join(dir, name))
		if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			e.Kept++
			if e.RemoveErr == nil {
				e.RemoveErr = rerr
			}
		}
	}
	return e
}

// prepareDir creates dir, or checks that it holds no dataset (force false) or
// deletes the dataset it holds (force true), and in both cases no other
// images or folders. Left-over temporary files of an interrupted run are
// deleted in both cases.
func prepareDir(dir string, force bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var old, others []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		case datasetFile.MatchString(name):
			if !e.IsDir() {
				old = append(old, name)
			}
		case strings.HasPrefix(name, "."):
		case isDirOrLink(dir, e):
			others = append(others, name+"/")
		case isImage(name):
			others = append(others, name)
		}
	}
	if len(others) > 0 {
		// Written beside other images or class folders, the leaves would join
		// a class of the user's, or make the folder unreadable: never wanted.
		return fmt.Errorf("%s already holds other images or folders (%s): the leaves dataset would be mixed into them; give --out a new or empty folder",
			dir, listSome(others, 3))
	}
	if len(old) == 0 {
		return nil
	}
	if !force {
		return fmt.Errorf("%s: %w (%d LEAF_/NO_ images)", dir, ErrDatasetExists, len(old))
	}
	for _, name := range old {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes data to dir/name through a temporary file in dir, named
// after the process so that two runs never share one. Unlike
// internal/atomicfile it does not sync each of the thousands of images: a
// killed process leaves whole files or none, and an image a power cut
// leaves empty is named as a bad file when the folder is loaded (generating
// the folder again mends it).
func writeAtomic(dir, name string, data []byte) (err error) {
	tmp := filepath.Join(dir, fmt.Sprintf("%s%d-%s", tmpPrefix, os.Getpid(), name))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// encoderPool keeps one PNG encoder buffer (with its compressor, which is
// costly to allocate) for one goroutine.
type encoderPool struct{ b *png.EncoderBuffer }

func (p *encoderPool) Get() *png.EncoderBuffer  { return p.b }
func (p *encoderPool) Put(b *png.EncoderBuffer) { p.b = b }

// mix64 is the SplitMix64 finaliser, a bijection of uint64 that spreads any
// change of its input over all output bits.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// imageRNG is the random stream of image i of the dataset with the given seed.
// Deriving it from (seed, i) alone makes every image independent of the order
// in which images are rendered.
func imageRNG(seed uint64, i int) *rand.Rand {
	s := mix64(seed)
	return rand.New(rand.NewPCG(s, mix64(s^uint64(i))))
}

// drawClass is the first draw of an image's stream: true (leaf) with
// probability 0.5.
func drawClass(rng *rand.Rand) bool { return rng.Float64() < 0.5 }

// Render draws image i (counting from 0) of the dataset opts describes, exactly
// as Generate writes it, and reports whether it is a leaf image. Count, Force,
// Workers and Progress do not matter here; i may exceed Count.
//
// The random draws, in order, define the dataset (integer ranges inclusive,
// lengths and positions for 64 pixels, scaled by Size/64):
//
//   - class: leaf with probability 0.5;
//   - background: every pixel, row by row, uniform in [180, 254];
//   - 10-30 filled discs, each: centre x, y anywhere, radius 1-5, gray 160-220;
//   - leaf image: 1-3 leaves, each: centre x, y in [12, 52], size 16-28,
//     angle uniform in [0, pi), body gray 40-120; the body is a filled ellipse
//     size wide and 0.6*size high, the veins (gray max(10, body-30), 1 pixel)
//     are a central line across the ellipse's height and three lines size/3
//     long, parallel to its width, at 1/4, 2/4 and 3/4 of its height;
//   - no-leaf image: 0-3 distractors, each: kind (filled circle, filled
//     rectangle or line, equally likely), gray 50-150, then for a circle centre
//     x, y in [4, 60] and radius 4-12; for a rectangle top-left x, y in [4, 48],
//     width and height 6-16; for a line both ends' x, y in [4, 60] and width 1-3.
func Render(opts Options, i int) (img *image.Gray, leaf bool) {
	opts = opts.withDefaults()
	s := opts.Size
	rng := imageRNG(opts.Seed, i)
	in := func(lo, hi int) int { return lo + rng.IntN(hi-lo+1) }
	// pos scales a position, length scales a length (at least one pixel).
	pos := func(v int) int { return int(math.Round(float64(v*s) / 64)) }
	length := func(v int) int { return max(1, pos(v)) }

	leaf = drawClass(rng)
	img = image.NewGray(image.Rect(0, 0, s, s))
	for p := range img.Pix {
		img.Pix[p] = uint8(in(180, 254))
	}
	for range in(10, 30) {
		cx, cy := rng.IntN(s), rng.IntN(s)
		r := in(length(1), length(5))
		fillDisc(img, cx, cy, r, uint8(in(160, 220)))
	}
	if leaf {
		for range in(1, 3) {
			cx, cy := in(pos(12), pos(52)), in(pos(12), pos(52))
			size := in(length(16), length(28))
			angle := rng.Float64() * math.Pi
			body := in(40, 120)
			if !opts.Rotate {
				angle = 0
			}
			drawLeaf(img, cx, cy, size, length(1), angle, uint8(body), uint8(max(10, body-30)))
		}
		return img, true
	}
	for range in(0, 3) {
		kind := rng.IntN(3)
		gray := uint8(in(50, 150))
		switch kind {
		case 0:
			cx, cy := in(pos(4), pos(60)), in(pos(4), pos(60))
			fillDisc(img, cx, cy, in(length(4), length(12)), gray)
		case 1:
			x, y := in(pos(4), pos(48)), in(pos(4), pos(48))
			w, h := in(length(6), length(16)), in(length(6), length(16))
			fillRect(img, x, y, w, h, gray)
		default:
			x0, y0 := in(pos(4), pos(60)), in(pos(4), pos(60))
			x1, y1 := in(pos(4), pos(60)), in(pos(4), pos(60))
			w := in(length(1), length(3))
			drawLine(img, point{float64(x0), float64(y0)}, point{float64(x1), float64(y1)}, w, gray)
		}
	}
	return img, false
}

// drawLeaf draws one leaf centred on (cx, cy): a filled ellipse size pixels
// wide and 0.6*size high, turned by angle (radians), then its veins of the
// given width: one across the full height through the centre and three of
// length size/3 parallel to the width, centred, at 1/4, 2/4 and 3/4 of the
// height.
func drawLeaf(img *image.Gray, cx, cy, size, veinWidth int, angle float64, body, vein uint8) {
	// Semi-axes in tenths of a pixel: size/2 and 0.3*size.
	a10, b10 := 5*size, 3*size
	fillEllipse(img, cx, cy, a10, b10, angle, body)
	sin, cos := math.Sincos(angle)
	if angle == 0 {
		sin, cos = 0, 1
	}
	// at maps (u, v) in the leaf's frame (u along its width) to the image.
	at := func(u, v float64) point {
		return point{
			float64(cx) + float64(u*cos) - float64(v*sin),
			float64(cy) + float64(u*sin) + float64(v*cos),
		}
	}
	hb := float64(b10) / 10 // half the height
	drawLine(img, at(0, -hb), at(0, hb), veinWidth, vein)
	half := float64(size) / 6 // half a side vein
	for _, v := range []float64{-hb / 2, 0, hb / 2} {
		drawLine(img, at(-half, v), at(half, v), veinWidth, vein)
	}
}

// listSome joins the first n names, with ", ..." when there are more.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + ", ..."
}

// isDirOrLink reports whether e, in dir, is a folder or a link to one (a
// linked class folder counts as one).
func isDirOrLink(dir string, e os.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, e.Name()))
	return err == nil && fi.IsDir()
}
