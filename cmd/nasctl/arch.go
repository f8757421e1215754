package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/onnxgen"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

func archCommand() *cli.Command {
	return &cli.Command{
		Name:  "arch",
		Usage: "work with architectures: layer sequences and cell networks",
		Subcommands: []*cli.Command{{
			Name:      "inspect",
			Usage:     "show an architecture's layers or cells, output shapes, parameters and multiply-accumulates",
			ArgsUsage: `"ARCH" | MODEL.onnx`,
			Description: `ARCH is written in the study's text form, layers joined by "-":
  C(filters,kernel,stride)  convolution + ReLU ('valid' when first, else 'same')
  P(kernel,stride)          max-pooling, 'same' padding
  FC(units)                 fully connected + ReLU
  GAP()                     global average pooling, then the classifier (last layer)
  SM()                      the classifier (last layer)
Example: nasctl arch inspect "C(32,3,1) - P(2,2) - C(64,3,1) - GAP()" --input 64x64x1

A cell network (what nasctl search nasnet trains) is written as its search writes it:
  net(stem=S, filters=F, normal=N, reductions=R, style=study|nasnet) normal: <cell> | reduction: <cell>
a stem of S filters, then R times N normal cells and a reduction cell, each cell
"b0 = add(op(h1), op(h0)); b1 = ...", with add or concat, and each op one of
  ` + strings.Join(genotype.CellOpNames()[:5], ", ") + `,
  ` + strings.Join(genotype.CellOpNames()[5:10], ", ") + `,
  ` + strings.Join(genotype.CellOpNames()[10:], ", ") + `;
it is shown per stem, cell and classifier.
With --space, the architecture is also validated against a search space and every
violation is listed (exit code 1 when there is one).

Given a model that nasctl exported (a path ending in .onnx), inspect shows its
architecture at the model's input and classes, then what its metadata records:
where it came from (run, trial, rank, dataset hash), its accuracies and how it was
trained (nasctl.training: epochs, batch, learning rate and schedule, optimizer,
weights, augmentation, seed). Example: nasctl arch inspect runs/leaves/winners/rank-01.onnx`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "input", Usage: "input shape HEIGHTxWIDTHxCHANNELS (default: " + genotype.StudyInput.String() + ", the study's; with --space cpu, the cpu preset's " + cpuInput() + ")"},
				&cli.IntFlag{Name: "classes", Value: 2, Usage: "number of classes (2: one sigmoid unit; more: softmax)"},
				&cli.StringFlag{Name: "space", Usage: "validate against a search-space preset (cpu, study, baker2017)"},
				&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of a table"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef(`arch inspect takes one architecture argument, e.g. "C(32,3,1) - P(2,2) - SM()", or one model file (got %d arguments)`, c.NArg())
				}
				opts := archInspectOptions{Arch: c.Args().First(), Classes: c.Int("classes"), Space: c.String("space"), JSON: c.Bool("json")}
				if err := notAnArch(opts.Arch); err != nil {
					return err
				}
				var err error
				if strings.HasSuffix(opts.Arch, ".onnx") {
					if err := checkModelPath(opts.Arch); err != nil {
						return err
					}
					if c.IsSet("input") || c.IsSet("classes") {
						return usagef("--input and --classes are for an architecture; a model has its own (%s)", opts.Arch)
					}
					if err := readInspectedModel(&opts); err != nil {
						return err
					}
					return runArchInspect(c.Context, opts, c.App.Writer)
				}
				in := c.String("input")
				if in == "" {
					in = genotype.StudyInput.String()
					if opts.Space == search.CPUSpace.Name {
						in = cpuInput() // the space's MAC limits are for the preset's input
					}
				}
				if opts.Input, err = genotype.ParseInput(in); err != nil {
					return usagef("--input: %v", err)
				}
				return runArchInspect(c.Context, opts, c.App.Writer)
			},
		}},
	}
}

// notAnArch returns a usage error for an argument of arch inspect that is
// something else the user has at hand, which the layer syntax's error
// ("expected NAME(args)") would not name: a folder (a run's: where its
// architectures are), or a NATS-Bench cell of a natsbench search.
func notAnArch(arg string) error {
	if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
		msg := fmt.Sprintf("%s is a folder: arch inspect reads an architecture or a model file (.onnx)", arg)
		if err := modelFolderError(arg); isRunFolder(arg) && err != nil {
			msg = fmt.Sprintf("arch inspect reads an architecture or a model file: %v; nasctl runs show %s lists the run's architectures", err, shell.Quote(arg))
		}
		return usagef("%s", msg)
	}
	if _, err := natsbench.ParseCell(arg); err == nil {
		return usagef("%q is a NATS-Bench cell: arch inspect does not read those (nasctl builds no network of them; a natsbench search looks their accuracy up); nasctl reward natsbench --cell %s gives its accuracy",
			arg, shell.Quote(arg))
	}
	return nil
}

