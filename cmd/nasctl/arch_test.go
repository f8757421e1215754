package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runCLI runs nasctl with args and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"nasctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// generateLeaves writes count synthetic leaves images of size x size pixels,
// drawn from seed, into dir through "nasctl dataset generate".
func generateLeaves(t *testing.T, dir string, count, size, seed int) {
	t.Helper()
	code, _, errOut := runCLI(t, "dataset", "generate", "--out", dir,
		"--count", strconv.Itoa(count), "--size", strconv.Itoa(size), "--seed", strconv.Itoa(seed))
	if code != 0 {
		t.Fatalf("dataset generate: exit %d: %s", code, errOut)
	}
}

// arch inspect prints the parameter counts of the study's table
// (docs/study.md, section 2; genotype's TestStudyTableParams checks all five
// rows, here two through the command).
func TestArchInspectStudyTable(t *testing.T) {
	for arch, params := range map[string]int64{
		"C(128,5,1) - C(64,1,1) - SM()":               241985,
		"C(128,5,1) - C(256,5,1) - C(256,5,1) - SM()": 3383041,
	} {
		// Flags after the positional argument must work too.
		code, out, errOut := runCLI(t, "arch", "inspect", arch, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var r struct {
			Params int64 `json:"params"`
			MACs   int64 `json:"macs"`
			Layers []struct {
				Params int64 `json:"params"`
			} `json:"layers"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var sum int64
		for _, l := range r.Layers {
			sum += l.Params
		}
		if r.Params != params || sum != params || r.MACs <= 0 {
			t.Errorf("%s: params %d (layers sum %d), macs %d; want %d", arch, r.Params, sum, r.MACs, params)
		}
	}
}

func TestArchInspectTable(t *testing.T) {
	code, out, _ := runCLI(t, "arch", "inspect", "--input", "9x9x3", "--classes", "3", "C(4,3,2) - C(6,3,1) - GAP()")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"input 9x9x3, 3 classes", "4x4x6", "355", "parameters 355, MACs 5,202 (10,404 FLOPs)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A cell that no later cell reads is left out of the network: its row
// says unused rather than a 0x0x0 output.
func TestArchInspectUnusedCell(t *testing.T) {
	arch := "net(stem=8, filters=8, normal=1, reductions=2, style=nasnet) normal: b0 = add(conv_3x3(h0), conv_3x3(h0)) | reduction: b0 = add(conv_3x3(h0), conv_3x3(h0))"
	code, out, errOut := runCLI(t, "arch", "inspect", "--input", "32x32x1", arch)
	if code != 0 || strings.Contains(out, "0x0x0") || !regexp.MustCompile(`cell 1 \(normal, 8 filters\) +unused +\n`).MatchString(out) ||
		!strings.Contains(out, "unused: no later cell reads the cell's output") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "arch", "inspect", "--input", "32x32x1", "--json", arch)
	var r archReport
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || len(r.Layers) != 6 || !r.Layers[1].Unused || r.Layers[2].Unused || r.Layers[1].Output != "unused" {
		t.Errorf("--json: exit %d, %v: %+v", code, err, r.Layers)
	}
}

// cpuWinner is the winner of the README's main job (docs/search-quality.md).
const cpuWinner = "C(64,3,1) - C(16,1,1) - P(2,2) - C(16,3,1) - C(8,3,1) - C(8,5,1) - C(32,3,1) - C(8,1,1) - GAP()"

func TestArchInspectErrors(t *testing.T) {
	// Things at hand that are no architecture: a run's folder, another
	// folder, and a NATS-Bench cell of a natsbench run (the table's optimum).
	run, folder := filepath.Join(t.TempDir(), "s1"), t.TempDir()
	if err := os.MkdirAll(filepath.Join(run, "winners"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.yaml", "winners/rank-01.onnx"} {
		if err := os.WriteFile(filepath.Join(run, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"arch", "inspect"}, 2, "takes one architecture argument"},
		{[]string{"arch", "inspect", "C(1,2) - SM()"}, 2, `layer 1 "C(1,2)": C takes 3 arguments`},
		{[]string{"arch", "inspect", "SM()", "--input", "64by64"}, 2, "--input"},
		{[]string{"arch", "inspect", "SM()", "--nope"}, 2, "unknown flag --nope\n"}, // no suggestion: nothing is near
		{[]string{"arch", "inspect", "SM()", "--jsn"}, 2, "unknown flag --jsn (did you mean --json?)"},
		{[]string{"arch", "inspect", "SM()", "--json=maybe"}, 2, "--json maybe: want true or false\n"},
		{[]string{"arch", "inspect", "C(8,9,1) - SM()", "--input", "4x4x1"}, 2, "kernel 9 exceeds the 4x4 input"},
		{[]string{"arch", "inspect", "SM()", "--space", "cifar"}, 2, "valid: baker2017, study"},
		{[]string{"arch", "inspect", "P(2,2) - SM()", "--space", "baker2017"}, 1, "pooling may not be the first layer"},
		// The cpu space's MAC limits are for the cpu preset's input, which
		// --space cpu checks at unless told otherwise: the main job's winner.
		{[]string{"arch", "inspect", cpuWinner, "--space", "cpu"}, 0, "input 32x32x1, 2 classes"},
		// At 64x64x1, C(64,3,1) gives 62x62x64 for 62*62*64*9 = 2,214,144
		// MACs and C(16,1,1) adds 62*62*16*64 = 3,936,256: counts grouped
		// as the table prints them.
		{[]string{"arch", "inspect", cpuWinner, "--space", "cpu", "--input", "64x64x1"}, 1,
			`layer 2 "C(16,1,1)": brings the hidden layers to 6,150,400 multiply-accumulates per image, over the limit of 4,000,000`},
		{[]string{"arch", "inspect", run}, 2, "is a search run's folder: give one of its models, such as " + filepath.Join(run, "winners", "rank-01.onnx")},
		{[]string{"arch", "inspect", run}, 2, "nasctl runs show " + run + " lists the run's architectures"},
		{[]string{"arch", "inspect", folder}, 2, folder + " is a folder: arch inspect reads an architecture or a model file (.onnx)"},
		{[]string{"arch", "inspect", cell}, 2, "is a NATS-Bench cell: arch inspect does not read those"},
		{[]string{"arch", "inspect", cell}, 2, "nasctl reward natsbench --cell '" + cell + "' gives its accuracy"},
	}
	for _, tc := range tests {
		code, out, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%q: exit %d, output %q %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

// Every command and subcommand has a usage line, and its --help prints that
// line, every flag the command takes (with its usage) and, for a command
// that does something, a description or an example.
func TestHelpEverywhere(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(append([]string{}, path...), c.Name)
			if c.Usage == "" {
				t.Errorf("%q has no usage text", p)
			}
			code, out, _ := runCLI(t, append(p, "--help")...)
			if code != 0 || !strings.Contains(out, c.Usage) {
				t.Errorf("%q --help: exit %d, usage line %q missing:\n%s", p, code, c.Usage, out)
			}
			for _, f := range c.Flags {
				name := f.Names()[0]
				usage := ""
				if u, ok := f.(interface{ GetUsage() string }); ok {
					usage = u.GetUsage()
				}
				if !strings.Contains(out, "--"+name) || usage == "" || !strings.Contains(out, usage) {
					t.Errorf("%q --help: flag --%s or its usage %q missing", p, name, usage)
				}
			}
			if c.Action != nil && len(c.Subcommands) == 0 && c.Description == "" {
				t.Errorf("%q does something but its help has no description", p)
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
}

// "nasctl help [command]", which every usage error points to, prints help,
// and --version the version; an unknown command is a usage error that lists
// the valid ones.
func TestHelpCommandAndUnknownCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "COMMANDS:"},
		{[]string{"help", "runs"}, "list, show and compare search runs"},
		{[]string{"runs", "help", "show"}, "runs show"},
		{nil, "COMMANDS:"},
		{[]string{"--version"}, "nasctl version "},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, %q missing:\n%s%s", tc.args, code, tc.want, out, errOut)
		}
	}
	code, _, errOut := runCLI(t, "bogus")
	if code != 2 || !strings.Contains(errOut, `unknown command "bogus" (valid: arch, dataset,`) || strings.Contains(errOut, "help,") {
		t.Errorf("bogus: exit %d: %s", code, errOut)
	}
}

// Values a command cannot use are usage errors that name the flag, not
// silent defaults.
func TestOutOfRangeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "bench takes one or more model files or run directories"},
		{[]string{"doctor", "compare", "a.json", "b.json", "--tol", "-1"}, "--tol -1: must be 0 or more"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", "d", "--optimizer", "rmsprop"}, `--optimizer "rmsprop": valid are adam and sgd`},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", "d", "--momentum", "0.5"}, "--momentum applies to --optimizer sgd"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", "d", "--optimizer", "sgd", "--momentum", "1"}, "--momentum 1: must be in [0, 1)"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", ".", "--epochs", "0"}, "--epochs must be at least 1, got 0"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", ".", "--batch", "-1"}, "--batch must be at least 1, got -1"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", ".", "--lr", "0"}, "--lr must be positive, got 0"},
		{[]string{"train", "--arch", "C(4,3,1) - SM()", "--data", ".", "--input", "32"}, `input shape "32": want HEIGHTxWIDTH or HEIGHTxWIDTHxCHANNELS, e.g. 32x32 or 64x64x1`},
		{[]string{"worker", "--broker", "nats://127.0.0.1:1", "--slots", "0"}, "--slots must be at least 1, got 0"},
		{[]string{"worker", "--broker", "nats://127.0.0.1:1", "--threads", "-2"}, "--threads must be at least 0 (0: the search's setting), got -2"},
		{[]string{"worker", "--broker", "nats://127.0.0.1:1", "--device", "cuda", "--device-id", "-1"}, "--device-id must be at least 0, got -1"},
		{[]string{"worker", "--broker", "nats://127.0.0.1:1", "--device-id", "1"}, "--device-id chooses a GPU: it goes with --device cuda"},
		{[]string{"benchmark", "agents", "--space", "mock", "--blocks", "11"}, "--blocks must be 1 to 10, got 11"},
		{[]string{"search", "nasnet", "--reward", "mock", "--blocks", "50"}, "problem.blocks: 50, want 1 to 10"},
	} {
		if code, _, errOut := runCLI(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want 2 and %q:\n%s", tc.args, code, tc.want, errOut)
		}
	}
}

// No flag is marked Required: urfave/cli answers a missing one with the
// command's whole help and exit 1. Commands check their own, as a usage
// error of one line ("export needs --out FILE").
func TestNoRequiredFlags(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
					t.Errorf("%s %s: --%s is Required; check it in the action with usagef instead", path, c.Name, f.Names()[0])
				}
			}
			walk(path+" "+c.Name, c.Subcommands)
		}
	}
	walk("nasctl", newApp(&bytes.Buffer{}, &bytes.Buffer{}).Commands)
	code, out, errOut := runCLI(t, "doctor", "train")
	if code != 2 || out != "" || !strings.HasPrefix(errOut, "nasctl: doctor train needs --out FILE") {
		t.Errorf("doctor train without --out: exit %d, stdout %q, stderr %q; want exit 2 and one line", code, out, errOut)
	}
}

func TestUnknownSubcommand(t *testing.T) {
	code, _, errOut := runCLI(t, "arch", "bogus")
	if code != 2 || !strings.Contains(errOut, `unknown command "arch bogus" (valid: inspect)`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// Flags move in front of the positional arguments; "--" goes right after
// them, so that whatever follows it (a file named -x.png) stays positional.
func TestInterspersed(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, tc := range []struct{ in, want []string }{
		{[]string{"nasctl", "arch", "inspect", "ARCH", "--json"}, []string{"nasctl", "arch", "inspect", "--json", "ARCH"}},
		{[]string{"nasctl", "predict", "m.onnx", "--json", "--", "-x.png"}, []string{"nasctl", "predict", "--json", "--", "m.onnx", "-x.png"}},
		{[]string{"nasctl", "predict", "--", "m.onnx", "--json"}, []string{"nasctl", "predict", "--", "m.onnx", "--json"}},
		// Help for the command, not a help topic named by its argument.
		{[]string{"nasctl", "arch", "inspect", "SM()", "--help"}, []string{"nasctl", "arch", "inspect", "--help"}},
		{[]string{"nasctl", "predict", "m.onnx", "-h", "x.png"}, []string{"nasctl", "predict", "-h"}},
		{[]string{"nasctl", "predict", "m.onnx", "--help", "--", "x.png"}, []string{"nasctl", "predict", "--help"}},
		{[]string{"nasctl", "arch", "inspect", "SM()", "-help"}, []string{"nasctl", "arch", "inspect", "-help"}},
		{[]string{"nasctl", "arch", "inspect", "SM()", "--help=true"}, []string{"nasctl", "arch", "inspect", "--help=true"}},
		// "help COMMAND..." is the help of the command named, however deep;
		// a topic that is no command is left to urfave/cli.
		{[]string{"nasctl", "help", "search", "metaqnn"}, []string{"nasctl", "search", "metaqnn", "--help"}},
		{[]string{"nasctl", "h", "runs", "list"}, []string{"nasctl", "runs", "list", "--help"}},
		{[]string{"nasctl", "help", "nosuch"}, []string{"nasctl", "help", "nosuch"}},
		{[]string{"nasctl", "help", "search", "nosuch"}, []string{"nasctl", "search", "nosuch"}},
		// A value h, or help off, keeps the arguments.
		{[]string{"nasctl", "eval", "m.onnx", "--data", "h"}, []string{"nasctl", "eval", "--data", "h", "m.onnx"}},
		{[]string{"nasctl", "arch", "inspect", "SM()", "--help=0"}, []string{"nasctl", "arch", "inspect", "--help=0", "SM()"}},
	} {
		if got := interspersed(app, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
