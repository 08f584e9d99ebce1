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
	"github.com/fjord-io/fjord/internal/record"
)

// Fetch (key 1), v4-v17: reads record batches below the high watermark.
// The request long-polls: it waits up to MaxWaitMillis for MinBytes to
// accumulate, woken by appends to the partitions it reads. Limits follow
// KIP-74: PartitionMaxBytes per partition and MaxBytes per response, except
// that the first non-empty partition always returns at least one whole batch.
// Topics are named (v4-v12) or identified by topic id (v13+).
//
// Fetch sessions (KIP-227) are in fetchsession.go.

// fetchPart is one partition being read, resolved.
type fetchPart struct {
	topic, pi int // indexes into the response
	t         *fetchTarget
	p         *partition.Partition
	err       error
	replica   bool // a follower's fetch: reads up to the log end
	throttled bool // a follower's fetch metered by leader.replication.throttled.rate (throttle.go)
}

// handleFetch answers a fetch. The returned views (per topic and partition
// of the response, nil where there is nothing to send) hold the record sets;
// the caller sends them and releases them.
func (b *Broker) handleFetch(ctx context.Context, cs *connState, req *kmsg.FetchRequest) (*kmsg.FetchResponse, [][]*commitlog.View, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.Version)
	plan, err := b.sessions.plan(req, time.Now())
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil, nil
	}
	defer b.sessions.done(plan)
	resp.SessionID = plan.sessionID

	byID := req.Version >= 13
	// A follower's fetch names its broker id (KIP-903 moved it into
	// ReplicaState at v15); consumers send -1.
	replica := req.ReplicaID
	if req.Version >= 15 {
		replica = req.ReplicaState.ID
	}
	now := time.Now()
	leaderLimited := replica >= 0 && b.leaderLimited()
	// The response's topics, each with room for its partitions: a
	// follower's session can hold thousands.
	parts := make([]fetchPart, 0, len(plan.targets))
	topicOf := make([]int, len(plan.targets))
	topicIndex := make(map[sessionKey]int)
	var counts []int
	for i, t := range plan.targets {
		tk := sessionKey{topic: t.topic, topicID: t.topicID}
		ti, ok := topicIndex[tk]
		if !ok {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = t.topic, t.topicID
			resp.Topics = append(resp.Topics, st)
			counts = append(counts, 0)
			ti = len(resp.Topics) - 1
			topicIndex[tk] = ti
		}
		topicOf[i] = ti
		counts[ti]++
	}
	for ti, n := range counts {
		resp.Topics[ti].Partitions = make([]kmsg.FetchResponseTopicPartition, 0, n)
	}
	for i, t := range plan.targets {
		ti := topicOf[i]
		st := &resp.Topics[ti]
		var ts *topicState
		unknown := kerr.UnknownTopicOrPartition
		if byID {
			ts = b.parts.topicByID(uuid.UUID(t.topicID))
			unknown = kerr.UnknownTopicID
			if ts != nil {
				st.Topic = ts.meta.Name
			}
		} else {
			ts = b.parts.topic(t.topic)
		}
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = t.partition
		sp.HighWatermark = -1
		sp.LastStableOffset = -1
		sp.LogStartOffset = -1
		fp := fetchPart{topic: ti, pi: len(st.Partitions), t: t}
		switch {
		case ts == nil || t.partition < 0 || int(t.partition) >= len(ts.parts):
			fp.err = unknown
		case ts.parts[t.partition] == nil:
			fp.err = kerr.NotLeaderForPartition
		default:
			fp.p = ts.parts[t.partition]
			fp.err = checkLeaderEpoch(fp.p, t.leaderEpch)
			if fp.err == nil && !fp.p.IsLeader() {
				fp.err = kerrf(kerr.NotLeaderForPartition, "broker %d does not lead %s-%d", b.cfg.NodeID, fp.p.Topic, fp.p.Index)
			}
			if fp.err == nil && replica >= 0 {
				fp.replica = true
				fp.throttled = leaderLimited && b.leaderThrottled(fp.p, replica)
				join, err := fp.p.FollowerFetched(replica, t.offset, now)
				switch {
				case errors.Is(err, partition.ErrNotLeader):
					fp.err = kerr.NotLeaderForPartition
				case err != nil:
					fp.err = kerrf(kerr.UnknownTopicOrPartition, "%v", err)
				case join:
					b.isr.proposeJoin(fp.p, replica)
				}
			}
		}
		st.Partitions = append(st.Partitions, sp)
		parts = append(parts, fp)
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
		changed := plan.incremental && anyChanged(resp, parts, views)
		if anyErr || changed || total >= int(req.MinBytes) || wait <= 0 || time.Until(deadline) <= 0 {
			break
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
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			timer.Stop()
			releaseViews(views)
			return nil, nil, ctx.Err()
		case <-timer.C:
		case <-wake:
			timer.Stop()
			continue
		}
		b.readFetch(resp, parts, views, maxBytes)
		break
	}
	b.recordLeaderThrottled(parts, views)
	if plan.session != nil {
		var returned []*fetchTarget
		for _, fp := range parts {
			if views[fp.topic][fp.pi] != nil {
				returned = append(returned, fp.t)
			}
		}
		plan.session.rotate(returned)
		views = finishSession(resp, parts, views, plan.incremental)
	}
	return resp, views, nil
}

