package broker

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID (key 22), v0-v5: gives an idempotent producer its producer
// id. A transactional id is not supported yet
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED). As Kafka does for a producer
// without a transactional id, every request gets a new producer id at epoch
// 0. That includes v3+ requests carrying the producer's current id and epoch
// (KIP-360): an idempotent producer bumps its epoch itself after a sequence
// error and asks for a new id only once the epoch is exhausted or the
// producer is reset, and each partition fences an id's older epochs on its
// own (partition.ErrInvalidProducerEpoch). An id and epoch where only one
// of the two is -1 is INVALID_REQUEST, as in Kafka.
//
// Producer ids never repeat, even across restarts: the broker reserves them
// in blocks of producerIDBlock in the metadata store.
func (b *Broker) handleInitProducerID(req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil:
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code // transactions are not supported yet
		return resp
	case (req.ProducerID == -1) != (req.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	id, err := b.pids.allocate(b.meta)
	if err != nil {
		b.log.Warn("allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code // retriable
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

// producerIDBlock is how many producer ids the broker reserves at a time in
// the metadata store (the block size of Kafka's producer id manager).
const producerIDBlock = 1000

// producerIDs hands out producer ids from blocks reserved in the metadata
// store. The zero value is ready to use; mu guards the block [next, end).
type producerIDs struct {
	mu        sync.Mutex
	next, end int64
}

// allocate returns a producer id never returned before by this or any earlier
// run of the broker. When the block is used up it reserves the next one,
// holding mu across that write: the callers waiting need the new block.
func (a *producerIDs) allocate(meta store) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.end {
		first, err := meta.AllocateProducerIDs(producerIDBlock)
		if err != nil {
			return 0, err
		}
		a.next, a.end = first, first+producerIDBlock
	}
	id := a.next
	a.next++
	return id, nil
}
