package record

// This file converts between RecordBatch v2 and the message sets of magic 0
// and 1, which Produce v0-v2 carry and Fetch v0-v3 expect. A message set is
// messages back to back, each:
//
//	offset int64, messageSize int32, crc uint32, magic int8, attributes int8,
//	[magic 1: timestamp int64], key bytes, value bytes
//
// where messageSize counts the bytes after it, the CRC-32 (IEEE) covers magic
// to the end, and bytes are an int32 length (-1 for null) and the bytes. The
// attributes hold the codec in bits 0-2 and, in magic 1, LogAppendTime in
// bit 3. A compressed message (a wrapper) has a null key and, as its value,
// an inner message set compressed with its codec. Inner messages are
// uncompressed and have the wrapper's magic; in magic 0 they carry absolute
// offsets, in magic 1 offsets relative to the first, and the wrapper carries
// the absolute offset of the last.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
)

// ErrUnsupportedCompression reports a codec the message format at hand cannot
// express: zstd in a magic 0 or 1 message set. It maps to Kafka's
// UNSUPPORTED_COMPRESSION_TYPE (76).
var ErrUnsupportedCompression = errors.New("record: unsupported compression type")

// Sizes of the parts of a message.
const (
	msgLogOverhead = 12                // offset and messageSize
	msgMagicOffset = 16                // offset, messageSize and crc
	msgMinSizeV0   = 4 + 1 + 1 + 4 + 4 // crc, magic, attributes, key and value lengths
	msgMinSizeV1   = msgMinSizeV0 + 8  // and the timestamp
)

// noTimestamp is Kafka's NO_TIMESTAMP, the timestamp of magic 0 messages.
const noTimestamp = -1

// IsMessageSet reports whether b starts with a magic 0 or 1 message: whether
// its byte 16, where a RecordBatch has its magic too, is 0 or 1.
func IsMessageSet(b []byte) bool {
	return len(b) > msgMagicOffset && (b[msgMagicOffset] == 0 || b[msgMagicOffset] == 1)
}

// UpConvert turns the magic 0 or 1 message set of a Produce v0-v2 request into
// one RecordBatch v2 holding the same keys and values, in order, with their
// magic 1 timestamps; magic 0 messages get timestamp -1 (NO_TIMESTAMP). The
// batch has BaseOffset 0, offset deltas 0..n-1, no producer id (-1) and
// leader epoch -1, for the broker to assign. It is compressed with the codec
// of the set's last compressed message, or not at all if it has none: the
// records must be re-encoded anyway, and Kafka picks the codec the same way.
// Offsets in the set are ignored, as Kafka ignores them.
//
// A damaged set (short, trailing bytes, a bad CRC or length, magic 2, a
// wrapper inside a wrapper, an inner magic other than the wrapper's, an
// empty or null wrapper) fails with an error wrapping ErrCorrupt; a message
// that claims LogAppendTime, which only a broker may set, with ErrInvalidRecord
// (Kafka answers INVALID_TIMESTAMP); zstd with ErrUnsupportedCompression; and
// a compressed result holding more than MaxDecompressedSize bytes of records,
// which Records could not read back, with ErrTooLarge. A magic 0 lz4 wrapper may carry the frame header checksum of
// Kafka before 0.10 (KAFKA-3160), as Kafka accepts. UpConvert never panics and
// the result does not alias set.
func UpConvert(set []byte) ([]byte, error) {
	if len(set) == 0 {
		return nil, fmt.Errorf("up-convert: empty message set: %w", ErrCorrupt)
	}
	w := batchWriter{buf: make([]byte, HeaderSize, HeaderSize+len(set))}
	for pos := 0; pos < len(set); {
		m, n, err := readMessage(set[pos:])
		if err == nil {
			err = w.addShallow(m)
		}
		if err != nil {
			return nil, fmt.Errorf("up-convert: message at byte %d: %w", pos, err)
		}
		pos += n
	}
	b, err := w.finish()
	if err != nil {
		return nil, fmt.Errorf("up-convert: %w", err)
	}
	return b, nil
}

