package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// producer is one producing client with its payload cursor. run is its only
// caller of send; promises run on the client's promise goroutine.
type producer struct {
	cl    *kgo.Client
	topic string
	st    *stats
	pay   *payloads
	pool  sync.Pool // of *kgo.Record with a RecordSize-long Value
	size  int
}

func newProducer(cfg Config, st *stats, pay *payloads) (*producer, error) {
	c, _ := codec(cfg.Compression)
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerBatchCompression(c),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(int32(cfg.BatchMaxBytes)),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
	}
	switch cfg.Acks {
	case -1:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !cfg.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(cfg.MaxInflight))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer client: %w", err)
	}
	p := &producer{cl: cl, topic: cfg.Topic, st: st, pay: pay, size: cfg.RecordSize}
	p.pool.New = func() any { return &kgo.Record{Value: make([]byte, p.size)} }
	return p, nil
}

// run sends until stopAt or until ctx is done. With a schedule, send i is
// issued at s.at(i) (all overdue sends at once, if run has fallen behind)
// and stamped with that intended time; without one, run sends back to back
// and stamps each send with the time it was issued. Produce blocks while
// the client holds MaxBufferedRecords unacknowledged records, which is what
// bounds the max rate.
func (p *producer) run(ctx context.Context, s *schedule, stopAt time.Time) {
	if s == nil {
		for ctx.Err() == nil {
			now := time.Now()
			if !now.Before(stopAt) {
				return
			}
			p.send(ctx, now)
		}
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var i int64
	for {
		for due := s.due(time.Now()); i < due; i++ {
			t := s.at(i)
			if !t.Before(stopAt) || ctx.Err() != nil {
				return
			}
			p.send(ctx, t)
		}
		next := s.at(i)
		if !next.Before(stopAt) {
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func (p *producer) send(ctx context.Context, intended time.Time) {
	r := p.pool.Get().(*kgo.Record)
	p.pay.fill(r.Value, p.st.clock.since(intended))
	r.Topic = p.topic
	p.cl.Produce(ctx, r, p.acked)
}

// acked is the produce promise: it records the send-to-ack latency and
// returns the record to the pool.
func (p *producer) acked(r *kgo.Record, err error) {
	if err != nil {
		p.st.fail(&p.st.produceErrs, err)
	} else {
		t, _ := stamp(r.Value)
		lat := time.Duration(p.st.clock.since(time.Now()) - t)
		p.st.recent.Load().Record(lat)
		if p.st.measuring.Load() {
			p.st.produceLat.Record(lat)
		}
		p.st.producedBytes.Add(uint64(len(r.Value)))
		p.st.produced.Add(1)
	}
	value := r.Value
	*r = kgo.Record{Value: value}
	p.pool.Put(r)
}
