package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyCodecs are the codecs a magic 0 or 1 message can carry.
var legacyCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4}

// legacyMessage encodes one message with kmsg's types, computing its size and
// CRC-32 (IEEE) here, independently of messageset.go.
func legacyMessage(magic int8, offset int64, attrs int8, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: attrs, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: magic, Attributes: attrs, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b
}

// legacyWrapper compresses inner with c into a wrapper message.
func legacyWrapper(t testing.TB, magic int8, c Codec, offset, ts int64, inner []byte) []byte {
	t.Helper()
	z, err := Compress(c, inner)
	if err != nil {
		t.Fatal(err)
	}
	return legacyMessage(magic, offset, int8(c), ts, nil, z)
}

// plainSet returns n uncompressed messages of the given magic, with
// timestamps 1000+i (magic 1), relative offsets 0..n-1 and nulls mixed in.
func plainSet(magic int8, n int) []byte {
	var b []byte
	for i := range n {
		var key, value []byte
		if i%3 != 0 {
			key = fmt.Appendf(nil, "key-%d", i)
		}
		if i%4 != 1 {
			value = fmt.Appendf(nil, "value-%d-%s", i, bytes.Repeat([]byte("y"), i%13))
		}
		b = append(b, legacyMessage(magic, int64(i), 0, 1000+int64(i), key, value)...)
	}
	return b
}

// msg is a decoded message or record: an absolute offset, its timestamp
// (-1 for magic 0) and nullable key and value.
type msg struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
}

// shallow is a message of the outer set, as kmsg decodes it.
type shallow struct {
	Offset    int64
	Magic     int8
	Attrs     int8
	Timestamp int64
	KeyNull   bool
}

// decodeSet decodes a message set with kmsg, checking each message's size
// and CRC, recursing into wrappers (decompressed with Decompress) and
// resolving inner offsets as the message format specifies. It returns the
// outer messages and the flattened records.
func decodeSet(t *testing.T, b []byte) ([]shallow, []msg) {
	t.Helper()
	var outer []shallow
	var recs []msg
	for len(b) > 0 {
		m, n := decodeMessage(t, b)
		b = b[n:]
		outer = append(outer, shallow{Offset: m.Offset, Magic: m.Magic, Attrs: m.Attributes, Timestamp: m.Timestamp, KeyNull: m.Key == nil})
		c := Codec(m.Attributes & 7)
		if c == CodecNone {
			recs = append(recs, msg{Offset: m.Offset, Timestamp: m.Timestamp, Key: m.Key, Value: m.Value})
			continue
		}
		set, err := Decompress(c, m.Value)
		if err != nil {
			t.Fatalf("decompress wrapper: %v", err)
		}
		var inner []kmsg.MessageV1
		for len(set) > 0 {
			im, n := decodeMessage(t, set)
			set = set[n:]
			if im.Magic != m.Magic || im.Attributes&7 != 0 {
				t.Fatalf("inner message magic %d attrs %d in magic %d wrapper", im.Magic, im.Attributes, m.Magic)
			}
			inner = append(inner, im)
		}
		base := int64(0)
		if m.Magic == 1 {
			base = m.Offset - inner[len(inner)-1].Offset
		} else if last := inner[len(inner)-1].Offset; last != m.Offset {
			t.Fatalf("magic 0 wrapper offset %d, last inner %d", m.Offset, last)
		}
		for _, im := range inner {
			ts := im.Timestamp
			if m.Attributes&attrLogAppendTime != 0 {
				ts = m.Timestamp
			}
			recs = append(recs, msg{Offset: base + im.Offset, Timestamp: ts, Key: im.Key, Value: im.Value})
		}
	}
	return outer, recs
}

