package genotype

// NASNet cells (Zoph et al. 2018; docs/study.md, section 4).
//
// A cell has B blocks. Block b reads two inputs among the cell's two inputs
// (h0 = h(i-1), the output of the cell before the previous one, and h1 = h(i),
// the previous cell's output) and the outputs of blocks 0..b-1, applies one
// operation to each and combines the two results by addition or by
// concatenation. The outputs of the blocks that no later block reads are
// concatenated to form the cell's output. A network uses two cells: the normal
// cell keeps the spatial size; the reduction cell applies the operations that
// read h0 or h1 with stride 2.
//
// Inputs are numbered as the controller chooses them: 0 = h0, 1 = h1,
// 2+k = output of block k. The text form of a cell names them h0, h1, b0, b1, ...:
//
//	b0 = add(sep_conv_3x3(h1), identity(h0)); b1 = concat(max_pool_3x3(b0), conv_1x1(h0))
//
// and a pair of cells is written
//
//	normal: b0 = ...; b1 = ... | reduction: b0 = ...; b1 = ...

import (
	"fmt"
	"strconv"
	"strings"
)

// CellOp is one of the 13 operations a block applies to an input, numbered
// 0-12 in the order of docs/study.md, section 4 (the study's action indices).
type CellOp uint8

// The 13 cell operations. Their text names follow the DARTS/NASNet convention.
const (
	CellIdentity       CellOp = iota // identity
	CellConv1x3Then3x1               // 1x3 then 3x1 convolution
	CellConv1x7Then7x1               // 1x7 then 7x1 convolution
	CellDilConv3x3                   // 3x3 dilated convolution
	CellAvgPool3x3                   // 3x3 average pooling
	CellMaxPool3x3                   // 3x3 max pooling
	CellMaxPool5x5                   // 5x5 max pooling
	CellMaxPool7x7                   // 7x7 max pooling
	CellConv1x1                      // 1x1 convolution
	CellConv3x3                      // 3x3 convolution
	CellSepConv3x3                   // 3x3 depthwise-separable convolution
	CellSepConv5x5                   // 5x5 depthwise-separable convolution
	CellSepConv7x7                   // 7x7 depthwise-separable convolution

	// NumCellOps is the number of cell operations.
	NumCellOps = 13
)

var cellOpNames = [NumCellOps]string{
	"identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
	"max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3",
	"sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
}

var cellOpDescriptions = [NumCellOps]string{
	"identity", "1x3 then 3x1 convolution", "1x7 then 7x1 convolution",
	"3x3 dilated convolution", "3x3 average pooling", "3x3 max pooling",
	"5x5 max pooling", "7x7 max pooling", "1x1 convolution", "3x3 convolution",
	"3x3 depthwise-separable convolution", "5x5 depthwise-separable convolution",
	"7x7 depthwise-separable convolution",
}

// String returns the operation's text name, e.g. "sep_conv_3x3".
func (o CellOp) String() string {
	if o.Valid() {
		return cellOpNames[o]
	}
	return "CellOp(" + strconv.Itoa(int(o)) + ")"
}

// Description returns a phrase for people, e.g. "3x3 depthwise-separable convolution".
func (o CellOp) Description() string {
	if o.Valid() {
		return cellOpDescriptions[o]
	}
	return o.String()
}

// Valid reports whether o is one of the 13 operations.
func (o CellOp) Valid() bool { return o < NumCellOps }

// CellOpNames returns the text names of the 13 operations in index order.
func CellOpNames() []string { return append([]string(nil), cellOpNames[:]...) }

// ParseCellOp parses an operation's text name. Its error lists the valid names.
func ParseCellOp(s string) (CellOp, error) {
	for i, n := range cellOpNames {
		if n == s {
			return CellOp(i), nil
		}
	}
	return 0, fmt.Errorf("unknown cell operation %q (valid: %s)", s, strings.Join(cellOpNames[:], ", "))
}

// CellCombine is how a block merges its two operation outputs.
type CellCombine uint8

// Combinations, numbered as the study's action indices.
const (
	CellAdd    CellCombine = iota // element-wise addition
	CellConcat                    // concatenation along the channels

	// NumCellCombines is the number of combinations.
	NumCellCombines = 2
)

var cellCombineNames = [NumCellCombines]string{"add", "concat"}

// String returns "add" or "concat".
func (c CellCombine) String() string {
	if c.Valid() {
		return cellCombineNames[c]
	}
	return "CellCombine(" + strconv.Itoa(int(c)) + ")"
}

