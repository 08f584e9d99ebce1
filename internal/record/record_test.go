package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// testRecords returns n records with a mix of null and non-null keys, values
// and headers.
func testRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{
			TimestampDelta: int64(i * 3),
			OffsetDelta:    int32(i),
			Value:          []byte(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i%17))),
		}
		if i%3 != 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", i%5))
		}
		if i%4 == 1 {
			r.Value = nil
		}
		if i%2 == 0 {
			r.Headers = []RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "null", Value: nil}}
		}
		recs[i] = r
	}
	return recs
}

func testHeader(c Codec, n int) Header {
	return Header{
		BaseOffset:           100,
		PartitionLeaderEpoch: 7,
		Attributes:           int16(c),
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000 + int64(n-1)*3,
		ProducerID:           42,
		ProducerEpoch:        3,
		BaseSequence:         9,
	}
}

// buildBatch builds a batch of n test records compressed with c.
func buildBatch(t testing.TB, c Codec, n int) []byte {
	t.Helper()
	b, err := Build(testHeader(c, n), testRecords(n))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

func TestBuildRecordsRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for _, n := range []int{1, 2, 50} {
			t.Run(fmt.Sprintf("%v/%d", c, n), func(t *testing.T) {
				want := testRecords(n)
				hdr := testHeader(c, n)
				b, err := Build(hdr, want)
				if err != nil {
					t.Fatal(err)
				}
				hs, err := Validate(b)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if len(hs) != 1 {
					t.Fatalf("Validate returned %d headers", len(hs))
				}
				h, got, err := Records(b)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				if diff := cmp.Diff(hs[0], h); diff != "" {
					t.Errorf("Records header differs from Validate's (-validate +records):\n%s", diff)
				}
				wantH := hdr
				wantH.Magic = 2
				wantH.Length = int32(len(b) - 12)
				wantH.NumRecords = int32(n)
				wantH.CRC = h.CRC
				if diff := cmp.Diff(wantH, h); diff != "" {
					t.Errorf("header (-want +got):\n%s", diff)
				}
				if h.Codec() != c {
					t.Errorf("Codec() = %v, want %v", h.Codec(), c)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("records (-want +got):\n%s", diff)
				}
				if h.Size() != len(b) {
					t.Errorf("Size() = %d, want %d", h.Size(), len(b))
				}
				if h.LastOffset() != 100+int64(n-1) {
					t.Errorf("LastOffset() = %d", h.LastOffset())
				}
			})
		}
	}
}

