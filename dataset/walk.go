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
	return newWalker(dir, sub != "").walk(sub, visit)
}

// walker walks folders below dir, remembering each it read: a folder
// reached twice through links (two classes linking one folder) would count
// its images twice, perhaps in two classes or in both training and test.
type walker struct {
	dir  string
	open []openFolder // the folders being walked, outermost first
	read []openFolder // every folder walked
}

type openFolder struct {
	path string
	info fs.FileInfo
}

// newWalker walks below dir; withDir counts dir itself as a folder being
// walked (a link back to it is a cycle).
func newWalker(dir string, withDir bool) *walker {
	w := &walker{dir: dir}
	if fi, err := os.Stat(dir); err == nil && withDir {
		w.open = append(w.open, openFolder{dir, fi})
	}
	return w
}

func (w *walker) walk(rel string, visit func(rel string)) error {
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
	for _, o := range w.read {
		if os.SameFile(o.info, fi) {
			return fmt.Errorf("%s and %s are the same folder (through a symbolic link): its images would count twice, perhaps in two classes; remove one of them", o.path, p)
		}
	}
	w.open = append(w.open, openFolder{p, fi})
	w.read = append(w.read, openFolder{p, fi})
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
			visit(r)
		} else if err := w.walk(r, visit); err != nil {
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
