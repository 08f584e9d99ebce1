package broker

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicaSession is a follower's side of its incremental fetch session
// (KIP-227) with one leader, as Kafka's FetchSessionHandler: the first fetch
// lists every followed partition and opens the session; later fetches list
// only the partitions whose fetch position changed, and forget those no
// longer fetched, so a follower of thousands of idle partitions sends and
// receives a few bytes per round instead of all of them. The leader still
// reads every partition of the session (fetchsession.go), which is how it
// learns that an idle follower is caught up.
//
// A replicaSession belongs to its leaderFetcher's goroutine.
type replicaSession struct {
	id    int32                      // the leader's session id; 0 before one is opened
	epoch int32                      // the epoch of the next request: 0 (re)opens the session
	sent  map[tpKey]replicaFetchSent // what the leader's session holds, once the request in flight is answered
	round uint64                     // counts fills, to find the partitions a round did not want
}

// replicaFetchSent is what the leader's session last heard about a
// partition.
type replicaFetchSent struct {
	offset, logStart      int64
	maxBytes, leaderEpoch int32
	round                 uint64 // the last round that wanted the partition
}

// replicaFetchPart is one partition a follower wants in a fetch.
type replicaFetchPart struct {
	topic string
	rp    kmsg.FetchRequestTopicPartition
}

// fill sets req's session fields and partitions for the partitions wanted
// this round: all of them when the session is being opened, otherwise the
// changed ones, with the rest of the session's partitions forgotten. It
// records what req tells the leader as sent; if the request fails, handled
// (or reset) throws that away with the session. It reports whether req is
// a full fetch.
func (s *replicaSession) fill(req *kmsg.FetchRequest, want []replicaFetchPart) (full bool) {
	full = s.epoch == sessionEpochInitial
	if full || s.sent == nil {
		clear(s.sent)
		if s.sent == nil {
			s.sent = make(map[tpKey]replicaFetchSent, len(want))
		}
	}
	s.round++
	req.SessionID, req.SessionEpoch = s.id, s.epoch
	var topics map[string]int // index in req.Topics; made when a first partition is listed
	for _, w := range want {
		k := tpKey{w.topic, w.rp.Partition}
		now := replicaFetchSent{offset: w.rp.FetchOffset, logStart: w.rp.LogStartOffset,
			maxBytes: w.rp.PartitionMaxBytes, leaderEpoch: w.rp.CurrentLeaderEpoch, round: s.round}
		prev, ok := s.sent[k]
		s.sent[k] = now
		prev.round = s.round
		if ok && prev == now {
			continue // the leader's session has it as it is
		}
		if topics == nil {
			topics = make(map[string]int)
		}
		ti, ok := topics[w.topic]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = w.topic
			req.Topics = append(req.Topics, rt)
			ti = len(req.Topics) - 1
			topics[w.topic] = ti
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, w.rp)
	}
	if full || len(s.sent) == len(want) {
		return full
	}
	forgotten := make(map[string]int)
	for k, v := range s.sent {
		if v.round == s.round {
			continue
		}
		delete(s.sent, k)
		fi, ok := forgotten[k.topic]
		if !ok {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic = k.topic
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
			fi = len(req.ForgottenTopics) - 1
			forgotten[k.topic] = fi
		}
		req.ForgottenTopics[fi].Partitions = append(req.ForgottenTopics[fi].Partitions, k.partition)
	}
	return full
}

// handled moves the session on after the response to a request filled
// (full or not), with top-level error code code and session id
// respSessionID. It reports whether the error was the session's own
// (expired, evicted, out of step): the next fetch reopens the session at
// once, and no partition is to blame.
func (s *replicaSession) handled(full bool, code int16, respSessionID int32) (sessionErr bool) {
	if code != 0 {
		s.reset()
		return code == kerr.FetchSessionIDNotFound.Code || code == kerr.InvalidFetchSessionEpoch.Code
	}
	switch {
	case full && respSessionID == 0:
		// The leader's session cache is full: that fetch was sessionless,
		// and the next one asks again.
		s.id = 0
		s.reset()
	case full:
		s.id, s.epoch = respSessionID, 1
	case s.epoch == math.MaxInt32:
		s.epoch = 1
	default:
		s.epoch++
	}
	return false
}

// reset makes the next fetch a full one that closes the old session, if
// the leader still has it, and opens a new one.
func (s *replicaSession) reset() {
	s.epoch = sessionEpochInitial
	clear(s.sent)
}
