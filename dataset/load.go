package dataset

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // decoders, registered for image.Decode
	_ "image/jpeg"
	_ "image/png"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	_ "golang.org/x/image/bmp"
	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// imageExts are the file extensions Load reads (compared in lower case); other
// files are ignored.
var imageExts = []string{".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

// layoutHint says what Load expects; it ends the errors about a folder's layout.
const layoutHint = "expected " + Layouts

// Layouts names the two layouts of an image folder that Load reads, for
// messages that say what to give.
const Layouts = "image files named LEAF_* and NO_* side by side (the leaves layout) " +
	"or one sub-folder of images per class"

// LoadOptions configures Load. The zero value loads images at their own size,
// gray if they all are, and fails on the first unreadable file.
type LoadOptions struct {
	// Width and Height are the size, in pixels, every image is resized to (with
	// Catmull-Rom interpolation). Zero for both keeps the images' own size, which
	// must then be the same for all; one zero takes the other's value.
	Width, Height int
	// Channels is 1 (gray; color images are converted with ITU-R BT.601 weights,
	// as image/color.GrayModel does) or 3 (red, green, blue; gray images are
	// repeated). Zero means 1 when every image is gray (all pixels have equal
	// red, green and blue), else 3. Colors are read premultiplied by alpha, so
	// transparent pixels count as black.
	Channels int
	// SkipBad skips files that cannot be read or decoded (and, in the leaves
	// layout, image files whose name has neither prefix), listing them in
	// LoadReport.Skipped. False makes Load fail on the first such file, in
	// sorted order.
	SkipBad bool
	// OneClass accepts a folder with a single class folder: images to
	// measure a model on (a field check of one class), not to train one.
	OneClass bool
	// Workers is the number of files decoded at once. Zero means
	// runtime.GOMAXPROCS(0). The result does not depend on it.
	Workers int
	// Progress, if not nil, is called after each file is decoded with the number
	// decoded so far and the number of image files. Calls never overlap.
	Progress func(done, total int)
	// Skipped, if not nil, is called with the files skipped under SkipBad,
	// in sorted order, for callers that do not see the LoadReport.
	Skipped func(bad []*BadFile)
}

// BadFile is a file Load could not use: the error of a failed Load, or an entry
// of LoadReport.Skipped.
type BadFile struct {
	Path string // as found: the folder given to Load joined with the file's name
	Err  error
}

func (b *BadFile) Error() string { return b.Path + ": " + b.Err.Error() }
func (b *BadFile) Unwrap() error { return b.Err }

// LoadReport lists what Load left out.
type LoadReport struct {
	// Skipped are the bad files skipped under LoadOptions.SkipBad, in sorted
	// order.
	Skipped []*BadFile
	// Ignored counts the files left out because their extension is not an image
	// format Load reads. Hidden files and folders (name starting with ".") are
	// not counted.
	Ignored int
	// IgnoredFiles names the first of them (at most maxIgnoredNamed),
	// relative to the folder, sorted within each folder.
	IgnoredFiles []string
}

// maxIgnoredNamed is how many ignored files a LoadReport names.
const maxIgnoredNamed = 3

// ignore counts a file left out for its extension, naming the first few.
func (r *LoadReport) ignore(rel string) {
	r.Ignored++
	if len(r.IgnoredFiles) < maxIgnoredNamed {
		r.IgnoredFiles = append(r.IgnoredFiles, rel)
	}
}

// ErrOneClass marks the error of a folder with a single class folder, which
// LoadOptions.OneClass accepts.
var ErrOneClass = errors.New("a classifier needs images of at least two classes")

// errNoPrefix marks an image file of the leaves layout without LEAF_ or NO_.
var errNoPrefix = errors.New("name starts with neither " + PrefixLeaf + " nor " + PrefixNoLeaf +
	" (the leaves layout gives the class by that prefix)")

// Load reads the image folder dir. Its layout is detected: sub-folders make it
// LayoutClassFolders (every non-hidden sub-folder is a class, searched
// recursively, following symbolic links to folders; the class names sorted
// give the labels), otherwise LayoutPrefix. It reads PNG, JPEG, GIF, BMP, TIFF
// and WebP files (by extension).
//
// An empty folder, a folder without images, a flat folder where no image is
// named LEAF_* or NO_*, a layout with fewer than two classes, a class without
// images or a link back to an enclosing folder is an error, as is any
// unreadable, empty or corrupt file (a *BadFile naming it) unless opts.SkipBad
// is set.
func Load(dir string, opts LoadOptions) (*Dataset, *LoadReport, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	layout, classes, files, rep, err := scan(dir, opts.OneClass)
	if err != nil {
		return nil, nil, err
	}
	labels, bad, err := label(dir, layout, classes, files)
	if err != nil {
		return nil, nil, err
	}

	samples := decodeAll(dir, files, labels, opts)
	d := &Dataset{Dir: dir, Layout: layout, Classes: classes, Height: opts.Height, Width: opts.Width}
	var kept []*sample
	for i, s := range samples {
		if s.err != nil {
			bad = append(bad, &BadFile{filepath.Join(dir, filepath.FromSlash(files[i])), s.err})
			continue
		}
		if labels[i] < 0 {
			continue // already in bad
		}
		kept = append(kept, s)
		d.Files = append(d.Files, files[i])
		d.Labels = append(d.Labels, labels[i])
	}
	slices.SortFunc(bad, func(a, b *BadFile) int { return strings.Compare(a.Path, b.Path) })
	if len(bad) > 0 && !opts.SkipBad {
		return nil, nil, bad[0]
	}
	rep.Skipped = bad
	if opts.Skipped != nil && len(bad) > 0 {
		opts.Skipped(bad)
	}

	if err := checkClasses(dir, layout, classes, d, len(bad), opts.OneClass); err != nil {
		return nil, nil, err
	}
	im, err := packImages(dir, d.Files, kept, d.Width, d.Height, opts.Channels)
	if err != nil {
		return nil, nil, err
	}
	d.Width, d.Height, d.Channels, d.Pixels, d.Hash, d.Recoloured, d.Copies = im.Width, im.Height, im.Channels, im.Pixels, im.Hash, im.Recoloured, im.Copies
	d.Sizes, d.Transparent = im.Sizes, im.Transparent
	return d, rep, nil
}

// packImages lays the decoded images kept (of files, in dir) out as
// Load's result does: at width x height (zero: their own size, which must
// then be the same for all), in channels (zero: 1 when every image is gray,
// else 3), with the hash of the files' content.
func packImages(dir string, files []string, kept []*sample, width, height, channels int) (*Images, error) {
	m := &Images{Dir: dir, Width: width, Height: height, Channels: channels, Files: files}
	if m.Width == 0 {
		if err := sameSize(dir, files, kept); err != nil {
			return nil, err
		}
		m.Width, m.Height = kept[0].img.Bounds().Dx(), kept[0].img.Bounds().Dy()
	}
	if m.Channels == 0 {
		m.Channels = 1
		for _, s := range kept {
			if !s.gray {
				m.Channels = 3
				break
			}
		}
	}
	size := m.ImageSize()
	m.Pixels = make([]float32, len(kept)*size)
	m.Sizes = make([]image.Point, len(kept))
	sums := sha256.New()
	first := map[[sha256.Size]byte]int{}
	for i, s := range kept {
		if s.gray != (m.Channels == 1) {
			m.Recoloured = append(m.Recoloured, i)
		}
		if m.Sizes[i] = s.size; s.alpha {
			m.Transparent = append(m.Transparent, i)
		}
		if j, ok := first[s.sum]; ok {
			m.Copies = append(m.Copies, [2]int{j, i})
		} else {
			first[s.sum] = i
		}
		pack(m.Pixels[i*size:(i+1)*size], s.img, m.Channels)
		fmt.Fprintf(sums, "%s  %s\n", hex.EncodeToString(s.sum[:]), files[i])
	}
	m.Hash = "sha256:" + hex.EncodeToString(sums.Sum(nil))
	return m, nil
}

// label labels every file; in the leaves layout a name without prefix is a
// bad file (label -1), unless no name has a prefix: then the folder is not
// in that layout at all, and skipping would leave nothing.
func label(dir string, layout Layout, classes, files []string) ([]int, []*BadFile, error) {
	labels := make([]int, len(files))
	var bad []*BadFile
	for i, f := range files {
		labels[i] = -1
		if layout == LayoutClassFolders {
			labels[i] = slices.Index(classes, strings.SplitN(f, "/", 2)[0])
			continue
		}
		switch {
		case strings.HasPrefix(f, PrefixLeaf):
			labels[i] = 1
		case strings.HasPrefix(f, PrefixNoLeaf):
			labels[i] = 0
		default:
			bad = append(bad, &BadFile{filepath.Join(dir, filepath.FromSlash(f)), errNoPrefix})
		}
	}
	if len(files) > 0 && len(bad) == len(files) {
		return nil, nil, fmt.Errorf("%s is not in the leaves layout: none of its %d image files (%s, ...) is named %s* or %s*; %s (e.g. %s)",
			dir, len(files), files[0], PrefixLeaf, PrefixNoLeaf, layoutHint, filepath.Join(dir, "CLASS", files[0]))
	}
	return labels, bad, nil
}

func (o LoadOptions) validate() error {
	var errs []error
	if o.Width < 0 || o.Height < 0 {
		errs = append(errs, fmt.Errorf("size: width and height must be positive, got %dx%d", o.Width, o.Height))
	}
	if o.Channels != 0 && o.Channels != 1 && o.Channels != 3 {
		errs = append(errs, fmt.Errorf("channels: must be 1, 3 or 0 (automatic), got %d", o.Channels))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers: must be positive, got %d", o.Workers))
	}
	return errors.Join(errs...)
}

// withDefaults checks o and fills in its defaults: the workers, and a size
// given by one side only.
func (o LoadOptions) withDefaults() (LoadOptions, error) {
	if err := o.validate(); err != nil {
		return o, err
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	o.Width = cmp.Or(o.Width, o.Height)
	o.Height = cmp.Or(o.Height, o.Width)
	return o, nil
}

// folderEntries lists dir's image files and sub-folders (following links
// to folders), in name order, and counts its other files; hidden entries
// (name starting with ".") are left out.
func folderEntries(dir string) (files, folders, ignored []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasPrefix(name, "."):
		case isDir(dir, e):
			folders = append(folders, name)
		case isImage(name):
			files = append(files, name)
		default:
			ignored = append(ignored, name)
		}
	}
	return files, folders, ignored, nil
}