// cpuInput is the input of the cpu preset, whose space is the cpu space.
func cpuInput() string {
	c, _ := search.Preset(search.CPUSpace.Name)
	return c.Input
}

type archInspectOptions struct {
	Arch    string
	Input   genotype.Input
	Classes int
	Space   string // preset name, "" for none
	JSON    bool
	// Model and Meta: the model file the architecture was read from, and
	// its metadata.
	Model    string
	Meta     map[onnxgen.MetaKey]string
	Producer string       // the program and build that wrote Model
	Graph    *graphReport // Model's inputs, outputs and opset
}

// readInspectedModel reads the model file opts.Arch names: its architecture,
// input, classes and metadata replace opts' own.
func readInspectedModel(opts *archInspectOptions) error {
	b, err := os.ReadFile(opts.Arch)
	if err != nil {
		return err
	}
	info, err := onnxgen.ReadModelInfo(b)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Arch, err)
	}
	if info.Arch == nil || len(info.Classes) < 2 {
		return fmt.Errorf("%s: not a model that nasctl exported (its metadata lacks %s or %s); arch inspect reads nasctl's models only",
			opts.Arch, onnxgen.MetaArch, onnxgen.MetaClasses)
	}
	opts.Model, opts.Meta = opts.Arch, info.Meta
	opts.Graph = &graphReport{Opset: info.Opset}
	for _, n := range info.Inputs {
		opts.Graph.Inputs = append(opts.Graph.Inputs, valueType{n, info.Declared[n]})
	}
	for _, n := range info.Outputs {
		opts.Graph.Outputs = append(opts.Graph.Outputs, valueType{n, info.Declared[n]})
	}
	opts.Producer = strings.TrimSpace(info.Producer + " " + cmp.Or(info.ProducerVersion, "(no version recorded)"))
	opts.Arch, opts.Input, opts.Classes = info.Arch.String(), info.Input, len(info.Classes)
	return nil
}

// archReport is the JSON form of arch inspect.
type archReport struct {
	Arch                string        `json:"arch"`
	Input               string        `json:"input"`
	Classes             int           `json:"classes"`
	Params              int64         `json:"params"`
	MACs                int64         `json:"macs"`
	FLOPs               int64         `json:"flops"`
	ActivationBytes     int64         `json:"activation_bytes"`
	PeakActivationBytes int64         `json:"peak_activation_bytes"`
	Layers              []layerReport `json:"layers"`
	Space               string        `json:"space,omitempty"`
	Violations          []string      `json:"violations,omitempty"`

	// Model and Metadata: the model file inspected and its metadata_props
	// (a value that is itself a JSON object, such as nasctl.training, is
	// given as one).
	Model    string                     `json:"model,omitempty"`
	Producer string                     `json:"producer,omitempty"`
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
	// Graph is what a program that runs the model feeds and reads: its
	// inputs and outputs with their declared types, and its opset.
	Graph *graphReport `json:"graph,omitempty"`
}

// graphReport is a model's interface to the program that runs it.
type graphReport struct {
	Opset   int64       `json:"opset"`
	Inputs  []valueType `json:"inputs"`
	Outputs []valueType `json:"outputs"`
}

type valueType struct {
	Name string `json:"name"`
	Type string `json:"type"` // element type and dimensions: float32[N,1,64,64]
}

type layerReport struct {
	Index   int     `json:"index"` // 1-based
	Layer   string  `json:"layer"`
	Output  string  `json:"output"`
	Params  int64   `json:"params"`
	MACs    int64   `json:"macs"`
	Dropout float64 `json:"dropout,omitempty"`
	// Unused: a cell no later cell reads, left out of the network.
	Unused bool `json:"unused,omitempty"`
}

func runArchInspect(_ context.Context, opts archInspectOptions, out io.Writer) error {
	arch, err := genotype.ParseGenotype(opts.Arch)
	if err != nil {
		return usagef("architecture: %v", err)
	}
	if opts.Classes < 2 {
		return usagef("--classes %d: need at least 2", opts.Classes)
	}
	net, err := arch.Build(opts.Input, opts.Classes)
	if err != nil {
		return usagef("architecture at input %s: %v", opts.Input, err)
	}
	r := archReport{
		Arch: arch.String(), Input: opts.Input.String(), Classes: opts.Classes,
		Params: net.Params(), MACs: net.MACs(), FLOPs: net.FLOPs(),
		ActivationBytes: net.ActivationBytes(), PeakActivationBytes: net.PeakActivationBytes(),
	}
	if opts.Model != "" {
		r.Model, r.Producer, r.Metadata, r.Graph = opts.Model, opts.Producer, metadataJSON(opts.Meta), opts.Graph
	}
	for _, l := range net.Layers() {
		lr := layerReport{Index: l.Index + 1, Layer: l.Layer, Output: l.Out.String(), Params: l.Params, MACs: l.MACs, Dropout: l.Dropout, Unused: l.Unused}
		if l.Unused {
			lr.Output = "unused"
		}
		r.Layers = append(r.Layers, lr)
	}
	if opts.Space != "" {
		space, err := search.SpacePreset(opts.Space)
		if err != nil {
			return usagef("--space: %v", err)
		}
		r.Space = space.Name
		layers, ok := arch.(genotype.Arch)
		if !ok {
			return usagef("--space checks layer sequences; %s is a cell network", opts.Arch)
		}
		if err := space.Validate(layers, opts.Input); err != nil {
			for _, p := range err.(genotype.Problems) {
				q := *p
				q.Msg = groupDigits(q.Msg) // not the layer's text, where 10000 is FC(10000)
				r.Violations = append(r.Violations, q.Error())
			}
		}
	}
	if opts.JSON {
		if err := printJSON(out, r); err != nil {
			return err
		}
	} else {
		printArchReport(out, r)
	}
	if len(r.Violations) > 0 {
		return fmt.Errorf("the architecture violates the %s space (%d problems listed above)", r.Space, len(r.Violations))
	}
	return nil
}

