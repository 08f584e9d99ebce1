// Package bench generates OpenMessaging-Benchmark-style produce/consume load
// against any Kafka bootstrap and measures what the broker delivers:
// produced and consumed records/s and MiB/s, produce latency (send to ack)
// and end-to-end latency (send to consume).
//
// Sends follow an open-loop schedule at the requested rate and latency is
// measured from each send's intended time, so a broker that stalls is
// charged for the sends it delayed. Compare runs the same workload against
// a Fjord broker and franz-go's in-memory kfake broker, each in its own
// process.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one workload. The zero value is not usable; start from
// DefaultConfig.
type Config struct {
	// Bootstrap lists host:port seed brokers.
	Bootstrap []string
	// Topic is the topic to produce to and consume from. It is created with
	// Partitions and ReplicationFactor if missing. Empty means a fresh
	// topic named fjord-bench-<unix nanos>.
	Topic             string
	Partitions        int
	ReplicationFactor int
	// TopicConfigs are set on a topic Run creates (retention.bytes, ...);
	// an existing topic is used as it is.
	TopicConfigs map[string]string
	// RecordSize is the size of each record value in bytes, at least 8:
	// the value is random bytes headed by an 8-byte send-time stamp.
	RecordSize int
	// Rate is the target produce rate in records/s across all producers;
	// 0 produces as fast as the client and broker allow.
	Rate float64
	// Warmup runs the workload unmeasured before the Duration-long
	// measured window.
	Warmup   time.Duration
	Duration time.Duration
	// Acks is -1 (all in-sync replicas), 1 (leader) or 0 (none).
	Acks int
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string
	// Producers and Consumers are the number of clients of each kind.
	// Consumers split the partitions between them (no consumer group);
	// 0 consumers measures produce only.
	Producers int
	Consumers int
	// Linger is how long the producer waits to fill a batch.
	Linger time.Duration
	// BatchMaxBytes caps one record batch; MaxBufferedRecords caps the
	// records a producer holds unacknowledged before Produce blocks.
	BatchMaxBytes      int
	MaxBufferedRecords int
	// Idempotent enables idempotent produce (acks=-1 only), as Kafka
	// clients do by default. MaxInflight is the produce requests in flight
	// per broker without idempotence (with it, the client uses 5).
	Idempotent  bool
	MaxInflight int
	// Progress, if not nil, receives one line per ReportInterval while the
	// workload runs.
	Progress       io.Writer
	ReportInterval time.Duration
}