// scan lists the image files of dir (relative, slash-separated, sorted) and
// detects its layout.
func scan(dir string, oneClass bool) (Layout, []string, []string, *LoadReport, error) {
	files, classes, ignored, err := folderEntries(dir)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe) && (errors.Is(pe.Err, fs.ErrNotExist) || errors.Is(pe.Err, syscall.ENOTDIR)): // pe's own text repeats the path
		return 0, nil, nil, nil, fmt.Errorf("image folder %s: %w; give a folder of %s", dir, pe.Err, Layouts)
	case err != nil:
		return 0, nil, nil, nil, fmt.Errorf("open dataset: %w", err)
	}
	rep := &LoadReport{}
	for _, name := range ignored {
		rep.ignore(name)
	}
	switch {
	case len(files)+len(classes)+len(ignored) == 0:
		return 0, nil, nil, nil, fmt.Errorf("%s is empty; %s", dir, layoutHint)
	case len(classes) > 0 && len(files) > 0:
		return 0, nil, nil, nil, fmt.Errorf("%s holds both image files (%s, ...) and sub-folders (%s, ...); %s",
			dir, files[0], classes[0], layoutHint)
	case len(files) > 0:
		return LayoutPrefix, []string{ClassNoLeaf, ClassLeaf}, files, rep, nil
	case len(classes) == 0:
		return 0, nil, nil, nil, fmt.Errorf("%s holds no image files (%s); %s", dir, strings.Join(imageExts, " "), layoutHint)
	case len(classes) == 1 && !oneClass && slices.Contains(splitNames, strings.ToLower(classes[0])):
		return 0, nil, nil, nil, fmt.Errorf("%s has a single folder, %s, named as a split, not a class; %w: if it holds a folder per class, give it (%s)",
			dir, classes[0], ErrOneClass, filepath.Join(dir, classes[0]))
	case len(classes) == 1 && !oneClass:
		return 0, nil, nil, nil, fmt.Errorf("%s has a single class folder (%s); %w; %s",
			dir, classes[0], ErrOneClass, layoutHint)
	}
	w := newWalker(dir, true) // one for every class: a folder two classes link is refused
	for _, c := range classes {
		n := len(files)
		root := filepath.Join(dir, c)
		err := w.walk(c, func(rel string) {
			if isImage(rel) {
				files = append(files, rel)
			} else {
				rep.ignore(rel)
			}
		})
		if err != nil {
			return 0, nil, nil, nil, fmt.Errorf("read class folder: %w", err)
		}
		if len(files) == n {
			return 0, nil, nil, nil, fmt.Errorf("class folder %s holds no image files (%s): add images of class %q to it, or remove it",
				root, strings.Join(imageExts, " "), c)
		}
	}
	slices.Sort(files)
	if err := splitBeforehand(dir, classes, files); err != nil {
		return 0, nil, nil, nil, err
	}
	return LayoutClassFolders, classes, files, rep, nil
}

