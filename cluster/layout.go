package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nasctl/nasctl/runtime"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of what nasctl keeps on the broker (see the package documentation).
const (
	StreamTrials    = "TRIALS"
	StreamExhausted = "TRIALS_EXHAUSTED"
	BucketResults   = "nasctl-results"
	BucketDatasets  = "nasctl-datasets"
	BucketWeights   = "nasctl-weights"
	// consumerDrivers is the durable consumer every driver shares on
	// StreamExhausted: each advisory is handled by one of them.
	consumerDrivers = "drivers"
)

// Subject is where the jobs for device go.
func Subject(device runtime.Device) string { return "trials." + device.String() }

// ConsumerName is the durable consumer of device's workers.
func ConsumerName(device runtime.Device) string { return "trials-" + device.String() }

// exhaustedSubject is the advisory the broker publishes when a job of TRIALS
// used up its deliveries, for every consumer of the stream.
const exhaustedSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamTrials + ".*"

// Settings are the broker-side settings of the trials. They are fixed when
// the stream and consumers are created (by nasctl server, or by the first
// driver or worker to connect to a broker without them); later clients use
// what they find. Zero fields take the defaults given on them.
type Settings struct {
	// AckWait is how long a job stays with a worker that stopped answering
	// before another worker gets it; a worker's heartbeats, every third of
	// it, keep a long training. Zero: 60 s.
	AckWait time.Duration
	// MaxDeliver is how many times a job is handed out before it is
	// recorded as failed. Zero: 3.
	MaxDeliver int
	// Duplicates is the window in which a job published again under the
	// same key is dropped: how long a driver may be down and still
	// re-publish its trials without doubling them. Later re-publications are
	// harmless too (a worker that finds the result acknowledges the job
	// without training), only slower. Zero: 24 h.
	Duplicates time.Duration
	// ResultTTL is how long results and weights are kept. Zero: 7 days.
	ResultTTL time.Duration
	// MaxAckPending bounds the jobs in flight over all workers of a device
	// (each worker bounds its own by its slots). Zero: 1024.
	MaxAckPending int
}

// WithDefaults returns s with every zero field replaced by its default.
func (s Settings) WithDefaults() Settings {
	s.AckWait = cmp.Or(s.AckWait, 60*time.Second)
	s.MaxDeliver = cmp.Or(s.MaxDeliver, 3)
	s.Duplicates = cmp.Or(s.Duplicates, 24*time.Hour)
	s.ResultTTL = cmp.Or(s.ResultTTL, 7*24*time.Hour)
	s.MaxAckPending = cmp.Or(s.MaxAckPending, 1024)
	return s
}

// trialsStream is TRIALS's configuration: a work queue on file storage.
func (s Settings) trialsStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: StreamTrials, Description: "nasctl trials waiting for a worker",
		Subjects: []string{"trials.*"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Duplicates: s.Duplicates}
}

// exhaustedStream keeps the max-deliveries advisories until a driver
// handles them.
func (s Settings) exhaustedStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: StreamExhausted, Description: "nasctl trials that used up their deliveries",
		Subjects: []string{exhaustedSubject}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage}
}

// trialsConsumer is the durable pull consumer of device's workers. No
// BackOff: it would replace AckWait for redeliveries.
func (s Settings) trialsConsumer(device runtime.Device) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: ConsumerName(device), Description: "nasctl workers for " + device.String(),
		FilterSubject: Subject(device), AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.AckWait,
		MaxDeliver: s.MaxDeliver, MaxAckPending: s.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy}
}

func driversConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: consumerDrivers, Description: "nasctl drivers recording exhausted trials",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, DeliverPolicy: jetstream.DeliverAllPolicy}
}

// layout is the broker's streams, consumers and buckets, opened.
type layout struct {
	trials, exhausted jetstream.Stream
	results           jetstream.KeyValue
	datasets, weights jetstream.ObjectStore
}

