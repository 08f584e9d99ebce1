package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// FuzzUpConvert checks that UpConvert never panics, that its errors wrap the
// documented sentinels, and that what it accepts is one valid producer batch
// that survives a down- and up-conversion unchanged.
func FuzzUpConvert(f *testing.F) {
	for _, magic := range []int8{0, 1} {
		f.Add(plainSet(magic, 1))
		f.Add(plainSet(magic, 5))
		for _, c := range legacyCodecs[1:] {
			f.Add(legacyWrapper(f, magic, c, 2, 10, plainSet(magic, 3)))
		}
		f.Add(append(legacyWrapper(f, magic, CodecGzip, 1, 5, plainSet(magic, 2)), plainSet(magic, 2)...))
		f.Add(legacyMessage(magic, 0, 0, 0, nil, nil))
	}
	f.Add(legacyMessage(1, 0, attrLogAppendTime, 5, nil, []byte("x")))
	f.Add(legacyMessage(1, 0, int8(CodecZstd), 0, nil, []byte("x")))
	f.Add(legacyMessage(1, 0, int8(CodecSnappy), 0, nil, xerialFrame(plainSet(1, 3), 40)))
	f.Add(legacyWrapper(f, 1, CodecGzip, 0, 0, legacyWrapper(f, 1, CodecGzip, 0, 0, plainSet(1, 1))))
	f.Add(buildBatch(f, CodecNone, 2))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, set []byte) {
		checkUpConvert(t, set)
		// Mutations rarely keep a CRC right; fixing the outer messages' CRCs
		// lets the fuzzer reach the decoding behind them.
		if fixed := fixMessageCRCs(set); !bytes.Equal(fixed, set) {
			checkUpConvert(t, fixed)
		}
	})
}

// fixMessageCRCs returns a copy of set with the CRC of every whole outer
// message recomputed.
func fixMessageCRCs(set []byte) []byte {
	b := bytes.Clone(set)
	for pos := 0; len(b)-pos >= 17; {
		size := int64(int32(binary.BigEndian.Uint32(b[pos+8:])))
		if size < 5 || size > int64(len(b)-pos-12) {
			break
		}
		end := pos + 12 + int(size)
		binary.BigEndian.PutUint32(b[pos+12:], crc32.ChecksumIEEE(b[pos+16:end]))
		pos = end
	}
	return b
}

// checkUpConvert checks one UpConvert call for FuzzUpConvert.
func checkUpConvert(t *testing.T, set []byte) {
	t.Helper()
	in := bytes.Clone(set)
	out, err := UpConvert(set)
	if !bytes.Equal(in, set) {
		t.Fatal("UpConvert modified its input")
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalidRecord) &&
			!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedCompression) {
			t.Fatalf("UpConvert error %v wraps no sentinel", err)
		}
		return
	}
	hs, err := ValidateProduce(out)
	if err != nil || len(hs) != 1 {
		t.Fatalf("ValidateProduce(UpConvert) = %d batches, %v", len(hs), err)
	}
	_, recs := batchMsgs(t, out)
	for _, magic := range []int8{0, 1} {
		down, err := DownConvert(out, magic)
		if err != nil {
			t.Fatalf("DownConvert to magic %d: %v", magic, err)
		}
		again, err := UpConvert(down)
		if err != nil {
			t.Fatalf("UpConvert of DownConvert to magic %d: %v", magic, err)
		}
		_, back := batchMsgs(t, again)
		if len(back) != len(recs) {
			t.Fatalf("magic %d: %d records, then %d", magic, len(recs), len(back))
		}
		for i, r := range recs {
			b := back[i]
			ts := r.Timestamp
			if magic == 0 {
				ts = -1
			}
			if b.Offset != r.Offset || b.Timestamp != ts || !sameNullable(b.Key, r.Key) || !sameNullable(b.Value, r.Value) {
				t.Fatalf("magic %d record %d: %+v, then %+v", magic, i, r, b)
			}
		}
	}
}

// FuzzDownConvert checks that DownConvert never panics, that its errors wrap
// the documented sentinels, and that a magic 0 result up-converts to the
// records of the non-control batches it came from.
func FuzzDownConvert(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(buildBatch(f, c, 3), int8(1))
		f.Add(buildBatch(f, c, 3), int8(0))
	}
	ctrl, err := Build(Header{BaseOffset: 103, Attributes: attrControl}, []Record{{Key: []byte{0, 0, 0, 1}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(buildBatch(f, CodecGzip, 3), ctrl...), int8(0))
	f.Add(plainSet(1, 2), int8(1))
	f.Add([]byte{}, int8(2))
	f.Fuzz(func(t *testing.T, batches []byte, magic int8) {
		checkDownConvert(t, batches, magic)
		if fixed := fixBatchCRCs(batches); !bytes.Equal(fixed, batches) {
			checkDownConvert(t, fixed, magic)
		}
	})
}

// fixBatchCRCs returns a copy of b with the CRC-32C of every whole batch
// recomputed.
func fixBatchCRCs(b []byte) []byte {
	b = bytes.Clone(b)
	for pos := 0; len(b)-pos >= HeaderSize; {
		h, _ := ReadHeader(b[pos:])
		if h.Length < minLength || int64(h.Size()) > int64(len(b)-pos) {
			break
		}
		binary.BigEndian.PutUint32(b[pos+offCRC:], Checksum(b[pos:pos+h.Size()]))
		pos += h.Size()
	}
	return b
}

// checkDownConvert checks one DownConvert call for FuzzDownConvert: it must
// succeed exactly when the magic is 0 or 1, Validate accepts the batches and
// Records decodes every non-control batch, none of them zstd.
func checkDownConvert(t *testing.T, batches []byte, magic int8) {
	t.Helper()
	out, err := DownConvert(batches, magic)
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedMagic) &&
		!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedCompression) {
		t.Fatalf("DownConvert error %v wraps no sentinel", err)
	}
	hs, verr := Validate(batches)
	ok := (magic == 0 || magic == 1) && (len(batches) == 0 || verr == nil)
	var want []msg
	off := 0
	for _, h := range hs {
		batch := batches[off : off+h.Size()]
		off += h.Size()
		if h.Control() {
			continue
		}
		if h.Codec() == CodecZstd {
			ok = false
			continue
		}
		rh, recs, rerr := Records(batch)
		if rerr != nil {
			ok = false
			continue
		}
		for _, r := range recs {
			want = append(want, msg{Offset: r.Offset(rh), Timestamp: r.Timestamp(rh), Key: r.Key, Value: r.Value})
		}
	}
	switch {
	case ok && err != nil:
		t.Fatalf("DownConvert of valid batches: %v", err)
	case !ok && err == nil:
		t.Fatalf("DownConvert accepted invalid batches (Validate: %v)", verr)
	case !ok:
		return
	}
	if len(want) == 0 {
		if len(out) != 0 {
			t.Fatalf("%d bytes out of no records", len(out))
		}
		return
	}
	if magic != 0 {
		return // magic 1 keeps LogAppendTime, which UpConvert refuses
	}
	up, err := UpConvert(out)
	if err != nil {
		t.Fatalf("UpConvert(DownConvert): %v", err)
	}
	_, got := batchMsgs(t, up)
	if len(got) != len(want) {
		t.Fatalf("%d records down-converted, %d up-converted", len(want), len(got))
	}
	for i := range want {
		if !sameNullable(got[i].Key, want[i].Key) || !sameNullable(got[i].Value, want[i].Value) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// sameNullable reports whether a and b are both null or hold the same bytes.
func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }
