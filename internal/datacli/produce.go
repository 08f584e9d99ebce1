package datacli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produced is what `topic produce --output json` prints per record, as each
// is acknowledged.
type produced struct {
	Line      int64  `json:"line"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error,omitempty"`
}

func defineTopicProduce(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var topic string
	var headers multiFlag
	fs.StringVar(&topic, "topic", "", "the `topic` (or give it as the argument)")
	keySep := fs.String("key-separator", "", "split each line at the first `sep` into key and value (default: no key)")
	partition := fs.Int("partition", -1, "send every record to this partition (default: by key, or spread when there is none)")
	acks := fs.String("acks", "all", "acknowledgement to wait for: all (or -1), 1 or 0")
	compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.Var(&headers, "header", "header `name=value` added to every record (repeatable)")
	return func(ctx context.Context, c *cli, args []string) error {
		if topic == "" && len(args) == 1 {
			topic, args = args[0], nil
		}
		if topic == "" || len(args) > 0 {
			return errors.New("give exactly one topic")
		}
		var hs []kgo.RecordHeader
		for _, h := range headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok {
				return fmt.Errorf("header %q is not name=value", h)
			}
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(c.timeout)}
		switch *acks {
		case "all", "-1":
			opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		case "1":
			opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		case "0":
			opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
		default:
			return fmt.Errorf("--acks %q: want all, 1 or 0", *acks)
		}
		codec, err := parseCodec(*compression)
		if err != nil {
			return err
		}
		opts = append(opts, kgo.ProducerBatchCompression(codec))
		if *partition >= 0 {
			opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		}
		cl, err := c.client(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		return c.produceLines(ctx, cl, c.env.Stdin, *keySep, int32(*partition), hs)
	}
}

// produceLines sends each line of r as a record and waits for them all. It
// stops reading at the first failed record and returns that failure.
func (c *cli) produceLines(ctx context.Context, cl *kgo.Client, r io.Reader, keySep string, partition int32, hs []kgo.RecordHeader) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var outMu sync.Mutex
	br := bufio.NewReaderSize(r, 64<<10)
	var line int64
	for ctx.Err() == nil {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			if err != io.EOF {
				cancel(fmt.Errorf("read stdin: %w", err))
			}
			break
		}
		line++
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		rec := &kgo.Record{Value: b, Headers: hs, Partition: partition}
		if keySep != "" {
			k, v, ok := bytes.Cut(b, []byte(keySep))
			if !ok {
				cancel(fmt.Errorf("line %d: no key separator %q", line, keySep))
				break
			}
			rec.Key, rec.Value = k, v
		}
		n := line
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				cancel(fmt.Errorf("line %d: %w", n, err))
			}
			if c.json() {
				p := produced{Line: n, Partition: r.Partition, Offset: r.Offset}
				if err != nil {
					p.Error, p.Offset = err.Error(), -1
				}
				outMu.Lock()
				writeJSONLine(c.env.Stdout, p)
				outMu.Unlock()
			}
		})
		if err != nil {
			break // the last line had no newline
		}
	}
	// Flush waits for every record, failed or not.
	cl.Flush(context.WithoutCancel(ctx))
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func parseCodec(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", s)
}