// Valid reports whether c is add or concat.
func (c CellCombine) Valid() bool { return c < NumCellCombines }

// ParseCellCombine parses "add" or "concat". Its error lists the valid names.
func ParseCellCombine(s string) (CellCombine, error) {
	for i, n := range cellCombineNames {
		if n == s {
			return CellCombine(i), nil
		}
	}
	return 0, fmt.Errorf("unknown combination %q (valid: %s)", s, strings.Join(cellCombineNames[:], ", "))
}

// CellInputName returns the text name of input index i: "h0", "h1" for the
// cell's inputs, "b<k>" for the output of block k (i = 2+k).
func CellInputName(i int) string {
	switch {
	case i == 0 || i == 1:
		return "h" + strconv.Itoa(i)
	case i >= 2:
		return "b" + strconv.Itoa(i-2)
	}
	return "input(" + strconv.Itoa(i) + ")"
}

// CellBlock is one block of a cell: Combine(Op1(In1), Op2(In2)). In1 and In2 are
// input indices: 0 = h0, 1 = h1, 2+k = block k, and block b may read only
// indices below 2+b.
type CellBlock struct {
	In1, In2 int
	Op1, Op2 CellOp
	Combine  CellCombine
}

// String returns the block's text form without its label, e.g.
// "add(sep_conv_3x3(h1), identity(h0))".
func (b CellBlock) String() string {
	return fmt.Sprintf("%s(%s(%s), %s(%s))", b.Combine, b.Op1, CellInputName(b.In1), b.Op2, CellInputName(b.In2))
}

// Cell is a NASNet cell of len(Blocks) blocks (B; the study uses 2, Zoph et al. 5).
type Cell struct {
	Blocks []CellBlock
}

// String returns the cell's text form: "b0 = ...; b1 = ...".
func (c Cell) String() string {
	var sb strings.Builder
	for i, b := range c.Blocks {
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "b%d = %s", i, b)
	}
	return sb.String()
}

// Equal reports whether c and d have the same blocks.
func (c Cell) Equal(d Cell) bool {
	if len(c.Blocks) != len(d.Blocks) {
		return false
	}
	for i := range c.Blocks {
		if c.Blocks[i] != d.Blocks[i] {
			return false
		}
	}
	return true
}

// Outputs returns, in ascending order, the blocks whose outputs no later block
// reads: the cell's output is their concatenation. The last block is always one.
func (c Cell) Outputs() []int {
	used := make([]bool, len(c.Blocks))
	for _, b := range c.Blocks {
		for _, in := range []int{b.In1, b.In2} {
			if k := in - 2; k >= 0 && k < len(used) {
				used[k] = true
			}
		}
	}
	var out []int
	for k, u := range used {
		if !u {
			out = append(out, k)
		}
	}
	return out
}

// Validate returns nil or a CellProblems listing every problem of c.
func (c Cell) Validate() error { return cellProblems(validateCell("", c)) }

// CellPair is the normal and the reduction cell of a network; both have the
// same number of blocks.
type CellPair struct {
	Normal, Reduction Cell
}

// B returns the number of blocks per cell (that of the normal cell).
func (p CellPair) B() int { return len(p.Normal.Blocks) }

// String returns "normal: <cell> | reduction: <cell>".
func (p CellPair) String() string {
	return "normal: " + p.Normal.String() + " | reduction: " + p.Reduction.String()
}

// Equal reports whether p and q have the same cells.
func (p CellPair) Equal(q CellPair) bool {
	return p.Normal.Equal(q.Normal) && p.Reduction.Equal(q.Reduction)
}

// Validate returns nil or a CellProblems listing every problem of p.
func (p CellPair) Validate() error {
	probs := validateCell("normal", p.Normal)
	probs = append(probs, validateCell("reduction", p.Reduction)...)
	if n, r := len(p.Normal.Blocks), len(p.Reduction.Blocks); n != r && n > 0 && r > 0 {
		probs = append(probs, CellProblem{Path: "reduction", Msg: fmt.Sprintf("has %d blocks, the normal cell %d; both cells need the same B", r, n)})
	}
	return cellProblems(probs)
}

// CellActionsPerBlock is the number of decisions per block in an action
// vector: input1, input2, op1, op2, combine.
const CellActionsPerBlock = 5

