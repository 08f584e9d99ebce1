package broker

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/partition"
)

// Fetch (key 1), v4-v17: reads record batches below the high watermark.
// The request long-polls: it waits up to MaxWaitMillis for MinBytes to
// accumulate, woken by appends to the partitions it reads. Limits follow
// KIP-74: PartitionMaxBytes per partition and MaxBytes per response, except
// that the first non-empty partition always returns at least one whole batch.
// Topics are named (v4-v12) or identified by topic id (v13+).
//
// Fetch sessions (KIP-227): this broker does not create sessions (it answers
// SessionID 0, which clients treat as "sessionless"; every fetch is full), and
// answers FETCH_SESSION_ID_NOT_FOUND to an incremental fetch.

// fetchPart is one requested partition, resolved.
type fetchPart struct {
	topic, ti, pi int // indexes into the response
	p             *partition.Partition
	offset        int64
	maxBytes      int32
	err           error
}

// handleFetch answers a fetch. The returned views (per topic and partition
// of the response, nil where there is nothing to send) hold the record sets;
// the caller sends them and releases them.
func (b *Broker) handleFetch(ctx context.Context, cs *connState, req *kmsg.FetchRequest) (*kmsg.FetchResponse, [][]*commitlog.View, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.Version)
	if req.Version >= 7 && req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil, nil
	}
	var parts []fetchPart
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		var ts *topicState
		unknown := kerr.UnknownTopicOrPartition
		if req.Version >= 13 {
			ts = b.parts.topicByID(uuid.UUID(rt.TopicID))
			unknown = kerr.UnknownTopicID
			if ts != nil {
				st.Topic = ts.meta.Name
			}
		} else {
			ts = b.parts.topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark = -1
			sp.LastStableOffset = -1
			sp.LogStartOffset = -1
			fp := fetchPart{topic: len(resp.Topics), pi: len(st.Partitions), offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes}
			switch {
			case ts == nil || rp.Partition < 0 || int(rp.Partition) >= len(ts.parts):
				fp.err = unknown
			case ts.parts[rp.Partition] == nil:
				fp.err = kerr.NotLeaderForPartition
			default:
				fp.p = ts.parts[rp.Partition]
				fp.err = checkLeaderEpoch(fp.p, rp.CurrentLeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
			parts = append(parts, fp)
		}
		resp.Topics = append(resp.Topics, st)
	}

	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	deadline := time.Now().Add(wait)
	views := make([][]*commitlog.View, len(resp.Topics))
	for i := range resp.Topics {
		views[i] = make([]*commitlog.View, len(resp.Topics[i].Partitions))
	}
	var (
		wake    chan struct{}
		cancels []func()
	)
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for {
		total, anyErr := b.readFetch(resp, parts, views, maxBytes)
		if anyErr || total >= int(req.MinBytes) || wait <= 0 {
			return resp, views, nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return resp, views, nil
		}
		if wake == nil {
			// Register before re-reading so no append between the read and
			// the wait is missed.
			wake = make(chan struct{}, 1)
			for _, fp := range parts {
				if fp.p != nil {
					cancels = append(cancels, fp.p.Wait(wake))
				}
			}
			continue
		}
		timer := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
			timer.Stop()
			releaseViews(views)
			return nil, nil, ctx.Err()
		case <-timer.C:
			return resp, views, nil
		case <-wake:
			timer.Stop()
		}
	}
}

// readFetch fills every partition of resp from its log, replacing the views
// of an earlier read, and returns the record bytes found and whether any
// partition has an error.
func (b *Broker) readFetch(resp *kmsg.FetchResponse, parts []fetchPart, views [][]*commitlog.View, maxBytes int32) (int, bool) {
	releaseViews(views)
	total := 0
	anyErr := false
	for _, fp := range parts {
		sp := &resp.Topics[fp.topic].Partitions[fp.pi]
		err := fp.err
		var v *commitlog.View
		if err == nil {
			v, err = b.readPartition(sp, fp, int(maxBytes)-total, total == 0)
		}
		if err != nil {
			sp.ErrorCode = errorCode(err)
			anyErr = true
			continue
		}
		sp.ErrorCode = 0
		if v != nil {
			views[fp.topic][fp.pi] = v
			total += v.Len()
		}
	}
	return total, anyErr
}

func releaseViews(views [][]*commitlog.View) {
	for _, vs := range views {
		for i, v := range vs {
			if v != nil {
				v.Release()
				vs[i] = nil
			}
		}
	}
}

// readPartition sets a partition's offsets in the response and returns the
// view of its next record batches (nil when there are none).
func (b *Broker) readPartition(sp *kmsg.FetchResponseTopicPartition, fp fetchPart, budget int, first bool) (*commitlog.View, error) {
	p := fp.p
	hw := p.HighWatermark()
	sp.HighWatermark = hw
	sp.LastStableOffset = hw
	sp.LogStartOffset = p.Log().LogStartOffset()
	limit := int(fp.maxBytes)
	if budget < limit {
		limit = budget
	}
	if limit <= 0 && !first {
		return nil, nil
	}
	if fp.offset > hw && fp.offset <= p.Log().LogEndOffset() {
		return nil, nil // between HW and LEO: nothing visible yet
	}
	v, err := p.Log().Read(fp.offset, limit, hw, first)
	if err != nil {
		if errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			return nil, kerrf(kerr.OffsetOutOfRange, "offset %d is outside [%d, %d] of %s-%d", fp.offset, p.Log().LogStartOffset(), hw, p.Topic, p.Index)
		}
		return nil, err
	}
	if v.Len() == 0 {
		v.Release()
		return nil, nil
	}
	return v, nil
}

// checkLeaderEpoch fences requests from clients with a stale or future view
// of the partition's leadership (KIP-320). A negative epoch skips the check.
func checkLeaderEpoch(p *partition.Partition, current int32) error {
	if current < 0 {
		return nil
	}
	switch e := p.LeaderEpoch(); {
	case current > e:
		return kerr.UnknownLeaderEpoch
	case current < e:
		return kerr.FencedLeaderEpoch
	}
	return nil
}
