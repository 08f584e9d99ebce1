package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/snappy"
)

func codecInputs() map[string][]byte {
	return map[string][]byte{
		"empty":    {},
		"small":    []byte("hello, fjord"),
		"repeated": bytes.Repeat([]byte("abcdefgh"), 100_000),
		"mixed":    []byte(fmt.Sprint(testRecords(200))),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for name, in := range codecInputs() {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				z, err := Compress(c, in)
				if err != nil {
					t.Fatal(err)
				}
				out, err := Decompress(c, z)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(in, out) {
					t.Fatalf("round trip changed %d bytes into %d", len(in), len(out))
				}
			})
		}
	}
}

// xerialFrame frames src the way snappy-java's SnappyOutputStream does.
func xerialFrame(src []byte, chunk int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1) // version
	out = binary.BigEndian.AppendUint32(out, 1) // compatible version
	for len(src) > 0 {
		n := min(chunk, len(src))
		block := snappy.Encode(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		src = src[n:]
	}
	return out
}

func TestSnappyXerial(t *testing.T) {
	in := bytes.Repeat([]byte("the quick brown fox "), 10_000)
	out, err := Decompress(CodecSnappy, xerialFrame(in, 32<<10))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Fatal("xerial round trip differs")
	}
	// A header and no chunks is an empty payload.
	out, err = Decompress(CodecSnappy, xerialFrame(nil, 1))
	if err != nil || len(out) != 0 {
		t.Fatalf("empty xerial: %q, %v", out, err)
	}
	// A batch whose records are xerial-framed decodes too.
	recs := testRecords(20)
	var raw []byte
	for _, r := range recs {
		raw = AppendRecord(raw, r)
	}
	b, err := Build(testHeader(CodecNone, 20), recs)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b[:HeaderSize], xerialFrame(raw, 100)...)
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(CodecSnappy))
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b))
	if _, err := Validate(b); err != nil {
		t.Fatal(err)
	}
	_, got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || string(got[19].Value) != string(recs[19].Value) {
		t.Fatalf("decoded %d records", len(got))
	}
	for _, bad := range [][]byte{
		xerialFrame(in, 1000)[:20],
		append(xerialFrame(nil, 1), 0, 0, 0, 9, 1),
		xerialMagic,
	} {
		if _, err := Decompress(CodecSnappy, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("bad xerial %x: %v", bad, err)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	junk := []byte("this is not compressed data at all, not even close")
	for _, c := range allCodecs[1:] {
		if _, err := Decompress(c, junk); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v: Decompress(junk) = %v, want ErrCorrupt", c, err)
		}
		z, err := Compress(c, bytes.Repeat([]byte("z"), 10_000))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decompress(c, z[:len(z)/2]); err == nil {
			t.Errorf("%v: truncated input accepted", c)
		}
	}
	if _, err := Decompress(Codec(7), junk); !errors.Is(err, ErrCorrupt) {
		t.Errorf("codec 7: %v", err)
	}
	if _, err := Compress(Codec(7), junk); err == nil {
		t.Error("Compress with codec 7 succeeded")
	}
}

func TestDecompressLimit(t *testing.T) {
	defer SetMaxDecompressedSize(0)
	SetMaxDecompressedSize(1 << 20)
	if MaxDecompressedSize() != 1<<20 {
		t.Fatalf("MaxDecompressedSize = %d", MaxDecompressedSize())
	}
	bomb := make([]byte, 4<<20)
	for _, c := range allCodecs[1:] {
		z, err := Compress(c, bomb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decompress(c, z); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%v: Decompress(4 MiB) with a 1 MiB limit = %v, want ErrTooLarge", c, err)
		}
		if c == CodecSnappy {
			if _, err := Decompress(c, xerialFrame(bomb, 64<<10)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("xerial: %v, want ErrTooLarge", err)
			}
		}
		small := bomb[:1<<20]
		z, _ = Compress(c, small)
		if out, err := Decompress(c, z); err != nil || len(out) != len(small) {
			t.Errorf("%v: Decompress at the limit: %d bytes, %v", c, len(out), err)
		}
	}
	SetMaxDecompressedSize(0)
	if MaxDecompressedSize() != DefaultMaxDecompressedSize {
		t.Errorf("reset to %d", MaxDecompressedSize())
	}
}

func TestCodecConcurrent(t *testing.T) {
	in := bytes.Repeat([]byte("concurrent "), 5000)
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 20 {
				c := allCodecs[(g+i)%len(allCodecs)]
				z, cerr := Compress(c, in)
				if cerr != nil {
					err = cerr
					break
				}
				out, derr := Decompress(c, z)
				if derr != nil || !bytes.Equal(out, in) {
					err = fmt.Errorf("%v: %v", c, derr)
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