// Actions returns p as the controller's action vector: 5 integers per block
// (input1, input2, op1, op2, combine), the normal cell's blocks first, then
// the reduction cell's.
func (p CellPair) Actions() []int {
	out := make([]int, 0, CellActionsPerBlock*(len(p.Normal.Blocks)+len(p.Reduction.Blocks)))
	for _, c := range []Cell{p.Normal, p.Reduction} {
		for _, b := range c.Blocks {
			out = append(out, b.In1, b.In2, int(b.Op1), int(b.Op2), int(b.Combine))
		}
	}
	return out
}

// CellActionsUsage describes the action-vector layout, for error messages.
const CellActionsUsage = "10*B integers for B blocks per cell: 5 per block (input1, input2, op1, op2, combine), " +
	"the normal cell's B blocks first, then the reduction cell's; block b's inputs in 0..b+1 " +
	"(0 = h0, 1 = h1, 2+k = block k), ops in 0..12, combine 0 = add or 1 = concat"

// CellPairFromActions decodes an action vector (see Actions). Its error is a
// CellProblems naming every bad entry by position, e.g.
// `action 7 (normal b1 op1): 13 is out of range 0-12`.
func CellPairFromActions(actions []int) (CellPair, error) {
	n := len(actions)
	if n == 0 || n%(2*CellActionsPerBlock) != 0 {
		return CellPair{}, CellProblems{{Msg: fmt.Sprintf("got %d integers, want %s", n, CellActionsUsage)}}
	}
	b := n / (2 * CellActionsPerBlock)
	var p CellPair
	var probs []CellProblem
	for ci, name := range []string{"normal", "reduction"} {
		cell := Cell{Blocks: make([]CellBlock, b)}
		for k := range cell.Blocks {
			base := (ci*b + k) * CellActionsPerBlock
			a := actions[base : base+CellActionsPerBlock]
			field := func(j int, what string, lo, hi int) {
				if a[j] < lo || a[j] > hi {
					probs = append(probs, CellProblem{
						Path: fmt.Sprintf("action %d (%s b%d %s)", base+j, name, k, what),
						Msg:  fmt.Sprintf("%d is out of range %d-%d", a[j], lo, hi),
					})
				}
			}
			field(0, "input1", 0, k+1)
			field(1, "input2", 0, k+1)
			field(2, "op1", 0, NumCellOps-1)
			field(3, "op2", 0, NumCellOps-1)
			field(4, "combine", 0, NumCellCombines-1)
			cell.Blocks[k] = CellBlock{In1: a[0], In2: a[1], Op1: CellOp(clampByte(a[2])), Op2: CellOp(clampByte(a[3])), Combine: CellCombine(clampByte(a[4]))}
		}
		if ci == 0 {
			p.Normal = cell
		} else {
			p.Reduction = cell
		}
	}
	if len(probs) > 0 {
		return CellPair{}, CellProblems(probs)
	}
	return p, nil
}

func clampByte(v int) uint8 {
	if v < 0 || v > 255 {
		return 255
	}
	return uint8(v)
}

// CellProblem is one problem of a cell, a cell pair, its text form or its
// action vector. Path says where ("normal b1 input2"); Col, when not 0, is
// the 1-based byte column in the text that was parsed.
type CellProblem struct {
	Col  int
	Path string
	Msg  string
}

func (p CellProblem) Error() string {
	var sb strings.Builder
	if p.Col > 0 {
		fmt.Fprintf(&sb, "col %d: ", p.Col)
	}
	if p.Path != "" {
		sb.WriteString(p.Path)
		sb.WriteString(": ")
	}
	sb.WriteString(p.Msg)
	return sb.String()
}

// CellProblems is every problem found at once; it is the error type of
// ParseCell, ParseCellPair, CellPairFromActions and the Validate methods.
type CellProblems []CellProblem

func (ps CellProblems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

func cellProblems(ps []CellProblem) error {
	if len(ps) == 0 {
		return nil
	}
	return CellProblems(ps)
}

func joinPath(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, " ")
}

// inputProblem returns "" or what is wrong with input index in of block k.
func inputProblem(k, in int) string {
	switch {
	case in < 0:
		return fmt.Sprintf("input index %d is negative", in)
	case in >= 2+k:
		return fmt.Sprintf("%s is not an earlier block (block b%d may read h0, h1%s)", CellInputName(in), k, earlierBlocks(k))
	}
	return ""
}

func earlierBlocks(k int) string {
	switch k {
	case 0:
		return ""
	case 1:
		return " or b0"
	}
	return fmt.Sprintf(" or b0..b%d", k-1)
}

