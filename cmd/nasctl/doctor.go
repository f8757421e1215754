package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"text/tabwriter"

	"github.com/nasctl/nasctl/runtime"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/cpu"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check this machine before a long run: ONNX Runtime, its providers, CUDA, the CPU",
		ArgsUsage: " ",
		Description: `Shows the ONNX Runtime library nasctl loads (path, version, how it was found), the
execution providers it was built with, whether its CUDA provider can run here (each
shared library it needs, by name, and the GPUs the NVIDIA driver shows), the CPU's
vector extensions, the NCHWc block size ONNX Runtime's CPU kernels use, and the threads.
With --device cuda the library is looked up as for training on CUDA (the GPU build of
"make setup-cuda" first) and doctor fails when CUDA cannot run, saying why.
"nasctl doctor train" and "nasctl doctor compare" time and compare a short training
on two libraries or devices (scripts/gpu-check.sh runs them).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "the device to check: cpu or cuda"},
			&cli.IntFlag{Name: "device-id", Usage: "the GPU to check with --device cuda"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			d, err := runtime.ParseDevice(c.String("device"))
			if err != nil {
				return usagef("--device: %v", err)
			}
			return runDoctor(doctorOptions{Device: d, DeviceID: c.Int("device-id"), JSON: c.Bool("json")}, c.App.Writer)
		},
		Subcommands: []*cli.Command{doctorTrainCommand(), doctorCompareCommand()},
	}
}

type doctorOptions struct {
	Device   runtime.Device
	DeviceID int
	JSON     bool
}

// doctorReport is what doctor prints; its JSON form is for scripts.
type doctorReport struct {
	Library struct {
		Path     string `json:"path"`
		Version  string `json:"version"`
		FoundVia string `json:"found_via"`
		Build    string `json:"build"`
	} `json:"library"`
	// Providers are those the library was built with (GetAvailableProviders);
	// a plug-in provider such as the CUDA provider of the 1.29 GPU build is
	// not among them: see CUDA.
	Providers []string           `json:"providers"`
	Devices   []runtime.EPDevice `json:"ep_devices"`
	CUDA      runtime.CUDAStatus `json:"cuda"`
	// CUDAProblem says why CUDA cannot run with this library here ("" when
	// nothing was found).
	CUDAProblem string `json:"cuda_problem,omitempty"`
	// GPUBuild is the GPU build "make setup-cuda" installed, or the library
	// in use when it is one (given by $ONNXRUNTIME_LIB); "" when none.
	GPUBuild string        `json:"gpu_build,omitempty"`
	GPUs     []runtime.GPU `json:"gpus"`
	GPUError string        `json:"gpu_error,omitempty"`
	CPU      struct {
		Arch       string   `json:"arch"`
		Features   []string `json:"features"`
		NCHWcBlock int64    `json:"nchwc_block"` // 0: no NCHWc kernels
		Logical    int      `json:"logical_cpus"`
		Physical   int      `json:"physical_cores"` // 0: unknown
		GOMAXPROCS int      `json:"gomaxprocs"`
	} `json:"cpu"`
	// Device is the device checked (--device), and DeviceError why it
	// cannot run ("" when it can).
	Device      string `json:"device"`
	DeviceError string `json:"device_error,omitempty"`
	// LibraryError says why no ONNX Runtime library could be loaded; the
	// report then holds what needs none (the CPU, the GPU build installed).
	LibraryError string `json:"library_error,omitempty"`
}

func runDoctor(opts doctorOptions, out io.Writer) error {
	if err := runtime.InitFor(opts.Device); err != nil {
		if opts.JSON { // the problem, for a script, as the text form says it
			rep := &doctorReport{Device: opts.Device.String(), LibraryError: err.Error(), GPUBuild: runtime.FindGPUBuild()}
			hostFacts(rep)
			if jerr := printJSON(out, rep); jerr != nil {
				return jerr
			}
		}
		return err
	}
	defer runtime.Close()
	rep, err := diagnose(opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		printDoctor(out, rep)
	}
	if rep.DeviceError != "" {
		return fmt.Errorf("%s", rep.DeviceError)
	}
	return nil
}

// diagnose gathers the report; the environment must be initialised.
func diagnose(opts doctorOptions) (*doctorReport, error) {
	rep := &doctorReport{Device: opts.Device.String()}
	path, source := runtime.LibraryPath()
	rep.Library.Path, rep.Library.Version, rep.Library.FoundVia = path, runtime.Version(), source.String()
	rep.Library.Build = runtime.BuildInfo()
	var err error
	if rep.Providers, err = runtime.Providers(); err != nil {
		return nil, err
	}
	if rep.CUDA, err = runtime.InspectCUDA(); err != nil {
		return nil, err
	}
	if rep.CUDA.Problem != nil {
		rep.CUDAProblem = rep.CUDA.Problem.Error()
	}
	if err := runtime.CheckDevice(opts.Device, opts.DeviceID); err != nil {
		rep.DeviceError = err.Error()
	}
	// After CheckDevice: a registered CUDA provider adds its GPUs.
	if rep.Devices, err = runtime.EPDevices(); err != nil {
		return nil, err
	}
	rep.GPUBuild = runtime.FindGPUBuild()
	if rep.GPUBuild == "" && rep.CUDA.Provider != "" {
		// None above the folder or the executable, but the library in use
		// is one, given by $ONNXRUNTIME_LIB say: not "not installed".
		rep.GPUBuild = rep.Library.Path
	}
	if rep.GPUs, err = runtime.GPUs(); err != nil {
		rep.GPUError = err.Error()
	}
	hostFacts(rep)
	rep.CPU.NCHWcBlock = runtime.NCHWcBlockSize()
	return rep, nil
}

// hostFacts fills in what the report says of the CPU without ONNX Runtime.
func hostFacts(rep *doctorReport) {
	rep.CPU.Arch = goruntime.GOARCH
	rep.CPU.Features = cpuFeatures()
	rep.CPU.Logical, rep.CPU.Physical, rep.CPU.GOMAXPROCS = goruntime.NumCPU(), physicalCores(), goruntime.GOMAXPROCS(0)
}

func printDoctor(w io.Writer, rep *doctorReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	l := rep.Library
	fmt.Fprintf(tw, "ONNX Runtime\t%s (version %s, found via %s)\n", l.Path, l.Version, l.FoundVia)
	fmt.Fprintf(tw, "  build\t%s\n", l.Build)
	fmt.Fprintf(tw, "  built with\t%s\n", strings.Join(rep.Providers, ", "))
	for _, d := range rep.Devices {
		fmt.Fprintf(tw, "  device\t%s on %s (%s, vendor id 0x%04x)\n", d.Provider, d.Kind, d.Vendor, d.VendorID)
	}
	c := rep.CUDA
	if c.Provider == "" {
		fmt.Fprintf(tw, "CUDA provider\tnone beside the library\n")
	} else {
		fmt.Fprintf(tw, "CUDA provider\t%s (%s)\n", c.Provider, c.Kind)
		for _, lib := range c.Libraries {
			state := "loads from " + lib.Path
			if lib.Error != "" {
				state = "MISSING: " + lib.Error
			}
			fmt.Fprintf(tw, "  %s\t%s: %s\n", lib.Name, lib.Provides, state)
		}
		if c.RegisterError != "" {
			fmt.Fprintf(tw, "  registering\tONNX Runtime said: %s\n", c.RegisterError)
		}
	}
	fmt.Fprintf(tw, "  GPUs\t%s\n", gpuLine(rep))
	switch {
	case rep.GPUBuild != "" && rep.GPUBuild == rep.Library.Path:
		fmt.Fprintf(tw, "  GPU build\tthe library in use (its CUDA provider is beside it; --device cuda uses it)\n")
	case rep.GPUBuild != "":
		fmt.Fprintf(tw, "  GPU build\t%s (make setup-cuda; --device cuda uses it)\n", rep.GPUBuild)
	default:
		fmt.Fprintf(tw, "  GPU build\tnot installed (make setup-cuda)\n")
	}
	ok := "yes"
	if rep.CUDAProblem != "" {
		// Read by a user of the CPU too: what matters for --device cuda only.
		ok = "no (this matters only for --device cuda): " + rep.CUDAProblem
	}
	fmt.Fprintf(tw, "  usable\t%s\n", ok)
	p := rep.CPU
	fmt.Fprintf(tw, "CPU\t%s: %s\n", p.Arch, strings.Join(p.Features, " "))
	block := fmt.Sprintf("%d channels", p.NCHWcBlock)
	if p.NCHWcBlock == 0 {
		block = "none (training uses the standard kernels)"
	}
	fmt.Fprintf(tw, "  NCHWc block\t%s\n", block)
	fmt.Fprintf(tw, "  threads\t%d logical CPUs, %s physical cores (ONNX Runtime's default intra-op threads: one per physical core), GOMAXPROCS %d\n",
		p.Logical, orUnknown(p.Physical), p.GOMAXPROCS)
	if rep.DeviceError != "" {
		fmt.Fprintf(tw, "device %s\tcannot run (below)\n", rep.Device)
	} else {
		fmt.Fprintf(tw, "device %s\tready\n", rep.Device)
	}
	tw.Flush()
}

func gpuLine(rep *doctorReport) string {
	if rep.GPUError != "" {
		return rep.GPUError
	}
	if len(rep.GPUs) == 0 {
		return "nvidia-smi shows none"
	}
	var s []string
	for _, g := range rep.GPUs {
		s = append(s, fmt.Sprintf("%d: %s (%s, driver %s)", g.Index, g.Name, g.Memory, g.Driver))
	}
	return strings.Join(s, "; ")
}

func orUnknown(n int) string {
	if n == 0 {
		return "unknown"
	}
	return fmt.Sprint(n)
}

// cpuFeatures lists the vector extensions golang.org/x/sys/cpu detects (its
// Has* fields that are set), lower case without "Has".
func cpuFeatures() []string {
	var v reflect.Value
	switch goruntime.GOARCH {
	case "amd64", "386":
		v = reflect.ValueOf(cpu.X86)
	case "arm64":
		v = reflect.ValueOf(cpu.ARM64)
	default:
		return nil
	}
	var out []string
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, v.Field(i)
		if strings.HasPrefix(name, "Has") && f.Kind() == reflect.Bool && f.Bool() {
			out = append(out, strings.ToLower(strings.TrimPrefix(name, "Has")))
		}
	}
	return out
}

// physicalCores counts the distinct (package, core) pairs Linux lists, or
// returns 0 elsewhere.
func physicalCores() int {
	dirs, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/topology")
	cores := map[string]bool{}
	for _, d := range dirs {
		pkg, err1 := os.ReadFile(filepath.Join(d, "physical_package_id"))
		core, err2 := os.ReadFile(filepath.Join(d, "core_id"))
		if err1 != nil || err2 != nil {
			return 0
		}
		cores[strings.TrimSpace(string(pkg))+"/"+strings.TrimSpace(string(core))] = true
	}
	return len(cores)
}
