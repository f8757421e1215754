package genotype

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CellStyle is how a cell network builds its operations.
type CellStyle uint8

// The operation styles.
const (
	// StyleStudy is the founding study's builder: each convolution (with a
	// bias) is followed by a ReLU; no batch normalisation.
	StyleStudy CellStyle = iota
	// StyleNASNet is Zoph et al.'s (2018): ReLU, then the convolution (no
	// bias), then batch normalisation.
	StyleNASNet
)

var cellStyleNames = []string{"study", "nasnet"}

// String returns "study" or "nasnet".
func (s CellStyle) String() string {
	if int(s) < len(cellStyleNames) {
		return cellStyleNames[s]
	}
	return "CellStyle(" + strconv.Itoa(int(s)) + ")"
}

// ParseCellStyle parses a style name; its error lists the valid ones.
func ParseCellStyle(s string) (CellStyle, error) {
	for i, n := range cellStyleNames {
		if n == s {
			return CellStyle(i), nil
		}
	}
	return 0, fmt.Errorf("unknown cell style %q (valid: %s)", s, strings.Join(cellStyleNames, ", "))
}

// MarshalText writes the name, for YAML and JSON.
func (s CellStyle) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the name.
func (s *CellStyle) UnmarshalText(b []byte) error {
	v, err := ParseCellStyle(string(b))
	*s = v
	return err
}

// CellMacro is the network a cell pair is stacked into (docs/study.md,
// section 4): a 3x3 stem convolution of Stem filters, then Reductions times
// Normal normal cells and a reduction cell (Normal normal cells when
// Reductions is 0), global average pooling and the classifier. The cells
// before the first reduction use Filters filters; each reduction cell and
// the cells after it double them.
type CellMacro struct {
	Stem       int       `yaml:"stem"`
	Filters    int       `yaml:"filters"`
	Normal     int       `yaml:"normal"`
	Reductions int       `yaml:"reductions"`
	Style      CellStyle `yaml:"style"`
}

// StudyMacro is the study's network: a 32-filter stem, normal, normal,
// reduction, 32 filters, Conv + ReLU operations.
var StudyMacro = CellMacro{Stem: 32, Filters: 32, Normal: 2, Reductions: 1, Style: StyleStudy}

// Validate returns every problem of m, or nil.
func (m CellMacro) Validate() error {
	var ps []string
	if m.Stem < 1 || m.Filters < 1 {
		ps = append(ps, fmt.Sprintf("stem %d and filters %d must be at least 1", m.Stem, m.Filters))
	}
	switch {
	case m.Normal < 0 || m.Reductions < 0:
		ps = append(ps, fmt.Sprintf("normal %d and reductions %d must not be negative", m.Normal, m.Reductions))
	case m.Normal+m.Reductions == 0:
		ps = append(ps, "normal 0 and reductions 0 make no cell: give at least one of either")
	}
	if int(m.Style) >= len(cellStyleNames) {
		ps = append(ps, fmt.Sprintf("unknown style %d", m.Style))
	}
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("cell network: %s", strings.Join(ps, "; "))
}

// String writes the macro as CellNet's text form starts:
// "net(stem=32, filters=32, normal=2, reductions=1, style=study)".
func (m CellMacro) String() string {
	return fmt.Sprintf("net(stem=%d, filters=%d, normal=%d, reductions=%d, style=%s)", m.Stem, m.Filters, m.Normal, m.Reductions, m.Style)
}

// CellNet is a cell pair stacked into a network: the genotype a NASNet
// search trains.
type CellNet struct {
	Pair  CellPair
	Macro CellMacro
}

var _ Genotype = CellNet{}

// String returns "<macro> <pair>", e.g.
// "net(stem=32, filters=32, normal=2, reductions=1, style=study) normal: ... | reduction: ...".
func (c CellNet) String() string { return c.Macro.String() + " " + c.Pair.String() }

// Key is the text form, which is canonical.
func (c CellNet) Key() string { return c.String() }

// ParseCellNet parses CellNet's text form.
func ParseCellNet(s string) (CellNet, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "net(")
	end := strings.IndexByte(rest, ')')
	if !ok || end < 0 {
		return CellNet{}, fmt.Errorf(`cell network %q: want "net(stem=S, filters=F, normal=N, reductions=R, style=study|nasnet) normal: ... | reduction: ..."`, s)
	}
	m, err := parseMacro(rest[:end])
	if err != nil {
		return CellNet{}, err
	}
	pair, err := ParseCellPair(rest[end+1:])
	if err != nil {
		return CellNet{}, err
	}
	return CellNet{Pair: pair, Macro: m}, nil
}

// parseMacro reads "stem=32, filters=32, normal=2, reductions=1, style=study".
func parseMacro(s string) (CellMacro, error) {
	var m CellMacro
	keys, err := m.apply(s)
	if err != nil {
		return m, fmt.Errorf("cell network: %w", err)
	}
	if len(keys) != 5 {
		return m, fmt.Errorf("cell network: want all of stem, filters, normal, reductions, style; got %q", s)
	}
	return m, m.Validate()
}

// Apply sets the keys written in s, e.g. "stem=16, style=nasnet", over m's
// values and validates the result. Its error names the key at fault.
func (m *CellMacro) Apply(s string) error {
	v := *m
	if _, err := v.apply(s); err != nil {
		return err
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*m = v
	return nil
}

// apply sets the keys of s and returns them, each once.
func (m *CellMacro) apply(s string) ([]string, error) {
	var keys []string
	ints := map[string]*int{"stem": &m.Stem, "filters": &m.Filters, "normal": &m.Normal, "reductions": &m.Reductions}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch p, isInt := ints[k]; {
		case !ok:
			return keys, fmt.Errorf("%q is not key=value", strings.TrimSpace(f))
		case slices.Contains(keys, k):
			return keys, fmt.Errorf("%s is given twice", k)
		case isInt:
			n, err := strconv.Atoi(v)
			if err != nil {
				return keys, fmt.Errorf("%s=%q is not an integer", k, v)
			}
			*p = n
		case k == "style":
			st, err := ParseCellStyle(v)
			if err != nil {
				return keys, err
			}
			m.Style = st
		default:
			return keys, fmt.Errorf("unknown key %q (valid: stem, filters, normal, reductions, style)", k)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ParseGenotype parses the text form of any genotype nasctl trains: a cell
// network ("net(...) normal: ... | reduction: ...") or a layer sequence.
func ParseGenotype(s string) (Genotype, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "net(") {
		return ParseCellNet(s)
	}
	if strings.HasPrefix(t, "normal:") { // a cell pair, as mock and natsbench searches print it
		if _, err := ParseCellPair(t); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%q is a cell pair without its network: put the network in front, e.g. \"net(stem=8, filters=8, normal=1, reductions=1, style=nasnet) %s\"", t, t)
	}
	return Parse(s)
}
