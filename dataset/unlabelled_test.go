package dataset

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// LoadUnlabelled reads images as Load does: on a leaves folder, at its own
// size and resized into colour, the same files, pixels and hash. Training
// and calibration then see a device's images alike.
func TestLoadUnlabelledReadsAsLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(context.Background(), dir, Options{Count: 20, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	if Unlabelled(dir) {
		t.Error("a leaves folder counts as unlabelled")
	}
	for _, opts := range []LoadOptions{{}, {Height: 24, Width: 20, Channels: 3}} {
		d, _, err := Load(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		m, rep, err := LoadUnlabelled(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if m.Dir != dir || m.Channels != d.Channels || m.Height != d.Height || m.Width != d.Width || m.Len() != d.Len() ||
			!slices.Equal(m.Files, d.Files) || !slices.Equal(m.Pixels, d.Pixels) || m.Hash != d.Hash {
			t.Errorf("%+v: LoadUnlabelled read %d images %dx%dx%d (hash %s), Load %d %dx%dx%d (%s)", opts,
				m.Len(), m.Channels, m.Height, m.Width, m.Hash, d.Len(), d.Channels, d.Height, d.Width, d.Hash)
		}
		if len(rep.Skipped) != 0 || rep.Ignored != 0 {
			t.Errorf("report %+v", rep)
		}
	}
}

// A robot's frames: a flat folder with no class in any name, which Load
// refuses and LoadUnlabelled reads in name order, leaving out hidden and
// other files.
func TestLoadUnlabelledFrames(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		writeImage(t, dir, fmt.Sprintf("frame_%d.png", i), uniformRGB(10, 6, color.RGBA{uint8(20 * i), 100, 200, 255}))
	}
	writeFile(t, dir, "notes.txt", []byte("camera 2"))
	writeImage(t, dir, ".thumb.png", uniformGray(2, 2, 0))
	if !Unlabelled(dir) {
		t.Fatal("frames do not count as unlabelled")
	}
	if _, _, err := Load(dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "not in the leaves layout") {
		t.Errorf("Load: %v", err)
	}
	m, rep, err := LoadUnlabelled(dir, LoadOptions{Height: 8, Width: 8, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 12 || m.Files[0] != "frame_0.png" || m.Files[1] != "frame_1.png" || m.Files[2] != "frame_10.png" || !slices.IsSorted(m.Files) {
		t.Errorf("files %v", m.Files)
	}
	if rep.Ignored != 1 || !slices.Equal(rep.IgnoredFiles, []string{"notes.txt"}) || len(rep.Skipped) != 0 {
		t.Errorf("report %+v, want notes.txt ignored", rep)
	}
	// Image 2 is frame_10.png, read as ReadImage reads one file.
	want, err := ReadImage(filepath.Join(dir, "frame_10.png"), 8, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Pixels[2*m.ImageSize() : 3*m.ImageSize()]; !slices.Equal(got, want) {
		t.Errorf("frame_10.png: %v, ReadImage %v", got[:4], want[:4])
	}
}

// What is not a flat folder of readable images is refused with what was
// found; bad files are skipped only under SkipBad, as Load skips them.
func TestLoadUnlabelledErrors(t *testing.T) {
	root := t.TempDir()
	folder := func(name string, files ...string) string {
		dir := filepath.Join(root, name)
		writeFile(t, dir, ".keep", nil)
		for _, f := range files {
			if strings.HasSuffix(f, ".png") && !strings.HasPrefix(f, "bad") {
				writeImage(t, dir, f, uniformGray(4, 4, 50))
			} else {
				writeFile(t, dir, f, []byte("not an image"))
			}
		}
		return dir
	}
	for _, tc := range []struct {
		dir        string
		unlabelled bool
		want       string
	}{
		{folder("empty"), false, "is empty; give a folder of image files"},
		{folder("text", "a.txt"), false, "holds no image files (.png"},
		{folder("sub", "a.png", "x/b.png"), false, "holds a sub-folder (x)"},
		{folder("bad", "a.png", "bad1.png", "bad2.png"), true, "bad1.png: not a decodable image"},
	} {
		if got := Unlabelled(tc.dir); got != tc.unlabelled {
			t.Errorf("%s: Unlabelled %v", tc.dir, got)
		}
		_, _, err := LoadUnlabelled(tc.dir, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.dir, err, tc.want)
		}
	}
	if Unlabelled(folder("leaves", "LEAF_1.png", "frame.png")) || Unlabelled(filepath.Join(root, "missing")) {
		t.Error("a folder with a LEAF_ name, or none, counts as unlabelled")
	}

	var skipped []*BadFile
	m, rep, err := LoadUnlabelled(filepath.Join(root, "bad"), LoadOptions{SkipBad: true, Skipped: func(bad []*BadFile) { skipped = bad }})
	if err != nil || m.Len() != 1 || len(rep.Skipped) != 2 || !slices.Equal(skipped, rep.Skipped) ||
		!strings.HasSuffix(skipped[0].Path, "bad1.png") || !strings.HasSuffix(skipped[1].Path, "bad2.png") {
		t.Errorf("skip bad: %v, report %+v", err, rep)
	}
	var bf *BadFile
	_, _, err = LoadUnlabelled(folder("allbad", "bad1.png"), LoadOptions{SkipBad: true})
	if err == nil || errors.As(err, &bf) || !strings.Contains(err.Error(), "none of its 1 image files could be read") {
		t.Errorf("all bad, skipped: %v", err)
	}
}
