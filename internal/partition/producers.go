package partition

import (
	"errors"
	"fmt"
	"math"

	"github.com/fjord-io/fjord/internal/record"
)

// Errors of appends from idempotent producers; the broker maps them to
// Kafka codes.
var (
	// ErrOutOfOrderSequence reports a batch whose sequence number neither
	// continues its producer's last batch nor repeats one of its cached
	// batches (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("partition: out of order sequence number")
	// ErrInvalidProducerEpoch reports a batch from a producer epoch older
	// than one already seen: a fenced producer (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("partition: invalid producer epoch")
)

// cachedBatches is how many of each producer's latest batches a partition
// remembers to recognize retries: Kafka's bound on an idempotent producer's
// in-flight requests per connection.
const cachedBatches = 5

// batchMeta describes one appended batch of a producer.
type batchMeta struct {
	FirstSeq    int32 `json:"firstSeq"`
	LastSeq     int32 `json:"lastSeq"`
	FirstOffset int64 `json:"firstOffset"`
	LastOffset  int64 `json:"lastOffset"`
	Timestamp   int64 `json:"timestamp"` // the batch's MaxTimestamp, in ms
}

// producerEntry is what a partition remembers of one producer id: its
// latest epoch and the batches it appended in that epoch, oldest first, at
// most cachedBatches and never none.
type producerEntry struct {
	Epoch   int16
	Batches []batchMeta
}

func (e *producerEntry) last() batchMeta { return e.Batches[len(e.Batches)-1] }

// producerState maps producer ids to what the partition remembers of them.
// It is not safe for concurrent use; Partition guards it with idem.mu.
type producerState map[int64]*producerEntry

// lastSequence returns the sequence number of a batch's last record: the
// base sequence plus the last offset delta, wrapping from MaxInt32 to 0 as
// producers do.
func lastSequence(h record.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// nextSequence returns the sequence number that follows seq.
func nextSequence(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// check decides whether a producer's batch h may be appended, following
// Kafka's rules for a leader (KIP-98, with KIP-360's acceptance of unknown
// producers). It returns the cached metadata of the original when h repeats
// one of the producer's cached batches (same epoch, first and last
// sequence): a retry, to be answered with the original's offsets and not
// appended again. Otherwise it returns nil to accept h, or an error:
//   - an unknown producer (never seen, expired, or its state lost with a
//     crash) is accepted at any sequence;
//   - an epoch older than the producer's latest fails with
//     ErrInvalidProducerEpoch;
//   - a newer epoch must start at sequence 0;
//   - the same epoch must continue at the last sequence + 1 (0 after
//     MaxInt32); anything else fails with ErrOutOfOrderSequence.
func (ps producerState) check(h record.Header) (*batchMeta, error) {
	e := ps[h.ProducerID]
	switch {
	case e == nil:
		return nil, nil
	case h.ProducerEpoch < e.Epoch:
		return nil, fmt.Errorf("producer %d: epoch %d is older than the current epoch %d: %w", h.ProducerID, h.ProducerEpoch, e.Epoch, ErrInvalidProducerEpoch)
	case h.ProducerEpoch > e.Epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("producer %d: new epoch %d starts at sequence %d, not 0: %w", h.ProducerID, h.ProducerEpoch, h.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil, nil
	}
	last := lastSequence(h)
	for i := range e.Batches {
		if b := &e.Batches[i]; b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			dup := *b
			return &dup, nil
		}
	}
	if want := nextSequence(e.last().LastSeq); h.BaseSequence != want {
		return nil, fmt.Errorf("producer %d epoch %d: sequence %d, expected %d: %w", h.ProducerID, h.ProducerEpoch, h.BaseSequence, want, ErrOutOfOrderSequence)
	}
	return nil, nil
}

// apply records the appended batch h (its BaseOffset assigned) as its
// producer's latest. A batch from another epoch than the remembered one
// starts the producer afresh. A batch at or below the producer's last
// recorded offset is ignored, so replaying the log over a snapshot that
// already holds some of it is harmless.
func (ps producerState) apply(h record.Header) {
	e := ps[h.ProducerID]
	if e == nil || e.Epoch != h.ProducerEpoch {
		e = &producerEntry{Epoch: h.ProducerEpoch}
		ps[h.ProducerID] = e
	} else if h.BaseOffset <= e.last().LastOffset {
		return
	}
	if len(e.Batches) == cachedBatches {
		e.Batches = append(e.Batches[:0], e.Batches[1:]...)
	}
	e.Batches = append(e.Batches, batchMeta{
		FirstSeq:    h.BaseSequence,
		LastSeq:     lastSequence(h),
		FirstOffset: h.BaseOffset,
		LastOffset:  h.LastOffset(),
		Timestamp:   h.MaxTimestamp,
	})
}

// expire forgets the producers whose latest batch's timestamp is at least
// maxAge ms before now (Kafka's producer.id.expiration.ms, which also goes
// by the batch timestamp) and returns how many it forgot.
func (ps producerState) expire(nowMs, maxAgeMs int64) int {
	n := 0
	for id, e := range ps {
		if nowMs-e.last().Timestamp >= maxAgeMs {
			delete(ps, id)
			n++
		}
	}
	return n
}

// inspect reads the headers of batches (whole batches, as checked by
// record.Validate) and returns the first one's, the number of batches, and
// whether any carries a producer id.
func inspect(batches []byte) (first record.Header, n int, idem bool, err error) {
	for pos := 0; pos < len(batches); n++ {
		h, err := record.ReadHeader(batches[pos:])
		if err != nil {
			return first, n, idem, err
		}
		if h.Size() < record.HeaderSize {
			return first, n, idem, fmt.Errorf("batch of %d bytes: %w", h.Size(), record.ErrCorrupt)
		}
		if n == 0 {
			first = h
		}
		idem = idem || h.ProducerID >= 0
		pos += h.Size()
	}
	return first, n, idem, nil
}