func validateCell(name string, c Cell) []CellProblem {
	if len(c.Blocks) == 0 {
		return []CellProblem{{Path: joinPath(name), Msg: "cell has no blocks"}}
	}
	var probs []CellProblem
	for k, b := range c.Blocks {
		at := func(what string) string { return joinPath(name, "b"+strconv.Itoa(k), what) }
		for j, in := range []int{b.In1, b.In2} {
			if msg := inputProblem(k, in); msg != "" {
				probs = append(probs, CellProblem{Path: at("input" + strconv.Itoa(j+1)), Msg: msg})
			}
		}
		for j, op := range []CellOp{b.Op1, b.Op2} {
			if !op.Valid() {
				probs = append(probs, CellProblem{Path: at("op" + strconv.Itoa(j+1)), Msg: fmt.Sprintf("operation index %d is out of range 0-%d", op, NumCellOps-1)})
			}
		}
		if !b.Combine.Valid() {
			probs = append(probs, CellProblem{Path: at("combine"), Msg: fmt.Sprintf("combination index %d is out of range 0-%d", b.Combine, NumCellCombines-1)})
		}
	}
	return probs
}

// ParseCell parses the text form of one cell, "b0 = add(op(in), op(in)); b1 = ...".
// Spaces are optional. Its error is a CellProblems with every problem found,
// each with its column.
func ParseCell(s string) (Cell, error) {
	p := cellParser{src: s}
	c := p.cell("", 0, len(s))
	if len(p.probs) > 0 {
		return Cell{}, CellProblems(p.probs)
	}
	return c, nil
}

// ParseCellPair parses "normal: <cell> | reduction: <cell>". Its error is a
// CellProblems with every problem found, each with its column.
func ParseCellPair(s string) (CellPair, error) {
	p := cellParser{src: s}
	var pair CellPair
	bar := strings.IndexByte(s, '|')
	if bar < 0 {
		return CellPair{}, CellProblems{{Col: len(s) + 1, Msg: `want "normal: <cell> | reduction: <cell>": no "|" between the two cells`}}
	}
	if strings.IndexByte(s[bar+1:], '|') >= 0 {
		return CellPair{}, CellProblems{{Col: bar + 2 + strings.IndexByte(s[bar+1:], '|'), Msg: `want "normal: <cell> | reduction: <cell>": more than one "|"`}}
	}
	for i, part := range [2][2]int{{0, bar}, {bar + 1, len(s)}} {
		name := [2]string{"normal", "reduction"}[i]
		start, end := part[0], part[1]
		start = skipSpace(s, start, end)
		colon := strings.IndexByte(s[start:end], ':')
		if colon < 0 || strings.TrimSpace(s[start:start+colon]) != name {
			p.add(start, "", fmt.Sprintf("want %q before the %s cell", name+":", name))
			continue
		}
		c := p.cell(name, start+colon+1, end)
		if i == 0 {
			pair.Normal = c
		} else {
			pair.Reduction = c
		}
	}
	if len(p.probs) == 0 {
		if n, r := len(pair.Normal.Blocks), len(pair.Reduction.Blocks); n != r {
			p.add(skipSpace(s, bar+1, len(s)), "reduction", fmt.Sprintf("has %d blocks, the normal cell %d; both cells need the same B", r, n))
		}
	}
	if len(p.probs) > 0 {
		return CellPair{}, CellProblems(p.probs)
	}
	return pair, nil
}

func skipSpace(s string, i, end int) int {
	for i < end && isWhitespace(s[i]) {
		i++
	}
	return i
}

// isWhitespace reports whether c is a space, tab, newline or carriage return,
// the white space the cell text form allows between tokens.
func isWhitespace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// cellParser parses blocks one at a time, so that a mistake in one block
// does not hide those in the next.
type cellParser struct {
	src   string
	probs []CellProblem
}

func (p *cellParser) add(off int, path, msg string) {
	p.probs = append(p.probs, CellProblem{Col: off + 1, Path: path, Msg: msg})
}

