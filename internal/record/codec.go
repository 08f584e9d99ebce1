package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is the compression codec of a batch's records (attribute bits 0-2).
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's Kafka name ("none", "gzip", ...).
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec parses a Kafka compression.type value other than "producer":
// "none" or "uncompressed", "gzip", "snappy", "lz4", "zstd".
func ParseCodec(name string) (Codec, error) {
	switch name {
	case "none", "uncompressed":
		return CodecNone, nil
	case "gzip":
		return CodecGzip, nil
	case "snappy":
		return CodecSnappy, nil
	case "lz4":
		return CodecLZ4, nil
	case "zstd":
		return CodecZstd, nil
	}
	return 0, fmt.Errorf("unknown compression codec %q", name)
}

// DefaultMaxDecompressedSize is the initial bound on the decompressed size of
// one batch's records.
const DefaultMaxDecompressedSize = 64 << 20

// ErrTooLarge reports records that decompress to more than the bound set by
// SetMaxDecompressedSize (a zip bomb, or a batch too big to accept).
var ErrTooLarge = errors.New("record: decompressed batch too large")

var maxDecompressed atomic.Int64

func init() { maxDecompressed.Store(DefaultMaxDecompressedSize) }

// SetMaxDecompressedSize sets the largest number of bytes Decompress (and so
// Records) will produce for one input; n <= 0 restores the default, and n is
// capped at 1 TiB. It is safe to call at any time.
func SetMaxDecompressedSize(n int64) {
	if n <= 0 {
		n = DefaultMaxDecompressedSize
	}
	n = min(n, 1<<40)
	maxDecompressed.Store(n)
}

// MaxDecompressedSize returns the bound set by SetMaxDecompressedSize.
func MaxDecompressedSize() int64 { return maxDecompressed.Load() }

// Compress compresses src with c. Snappy output is a raw snappy block, which
// every client accepts; lz4 output is an LZ4 frame. CodecNone returns src.
func Compress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		var buf bytes.Buffer
		buf.Grow(len(src)/2 + 64)
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		return snappy.Encode(nil, src), nil
	case CodecLZ4:
		var buf bytes.Buffer
		buf.Grow(len(src)/2 + 64)
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		w.Reset(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, make([]byte, 0, len(src)/2+64)), nil
	}
	return nil, fmt.Errorf("compress: unknown codec %d: %w", c, ErrCorrupt)
}

// Decompress decompresses src, compressed with c. Snappy input may be a raw
// block (librdkafka, franz-go) or xerial-framed (the Java client). Output
// larger than MaxDecompressedSize fails with ErrTooLarge; malformed input
// fails with an error wrapping ErrCorrupt. CodecNone returns src.
func Decompress(c Codec, src []byte) ([]byte, error) {
	limit := maxDecompressed.Load()
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		r := gzipReaders.Get().(*gzip.Reader)
		defer gzipReaders.Put(r)
		if err := r.Reset(bytes.NewReader(src)); err != nil {
			return nil, fmt.Errorf("gzip: %v: %w", err, ErrCorrupt)
		}
		r.Multistream(true)
		return readLimited("gzip", r, len(src), limit)
	case CodecSnappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(src, limit)
		}
		return decodeSnappyBlock(nil, src, limit)
	case CodecLZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		return readLimited("lz4", r, len(src), limit)
	case CodecZstd:
		dec, err := zstdDecoder(limit)
		if err != nil {
			return nil, err
		}
		out, err := dec.DecodeAll(src, nil)
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, fmt.Errorf("zstd: %v: %w", err, ErrTooLarge)
			}
			return nil, fmt.Errorf("zstd: %v: %w", err, ErrCorrupt)
		}
		if int64(len(out)) > limit {
			return nil, fmt.Errorf("zstd: %w", ErrTooLarge)
		}
		return out, nil
	}
	return nil, fmt.Errorf("decompress: unknown codec %d: %w", c, ErrCorrupt)
}

// readLimited reads r to EOF into a new slice of at most limit bytes.
func readLimited(name string, r io.Reader, srcLen int, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if hint := int64(srcLen) * 3; hint < limit {
		buf.Grow(int(hint) + 512)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	if n > limit {
		return nil, fmt.Errorf("%s: %w", name, ErrTooLarge)
	}
	return buf.Bytes(), nil
}

// xerialMagic starts a snappy stream framed by snappy-java's SnappyOutputStream:
// the magic, a 4-byte version and a 4-byte compatible version, then chunks of
// a 4-byte big-endian length followed by a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

func decodeXerial(src []byte, limit int64) ([]byte, error) {
	if len(src) < xerialHeaderSize {
		return nil, fmt.Errorf("snappy: short xerial header: %w", ErrCorrupt)
	}
	var out []byte
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, fmt.Errorf("snappy: short xerial chunk length: %w", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("snappy: xerial chunk of %d bytes, %d left: %w", n, len(rest), ErrCorrupt)
		}
		var err error
		out, err = decodeSnappyBlock(out, rest[:n], limit)
		if err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// decodeSnappyBlock appends the decoded raw snappy block src to dst,
// refusing to grow dst beyond limit bytes.
func decodeSnappyBlock(dst, src []byte, limit int64) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %v: %w", err, ErrCorrupt)
	}
	if int64(len(dst))+int64(n) > limit {
		return nil, fmt.Errorf("snappy: %w", ErrTooLarge)
	}
	start := len(dst)
	if cap(dst)-start < n {
		grown := make([]byte, start, start+n)
		copy(grown, dst)
		dst = grown
	}
	out, err := snappy.Decode(dst[start:start+n], src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %v: %w", err, ErrCorrupt)
	}
	return dst[:start+len(out)], nil
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
)

// The zstd encoder and decoders are safe for concurrent EncodeAll/DecodeAll
// calls and expensive to build, so one of each is shared. A decoder's size
// bound is fixed at construction, so one is kept per bound in use.
var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdEncErr  error

	zstdDecMu sync.Mutex
	zstdDec   atomic.Pointer[limitedDecoder]
)

type limitedDecoder struct {
	limit int64
	dec   *zstd.Decoder
}

func zstdEncoder() (*zstd.Encoder, error) {
	zstdEncOnce.Do(func() {
		zstdEnc, zstdEncErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2))
		if zstdEncErr != nil {
			zstdEncErr = fmt.Errorf("zstd encoder: %w", zstdEncErr)
		}
	})
	return zstdEnc, zstdEncErr
}

func zstdDecoder(limit int64) (*zstd.Decoder, error) {
	if d := zstdDec.Load(); d != nil && d.limit == limit {
		return d.dec, nil
	}
	zstdDecMu.Lock()
	defer zstdDecMu.Unlock()
	if d := zstdDec.Load(); d != nil && d.limit == limit {
		return d.dec, nil
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(2),
		zstd.WithDecoderMaxMemory(uint64(limit)),
		zstd.WithDecoderMaxWindow(uint64(min(max(limit, zstd.MinWindowSize), zstd.MaxWindowSize))))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	// A replaced decoder is left to the garbage collector rather than closed:
	// another goroutine may still be using it, and DecodeAll starts no goroutines.
	zstdDec.Store(&limitedDecoder{limit: limit, dec: dec})
	return dec, nil
}
