// Package controller holds the search agents of nasctl and the rewards they are
// measured on. It knows agents and rewards, not files or flags.
//
// An architecture is a fixed-length sequence of categorical decisions (a
// Space): the NASNet cell space of Zoph et al. (2018) has 5 decisions per block,
// the NATS-Bench topology space 6 edges of 5 operations. Agents propose
// architectures and observe their rewards (Agent). The REINFORCE agent
// (Controller) is the recurrent policy of Zoph & Le (2017): an LSTM whose input
// at every decision is the embedding of the previous decision, with one softmax
// head per decision type, trained by REINFORCE with a baseline. Its parameters
// and loss are a gorgonia graph; its full state saves to a byte stream so that a
// search resumes exactly. RandomAgent samples uniformly. Benchmark measures any
// agent's sample efficiency on a table reward such as NATS-Bench.
//
// Randomness is always injected as a seed; nothing here uses a global source.
package controller