// DownConvert turns stored RecordBatch v2 bytes (one or more whole batches, as
// a fetch reads them) into a message set of the given magic, 0 (for Fetch
// v0-v1) or 1 (Fetch v2-v3), keeping every record's absolute offset. Control
// batches are skipped, record headers dropped; the result is empty (nil) if
// nothing is left. In magic 1, timestamps are kept and a LogAppendTime batch
// yields messages with the LogAppendTime attribute and the batch's append
// time; magic 0 has no timestamps.
//
// An uncompressed batch becomes plain messages. A gzip, snappy or lz4 batch
// becomes one wrapper compressed with the same codec, so old clients get the
// compression the producer chose and responses stay near their stored size;
// the exception is lz4 in magic 0, which becomes plain messages, because
// clients disagree on the frame header checksum there (KAFKA-3160). A zstd
// batch cannot be expressed and fails with ErrUnsupportedCompression, which
// Kafka answers for the whole partition.
//
// Each batch's CRC-32C is checked; bad input fails with an error wrapping
// ErrCorrupt (ErrTooLarge for records beyond MaxDecompressedSize, and
// ErrUnsupportedMagic for a magic other than 0 or 1). DownConvert never
// panics and the result does not alias batches.
func DownConvert(batches []byte, magic int8) ([]byte, error) {
	if magic != 0 && magic != 1 {
		return nil, fmt.Errorf("down-convert to magic %d: %w", magic, ErrUnsupportedMagic)
	}
	dc := downConverter{magic: magic}
	for pos := 0; pos < len(batches); {
		rest := batches[pos:]
		h, err := CheckHeader(rest)
		if err != nil {
			return nil, fmt.Errorf("down-convert: batch at byte %d: %w", pos, err)
		}
		if h.Size() > len(rest) {
			return nil, fmt.Errorf("down-convert: batch at byte %d: size %d, %d bytes left: %w", pos, h.Size(), len(rest), ErrCorrupt)
		}
		batch := rest[:h.Size()]
		if crc := Checksum(batch); crc != h.CRC {
			return nil, fmt.Errorf("down-convert: batch at byte %d: crc %#08x, want %#08x: %w", pos, crc, h.CRC, ErrCorrupt)
		}
		if !h.Control() {
			if err := dc.add(h, batch); err != nil {
				return nil, fmt.Errorf("down-convert: batch at byte %d: %w", pos, err)
			}
		}
		pos += h.Size()
	}
	return dc.out, nil
}

// downConverter accumulates a down-converted message set.
type downConverter struct {
	magic int8
	out   []byte   // the message set
	inner []byte   // scratch: a wrapper's inner set
	recs  []Record // scratch: a batch's records
}

// add appends the records of batch, a whole checked batch with header h.
func (dc *downConverter) add(h Header, batch []byte) error {
	c := h.Codec()
	if c == CodecZstd {
		return fmt.Errorf("zstd batch in a magic %d message set: %w", dc.magic, ErrUnsupportedCompression)
	}
	recs, err := appendRecordsNoHeaders(dc.recs[:0], h, batch)
	dc.recs = recs
	if err != nil || len(recs) == 0 {
		return err
	}
	var attrs int8
	if dc.magic == 1 && h.LogAppendTime() {
		attrs = attrLogAppendTime
	}
	if c == CodecNone || (c == CodecLZ4 && dc.magic == 0) {
		dc.out = slices.Grow(dc.out, messageSetSize(recs, dc.magic))
		for _, r := range recs {
			dc.out = appendMessage(dc.out, r.Offset(h), dc.magic, attrs, r.Timestamp(h), r.Key, r.Value)
		}
		return nil
	}

	first, last := recs[0].Offset(h), recs[len(recs)-1].Offset(h)
	maxTS := recs[0].Timestamp(h)
	dc.inner = slices.Grow(dc.inner[:0], messageSetSize(recs, dc.magic))
	for _, r := range recs {
		off, ts := r.Offset(h), r.Timestamp(h)
		if dc.magic == 1 {
			off -= first
		}
		maxTS = max(maxTS, ts)
		dc.inner = appendMessage(dc.inner, off, dc.magic, attrs, ts, r.Key, r.Value)
	}
	z, err := Compress(c, dc.inner)
	if err != nil {
		return err
	}
	if int64(len(z)) > math.MaxInt32-msgMinSizeV1 {
		return fmt.Errorf("wrapper of %d bytes: %w", len(z), ErrTooLarge)
	}
	dc.out = slices.Grow(dc.out, msgLogOverhead+msgMinSizeV1+len(z))
	dc.out = appendMessage(dc.out, last, dc.magic, attrs|int8(c), maxTS, nil, z)
	return nil
}

