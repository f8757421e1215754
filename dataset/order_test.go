package dataset

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// orderTree writes a class-folder tree whose names exercise byte-order
// sorting (upper case first, ' ' < '-' < '/', UTF-8 last), hidden and
// non-image files, and nested folders.
func orderTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	names := []string{
		"Banana/b 1.png", "Banana/B0.png", "apple/x.png", "apple/sub dir/nested/y.png",
		"apple/sub-x.png", "apple/sub/z.png", "apple/a.PNG", "çherry ü/ñ.png", "çherry ü/c.png",
		"date/1.png", "date/2.png", "date/10.png",
	}
	for i, n := range names {
		writeImage(t, dir, n, uniformGray(4, 4, uint8(10*i)))
	}
	writeFile(t, dir, "apple/notes.txt", []byte("x"))
	writeFile(t, dir, "apple/._x.png", []byte("x"))
	writeFile(t, dir, ".DS_Store", []byte("x"))
	return dir
}

// leavesTree writes a flat folder in the leaves layout.
func leavesTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for i := range 7 {
		writeImage(t, dir, fmt.Sprintf("LEAF_%04d.png", i), uniformGray(4, 4, uint8(i)))
		writeImage(t, dir, fmt.Sprintf("NO_%04d.png", i*3), uniformGray(4, 4, uint8(100+i)))
	}
	return dir
}

// The same folders give the same classes, files, labels and splits as
// before the loader learnt to follow links: the expected values were
// printed by Load and SplitMetaQNN at commit 07b3664 (seed 1), and the
// project's figures depend on them.
func TestLoadOrderAndSplitPinned(t *testing.T) {
	cases := []struct {
		name                     string
		dir                      string
		classes, files           []string
		labels                   []int
		train, val, test, listed []string
	}{
		{
			name:    "class folders",
			dir:     orderTree(t),
			classes: []string{"Banana", "apple", "date", "çherry ü"},
			files: []string{"Banana/B0.png", "Banana/b 1.png", "apple/a.PNG", "apple/sub dir/nested/y.png", "apple/sub-x.png",
				"apple/sub/z.png", "apple/x.png", "date/1.png", "date/10.png", "date/2.png", "çherry ü/c.png", "çherry ü/ñ.png"},
			labels: []int{0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3},
			train:  []string{"çherry ü/ñ.png", "çherry ü/c.png", "date/1.png", "apple/sub dir/nested/y.png", "apple/a.PNG", "date/2.png"},
			val:    []string{"Banana/B0.png", "Banana/b 1.png"},
			test:   []string{"apple/x.png", "date/10.png", "apple/sub/z.png", "apple/sub-x.png"},
			// ImageFiles walks folder by folder: "sub" before "sub dir" and "sub-x.png".
			listed: []string{"Banana/B0.png", "Banana/b 1.png", "apple/a.PNG", "apple/sub/z.png", "apple/sub dir/nested/y.png",
				"apple/sub-x.png", "apple/x.png", "date/1.png", "date/10.png", "date/2.png", "çherry ü/c.png", "çherry ü/ñ.png"},
		},
		{
			name:    "leaves",
			dir:     leavesTree(t),
			classes: []string{"no_leaf", "leaf"},
			files: []string{"LEAF_0000.png", "LEAF_0001.png", "LEAF_0002.png", "LEAF_0003.png", "LEAF_0004.png", "LEAF_0005.png",
				"LEAF_0006.png", "NO_0000.png", "NO_0003.png", "NO_0006.png", "NO_0009.png", "NO_0012.png", "NO_0015.png", "NO_0018.png"},
			labels: []int{1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
			train:  []string{"NO_0000.png", "NO_0015.png", "LEAF_0003.png", "LEAF_0004.png", "NO_0006.png", "LEAF_0002.png", "NO_0012.png"},
			val:    []string{"NO_0018.png", "LEAF_0001.png"},
			test:   []string{"LEAF_0005.png", "NO_0009.png", "LEAF_0006.png", "NO_0003.png", "LEAF_0000.png"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, s, err := LoadSplit(c.dir, LoadOptions{}, SplitMetaQNN, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Classes, c.classes) || !slices.Equal(d.Files, c.files) || !slices.Equal(d.Labels, c.labels) {
				t.Errorf("classes %q\nfiles %q\nlabels %v", d.Classes, d.Files, d.Labels)
			}
			names := func(idx []int) []string {
				var out []string
				for _, i := range idx {
					out = append(out, d.Files[i])
				}
				return out
			}
			if !slices.Equal(names(s.Train), c.train) || !slices.Equal(names(s.Val), c.val) || !slices.Equal(names(s.Test), c.test) {
				t.Errorf("train %q\nval %q\ntest %q", names(s.Train), names(s.Val), names(s.Test))
			}
			listed, err := ImageFiles(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			for i := range listed {
				if listed[i], err = filepath.Rel(c.dir, listed[i]); err != nil {
					t.Fatal(err)
				}
				listed[i] = filepath.ToSlash(listed[i])
			}
			want := c.listed
			if want == nil {
				want = c.files
			}
			if !slices.Equal(listed, want) {
				t.Errorf("ImageFiles %q, want %q", listed, want)
			}
		})
	}
}
