package search

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nasctl/nasctl/genotype"
	"github.com/nasctl/nasctl/runtime"
)

// loadYAML writes doc to a file and loads it over base.
func loadYAML(t *testing.T, doc string, base Config) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(path, base)
}

// A key a --config file writes as 0, where WithDefaults would put a default
// in its place (or a negative value that means nothing), is refused with
// the key, over either kind's preset: the review's p0.yaml gave train.lr
// 0.001 instead of the preset's 0.003, and final.top_k: 0 became 10.
func TestLoadConfigRefusesGivenZeros(t *testing.T) {
	metaqnn, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	nasnet, err := NASNetPreset("", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"train: {patience: 0, lr: 0}\nfinal: {epoch_factor: 0, patience: 0}\n", []string{
			"train.lr: 0, want a positive rate; a key left out takes the preset's value",
			"final.epoch_factor: 0, want a positive factor",
			"final.patience: 0: the final phase cannot turn early stopping off; for no early stop give a patience of at least its epochs"}},
		{"final: {top_k: 0}\n", []string{"final.top_k: 0, want at least 1"}},
		{"trials: 0\n", []string{"trials: 0, want at least 1"}},
		{"workers: 0\n", []string{"workers: 0, want at least 1"}},
		{"data_fraction: 0\n", []string{"data_fraction: 0, want a share of the training split in (0, 1]"}},
		{"train: {epochs: 0, batch_size: -3}\n", []string{"train.epochs: 0, want at least 1", "train.batch_size: -3, want at least 1"}},
		{"final: {lr: 0, decay_factor: 0, patience: -2}\n", []string{"final.lr: 0, want a positive rate", "final.decay_factor: 0, want a factor in (0, 1]", "final.patience: -2"}},
		{"cells: {blocks: 0, stem: 0, filters: 0}\n", []string{"cells.blocks: 0, want 1 to 10", "cells.stem: 0", "cells.filters: 0"}},
		{"problem: {blocks: 0}\n", []string{"problem.blocks: 0, want 1 to 10"}},
		{"reward: {max_params: -5, max_latency_ms: -0.5}\n", []string{"reward.max_params: -5, want a positive limit (0 or left out: none)", "reward.max_latency_ms: -0.5"}},
		{"train: {optimizer: sgd, momentum: 0}\n", []string{"train.momentum: 0 would stand for the default, 0.9"}},
		// Zeros the defaults would replace though they could be meant.
		{"train: {constant_lr: false, restarts: 0, median_stop: {after: 2, min_trials: 0}, halving: {first: 2, eta: 0, min_trials: 0}}\n", []string{
			"train.restarts: 0 would stand for the default, 5 (constant_lr: true for none)",
			"train.median_stop.min_trials: 0 would stand for the default, 10", "train.halving.eta: 0 would stand for the default, 3",
			"train.halving.min_trials: 0 would stand for the default, 10"}},
		{"metaqnn: {q_learning: {alpha: 0, gamma: 0, init_q: 0, replay: 0}, evolution: {population: 0, sample: 0}}\nnasnet: {evolution: {population: 0}}\n", []string{
			"metaqnn.q_learning.alpha: 0 would stand for the default, 0.01",
			"metaqnn.q_learning.gamma: 0 would stand for the default, 1", "metaqnn.q_learning.init_q: 0 would stand for the default, 0.5",
			"metaqnn.q_learning.replay: 0 would stand for the default, 128 (-1 for no replay)", "metaqnn.evolution.population: 0",
			"metaqnn.evolution.sample: 0", "nasnet.evolution.population: 0 would stand for the default, 20"}},
		{"reward: {weight: 0, exponent: 0, calibration: 0, latency_threads: 0}\n", []string{"reward.weight: 0 would stand for the default, -0.07",
			"reward.exponent: 0", "reward.calibration: 0", "reward.latency_threads: 0"}},
		{"metaqnn: {schedule: []}\n", []string{"metaqnn.schedule: empty, which would stand for the study's schedule"}},
		// A key brought in by a merge key is given as much as one written out.
		{"train:\n  <<: {lr: 0}\n  epochs: 3\n", []string{"train.lr: 0"}},
	} {
		for kind, base := range map[Kind]Config{KindMetaQNN: metaqnn, KindNASNet: nasnet} {
			_, err := loadYAML(t, tc.doc, base)
			if err == nil {
				t.Errorf("%s %q: loaded, want %q", kind, tc.doc, tc.want)
				continue
			}
			if !strings.Contains(err.Error(), "c.yaml: invalid settings:\n") {
				t.Errorf("%s %q: %v, want the file and \"invalid settings\"", kind, tc.doc, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s %q: %v\nwant %q", kind, tc.doc, err, w)
				}
			}
		}
	}
}

// train.patience: 0 is "never stop early", as nasctl train --patience 0:
// -1 in the configuration, its defaults and the trials' training. Zeros
// that mean something (no parameter limit; momentum under adam, which has
// none) and keys left out load as before.
func TestLoadConfigGivenValues(t *testing.T) {
	base, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadYAML(t, "train: {patience: 0}\n", base)
	if err != nil {
		t.Fatal(err)
	}
	c.Data = "data"
	c = c.WithDefaults()
	if err := c.Check(); err != nil || c.Train.Patience != -1 || c.TrainConfig().Patience != -1 {
		t.Errorf("patience 0: %d (training %d), %v; want -1, never", c.Train.Patience, c.TrainConfig().Patience, err)
	}
	// restarts: 0 under the preset's constant rate means none.
	for _, doc := range []string{"reward: {max_params: 0}\n", "train: {momentum: 0}\n", "seed: 0\ntrain: {give_up_after: 0, restarts: 0}\n", "\n"} {
		c, err := loadYAML(t, doc, base)
		if err != nil {
			t.Errorf("%q: %v", doc, err)
		} else if c.Train.LR != base.Train.LR || c.Train.Patience != base.Train.Patience {
			t.Errorf("%q: lr %g, patience %d; want the preset's %g and %d", doc, c.Train.LR, c.Train.Patience, base.Train.LR, base.Train.Patience)
		}
	}
}