func TestNullsPreserved(t *testing.T) {
	recs := []Record{
		{Key: nil, Value: nil},
		{OffsetDelta: 1, Key: []byte{}, Value: []byte{}},
		{OffsetDelta: 2, Key: []byte("k"), Value: nil, Headers: []RecordHeader{{Key: "", Value: []byte{}}}},
	}
	b, err := Build(Header{LastOffsetDelta: 2}, recs)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	// cmp distinguishes nil from empty slices, which is the point here.
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// kmsgBatch hand-assembles a batch with kmsg types and a CRC computed here,
// independently of Build.
func kmsgBatch(recs []Record, hdr Header) []byte {
	var raw []byte
	for _, r := range recs {
		kr := kmsg.Record{
			Attributes:       r.Attributes,
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      r.OffsetDelta,
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // a length below 64 takes one varint byte
		raw = kr.AppendTo(raw)
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          hdr.BaseOffset,
		PartitionLeaderEpoch: hdr.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           hdr.Attributes,
		LastOffsetDelta:      hdr.LastOffsetDelta,
		FirstTimestamp:       hdr.FirstTimestamp,
		MaxTimestamp:         hdr.MaxTimestamp,
		ProducerID:           hdr.ProducerID,
		ProducerEpoch:        hdr.ProducerEpoch,
		FirstSequence:        hdr.BaseSequence,
		NumRecords:           int32(len(recs)),
		Records:              raw,
	}
	b := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestCrossCheckKmsg(t *testing.T) {
	recs := []Record{
		{Key: []byte("a"), Value: []byte("1")},
		{OffsetDelta: 1, TimestampDelta: 5, Key: nil, Value: []byte("2"), Headers: []RecordHeader{{Key: "k", Value: []byte("v")}}},
		{OffsetDelta: 2, TimestampDelta: 9, Key: []byte("c"), Value: nil},
	}
	hdr := testHeader(CodecNone, 3)
	hand := kmsgBatch(recs, hdr)
	built, err := Build(hdr, recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hand, built) {
		t.Fatalf("Build differs from kmsg-assembled batch:\nbuilt %x\nhand  %x", built, hand)
	}
	if _, err := Validate(hand); err != nil {
		t.Fatalf("Validate(kmsg batch): %v", err)
	}

	// And kmsg decodes what Build wrote.
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(built); err != nil {
		t.Fatalf("kmsg ReadFrom: %v", err)
	}
	h, _ := ReadHeader(built)
	if uint32(kb.CRC) != h.CRC || kb.Length != h.Length || kb.NumRecords != 3 || kb.FirstOffset != 100 {
		t.Errorf("kmsg read %+v, header %+v", kb, h)
	}
	var kr kmsg.Record
	if err := kr.ReadFrom(kb.Records); err != nil {
		t.Fatalf("kmsg record: %v", err)
	}
	if string(kr.Key) != "a" || string(kr.Value) != "1" {
		t.Errorf("kmsg first record %+v", kr)
	}
}

func TestValidateMultipleBatches(t *testing.T) {
	var all []byte
	for _, c := range allCodecs {
		all = append(all, buildBatch(t, c, 5)...)
	}
	hs, err := Validate(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != len(allCodecs) {
		t.Fatalf("got %d headers", len(hs))
	}
	for i, h := range hs {
		if h.Codec() != allCodecs[i] {
			t.Errorf("batch %d codec %v", i, h.Codec())
		}
	}
	// Trailing bytes, a truncated batch or nothing at all are corrupt.
	for name, b := range map[string][]byte{
		"trailing": append(append([]byte{}, all...), 0),
		"short":    all[:len(all)-1],
		"empty":    nil,
		"tiny":     all[:10],
	} {
		if _, err := Validate(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Validate = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	good := buildBatch(t, CodecNone, 3)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte{}, good...)
		f(b)
		return b
	}
	resum := func(b []byte) { binary.BigEndian.PutUint32(b[offCRC:], Checksum(b)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"magic0", mutate(func(b []byte) { b[offMagic] = 0 }), ErrUnsupportedMagic},
		{"magic1", mutate(func(b []byte) { b[offMagic] = 1 }), ErrUnsupportedMagic},
		{"magic1-short", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 1, 2, 3, 4, 1}, ErrUnsupportedMagic},
		{"magic3", mutate(func(b []byte) { b[offMagic] = 3 }), ErrCorrupt},
		{"crc", mutate(func(b []byte) { b[len(b)-1] ^= 1 }), ErrCorrupt},
		{"length-small", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[offLength:], 10) }), ErrCorrupt},
		{"length-negative", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[offLength:], 0xffffffff) }), ErrCorrupt},
		{"zero-records", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[offNumRecords:], 0); resum(b) }), ErrCorrupt},
		{"too-many-records", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[offNumRecords:], 4); resum(b) }), ErrCorrupt},
		{"negative-delta", mutate(func(b []byte) { binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff); resum(b) }), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Validate(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("Validate = %v, want %v", err, tt.want)
			}
		})
	}

	// A compacted batch (fewer records than its offset range) is fine,
	// except from a producer, as is a control batch.
	sparse := mutate(func(b []byte) { binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 10); resum(b) })
	if _, err := Validate(sparse); err != nil {
		t.Errorf("Validate(sparse batch) = %v", err)
	}
	if _, err := ValidateProduce(sparse); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("ValidateProduce(sparse batch) = %v, want ErrInvalidRecord", err)
	}
	control := mutate(func(b []byte) { b[offAttributes+1] |= attrControl; resum(b) })
	if _, err := ValidateProduce(control); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("ValidateProduce(control batch) = %v, want ErrInvalidRecord", err)
	}
	if hs, err := ValidateProduce(good); err != nil || len(hs) != 1 {
		t.Errorf("ValidateProduce(good) = %v, %v", hs, err)
	}
	if _, err := ValidateProduce(good[:20]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ValidateProduce(short) = %v, want ErrCorrupt", err)
	}
}