// splitNames are the folder names of a dataset's splits.
var splitNames = []string{"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval"}

// splitBeforehand refuses a folder whose class folders are all named as
// splits and hold folders of their own (train/CLASS/..., test/CLASS/...,
// the layout of many published datasets): read as class folders, it would
// train a classifier of "test" against "train" without a word.
func splitBeforehand(dir string, classes, files []string) error {
	for _, c := range classes {
		if !slices.Contains(splitNames, strings.ToLower(c)) {
			return nil
		}
	}
	for _, f := range files {
		if parts := strings.Split(f, "/"); len(parts) >= 3 {
			one := parts[0] // the folder to offer: the training split's, if there is one
			for _, c := range classes {
				if l := strings.ToLower(c); l == "train" || l == "training" {
					one = c
				}
			}
			return fmt.Errorf("%s is split beforehand: its folders %s are splits, each with folders of its own (%s, ...), not classes; "+
				"nasctl makes its own training, validation and test splits (the split plans of --plan): give one folder with a "+
				"sub-folder per class, such as one split's (%s), or merge the splits' class folders into one",
				dir, strings.Join(classes, ", "), path.Join(parts[0], parts[1]), filepath.Join(dir, one))
		}
	}
	return nil
}

// ImageFiles lists the image files in dir and its subfolders (those whose
// extension Load reads), folder by folder in name order; an error when there
// is none. It skips hidden files and follows links to folders as Load does.
func ImageFiles(dir string) ([]string, error) {
	var files []string
	err := walkFiles(dir, "", func(rel string) {
		if isImage(rel) {
			files = append(files, filepath.Join(dir, filepath.FromSlash(rel)))
		}
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no image files (%s)", dir, strings.Join(imageExts, " "))
	}
	return files, nil
}

func isImage(name string) bool {
	return slices.Contains(imageExts, strings.ToLower(path.Ext(name)))
}

// checkClasses makes sure every class still has images after bad files were
// skipped; with oneClass, that one has.
func checkClasses(dir string, layout Layout, classes []string, d *Dataset, skipped int, oneClass bool) error {
	counts := d.ClassCounts(nil)
	with := 0 // classes with images
	for _, n := range counts {
		if n > 0 {
			with++
		}
	}
	if oneClass && with > 0 {
		return nil
	}
	for c, n := range counts {
		if n > 0 {
			continue
		}
		var what string
		if layout == LayoutPrefix {
			prefix := map[string]string{ClassLeaf: PrefixLeaf, ClassNoLeaf: PrefixNoLeaf}[classes[c]]
			what = fmt.Sprintf("%s has no usable %s images (class %q)", dir, prefix+"*", classes[c])
		} else {
			what = fmt.Sprintf("class folder %s has no usable images", filepath.Join(dir, classes[c]))
		}
		if skipped > 0 {
			what += fmt.Sprintf(" after skipping %d bad files", skipped)
		}
		if with == 1 {
			return fmt.Errorf("%s; %w; %s", what, ErrOneClass, layoutHint)
		}
		return fmt.Errorf("%s; a classifier needs images of at least two classes; %s", what, layoutHint)
	}
	return nil
}

// MixedSizesError is the error of reading, without a size to resize them
// to, a folder whose images do not all have the first one's size. Its
// message ends in general advice; a caller with a flag for the size may
// word the advice with its flag (Fact says what was found).
type MixedSizesError struct {
	File, First     string // the first image of another size, and the first image
	Size, FirstSize image.Point
}

func (e *MixedSizesError) Error() string {
	return e.Fact() + "; give a size to resize every image to it"
}

// Fact is the message without its advice. Sizes are spelt out and given
// height first, as every size flag takes them.
func (e *MixedSizesError) Fact() string {
	return fmt.Sprintf("%s is %s but %s is %s", e.File, heightWidth(e.Size), e.First, heightWidth(e.FirstSize))
}

func heightWidth(p image.Point) string {
	return fmt.Sprintf("%d high and %d wide (HxW %dx%d)", p.Y, p.X, p.Y, p.X)
}

// sameSize checks that all images have the size of the first.
func sameSize(dir string, files []string, samples []*sample) error {
	first := samples[0].img.Bounds().Size()
	for i, s := range samples {
		if sz := s.img.Bounds().Size(); sz != first {
			return &MixedSizesError{File: filepath.Join(dir, filepath.FromSlash(files[i])), Size: sz,
				First: filepath.Join(dir, filepath.FromSlash(files[0])), FirstSize: first}
		}
	}
	return nil
}

// sample is one decoded file, converted and resized.
type sample struct {
	img  image.Image // *image.Gray when gray, else *image.RGBA
	gray bool
	sum  [sha256.Size]byte
	err  error
	// size is the file's own size; alpha, whether a pixel is not opaque.
	size  image.Point
	alpha bool
}

// decodeAll decodes files in parallel. Files whose label is negative are
// skipped (their sample is empty). When opts.SkipBad is false, decoding stops
// early after a bad file, but never before every file sorted before it is done,
// so the first bad file is the same whatever the number of workers.
func decodeAll(dir string, files []string, labels []int, opts LoadOptions) []*sample {
	samples := make([]*sample, len(files))
	var (
		next    atomic.Int64
		stopAt  atomic.Int64 // no file at or after this index is started
		mu      sync.Mutex
		done    int
		workers sync.WaitGroup
	)
	stopAt.Store(int64(len(files)))
	for range min(opts.Workers, max(1, len(files))) {
		workers.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= stopAt.Load() {
					return
				}
				s := &sample{}
				if labels[i] >= 0 {
					s = decodeFile(filepath.Join(dir, filepath.FromSlash(files[i])), opts.Width, opts.Height)
				}
				samples[i] = s
				if s.err != nil && !opts.SkipBad {
					for {
						old := stopAt.Load()
						if i+1 >= old || stopAt.CompareAndSwap(old, i+1) {
							break
						}
					}
				}
				mu.Lock()
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(files))
				}
				mu.Unlock()
			}
		})
	}
	workers.Wait()
	// Files never started (after a bad one) are left out; the caller reports the
	// first bad file, which comes before them.
	out := samples[:0]
	for _, s := range samples {
		if s == nil {
			break
		}
		out = append(out, s)
	}
	return out
}

