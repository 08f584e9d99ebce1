package datacli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// resetTo is a --reset-offsets scenario: where each partition's committed
// offset moves to, before clamping to the partition's log.
type resetTo struct {
	kind   string // earliest, latest, current, offset, shift or time
	offset int64  // the offset of "offset", the distance of "shift"
	millis int64  // the timestamp of "time"
}

// target returns the offset a partition moves to under r, given its committed
// offset (nil if none), its log start and end offsets, and the first offset at
// or after r.millis (for "time"). The result is not yet clamped.
func (r resetTo) target(committed *int64, start, end, atTime int64) (int64, error) {
	switch r.kind {
	case "earliest":
		return start, nil
	case "latest":
		return end, nil
	case "current":
		if committed == nil {
			return end, nil // as Kafka: a partition without a commit goes to the end
		}
		return *committed, nil
	case "offset":
		return r.offset, nil
	case "shift":
		if committed == nil {
			return 0, errors.New("no committed offset to shift")
		}
		return *committed + r.offset, nil
	case "time":
		if atTime < 0 {
			return end, nil
		}
		return atTime, nil
	}
	return 0, fmt.Errorf("unknown reset scenario %q", r.kind)
}

// clamp keeps an offset within [start, end], as Kafka does, and says when it
// had to.
func clamp(off, start, end int64) (int64, string) {
	switch {
	case off < start:
		return start, fmt.Sprintf("new offset %d is below the log start offset; using %d", off, start)
	case off > end:
		return end, fmt.Sprintf("new offset %d is above the log end offset; using %d", off, end)
	}
	return off, ""
}

// resetRow is one partition of `group reset-offsets`.
type resetRow struct {
	Group          string `json:"group"`
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	PreviousOffset *int64 `json:"previousOffset"`
	NewOffset      int64  `json:"newOffset"`
}

func defineGroupReset(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var sel groupsFlag
	sel.define(fs)
	var topics multiFlag
	fs.Var(&topics, "topic", "`topic[:partition,...]` to reset; without partitions, all of them (repeatable)")
	allTopics := fs.Bool("all-topics", false, "reset every partition the group has a committed offset for")
	var scenarios []resetTo
	add := func(r resetTo) { scenarios = append(scenarios, r) }
	fs.BoolFunc("to-earliest", "reset to the log start offset", func(string) error { add(resetTo{kind: "earliest"}); return nil })
	fs.BoolFunc("to-latest", "reset to the log end offset", func(string) error { add(resetTo{kind: "latest"}); return nil })
	fs.BoolFunc("to-current", "reset to the committed offset (the log end where there is none)", func(string) error { add(resetTo{kind: "current"}); return nil })
	fs.Func("to-offset", "reset to `offset`", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		add(resetTo{kind: "offset", offset: n})
		return err
	})
	fs.Func("shift-by", "move the committed offset by `n` (negative moves back)", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		add(resetTo{kind: "shift", offset: n})
		return err
	})
	fs.Func("to-datetime", "reset to the first offset at or after `time` YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm] (local time without a zone)", func(s string) error {
		t, err := parseDatetime(s)
		add(resetTo{kind: "time", millis: t.UnixMilli()})
		return err
	})
	fs.Func("by-duration", "reset to the first offset at or after now minus `duration` (ISO-8601 PnDTnHnMnS, or Go's 1h30m)", func(s string) error {
		d, err := parseDuration(s)
		add(resetTo{kind: "time", millis: time.Now().Add(-d).UnixMilli()})
		return err
	})
	fs.Bool("dry-run", true, "print the new offsets without committing them (the default)")
	execute := fs.Bool("execute", false, "commit the new offsets")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(scenarios) != 1 {
			return errors.New("give exactly one of --to-earliest, --to-latest, --to-current, --to-offset, --shift-by, --to-datetime, --by-duration")
		}
		if *allTopics == (len(topics) > 0) {
			return errors.New("give --topic or --all-topics")
		}
		specs, err := parseTopicSpecs(topics)
		if err != nil {
			return err
		}
		adm, err := c.admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		names, err := sel.resolve(ctx, adm, args)
		if err != nil {
			return err
		}
		var fixed kadm.TopicsSet
		if !*allTopics {
			if fixed, err = expandSpecs(ctx, adm, specs); err != nil {
				return err
			}
		}
		described, err := adm.DescribeGroups(ctx, names...)
		if err != nil {
			return fmt.Errorf("describe groups: %w", firstShard(err))
		}
		var rows []resetRow
		var errs []error
		for _, name := range names {
			g := described[name]
			if g.Err != nil {
				errs = append(errs, fmt.Errorf("group %s: %w", name, explain(g.Err, g.ErrMessage)))
				continue
			}
			if g.State != "Empty" && g.State != "Dead" {
				errs = append(errs, fmt.Errorf("group %s: offsets can only be reset while the group is inactive, but it is %s", name, g.State))
				continue
			}
			rs, err := c.resetGroup(ctx, adm, name, scenarios[0], fixed, *execute)
			rows = append(rows, rs...)
			if err != nil {
				errs = append(errs, fmt.Errorf("group %s: %w", name, err))
			}
		}
		switch {
		case c.json():
			if rows == nil {
				rows = []resetRow{}
			}
			err = c.writeJSON(rows)
		case len(rows) == 0:
			if len(errs) == 0 {
				c.note("Nothing to reset: the groups have no committed offsets.")
			}
		default:
			t := newTable(c.env.Stdout, "GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET")
			for _, r := range rows {
				t.row(r.Group, r.Topic, r.Partition, r.PreviousOffset, r.NewOffset)
			}
			err = t.flush()
		}
		if err != nil {
			return err
		}
		if !*execute && len(rows) > 0 {
			c.note("Dry run: nothing was committed; add --execute to commit these offsets.")
		}
		return errors.Join(errs...)
	}
}

