package figure

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/vgimg"
)

// line is a small plot using the palette.
func line(t *testing.T) *plot.Plot {
	t.Helper()
	p := plot.New()
	p.Title.Text = "figure test"
	l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 2}, {X: 2, Y: 1}})
	if err != nil {
		t.Fatal(err)
	}
	l.Color = Blue
	p.Add(plotter.NewGrid(), l)
	p.Legend.Add("line", l)
	return p
}

// checkPNG checks that b is a PNG of Width x Height at gonum's raster
// resolution (vgimg.DefaultDPI, 96 dots per inch: 680 x 416 pixels, rounded
// as vgimg rounds).
func checkPNG(t *testing.T, b []byte) {
	t.Helper()
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("png: %v", err)
	}
	w, h := int(Width.Dots(vgimg.DefaultDPI)+0.5), int(Height.Dots(vgimg.DefaultDPI)+0.5)
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("png is %dx%d pixels, want %dx%d", cfg.Width, cfg.Height, w, h)
	}
}

// checkSVG checks that b is an XML document whose root is an svg element
// Width x Height in points (vgsvg writes the size in points, "510.2pt").
func checkSVG(t *testing.T, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("svg: no root element: %v", err)
		}
		root, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root.Name.Local != "svg" {
			t.Fatalf("svg: root element is <%s>", root.Name.Local)
		}
		size := map[string]float64{"width": Width.Points(), "height": Height.Points()}
		for _, a := range root.Attr {
			want, ok := size[a.Name.Local]
			if !ok {
				continue
			}
			delete(size, a.Name.Local)
			got, err := strconv.ParseFloat(strings.TrimSuffix(a.Value, "pt"), 64)
			// vgsvg prints the size with 4 significant digits or more.
			if err != nil || math.Abs(got-want) > 0.1 {
				t.Errorf("svg: %s=%q, want %.1fpt", a.Name.Local, a.Value, want)
			}
		}
		for name := range size {
			t.Errorf("svg: root has no %s", name)
		}
		return
	}
}

func TestRender(t *testing.T) {
	p := line(t)
	b, err := Render(p, "png")
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, b)
	if b, err = Render(p, "svg"); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b)
}

// RenderPNG draws the same figure as Render's PNG at a higher resolution:
// twice the pixels each way at twice the 96 dots per inch, the same picture
// (the mean colour of the two images agrees once the larger is averaged
// down 2x2).
func TestRenderPNG(t *testing.T) {
	p := line(t)
	small, err := Render(p, "png")
	if err != nil {
		t.Fatal(err)
	}
	large, err := RenderPNG(p, 2*vgimg.DefaultDPI)
	if err != nil {
		t.Fatal(err)
	}
	a, err := png.Decode(bytes.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	b, err := png.Decode(bytes.NewReader(large))
	if err != nil {
		t.Fatal(err)
	}
	ab, bb := a.Bounds(), b.Bounds()
	if d := bb.Dx() - 2*ab.Dx(); d < -1 || d > 1 || bb.Dy()-2*ab.Dy() < -1 || bb.Dy()-2*ab.Dy() > 1 {
		t.Fatalf("%v at %d dpi, %v at %d: want twice the pixels each way", bb, 2*vgimg.DefaultDPI, ab, vgimg.DefaultDPI)
	}
	mean := func(img image.Image) float64 {
		var sum float64
		r := img.Bounds()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
				sum += float64(c.Y)
			}
		}
		return sum / float64(r.Dx()*r.Dy())
	}
	if ma, mb := mean(a), mean(b); math.Abs(ma-mb) > 1 {
		t.Errorf("mean grey %.2f at %d dpi, %.2f at %d: not the same picture", ma, vgimg.DefaultDPI, mb, 2*vgimg.DefaultDPI)
	}
}

// Render draws only the formats Save writes; pdf, which gonum/plot could
// draw, is refused too.
func TestRenderUnknownFormat(t *testing.T) {
	for _, format := range []string{"", "bmp", "pdf", "PNG"} {
		if _, err := Render(line(t), format); err == nil || !strings.Contains(err.Error(), "png or svg") {
			t.Errorf("Render(%q): error %v, want one that lists png and svg", format, err)
		}
	}
}

func TestSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots", "run1") // missing: Save creates it
	paths, err := Save(line(t), dir, "loss")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "loss.png"), filepath.Join(dir, "loss.svg")}
	if !slices.Equal(paths, want) {
		t.Fatalf("Save returned %q, want %q", paths, want)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, b)
	if b, err = os.ReadFile(paths[1]); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b)
	// Saving again replaces the files, and leaves nothing else beside them.
	if _, err := Save(line(t), dir, "loss"); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"loss.png", "loss.svg"}) {
		t.Errorf("dir holds %q after saving twice", got)
	}
}