// maxPixels bounds the size of one image (a 16k x 8k photo), so that a corrupt
// header fails cleanly instead of exhausting memory.
const maxPixels = 1 << 27

// decodeFile reads and decodes one image and brings it to w x h (unless w is
// zero), gray or RGBA.
func decodeFile(file string, w, h int) *sample {
	data, err := os.ReadFile(file)
	if err != nil {
		// The path is in BadFile already; keep only the cause.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &sample{err: fmt.Errorf("cannot read: %w", err)}
	}
	if len(data) == 0 {
		return &sample{err: errors.New("empty file")}
	}
	// The header first, so that a corrupt size cannot claim gigabytes.
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return &sample{err: fmt.Errorf("not a decodable image: %w", err)}
	}
	if cfg.Width < 1 || cfg.Height < 1 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return &sample{err: fmt.Errorf("%s image of %dx%d pixels: want 1 to %d pixels", format, cfg.Width, cfg.Height, maxPixels)}
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return &sample{err: fmt.Errorf("not a decodable image: %w", err)}
	}
	b := src.Bounds()
	s := &sample{sum: sha256.Sum256(data), size: b.Size()}
	var img image.Image
	if gray, ok := src.(*image.Gray); ok && b.Min == (image.Point{}) && gray.Stride == b.Dx() {
		s.gray = true
		img = gray
	} else {
		rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Bounds(), src, b.Min, draw.Src)
		s.gray, s.alpha = isGray(rgba), !rgba.Opaque()
		img = rgba
	}
	if w != 0 && (b.Dx() != w || b.Dy() != h) {
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
		img = dst
	}
	if rgba, ok := img.(*image.RGBA); ok && s.gray {
		img = redChannel(rgba)
	}
	s.img = img
	return s
}