// appendRecordsNoHeaders appends the records of batch, a whole batch with
// header h, to dst. It decodes and checks them as Records does, but skips
// their headers, which message sets cannot carry, so it allocates nothing
// for them (nor, for an uncompressed batch with room in dst, at all). Keys
// and values alias batch or its decompressed records.
func appendRecordsNoHeaders(dst []Record, h Header, batch []byte) ([]Record, error) {
	data := batch[HeaderSize:h.Size()]
	if c := h.Codec(); c != CodecNone {
		var err error
		if data, err = Decompress(c, data); err != nil {
			return dst, err
		}
	}
	if h.NumRecords < 0 || int64(h.NumRecords) > int64(len(data)/minRecordSize) {
		return dst, fmt.Errorf("%d records in %d bytes: %w", h.NumRecords, len(data), ErrCorrupt)
	}
	dst = slices.Grow(dst, int(h.NumRecords))
	d := decoder{b: data}
	for i := range h.NumRecords {
		var r Record
		if err := d.recordNoHeaders(&r); err != nil {
			return dst, fmt.Errorf("record %d: %w", i, err)
		}
		dst = append(dst, r)
	}
	if len(d.b) != 0 {
		return dst, fmt.Errorf("%d bytes after the last record: %w", len(d.b), ErrCorrupt)
	}
	return dst, nil
}

// recordNoHeaders decodes the next record into r as record does, checking
// but not keeping its headers.
func (d *decoder) recordNoHeaders(r *Record) error {
	length, err := d.varint()
	if err != nil {
		return err
	}
	if length < 1 || int64(length) > int64(len(d.b)) {
		return fmt.Errorf("record length %d with %d bytes left: %w", length, len(d.b), ErrCorrupt)
	}
	rd := decoder{b: d.b[:length]}
	d.b = d.b[length:]
	r.Attributes = int8(rd.b[0])
	rd.b = rd.b[1:]
	if r.TimestampDelta, err = rd.varlong(); err != nil {
		return err
	}
	if r.OffsetDelta, err = rd.varint(); err != nil {
		return err
	}
	if r.Key, err = rd.bytes(); err != nil {
		return err
	}
	if r.Value, err = rd.bytes(); err != nil {
		return err
	}
	nh, err := rd.varint()
	if err != nil {
		return err
	}
	if nh < 0 || int64(nh) > int64(len(rd.b)/2) {
		return fmt.Errorf("%d headers with %d bytes left: %w", nh, len(rd.b), ErrCorrupt)
	}
	for range nh {
		k, err := rd.bytes()
		if err != nil {
			return err
		}
		if k == nil {
			return fmt.Errorf("null header key: %w", ErrCorrupt)
		}
		if _, err := rd.bytes(); err != nil {
			return err
		}
	}
	if len(rd.b) != 0 {
		return fmt.Errorf("%d bytes left in record: %w", len(rd.b), ErrCorrupt)
	}
	return nil
}

// messageSetSize returns the size of recs as uncompressed messages.
func messageSetSize(recs []Record, magic int8) int {
	per := msgLogOverhead + msgMinSizeV0
	if magic == 1 {
		per = msgLogOverhead + msgMinSizeV1
	}
	n := per * len(recs)
	for _, r := range recs {
		n += len(r.Key) + len(r.Value)
	}
	return n
}

// appendMessage appends one message to dst. A nil key or value is null.
func appendMessage(dst []byte, offset int64, magic, attrs int8, ts int64, key, value []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, byte(magic), byte(attrs)) // size and crc set below
	if magic == 1 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	}
	dst = appendLegacyBytes(dst, key)
	dst = appendLegacyBytes(dst, value)
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-msgLogOverhead))
	binary.BigEndian.PutUint32(dst[start+12:], crc32.ChecksumIEEE(dst[start+msgMagicOffset:]))
	return dst
}

func appendLegacyBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.BigEndian.AppendUint32(dst, math.MaxUint32) // -1
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// message is one decoded magic 0 or 1 message. Key and value alias the input
// and are nil when null.
type message struct {
	magic     int8
	attrs     int8
	timestamp int64 // noTimestamp for magic 0
	key       []byte
	value     []byte
}

func (m message) codec() Codec { return Codec(m.attrs & attrCodecMask) }