// decodeMessage decodes the message at the start of b as a MessageV1
// (timestamp -1 for magic 0) and returns its size.
func decodeMessage(t *testing.T, b []byte) (kmsg.MessageV1, int) {
	t.Helper()
	if len(b) < 17 {
		t.Fatalf("short message: %x", b)
	}
	n := 12 + int(binary.BigEndian.Uint32(b[8:]))
	if n > len(b) {
		t.Fatalf("message of %d bytes, %d left", n, len(b))
	}
	if crc := crc32.ChecksumIEEE(b[16:n]); crc != binary.BigEndian.Uint32(b[12:]) {
		t.Fatalf("message crc %#x, field %#x", crc, binary.BigEndian.Uint32(b[12:]))
	}
	var m kmsg.MessageV1
	switch b[16] {
	case 0:
		var m0 kmsg.MessageV0
		if err := m0.ReadFrom(b[:n]); err != nil {
			t.Fatalf("kmsg MessageV0: %v", err)
		}
		m = kmsg.MessageV1{Offset: m0.Offset, MessageSize: m0.MessageSize, CRC: m0.CRC, Magic: 0, Attributes: m0.Attributes, Timestamp: -1, Key: m0.Key, Value: m0.Value}
	case 1:
		if err := m.ReadFrom(b[:n]); err != nil {
			t.Fatalf("kmsg MessageV1: %v", err)
		}
	default:
		t.Fatalf("magic %d", b[16])
	}
	return m, n
}

// batchMsgs returns the records of a v2 batch as msgs.
func batchMsgs(t testing.TB, batch []byte) (Header, []msg) {
	t.Helper()
	h, recs, err := Records(batch)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	out := make([]msg, len(recs))
	for i, r := range recs {
		out[i] = msg{Offset: r.Offset(h), Timestamp: r.Timestamp(h), Key: r.Key, Value: r.Value}
	}
	return h, out
}

// upConverted checks that b is one valid producer batch as UpConvert must
// produce it, and returns its header and records.
func upConverted(t *testing.T, b []byte) (Header, []msg) {
	t.Helper()
	hs, err := ValidateProduce(b)
	if err != nil {
		t.Fatalf("ValidateProduce(UpConvert): %v", err)
	}
	if len(hs) != 1 {
		t.Fatalf("UpConvert made %d batches", len(hs))
	}
	h := hs[0]
	if h.BaseOffset != 0 || h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 ||
		h.PartitionLeaderEpoch != -1 || h.LogAppendTime() || h.Control() || h.Transactional() {
		t.Errorf("UpConvert header %+v", h)
	}
	h, recs := batchMsgs(t, b)
	var maxTS int64 = math.MinInt64
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.Offset)
		}
		maxTS = max(maxTS, r.Timestamp)
	}
	if h.MaxTimestamp != maxTS || h.FirstTimestamp != recs[0].Timestamp {
		t.Errorf("first/max timestamp %d/%d, records say %d/%d", h.FirstTimestamp, h.MaxTimestamp, recs[0].Timestamp, maxTS)
	}
	return h, recs
}

func TestIsMessageSet(t *testing.T) {
	for _, tt := range []struct {
		b    []byte
		want bool
	}{
		{plainSet(0, 1), true},
		{plainSet(1, 1), true},
		{buildBatch(t, CodecNone, 1), false},
		{nil, false},
		{make([]byte, 16), false},
		{make([]byte, 17), true},
	} {
		if got := IsMessageSet(tt.b); got != tt.want {
			t.Errorf("IsMessageSet(%x...) = %v", tt.b[:min(len(tt.b), 20)], got)
		}
	}
}