// cell parses src[start:end] as blocks separated by ';'.
func (p *cellParser) cell(name string, start, end int) Cell {
	var c Cell
	if strings.TrimSpace(p.src[start:end]) == "" {
		p.add(skipSpace(p.src, start, end), name, "cell has no blocks")
		return c
	}
	k := 0
	for seg := start; seg <= end; k++ {
		semi := strings.IndexByte(p.src[seg:end], ';')
		segEnd := end
		if semi >= 0 {
			segEnd = seg + semi
		}
		if strings.TrimSpace(p.src[seg:segEnd]) == "" {
			what := "block b" + strconv.Itoa(k) + " is empty"
			if semi < 0 && k > 0 {
				what = "empty block after ';'"
			}
			p.add(skipSpace(p.src, seg, segEnd), name, what)
		} else {
			c.Blocks = append(c.Blocks, p.block(name, k, seg, segEnd))
		}
		if semi < 0 {
			break
		}
		seg = segEnd + 1
	}
	return c
}

// cellTok is a token of the text form: a name (letters, digits, '_') or one
// punctuation byte.
type cellTok struct {
	off  int
	text string
}

func (p *cellParser) tokens(path string, start, end int) ([]cellTok, bool) {
	var toks []cellTok
	ok := true
	for i := start; i < end; {
		ch := p.src[i]
		switch {
		case isWhitespace(ch):
			i++
		case ch == '=' || ch == '(' || ch == ')' || ch == ',':
			toks = append(toks, cellTok{i, p.src[i : i+1]})
			i++
		case isNameByte(ch):
			j := i
			for j < end && isNameByte(p.src[j]) {
				j++
			}
			toks = append(toks, cellTok{i, p.src[i:j]})
			i = j
		default:
			p.add(i, path, fmt.Sprintf("unexpected character %q", p.src[i:i+1]))
			ok = false
			i++
		}
	}
	return toks, ok
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// block parses "bK = combine(op(input), op(input))" in src[start:end].
func (p *cellParser) block(name string, k, start, end int) CellBlock {
	var b CellBlock
	label := "b" + strconv.Itoa(k)
	path := joinPath(name, label)
	toks, ok := p.tokens(path, start, end)
	if !ok {
		return b
	}
	const shape = "want \"bK = add|concat(op(input), op(input))\""
	// Expected token layout; names are checked below.
	want := []string{"", "=", "", "(", "", "(", "", ")", ",", "", "(", "", ")", ")"}
	for i, w := range want {
		if i >= len(toks) {
			p.add(end, path, shape+": text ends early")
			return b
		}
		t := toks[i]
		if w != "" && t.text != w {
			p.add(t.off, path, fmt.Sprintf("%s: found %q where %q belongs", shape, t.text, w))
			return b
		}
		if w == "" && !isNameByte(t.text[0]) {
			p.add(t.off, path, fmt.Sprintf("%s: found %q where a name belongs", shape, t.text))
			return b
		}
	}
	if len(toks) > len(want) {
		t := toks[len(want)]
		p.add(t.off, path, fmt.Sprintf("unexpected %q after the block (separate blocks with ';')", t.text))
		return b
	}
	if toks[0].text != label {
		p.add(toks[0].off, path, fmt.Sprintf("block %d is labelled %q; blocks are labelled b0, b1, ... in order", k, toks[0].text))
	}
	if c, err := ParseCellCombine(toks[2].text); err != nil {
		p.add(toks[2].off, path, err.Error())
	} else {
		b.Combine = c
	}
	for j, at := range [2]int{4, 9} {
		op, err := ParseCellOp(toks[at].text)
		if err != nil {
			p.add(toks[at].off, path+" op"+strconv.Itoa(j+1), err.Error())
		}
		in, msg := parseCellInput(toks[at+2].text, k)
		if msg != "" {
			p.add(toks[at+2].off, path+" input"+strconv.Itoa(j+1), msg)
		}
		if j == 0 {
			b.Op1, b.In1 = op, in
		} else {
			b.Op2, b.In2 = op, in
		}
	}
	return b
}

// parseCellInput parses an input name for block k and returns its index, or a problem.
func parseCellInput(s string, k int) (int, string) {
	bad := fmt.Sprintf("unknown input %q (block b%d may read h0, h1%s)", s, k, earlierBlocks(k))
	if len(s) < 2 || (s[0] != 'h' && s[0] != 'b') {
		return 0, bad
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 0 || strconv.Itoa(n) != s[1:] {
		return 0, bad
	}
	if s[0] == 'h' {
		if n > 1 {
			return 0, bad
		}
		return n, ""
	}
	if n > 1<<20 {
		return 0, bad
	}
	if msg := inputProblem(k, n+2); msg != "" {
		return 0, msg
	}
	return n + 2, ""
}
