package runtime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNoCUDA is wrapped by the error of NewSession when CUDA was asked for and
// the loaded ONNX Runtime library has no CUDA execution provider.
var ErrNoCUDA = errors.New("the ONNX Runtime library has no CUDA execution provider")

// Session is an ONNX model loaded into ONNX Runtime, with the names of the
// inputs it is fed and the outputs it computes fixed at creation.
//
// Ownership: the caller of NewSession owns the Session and must Close it,
// before runtime.Close (which refuses while sessions are open). The session
// keeps no reference to the model bytes, nor to the tensors of a Run after it
// returns. Run may be called from several goroutines at once (ONNX Runtime
// allows concurrent runs of one session) as long as they pass distinct output
// tensors; Close must not race with Run.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
	opts    SessionOptions
	// blockedConvs is the number of convolutions on NCHWc kernels, and
	// batchMultiple the number of images every batch must be a multiple of
	// (1: any).
	blockedConvs  int
	batchMultiple int64
}

// NewSession compiles the serialized ONNX model for the device and settings of
// opts. inputs and outputs name the graph inputs that Run will be given and the
// graph outputs it will fill, in the order Run takes them; each list needs at
// least one name.
//
// With opts.Device CUDA and a library or host that cannot run it the error
// is a *DeviceError (see InspectCUDA): it wraps ErrNoCUDA for a library
// without a CUDA provider (such as the one "make setup" installs) and names
// the missing shared libraries otherwise.
func NewSession(model []byte, inputs, outputs []string, opts SessionOptions) (*Session, error) {
	var problems []string
	if len(model) == 0 {
		problems = append(problems, "model: empty")
	}
	if len(inputs) == 0 {
		problems = append(problems, "inputs: at least one name is needed")
	}
	if len(outputs) == 0 {
		problems = append(problems, "outputs: at least one name is needed")
	}
	if err := opts.validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("new session: %s", strings.Join(problems, "; "))
	}

	// Before acquire: nchwcBlockSize's probe opens a session of its own.
	blockedConvs, batchMultiple := 0, int64(1)
	if opts.NCHWc && opts.Device == CPU {
		if block := nchwcBlockSize(); block > 0 {
			bg, err := blockConvs(model, block)
			if err != nil {
				return nil, fmt.Errorf("new session: %w", err)
			}
			model, blockedConvs = bg.model, bg.convs
			if bg.batchChannels {
				batchMultiple = 4
			}
		}
	}

	// Before acquire too: InspectCUDA takes the environment's lock itself.
	var cst CUDAStatus
	if opts.Device == CUDA {
		var err error
		if cst, err = InspectCUDA(); err != nil {
			return nil, err
		}
		if cst.Problem != nil {
			return nil, cst.Problem
		}
	}

	release, err := acquire()
	if err != nil {
		return nil, err
	}
	defer release()

	so, err := ortOptions(opts, cst)
	if err != nil {
		return nil, err
	}
	defer so.Destroy() // ORT copies what it needs into the session.
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	if err != nil {
		err = fmt.Errorf("new session on %s: %w", opts.Device, err)
		if opts.Device == CUDA {
			err = fmt.Errorf("%w (%s)", err, cudaHint())
		}
		return nil, err
	}
	openSessions.Add(1)
	return &Session{
		s:             s,
		inputs:        append([]string(nil), inputs...),
		outputs:       append([]string(nil), outputs...),
		opts:          opts,
		blockedConvs:  blockedConvs,
		batchMultiple: batchMultiple,
	}, nil
}

// ortOptions makes onnxruntime_go's session options for opts; cst is the
// CUDA provider's status when opts.Device is CUDA. The caller destroys them.
func ortOptions(opts SessionOptions, cst CUDAStatus) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("new session: creating options: %w", err)
	}
	err = so.SetIntraOpNumThreads(opts.IntraOpThreads)
	if err != nil {
		err = fmt.Errorf("new session: intra-op threads %d: %w", opts.IntraOpThreads, err)
	} else if err = so.SetGraphOptimizationLevel(ortLevels[opts.Optimization]); err != nil {
		err = fmt.Errorf("new session: optimisation level %s: %w", opts.Optimization, err)
	} else if opts.NoSpin {
		if err = so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			err = fmt.Errorf("new session: no spinning: %w", err)
		}
	}
	if err == nil && opts.ProfilePrefix != "" {
		if err = enableProfiling(so, opts.ProfilePrefix); err != nil {
			err = fmt.Errorf("new session: profiling to %s: %w", opts.ProfilePrefix, err)
		}
	}
	if err == nil && opts.Device == CUDA {
		err = appendCUDA(so, cst, opts.DeviceID)
	}
	if err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}