// number is a run of digits and points: an integer, or a decimal number
// whose digits groupDigits must leave alone.
var number = regexp.MustCompile(`[0-9.]+`)

// groupDigits writes the integers of five digits or more in msg with
// thousands separators, as the tables print counts (4,147,200
// multiply-accumulates, not 4147200).
func groupDigits(msg string) string {
	return number.ReplaceAllStringFunc(msg, func(n string) string {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || len(n) < 5 {
			return n
		}
		return humanize.Comma(v)
	})
}

func printArchReport(out io.Writer, r archReport) {
	fmt.Fprintf(out, "%s\ninput %s, %d classes\n\n", r.Arch, r.Input, r.Classes)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\tlayer\toutput\tparams\tMACs\tdropout\t")
	for _, l := range r.Layers {
		drop := ""
		if l.Dropout > 0 {
			drop = fmt.Sprintf("%.3g", l.Dropout)
		}
		if l.Unused {
			fmt.Fprintf(tw, "%d\t%s\t%s\t\t\t\t\n", l.Index, l.Layer, l.Output)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", l.Index, l.Layer, l.Output, humanize.Comma(l.Params), humanize.Comma(l.MACs), drop)
	}
	fmt.Fprintf(tw, "\ttotal\t\t%s\t%s\t\t\n", humanize.Comma(r.Params), humanize.Comma(r.MACs))
	tw.Flush()
	if slices.ContainsFunc(r.Layers, func(l layerReport) bool { return l.Unused }) {
		fmt.Fprintln(out, "\nunused: no later cell reads the cell's output, so the network leaves it out")
	}
	fmt.Fprintf(out, "\nparameters %s, MACs %s (%s FLOPs) per image\n", humanize.Comma(r.Params), humanize.Comma(r.MACs), humanize.Comma(r.FLOPs))
	fmt.Fprintf(out, "activation memory per image: %s (every layer's, as training keeps them), %s (inference: the peak of one layer)\n", humanize.IBytes(uint64(r.ActivationBytes)), humanize.IBytes(uint64(r.PeakActivationBytes)))
	if r.Model != "" {
		fmt.Fprintf(out, "\n%s was written by %s", r.Model, r.Producer)
		if g := r.Graph; g != nil {
			fmt.Fprintf(out, "; ONNX opset %d, %s %s, %s %s", g.Opset, english.PluralWord(len(g.Inputs), "input", "inputs"), valueTypes(g.Inputs),
				english.PluralWord(len(g.Outputs), "output", "outputs"), valueTypes(g.Outputs))
		}
		fmt.Fprintln(out, "; its metadata:")
		for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
			fmt.Fprintf(out, "  %s: %s\n", k, metadataText(r.Metadata[k]))
		}
	}
	if r.Space != "" {
		if len(r.Violations) == 0 {
			fmt.Fprintf(out, "valid in the %s space\n", r.Space)
		} else {
			fmt.Fprintf(out, "violations of the %s space:\n", r.Space)
			for _, v := range r.Violations {
				fmt.Fprintf(out, "  %s\n", v)
			}
		}
	}
}

// valueTypes writes values as "x float32[N,1,64,64]", joined by commas.
func valueTypes(vs []valueType) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Name + " " + v.Type
	}
	return strings.Join(parts, ", ")
}

// metadataJSON gives every metadata value as a JSON string, except a JSON
// object or array (nasctl.training, nasctl.quantization, nasctl.classes),
// which stays one.
func metadataJSON(meta map[onnxgen.MetaKey]string) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(meta))
	for k, v := range meta {
		if (strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[")) && json.Valid([]byte(v)) {
			m[string(k)] = json.RawMessage(v)
			continue
		}
		m[string(k)], _ = json.Marshal(v) // a string always marshals
	}
	return m
}

// metadataText is a metadata value as text: a JSON string unquoted, an
// object or array as its JSON.
func metadataText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
