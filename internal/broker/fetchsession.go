package broker

import (
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227). A client opens a session with a full
// fetch at SessionEpoch 0; the broker remembers the session's partitions and
// their fetch offsets; later fetches send only what changed (new offsets,
// ForgottenTopics) with the next epoch, and responses carry only partitions
// with records, an error, or a changed high watermark or log start offset.
//
// SessionID 0 with epoch -1 is a sessionless full fetch; a session id with
// epoch -1 closes that session and is answered as a full fetch.

const (
	sessionEpochInitial = 0
	sessionEpochFinal   = -1
)

// fetchTarget is one partition a fetch reads, from the request or from a
// session.
type fetchTarget struct {
	topic      string
	topicID    [16]byte
	partition  int32
	offset     int64
	maxBytes   int32
	leaderEpch int32

	// What the last response of the session said, to leave the partition
	// out of an incremental response when nothing changed.
	sentHW, sentLogStart int64
	sent                 bool
	rotating             bool // being moved to the end of the order (rotate)
}

type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

func (t *fetchTarget) key() sessionKey {
	return sessionKey{topic: t.topic, topicID: t.topicID, partition: t.partition}
}

type fetchSession struct {
	id       int32
	epoch    int32 // the epoch the next request must carry
	targets  []*fetchTarget
	byKey    map[sessionKey]*fetchTarget
	lastUsed time.Time
	busy     bool // a fetch of this session is in flight
}

// fetchSessions is the broker's session cache. mu guards everything; it is
// never held while a fetch reads or waits.
type fetchSessions struct {
	max int
	mu  struct {
		sync.Mutex
		byID map[int32]*fetchSession
		next int32
	}
}

func newFetchSessions(max int) *fetchSessions {
	s := &fetchSessions{max: max}
	s.mu.byID = make(map[int32]*fetchSession)
	return s
}

// fetchPlan is what one fetch reads, and how to answer.
type fetchPlan struct {
	targets     []*fetchTarget
	session     *fetchSession // nil for a sessionless fetch
	incremental bool
	sessionID   int32
}

// plan resolves a request into the partitions to read. A non-nil error is a
// top-level error code for the response.
func (s *fetchSessions) plan(req *kmsg.FetchRequest, now time.Time) (fetchPlan, error) {
	fromRequest := func() []*fetchTarget {
		var ts []*fetchTarget
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				ts = append(ts, &fetchTarget{topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition,
					offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpch: rp.CurrentLeaderEpoch})
			}
		}
		return ts
	}
	if req.Version < 7 {
		return fetchPlan{targets: fromRequest()}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.SessionID == 0 && req.SessionEpoch == sessionEpochFinal:
		return fetchPlan{targets: fromRequest()}, nil
	case req.SessionID == 0 && req.SessionEpoch == sessionEpochInitial:
		targets := fromRequest()
		fs := s.newSessionLocked(targets, now)
		if fs == nil {
			return fetchPlan{targets: targets}, nil // cache full: sessionless
		}
		fs.busy = true
		return fetchPlan{targets: targets, session: fs, sessionID: fs.id}, nil
	case req.SessionID == 0:
		return fetchPlan{}, kerrf(kerr.InvalidFetchSessionEpoch, "session epoch %d without a session id", req.SessionEpoch)
	case req.SessionEpoch == sessionEpochFinal:
		delete(s.mu.byID, req.SessionID)
		return fetchPlan{targets: fromRequest()}, nil
	case req.SessionEpoch == sessionEpochInitial:
		// Close the old session and open a new one.
		delete(s.mu.byID, req.SessionID)
		targets := fromRequest()
		fs := s.newSessionLocked(targets, now)
		if fs == nil {
			return fetchPlan{targets: targets}, nil
		}
		fs.busy = true
		return fetchPlan{targets: targets, session: fs, sessionID: fs.id}, nil
	}
	fs, ok := s.mu.byID[req.SessionID]
	if !ok {
		return fetchPlan{}, kerrf(kerr.FetchSessionIDNotFound, "fetch session %d does not exist (expired or evicted)", req.SessionID)
	}
	if fs.busy || req.SessionEpoch != fs.epoch {
		return fetchPlan{}, kerrf(kerr.InvalidFetchSessionEpoch, "fetch session %d expects epoch %d, not %d", fs.id, fs.epoch, req.SessionEpoch)
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := sessionKey{topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition}
			if t, ok := fs.byKey[k]; ok {
				t.offset, t.maxBytes, t.leaderEpch = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch
				continue
			}
			t := &fetchTarget{topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition,
				offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpch: rp.CurrentLeaderEpoch}
			fs.targets = append(fs.targets, t)
			fs.byKey[k] = t
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			delete(fs.byKey, sessionKey{topic: ft.Topic, topicID: ft.TopicID, partition: p})
		}
	}
	kept := fs.targets[:0]
	for _, t := range fs.targets {
		if fs.byKey[t.key()] == t {
			kept = append(kept, t)
		}
	}
	fs.targets = kept
	fs.busy = true
	fs.lastUsed = now
	// No copy of the targets: the session is busy, so nothing changes
	// them until done.
	return fetchPlan{targets: fs.targets, session: fs, incremental: true, sessionID: fs.id}, nil
}

// done records that a session's fetch was answered: the next request must
// carry the next epoch.
func (s *fetchSessions) done(p fetchPlan) {
	if p.session == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.session.busy = false
	if p.session.epoch == math.MaxInt32 {
		p.session.epoch = 1
	} else {
		p.session.epoch++
	}
}

// rotate moves the targets that just returned records (given in order) to
// the end of the session's order, as Kafka does: the next fetch reads the
// others first, so when responses fill up (MaxBytes) no partition starves.
// The caller's fetch holds the session busy.
func (fs *fetchSession) rotate(returned []*fetchTarget) {
	if len(returned) == 0 {
		return
	}
	for _, t := range returned {
		t.rotating = true
	}
	n := 0
	for _, t := range fs.targets {
		if !t.rotating {
			fs.targets[n] = t
			n++
		}
	}
	for _, t := range returned { // each is one of fs.targets
		if t.rotating && n < len(fs.targets) {
			fs.targets[n] = t
			n++
		}
		t.rotating = false
	}
}

// sessionIdle is how long an unused session is kept when the cache is full.
const sessionIdle = 2 * time.Minute

func (s *fetchSessions) newSessionLocked(targets []*fetchTarget, now time.Time) *fetchSession {
	if len(s.mu.byID) >= s.max {
		// Evict the least recently used idle session, if it has been idle
		// long enough; otherwise this fetch goes without a session.
		var victim *fetchSession
		for _, fs := range s.mu.byID {
			if !fs.busy && now.Sub(fs.lastUsed) > sessionIdle && (victim == nil || fs.lastUsed.Before(victim.lastUsed)) {
				victim = fs
			}
		}
		if victim == nil {
			return nil
		}
		delete(s.mu.byID, victim.id)
	}
	for {
		s.mu.next++
		if s.mu.next <= 0 {
			s.mu.next = 1
		}
		if _, taken := s.mu.byID[s.mu.next]; !taken {
			break
		}
	}
	// done() after the opening fetch moves the expected epoch to 1.
	fs := &fetchSession{id: s.mu.next, epoch: 0, byKey: make(map[sessionKey]*fetchTarget, len(targets)), lastUsed: now}
	for _, t := range targets {
		fs.targets = append(fs.targets, t)
		fs.byKey[t.key()] = t
	}
	s.mu.byID[fs.id] = fs
	return fs
}
