package dataset

import (
	"fmt"
	"image"
	"path/filepath"
	"strings"
)

// Images is a folder of images held in memory without labels: what
// calibrates a quantized model, for which the device's own images serve
// whatever their class.
type Images struct {
	// Dir is the folder the images were read from.
	Dir string
	// Channels, Height, Width, Pixels, Files and Hash are as in Dataset:
	// the images one after the other (NCHW, in [0, 1]), their files in
	// sorted order, and the hash of their content.
	Channels, Height, Width int
	Pixels                  []float32
	Files                   []string
	Hash                    string
	// Recoloured are the images read in the other colour, and Copies
	// those whose file another repeats, as in Dataset.
	Recoloured []int
	Copies     [][2]int
	// Sizes and Transparent are as in Dataset.
	Sizes       []image.Point
	Transparent []int
}

// Images returns d's images without their labels.
func (d *Dataset) Images() *Images {
	return &Images{Dir: d.Dir, Channels: d.Channels, Height: d.Height, Width: d.Width, Pixels: d.Pixels, Files: d.Files, Hash: d.Hash,
		Recoloured: d.Recoloured, Copies: d.Copies, Sizes: d.Sizes, Transparent: d.Transparent}
}

// Len returns the number of images.
func (m *Images) Len() int { return len(m.Files) }

// ImageSize returns the number of values per image, Channels*Height*Width.
func (m *Images) ImageSize() int { return m.Channels * m.Height * m.Width }

// Unlabelled reports whether dir is a flat folder of images none of which
// is named LEAF_* or NO_*: in neither of Load's layouts, so without
// classes, but readable by LoadUnlabelled. A folder that cannot be read is
// not.
func Unlabelled(dir string) bool {
	files, folders, _, err := folderEntries(dir)
	if err != nil || len(folders) > 0 || len(files) == 0 {
		return false
	}
	for _, f := range files {
		if strings.HasPrefix(f, PrefixLeaf) || strings.HasPrefix(f, PrefixNoLeaf) {
			return false
		}
	}
	return true
}

// LoadUnlabelled reads the image files of the flat folder dir, whatever
// their names, as Load reads a dataset's images (opts.OneClass aside):
// resized and converted the same way, in name order, with the same hash.
// A folder that is empty, holds a sub-folder or holds no image file is an
// error, as is an unreadable, empty or corrupt file (a *BadFile naming it)
// unless opts.SkipBad is set, or a folder none of whose images is
// readable.
func LoadUnlabelled(dir string, opts LoadOptions) (*Images, *LoadReport, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	files, folders, ignored, err := folderEntries(dir)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("open image folder: %w", err)
	case len(folders) > 0:
		return nil, nil, fmt.Errorf("%s holds a sub-folder (%s); unlabelled images are image files side by side in one folder", dir, folders[0])
	case len(files) == 0 && len(ignored) == 0:
		return nil, nil, fmt.Errorf("%s is empty; give a folder of image files (%s)", dir, strings.Join(imageExts, " "))
	case len(files) == 0:
		return nil, nil, fmt.Errorf("%s holds no image files (%s)", dir, strings.Join(imageExts, " "))
	}

	// Label 0 for all: decodeAll decodes every file with a label.
	samples := decodeAll(dir, files, make([]int, len(files)), opts)
	var kept []*sample
	var keptFiles []string
	var bad []*BadFile // in file order, which is sorted
	for i, s := range samples {
		if s.err != nil {
			bad = append(bad, &BadFile{Path: filepath.Join(dir, files[i]), Err: s.err})
			continue
		}
		kept, keptFiles = append(kept, s), append(keptFiles, files[i])
	}
	if len(bad) > 0 && !opts.SkipBad {
		return nil, nil, bad[0]
	}
	if opts.Skipped != nil && len(bad) > 0 {
		opts.Skipped(bad)
	}
	if len(kept) == 0 {
		return nil, nil, fmt.Errorf("%s: none of its %d image files could be read (all skipped as bad)", dir, len(files))
	}
	m, err := packImages(dir, keptFiles, kept, opts.Width, opts.Height, opts.Channels)
	if err != nil {
		return nil, nil, err
	}
	rep := &LoadReport{Skipped: bad}
	for _, name := range ignored {
		rep.ignore(name)
	}
	return m, rep, nil
}
