// Package protoconflict lets two generated copies of the ONNX protobuf schema
// live in one binary. nasctl writes models with the types of
// github.com/advancedclimatesystems/gonnx/onnx and runs them in pure Go with
// github.com/owulveryck/onnx-go, whose internal copy registers the same
// message names ("onnx.ModelProto", ...) in the global protobuf registry;
// google.golang.org/protobuf panics on such a conflict unless
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT says otherwise. Neither copy looks
// messages up by name (each decodes into its own Go types), so the conflict
// is harmless: this package sets the variable to "ignore" (unless the user set
// it) in its init, which runs before onnx-go's because Go initializes ready
// packages in import-path order and github.com/nasctl sorts before
// github.com/owulveryck. Import it, blank, from every package that imports
// onnx-go.
package protoconflict

import "os"

func init() {
	const env = "GOLANG_PROTOBUF_REGISTRATION_CONFLICT"
	if os.Getenv(env) == "" {
		os.Setenv(env, "ignore")
	}
}
