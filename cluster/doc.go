// Package cluster runs a search's trials on other machines through a NATS
// JetStream broker: the driver side is a search.Executor (Executor) that
// publishes each trial as a job and waits for its result; the worker side
// (Worker) takes jobs, trains them with a local executor on the dataset it
// fetched from the broker, and writes their results back.
//
// What lives on the broker (see docs/cluster.md for the reasoning):
//
//	stream TRIALS            subjects trials.<device>: the jobs, a work queue
//	                         with a duplicate window, so a job published again
//	                         under the same message ID is dropped
//	consumer trials-<device> one durable pull consumer per device, shared by
//	                         that device's workers (explicit acks, AckWait,
//	                         MaxDeliver)
//	stream TRIALS_EXHAUSTED  the broker's max-deliveries advisories for TRIALS,
//	                         kept so that a driver that was down still sees them
//	KV nasctl-results        result.<job key>: the one result of a job, written
//	                         create-only; error.<job key>: its last failure
//	objects nasctl-datasets  the image folders, named by content hash
//	objects nasctl-weights   trained weights and final-phase starting weights
//
// A job's key is the SHA-256 of its wire form: the same job (same run,
// trial, genotype, seed and settings) has the same key in every driver
// incarnation, which is what makes a restarted driver find the results of
// the trials it had published instead of training them again.
//
// Server starts the broker embedded in nasctl (nasctl server, or --broker
// embedded in a search); a stock nats-server with JetStream works as well.
package cluster