// readMessage decodes the message at the start of b, checking its length,
// magic and CRC, and returns it with its size in bytes. The offset is not
// returned: the conversions never need a message's own.
func readMessage(b []byte) (message, int, error) {
	if len(b) < msgLogOverhead {
		return message{}, 0, fmt.Errorf("%d bytes, short of an offset and size: %w", len(b), ErrCorrupt)
	}
	size := int32(binary.BigEndian.Uint32(b[8:]))
	if size < msgMinSizeV0 {
		return message{}, 0, fmt.Errorf("size %d below the smallest message: %w", size, ErrCorrupt)
	}
	if int64(size) > int64(len(b)-msgLogOverhead) {
		return message{}, 0, fmt.Errorf("size %d, %d bytes left: %w", size, len(b)-msgLogOverhead, ErrCorrupt)
	}
	b = b[:msgLogOverhead+int(size)]
	m := message{magic: int8(b[msgMagicOffset]), attrs: int8(b[msgMagicOffset+1]), timestamp: noTimestamp}
	if m.magic != 0 && m.magic != 1 {
		return message{}, 0, fmt.Errorf("magic %d in a message set: %w", m.magic, ErrCorrupt)
	}
	if m.magic == 1 && size < msgMinSizeV1 {
		return message{}, 0, fmt.Errorf("size %d below the smallest magic 1 message: %w", size, ErrCorrupt)
	}
	if want, crc := binary.BigEndian.Uint32(b[12:]), crc32.ChecksumIEEE(b[msgMagicOffset:]); crc != want {
		return message{}, 0, fmt.Errorf("crc %#08x, want %#08x: %w", crc, want, ErrCorrupt)
	}
	rest := b[msgMagicOffset+2:]
	if m.magic == 1 {
		m.timestamp = int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
	}
	var err error
	if m.key, rest, err = readLegacyBytes(rest); err != nil {
		return message{}, 0, fmt.Errorf("key: %w", err)
	}
	if m.value, rest, err = readLegacyBytes(rest); err != nil {
		return message{}, 0, fmt.Errorf("value: %w", err)
	}
	if len(rest) != 0 {
		return message{}, 0, fmt.Errorf("%d bytes after the value: %w", len(rest), ErrCorrupt)
	}
	return m, len(b), nil
}

// readLegacyBytes reads an int32 length (-1 for null) and that many bytes.
func readLegacyBytes(b []byte) (v, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("short length: %w", ErrCorrupt)
	}
	n := int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	switch {
	case n == -1:
		return nil, b, nil
	case n < -1 || int64(n) > int64(len(b)):
		return nil, nil, fmt.Errorf("length %d with %d bytes left: %w", n, len(b), ErrCorrupt)
	}
	return b[:n:n], b[n:], nil
}

// batchWriter accumulates up-converted records into one RecordBatch v2.
type batchWriter struct {
	buf     []byte // HeaderSize bytes for the header, then the records
	n       int32  // records so far
	firstTS int64  // timestamp of the first record
	maxTS   int64  // largest timestamp
	codec   Codec  // of the last wrapper seen
}

// addShallow adds the records of m, a message of the outer set: m itself, or
// the messages inside it if it is a wrapper.
func (w *batchWriter) addShallow(m message) error {
	if m.magic == 1 && m.attrs&attrLogAppendTime != 0 {
		return fmt.Errorf("producer set timestamp type LogAppendTime: %w", ErrInvalidRecord)
	}
	switch c := m.codec(); c {
	case CodecNone:
		return w.add(m)
	case CodecGzip, CodecSnappy, CodecLZ4:
		if m.value == nil {
			return fmt.Errorf("%v message with a null value: %w", c, ErrCorrupt)
		}
		set, err := decompressLegacy(c, m.magic, m.value)
		if err != nil {
			return err
		}
		if len(set) == 0 {
			return fmt.Errorf("%v message holds no messages: %w", c, ErrCorrupt)
		}
		for pos := 0; pos < len(set); {
			im, n, err := readMessage(set[pos:])
			switch {
			case err != nil:
			case im.magic != m.magic:
				err = fmt.Errorf("magic %d inside a magic %d message: %w", im.magic, m.magic, ErrCorrupt)
			case im.codec() != CodecNone:
				err = fmt.Errorf("%v message inside a %v message: %w", im.codec(), c, ErrCorrupt)
			default:
				err = w.add(im)
			}
			if err != nil {
				return fmt.Errorf("inner message at byte %d: %w", pos, err)
			}
			pos += n
		}
		w.codec = c
		if limit := MaxDecompressedSize(); int64(len(w.buf)-HeaderSize) > limit {
			return fmt.Errorf("records over %d bytes uncompressed: %w", limit, ErrTooLarge)
		}
		return nil
	case CodecZstd:
		return fmt.Errorf("zstd in a magic %d message: %w", m.magic, ErrUnsupportedCompression)
	}
	return fmt.Errorf("unknown codec %d: %w", m.codec(), ErrCorrupt)
}