// A write that fails leaves no partial file behind.
func TestSaveFailure(t *testing.T) {
	t.Run("dir is a file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "plots")
		if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
			t.Fatal(err)
		}
		paths, err := Save(line(t), dir, "loss")
		if err == nil || len(paths) != 0 {
			t.Fatalf("Save into a file: %q, %v; want an error and no paths", paths, err)
		}
		if b, err := os.ReadFile(dir); err != nil || string(b) != "not a directory" {
			t.Errorf("the file in the way changed: %q, %v", b, err)
		}
	})
	t.Run("svg path is a directory", func(t *testing.T) {
		// loss.png is written; loss.svg cannot replace a directory. The
		// failed write must leave no temporary file, neither in dir nor in
		// $TMPDIR (renameio writes aside in $TMPDIR when it is on the same
		// file system as dir).
		dir, tmp := t.TempDir(), t.TempDir()
		t.Setenv("TMPDIR", tmp)
		if err := os.Mkdir(filepath.Join(dir, "loss.svg"), 0o755); err != nil {
			t.Fatal(err)
		}
		paths, err := Save(line(t), dir, "loss")
		if err == nil {
			t.Fatal("Save over a directory: no error")
		}
		if want := []string{filepath.Join(dir, "loss.png")}; !slices.Equal(paths, want) {
			t.Errorf("Save returned %q with its error, want %q (the file written)", paths, want)
		}
		if got := dirNames(t, dir); !slices.Equal(got, []string{"loss.png", "loss.svg"}) {
			t.Errorf("dir holds %q after the failed write, want loss.png and the loss.svg directory", got)
		}
		if st, err := os.Stat(filepath.Join(dir, "loss.svg")); err != nil || !st.IsDir() {
			t.Errorf("loss.svg is no longer the directory: %v", err)
		}
		if got := dirNames(t, tmp); len(got) != 0 {
			t.Errorf("$TMPDIR holds %q after the failed write", got)
		}
	})
}

func TestSeries(t *testing.T) {
	if Series(0) != Blue || Series(len(series)) != Blue {
		t.Errorf("Series(0), Series(%d) = %v, %v; want Blue", len(series), Series(0), Series(len(series)))
	}
	seen := map[any]bool{}
	for i := range series {
		if seen[Series(i)] {
			t.Errorf("Series(%d) = %v repeats an earlier colour", i, Series(i))
		}
		seen[Series(i)] = true
	}
}

// dirNames returns the sorted names in dir (os.ReadDir sorts them).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// Log ticks: 1, 2 and 5 times the powers of ten labelled over decades, every
// whole multiple labelled within one.
func TestLogTicks(t *testing.T) {
	labels := func(min, max float64) (all, labelled []string) {
		for _, tk := range (LogTicks{}).Ticks(min, max) {
			all = append(all, strconv.FormatFloat(tk.Value, 'f', -1, 64))
			if tk.Label != "" {
				labelled = append(labelled, tk.Label)
			}
		}
		return all, labelled
	}
	all, lab := labels(5_000, 300_000)
	if len(all) != 17 || !slices.Equal(lab, []string{"5k", "10k", "20k", "50k", "100k", "200k"}) {
		t.Errorf("5k to 300k: %v, labelled %v", all, lab)
	}
	all, lab = labels(1_200, 4_800)
	if !slices.Equal(all, []string{"2000", "3000", "4000"}) || !slices.Equal(lab, []string{"2k", "3k", "4k"}) {
		t.Errorf("1.2k to 4.8k: %v, labelled %v", all, lab)
	}
	if all, lab = labels(0.15, 0.6); !slices.Equal(lab, []string{"0.2", "0.5"}) || !slices.Equal(all, []string{"0.2", "0.3", "0.4", "0.5", "0.6"}) {
		t.Errorf("0.15 to 0.6: labelled %v", lab)
	}
	if got := (LogTicks{}).Ticks(0, 10); got != nil {
		t.Errorf("from 0: %v", got)
	}
	if _, lab = labels(300_000, 2_500_000); !slices.Equal(lab, []string{"500k", "1M", "2M"}) {
		t.Errorf("300k to 2.5M: labelled %v", lab)
	}
}

// Whole ticks: whole numbers only, at most six labels, the unlabelled
// marks at a fifth of the labels' step when that is whole.
func TestWholeTicks(t *testing.T) {
	for _, c := range []struct {
		min, max    float64
		all, labels string
	}{
		{1, 13, "2 4 6 8 10 12", "2 4 6 8 10 12"},
		{1, 14, "1 2 3 4 5 6 7 8 9 10 11 12 13 14", "5 10"},
		{1, 225, "10 20 30 40 50 60 70 80 90 100 110 120 130 140 150 160 170 180 190 200 210 220", "50 100 150 200"},
		{0.5, 3.5, "1 2 3", "1 2 3"},
		{1, 1, "1", "1"},
		{0, 1200, "0 100 200 300 400 500 600 700 800 900 1000 1100 1200", "0 500 1000"},
	} {
		var all, labels []string
		for _, tk := range (WholeTicks{}).Ticks(c.min, c.max) {
			all = append(all, strconv.FormatFloat(tk.Value, 'f', -1, 64))
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if strings.Join(all, " ") != c.all || strings.Join(labels, " ") != c.labels {
			t.Errorf("%v to %v: marks %v, labelled %v; want %s, labelled %s", c.min, c.max, all, labels, c.all, c.labels)
		}
	}
}
