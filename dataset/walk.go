package dataset

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// walkFiles calls visit, in lexical order folder by folder (as
// filepath.WalkDir does), with the path relative to dir, slash-separated, of
// every file below dir/sub (below dir when sub is ""). Hidden files and
// folders (name starting with ".") below it are skipped. Unlike WalkDir it
// follows symbolic links to folders, since a class folder or a sub-folder
// may be one; a link back to a folder being walked, dir included, is an
// error rather than an endless walk.
func walkFiles(dir, sub string, visit func(rel string)) error {
	w := &walker{dir: dir, visit: visit}
	if sub != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		w.open = append(w.open, openFolder{dir, fi})
	}
	return w.walk(sub)
}

type walker struct {
	dir   string
	visit func(rel string)
	open  []openFolder // the folders being walked, outermost first
}

type openFolder struct {
	path string
	info fs.FileInfo
}

func (w *walker) walk(rel string) error {
	p := filepath.Join(w.dir, filepath.FromSlash(rel))
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	for _, o := range w.open {
		if os.SameFile(o.info, fi) {
			return fmt.Errorf("%s leads back to %s, a folder it is in (a cycle of symbolic links); remove the link or move it out", p, o.path)
		}
	}
	w.open = append(w.open, openFolder{p, fi})
	defer func() { w.open = w.open[:len(w.open)-1] }()
	entries, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r := path.Join(rel, e.Name())
		if !isDir(p, e) {
			w.visit(r)
		} else if err := w.walk(r); err != nil {
			return err
		}
	}
	return nil
}

// isDir reports whether entry e of dir is a folder, following a symbolic link.
func isDir(dir string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.IsDir()
	}
	fi, err := os.Stat(filepath.Join(dir, e.Name()))
	return err == nil && fi.IsDir()
}
