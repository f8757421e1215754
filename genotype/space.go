package genotype

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// PoolShape is an allowed max-pooling window.
type PoolShape struct {
	Kernel int `yaml:"kernel" json:"kernel"`
	Stride int `yaml:"stride" json:"stride"`
}

// Space is a MetaQNN search space: which layers may follow which. The zero value
// of a bool field is the permissive choice; a preset states every field.
type Space struct {
	Name string `yaml:"name" json:"name"`

	ConvFilters []int       `yaml:"conv_filters" json:"conv_filters"` // allowed filter counts
	ConvKernels []int       `yaml:"conv_kernels" json:"conv_kernels"` // allowed square kernel sides
	ConvStrides []int       `yaml:"conv_strides" json:"conv_strides"` // allowed strides; Baker et al. use {1}
	Pools       []PoolShape `yaml:"pools" json:"pools"`               // allowed (kernel, stride) pairs
	FCUnits     []int       `yaml:"fc_units" json:"fc_units"`         // allowed FC widths

	// MaxDepth is the largest number of hidden (non-terminal) layers; at that
	// depth only GAP() or SM() may follow. Must be positive.
	MaxDepth int `yaml:"max_depth" json:"max_depth"`
	// MaxFC is the largest number of FC layers in a row. Zero forbids FC layers.
	MaxFC int `yaml:"max_fc" json:"max_fc"`
	// FCMaxSize: an FC layer may follow a spatial layer only when the
	// representation size (the smaller side) is at most this.
	FCMaxSize int `yaml:"fc_max_size" json:"fc_max_size"`
	// FCNonIncreasing: an FC layer that follows an FC layer is no wider than it.
	FCNonIncreasing bool `yaml:"fc_non_increasing" json:"fc_non_increasing"`
	// NoPoolFirst forbids a pooling layer as the first layer.
	NoPoolFirst bool `yaml:"no_pool_first" json:"no_pool_first"`
	// NoPoolAfterPool forbids a pooling layer right after another.
	NoPoolAfterPool bool `yaml:"no_pool_after_pool" json:"no_pool_after_pool"`
	// StrictKernels: convolution and pooling kernels must be smaller than the
	// representation size (Baker et al.); when false, no larger than it (the study).
	StrictKernels bool `yaml:"strict_kernels" json:"strict_kernels"`
	// MaxMACs bounds the multiply-accumulates per image of the hidden layers
	// (convolutions and FC layers; the classifier is not counted, so a
	// terminal layer is always allowed): a layer that would take the total
	// over it may not follow. Zero: no bound. It keeps a search within what a
	// machine can train, as the kernel bounds keep it within the image.
	MaxMACs int64 `yaml:"max_macs,omitempty" json:"max_macs,omitempty"`
	// SizeBins are the descending lower bounds of the representation-size bins
	// of the agent's state: with {8, 4, 1} sizes >= 8 are bin 0, 4-7 bin 1 and
	// 1-3 bin 2. Empty means a single bin.
	SizeBins []int `yaml:"size_bins" json:"size_bins"`
}

// Baker2017 is the CIFAR-10 space of Baker et al. 2017.
var Baker2017 = Space{
	Name:            "baker2017",
	ConvFilters:     []int{64, 128, 256, 512},
	ConvKernels:     []int{1, 3, 5},
	ConvStrides:     []int{1},
	Pools:           []PoolShape{{5, 3}, {3, 2}, {2, 2}},
	FCUnits:         []int{512, 256, 128},
	MaxDepth:        18,
	MaxFC:           2,
	FCMaxSize:       4,
	FCNonIncreasing: true,
	NoPoolFirst:     true,
	NoPoolAfterPool: true,
	StrictKernels:   true,
	SizeBins:        []int{8, 4, 1},
}