// isGray reports whether every pixel of m has equal red, green and blue.
func isGray(m *image.RGBA) bool {
	for p := 0; p+3 < len(m.Pix); p += 4 {
		if m.Pix[p] != m.Pix[p+1] || m.Pix[p] != m.Pix[p+2] {
			return false
		}
	}
	return true
}

// redChannel returns the red channel of m as a gray image.
func redChannel(m *image.RGBA) *image.Gray {
	b := m.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
		out := g.Pix[g.PixOffset(0, y):]
		for x := range b.Dx() {
			out[x] = row[4*x]
		}
	}
	return g
}

// pack writes img (a *image.Gray or *image.RGBA with its origin at 0, 0 and
// rows without padding, as decodeFile makes them) into dst with the given number of channels, channel-major, scaled to [0, 1].
func pack(dst []float32, img image.Image, channels int) {
	switch m := img.(type) {
	case *image.Gray:
		plane := len(m.Pix)
		for c := range channels {
			for p, v := range m.Pix {
				dst[c*plane+p] = float32(v) / 255
			}
		}
	case *image.RGBA:
		plane := len(m.Pix) / 4
		for p := range plane {
			r, g, b := uint32(m.Pix[4*p]), uint32(m.Pix[4*p+1]), uint32(m.Pix[4*p+2])
			if channels == 1 {
				// BT.601 luma with image/color.GrayModel's 16-bit weights and rounding.
				y := (19595*r*0x101 + 38470*g*0x101 + 7471*b*0x101 + 1<<15) >> 24
				dst[p] = float32(y) / 255
				continue
			}
			dst[p] = float32(r) / 255
			dst[plane+p] = float32(g) / 255
			dst[2*plane+p] = float32(b) / 255
		}
	default:
		panic(fmt.Sprintf("dataset: pack: unexpected image type %T", img))
	}
}