// TestHandBuiltMessages checks the exact bytes of one message of each magic,
// its CRC computed outside Go (Python's zlib.crc32 over magic..end).
func TestHandBuiltMessages(t *testing.T) {
	v0 := []byte{
		0, 0, 0, 0, 0, 0, 0, 5, // offset 5
		0, 0, 0, 20, // message size
		0xa4, 0xcd, 0xab, 0x3a, // crc
		0, 0, // magic 0, attributes
		0, 0, 0, 1, 'k', // key
		0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', // value
	}
	v1 := []byte{
		0, 0, 0, 0, 0, 0, 0, 5, // offset 5
		0, 0, 0, 27, // message size
		0x8e, 0xe3, 0x0b, 0xba, // crc
		1, 0, // magic 1, attributes
		0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // timestamp 1700000000000
		0xff, 0xff, 0xff, 0xff, // null key
		0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', // value
	}
	if got := crc32.ChecksumIEEE(v0[16:]); got != 0xa4cdab3a {
		t.Fatalf("hash/crc32 IEEE of the v0 message = %#x", got)
	}
	for _, tt := range []struct {
		magic int8
		want  []byte
		rec   Record
	}{
		{0, v0, Record{Key: []byte("k"), Value: []byte("hello")}},
		{1, v1, Record{Value: []byte("hello")}},
	} {
		batch, err := Build(Header{BaseOffset: 5, FirstTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000}, []Record{tt.rec})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DownConvert(batch, tt.magic)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("magic %d: DownConvert\n got %x\nwant %x", tt.magic, got, tt.want)
		}
		if kb := legacyMessage(tt.magic, 5, 0, 1_700_000_000_000, tt.rec.Key, tt.rec.Value); !bytes.Equal(kb, tt.want) {
			t.Errorf("magic %d: kmsg encoding\n got %x\nwant %x", tt.magic, kb, tt.want)
		}
		up, err := UpConvert(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		_, recs := upConverted(t, up)
		ts := int64(1_700_000_000_000)
		if tt.magic == 0 {
			ts = -1
		}
		want := []msg{{Offset: 0, Timestamp: ts, Key: tt.rec.Key, Value: tt.rec.Value}}
		if diff := cmp.Diff(want, recs); diff != "" {
			t.Errorf("magic %d: UpConvert records (-want +got):\n%s", tt.magic, diff)
		}
	}
}

