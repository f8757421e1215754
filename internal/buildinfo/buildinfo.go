// Package buildinfo says which build of nasctl is running: the module
// version and the commit the Go toolchain recorded. The CLI prints it for
// --version, and every ONNX model nasctl writes carries it as its
// producer_version, so that a model file names the build that wrote it.
package buildinfo

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Version is the main module's version and, when the build recorded a
// commit that the version does not already name (Go 1.24 and later stamp
// a pseudo-version such as "v0.0.0-20261206180906-0123456789ab+dirty"),
// that commit (12 hex digits) and whether the work tree had uncommitted
// changes: "v1.2.0", "(devel), commit 0123456789ab with uncommitted
// changes". It is "unknown" for a binary built without module support.
var Version = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return describe(info)
})

func describe(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" && !strings.Contains(v, rev[:min(12, len(rev))]) {
		v += ", commit " + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			v += " with uncommitted changes"
		}
	}
	return v
}
