// Package record encodes, decodes and validates Kafka RecordBatch v2 (magic 2)
// batches, the unit in which Fjord stores and serves records, and provides the
// compression codecs Kafka clients use inside them.
//
// A batch on the wire is a fixed 61-byte header followed by its records,
// compressed as one block when the codec attribute says so:
//
//	baseOffset int64, length int32, partitionLeaderEpoch int32, magic int8,
//	crc uint32, attributes int16, lastOffsetDelta int32, firstTimestamp int64,
//	maxTimestamp int64, producerId int64, producerEpoch int16,
//	baseSequence int32, records int32 + the records.
//
// The CRC-32C (Castagnoli) covers everything from attributes to the end of
// the batch, so baseOffset and partitionLeaderEpoch can be rewritten in place.
// All integers are big-endian.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a RecordBatch v2 header in bytes.
const HeaderSize = 61

// Byte offsets of the header fields.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// minLength is the smallest legal Length field: the header after Length.
const minLength = HeaderSize - offLeaderEpoch

// ErrCorrupt reports a malformed batch: bad length, CRC, counts or records.
// It maps to Kafka's CORRUPT_MESSAGE (2).
var ErrCorrupt = errors.New("record: corrupt batch")

// ErrUnsupportedMagic reports a magic 0 or 1 message set, which Fjord does not
// accept. It maps to Kafka's UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
var ErrUnsupportedMagic = errors.New("record: unsupported magic")

// ErrInvalidRecord reports a well-formed batch a producer may not send: a
// control batch, or one whose offset range does not match its record count.
// It maps to Kafka's INVALID_RECORD (87).
var ErrInvalidRecord = errors.New("record: invalid record")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the fixed 61-byte header of a RecordBatch v2.
type Header struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size returns the size of the whole batch on the wire: 12 + Length.
func (h Header) Size() int { return 12 + int(h.Length) }

// LastOffset returns the offset of the batch's last record: BaseOffset + LastOffsetDelta.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset returns the offset following the batch: LastOffset + 1.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec returns the compression codec of the batch's records.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the batch's timestamps are the broker's
// append time rather than the producer's create time.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds a control record (a transaction marker).
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// ReadHeader decodes the header at the start of b. It checks nothing but that
// len(b) >= HeaderSize; the result may hold any values.
func ReadHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("read header: %d bytes, need %d: %w", len(b), HeaderSize, ErrCorrupt)
	}
	return Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}, nil
}

// putHeader writes h into b[:HeaderSize] verbatim (CRC included).
func putHeader(b []byte, h Header) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[offLength:], uint32(h.Length))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = byte(h.Magic)
	binary.BigEndian.PutUint32(b[offCRC:], h.CRC)
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[offFirstTimestamp:], uint64(h.FirstTimestamp))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(h.NumRecords))
}

// Checksum returns the CRC-32C of batch[21:], the bytes the CRC field covers.
// batch must hold at least HeaderSize bytes.
func Checksum(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// CheckHeader checks the header at the start of b for the invariants Validate
// enforces that need no more than the header itself: magic 2, a Length of at
// least the header's, NumRecords >= 1, and 0 <= LastOffsetDelta with
// NumRecords <= LastOffsetDelta+1 (a compacted batch may have fewer records
// than its offset range). It does not check the CRC or that the whole batch
// is present. Errors wrap ErrCorrupt or ErrUnsupportedMagic.
func CheckHeader(b []byte) (Header, error) {
	if len(b) > offMagic {
		if m := int8(b[offMagic]); m == 0 || m == 1 {
			return Header{}, fmt.Errorf("magic %d: %w", m, ErrUnsupportedMagic)
		}
	}
	h, err := ReadHeader(b)
	if err != nil {
		return Header{}, err
	}
	switch {
	case h.Magic != 2:
		return h, fmt.Errorf("magic %d: %w", h.Magic, ErrCorrupt)
	case h.Length < minLength:
		return h, fmt.Errorf("length %d below header size: %w", h.Length, ErrCorrupt)
	case h.NumRecords < 1:
		return h, fmt.Errorf("%d records: %w", h.NumRecords, ErrCorrupt)
	case h.LastOffsetDelta < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1:
		return h, fmt.Errorf("last offset delta %d with %d records: %w", h.LastOffsetDelta, h.NumRecords, ErrCorrupt)
	}
	return h, nil
}

// Validate checks that b holds one or more complete batches exactly (no
// trailing bytes), each with magic 2, a consistent Length, a correct CRC-32C,
// NumRecords >= 1 and a consistent LastOffsetDelta (see CheckHeader), and
// returns their headers. It does not decompress or decode records. Errors
// wrap ErrCorrupt or ErrUnsupportedMagic. It never panics, whatever b holds.
func Validate(b []byte) ([]Header, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty record set: %w", ErrCorrupt)
	}
	var hs []Header
	for pos := 0; pos < len(b); {
		rest := b[pos:]
		h, err := CheckHeader(rest)
		if err != nil {
			return nil, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		if h.Size() > len(rest) {
			return nil, fmt.Errorf("batch at byte %d: size %d, %d bytes left: %w", pos, h.Size(), len(rest), ErrCorrupt)
		}
		if crc := Checksum(rest[:h.Size()]); crc != h.CRC {
			return nil, fmt.Errorf("batch at byte %d: crc %#08x, want %#08x: %w", pos, crc, h.CRC, ErrCorrupt)
		}
		hs = append(hs, h)
		pos += h.Size()
	}
	return hs, nil
}

// ValidateProduce is Validate plus the checks Kafka applies to batches from
// producers: no control batches, and LastOffsetDelta == NumRecords-1 (dense
// offsets), which batches from a compacted log need not satisfy. Its extra
// errors wrap ErrInvalidRecord.
func ValidateProduce(b []byte) ([]Header, error) {
	hs, err := Validate(b)
	if err != nil {
		return nil, err
	}
	for i, h := range hs {
		switch {
		case h.Control():
			return nil, fmt.Errorf("batch %d: control batch from a producer: %w", i, ErrInvalidRecord)
		case int64(h.LastOffsetDelta) != int64(h.NumRecords)-1:
			return nil, fmt.Errorf("batch %d: last offset delta %d with %d records: %w", i, h.LastOffsetDelta, h.NumRecords, ErrInvalidRecord)
		}
	}
	return hs, nil
}

// SetBaseOffset rewrites the BaseOffset of the batch at the start of batch in
// place. The field is outside the CRC.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the PartitionLeaderEpoch of the batch at
// the start of batch in place. The field is outside the CRC.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch at the start of batch as LogAppendTime
// (attribute bit 3), sets its FirstTimestamp and MaxTimestamp to ts, and
// recomputes the CRC. batch must hold the whole batch (Header.Size bytes).
func SetLogAppendTime(batch []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(batch[offAttributes:])
	binary.BigEndian.PutUint16(batch[offAttributes:], attrs|attrLogAppendTime)
	binary.BigEndian.PutUint64(batch[offFirstTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	size := 12 + int(int32(binary.BigEndian.Uint32(batch[offLength:])))
	binary.BigEndian.PutUint32(batch[offCRC:], Checksum(batch[:size]))
}
