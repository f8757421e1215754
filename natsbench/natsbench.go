// Package natsbench is the NAS-Bench-201 / NATS-Bench topology search space as
// a table reward: every one of its 15,625 cells (6 edges, 5 operations each)
// with its test accuracy after 200 epochs on CIFAR-10, CIFAR-100 and
// ImageNet16-120. A query is a table look-up, so a search agent's sample
// efficiency can be measured over thousands of runs in seconds.
//
// The table is embedded (data/natsbench-tss-200ep.csv.gz; its provenance is in
// data/README.md) and parsed once, on first use.
package natsbench

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

//go:embed data/natsbench-tss-200ep.csv.gz
var tableGz []byte

// Op is the operation on one edge of a cell.
type Op uint8

// The 5 operations, in the benchmark's order.
const (
	None        Op = iota // none (the edge is absent)
	SkipConnect           // identity
	Conv1x1               // ReLU-conv-BN 1x1
	Conv3x3               // ReLU-conv-BN 3x3
	AvgPool3x3            // 3x3 average pooling

	// NumOps is the number of operations.
	NumOps = 5
)

var opNames = [NumOps]string{"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}

// String returns the benchmark's name of the operation, e.g. "nor_conv_3x3".
func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp parses an operation name; its error lists the valid names.
func ParseOp(s string) (Op, error) {
	for i, n := range opNames {
		if n == s {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("unknown NATS-Bench operation %q (valid: %s)", s, strings.Join(opNames[:], ", "))
}

// NumEdges is the number of edges of a cell, NumCells the number of cells.
const (
	NumEdges = 6
	NumCells = 15625 // NumOps^NumEdges
)

// Cell is one architecture: the operation of each edge, in the order of the
// benchmark's architecture string: node1<-node0, node2<-node0, node2<-node1,
// node3<-node0, node3<-node1, node3<-node2.
type Cell [NumEdges]Op

// String returns the benchmark's architecture string, e.g.
// "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|".
func (c Cell) String() string {
	var sb strings.Builder
	e := 0
	for node := 1; node <= 3; node++ {
		if node > 1 {
			sb.WriteByte('+')
		}
		sb.WriteByte('|')
		for from := range node {
			fmt.Fprintf(&sb, "%s~%d|", c[e], from)
			e++
		}
	}
	return sb.String()
}

// ParseCell parses the benchmark's architecture string.
func ParseCell(s string) (Cell, error) {
	var c Cell
	nodes := strings.Split(s, "+")
	if len(nodes) != 3 {
		return c, fmt.Errorf("NATS-Bench cell %q: want 3 nodes separated by '+', got %d", s, len(nodes))
	}
	e := 0
	for j, node := range nodes {
		inner, ok := strings.CutPrefix(node, "|")
		if ok {
			inner, ok = strings.CutSuffix(inner, "|")
		}
		if !ok {
			return c, fmt.Errorf("NATS-Bench cell %q: node %d %q is not enclosed in '|'", s, j+1, node)
		}
		edges := strings.Split(inner, "|")
		if len(edges) != j+1 {
			return c, fmt.Errorf("NATS-Bench cell %q: node %d has %d inputs, want %d", s, j+1, len(edges), j+1)
		}
		for i, edge := range edges {
			name, from, ok := strings.Cut(edge, "~")
			if !ok || from != strconv.Itoa(i) {
				return c, fmt.Errorf("NATS-Bench cell %q: edge %q, want op~%d", s, edge, i)
			}
			op, err := ParseOp(name)
			if err != nil {
				return c, fmt.Errorf("NATS-Bench cell %q: %w", s, err)
			}
			c[e] = op
			e++
		}
	}
	return c, nil
}

// Index returns the cell's position in 0..NumCells-1 (edge 0 the most
// significant base-5 digit).
func (c Cell) Index() int {
	i := 0
	for _, op := range c {
		i = i*NumOps + int(op)
	}
	return i
}

// CellAt is the inverse of Index.
func CellAt(i int) Cell {
	var c Cell
	for e := NumEdges - 1; e >= 0; e-- {
		c[e] = Op(i % NumOps)
		i /= NumOps
	}
	return c
}

// Actions returns the cell as an agent's action vector (the 6 op indices).
func (c Cell) Actions() []int {
	out := make([]int, NumEdges)
	for e, op := range c {
		out[e] = int(op)
	}
	return out
}

// CellFromActions decodes an action vector of 6 op indices in 0..4.
func CellFromActions(actions []int) (Cell, error) {
	var c Cell
	if len(actions) != NumEdges {
		return c, fmt.Errorf("NATS-Bench cell: got %d decisions, want %d (one op index 0-4 per edge)", len(actions), NumEdges)
	}
	for e, a := range actions {
		if a < 0 || a >= NumOps {
			return c, fmt.Errorf("NATS-Bench cell: edge %d: op index %d is out of range 0-%d", e, a, NumOps-1)
		}
		c[e] = Op(a)
	}
	return c, nil
}

// Dataset selects one of the table's accuracy columns.
type Dataset uint8

// The three data sets of the benchmark.
const (
	CIFAR10 Dataset = iota
	CIFAR100
	ImageNet16

	numDatasets = 3
)

var datasetNames = [numDatasets]string{"cifar10", "cifar100", "imagenet16-120"}

// String returns "cifar10", "cifar100" or "imagenet16-120".
func (d Dataset) String() string {
	if d < numDatasets {
		return datasetNames[d]
	}
	return "Dataset(" + strconv.Itoa(int(d)) + ")"
}

// DatasetNames returns the valid data set names.
func DatasetNames() []string { return append([]string(nil), datasetNames[:]...) }

// ParseDataset parses a data set name; its error lists the valid names.
func ParseDataset(s string) (Dataset, error) {
	for i, n := range datasetNames {
		if n == s {
			return Dataset(i), nil
		}
	}
	return 0, fmt.Errorf("unknown NATS-Bench data set %q (valid: %s)", s, strings.Join(datasetNames[:], ", "))
}

// Table is the accuracy of every cell on every data set. It is read-only
// and safe for concurrent use.
type Table struct {
	acc [NumCells][numDatasets]float64
}

// Accuracy returns the test accuracy (percent, after 200 epochs) of c on d.
func (t *Table) Accuracy(c Cell, d Dataset) float64 { return t.acc[c.Index()][d] }

// Optimum returns the best accuracy on d and the first cell (by Index) reaching it.
func (t *Table) Optimum(d Dataset) (Cell, float64) {
	best, at := math.Inf(-1), 0
	for i := range t.acc {
		if t.acc[i][d] > best {
			best, at = t.acc[i][d], i
		}
	}
	return CellAt(at), best
}

var (
	embedded     *Table
	embeddedErr  error
	embeddedOnce sync.Once
)

// Embedded returns the embedded table, parsed on the first call.
func Embedded() (*Table, error) {
	embeddedOnce.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(tableGz))
		if err != nil {
			embeddedErr = fmt.Errorf("natsbench: embedded table: %w", err)
			return
		}
		embedded, embeddedErr = Read(zr)
	})
	return embedded, embeddedErr
}

