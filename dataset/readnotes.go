package dataset

import (
	"fmt"
	"image"
	"math"
	"path/filepath"
)

// ReadNotes says what reading m's images changed of them beyond the
// resize to m's size: images of another shape stretched to it, images read
// in the other colour (Recoloured) and images with transparent pixels read
// as over black. A model learns such images as they were read, so a camera
// must feed it frames changed alike (nasctl predict reads them the same
// way); a folder that mixes them is often a mistake. Each note names how
// many and the first; nil when reading changed nothing.
func (m *Images) ReadNotes() []string {
	var stretched []int
	for i, s := range m.Sizes {
		if Stretched(s, m.Width, m.Height) {
			stretched = append(stretched, i)
		}
	}
	var notes []string
	if len(stretched) > 0 {
		s := m.Sizes[stretched[0]]
		notes = append(notes, fmt.Sprintf("%s stretched to %d high and %d wide from another shape (first: %s, %d high and %d wide): "+
			"the models learn them stretched, and answer well only frames stretched alike (nasctl predict stretches them so); "+
			"crop the images to the input's shape, or train at theirs",
			m.count(stretched), m.Height, m.Width, m.file(stretched[0]), s.Y, s.X))
	}
	if len(m.Recoloured) > 0 {
		what, advice := "gray, read as RGB with three equal channels", "check that they belong with the others"
		if m.Channels == 1 {
			what = "in colour, read as gray"
		}
		if 2*len(m.Recoloured) > m.Len() { // the input's channels, not a few stray files
			advice = "the input's channels decide it (--input HxWxC): give the images' own channels unless you mean this"
		}
		notes = append(notes, fmt.Sprintf("%s %s (first: %s): %s", m.count(m.Recoloured), what, m.file(m.Recoloured[0]), advice))
	}
	if len(m.Transparent) > 0 {
		notes = append(notes, fmt.Sprintf("%s partly transparent, read as over black (first: %s): check that black is what a camera would show there",
			m.count(m.Transparent), m.file(m.Transparent[0])))
	}
	return notes
}

// Stretched reports whether an image of size, resized to width x height,
// is stretched: its width-to-height ratio differs from the new one by more
// than 5%, since a pixel or two of cropping is not worth a note. A size
// not known (zero) is not.
func Stretched(size image.Point, width, height int) bool {
	if size.X <= 0 || size.Y <= 0 || width <= 0 || height <= 0 {
		return false
	}
	return math.Abs(float64(size.X)*float64(height)/(float64(size.Y)*float64(width))-1) > 0.05
}

// count says how many of m's images idx holds, as the subject of a note.
func (m *Images) count(idx []int) string {
	if len(idx) == 1 {
		return fmt.Sprintf("1 of the %d images is", m.Len())
	}
	return fmt.Sprintf("%d of the %d images are", len(idx), m.Len())
}

// file is the path of image i.
func (m *Images) file(i int) string { return filepath.Join(m.Dir, filepath.FromSlash(m.Files[i])) }

// ReadNotes are the notes of d's images (Images.ReadNotes).
func (d *Dataset) ReadNotes() []string { return d.Images().ReadNotes() }