// The config.yaml nasctl writes (defaults applied) loads as a --config file
// and gives the same settings, for every preset, problem and agent: it
// holds no zero that LoadConfig refuses (the controller's zeros, its
// defaults, are not checked).
func TestLoadConfigSavedConfigs(t *testing.T) {
	var cfgs []Config
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, agent := range MetaQNNAgents {
			c.MetaQNN.Agent = agent
			if agent != AgentQLearning {
				c.MetaQNN.QLearning.NextBest = 0
			}
			cfgs = append(cfgs, c)
		}
	}
	for _, prob := range []string{"", "mock", "natsbench"} {
		for _, preset := range NASNetPresetNames(prob) {
			c, err := NASNetPreset(prob, preset)
			if err != nil {
				t.Fatal(err)
			}
			for _, agent := range NASNetAgents {
				c.NASNet.Agent = agent
				cfgs = append(cfgs, c)
			}
		}
	}
	for _, c := range cfgs {
		c.Data = "data"
		c = c.WithDefaults()
		if err := c.Check(); err != nil {
			t.Fatalf("%s %s: %v", c.Name, c.Agent(), err)
		}
		saved, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := loadYAML(t, string(saved), Config{})
		if err != nil {
			t.Errorf("%s %s: %v\n%s", c.Name, c.Agent(), err, saved)
			continue
		}
		if again, _ := got.WithDefaults().Marshal(); !bytes.Equal(again, saved) {
			t.Errorf("%s %s: loaded as\n%s\nwant\n%s", c.Name, c.Agent(), again, saved)
		}
	}
	if len(cfgs) < 20 {
		t.Errorf("%d configurations checked", len(cfgs))
	}
}

// A space mapping in a --config file replaces the keys it gives over the
// preset's space, or over the preset it names; a name alone is that preset.
func TestLoadConfigSpaceOverPreset(t *testing.T) {
	base, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc      string
		name     string
		filters  []int
		maxDepth int
	}{
		{"metaqnn: {space: {max_depth: 6}}\n", "cpu", CPUSpace.ConvFilters, 6},
		{"metaqnn: {space: {name: study, max_depth: 6}}\n", "study", genotype.Study.ConvFilters, 6},
		{"metaqnn: {space: study}\n", "study", genotype.Study.ConvFilters, genotype.Study.MaxDepth},
	} {
		c, err := loadYAML(t, tc.doc, base)
		if err != nil {
			t.Fatalf("%q: %v", tc.doc, err)
		}
		sp := c.WithDefaults().MetaQNN.Space
		if sp.Name != tc.name || !slices.Equal(sp.ConvFilters, tc.filters) || sp.MaxDepth != tc.maxDepth || sp.MaxMACs != map[string]int64{"cpu": CPUSpace.MaxMACs, "study": 0}[tc.name] {
			t.Errorf("%q: space %s, filters %v, max_depth %d, max_macs %d; want %s, %v, %d", tc.doc, sp.Name, sp.ConvFilters, sp.MaxDepth, sp.MaxMACs, tc.name, tc.filters, tc.maxDepth)
		}
	}
	if CPUSpace.MaxDepth == 6 || genotype.Study.MaxDepth == 6 {
		t.Fatal("a preset's depth is 6: the test cannot tell")
	}
}

// A run's config.yaml given with --config gives the run's settings, the
// zeros that mean something included (the split seed, one thread per core,
// no budget, never giving up, no centring, no redraw, no next best, no
// parameter limit): written out, they do not fall back to the preset's.
func TestLoadConfigCopyKeepsZeros(t *testing.T) {
	base, err := Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	run := base
	run.Name, run.Data = "run", "data"
	run.SplitSeed, run.Threads, run.Budget = 0, 0, runtime.Budget{}
	run.Train.GiveUpAfter, run.Train.Centre = 0, false
	run.MetaQNN.QLearning.Redraw, run.MetaQNN.QLearning.NextBest = 0, 0
	run.Reward = RewardSettings{Mode: RewardAccuracy}
	b, err := run.WithDefaults().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadYAML(t, string(b), base)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	q := c.MetaQNN.QLearning
	if c.SplitSeed != 0 || c.Threads != 0 || c.Budget != (runtime.Budget{}) || c.Train.GiveUpAfter != 0 || c.Train.Centre ||
		q.Redraw != 0 || q.NextBest != 0 || c.Reward.MaxParams != 0 {
		t.Errorf("the copy: split seed %d, threads %d, budget %+v, give up after %d, centre %v, redraw %d, next best %d, max params %d; want all zero",
			c.SplitSeed, c.Threads, c.Budget, c.Train.GiveUpAfter, c.Train.Centre, q.Redraw, q.NextBest, c.Reward.MaxParams)
	}
	if base.SplitSeed == 0 || base.Threads == 0 || base.Budget == (runtime.Budget{}) || base.Train.GiveUpAfter == 0 || !base.Train.Centre ||
		base.MetaQNN.QLearning.Redraw == 0 || base.MetaQNN.QLearning.NextBest == 0 || base.Reward.MaxParams == 0 {
		t.Fatal("the preset has one of these zeros itself: the test cannot tell")
	}
}