// anyChanged reports whether an incremental fetch has something to say
// other than records: an error or moved offsets. Such a response is sent at
// once, as Kafka does.
func anyChanged(resp *kmsg.FetchResponse, parts []fetchPart, views [][]*commitlog.View) bool {
	for _, fp := range parts {
		sp := &resp.Topics[fp.topic].Partitions[fp.pi]
		if partChanged(sp, fp.t, views[fp.topic][fp.pi]) {
			return true
		}
	}
	return false
}

func partChanged(sp *kmsg.FetchResponseTopicPartition, t *fetchTarget, v *commitlog.View) bool {
	return !t.sent || sp.ErrorCode != 0 || v != nil || sp.HighWatermark != t.sentHW || sp.LogStartOffset != t.sentLogStart
}

// finishSession records what the response tells the client, and for an
// incremental fetch leaves out the partitions with nothing new.
func finishSession(resp *kmsg.FetchResponse, parts []fetchPart, views [][]*commitlog.View, incremental bool) [][]*commitlog.View {
	keep := make([][]bool, len(resp.Topics))
	for i := range keep {
		keep[i] = make([]bool, len(resp.Topics[i].Partitions))
	}
	for _, fp := range parts {
		sp := &resp.Topics[fp.topic].Partitions[fp.pi]
		keep[fp.topic][fp.pi] = !incremental || partChanged(sp, fp.t, views[fp.topic][fp.pi])
		fp.t.sent, fp.t.sentHW, fp.t.sentLogStart = true, sp.HighWatermark, sp.LogStartOffset
	}
	if !incremental {
		return views
	}
	topics := resp.Topics[:0]
	outViews := views[:0]
	for ti, st := range resp.Topics {
		ps := st.Partitions[:0]
		vs := views[ti][:0]
		for pi, sp := range st.Partitions {
			if keep[ti][pi] {
				ps = append(ps, sp)
				vs = append(vs, views[ti][pi])
			}
		}
		if len(ps) > 0 {
			st.Partitions = ps
			topics = append(topics, st)
			outViews = append(outViews, vs)
		}
	}
	resp.Topics = topics
	return outViews
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
		sp.RecordBatches = nil
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
		if v != nil && resp.Version < 4 {
			// Fetch v0-v3 read the magic 0/1 formats: convert in memory.
			sp.RecordBatches, err = downConvert(v, resp.Version)
			v = nil
			if err != nil {
				sp.ErrorCode = errorCode(err)
				anyErr = true
				continue
			}
			total += len(sp.RecordBatches)
		}
		if v != nil {
			views[fp.topic][fp.pi] = v
			total += v.Len()
		}
	}
	return total, anyErr
}

// downConvert reads a view and converts its batches to the message format of
// an old fetch version (magic 0 for v0-v1, magic 1 for v2-v3). It releases
// the view.
func downConvert(v *commitlog.View, version int16) ([]byte, error) {
	defer v.Release()
	buf := make([]byte, v.Len())
	if err := v.ReadAt(buf); err != nil {
		return nil, err
	}
	magic := int8(1)
	if version < 2 {
		magic = 0
	}
	out, err := record.DownConvert(buf, magic)
	if out == nil {
		out = []byte{}
	}
	return out, err
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
	p, t := fp.p, fp.t
	hw := p.HighWatermark()
	sp.HighWatermark = hw
	sp.LastStableOffset = hw
	sp.LogStartOffset = p.Log().LogStartOffset()
	visible := hw // consumers read committed records only
	if fp.replica {
		visible = p.Log().LogEndOffset()
	}
	limit := int(t.maxBytes)
	if budget < limit {
		limit = budget
	}
	if fp.throttled {
		if limit = b.leaderAllowance(limit); limit <= 0 {
			return nil, nil // over leader.replication.throttled.rate: left out, as Kafka does
		}
	}
	if limit <= 0 && !first {
		return nil, nil
	}
	if t.offset > visible && t.offset <= p.Log().LogEndOffset() {
		return nil, nil // between HW and LEO: nothing visible yet
	}
	if t.offset == visible && t.offset >= sp.LogStartOffset {
		return nil, nil // caught up: the common case of a long poll
	}
	v, err := p.Log().Read(t.offset, limit, visible, first)
	if err != nil {
		if errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			return nil, kerrf(kerr.OffsetOutOfRange, "offset %d is outside [%d, %d] of %s-%d", t.offset, p.Log().LogStartOffset(), hw, p.Topic, p.Index)
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
