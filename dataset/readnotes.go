package dataset

import (
	"fmt"
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
	want := float64(m.Width) / float64(m.Height)
	for i, s := range m.Sizes {
		if math.Abs(float64(s.X)/float64(s.Y)/want-1) > stretchTolerance {
			stretched = append(stretched, i)
		}
	}
	var notes []string
	if len(stretched) > 0 {
		s := m.Sizes[stretched[0]]
		notes = append(notes, fmt.Sprintf("%s stretched to %d wide and %d high from another shape (first: %s, %d wide and %d high): "+
			"the models learn them stretched, and answer well only frames stretched alike (nasctl predict stretches them so); "+
			"crop the images to the input's shape, or train at theirs",
			m.count(stretched), m.Width, m.Height, m.file(stretched[0]), s.X, s.Y))
	}
	if len(m.Recoloured) > 0 {
		what, advice := "gray, read as RGB with three equal channels", "check that they belong with the others"
		if m.Channels == 1 {
			what = "in colour, read as gray"
		}
		if len(m.Recoloured) == m.Len() { // the input's channels, not a stray file
			advice = "the input's channels decide it: give the images' own (1 for gray, 3 for colour) unless this is meant"
		}
		notes = append(notes, fmt.Sprintf("%s %s (first: %s): %s", m.count(m.Recoloured), what, m.file(m.Recoloured[0]), advice))
	}
	if len(m.Transparent) > 0 {
		notes = append(notes, fmt.Sprintf("%s partly transparent, read as over black (first: %s): check that black is what a camera would show there",
			m.count(m.Transparent), m.file(m.Transparent[0])))
	}
	return notes
}

// stretchTolerance is how far an image's width-to-height ratio may differ
// from the input's, as a fraction, before ReadNotes calls it stretched: a
// pixel or two of cropping is not worth a note.
const stretchTolerance = 0.05

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