// appendCUDA adds the CUDA execution provider for GPU deviceID to so: a
// plug-in by its device (the V2 call), an older provider with the CUDA
// provider options.
func appendCUDA(so *ort.SessionOptions, st CUDAStatus, deviceID int) error {
	fail := func(err error) error {
		return &DeviceError{Device: CUDA, Library: st.Library, Err: err,
			Problem: "adding the CUDA provider to the session failed: " + ortMessage(err), Fix: cudaHint()}
	}
	if st.Kind == PluginProvider {
		found, err := appendEP(so, cudaProviderName, deviceID)
		if err != nil {
			return fail(err)
		}
		if deviceID >= found {
			return &DeviceError{Device: CUDA, Library: st.Library,
				Problem: fmt.Sprintf("GPU %d asked for, but the CUDA provider lists %d", deviceID, found),
				Fix:     fmt.Sprintf("choose a GPU from 0 to %d", found-1)}
		}
		return nil
	}
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fail(err)
	}
	defer cuda.Destroy() // may go as soon as it is appended
	if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(deviceID)}); err != nil {
		return fail(err)
	}
	if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
		return fail(err)
	}
	return nil
}

// ortMessage returns the message of an ONNX Runtime error without the source
// location and status code in front ("/onnxruntime_src/...cc:1988 ...
// [ONNXRuntimeError] : 1 : FAIL : message").
func ortMessage(err error) string {
	msg := err.Error()
	const marker = "[ONNXRuntimeError] : "
	if i := strings.Index(msg, marker); i >= 0 {
		rest := msg[i+len(marker):]
		// skip "code : NAME : "
		if parts := strings.SplitN(rest, " : ", 3); len(parts) == 3 {
			return parts[2]
		}
	}
	return msg
}

// BlockedConvs returns the number of convolutions the session runs on ONNX
// Runtime's NCHWc kernels (see SessionOptions.NCHWc).
func (s *Session) BlockedConvs() int { return s.blockedConvs }

// BatchMultiple returns the number of images a batch must be a multiple of
// for this session: 4 when a convolution on NCHWc kernels has the batch as
// its channels (a weight gradient), else 1.
func (s *Session) BatchMultiple() int64 { return s.batchMultiple }

// Options returns the options the session was created with.
func (s *Session) Options() SessionOptions { return s.opts }

// Run evaluates the graph on inputs and writes the results into outputs, one
// tensor per name of Inputs and Outputs, in that order. The output tensors
// must be allocated beforehand with the shapes the graph produces. Run
// borrows all of them only for the duration of the call.
func (s *Session) Run(inputs, outputs []Value) error {
	if s.s == nil {
		return errors.New("run: session is closed")
	}
	in, err := ortValues("input", s.inputs, inputs)
	if err != nil {
		return err
	}
	out, err := ortValues("output", s.outputs, outputs)
	if err != nil {
		return err
	}
	if err := s.s.Run(in, out); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// ortValues checks values against names and unwraps them.
func ortValues(kind string, names []string, values []Value) ([]ort.Value, error) {
	if len(values) != len(names) {
		return nil, fmt.Errorf("run: %d %ss given, the session has %d (%s)",
			len(values), kind, len(names), strings.Join(names, ", "))
	}
	out := make([]ort.Value, len(values))
	for i, v := range values {
		if v != nil {
			out[i] = v.ortValue()
		}
		if out[i] == nil {
			return nil, fmt.Errorf("run: %s %d (%s) is nil or closed", kind, i, names[i])
		}
	}
	return out, nil
}

// Close releases the native session. Closing twice is harmless.
func (s *Session) Close() error { return destroy(&s.s, &openSessions) }
