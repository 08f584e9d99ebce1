package datacli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumed is what `topic consume --output json` prints per record, one JSON
// object per line. Key and value are strings (invalid UTF-8 is replaced);
// a null key or value is null.
type consumed struct {
	Topic         string           `json:"topic"`
	Partition     int32            `json:"partition"`
	Offset        int64            `json:"offset"`
	Timestamp     int64            `json:"timestamp"`
	TimestampType string           `json:"timestampType"`
	Key           *string          `json:"key"`
	Value         *string          `json:"value"`
	Headers       []consumedHeader `json:"headers"`
}

type consumedHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// consumeConfig is what `topic consume` was asked to do.
type consumeConfig struct {
	topics      []string
	group       string
	partition   int
	offset      string
	fromStart   bool
	maxMessages int
	idle        time.Duration
	committed   bool // read_committed
	print       printConfig
}

// printConfig is Kafka's DefaultMessageFormatter properties.
type printConfig struct {
	timestamp, partition, offset, headers, key bool
	separator                                  string
}

func defineTopicConsume(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var cfg consumeConfig
	var topics multiFlag
	fs.Var(&topics, "topic", "a `topic` to read (repeatable; names may also be given as arguments)")
	fs.StringVar(&cfg.group, "group", "", "read as consumer `group`: resume from its committed offsets and commit what is printed")
	fs.IntVar(&cfg.partition, "partition", -1, "read only this partition (not with --group)")
	fs.StringVar(&cfg.offset, "offset", "", "where to start without committed offsets: earliest, latest or an `offset` (default latest)")
	fs.BoolVar(&cfg.fromStart, "from-beginning", false, "start at the earliest offset (same as --offset earliest)")
	fs.IntVar(&cfg.maxMessages, "max-messages", 0, "exit after printing `n` records")
	timeoutMS := fs.Int("timeout-ms", 0, "exit when no record arrives for this many `ms` (default: wait forever)")
	isolation := fs.String("isolation-level", "read_uncommitted", "read_uncommitted or read_committed")
	fs.BoolVar(&cfg.print.timestamp, "print-timestamp", false, "print each record's timestamp (CreateTime:ms)")
	fs.BoolVar(&cfg.print.partition, "print-partition", false, "print each record's partition")
	fs.BoolVar(&cfg.print.offset, "print-offset", false, "print each record's offset")
	fs.BoolVar(&cfg.print.headers, "print-headers", false, "print each record's headers")
	fs.BoolVar(&cfg.print.key, "print-key", false, "print each record's key")
	fs.StringVar(&cfg.print.separator, "key-separator", "\t", "`sep` between the printed fields")
	return func(ctx context.Context, c *cli, args []string) error {
		cfg.topics = topicsFrom(topics, args)
		if len(cfg.topics) == 0 {
			return errors.New("no topic given")
		}
		switch *isolation {
		case "read_uncommitted":
		case "read_committed":
			cfg.committed = true
		default:
			return fmt.Errorf("--isolation-level %q: want read_uncommitted or read_committed", *isolation)
		}
		cfg.idle = time.Duration(*timeoutMS) * time.Millisecond
		return c.consume(ctx, cfg)
	}
}

// startOffset returns where to begin reading a partition without a
// committed offset.
func (cfg consumeConfig) startOffset() (kgo.Offset, error) {
	switch {
	case cfg.fromStart && cfg.offset != "" && cfg.offset != "earliest":
		return kgo.Offset{}, errors.New("give --from-beginning or --offset, not both")
	case cfg.fromStart, cfg.offset == "earliest":
		return kgo.NewOffset().AtStart(), nil
	case cfg.offset == "" || cfg.offset == "latest":
		return kgo.NewOffset().AtEnd(), nil
	}
	n, err := strconv.ParseInt(cfg.offset, 10, 64)
	if err != nil || n < 0 {
		return kgo.Offset{}, fmt.Errorf("--offset %q: want earliest, latest or an offset", cfg.offset)
	}
	return kgo.NewOffset().At(n), nil
}

