// Package controller holds the search agents of nasctl. It knows agents,
// not rewards, files or flags.
//
// Every agent implements Agent, a contract in the manner of Katib's
// suggestion services: propose the architecture of the next trial, observe
// trial rewards in trial order, save and restore the whole state exactly.
//
//   - MetaQNN is Baker et al.'s (2017) tabular Q-learning agent over layer
//     sequences (genotype.Space), with an epsilon schedule and replay.
//   - Reinforce is the recurrent policy of Zoph & Le (2017) over a decision
//     Space: an LSTM whose input at every decision is the embedding of the
//     previous decision, one softmax head per decision type, trained by
//     REINFORCE with a baseline; its parameters and loss are a gorgonia graph.
//   - QAgent is MetaQNN's Q-learning on a decision Space, and RandomAgent
//     samples a decision Space uniformly.
//
// A decision Space writes an architecture as a fixed-length sequence of
// categorical decisions: the NASNet cell space of Zoph et al. (2018) has 5
// decisions per block (CellSpace), the NATS-Bench topology space 6 edges of 5
// operations. The problems agents are measured on without training live in
// the subpackage problem, the agents benchmark in agentbench.
//
// Randomness is always injected as a seed; nothing here uses a global source.
package controller
