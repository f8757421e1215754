package dataset

import (
	"image"
	"image/color"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Reading a folder notes the images it changed beyond the resize: one of
// another shape, one gray among colour ones, one with transparent pixels;
// images of the input's shape, or a pixel off it, are not noted.
func TestReadNotes(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, dir, "a/square.png", uniformRGB(40, 40, color.RGBA{200, 10, 30, 255}))
	writeImage(t, dir, "a/nearly.png", uniformRGB(41, 40, color.RGBA{20, 110, 30, 255})) // 2.5% wider
	writeImage(t, dir, "a/wide.png", uniformRGB(64, 48, color.RGBA{20, 10, 130, 255}))
	writeImage(t, dir, "b/gray.png", uniformGray(40, 40, 90))
	writeImage(t, dir, "b/clear.png", uniformRGB(40, 40, color.RGBA{100, 0, 20, 128}))
	d, _, err := Load(dir, LoadOptions{Width: 20, Height: 20})
	if err != nil {
		t.Fatal(err)
	}
	// Files sort as a/nearly, a/square, a/wide, b/clear, b/gray.
	if !slices.Equal(d.Transparent, []int{3}) || !slices.Equal(d.Recoloured, []int{4}) || d.Sizes[2].X != 64 || d.Sizes[2].Y != 48 {
		t.Fatalf("transparent %v, recoloured %v, size of a/wide %v; want [3], [4] and (64,48)", d.Transparent, d.Recoloured, d.Sizes[2])
	}
	notes := d.ReadNotes()
	want := []string{
		"1 of the 5 images is stretched to 20 high and 20 wide from another shape (first: " + filepath.Join(dir, "a", "wide.png") + ", 48 high and 64 wide)",
		"1 of the 5 images is gray, read as RGB with three equal channels (first: " + filepath.Join(dir, "b", "gray.png") + "): check that they belong",
		"1 of the 5 images is partly transparent, read as over black (first: " + filepath.Join(dir, "b", "clear.png") + ")",
	}
	if len(notes) != len(want) {
		t.Fatalf("notes %q, want %d", notes, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(notes[i], want[i]) {
			t.Errorf("note %d: %q, want it to start %q", i, notes[i], want[i])
		}
	}
	// The warnings of a command that reads the folder start with them.
	split := Split{Train: []int{0, 1, 2, 3, 4}}
	if ws := d.SplitWarnings(split, "metaqnn", false); len(ws) < 3 || !slices.Equal(ws[:3], notes) {
		t.Errorf("split warnings %q, want them to start with the notes", ws)
	}
	// Read as gray, the colour images are the recoloured ones, counted
	// together; when most or all are, the input's channels did it.
	g, _, err := Load(dir, LoadOptions{Width: 20, Height: 20, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if notes := g.ReadNotes(); len(notes) != 3 || notes[1] != "4 of the 5 images are in colour, read as gray (first: "+filepath.Join(dir, "a", "nearly.png")+"): the input's channels decide it (--input HxWxC): give the images' own channels unless you mean this" {
		t.Errorf("read as gray: %q", notes)
	}
	onlyGray := t.TempDir()
	writeImage(t, onlyGray, "LEAF_0.png", uniformGray(8, 8, 77))
	writeImage(t, onlyGray, "NO_0.png", uniformGray(8, 8, 7))
	if g3, _, err := Load(onlyGray, LoadOptions{Channels: 3}); err != nil || len(g3.ReadNotes()) != 1 ||
		g3.ReadNotes()[0] != "2 of the 2 images are gray, read as RGB with three equal channels (first: "+filepath.Join(onlyGray, "LEAF_0.png")+"): the input's channels decide it (--input HxWxC): give the images' own channels unless you mean this" {
		t.Errorf("gray images read as RGB: %q, err %v", g3.ReadNotes(), err)
	}
	// Within 5% of the input's ratio is not stretched; sizes not known
	// are not either.
	for _, tc := range []struct {
		size          image.Point
		width, height int
		want          bool
	}{
		{image.Pt(41, 40), 20, 20, false}, {image.Pt(43, 40), 20, 20, true}, {image.Pt(160, 120), 64, 48, false},
		{image.Pt(120, 160), 64, 48, true}, {image.Point{}, 20, 20, false}, {image.Pt(40, 40), 0, 0, false},
	} {
		if got := Stretched(tc.size, tc.width, tc.height); got != tc.want {
			t.Errorf("Stretched(%v, %d, %d) = %v, want %v", tc.size, tc.width, tc.height, got, tc.want)
		}
	}
	// Images of the input's shape read as they are: no note.
	same := t.TempDir()
	writeImage(t, same, "LEAF_0.png", uniformGray(32, 32, 77))
	writeImage(t, same, "NO_0.png", uniformGray(16, 16, 7))
	if s, _, err := Load(same, LoadOptions{Width: 8, Height: 8}); err != nil || s.ReadNotes() != nil {
		t.Errorf("square gray images: notes %q, err %v; want none", s.ReadNotes(), err)
	}
}