// DefaultConfig returns the issue-2 workload: 1 KiB random records to a
// fresh 6-partition topic, acks=-1, no compression, max rate, 5 s warmup
// and a 30 s measured window.
func DefaultConfig() Config {
	return Config{
		Partitions:         6,
		ReplicationFactor:  1,
		RecordSize:         1024,
		Warmup:             5 * time.Second,
		Duration:           30 * time.Second,
		Acks:               -1,
		Compression:        "none",
		Producers:          1,
		Consumers:          1,
		BatchMaxBytes:      1 << 20,
		MaxBufferedRecords: 10000,
		Idempotent:         true,
		MaxInflight:        5,
		ReportInterval:     5 * time.Second,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case len(c.Bootstrap) == 0:
		return errors.New("no bootstrap brokers")
	case c.Partitions < 1:
		return fmt.Errorf("partitions %d: must be at least 1", c.Partitions)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("replication factor %d: must be at least 1", c.ReplicationFactor)
	case c.RecordSize < stampSize || c.RecordSize > payloadPoolSize/2:
		return fmt.Errorf("record size %d: must be in [%d, %d]", c.RecordSize, stampSize, payloadPoolSize/2)
	case c.Rate < 0:
		return fmt.Errorf("rate %v: must not be negative", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("duration %v: must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warmup %v: must not be negative", c.Warmup)
	case c.Acks != -1 && c.Acks != 0 && c.Acks != 1:
		return fmt.Errorf("acks %d: must be -1, 0 or 1", c.Acks)
	case c.Producers < 1:
		return fmt.Errorf("producers %d: must be at least 1", c.Producers)
	case c.Consumers < 0 || c.Consumers > c.Partitions:
		return fmt.Errorf("consumers %d: must be in [0, partitions]", c.Consumers)
	case c.MaxInflight < 1:
		return fmt.Errorf("max inflight %d: must be at least 1", c.MaxInflight)
	case c.MaxBufferedRecords < 1:
		return fmt.Errorf("max buffered records %d: must be at least 1", c.MaxBufferedRecords)
	}
	if _, err := codec(c.Compression); err != nil {
		return err
	}
	return nil
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: must be none, gzip, snappy, lz4 or zstd", name)
}

// Result is what one Run measured. Rates and latencies cover only the
// measured window; the totals cover the whole run including warmup and the
// drain after it.
type Result struct {
	Topic       string  `json:"topic"`
	Partitions  int     `json:"partitions"`
	RecordSize  int     `json:"record_size"`
	TargetRate  float64 `json:"target_rate"` // records/s; 0 = max
	Acks        int     `json:"acks"`
	Compression string  `json:"compression"`
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers"`
	Warmup      float64 `json:"warmup_s"`
	Window      float64 `json:"window_s"` // measured, seconds

	ProduceRate  float64 `json:"produce_records_per_s"`
	ProduceMiBps float64 `json:"produce_mib_per_s"`
	ConsumeRate  float64 `json:"consume_records_per_s"`
	ConsumeMiBps float64 `json:"consume_mib_per_s"`

	ProduceLatency Latency `json:"produce_latency"`
	EndToEnd       Latency `json:"end_to_end_latency"`

	ProduceErrors uint64 `json:"produce_errors"`
	ConsumeErrors uint64 `json:"consume_errors"`
	FirstError    string `json:"first_error,omitempty"`
	TotalProduced uint64 `json:"total_produced"` // acknowledged without error
	TotalConsumed uint64 `json:"total_consumed"`
}

// stats is the state producers and consumers share. Counters only grow;
// the histograms record only while measuring is set.
type stats struct {
	clock     clock
	measuring atomic.Bool

	produced, producedBytes atomic.Uint64
	consumed, consumedBytes atomic.Uint64
	produceErrs, consumeErr atomic.Uint64
	firstErr                atomic.Pointer[string]

	produceLat, e2eLat Histogram
	// recent holds the produce latencies since the last progress line,
	// warmup included; progress swaps in an empty one.
	recent atomic.Pointer[Histogram]
}

func (s *stats) fail(counter *atomic.Uint64, err error) {
	counter.Add(1)
	msg := err.Error()
	s.firstErr.CompareAndSwap(nil, &msg)
}

type counts struct {
	at                      time.Time
	produced, producedBytes uint64
	consumed, consumedBytes uint64
}

func (s *stats) snapshot() counts {
	return counts{
		at:            time.Now(),
		produced:      s.produced.Load(),
		producedBytes: s.producedBytes.Load(),
		consumed:      s.consumed.Load(),
		consumedBytes: s.consumedBytes.Load(),
	}
}

// drainTimeout bounds the wait, after the window, for producers to flush
// and consumers to catch up.
const drainTimeout = 60 * time.Second

// Run creates the topic if needed, then produces and consumes cfg's
// workload for cfg.Warmup plus cfg.Duration, waits for the producers to
// flush and the consumers to catch up, and returns what it measured. It
// blocks until every client it started is closed. Cancelling ctx ends the
// run early with ctx's error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Topic == "" {
		cfg.Topic = fmt.Sprintf("fjord-bench-%d", time.Now().UnixNano())
	}
	if cfg.Acks != -1 {
		cfg.Idempotent = false
	}
	starts, err := prepareTopic(ctx, cfg)
	if err != nil {
		return Result{}, err
	}

	st := &stats{clock: clock{base: time.Now()}}
	st.recent.Store(new(Histogram))
	random := newRandom(payloadPoolSize, uint64(time.Now().UnixNano()))

	consumers := make([]*kgo.Client, cfg.Consumers)
	defer func() {
		for _, cl := range consumers {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	for i := range consumers {
		assigned := map[int32]kgo.Offset{}
		for p := i; p < cfg.Partitions; p += cfg.Consumers {
			assigned[int32(p)] = kgo.NewOffset().At(starts[int32(p)])
		}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(cfg.Bootstrap...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: assigned}),
			kgo.FetchMaxWait(500*time.Millisecond),
		)
		if err != nil {
			return Result{}, fmt.Errorf("consumer client: %w", err)
		}
		consumers[i] = cl
	}

	producers := make([]*producer, cfg.Producers)
	defer func() {
		for _, p := range producers {
			if p != nil {
				p.cl.Close()
			}
		}
	}()
	for i := range producers {
		p, err := newProducer(cfg, st, newPayloads(random, cfg.RecordSize, i*(payloadPoolSize/cfg.Producers)))
		if err != nil {
			return Result{}, err
		}
		producers[i] = p
	}

	consumeCtx, stopConsumers := context.WithCancel(ctx)
	var consumersWG sync.WaitGroup
	for _, cl := range consumers {
		consumersWG.Go(func() { consume(consumeCtx, cl, st) })
	}
	defer func() {
		stopConsumers()
		consumersWG.Wait()
	}()

	start := time.Now()
	windowStart := start.Add(cfg.Warmup)
	stopAt := windowStart.Add(cfg.Duration)
	// Cancelling produceCtx fails every buffered record and unblocks a
	// Produce waiting for buffer space; it is the way out when a broker
	// stops acknowledging.
	produceCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var producersWG sync.WaitGroup
	for i, p := range producers {
		var s *schedule
		if cfg.Rate > 0 {
			s = &schedule{start: start, rate: cfg.Rate, stride: int64(cfg.Producers), phase: int64(i)}
		}
		producersWG.Go(func() { p.run(produceCtx, s, stopAt) })
	}
	producersDone := make(chan struct{})
	go func() { // ends once the producers do, which stopProducing forces
		producersWG.Wait()
		close(producersDone)
	}()

	res := Result{
		Topic: cfg.Topic, Partitions: cfg.Partitions, RecordSize: cfg.RecordSize,
		TargetRate: cfg.Rate, Acks: cfg.Acks, Compression: cfg.Compression,
		Producers: cfg.Producers, Consumers: cfg.Consumers, Warmup: cfg.Warmup.Seconds(),
	}
	var before, after counts
	err = watch(ctx, cfg, st, windowStart, stopAt, &before, &after)
	if err != nil {
		stopProducing()
		<-producersDone
		return res, err
	}
	select {
	case <-producersDone:
	case <-time.After(drainTimeout):
		stopProducing()
		<-producersDone
		return res, fmt.Errorf("producers blocked %v after the window: the broker stopped acknowledging", drainTimeout)
	}

	// Drain: acknowledge everything buffered, then let the consumers read
	// up to it.
	drainCtx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	for _, p := range producers {
		if err := p.cl.Flush(drainCtx); err != nil {
			return res, fmt.Errorf("flush producer: %w", err)
		}
	}
	if cfg.Consumers > 0 {
		if err := catchUp(drainCtx, st); err != nil {
			return res, err
		}
	}
	stopConsumers()
	consumersWG.Wait()

	window := after.at.Sub(before.at).Seconds()
	res.Window = window
	res.ProduceRate = float64(after.produced-before.produced) / window
	res.ProduceMiBps = float64(after.producedBytes-before.producedBytes) / window / (1 << 20)
	res.ConsumeRate = float64(after.consumed-before.consumed) / window
	res.ConsumeMiBps = float64(after.consumedBytes-before.consumedBytes) / window / (1 << 20)
	res.ProduceLatency = st.produceLat.Summary()
	res.EndToEnd = st.e2eLat.Summary()
	res.ProduceErrors = st.produceErrs.Load()
	res.ConsumeErrors = st.consumeErr.Load()
	if e := st.firstErr.Load(); e != nil {
		res.FirstError = *e
	}
	res.TotalProduced = st.produced.Load()
	res.TotalConsumed = st.consumed.Load()
	return res, nil
}