// ensureLayout opens what nasctl keeps on the broker, creating what is
// missing with s; update also brings what exists to s (nasctl server is the
// authority on its own broker).
func ensureLayout(ctx context.Context, js jetstream.JetStream, s Settings, update bool) (*layout, error) {
	s = s.WithDefaults()
	var l layout
	var err error
	if l.trials, err = ensureStream(ctx, js, s.trialsStream(), update); err != nil {
		return nil, err
	}
	if l.exhausted, err = ensureStream(ctx, js, s.exhaustedStream(), update); err != nil {
		return nil, err
	}
	if _, err = ensureConsumer(ctx, l.exhausted, driversConsumer(), update); err != nil {
		return nil, err
	}
	kv := jetstream.KeyValueConfig{Bucket: BucketResults, Description: "nasctl trial results", History: 1, TTL: s.ResultTTL, Storage: jetstream.FileStorage}
	if l.results, err = ensure(ctx, update, js.KeyValue, js.CreateKeyValue, js.CreateOrUpdateKeyValue, kv, BucketResults, jetstream.ErrBucketNotFound); err != nil {
		return nil, err
	}
	data := jetstream.ObjectStoreConfig{Bucket: BucketDatasets, Description: "nasctl datasets by content hash", Storage: jetstream.FileStorage}
	if l.datasets, err = ensure(ctx, update, js.ObjectStore, js.CreateObjectStore, js.CreateOrUpdateObjectStore, data, BucketDatasets, jetstream.ErrBucketNotFound); err != nil {
		return nil, err
	}
	w := jetstream.ObjectStoreConfig{Bucket: BucketWeights, Description: "nasctl trained weights", TTL: s.ResultTTL, Storage: jetstream.FileStorage}
	if l.weights, err = ensure(ctx, update, js.ObjectStore, js.CreateObjectStore, js.CreateOrUpdateObjectStore, w, BucketWeights, jetstream.ErrBucketNotFound); err != nil {
		return nil, err
	}
	return &l, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, update bool) (jetstream.Stream, error) {
	return ensure(ctx, update, js.Stream, js.CreateStream, js.CreateOrUpdateStream, cfg, cfg.Name, jetstream.ErrStreamNotFound)
}

func ensureConsumer(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, update bool) (jetstream.Consumer, error) {
	return ensure(ctx, update, st.Consumer, st.CreateConsumer, st.CreateOrUpdateConsumer, cfg, cfg.Durable, jetstream.ErrConsumerNotFound)
}

// ensure opens the named thing, creating it from cfg when it is missing
// (or bringing it to cfg when update is set). Two clients creating it at once
// is fine: the loser opens the winner's.
func ensure[T, C any](ctx context.Context, update bool,
	open func(context.Context, string) (T, error), create, createOrUpdate func(context.Context, C) (T, error),
	cfg C, name string, notFound error) (T, error) {
	if update {
		t, err := createOrUpdate(ctx, cfg)
		if err != nil {
			err = fmt.Errorf("setting up %s on the broker: %w", name, err)
		}
		return t, err
	}
	t, err := open(ctx, name)
	if errors.Is(err, notFound) {
		if t, err = create(ctx, cfg); err != nil {
			t, err = open(ctx, name)
		}
	}
	if err != nil {
		err = fmt.Errorf("opening %s on the broker: %w", name, err)
	}
	return t, err
}

// settings are the Settings of the stream and buckets of l as the broker
// has them (what it does not say stays zero, a default): the consumers'
// are read where they are opened.
func (l *layout) settings(ctx context.Context) Settings {
	var s Settings
	if info := l.trials.CachedInfo(); info != nil {
		s.Duplicates = info.Config.Duplicates
	}
	if st, err := l.results.Status(ctx); err == nil {
		s.ResultTTL = st.TTL()
	}
	return s
}

// devices are those a broker set up by nasctl server has consumers for.
var devices = []runtime.Device{runtime.CPU, runtime.CUDA}
