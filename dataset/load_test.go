package dataset

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeImage encodes img into dir/name as PNG, or JPEG for a .jpg name.
func writeImage(t *testing.T, dir, name string, img image.Image) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(name, ".jpg") {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 100})
	} else {
		err = png.Encode(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// uniformGray and uniformRGB return a w x h image of one color.
func uniformGray(w, h int, v uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	return img
}

func uniformRGB(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadGenerated(t *testing.T) {
	dir := t.TempDir()
	rep, err := Generate(context.Background(), dir, Options{Count: 60, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	d, lr, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Layout != LayoutPrefix || !slices.Equal(d.Classes, []string{"no_leaf", "leaf"}) {
		t.Errorf("layout %v, classes %v", d.Layout, d.Classes)
	}
	if d.Len() != 60 || d.Channels != 1 || d.Width != 64 || d.Height != 64 || len(d.Pixels) != 60*64*64 {
		t.Fatalf("got %d images %dx%dx%d, %d values", d.Len(), d.Width, d.Height, d.Channels, len(d.Pixels))
	}
	if c := d.ClassCounts(nil); c[1] != rep.Leaf || c[0] != 60-rep.Leaf {
		t.Errorf("class counts %v, generator wrote %d leaf images", c, rep.Leaf)
	}
	if len(lr.Skipped) != 0 || lr.Ignored != 0 {
		t.Errorf("report %+v, want nothing skipped", lr)
	}
	// Files are sorted, labels follow the prefix and pixels are the PNG's / 255.
	if !slices.IsSorted(d.Files) {
		t.Error("files not sorted")
	}
	for i, f := range d.Files {
		if want := map[bool]int{true: 1, false: 0}[strings.HasPrefix(f, "LEAF_")]; d.Labels[i] != want {
			t.Fatalf("%s has label %d", f, d.Labels[i])
		}
	}
	file, err := os.Open(filepath.Join(dir, d.Files[7]))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	img, err := png.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	px := d.Image(7)
	for p, v := range img.(*image.Gray).Pix {
		if px[p] != float32(v)/255 {
			t.Fatalf("%s pixel %d: %v, want %d/255", d.Files[7], p, px[p], v)
		}
	}
	if !strings.HasPrefix(d.Hash, "sha256:") || len(d.Hash) != len("sha256:")+64 {
		t.Errorf("hash %q", d.Hash)
	}
}

func TestLoadDeterministicAcrossWorkers(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(context.Background(), dir, Options{Count: 40, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	a, _, err := Load(dir, LoadOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Load(dir, LoadOptions{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash || !slices.Equal(a.Pixels, b.Pixels) || !slices.Equal(a.Labels, b.Labels) {
		t.Error("loading with 1 and 4 workers differs")
	}
}

func TestLoadHash(t *testing.T) {
	mk := func(edit func(dir string)) string {
		dir := t.TempDir()
		writeImage(t, dir, "LEAF_0.png", uniformGray(4, 4, 10))
		writeImage(t, dir, "NO_0.png", uniformGray(4, 4, 200))
		edit(dir)
		d, _, err := Load(dir, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Hash
	}
	base := mk(func(string) {})
	if again := mk(func(string) {}); again != base {
		t.Error("same files, different hashes")
	}
	changed := mk(func(dir string) { writeImage(t, dir, "NO_0.png", uniformGray(4, 4, 201)) })
	renamed := mk(func(dir string) {
		if err := os.Rename(filepath.Join(dir, "NO_0.png"), filepath.Join(dir, "NO_1.png")); err != nil {
			t.Fatal(err)
		}
	})
	added := mk(func(dir string) { writeImage(t, dir, "NO_1.png", uniformGray(4, 4, 5)) })
	ignored := mk(func(dir string) { writeFile(t, dir, "notes.txt", []byte("x")) })
	if changed == base || renamed == base || added == base {
		t.Error("changing, renaming or adding a file keeps the hash")
	}
	if ignored != base {
		t.Error("a non-image file changes the hash")
	}
}

func TestLoadClassFolders(t *testing.T) {
	dir := t.TempDir()
	// Classes sorted by name give the labels: cat 0, dog 1, fox 2.
	writeImage(t, dir, "dog/a.png", uniformGray(8, 8, 100))
	writeImage(t, dir, "dog/sub/b.jpg", uniformGray(8, 8, 110))
	writeImage(t, dir, "cat/x.PNG", uniformGray(8, 8, 120))
	writeImage(t, dir, "fox/y.png", uniformGray(8, 8, 130))
	writeFile(t, dir, "fox/readme.md", []byte("ignored"))
	writeFile(t, dir, "fox/.hidden.png", []byte("not even an image"))
	writeFile(t, dir, ".cache/z.png", []byte("hidden folder"))
	d, rep, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Layout != LayoutClassFolders || !slices.Equal(d.Classes, []string{"cat", "dog", "fox"}) {
		t.Fatalf("layout %v classes %v", d.Layout, d.Classes)
	}
	if want := []string{"cat/x.PNG", "dog/a.png", "dog/sub/b.jpg", "fox/y.png"}; !slices.Equal(d.Files, want) {
		t.Errorf("files %v, want %v", d.Files, want)
	}
	if !slices.Equal(d.Labels, []int{0, 1, 1, 2}) {
		t.Errorf("labels %v", d.Labels)
	}
	if rep.Ignored != 1 || !slices.Equal(rep.IgnoredFiles, []string{"fox/readme.md"}) {
		t.Errorf("ignored %d files %q, want 1 (fox/readme.md)", rep.Ignored, rep.IgnoredFiles)
	}
	// Of many, the first few are named and all are counted.
	for i := range 5 {
		writeFile(t, dir, fmt.Sprintf("cat/notes-%d.txt", i), []byte("x"))
	}
	if _, rep, err := Load(dir, LoadOptions{}); err != nil || rep.Ignored != 6 || !slices.Equal(rep.IgnoredFiles, []string{"cat/notes-0.txt", "cat/notes-1.txt", "cat/notes-2.txt"}) {
		t.Errorf("6 ignored: %v, %d files %q", err, rep.Ignored, rep.IgnoredFiles)
	}
	if d.Channels != 1 { // the JPEG is grayscale too
		t.Errorf("channels %d, want 1", d.Channels)
	}
	// A lossless PNG: value exact. Quality-100 grayscale JPEG: within 1 level.
	if got := d.Image(0)[0]; got != 120.0/255 {
		t.Errorf("cat/x.PNG pixel %v, want 120/255", got)
	}
	if got := d.Image(2)[0] * 255; math.Abs(float64(got)-110) > 1 {
		t.Errorf("dog/sub/b.jpg pixel %v/255, want 110 +- 1", got)
	}
}

func TestLoadRGB(t *testing.T) {
	dir := t.TempDir()
	red := color.RGBA{200, 10, 30, 255}
	writeImage(t, dir, "a/red.png", uniformRGB(4, 3, red))
	writeImage(t, dir, "b/gray.png", uniformGray(4, 3, 90))
	// Channels auto: one color image makes it RGB; the gray image is repeated.
	d, _, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Channels != 3 || d.ImageSize() != 3*4*3 {
		t.Fatalf("channels %d, image size %d", d.Channels, d.ImageSize())
	}
	// NCHW: the red plane (12 values), then green, then blue.
	img := d.Image(0)
	for p := range 12 {
		if img[p] != 200.0/255 || img[12+p] != 10.0/255 || img[24+p] != 30.0/255 {
			t.Fatalf("red image value %d: %v %v %v", p, img[p], img[12+p], img[24+p])
		}
	}
	for _, v := range d.Image(1) {
		if v != 90.0/255 {
			t.Fatalf("gray image in RGB: %v, want 90/255 in every channel", v)
		}
	}
	// Forced to one channel: BT.601 luma 0.299*200 + 0.587*10 + 0.114*30 = 69.1.
	g, _, err := Load(dir, LoadOptions{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Image(0)[0] * 255; g.Channels != 1 || math.Abs(float64(got)-69.1) > 0.6 {
		t.Errorf("luma %v (channels %d), want 69.1 +- 0.6", got, g.Channels)
	}
	// Each load names the images read in the other colour: the gray one
	// repeated into RGB, the red one read as gray.
	if !slices.Equal(d.Recoloured, []int{1}) || !slices.Equal(g.Recoloured, []int{0}) || !slices.Equal(g.Images().Recoloured, []int{0}) {
		t.Errorf("recoloured: RGB %v, gray %v; want [1] and [0]", d.Recoloured, g.Recoloured)
	}
	// An RGB file whose pixels are all gray counts as gray.
	dir2 := t.TempDir()
	writeImage(t, dir2, "LEAF_0.png", uniformRGB(4, 4, color.RGBA{50, 50, 50, 255}))
	writeImage(t, dir2, "NO_0.png", uniformGray(4, 4, 60))
	if d, _, err := Load(dir2, LoadOptions{}); err != nil || d.Channels != 1 || len(d.Recoloured) != 0 {
		t.Errorf("gray RGB file: channels %v, recoloured %v, err %v; want 1 and none", d.Channels, d.Recoloured, err)
	}
}

func TestLoadResize(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "LEAF_0.png", uniformGray(32, 32, 77))
	writeImage(t, dir, "NO_0.png", uniformRGB(20, 10, color.RGBA{10, 100, 250, 255}))
	// Different sizes need a target size; the error says which files differ,
	// height first as the size flags take it (NO_0.png is 20 wide, 10 high).
	_, _, err := Load(dir, LoadOptions{})
	var mixed *MixedSizesError
	if !errors.As(err, &mixed) || filepath.Base(mixed.File) != "NO_0.png" || mixed.Size != image.Pt(20, 10) ||
		filepath.Base(mixed.First) != "LEAF_0.png" || mixed.FirstSize != image.Pt(32, 32) ||
		!strings.Contains(err.Error(), "NO_0.png is 10 high and 20 wide (HxW 10x20) but ") ||
		!strings.Contains(err.Error(), "LEAF_0.png is 32 high and 32 wide (HxW 32x32);") || !strings.HasSuffix(err.Error(), "give a size to resize every image to it") {
		t.Fatalf("mixed sizes: %v (%+v)", err, mixed)
	}
	d, _, err := Load(dir, LoadOptions{Width: 16}) // Height follows
	if err != nil {
		t.Fatal(err)
	}
	if d.Width != 16 || d.Height != 16 || d.Channels != 3 || len(d.Pixels) != 2*3*16*16 {
		t.Fatalf("got %dx%dx%d, %d values", d.Width, d.Height, d.Channels, len(d.Pixels))
	}
	// Interpolation keeps a uniform image uniform (the kernel weights sum to 1),
	// up to rounding to 8 bits.
	check := func(name string, px []float32, want []float64) {
		plane := len(px) / len(want)
		for c, w := range want {
			for _, v := range px[c*plane : (c+1)*plane] {
				if math.Abs(float64(v)*255-w) > 1 {
					t.Fatalf("%s channel %d: %v, want %v/255", name, c, v*255, w)
				}
			}
		}
	}
	check("LEAF_0.png", d.Image(0), []float64{77, 77, 77})
	check("NO_0.png", d.Image(1), []float64{10, 100, 250})
}

func TestLoadBadFiles(t *testing.T) {
	good := func(t *testing.T) string {
		dir := t.TempDir()
		writeImage(t, dir, "LEAF_0.png", uniformGray(4, 4, 10))
		writeImage(t, dir, "NO_0.png", uniformGray(4, 4, 200))
		writeImage(t, dir, "NO_9.png", uniformGray(4, 4, 201))
		return dir
	}
	cases := []struct {
		name, file, want string
		make             func(t *testing.T, dir string)
	}{
		{"corrupt", "LEAF_1.png", "LEAF_1.png: not a decodable image", func(t *testing.T, dir string) {
			writeFile(t, dir, "LEAF_1.png", []byte("\x89PNG\r\n\x1a\nnot really"))
		}},
		{"empty", "NO_5.png", "NO_5.png: empty file", func(t *testing.T, dir string) {
			writeFile(t, dir, "NO_5.png", nil)
		}},
		{"unreadable", "NO_3.png", "NO_3.png: cannot read", func(t *testing.T, dir string) {
			// A dangling link cannot be opened even by root, unlike a chmod 000 file.
			if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "NO_3.png")); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", "LEAF_2.png", "LEAF_2.png: not a decodable image", func(t *testing.T, dir string) {
			data, err := os.ReadFile(filepath.Join(dir, "LEAF_0.png"))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "LEAF_2.png", data[:len(data)/2])
		}},
		{"huge header", "NO_4.png", "NO_4.png: png image of 200000x100000 pixels: want 1 to", func(t *testing.T, dir string) {
			// A valid PNG whose header claims 2e10 pixels: refused before decoding.
			var b bytes.Buffer
			if err := png.Encode(&b, uniformGray(1, 1, 0)); err != nil {
				t.Fatal(err)
			}
			data := b.Bytes()
			binary.BigEndian.PutUint32(data[16:], 200000) // IHDR width
			binary.BigEndian.PutUint32(data[20:], 100000) // IHDR height
			binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
			writeFile(t, dir, "NO_4.png", data)
		}},
		{"no prefix", "leaf_7.png", "leaf_7.png: name starts with neither LEAF_ nor NO_", func(t *testing.T, dir string) {
			writeImage(t, dir, "leaf_7.png", uniformGray(4, 4, 10))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := good(t)
			c.make(t, dir)
			_, _, err := Load(dir, LoadOptions{})
			var bad *BadFile
			if !errors.As(err, &bad) || bad.Path != filepath.Join(dir, c.file) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a BadFile naming %s with %q", err, c.file, c.want)
			}
			d, rep, err := Load(dir, LoadOptions{SkipBad: true})
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != 3 || len(rep.Skipped) != 1 || rep.Skipped[0].Path != filepath.Join(dir, c.file) {
				t.Errorf("SkipBad: %d images, skipped %v; want 3 and %s", d.Len(), rep.Skipped, c.file)
			}
		})
	}
}

func TestLoadSkipBadCountsAll(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "LEAF_0.png", uniformGray(4, 4, 10))
	writeImage(t, dir, "NO_0.png", uniformGray(4, 4, 200))
	for _, n := range []string{"NO_2.png", "LEAF_3.jpg", "LEAF_1.png"} {
		writeFile(t, dir, n, []byte("garbage"))
	}
	// Without SkipBad the first bad file in sorted order is reported, whatever
	// the number of workers.
	for _, w := range []int{1, 2, 3} {
		_, _, err := Load(dir, LoadOptions{Workers: w})
		var bad *BadFile
		if !errors.As(err, &bad) || filepath.Base(bad.Path) != "LEAF_1.png" {
			t.Errorf("workers %d: %v, want LEAF_1.png", w, err)
		}
	}
	var told []*BadFile
	d, rep, err := Load(dir, LoadOptions{SkipBad: true, Skipped: func(bad []*BadFile) { told = append(told, bad...) }})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range rep.Skipped {
		names = append(names, filepath.Base(b.Path))
	}
	if d.Len() != 2 || !slices.Equal(names, []string{"LEAF_1.png", "LEAF_3.jpg", "NO_2.png"}) {
		t.Errorf("%d images, skipped %v", d.Len(), names)
	}
	if !slices.Equal(told, rep.Skipped) {
		t.Errorf("the Skipped callback got %v, the report %v", told, rep.Skipped)
	}
	// Skipping every NO_ image leaves one class: an error that says so.
	writeFile(t, dir, "NO_0.png", []byte("garbage"))
	_, _, err = Load(dir, LoadOptions{SkipBad: true})
	if err == nil || !strings.Contains(err.Error(), `no usable NO_* images (class "no_leaf") after skipping 4 bad files`) {
		t.Errorf("err = %v", err)
	}
}

func TestLoadLayoutErrors(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, dir string)
		want string
	}{
		{"empty folder", func(*testing.T, string) {}, "is empty; expected image files named LEAF_* and NO_*"},
		{"only hidden", func(t *testing.T, dir string) { writeFile(t, dir, ".DS_Store", []byte("x")) }, "is empty"},
		{"no images", func(t *testing.T, dir string) { writeFile(t, dir, "a.txt", []byte("x")) }, "holds no image files"},
		{"only LEAF_", func(t *testing.T, dir string) {
			writeImage(t, dir, "LEAF_0.png", uniformGray(4, 4, 1))
		}, `no usable NO_* images (class "no_leaf"); a classifier needs images of at least two classes`},
		{"one class folder", func(t *testing.T, dir string) {
			writeImage(t, dir, "cats/a.png", uniformGray(4, 4, 1))
		}, "has a single class folder (cats); a classifier needs images of at least two classes"},
		{"empty class folder", func(t *testing.T, dir string) {
			writeImage(t, dir, "cats/a.png", uniformGray(4, 4, 1))
			writeFile(t, dir, "dogs/notes.txt", []byte("x"))
		}, `dogs holds no image files (.png .jpg .jpeg .gif .bmp .tif .tiff .webp): add images of class "dogs" to it, or remove it`},
		{"mixed", func(t *testing.T, dir string) {
			writeImage(t, dir, "LEAF_0.png", uniformGray(4, 4, 1))
			writeImage(t, dir, "cats/a.png", uniformGray(4, 4, 1))
		}, "holds both image files (LEAF_0.png, ...) and sub-folders (cats, ...)"},
		// A dataset split beforehand would be read as the classes test and
		// train.
		{"split beforehand", func(t *testing.T, dir string) {
			for _, f := range []string{"train/cats/a.png", "train/dogs/b.png", "Test/cats/c.png", "Test/dogs/d.png"} {
				writeImage(t, dir, f, uniformGray(4, 4, 1))
			}
		}, "is split beforehand: its folders Test, train are splits, each with folders of its own (Test/cats, ...), not classes; " +
			"nasctl makes its own training, validation and test splits (the split plans of --plan): give one folder with a sub-folder per class, such as one split's ("},
		{"a split's folder alone", func(t *testing.T, dir string) {
			writeImage(t, dir, "train/cats/a.png", uniformGray(4, 4, 1))
		}, "has a single folder, train, named as a split, not a class; a classifier needs images of at least two classes: if it holds a folder per class, give it ("},
		{"split beforehand, the training split offered", func(t *testing.T, dir string) {
			for _, f := range []string{"train/cats/a.png", "train/dogs/b.png", "Test/cats/c.png", "Test/dogs/d.png"} {
				writeImage(t, dir, f, uniformGray(4, 4, 1))
			}
		}, "train), or merge the splits' class folders into one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.make(t, dir)
			if _, _, err := Load(dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	// Class folders named as splits are classes when they hold images
	// directly (no sub-folders), and so are split names beside another class.
	for name, files := range map[string][]string{
		"flat":    {"train/a.png", "test/b.png"},
		"mixed":   {"train/cats/a.png", "dogs/b.png"},
		"no test": {"trains/cats/a.png", "tests/cats/b.png"},
	} {
		dir := t.TempDir()
		for _, f := range files {
			writeImage(t, dir, f, uniformGray(4, 4, 1))
		}
		if d, _, err := Load(dir, LoadOptions{}); err != nil || len(d.Classes) != 2 {
			t.Errorf("%s: %v", name, err)
		}
	}
	nope := filepath.Join(t.TempDir(), "nope")
	if _, _, err := Load(nope, LoadOptions{}); !errors.Is(err, os.ErrNotExist) || err.Error() != "image folder "+nope+": no such file or directory; give a folder of "+Layouts {
		t.Errorf("missing folder: %v", err)
	}
	file := filepath.Join(t.TempDir(), "LEAF_0.png")
	writeImage(t, filepath.Dir(file), filepath.Base(file), uniformGray(4, 4, 1))
	if _, _, err := Load(file, LoadOptions{}); err == nil || err.Error() != "image folder "+file+": not a directory; give a folder of "+Layouts {
		t.Errorf("a file as the folder: %v", err)
	}
	// OneClass takes a single class, as a class folder or as the leaves
	// layout's one prefix; without it, the error is ErrOneClass.
	for name, make := range map[string]func(t *testing.T, dir string){
		"folder": func(t *testing.T, dir string) { writeImage(t, dir, "cats/a.png", uniformGray(4, 4, 1)) },
		"prefix": func(t *testing.T, dir string) { writeImage(t, dir, "LEAF_0.png", uniformGray(4, 4, 1)) },
	} {
		dir := t.TempDir()
		make(t, dir)
		if _, _, err := Load(dir, LoadOptions{}); !errors.Is(err, ErrOneClass) {
			t.Errorf("%s: %v, want ErrOneClass", name, err)
		}
		d, _, err := Load(dir, LoadOptions{OneClass: true})
		if err != nil || d.Len() != 1 {
			t.Errorf("%s with OneClass: %v", name, err)
		}
	}
	err := func() error { _, _, err := Load(t.TempDir(), LoadOptions{Channels: 2, Width: -1}); return err }()
	if err == nil || !strings.Contains(err.Error(), "channels: must be 1, 3") || !strings.Contains(err.Error(), "size:") {
		t.Errorf("bad options: %v", err)
	}
}

// A flat folder where no name has the leaves prefixes is someone's own
// images, not leaves data with stray names: the error says which layout is
// expected instead of offering to skip every file (a *BadFile would make
// the commands add "add --skip-bad"). One stray name is still a bad file
// (TestLoadBadFiles).
func TestLoadFlatFolderWithoutPrefixes(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b_030.png", "a_001.png", "c.jpg"} {
		writeImage(t, dir, n, uniformGray(4, 4, 1))
	}
	want := " is not in the leaves layout: none of its 3 image files (a_001.png, ...) is named LEAF_* or NO_*; " + layoutHint +
		" (e.g. " + filepath.Join(dir, "CLASS", "a_001.png") + ")"
	for _, skip := range []bool{false, true} {
		_, _, err := Load(dir, LoadOptions{SkipBad: skip})
		var bad *BadFile
		if err == nil || err.Error() != dir+want || errors.As(err, &bad) {
			t.Errorf("SkipBad %v: %v, want %q and no *BadFile", skip, err, dir+want)
		}
	}
}

func TestLoadProgress(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(context.Background(), dir, Options{Count: 12}); err != nil {
		t.Fatal(err)
	}
	last := 0
	_, _, err := Load(dir, LoadOptions{Progress: func(done, total int) {
		if total != 12 || done != last+1 {
			t.Errorf("progress (%d, %d) after %d", done, total, last)
		}
		last = done
	}})
	if err != nil || last != 12 {
		t.Errorf("err %v, last progress %d", err, last)
	}
}

// BenchmarkLoad4000 reads the study's dataset (4,000 64x64 PNG files).
func BenchmarkLoad4000(b *testing.B) {
	dir := b.TempDir()
	if _, err := Generate(context.Background(), dir, Options{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := Load(dir, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// Resizing keeps the axes and the values: a 16x8 image whose value grows by
// 10 per column and 1 per row, halved to 8x4, grows by 20 per column and 2
// per row away from the borders (Catmull-Rom reproduces a linear ramp
// exactly, up to rounding to 8 bits); a swapped axis or a shifted grid
// would show. ReadImage reads the file as Load does and names it on errors.
func TestReadImageResizesRamp(t *testing.T) {
	dir := t.TempDir()
	ramp := image.NewGray(image.Rect(0, 0, 16, 8))
	for y := range 8 {
		for x := range 16 {
			ramp.SetGray(x, y, color.Gray{Y: uint8(40 + 10*x + y)})
		}
	}
	path := filepath.Join(dir, "ramp.png")
	writeImage(t, dir, "ramp.png", ramp)
	px, err := ReadImage(path, 8, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != 8*4 {
		t.Fatalf("%d values, want 32", len(px))
	}
	at := func(x, y int) float64 { return float64(px[y*8+x]) * 255 }
	for y := 1; y < 3; y++ {
		for x := 1; x < 6; x++ {
			if d := at(x+1, y) - at(x, y); math.Abs(d-20) > 1.01 {
				t.Errorf("column step at (%d, %d): %.1f, want 20", x, y, d)
			}
		}
	}
	for x := 1; x < 7; x++ {
		if d := at(x, 2) - at(x, 1); math.Abs(d-2) > 1.01 {
			t.Errorf("row step at column %d: %.1f, want 2", x, d)
		}
	}
	// The output pixel (x, y) covers source pixels 2x..2x+1, 2y..2y+1: its
	// value is their mean, 40 + 10 (2x + 0.5) + (2y + 0.5).
	if want := 40 + 10*(2*3+0.5) + (2*1 + 0.5); math.Abs(at(3, 1)-want) > 1.01 {
		t.Errorf("pixel (3, 1): %.1f, want %.1f", at(3, 1), want)
	}
	same, err := ReadImage(path, 0, 0, 3)
	if err != nil || len(same) != 3*16*8 || same[0] != same[16*8] || math.Abs(float64(same[5])*255-90) > 0.01 {
		t.Errorf("unresized, 3 channels: %d values, %v", len(same), err)
	}
	if _, err := ReadImage(path, 8, 4, 2); err == nil || !strings.Contains(err.Error(), "channels must be 1 or 3") {
		t.Errorf("2 channels: %v", err)
	}
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("not a png"), 0o644)
	var bf *BadFile
	if _, err := ReadImage(bad, 8, 4, 1); !errors.As(err, &bf) || bf.Path != bad || !strings.Contains(err.Error(), "not a decodable image") {
		t.Errorf("corrupt file: %v", err)
	}
}

// symlink makes the link name (relative to dir) point to target, or skips
// the test where links cannot be made.
func symlink(t *testing.T, target, dir, name string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
		t.Skipf("cannot make symbolic links: %v", err)
	}
}

// A linked class folder and linked sub-folders are read like real ones
// (files named by the link's path); a folder reached under two names, or a
// link back to a folder being read, is refused.
func TestLoadFollowsLinkedFolders(t *testing.T) {
	other, dir := t.TempDir(), t.TempDir()
	for i, n := range []string{"apple/a.png", "apple/sub dir/b.png", "more/d.png", "more/e.png"} {
		writeImage(t, other, n, uniformGray(4, 4, uint8(i)))
	}
	writeImage(t, dir, "Banana/x.png", uniformGray(4, 4, 9))
	symlink(t, filepath.Join(other, "apple"), dir, "apple")
	symlink(t, filepath.Join(other, "more"), dir, "Banana/more")
	symlink(t, filepath.Join(other, "more"), dir, "Banana/.hidden")
	d, rep, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Banana/more/d.png", "Banana/more/e.png", "Banana/x.png", "apple/a.png", "apple/sub dir/b.png"}
	if !slices.Equal(d.Classes, []string{"Banana", "apple"}) || !slices.Equal(d.Files, want) ||
		!slices.Equal(d.Labels, []int{0, 0, 0, 1, 1}) || rep.Ignored != 0 {
		t.Errorf("classes %q, files %q, labels %v, ignored %d; want files %q", d.Classes, d.Files, d.Labels, rep.Ignored, want)
	}
	// The same folder linked into a second class would put its images in
	// both.
	symlink(t, filepath.Join(other, "more"), dir, "apple/sub dir/also")
	if _, _, err := Load(dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "are the same folder (through a symbolic link)") {
		t.Errorf("a folder in two classes: %v", err)
	}
	os.Remove(filepath.Join(dir, "apple", "sub dir", "also"))
	// predict's folder listing follows a linked folder given without a slash.
	files, err := ImageFiles(filepath.Join(dir, "apple"))
	if want := []string{"a.png", "sub dir/b.png"}; err != nil || len(files) != len(want) {
		t.Fatalf("ImageFiles of a linked folder: %q, %v; want %q", files, err, want)
	} else {
		for i, f := range files {
			if f != filepath.Join(dir, "apple", filepath.FromSlash(want[i])) {
				t.Errorf("ImageFiles[%d] = %s, want apple/%s", i, f, want[i])
			}
		}
	}
	// Links to an enclosing folder, the dataset's included, would never end;
	// the error names the path where the cycle closes (top/apple for top).
	for _, loop := range []struct{ link, target string }{
		{"Banana/self", "."}, {"Banana/up", ".."}, {"apple/sub dir/top", other}} {
		t.Run(loop.link, func(t *testing.T) {
			symlink(t, loop.target, dir, loop.link)
			defer os.Remove(filepath.Join(dir, filepath.FromSlash(loop.link)))
			_, _, err := Load(dir, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), filepath.FromSlash(loop.link)) || !strings.Contains(err.Error(), "leads back to") {
				t.Errorf("Load: %v, want an error naming the link %s", err, loop.link)
			}
			if _, err := ImageFiles(dir); err == nil || !strings.Contains(err.Error(), "a cycle of symbolic links") {
				t.Errorf("ImageFiles: %v, want a cycle error", err)
			}
		})
	}
}

// ImageFiles, which lists predict's folders, skips hidden files and folders
// as Load does: macOS's ._* files and thumbnail folders are not images.
func TestImageFilesSkipsHidden(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "a.png", uniformGray(4, 4, 1))
	writeImage(t, dir, "sub/c.png", uniformGray(4, 4, 1))
	writeFile(t, dir, "._a.png", []byte("AppleDouble"))
	writeFile(t, dir, "sub/._c.png", []byte("AppleDouble"))
	writeImage(t, dir, ".thumbs/t.png", uniformGray(2, 2, 1))
	writeFile(t, dir, "readme.txt", []byte("x"))
	files, err := ImageFiles(dir)
	want := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "sub", "c.png")}
	if err != nil || !slices.Equal(files, want) {
		t.Errorf("ImageFiles = %q, %v; want %q", files, err, want)
	}
	// A hidden folder named explicitly is listed: the user asked for it.
	if files, err := ImageFiles(filepath.Join(dir, ".thumbs")); err != nil || len(files) != 1 {
		t.Errorf("ImageFiles of .thumbs = %q, %v; want its one image", files, err)
	}
}
