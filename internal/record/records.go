package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Record is one decoded record of a batch. Key and Value nil mean null.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte
	Headers        []RecordHeader
}

// RecordHeader is one record header. A nil Value means null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Offset returns the record's offset in a batch with header h.
func (r Record) Offset(h Header) int64 { return h.BaseOffset + int64(r.OffsetDelta) }

// Timestamp returns the record's timestamp in a batch with header h: the
// batch's MaxTimestamp for LogAppendTime batches, FirstTimestamp plus the
// record's delta otherwise.
func (r Record) Timestamp(h Header) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.FirstTimestamp + r.TimestampDelta
}

// minRecordSize is the smallest encoded record: length, attributes,
// timestamp delta, offset delta, key length, value length and header count,
// one byte each.
const minRecordSize = 7

// Records decodes, decompressing as needed, the records of the batch at the
// start of batch. It checks the magic and that the whole batch is present,
// not the CRC (see Validate). For uncompressed batches the returned keys,
// values and header values alias batch. Errors wrap ErrCorrupt,
// ErrUnsupportedMagic or ErrTooLarge.
func Records(batch []byte) (Header, []Record, error) {
	h, err := ReadHeader(batch)
	if err != nil {
		return Header{}, nil, err
	}
	switch {
	case h.Magic == 0 || h.Magic == 1:
		return h, nil, fmt.Errorf("magic %d: %w", h.Magic, ErrUnsupportedMagic)
	case h.Magic != 2:
		return h, nil, fmt.Errorf("magic %d: %w", h.Magic, ErrCorrupt)
	case h.Length < minLength || int64(h.Size()) > int64(len(batch)):
		return h, nil, fmt.Errorf("length %d with %d bytes: %w", h.Length, len(batch), ErrCorrupt)
	case h.NumRecords < 0:
		return h, nil, fmt.Errorf("%d records: %w", h.NumRecords, ErrCorrupt)
	}
	data := batch[HeaderSize:h.Size()]
	if c := h.Codec(); c != CodecNone {
		data, err = Decompress(c, data)
		if err != nil {
			return h, nil, err
		}
	}
	if int64(h.NumRecords) > int64(len(data)/minRecordSize) {
		return h, nil, fmt.Errorf("%d records in %d bytes: %w", h.NumRecords, len(data), ErrCorrupt)
	}
	recs := make([]Record, h.NumRecords)
	d := decoder{b: data}
	for i := range recs {
		if err := d.record(&recs[i]); err != nil {
			return h, nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	if len(d.b) != 0 {
		return h, nil, fmt.Errorf("%d bytes after the last record: %w", len(d.b), ErrCorrupt)
	}
	return h, recs, nil
}

// decoder reads Kafka's zig-zag varints and length-prefixed fields.
type decoder struct{ b []byte }

func (d *decoder) varlong() (int64, error) {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		return 0, fmt.Errorf("bad varint: %w", ErrCorrupt)
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) varint() (int32, error) {
	v, err := d.varlong()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("varint %d out of range: %w", v, ErrCorrupt)
	}
	return int32(v), nil
}

// bytes reads a varint length and that many bytes; length -1 is null.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n < -1 || int64(n) > int64(len(d.b)) {
		return nil, fmt.Errorf("field length %d with %d bytes left: %w", n, len(d.b), ErrCorrupt)
	}
	if n == -1 {
		return nil, nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) record(r *Record) error {
	length, err := d.varint()
	if err != nil {
		return err
	}
	if length < 0 || int64(length) > int64(len(d.b)) {
		return fmt.Errorf("record length %d with %d bytes left: %w", length, len(d.b), ErrCorrupt)
	}
	rest := d.b[length:]
	d.b = d.b[:length]
	defer func() { d.b = rest }()

	if len(d.b) < 1 {
		return fmt.Errorf("short record: %w", ErrCorrupt)
	}
	r.Attributes = int8(d.b[0])
	d.b = d.b[1:]
	if r.TimestampDelta, err = d.varlong(); err != nil {
		return err
	}
	if r.OffsetDelta, err = d.varint(); err != nil {
		return err
	}
	if r.Key, err = d.bytes(); err != nil {
		return err
	}
	if r.Value, err = d.bytes(); err != nil {
		return err
	}
	nh, err := d.varint()
	if err != nil {
		return err
	}
	// Each header takes at least two bytes (two lengths).
	if nh < 0 || int64(nh) > int64(len(d.b)/2) {
		return fmt.Errorf("%d headers with %d bytes left: %w", nh, len(d.b), ErrCorrupt)
	}
	if nh > 0 {
		r.Headers = make([]RecordHeader, nh)
		for i := range r.Headers {
			k, err := d.bytes()
			if err != nil {
				return err
			}
			if k == nil {
				return fmt.Errorf("null header key: %w", ErrCorrupt)
			}
			r.Headers[i].Key = string(k)
			if r.Headers[i].Value, err = d.bytes(); err != nil {
				return err
			}
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d bytes left in record: %w", len(d.b), ErrCorrupt)
	}
	return nil
}

// AppendRecord appends the wire encoding of r (length prefix included) to dst.
func AppendRecord(dst []byte, r Record) []byte {
	dst = binary.AppendVarint(dst, int64(recordBodySize(r)))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func varintSize(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func bytesSize(b []byte) int {
	if b == nil {
		return 1
	}
	return varintSize(int64(len(b))) + len(b)
}

// recordBodySize returns the encoded size of r after its length prefix.
func recordBodySize(r Record) int {
	n := 1 + varintSize(r.TimestampDelta) + varintSize(int64(r.OffsetDelta)) +
		bytesSize(r.Key) + bytesSize(r.Value) + varintSize(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintSize(int64(len(h.Key))) + len(h.Key) + bytesSize(h.Value)
	}
	return n
}

// Build encodes a batch holding recs. It takes BaseOffset,
// PartitionLeaderEpoch, Attributes (codec bits included), LastOffsetDelta,
// FirstTimestamp, MaxTimestamp, ProducerID, ProducerEpoch and BaseSequence
// from h, sets Magic to 2, computes Length, NumRecords and the CRC, and
// compresses the records with h.Codec(). The records' OffsetDelta and
// TimestampDelta are written as given, so the caller keeps them consistent
// with h. Build does not reject an empty recs, but Validate does.
func Build(h Header, recs []Record) ([]byte, error) {
	size := 0
	for _, r := range recs {
		body := recordBodySize(r)
		size += varintSize(int64(body)) + body
	}
	buf := make([]byte, HeaderSize, HeaderSize+size)
	for _, r := range recs {
		buf = AppendRecord(buf, r)
	}
	if c := h.Codec(); c != CodecNone {
		z, err := Compress(c, buf[HeaderSize:])
		if err != nil {
			return nil, fmt.Errorf("build batch: %w", err)
		}
		buf = append(buf[:HeaderSize], z...)
	}
	if len(buf)-12 > math.MaxInt32 {
		return nil, fmt.Errorf("build batch: %d bytes: %w", len(buf), ErrTooLarge)
	}
	h.Magic = 2
	h.Length = int32(len(buf) - 12)
	h.NumRecords = int32(len(recs))
	h.CRC = 0
	putHeader(buf, h)
	binary.BigEndian.PutUint32(buf[offCRC:], Checksum(buf))
	return buf, nil
}