// watch opens and closes the measured window at windowStart and stopAt,
// recording the counters at each edge, and writes progress lines. It
// returns early with ctx's error if ctx is cancelled.
func watch(ctx context.Context, cfg Config, st *stats, windowStart, stopAt time.Time, before, after *counts) error {
	var tick <-chan time.Time
	if cfg.Progress != nil && cfg.ReportInterval > 0 {
		t := time.NewTicker(cfg.ReportInterval)
		defer t.Stop()
		tick = t.C
	}
	open := time.NewTimer(time.Until(windowStart))
	defer open.Stop()
	closeT := time.NewTimer(time.Until(stopAt))
	defer closeT.Stop()
	start := time.Now()
	last := st.snapshot()
	for {
		select {
		case <-ctx.Done():
			st.measuring.Store(false)
			return ctx.Err()
		case <-open.C:
			*before = st.snapshot()
			st.measuring.Store(true)
		case <-closeT.C:
			st.measuring.Store(false)
			*after = st.snapshot()
			return nil
		case <-tick:
			now := st.snapshot()
			progress(cfg.Progress, start, last, now, st)
			last = now
		}
	}
}

func progress(w io.Writer, start time.Time, last, now counts, st *stats) {
	secs := now.at.Sub(last.at).Seconds()
	phase := "warmup"
	if st.measuring.Load() {
		phase = "measure"
	}
	recent := st.recent.Swap(new(Histogram))
	fmt.Fprintf(w, "%6.1fs %-7s produce %8.0f rec/s %6.1f MiB/s p99 %7.2f ms max %7.2f ms  consume %8.0f rec/s %6.1f MiB/s  errors %d\n",
		now.at.Sub(start).Seconds(), phase,
		float64(now.produced-last.produced)/secs, float64(now.producedBytes-last.producedBytes)/secs/(1<<20),
		ms(recent.Quantile(0.99)), ms(recent.Max()),
		float64(now.consumed-last.consumed)/secs, float64(now.consumedBytes-last.consumedBytes)/secs/(1<<20),
		st.produceErrs.Load()+st.consumeErr.Load())
}

// catchUp waits until the consumers have read as many records as were
// acknowledged, or until they make no progress for stallTimeout (records
// that failed to produce may or may not be in the log, so the counts need
// not meet).
func catchUp(ctx context.Context, st *stats) error {
	const stallTimeout = 5 * time.Second
	last, lastChange := st.consumed.Load(), time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		c := st.consumed.Load()
		if c >= st.produced.Load() {
			return nil
		}
		if c != last {
			last, lastChange = c, time.Now()
		} else if time.Since(lastChange) > stallTimeout {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumers catching up (%d of %d): %w", c, st.produced.Load(), ctx.Err())
		case <-t.C:
		}
	}
}

// shortErr trims an error message for a one-line report.
func shortErr(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