// ReadImage reads one image file the way Load reads a dataset's images: resized
// to width x height (unless width is zero) and converted to channels (1 or 3),
// NCHW, scaled to [0, 1]. The error names the file.
func ReadImage(path string, width, height, channels int) ([]float32, error) {
	px, _, err := ReadImageFacts(path, width, height, channels)
	return px, err
}

// ImageFacts are what reading an image changed of it.
type ImageFacts struct {
	Size  image.Point // the file's own width and height
	Gray  bool        // every pixel has equal red, green and blue
	Alpha bool        // some pixel is not opaque (read premultiplied: as if over black)
}

// ReadImageFacts is ReadImage, with the facts of the file that reading it
// changed.
func ReadImageFacts(path string, width, height, channels int) ([]float32, ImageFacts, error) {
	if channels != 1 && channels != 3 {
		return nil, ImageFacts{}, fmt.Errorf("%s: channels must be 1 or 3, got %d", path, channels)
	}
	s := decodeFile(path, width, height)
	if s.err != nil {
		return nil, ImageFacts{}, &BadFile{Path: path, Err: s.err}
	}
	b := s.img.Bounds()
	out := make([]float32, channels*b.Dx()*b.Dy())
	pack(out, s.img, channels)
	return out, ImageFacts{Size: s.size, Gray: s.gray, Alpha: s.alpha}, nil
}