// TestValidateEveryByte flips every byte of a batch and checks that Validate
// either rejects it or, for the fields outside the CRC, accepts it with the
// changed value.
func TestValidateEveryByte(t *testing.T) {
	for _, c := range []Codec{CodecNone, CodecZstd} {
		good := buildBatch(t, c, 4)
		for i := range good {
			b := append([]byte{}, good...)
			b[i] ^= 0x41
			hs, err := Validate(b)
			inCRCFreeField := i < offMagic // baseOffset, length, leader epoch
			switch {
			case err != nil:
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedMagic) {
					t.Errorf("byte %d: error %v wraps neither sentinel", i, err)
				}
			case inCRCFreeField && (i < offLength || i >= offLeaderEpoch):
				h, _ := ReadHeader(b)
				if diff := cmp.Diff([]Header{h}, hs); diff != "" {
					t.Errorf("byte %d: headers (-want +got):\n%s", i, diff)
				}
			default:
				t.Errorf("%v byte %d: flipped byte accepted", c, i)
			}
		}
	}
}

func TestSetters(t *testing.T) {
	b := buildBatch(t, CodecLZ4, 3)
	SetBaseOffset(b, 1234)
	SetPartitionLeaderEpoch(b, 99)
	hs, err := Validate(b)
	if err != nil {
		t.Fatalf("Validate after setting fields outside the CRC: %v", err)
	}
	if hs[0].BaseOffset != 1234 || hs[0].PartitionLeaderEpoch != 99 {
		t.Errorf("header %+v", hs[0])
	}
	SetLogAppendTime(b, 555)
	hs, err = Validate(b)
	if err != nil {
		t.Fatalf("Validate after SetLogAppendTime: %v", err)
	}
	h := hs[0]
	if !h.LogAppendTime() || h.MaxTimestamp != 555 || h.FirstTimestamp != 555 || h.Codec() != CodecLZ4 {
		t.Errorf("header %+v", h)
	}
	_, recs, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if ts := r.Timestamp(h); ts != 555 {
			t.Errorf("record %d timestamp %d", r.OffsetDelta, ts)
		}
	}
}

func TestAttributes(t *testing.T) {
	h := Header{Attributes: 0x3c | int16(CodecZstd)}
	if !h.LogAppendTime() || !h.Transactional() || !h.Control() || h.Codec() != CodecZstd {
		t.Errorf("attribute bits of %#x", h.Attributes)
	}
	h = Header{}
	if h.LogAppendTime() || h.Transactional() || h.Control() || h.Codec() != CodecNone {
		t.Errorf("attribute bits of 0")
	}
}

func TestRecordsRejectsCorruptRecords(t *testing.T) {
	good := buildBatch(t, CodecNone, 3)
	// Each truncation of the records section, with the length patched to match.
	for cut := HeaderSize; cut < len(good); cut++ {
		b := append([]byte{}, good[:cut]...)
		binary.BigEndian.PutUint32(b[offLength:], uint32(cut-12))
		if _, _, err := Records(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("cut at %d: Records = %v, want ErrCorrupt", cut, err)
		}
	}
	if _, _, err := Records(good[:HeaderSize-1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short header: %v", err)
	}
	b := append([]byte{}, good...)
	binary.BigEndian.PutUint32(b[offNumRecords:], 1<<30)
	if _, _, err := Records(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("huge record count: %v", err)
	}
}

func TestParseCodec(t *testing.T) {
	for name, want := range map[string]Codec{
		"none": CodecNone, "uncompressed": CodecNone, "gzip": CodecGzip,
		"snappy": CodecSnappy, "lz4": CodecLZ4, "zstd": CodecZstd,
	} {
		got, err := ParseCodec(name)
		if err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %v, %v", name, got, err)
		}
		if name != "uncompressed" && got.String() != name {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseCodec("producer"); err == nil {
		t.Error("ParseCodec(producer) succeeded")
	}
}
