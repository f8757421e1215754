package runtime

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

// elfHeader is the 64-byte header of a little-endian 64-bit ELF shared
// library for machine m, with no sections: what libraryMachine reads.
func elfHeader(m elf.Machine) []byte {
	b := make([]byte, 64)
	copy(b, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_DYN))
	le.PutUint16(b[18:], uint16(m))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint16(b[52:], 64) // header size
	le.PutUint16(b[54:], 56) // program header entry size
	le.PutUint16(b[58:], 64) // section header entry size
	return b
}

// A library for another processor is refused with what it is and what to
// give instead (the loader would say "No such file or directory" of a file
// that is there); one of this machine's, or a file that is not ELF, is left
// to the loader.
func TestLibraryMachine(t *testing.T) {
	dir := t.TempDir()
	this := elfMachines[goruntime.GOARCH]
	other := elf.EM_AARCH64
	if this == elf.EM_AARCH64 {
		other = elf.EM_X86_64
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	foreign := write("foreign.so", elfHeader(other))
	err := libraryMachine(foreign)
	if err == nil || !strings.Contains(err.Error(), foreign+" is a library for "+machineName(other)+", and this nasctl is built for linux/"+goruntime.GOARCH) ||
		!strings.Contains(err.Error(), `"make build-arm64"`) {
		t.Errorf("a library for %v: %v", other, err)
	}
	for _, p := range []string{write("native.so", elfHeader(this)), write("text.so", []byte("not a library"))} {
		if err := libraryMachine(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
