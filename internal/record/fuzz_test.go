package record

import (
	"errors"
	"testing"
)

// FuzzValidate checks that Validate and Records never panic, that every error
// wraps one of the package's sentinels, and that what Validate accepts is
// self-consistent.
func FuzzValidate(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(buildBatch(f, c, 1))
		f.Add(buildBatch(f, c, 7))
	}
	two := append(buildBatch(f, CodecNone, 2), buildBatch(f, CodecGzip, 3)...)
	f.Add(two)
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := Validate(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("Validate error %v wraps no sentinel", err)
			}
		} else {
			total := 0
			for _, h := range hs {
				if h.Magic != 2 || h.NumRecords < 1 || h.Size() < HeaderSize {
					t.Fatalf("accepted header %+v", h)
				}
				total += h.Size()
			}
			if total != len(b) {
				t.Fatalf("headers cover %d of %d bytes", total, len(b))
			}
		}
		h, recs, err := Records(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedMagic) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Records error %v wraps no sentinel", err)
			}
			return
		}
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		// What decodes must re-encode to a batch that decodes the same.
		if _, err := Build(h, recs); err != nil {
			t.Fatalf("Build of decoded records: %v", err)
		}
	})
}