var columns = []string{
	"CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs",
	"ImageNetTestAccuracy200Epochs", "ArchitectureString",
}

// Read parses the table's CSV (the columns of data/README.md, header first).
// Every one of the 15,625 cells must appear exactly once.
func Read(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("natsbench: reading the header: %w", err)
	}
	col := make([]int, len(columns))
	for i, name := range columns {
		col[i] = -1
		for j, h := range head {
			if h == name {
				col[i] = j
			}
		}
		if col[i] < 0 {
			return nil, fmt.Errorf("natsbench: the table has no column %s (has %s)", name, strings.Join(head, ", "))
		}
	}
	t := &Table{}
	var seen [NumCells]bool
	line := 1
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("natsbench: %w", err)
		}
		c, err := ParseCell(rec[col[3]])
		if err != nil {
			return nil, fmt.Errorf("natsbench: line %d: %w", line, err)
		}
		i := c.Index()
		if seen[i] {
			return nil, fmt.Errorf("natsbench: line %d: cell %s appears twice", line, c)
		}
		seen[i] = true
		for d := range numDatasets {
			v, err := strconv.ParseFloat(rec[col[d]], 64)
			if err != nil || v < 0 || v > 100 {
				return nil, fmt.Errorf("natsbench: line %d: %s %q is not an accuracy in percent", line, columns[d], rec[col[d]])
			}
			t.acc[i][d] = v
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("natsbench: the table lacks cell %s", CellAt(i))
		}
	}
	return t, nil
}
