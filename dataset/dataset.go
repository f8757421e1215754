// Package dataset makes and reads the image datasets nasctl trains on.
//
// Generate writes the founding study's synthetic "leaves" dataset: grayscale
// images that show one to three leaves (class "leaf") or only background and
// distractor shapes (class "no_leaf"). Load reads a folder of images into one
// float32 array ready for training, either in the study's layout (LEAF_*.png and
// NO_*.png files side by side) or with one sub-folder per class, the layout of
// common image-folder datasets. SplitPlan divides a dataset into training,
// validation and test sets the way the study did.
package dataset

import (
	"fmt"
	"image"
)

// Names in the study's layout: the class of an image is given by the prefix of
// its file name.
const (
	PrefixLeaf   = "LEAF_"
	PrefixNoLeaf = "NO_"
	ClassLeaf    = "leaf"    // label 1
	ClassNoLeaf  = "no_leaf" // label 0
)

// Layout is the way a folder assigns images to classes.
type Layout int

const (
	// LayoutPrefix is the study's layout: image files side by side, named
	// LEAF_* (label 1, "leaf") or NO_* (label 0, "no_leaf").
	LayoutPrefix Layout = iota + 1
	// LayoutClassFolders has one sub-folder per class, named after the class;
	// labels number the class names in sorted order.
	LayoutClassFolders
)

// String returns the name used in nasctl's output: "prefix" or "class-folders".
func (l Layout) String() string {
	if name, ok := layoutNames[l]; ok {
		return name
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

var layoutNames = map[Layout]string{LayoutPrefix: "prefix", LayoutClassFolders: "class-folders"}

// Dataset is a folder of images held in memory, ready for training.
type Dataset struct {
	// Dir is the folder the images were read from.
	Dir    string
	Layout Layout
	// Classes names the labels: label i is Classes[i].
	Classes []string
	// Channels is 1 (gray) or 3 (red, green, blue); every image is Height x
	// Width pixels.
	Channels, Height, Width int
	// Pixels holds every image, one after the other, each channel-major
	// (channel, row, column: NCHW order), in [0, 1] (8-bit value / 255). Image i
	// is Pixels[i*s : (i+1)*s] with s = Channels*Height*Width, see Image.
	Pixels []float32
	// Labels[i] is the label of image i, an index into Classes.
	Labels []int
	// Files[i] is the file of image i, relative to Dir with slashes; the files
	// are in sorted order.
	Files []string
	// Hash identifies the content: "sha256:" and the hex SHA-256 of the list
	// that sha256sum prints for Files, in order ("<hex digest>  <file>\n" per
	// file). Renaming, adding, removing or changing a file changes it; resizing
	// or channel options do not.
	Hash string
	// Recoloured are the indices of the images read in the other colour
	// than their file's: colour images read as gray (Channels 1), gray ones
	// as three equal channels (Channels 3). A model answers them as
	// confidently as any, so commands that measure one say so.
	Recoloured []int
	// Copies pairs each image whose file has the same bytes as an earlier
	// one's with that one: {earlier, copy}, indices in file order.
	Copies [][2]int
	// Sizes[i] is the size of image i's file before the resize, and
	// Transparent the indices of the images with a pixel not opaque (read
	// as over black): ReadNotes names what reading changed.
	Sizes       []image.Point
	Transparent []int
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// ImageSize returns the number of values per image, Channels*Height*Width.
func (d *Dataset) ImageSize() int { return d.Channels * d.Height * d.Width }

// Image returns the pixels of image i, a slice of Pixels (not a copy).
func (d *Dataset) Image(i int) []float32 {
	s := d.ImageSize()
	return d.Pixels[i*s : (i+1)*s : (i+1)*s]
}

// ClassCounts returns the number of images of each class among the images
// indexed by idx, or among all images when idx is nil.
func (d *Dataset) ClassCounts(idx []int) []int {
	counts := make([]int, len(d.Classes))
	if idx == nil {
		for _, l := range d.Labels {
			counts[l]++
		}
		return counts
	}
	for _, i := range idx {
		counts[d.Labels[i]]++
	}
	return counts
}