// consume prints records until ctx is done, --max-messages are printed or
// --timeout-ms passes without a record. With a group it commits the offsets
// of what it printed before leaving.
func (c *cli) consume(ctx context.Context, cfg consumeConfig) error {
	start, err := cfg.startOffset()
	if err != nil {
		return err
	}
	if cfg.group != "" && cfg.partition >= 0 {
		return errors.New("--partition cannot be used with --group")
	}
	if err := c.checkTopics(ctx, cfg.topics); err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.ConsumeResetOffset(start)}
	if cfg.committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	switch {
	case cfg.group != "":
		opts = append(opts, kgo.ConsumerGroup(cfg.group), kgo.ConsumeTopics(cfg.topics...), kgo.AutoCommitMarks())
	case cfg.partition >= 0:
		parts := map[string]map[int32]kgo.Offset{}
		for _, t := range cfg.topics {
			parts[t] = map[int32]kgo.Offset{int32(cfg.partition): start}
		}
		opts = append(opts, kgo.ConsumePartitions(parts))
	default:
		opts = append(opts, kgo.ConsumeTopics(cfg.topics...))
	}
	cl, err := c.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := bufio.NewWriter(c.env.Stdout)
	defer out.Flush()
	printed := 0
	err = c.pollLoop(ctx, cl, cfg, func(r *kgo.Record) bool {
		if c.json() {
			c.writeRecordJSON(out, r)
		} else {
			cfg.print.write(out, r)
		}
		printed++
		if cfg.group != "" {
			cl.MarkCommitRecords(r)
		}
		return cfg.maxMessages <= 0 || printed < cfg.maxMessages
	})
	out.Flush()
	if cfg.group != "" {
		// Commit what was printed, even when interrupted.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("commit offsets: %w", cerr)
		}
		cancel()
	}
	c.note("Processed a total of %d messages", printed)
	return err
}

// pollLoop hands records to each until it returns false, ctx is done, or
// cfg.idle passes without a record. Ending by ctx, by each or by idleness
// is not an error.
func (c *cli) pollLoop(ctx context.Context, cl *kgo.Client, cfg consumeConfig, each func(*kgo.Record) bool) error {
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if cfg.idle > 0 {
			pctx, cancel = context.WithTimeout(ctx, cfg.idle)
		}
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var fatal error
		fs.EachError(func(t string, p int32, err error) {
			switch {
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			case kerr.IsRetriable(err):
				c.note("warning: %s-%d: %v", t, p, err)
			case fatal == nil:
				fatal = fmt.Errorf("fetch %s-%d: %w", t, p, err)
			}
		})
		if fatal != nil {
			return fatal
		}
		if fs.NumRecords() == 0 && pctx.Err() != nil {
			return nil // idle for cfg.idle
		}
		more := true
		fs.EachRecord(func(r *kgo.Record) {
			if more {
				more = each(r)
			}
		})
		if !more {
			return nil
		}
	}
}

// checkTopics fails if a topic does not exist, rather than waiting for it
// as a Kafka client would.
func (c *cli) checkTopics(ctx context.Context, topics []string) error {
	adm, err := c.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	specs := make([]topicSpec, len(topics))
	for i, t := range topics {
		specs[i] = topicSpec{topic: t}
	}
	_, err = expandSpecs(ctx, adm, specs)
	return err
}

// write prints r as Kafka's DefaultMessageFormatter does: the chosen fields
// in the order timestamp, partition, offset, headers, key, each followed by
// the separator, then the value; null is printed as "null".
func (p printConfig) write(w *bufio.Writer, r *kgo.Record) {
	if p.timestamp {
		fmt.Fprintf(w, "%s:%d%s", timestampType(r), r.Timestamp.UnixMilli(), p.separator)
	}
	if p.partition {
		fmt.Fprintf(w, "Partition:%d%s", r.Partition, p.separator)
	}
	if p.offset {
		fmt.Fprintf(w, "Offset:%d%s", r.Offset, p.separator)
	}
	if p.headers {
		if len(r.Headers) == 0 {
			w.WriteString("NO_HEADERS")
		}
		for i, h := range r.Headers {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(h.Key + ":" + nullable(h.Value))
		}
		w.WriteString(p.separator)
	}
	if p.key {
		w.WriteString(nullable(r.Key) + p.separator)
	}
	w.WriteString(nullable(r.Value))
	w.WriteByte('\n')
}

func nullable(b []byte) string {
	if b == nil {
		return "null"
	}
	return string(b)
}

func timestampType(r *kgo.Record) string {
	if r.Attrs.TimestampType() == 1 {
		return "LogAppendTime"
	}
	return "CreateTime"
}

func (c *cli) writeRecordJSON(w *bufio.Writer, r *kgo.Record) {
	rec := consumed{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), TimestampType: timestampType(r),
		Headers: []consumedHeader{},
	}
	if r.Key != nil {
		rec.Key = ptr(string(r.Key))
	}
	if r.Value != nil {
		rec.Value = ptr(string(r.Value))
	}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, consumedHeader{h.Key, string(h.Value)})
	}
	writeJSONLine(w, rec)
}