// TestRoundTrip builds v2 batches, down-converts them to both magics, checks
// the message sets with kmsg, and up-converts them back.
func TestRoundTrip(t *testing.T) {
	for _, c := range legacyCodecs {
		for _, magic := range []int8{0, 1} {
			for _, n := range []int{1, 7, 100} {
				t.Run(fmt.Sprintf("%v/magic%d/%d", c, magic, n), func(t *testing.T) {
					batch := buildBatch(t, c, n)
					h, want := batchMsgs(t, batch)
					if magic == 0 {
						for i := range want {
							want[i].Timestamp = -1
						}
					}
					down, err := DownConvert(batch, magic)
					if err != nil {
						t.Fatal(err)
					}
					outer, got := decodeSet(t, down)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("down-converted records (-want +got):\n%s", diff)
					}
					wrapped := c != CodecNone && !(c == CodecLZ4 && magic == 0)
					if wrapped {
						wantOuter := []shallow{{Offset: h.LastOffset(), Magic: magic, Attrs: int8(c), Timestamp: -1, KeyNull: true}}
						if magic == 1 {
							wantOuter[0].Timestamp = h.MaxTimestamp
						}
						if diff := cmp.Diff(wantOuter, outer); diff != "" {
							t.Fatalf("wrapper (-want +got):\n%s", diff)
						}
					} else {
						for _, m := range outer {
							if m.Attrs != 0 || m.Magic != magic {
								t.Fatalf("plain message %+v", m)
							}
						}
					}

					up, err := UpConvert(down)
					if err != nil {
						t.Fatal(err)
					}
					uh, urecs := upConverted(t, up)
					wantCodec := c
					if !wrapped {
						wantCodec = CodecNone
					}
					if uh.Codec() != wantCodec {
						t.Errorf("up-converted codec %v, want %v", uh.Codec(), wantCodec)
					}
					for i := range want {
						want[i].Offset = int64(i)
					}
					if diff := cmp.Diff(want, urecs); diff != "" {
						t.Fatalf("up-converted records (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// TestNullsBothWays checks that null and empty keys and values stay distinct.
func TestNullsBothWays(t *testing.T) {
	recs := []Record{
		{OffsetDelta: 0},
		{OffsetDelta: 1, Key: []byte{}, Value: []byte{}},
		{OffsetDelta: 2, Value: []byte("v")},
		{OffsetDelta: 3, Key: []byte("k")},
	}
	for _, c := range legacyCodecs {
		for _, magic := range []int8{0, 1} {
			h := Header{BaseOffset: 50, Attributes: int16(c), LastOffsetDelta: 3, FirstTimestamp: 9, MaxTimestamp: 9}
			batch, err := Build(h, recs)
			if err != nil {
				t.Fatal(err)
			}
			down, err := DownConvert(batch, magic)
			if err != nil {
				t.Fatal(err)
			}
			_, got := decodeSet(t, down)
			up, err := UpConvert(down)
			if err != nil {
				t.Fatal(err)
			}
			_, back := upConverted(t, up)
			for i, r := range recs {
				for _, m := range []msg{got[i], back[i]} {
					if (m.Key == nil) != (r.Key == nil) || (m.Value == nil) != (r.Value == nil) ||
						!bytes.Equal(m.Key, r.Key) || !bytes.Equal(m.Value, r.Value) {
						t.Errorf("%v magic %d record %d: key %q value %q, want %q %q", c, magic, i, m.Key, m.Value, r.Key, r.Value)
					}
				}
			}
		}
	}
}

// TestDownConvertBatches covers several batches in one read: a control batch
// (skipped), a compacted batch with gaps in its offsets, and mixed codecs.
func TestDownConvertBatches(t *testing.T) {
	build := func(h Header, recs []Record) []byte {
		t.Helper()
		b, err := Build(h, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rec := func(delta int32, tsDelta int64, v string) Record {
		return Record{OffsetDelta: delta, TimestampDelta: tsDelta, Key: []byte("k" + v), Value: []byte(v)}
	}
	var all []byte
	all = append(all, build(Header{BaseOffset: 0, LastOffsetDelta: 2, FirstTimestamp: 100, MaxTimestamp: 102},
		[]Record{rec(0, 0, "a"), rec(1, 1, "b"), rec(2, 2, "c")})...)
	all = append(all, build(Header{BaseOffset: 3, Attributes: attrControl, FirstTimestamp: 103, MaxTimestamp: 103},
		[]Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})...)
	all = append(all, build(Header{BaseOffset: 4, Attributes: int16(CodecGzip), LastOffsetDelta: 6, FirstTimestamp: 200, MaxTimestamp: 250},
		[]Record{rec(1, 50, "d"), rec(3, -10, "e"), rec(5, 20, "f")})...) // compacted: offsets 5, 7, 9 of 4..10
	all = append(all, build(Header{BaseOffset: 11, Attributes: int16(CodecSnappy), LastOffsetDelta: 1, FirstTimestamp: 300, MaxTimestamp: 301},
		[]Record{rec(0, 0, "g"), rec(1, 1, "h")})...)

	want := []msg{
		{0, 100, []byte("ka"), []byte("a")}, {1, 101, []byte("kb"), []byte("b")}, {2, 102, []byte("kc"), []byte("c")},
		{5, 250, []byte("kd"), []byte("d")}, {7, 190, []byte("ke"), []byte("e")}, {9, 220, []byte("kf"), []byte("f")},
		{11, 300, []byte("kg"), []byte("g")}, {12, 301, []byte("kh"), []byte("h")},
	}
	for _, magic := range []int8{0, 1} {
		down, err := DownConvert(all, magic)
		if err != nil {
			t.Fatal(err)
		}
		outer, got := decodeSet(t, down)
		w := append([]msg(nil), want...)
		if magic == 0 {
			for i := range w {
				w[i].Timestamp = -1
			}
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("magic %d records (-want +got):\n%s", magic, diff)
		}
		// Three plain messages, then two wrappers carrying their last offset.
		if len(outer) != 5 || outer[3].Offset != 9 || outer[3].Attrs != int8(CodecGzip) || outer[4].Offset != 12 {
			t.Errorf("magic %d outer messages %+v", magic, outer)
		}
		if magic == 1 && outer[3].Timestamp != 250 {
			t.Errorf("gzip wrapper timestamp %d, want the largest inner, 250", outer[3].Timestamp)
		}
		// Magic 1 inner offsets are relative to the first inner message.
		if magic == 1 {
			m, _ := decodeMessage(t, down[messageStart(down, 3):])
			inner, err := Decompress(CodecGzip, m.Value)
			if err != nil {
				t.Fatal(err)
			}
			var rel []int64
			for len(inner) > 0 {
				im, n := decodeMessage(t, inner)
				rel = append(rel, im.Offset)
				inner = inner[n:]
			}
			if !slices.Equal(rel, []int64{0, 2, 4}) {
				t.Errorf("relative inner offsets %v, want [0 2 4]", rel)
			}
		}

		// Up-converted: one batch of all eight, in the last wrapper's codec.
		up, err := UpConvert(down)
		if err != nil {
			t.Fatal(err)
		}
		h, back := upConverted(t, up)
		if h.Codec() != CodecSnappy || len(back) != len(w) {
			t.Fatalf("up-converted %d records, codec %v", len(back), h.Codec())
		}
		for i := range back {
			if back[i].Timestamp != w[i].Timestamp || !bytes.Equal(back[i].Value, w[i].Value) {
				t.Errorf("up-converted record %d = %+v, want %+v", i, back[i], w[i])
			}
		}
	}
}

// messageStart returns the byte position of the i-th message of set.
func messageStart(set []byte, i int) int {
	pos := 0
	for ; i > 0; i-- {
		pos += 12 + int(binary.BigEndian.Uint32(set[pos+8:]))
	}
	return pos
}

func TestDownConvertLogAppendTime(t *testing.T) {
	for _, c := range []Codec{CodecNone, CodecGzip} {
		h := testHeader(c, 5)
		h.Attributes |= attrLogAppendTime
		h.MaxTimestamp = 1_800_000_000_000
		batch, err := Build(h, testRecords(5))
		if err != nil {
			t.Fatal(err)
		}
		down, err := DownConvert(batch, 1)
		if err != nil {
			t.Fatal(err)
		}
		outer, got := decodeSet(t, down)
		for _, m := range outer {
			if m.Attrs&attrLogAppendTime == 0 || m.Timestamp != h.MaxTimestamp {
				t.Errorf("%v: outer message %+v, want LogAppendTime at %d", c, m, h.MaxTimestamp)
			}
		}
		for _, r := range got {
			if r.Timestamp != h.MaxTimestamp {
				t.Errorf("%v: record timestamp %d, want %d", c, r.Timestamp, h.MaxTimestamp)
			}
		}
		// The inner messages of a wrapper carry it too, as Kafka writes them.
		if c == CodecGzip {
			m, _ := decodeMessage(t, down)
			inner, _ := Decompress(CodecGzip, m.Value)
			if im, _ := decodeMessage(t, inner); im.Attributes != attrLogAppendTime || im.Timestamp != h.MaxTimestamp {
				t.Errorf("inner message %+v", im)
			}
		}
		// A producer may not claim LogAppendTime.
		if _, err := UpConvert(down); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%v: UpConvert of LogAppendTime messages = %v, want ErrInvalidRecord", c, err)
		}
		// Magic 0 has no timestamp type.
		down0, err := DownConvert(batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		outer0, _ := decodeSet(t, down0)
		for _, m := range outer0 {
			if m.Attrs&^attrCodecMask != 0 {
				t.Errorf("%v: magic 0 message attributes %#x", c, m.Attrs)
			}
		}
	}
}

func TestDownConvertErrors(t *testing.T) {
	good := buildBatch(t, CodecGzip, 3)
	zstd := buildBatch(t, CodecZstd, 3)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	tests := []struct {
		name  string
		b     []byte
		magic int8
		want  error
	}{
		{"magic2", good, 2, ErrUnsupportedMagic},
		{"magic-1", good, -1, ErrUnsupportedMagic},
		{"zstd", zstd, 1, ErrUnsupportedCompression},
		{"zstd-after-good", append(bytes.Clone(good), zstd...), 0, ErrUnsupportedCompression},
		{"crc", bad, 1, ErrCorrupt},
		{"short", good[:len(good)-1], 1, ErrCorrupt},
		{"trailing", append(bytes.Clone(good), 0, 0, 0), 1, ErrCorrupt},
		{"message-set", plainSet(1, 2), 1, ErrUnsupportedMagic},
	}
	for _, tt := range tests {
		if _, err := DownConvert(tt.b, tt.magic); !errors.Is(err, tt.want) {
			t.Errorf("%s: DownConvert = %v, want %v", tt.name, err, tt.want)
		}
	}
	// Nothing, or only control batches, converts to nothing.
	ctrl, err := Build(Header{Attributes: attrControl}, []Record{{Key: []byte{0, 0, 0, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{nil, ctrl} {
		if out, err := DownConvert(b, 1); err != nil || len(out) != 0 {
			t.Errorf("DownConvert(%d bytes) = %x, %v; want nothing", len(b), out, err)
		}
	}
}

func TestUpConvertWrappers(t *testing.T) {
	// Several wrappers and plain messages make one batch in the last
	// wrapper's codec, records in order.
	for _, magic := range []int8{0, 1} {
		var set []byte
		set = append(set, legacyWrapper(t, magic, CodecGzip, 2, 1002, plainSet(magic, 3))...)
		set = append(set, plainSet(magic, 2)...)
		set = append(set, legacyWrapper(t, magic, CodecLZ4, 3, 1003, plainSet(magic, 4))...)
		set = append(set, legacyWrapper(t, magic, CodecSnappy, 1, 1001, plainSet(magic, 2))...)
		up, err := UpConvert(set)
		if err != nil {
			t.Fatal(err)
		}
		h, recs := upConverted(t, up)
		_, want := decodeSet(t, set)
		if h.Codec() != CodecSnappy || len(recs) != len(want) {
			t.Fatalf("magic %d: %d records in %v", magic, len(recs), h.Codec())
		}
		for i := range recs {
			want[i].Offset = int64(i)
		}
		if diff := cmp.Diff(want, recs); diff != "" {
			t.Errorf("magic %d records (-want +got):\n%s", magic, diff)
		}
	}
	// Snappy wrappers from the Java client are xerial-framed.
	inner := plainSet(1, 5)
	xerial := legacyMessage(1, 4, int8(CodecSnappy), 0, nil, xerialFrame(inner, 64))
	up, err := UpConvert(xerial)
	if err != nil {
		t.Fatal(err)
	}
	if _, recs := upConverted(t, up); len(recs) != 5 {
		t.Errorf("xerial wrapper gave %d records", len(recs))
	}
}

func TestUpConvertErrors(t *testing.T) {
	withTrailing := func(magic int8) []byte {
		// A message whose size covers a byte after its value, CRC intact.
		b := legacyMessage(magic, 0, 0, 1, []byte("k"), []byte("v"))
		b = append(b, 0)
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
		return b
	}
	gz, err := Compress(CodecGzip, plainSet(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"tiny", []byte{0, 0, 0}, ErrCorrupt},
		{"trailing-garbage", append(plainSet(1, 2), 0, 0, 0, 0, 0), ErrCorrupt},
		{"size-negative", func() []byte { b := plainSet(0, 1); binary.BigEndian.PutUint32(b[8:], 0xfffffff0); return b }(), ErrCorrupt},
		{"size-small", func() []byte { b := plainSet(0, 1); binary.BigEndian.PutUint32(b[8:], 13); return b }(), ErrCorrupt},
		{"v1-size-small", legacyMessage(1, 0, 0, 0, nil, nil)[:26], ErrCorrupt},
		{"bytes-after-value-v0", withTrailing(0), ErrCorrupt},
		{"bytes-after-value-v1", withTrailing(1), ErrCorrupt},
		{"key-length", legacyMessage(0, 0, 0, 0, []byte("k"), []byte("v"))[:25], ErrCorrupt},
		{"magic2-batch", buildBatch(t, CodecNone, 2), ErrCorrupt},
		{"magic2-inside", legacyWrapper(t, 1, CodecGzip, 0, 0, buildBatch(t, CodecNone, 2)), ErrCorrupt},
		{"nested", legacyWrapper(t, 1, CodecGzip, 0, 0, legacyWrapper(t, 1, CodecGzip, 0, 0, plainSet(1, 2))), ErrCorrupt},
		{"magic0-in-magic1", legacyWrapper(t, 1, CodecSnappy, 0, 0, plainSet(0, 2)), ErrCorrupt},
		{"magic1-in-magic0", legacyWrapper(t, 0, CodecSnappy, 0, 0, plainSet(1, 2)), ErrCorrupt},
		{"null-wrapper", legacyMessage(1, 0, int8(CodecGzip), 0, nil, nil), ErrCorrupt},
		{"empty-wrapper", legacyWrapper(t, 1, CodecGzip, 0, 0, nil), ErrCorrupt},
		{"garbage-wrapper", legacyMessage(0, 0, int8(CodecGzip), 0, nil, []byte("not gzip")), ErrCorrupt},
		{"truncated-inner", legacyWrapper(t, 1, CodecLZ4, 0, 0, plainSet(1, 3)[:40]), ErrCorrupt},
		{"codec5", legacyMessage(1, 0, 5, 0, nil, []byte("x")), ErrCorrupt},
		{"zstd", legacyMessage(1, 0, int8(CodecZstd), 0, nil, []byte("x")), ErrUnsupportedCompression},
		{"log-append-time", legacyMessage(1, 0, attrLogAppendTime, 5, nil, []byte("x")), ErrInvalidRecord},
		{"log-append-time-wrapper", legacyMessage(1, 0, attrLogAppendTime|int8(CodecGzip), 5, nil, gz), ErrInvalidRecord},
	}
	for _, tt := range tests {
		if out, err := UpConvert(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: UpConvert = %x, %v; want %v", tt.name, out, err, tt.want)
		}
	}
}

// TestUpConvertTruncated cuts valid sets at every length: a cut at a message
// boundary is a shorter valid set, any other cut is corrupt.
func TestUpConvertTruncated(t *testing.T) {
	for _, magic := range []int8{0, 1} {
		set := append(plainSet(magic, 3), legacyWrapper(t, magic, CodecGzip, 5, 7, plainSet(magic, 3))...)
		boundaries := map[int]bool{}
		for pos := 0; pos < len(set); {
			pos += 12 + int(binary.BigEndian.Uint32(set[pos+8:]))
			boundaries[pos] = true
		}
		for n := 0; n < len(set); n++ {
			_, err := UpConvert(set[:n])
			switch {
			case boundaries[n] && err != nil:
				t.Errorf("magic %d: UpConvert of the first %d bytes (whole messages): %v", magic, n, err)
			case !boundaries[n] && !errors.Is(err, ErrCorrupt):
				t.Errorf("magic %d: UpConvert of the first %d bytes = %v, want ErrCorrupt", magic, n, err)
			}
		}
	}
}

// TestUpConvertEveryByte flips every byte a message's CRC or size covers; the
// offset alone is free (the broker assigns offsets).
func TestUpConvertEveryByte(t *testing.T) {
	for _, set := range [][]byte{
		legacyMessage(0, 3, 0, 0, []byte("key"), []byte("value")),
		legacyMessage(1, 3, 0, 77, []byte("key"), nil),
		legacyWrapper(t, 1, CodecSnappy, 3, 77, plainSet(1, 2)),
	} {
		for i := range set {
			b := bytes.Clone(set)
			b[i] ^= 0x40
			_, err := UpConvert(b)
			if i < 8 {
				if err != nil {
					t.Errorf("flip in offset byte %d: %v", i, err)
				}
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("flip at byte %d of %d: UpConvert = %v, want ErrCorrupt", i, len(set), err)
			}
		}
	}
}

func TestUpConvertTooLarge(t *testing.T) {
	t.Cleanup(func() { SetMaxDecompressedSize(0) })
	SetMaxDecompressedSize(4 << 10)
	var set []byte
	for range 4 {
		inner := legacyMessage(1, 0, 0, 0, nil, bytes.Repeat([]byte("z"), 2<<10))
		set = append(set, legacyWrapper(t, 1, CodecGzip, 0, 0, inner)...)
	}
	// Each wrapper is within the bound; together they are not.
	if _, err := UpConvert(set); !errors.Is(err, ErrTooLarge) {
		t.Errorf("UpConvert = %v, want ErrTooLarge", err)
	}
	if _, err := UpConvert(set[:len(set)/4]); err != nil {
		t.Errorf("one wrapper: %v", err)
	}
}

// TestXXH32 checks the short-input xxHash32 against the specification's
// published values and against the header checksums pierrec/lz4 writes.
func TestXXH32(t *testing.T) {
	for in, want := range map[string]uint32{"": 0x02CC5D05, "a": 0x550D7456, "abc": 0x32D153FF} {
		if got := xxh32Short([]byte(in)); got != want {
			t.Errorf("xxh32(%q) = %#08x, want %#08x", in, got, want)
		}
	}
	src := bytes.Repeat([]byte("fjord "), 1000)
	for _, opts := range [][]lz4.Option{
		nil,
		{lz4.SizeOption(uint64(len(src)))},
		{lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false), lz4.BlockChecksumOption(true)},
	} {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if err := w.Apply(opts...); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(src); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		frame := buf.Bytes()
		end := 6
		if frame[4]&lz4FlagContentSize != 0 {
			end += 8
		}
		if got := byte(xxh32Short(frame[4:end]) >> 8); got != frame[end] {
			t.Errorf("options %d: header checksum %#02x, pierrec wrote %#02x", len(opts), got, frame[end])
		}
		if fixed := fixLZ4HeaderChecksum(frame); &fixed[0] != &frame[0] {
			t.Errorf("options %d: a correct frame was copied", len(opts))
		}
	}
}

// kafka3160Frame returns src as an lz4 frame whose header checksum is computed
// the way Kafka before 0.10 computed it: over the magic number too.
func kafka3160Frame(t *testing.T, src []byte) []byte {
	t.Helper()
	frame, err := Compress(CodecLZ4, src)
	if err != nil {
		t.Fatal(err)
	}
	if frame[4]&(lz4FlagContentSize|lz4FlagDictID) != 0 {
		t.Fatalf("frame descriptor has optional fields: FLG %#02x", frame[4])
	}
	broken := bytes.Clone(frame)
	broken[6] = byte(xxh32Short(frame[:6]) >> 8)
	if broken[6] == frame[6] {
		t.Fatal("broken and correct header checksums coincide")
	}
	return broken
}

func TestUpConvertKafka3160(t *testing.T) {
	inner0, inner1 := plainSet(0, 4), plainSet(1, 4)
	if _, err := Decompress(CodecLZ4, kafka3160Frame(t, inner0)); err == nil {
		t.Fatal("the lz4 reader accepts a KAFKA-3160 header checksum; the test proves nothing")
	}
	up, err := UpConvert(legacyMessage(0, 3, int8(CodecLZ4), 0, nil, kafka3160Frame(t, inner0)))
	if err != nil {
		t.Fatalf("magic 0 lz4 with the pre-0.10 header checksum: %v", err)
	}
	h, recs := upConverted(t, up)
	if h.Codec() != CodecLZ4 || len(recs) != 4 {
		t.Errorf("got %d records in %v", len(recs), h.Codec())
	}
	// Magic 1 lz4 has always had the correct checksum; Kafka checks it.
	if _, err := UpConvert(legacyMessage(1, 3, int8(CodecLZ4), 0, nil, kafka3160Frame(t, inner1))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("magic 1 lz4 with the pre-0.10 header checksum: %v, want ErrCorrupt", err)
	}
}

// TestMixedMagic: plain messages of both magics may share a set; magic 0
// ones get no timestamp.
func TestMixedMagic(t *testing.T) {
	set := append(legacyMessage(1, 0, 0, 500, []byte("a"), []byte("1")), legacyMessage(0, 0, 0, 0, []byte("b"), []byte("2"))...)
	set = append(set, legacyMessage(1, 0, 0, 400, nil, []byte("3"))...)
	up, err := UpConvert(set)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := upConverted(t, up)
	want := []msg{{0, 500, []byte("a"), []byte("1")}, {1, -1, []byte("b"), []byte("2")}, {2, 400, nil, []byte("3")}}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func BenchmarkDownConvert(b *testing.B) {
	for _, c := range legacyCodecs {
		batch := buildBatch(b, c, 500)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DownConvert(batch, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUpConvert(b *testing.B) {
	for _, c := range legacyCodecs {
		set := plainSet(1, 500)
		if c != CodecNone {
			set = legacyWrapper(b, 1, c, 499, 0, set)
		}
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(set)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := UpConvert(set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
