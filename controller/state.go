package controller

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
)

// stateMagic starts every saved controller; stateVersion changes with the format.
const (
	stateMagic   = "nasctl controller state\n"
	stateVersion = 1
)

// savedState is the controller's full state: a controller loaded from it
// proposes, learns and saves exactly as the one that saved it would have.
type savedState struct {
	Version int
	Config  ReinforceConfig // with defaults
	Types   []DecisionType
	Steps   []int

	Names  []string
	Params [][]float64

	AdamStep int
	AdamM    [][]float64
	AdamV    [][]float64

	Baseline    baseline
	Episode     int
	Temperature float64
	Updates     int
	Last        Update
	RNG         []byte // the PCG source's state
	Pending     []pending
	Batch       []observed
}

// Save writes the controller's full state (weights, Adam moments, baseline,
// temperature, episode count, random source, proposals awaiting their
// reward and the unfinished batch) to w. Floats are stored exactly.
func (c *Reinforce) Save(w io.Writer) error {
	rngState, err := c.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("controller: saving the random source: %w", err)
	}
	s := savedState{
		Version:     stateVersion,
		Config:      c.cfg,
		Types:       c.pol.types,
		Steps:       c.pol.steps,
		AdamStep:    c.opt.step,
		AdamM:       c.opt.m,
		AdamV:       c.opt.v,
		Baseline:    c.base,
		Episode:     c.episode,
		Temperature: c.temperature,
		Updates:     c.updates,
		Last:        c.last,
		RNG:         rngState,
		Pending:     c.pending,
		Batch:       c.batch,
	}
	for _, q := range c.pol.params {
		s.Names = append(s.Names, q.name)
		s.Params = append(s.Params, q.data)
	}
	bw := bufio.NewWriter(w)
	if _, err := io.WriteString(bw, stateMagic); err != nil {
		return fmt.Errorf("controller: saving: %w", err)
	}
	if err := gob.NewEncoder(bw).Encode(&s); err != nil {
		return fmt.Errorf("controller: saving: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("controller: saving: %w", err)
	}
	return nil
}

// Load reads a controller saved by Save. space must be the space the
// controller was made for (its decision types and steps are checked).
func LoadReinforce(r io.Reader, space Space) (*Reinforce, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(stateMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != stateMagic {
		return nil, errors.New("controller: not a saved controller state (bad header)")
	}
	var s savedState
	if err := gob.NewDecoder(br).Decode(&s); err != nil {
		return nil, fmt.Errorf("controller: reading saved state: %w", err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("controller: saved state has format version %d; this nasctl reads version %d", s.Version, stateVersion)
	}
	if !slices.Equal(s.Types, space.Types()) || !slices.Equal(s.Steps, space.Steps()) {
		return nil, fmt.Errorf("controller: saved state is for a space with types %v and %d decisions, not %v and %d",
			s.Types, len(s.Steps), space.Types(), len(space.Steps()))
	}
	if err := s.Config.Validate(); err != nil {
		return nil, err
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(s.RNG); err != nil {
		return nil, fmt.Errorf("controller: saved random source: %w", err)
	}
	// Fresh weights of the right shapes, then overwritten by the saved ones.
	pol, err := newPolicy(space, s.Config.Hidden, s.Config.Layers, s.Config.Embedding, s.Config.InitScale, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, err
	}
	if n := len(pol.params); len(s.Params) != n || len(s.Names) != n || len(s.AdamM) != n || len(s.AdamV) != n {
		return nil, fmt.Errorf("controller: saved state has %d weight matrices, %d names and %d and %d Adam moments; the configuration needs %d of each",
			len(s.Params), len(s.Names), len(s.AdamM), len(s.AdamV), len(pol.params))
	}
	for i, q := range pol.params {
		n := len(q.data)
		if s.Names[i] != q.name || len(s.Params[i]) != n || len(s.AdamM[i]) != n || len(s.AdamV[i]) != n {
			return nil, fmt.Errorf("controller: saved weight matrix %d (%s) does not fit %s (%dx%d)", i, s.Names[i], q.name, q.rows, q.cols)
		}
		copy(q.data, s.Params[i])
	}
	c := &Reinforce{
		space: space, cfg: s.Config, pol: pol, pcg: pcg, rng: rand.New(pcg),
		base: s.Baseline, episode: s.Episode, temperature: s.Temperature,
		updates: s.Updates, last: s.Last, pending: s.Pending, batch: s.Batch,
	}
	c.opt = newAdam(pol, s.Config.LearningRate, s.Config.Beta1, s.Config.Beta2, s.Config.Epsilon)
	c.opt.step = s.AdamStep
	for i := range pol.params {
		copy(c.opt.m[i], s.AdamM[i])
		copy(c.opt.v[i], s.AdamV[i])
	}
	if err := c.build(); err != nil {
		return nil, err
	}
	return c, nil
}