// Study is the founding study's space: depth 12, pooling kernels {2,3,5} with
// strides {2,3}, FC allowed at representation size 8 or less. The study wrote
// 521 filters for 512, a typo not reproduced here; architecture strings with
// any filter count still parse.
var Study = Space{
	Name:            "study",
	ConvFilters:     []int{64, 128, 256, 512},
	ConvKernels:     []int{1, 3, 5},
	ConvStrides:     []int{1},
	Pools:           []PoolShape{{2, 2}, {2, 3}, {3, 2}, {3, 3}, {5, 2}, {5, 3}},
	FCUnits:         []int{512, 256, 128},
	MaxDepth:        12,
	MaxFC:           2,
	FCMaxSize:       8,
	FCNonIncreasing: false,
	NoPoolFirst:     false,
	NoPoolAfterPool: true,
	StrictKernels:   false,
	SizeBins:        []int{8, 4, 1},
}

// presets lists the named spaces; Preset returns copies.
var presets = []Space{Baker2017, Study}

// PresetNames lists the names accepted by Preset.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return names
}

// Preset returns a copy of the named space.
func Preset(name string) (Space, error) {
	for _, p := range presets {
		if p.Name == name {
			return p.Clone(), nil
		}
	}
	return Space{}, fmt.Errorf("unknown search space %q (valid: %s)", name, strings.Join(PresetNames(), ", "))
}

// Clone returns a deep copy, so a preset can be modified safely.
func (s Space) Clone() Space {
	c := s
	c.ConvFilters = slices.Clone(s.ConvFilters)
	c.ConvKernels = slices.Clone(s.ConvKernels)
	c.ConvStrides = slices.Clone(s.ConvStrides)
	c.Pools = slices.Clone(s.Pools)
	c.FCUnits = slices.Clone(s.FCUnits)
	c.SizeBins = slices.Clone(s.SizeBins)
	return c
}