// resetGroup works out the new offsets of one inactive group's partitions
// (those in fixed, or with fixed nil those it has committed) and, if execute,
// commits them. It returns the rows it worked out even if the commit fails.
func (c *cli) resetGroup(ctx context.Context, adm *kadm.Client, group string, to resetTo, fixed kadm.TopicsSet, execute bool) ([]resetRow, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets: %w", err)
	}
	parts := fixed
	if parts == nil {
		parts = kadm.TopicsSet{}
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				parts.Add(o.Topic, o.Partition)
			}
		})
	}
	topics := parts.Topics()
	if len(topics) == 0 {
		return nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	var atTime kadm.ListedOffsets
	if to.kind == "time" {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, to.millis, topics...); err != nil {
			return nil, fmt.Errorf("list offsets by time: %w", err)
		}
	}
	var rows []resetRow
	commit := kadm.Offsets{}
	for _, tp := range parts.Sorted() {
		for _, p := range tp.Partitions {
			start, ok1 := starts.Lookup(tp.Topic, p)
			end, ok2 := ends.Lookup(tp.Topic, p)
			switch {
			case !ok1 || !ok2:
				return nil, fmt.Errorf("%s-%d: no log offsets listed", tp.Topic, p)
			case start.Err != nil:
				return nil, fmt.Errorf("%s-%d: list start offset: %w", tp.Topic, p, start.Err)
			case end.Err != nil:
				return nil, fmt.Errorf("%s-%d: list end offset: %w", tp.Topic, p, end.Err)
			}
			var prev *int64
			if o, ok := committed.Lookup(tp.Topic, p); ok && o.Err == nil && o.At >= 0 {
				prev = ptr(o.At)
			}
			at := int64(-1)
			if o, ok := atTime.Lookup(tp.Topic, p); ok && o.Err == nil {
				at = o.Offset
			}
			off, err := to.target(prev, start.Offset, end.Offset, at)
			if err != nil {
				return nil, fmt.Errorf("%s-%d: %w", tp.Topic, p, err)
			}
			off, warn := clamp(off, start.Offset, end.Offset)
			if warn != "" {
				c.note("%s %s-%d: %s", group, tp.Topic, p, warn)
			}
			rows = append(rows, resetRow{group, tp.Topic, p, prev, off})
			commit.Add(kadm.Offset{Topic: tp.Topic, Partition: p, At: off, LeaderEpoch: -1})
		}
	}
	if !execute {
		return rows, nil
	}
	resps, err := adm.CommitOffsets(ctx, group, commit)
	if err != nil {
		return rows, fmt.Errorf("commit: %w", err)
	}
	if err := resps.Error(); err != nil {
		return rows, fmt.Errorf("commit: %w", err)
	}
	return rows, nil
}

// parseDatetime parses Kafka's --to-datetime format,
// YYYY-MM-DDTHH:mm:SS[.sss] with an optional zone (Z, ±hh:mm or ±hhmm);
// without a zone the time is local.
func parseDatetime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm]", s)
	}
	return t, nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration parses an ISO-8601 duration as Kafka's --by-duration takes it
// (PnDTnHnMnS, e.g. PT30M or P1DT2H), or a Go duration (90m).
func parseDuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is neither an ISO-8601 duration (PnDTnHnMnS) nor a Go duration (1h30m)", s)
		}
		if d < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		return d, nil
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		secs, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		d += time.Duration(secs * float64(time.Second))
	}
	return d, nil
}