// add appends m, an uncompressed message, as the next record.
func (w *batchWriter) add(m message) error {
	if w.n == math.MaxInt32 {
		return fmt.Errorf("more than %d messages: %w", math.MaxInt32, ErrTooLarge)
	}
	if w.n == 0 {
		w.firstTS, w.maxTS = m.timestamp, m.timestamp
	}
	w.maxTS = max(w.maxTS, m.timestamp)
	// The delta may wrap for extreme timestamps; FirstTimestamp+delta wraps back.
	w.buf = AppendRecord(w.buf, Record{
		TimestampDelta: m.timestamp - w.firstTS,
		OffsetDelta:    w.n,
		Key:            m.key,
		Value:          m.value,
	})
	w.n++
	return nil
}

// finish compresses the records with w.codec and writes the header.
func (w *batchWriter) finish() ([]byte, error) {
	if w.n == 0 {
		return nil, fmt.Errorf("no messages: %w", ErrCorrupt)
	}
	buf := w.buf
	if w.codec != CodecNone {
		if limit := MaxDecompressedSize(); int64(len(buf)-HeaderSize) > limit {
			return nil, fmt.Errorf("records over %d bytes uncompressed: %w", limit, ErrTooLarge)
		}
		z, err := Compress(w.codec, buf[HeaderSize:])
		if err != nil {
			return nil, err
		}
		buf = append(buf[:HeaderSize], z...)
	}
	if len(buf)-12 > math.MaxInt32 {
		return nil, fmt.Errorf("batch of %d bytes: %w", len(buf), ErrTooLarge)
	}
	putHeader(buf, Header{
		Length:               int32(len(buf) - 12),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(w.codec),
		LastOffsetDelta:      w.n - 1,
		FirstTimestamp:       w.firstTS,
		MaxTimestamp:         w.maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		NumRecords:           w.n,
	})
	binary.BigEndian.PutUint32(buf[offCRC:], Checksum(buf))
	return buf, nil
}

// decompressLegacy decompresses a wrapper's value. Before Kafka 0.10, Kafka's
// lz4 framing computed the frame header checksum over the magic number as
// well as the frame descriptor (KAFKA-3160); magic 0 lz4 from such clients
// keeps that checksum, and Kafka has ignored the checksum for magic 0 since.
// So does this: the message CRC already covers the bytes.
func decompressLegacy(c Codec, magic int8, value []byte) ([]byte, error) {
	if c == CodecLZ4 && magic == 0 {
		value = fixLZ4HeaderChecksum(value)
	}
	return Decompress(c, value)
}

// LZ4 frame format: magic number, FLG and BD bytes, an optional 8-byte content
// size and 4-byte dictionary id (FLG bits 3 and 0), then the header checksum:
// the second byte of the xxHash32 (seed 0) of the descriptor from FLG on.
const (
	lz4FrameMagic      = 0x184D2204 // little-endian
	lz4FlagContentSize = 0x08
	lz4FlagDictID      = 0x01
)

// fixLZ4HeaderChecksum returns frame with a correct header checksum: frame
// itself if it has one or is not an lz4 frame, else a patched copy.
func fixLZ4HeaderChecksum(frame []byte) []byte {
	if len(frame) < 7 || binary.LittleEndian.Uint32(frame) != lz4FrameMagic {
		return frame
	}
	end, flg := 6, frame[4]
	if flg&lz4FlagContentSize != 0 {
		end += 8
	}
	if flg&lz4FlagDictID != 0 {
		end += 4
	}
	if len(frame) <= end {
		return frame
	}
	hc := byte(xxh32Short(frame[4:end]) >> 8)
	if frame[end] == hc {
		return frame
	}
	fixed := slices.Clone(frame)
	fixed[end] = hc
	return fixed
}

// xxHash32 primes, from the xxHash specification.
const (
	xxhPrime1 uint32 = 0x9E3779B1
	xxhPrime2 uint32 = 0x85EBCA77
	xxhPrime3 uint32 = 0xC2B2AE3D
	xxhPrime4 uint32 = 0x27D4EB2F
	xxhPrime5 uint32 = 0x165667B1
)

// xxh32Short returns the xxHash32 (seed 0) of b, which must be shorter than
// 16 bytes: longer inputs take the striped path this omits. An lz4 frame
// descriptor is at most 14 bytes.
func xxh32Short(b []byte) uint32 {
	if len(b) >= 16 {
		panic("xxh32Short: input of 16 bytes or more")
	}
	h := xxhPrime5 + uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * xxhPrime3
		h = bits.RotateLeft32(h, 17) * xxhPrime4
	}
	for _, c := range b {
		h += uint32(c) * xxhPrime5
		h = bits.RotateLeft32(h, 11) * xxhPrime1
	}
	h ^= h >> 15
	h *= xxhPrime2
	h ^= h >> 13
	h *= xxhPrime3
	h ^= h >> 16
	return h
}