// Verify returns every problem of the space description itself, each naming its
// field, or nil.
func (s Space) Verify() error {
	var ps Problems
	add := func(field, format string, args ...any) {
		ps = append(ps, &LayerError{Msg: field + ": " + fmt.Sprintf(format, args...)})
	}
	positive := func(field string, v []int, required bool) {
		if required && len(v) == 0 {
			add(field, "must list at least one value")
		}
		for i, x := range v {
			if x < 1 || x > maxArg {
				add(fmt.Sprintf("%s[%d]", field, i), "%d is not in [1, %d]", x, maxArg)
			}
		}
	}
	positive("conv_filters", s.ConvFilters, true)
	positive("conv_kernels", s.ConvKernels, true)
	positive("conv_strides", s.ConvStrides, true)
	positive("fc_units", s.FCUnits, s.MaxFC > 0)
	for i, p := range s.Pools {
		if p.Kernel < 1 || p.Stride < 1 {
			add(fmt.Sprintf("pools[%d]", i), "kernel and stride must be at least 1, got (%d,%d)", p.Kernel, p.Stride)
		}
	}
	if s.MaxDepth < 1 {
		add("max_depth", "must be at least 1, got %d", s.MaxDepth)
	}
	if s.MaxFC < 0 {
		add("max_fc", "must not be negative, got %d", s.MaxFC)
	}
	if s.MaxMACs < 0 {
		add("max_macs", "must not be negative, got %d", s.MaxMACs)
	}
	if s.MaxFC > 0 && s.FCMaxSize < 1 {
		add("fc_max_size", "must be at least 1 when FC layers are allowed, got %d", s.FCMaxSize)
	}
	if !sort.IsSorted(sort.Reverse(sort.IntSlice(s.SizeBins))) {
		add("size_bins", "must be in descending order, got %v", s.SizeBins)
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// State is what the space's rules look at after some layers of an architecture:
// the state of MetaQNN's agent before it picks the next layer.
type State struct {
	Depth int   // hidden layers so far
	Repr  Shape // current representation
	Prev  Kind  // kind of the last layer, 0 at the start
	FCs   int   // FC layers in a row at the end
	Units int   // width of the last layer when it is FC
	MACs  int64 // multiply-accumulates per image of the hidden layers so far
	Done  bool  // a terminal layer has been added
}

// Size is the representation size the rules compare kernels with: the smaller
// spatial side, or 1 for a flat representation.
func (st State) Size() int {
	if st.Repr.Flat {
		return 1
	}
	return min(st.Repr.H, st.Repr.W)
}

// Start is the state before the first layer.
func (s Space) Start(in Input) State {
	return State{Repr: Shape{C: in.Channels, H: in.Height, W: in.Width}}
}

// Bin is the representation-size bin of a size (see SizeBins).
func (s Space) Bin(size int) int {
	for i, lo := range s.SizeBins {
		if size >= lo {
			return i
		}
	}
	return max(len(s.SizeBins)-1, 0)
}

// Step returns the state after layer l, with the study's shape semantics. It
// does not check that l is allowed (see Check).
func (s Space) Step(st State, l Layer) State {
	next := st
	next.Prev = l.Kind
	next.MACs += layerMACs(st, l)
	switch l.Kind {
	case Conv:
		next.Depth++
		next.FCs, next.Units = 0, 0
		if st.Depth == 0 {
			next.Repr = Shape{C: l.Filters, H: max((st.Repr.H-l.Kernel)/l.Stride+1, 0), W: max((st.Repr.W-l.Kernel)/l.Stride+1, 0)}
		} else {
			h, _, _ := same(st.Repr.H, l.Kernel, l.Stride)
			w, _, _ := same(st.Repr.W, l.Kernel, l.Stride)
			next.Repr = Shape{C: l.Filters, H: h, W: w}
		}
	case Pool:
		next.Depth++
		next.FCs, next.Units = 0, 0
		h, _, _ := same(st.Repr.H, l.Kernel, l.Stride)
		w, _, _ := same(st.Repr.W, l.Kernel, l.Stride)
		next.Repr = Shape{C: st.Repr.C, H: h, W: w}
	case FC:
		next.Depth++
		next.FCs++
		next.Units = l.Units
		next.Repr = Shape{C: l.Units, H: 1, W: 1, Flat: true}
	default:
		next.Done = true
	}
	return next
}

// layerMACs is the multiply-accumulates per image of hidden layer l after st,
// as Net counts them.
func layerMACs(st State, l Layer) int64 {
	switch l.Kind {
	case Conv:
		var h, w int
		if st.Depth == 0 {
			h, w = max((st.Repr.H-l.Kernel)/l.Stride+1, 0), max((st.Repr.W-l.Kernel)/l.Stride+1, 0)
		} else {
			h, _, _ = same(st.Repr.H, l.Kernel, l.Stride)
			w, _, _ = same(st.Repr.W, l.Kernel, l.Stride)
		}
		return int64(h) * int64(w) * int64(l.Filters) * int64(l.Kernel) * int64(l.Kernel) * int64(st.Repr.C)
	case FC:
		return st.Repr.Size() * int64(l.Units)
	}
	return 0
}

// Check returns the reasons layer l may not follow state st under the space, or
// nil when it may.
func (s Space) Check(st State, l Layer) []string {
	var why []string
	if st.Done {
		return []string{"nothing may follow a terminal layer"}
	}
	size := st.Size()
	bound := func(what string, k int) {
		if s.StrictKernels && k >= size {
			why = append(why, fmt.Sprintf("%s %d is not smaller than the %s representation", what, k, reprText(st)))
		} else if !s.StrictKernels && k > size {
			why = append(why, fmt.Sprintf("%s %d exceeds the %s representation", what, k, reprText(st)))
		}
	}
	if !l.Kind.Terminal() && st.Depth >= s.MaxDepth {
		why = append(why, fmt.Sprintf("depth limit %d reached: only GAP() or SM() may follow", s.MaxDepth))
	}
	if m := st.MACs + layerMACs(st, l); s.MaxMACs > 0 && !l.Kind.Terminal() && m > s.MaxMACs {
		why = append(why, fmt.Sprintf("brings the hidden layers to %d multiply-accumulates per image, over the limit of %d", m, s.MaxMACs))
	}
	if st.Repr.Flat && (l.Kind == Conv || l.Kind == Pool || l.Kind == GAP) {
		why = append(why, fmt.Sprintf("%s cannot follow a fully connected layer (only FC or SM can)", l.Kind))
		return why
	}
	switch l.Kind {
	case Conv:
		if !slices.Contains(s.ConvFilters, l.Filters) {
			why = append(why, fmt.Sprintf("filters %d not in %v", l.Filters, s.ConvFilters))
		}
		if !slices.Contains(s.ConvKernels, l.Kernel) {
			why = append(why, fmt.Sprintf("kernel %d not in %v", l.Kernel, s.ConvKernels))
		}
		if !slices.Contains(s.ConvStrides, l.Stride) {
			why = append(why, fmt.Sprintf("stride %d not in %v", l.Stride, s.ConvStrides))
		}
		bound("kernel", l.Kernel)
	case Pool:
		if !slices.Contains(s.Pools, PoolShape{l.Kernel, l.Stride}) {
			why = append(why, fmt.Sprintf("pool (kernel %d, stride %d) not in %s", l.Kernel, l.Stride, poolsText(s.Pools)))
		}
		if s.NoPoolFirst && st.Depth == 0 {
			why = append(why, "pooling may not be the first layer")
		}
		if s.NoPoolAfterPool && st.Prev == Pool {
			why = append(why, "pooling may not follow pooling")
		}
		bound("kernel", l.Kernel)
	case FC:
		if !slices.Contains(s.FCUnits, l.Units) {
			why = append(why, fmt.Sprintf("units %d not in %v", l.Units, s.FCUnits))
		}
		if st.FCs >= s.MaxFC {
			why = append(why, fmt.Sprintf("more than %d FC layers in a row", s.MaxFC))
		}
		if !st.Repr.Flat && size > s.FCMaxSize {
			why = append(why, fmt.Sprintf("FC needs a representation of size %d or less, got %s", s.FCMaxSize, reprText(st)))
		}
		if s.FCNonIncreasing && st.Prev == FC && l.Units > st.Units {
			why = append(why, fmt.Sprintf("FC(%d) is wider than the FC(%d) before it", l.Units, st.Units))
		}
	}
	return why
}

func reprText(st State) string {
	return fmt.Sprintf("%dx%d", st.Repr.H, st.Repr.W)
}

func poolsText(ps []PoolShape) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("(%d,%d)", p.Kernel, p.Stride)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// Actions lists every layer that may follow st, in a fixed order: convolutions
// (by filters, kernel, stride), pools, FC layers, then GAP and SM.
func (s Space) Actions(st State) []Layer {
	var out []Layer
	try := func(l Layer) {
		if len(s.Check(st, l)) == 0 {
			out = append(out, l)
		}
	}
	for _, f := range s.ConvFilters {
		for _, k := range s.ConvKernels {
			for _, st := range s.ConvStrides {
				try(C(f, k, st))
			}
		}
	}
	for _, p := range s.Pools {
		try(P(p.Kernel, p.Stride))
	}
	for _, u := range s.FCUnits {
		try(Dense(u))
	}
	try(Layer{Kind: GAP})
	try(Layer{Kind: Softmax})
	return out
}

// Problems is every problem found in an architecture or a space description.
type Problems []*LayerError

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Validate checks an architecture against the space for the given input and
// returns every violation (as Problems), or nil.
func (s Space) Validate(a Arch, in Input) error {
	var ps Problems
	if len(a) == 0 {
		return Problems{{Msg: "empty architecture"}}
	}
	st := s.Start(in)
	for i, l := range a {
		for _, why := range s.Check(st, l) {
			ps = append(ps, &LayerError{Layer: i + 1, Text: l.String(), Msg: why})
		}
		st = s.Step(st, l)
	}
	if !st.Done {
		ps = append(ps, &LayerError{Layer: len(a), Text: a[len(a)-1].String(), Msg: "the architecture must end with GAP() or SM()"})
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}
