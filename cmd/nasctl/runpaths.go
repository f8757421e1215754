package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize/english"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/search"
	"github.com/nasctl/nasctl/search/rundir"
)

// A search writes its run into a folder that holds config.yaml, and its
// models into that folder's winners/ and models/. Commands that take a
// model file and commands that take a run folder are often given the one
// for the other; these helpers say which was given and what is expected.

// modelFolderError returns an error that says what to give instead when
// path, given where a model file is expected, is a folder: a run's folder
// names its models. It returns nil for anything else (a file, or a path
// whose reading fails on its own terms).
func modelFolderError(path string) error {
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return nil
	}
	if !isRunFolder(path) {
		msg := fmt.Sprintf("%s is a folder: a model file (.onnx) is expected", path)
		if found, _ := filepath.Glob(filepath.Join(path, "*.onnx")); len(found) > 0 {
			msg += fmt.Sprintf(", such as %s", found[0])
		}
		return errors.New(msg)
	}
	winners := rundir.Winners(path)
	if len(winners) == 0 {
		msg := fmt.Sprintf("%s is a search run's folder, and %s", path, noWinnersReason(path))
		if found, _ := filepath.Glob(filepath.Join(path, rundir.DirModels, "*.onnx")); len(found) > 0 {
			msg += fmt.Sprintf("; its trials' models are in %s, such as %s", filepath.Join(path, rundir.DirModels), found[0])
		}
		return errors.New(msg)
	}
	best := filepath.Join(path, rundir.BestName)
	if _, err := os.Stat(best); err != nil {
		best = winners[0]
	}
	return fmt.Errorf("%s is a search run's folder: give one of its models, such as %s (%s for the others)",
		path, best, filepath.Join(path, rundir.DirWinners, "rank-NN.onnx"))
}

// checkModelPath returns a usage error when path, given as a model file,
// is not one: a folder (modelFolderError says what to give), or nothing
// at all; any other failure to reach it as it is.
func checkModelPath(path string) error {
	if err := modelFolderError(path); err != nil {
		return usagef("%v", err)
	}
	_, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return usagef("%s: no such file; give an exported model (.onnx), such as runs/NAME/winners/best.onnx (nasctl runs list shows the runs)", path)
	}
	return err
}

// noWinnersReason says why the run in dir has no final models, and what to
// do about it: its trials are scored, not trained; its search is still
// running; none was evaluated; its final phase was skipped, or is not
// finished; or its final models all failed.
func noWinnersReason(dir string) string {
	cfg, err := search.ReadConfig(dir)
	if err != nil {
		return fmt.Sprintf("it cannot be read (%v)", err)
	}
	if !cfg.Trains() {
		return fmt.Sprintf("its trials are scored (%s), not trained: it has no models", cfg.Problem.Name)
	}
	resume := "nasctl search " + string(cmp.Or(cfg.Kind, search.KindMetaQNN)) + " --resume " + shell.Quote(dir)
	if rundir.Running(dir) {
		// Its records are still being written, and --resume would fail
		// on the lock: there is nothing to do but wait.
		if cfg.Final.Skip {
			return fmt.Sprintf("its search is still running in another nasctl process, and skips its final phase: once it ends, %s --skip-final=false retrains its winners; watch it with %s",
				resume, rundir.WatchHint(dir))
		}
		return fmt.Sprintf("its search is still running in another nasctl process; its winners come when its final phase ends (watch it with %s)",
			rundir.WatchHint(dir))
	}
	sum, err := search.Summarize(dir)
	switch {
	case err == nil && sum.Failed != "":
		return fmt.Sprintf("its search ended with an error (%s): %s goes on", sum.Failed, resume)
	case err == nil && sum.StatusOf(false) == search.RunFailed:
		return fmt.Sprintf("none of its trials was evaluated (%s says why each was refused, failed or diverged): it has no model, nor any to retrain; start a new run with other settings",
			filepath.Join(dir, rundir.FileTrialsCSV))
	case cfg.Final.Skip:
		return fmt.Sprintf("its final phase was skipped: %s --skip-final=false retrains its winners", resume)
	case err == nil && sum.StatusOf(false) == search.RunFinished:
		return fmt.Sprintf("its final models all failed (%s says why)", filepath.Join(dir, rundir.FileFinal))
	}
	return fmt.Sprintf("its final phase has written no model yet: %s finishes it", resume)
}

// checkRunFolder returns nil when path is a run folder (it holds
// config.yaml), else an error that says what path is and what is expected.
func checkRunFolder(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: give the folder of a run; %s", path, listRunsHint(filepath.Dir(path)))
	case err != nil:
		return err
	case !fi.IsDir():
		msg := fmt.Sprintf("%s is a file, not a run folder: give the folder of a run, the one that holds %s", path, rundir.FileConfig)
		if run := enclosingRun(path); run != "" {
			msg += fmt.Sprintf(" (this file's run is %s)", run)
		}
		return errors.New(msg)
	case isRunFolder(path):
		return nil
	}
	if runs, _ := filepath.Glob(filepath.Join(path, "*", rundir.FileConfig)); len(runs) > 0 {
		return fmt.Errorf("%s holds runs but is not one (it has no %s): give one of them, such as %s; %s",
			path, rundir.FileConfig, filepath.Dir(runs[0]), listRunsHint(path))
	}
	if recs := rundir.Orphaned(path); len(recs) > 0 {
		return fmt.Errorf("%s holds a run's %s but no %s: put it back (from a copy of the run, or the settings its search was started with)",
			path, english.WordSeries(recs, "and"), rundir.FileConfig)
	}
	return fmt.Errorf("%s is not a run folder (it has no %s)", path, rundir.FileConfig)
}

// listRunsHint says how to list the runs in dir, "." meaning the default
// folder of runs.
func listRunsHint(dir string) string {
	if dir == "." {
		return "nasctl runs list lists the runs under runs/"
	}
	return fmt.Sprintf("nasctl runs list --dir %s lists the runs there", shell.Quote(dir))
}

// runShowPath is the run folder that "runs show NAME" names: NAME itself
// when it is a run folder or a path, else the run called NAME under dir.
func runShowPath(dir, name string) (string, error) {
	if isRunFolder(name) || strings.ContainsRune(name, filepath.Separator) {
		return name, checkRunFolder(name)
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, checkRunFolder(path)
	}
	if _, err := os.Stat(name); err == nil {
		return name, checkRunFolder(name) // a file or folder here, and no run of that name
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("no run named %s: the folder of runs %s does not exist; give it with --dir", name, dir)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("no run named %s: %s is a file, not a folder of runs; give the folder with --dir", name, dir)
	}
	return "", fmt.Errorf("no run named %s in %s; %s", name, dir, listRunsHint(dir))
}

// isRunFolder reports whether path holds a run's config.yaml.
func isRunFolder(path string) bool {
	fi, err := os.Stat(filepath.Join(path, rundir.FileConfig))
	return err == nil && !fi.IsDir()
}

// enclosingRun returns the run folder that holds the file at path (in it,
// or up to two folders down, as in winners/ or models/), or "".
func enclosingRun(path string) string {
	dir := filepath.Dir(path)
	for range 3 {
		if isRunFolder(dir) {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	return ""
}
