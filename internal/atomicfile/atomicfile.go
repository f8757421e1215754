// Package atomicfile writes a file whole or not at all: renameio writes a
// scratch file beside it, syncs it and renames it over the file, so that a
// crash or a full disk leaves the old file or the new one, never a part.
// Its errors name the file the user asked for, not the scratch file.
package atomicfile

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/renameio/v2"
)

// Write writes b to path (mode 0644).
func Write(path string, b []byte) error {
	if err := renameio.WriteFile(path, b, 0o644); err != nil {
		// renameio's errors name its scratch file (.rank-02.onnx123...).
		var pe *os.PathError
		var le *os.LinkError
		switch {
		case errors.As(err, &pe):
			err = pe.Err
		case errors.As(err, &le):
			err = le.Err
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
