package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// touch creates an empty file at path (folders included) and returns path.
// The lookup only checks that a file exists; loading it is Init's business.
func touch(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeEnv returns a getenv over a fixed map, so a test controls the variables
// the lookup sees without touching the process's environment.
func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// TestLookupOrder builds a tree with a library at every step of the lookup and
// removes steps one by one: each case must find the earliest remaining step.
func TestLookupOrder(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	wd := filepath.Join(repo, "genotype", "sub")           // working directory two levels below the repo
	exe := filepath.Join(root, "install", "bin", "nasctl") // executable outside the repo
	ld1 := filepath.Join(root, "ld1")
	ld2 := filepath.Join(root, "ld2")
	sys := filepath.Join(root, "usr", "lib")
	for _, d := range []string{wd, filepath.Dir(exe), ld1, ld2, sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	envLib := filepath.Join(root, "custom", "libonnxruntime.so.1.30.0")
	wdCache := filepath.Join(repo, CacheDir, "libonnxruntime.so.1")
	exeCache := filepath.Join(root, "install", CacheDir, "libonnxruntime.so.1")
	ld2Unversioned := filepath.Join(ld2, "libonnxruntime.so")
	sysLib := filepath.Join(sys, "libonnxruntime.so.1")

	base := lookup{
		getenv:     fakeEnv(map[string]string{LibraryEnv: envLib, "LD_LIBRARY_PATH": ld1 + "::" + ld2}),
		wd:         wd,
		exe:        exe,
		systemDirs: []string{sys},
	}
	steps := []struct {
		name   string
		file   string
		source LibrarySource
	}{
		{"$ONNXRUNTIME_LIB", envLib, FromEnv},
		{"cache above the working directory", wdCache, FromCache},
		{"cache above the executable", exeCache, FromCache},
		{"LD_LIBRARY_PATH, unversioned name", ld2Unversioned, FromSystem},
		{"system folder", sysLib, FromSystem},
	}
	for _, s := range steps {
		touch(t, s.file)
	}
	for i, s := range steps {
		l := base
		if i > 0 { // from here on the variable is unset
			l.getenv = fakeEnv(map[string]string{"LD_LIBRARY_PATH": ld1 + "::" + ld2})
		}
		got, src, err := l.find()
		if err != nil || got != s.file || src != s.source {
			t.Errorf("step %d (%s): got %q, %v, %v; want %q, %v", i, s.name, got, src, err, s.file, s.source)
		}
		if i > 0 {
			if err := os.Remove(s.file); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLookupPrefersVersionedName: in one folder, libonnxruntime.so.1 (the
// name the ABI promises) wins over the development symlink libonnxruntime.so.
func TestLookupPrefersVersionedName(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "libonnxruntime.so"))
	want := touch(t, filepath.Join(dir, "libonnxruntime.so.1"))
	l := lookup{getenv: fakeEnv(map[string]string{"LD_LIBRARY_PATH": dir}), systemDirs: nil}
	got, src, err := l.find()
	if err != nil || got != want || src != FromSystem {
		t.Fatalf("got %q, %v, %v; want %q from the system path", got, src, err, want)
	}
}

// TestLookupEnvIsAuthoritative: a set but wrong $ONNXRUNTIME_LIB is an error
// naming the path, even though the cache holds a library.
func TestLookupEnvIsAuthoritative(t *testing.T) {
	repo := t.TempDir()
	touch(t, filepath.Join(repo, CacheDir, "libonnxruntime.so.1"))
	missing := filepath.Join(repo, "nowhere", "libonnxruntime.so.1")
	for _, tc := range []struct {
		value, problem string
	}{
		{missing, "no such file"},
		{repo, "is a folder"},
	} {
		l := lookup{getenv: fakeEnv(map[string]string{LibraryEnv: tc.value}), wd: repo}
		got, _, err := l.find()
		var nf *LibraryNotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("%s: got %q, %v; want a *LibraryNotFoundError", tc.value, got, err)
		}
		msg := err.Error()
		for _, want := range []string{LibraryEnv + "=" + tc.value, tc.problem, "make setup"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		if !reflect.DeepEqual(nf.Tried, []string{tc.value}) {
			t.Errorf("tried %v; want only %q", nf.Tried, tc.value)
		}
	}
}

// TestLookupNotFound: the error lists every place in order, and Tried every
// file, so that a person sees exactly where the library was looked for.
func TestLookupNotFound(t *testing.T) {
	root := t.TempDir()
	wd := filepath.Join(root, "repo")
	exe := filepath.Join(root, "repo", "bin", "nasctl")
	ld := filepath.Join(root, "ld")
	sys1, sys2 := filepath.Join(root, "sys1"), filepath.Join(root, "sys2")
	l := lookup{
		getenv:     fakeEnv(map[string]string{"LD_LIBRARY_PATH": ld}),
		wd:         wd,
		exe:        exe,
		systemDirs: []string{sys1, sys2},
	}
	_, _, err := l.find()
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v; want a *LibraryNotFoundError", err)
	}

	wdChain := ancestors(wd)
	wantPlaces := []string{
		"$ONNXRUNTIME_LIB (unset)",
		CacheDir + "/libonnxruntime.so.1 in " + strings.Join(wdChain, ", "),
		// the executable's folder is below the working directory: only it is new
		CacheDir + "/libonnxruntime.so.1 beside the executable in " + filepath.Dir(exe),
		"$LD_LIBRARY_PATH (" + ld + ")",
		sys1 + ", " + sys2 + " (as libonnxruntime.so.1 or libonnxruntime.so)",
	}
	if !reflect.DeepEqual(nf.Places, wantPlaces) {
		t.Errorf("places:\n got %q\nwant %q", nf.Places, wantPlaces)
	}

	var wantTried []string
	for _, d := range append(wdChain, filepath.Dir(exe)) {
		wantTried = append(wantTried, filepath.Join(d, CacheDir, "libonnxruntime.so.1"))
	}
	for _, d := range []string{ld, sys1, sys2} {
		wantTried = append(wantTried, filepath.Join(d, "libonnxruntime.so.1"), filepath.Join(d, "libonnxruntime.so"))
	}
	if !reflect.DeepEqual(nf.Tried, wantTried) {
		t.Errorf("tried:\n got %q\nwant %q", nf.Tried, wantTried)
	}

	msg := err.Error()
	for _, want := range append(wantPlaces, "libonnxruntime not found", `run "make setup"`, "copy its .cache/onnxruntime folder beside this executable", "set "+LibraryEnv) {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

// TestFindLibraryProcessEnvironment runs the exported FindLibrary against the
// real process state: environment variable and working directory.
func TestFindLibraryProcessEnvironment(t *testing.T) {
	t.Run("set but missing", func(t *testing.T) {
		t.Setenv(LibraryEnv, "/nonexistent/libonnxruntime.so.1")
		_, err := FindLibrary()
		if err == nil || !strings.Contains(err.Error(), "ONNXRUNTIME_LIB=/nonexistent/libonnxruntime.so.1: no such file") {
			t.Fatalf("got %v; want the missing path named", err)
		}
	})
	t.Run("set", func(t *testing.T) {
		lib := touch(t, filepath.Join(t.TempDir(), "libonnxruntime.so.1"))
		t.Setenv(LibraryEnv, lib)
		if got, err := FindLibrary(); err != nil || got != lib {
			t.Fatalf("got %q, %v; want %q", got, err, lib)
		}
	})
	t.Run("cache above the working directory", func(t *testing.T) {
		t.Setenv(LibraryEnv, "") // restored after the test
		os.Unsetenv(LibraryEnv)
		repo := t.TempDir()
		want := touch(t, filepath.Join(repo, CacheDir, "libonnxruntime.so.1"))
		sub := filepath.Join(repo, "runtime")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(sub)
		got, err := FindLibrary()
		if err != nil {
			t.Fatal(err)
		}
		// t.TempDir may sit behind a symbolic link; compare the files themselves.
		if a, b := mustStat(t, got), mustStat(t, want); !os.SameFile(a, b) {
			t.Fatalf("got %q; want %q", got, want)
		}
	})
	t.Run("empty counts as unset", func(t *testing.T) {
		t.Setenv(LibraryEnv, "")
		_, err := FindLibrary()
		if err != nil && strings.Contains(err.Error(), LibraryEnv+"=") {
			t.Fatalf("an empty %s was taken as a path: %v", LibraryEnv, err)
		}
	})
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
