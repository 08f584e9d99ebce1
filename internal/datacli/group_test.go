package datacli_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

type groupJSON struct {
	Group              string `json:"group"`
	State              string `json:"state"`
	AssignmentStrategy string `json:"assignmentStrategy"`
	Members            []struct {
		MemberID   string `json:"memberId"`
		ClientID   string `json:"clientId"`
		Assignment []struct {
			Topic      string  `json:"topic"`
			Partitions []int32 `json:"partitions"`
		} `json:"assignment"`
	} `json:"members"`
	Offsets  []offsetJSON `json:"offsets"`
	TotalLag int64        `json:"totalLag"`
}

type offsetJSON struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"currentOffset"`
	LogEndOffset  *int64 `json:"logEndOffset"`
	Lag           *int64 `json:"lag"`
	MemberID      string `json:"memberId"`
	ClientID      string `json:"clientId"`
}

type resetJSON struct {
	Partition      int32  `json:"partition"`
	PreviousOffset *int64 `json:"previousOffset"`
	NewOffset      int64  `json:"newOffset"`
}

// describe returns `group describe` of one group as JSON.
func describe(t *testing.T, addr, group string) groupJSON {
	t.Helper()
	var gs []groupJSON
	mustJSON(t, addr, &gs, "group", "describe", group)
	if len(gs) != 1 {
		t.Fatalf("describe %s: %+v", group, gs)
	}
	return gs[0]
}

// offsets formats a group's rows as "p:current/end/lag" for comparison.
func offsets(g groupJSON) string {
	n := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	var s []string
	for _, o := range g.Offsets {
		s = append(s, fmt.Sprintf("%s-%d:%s/%s/%s", o.Topic, o.Partition, n(o.CurrentOffset), n(o.LogEndOffset), n(o.Lag)))
	}
	return strings.Join(s, " ")
}

// resets formats reset-offsets rows as "p:previous->new".
func resets(rs []resetJSON) string {
	var s []string
	for _, r := range rs {
		prev := "-"
		if r.PreviousOffset != nil {
			prev = fmt.Sprint(*r.PreviousOffset)
		}
		s = append(s, fmt.Sprintf("%d:%s->%d", r.Partition, prev, r.NewOffset))
	}
	return strings.Join(s, " ")
}

// produceTo writes counts[p] records to each partition p of topic.
func produceTo(t *testing.T, cl *kgo.Client, topic string, counts ...int) {
	t.Helper()
	for p, n := range counts {
		for i := range n {
			cl.Produce(t.Context(), &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "%d-%d", p, i)}, nil)
		}
	}
	if err := cl.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// consumeN polls a group consumer until it has n records, then commits them.
func consumeN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("polled %d of %d records: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return got
}

// waitState waits until the group is in state.
func waitState(t *testing.T, addr, group, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := describe(t, addr, group)
		if g.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s is %s, want %s", group, g.State, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGroupOnBroker runs the group commands against Fjord's broker and its
// group coordinator, with a kgo consumer group committing real offsets.
func TestGroupOnBroker(t *testing.T) {
	addr := startBroker(t)
	must(t, addr, "topic", "create", "orders", "--partitions", "3")
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo(t, prod, "orders", 10, 20, 30)

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.ClientID("billing-worker"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	consumeN(t, cons, 60)
	produceTo(t, prod, "orders", 5, 0, 7)

	// Stable, one member owning every partition; lag is what was produced
	// after the commit.
	g := describe(t, addr, "billing")
	if g.State != "Stable" || len(g.Members) != 1 || g.Members[0].ClientID != "billing-worker" {
		t.Fatalf("describe: %+v", g)
	}
	if got, want := offsets(g), "orders-0:10/15/5 orders-1:20/20/0 orders-2:30/37/7"; got != want {
		t.Errorf("offsets: %s, want %s", got, want)
	}
	if g.TotalLag != 12 {
		t.Errorf("total lag %d, want 12", g.TotalLag)
	}
	for _, o := range g.Offsets {
		if o.MemberID != g.Members[0].MemberID || o.ClientID != "billing-worker" {
			t.Errorf("partition %d owned by %q/%q", o.Partition, o.MemberID, o.ClientID)
		}
	}
	table := must(t, addr, "group", "describe", "billing")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID" {
		t.Fatalf("describe table:\n%s", table)
	}
	if f := strings.Fields(lines[1]); len(f) != 9 || strings.Join(f[:6], " ") != "billing orders 0 10 15 5" || f[6] != g.Members[0].MemberID || f[8] != "billing-worker" {
		t.Errorf("describe row: %q", lines[1])
	}
	t.Logf("group describe billing:\n%s", table)
	if out := must(t, addr, "group", "describe", "billing", "--members", "--verbose"); !strings.Contains(out, "orders(0,1,2)") {
		t.Errorf("--members --verbose:\n%s", out)
	}
	if out := must(t, addr, "group", "describe", "--group", "billing", "--state"); !strings.Contains(out, "Stable") || !strings.Contains(out, "(0)") {
		t.Errorf("--state:\n%s", out)
	}
	if out := must(t, addr, "group", "list"); !strings.Contains(out, "billing") || !strings.Contains(out, "Stable") {
		t.Errorf("list:\n%s", out)
	}

	// Offsets of an active group stay put, and it cannot be deleted.
	if r := run(t, addr, "", "group", "reset-offsets", "billing", "--all-topics", "--to-earliest", "--execute"); r.err == nil || !strings.Contains(r.err.Error(), "inactive") {
		t.Errorf("reset of an active group: %v", r.err)
	}
	if r := run(t, addr, "", "group", "delete", "billing"); r.err == nil || !strings.Contains(r.stdout, "NON_EMPTY_GROUP") {
		t.Errorf("delete of an active group: %v\n%s", r.err, r.stdout)
	}

	cons.Close()
	waitState(t, addr, "billing", "Empty")
	g = describe(t, addr, "billing")
	if got, want := offsets(g), "orders-0:10/15/5 orders-1:20/20/0 orders-2:30/37/7"; got != want || len(g.Members) != 0 || g.Offsets[0].MemberID != "" {
		t.Errorf("empty group: %s, members %+v", got, g.Members)
	}

	var rs []resetJSON
	mustJSON(t, addr, &rs, "group", "reset-offsets", "billing", "--all-topics", "--to-earliest")
	if got := resets(rs); got != "0:10->0 1:20->0 2:30->0" {
		t.Errorf("dry run: %s", got)
	}
	if got := offsets(describe(t, addr, "billing")); got != "orders-0:10/15/5 orders-1:20/20/0 orders-2:30/37/7" {
		t.Errorf("a dry run changed the offsets: %s", got)
	}
	mustJSON(t, addr, &rs, "group", "reset-offsets", "billing", "--all-topics", "--to-earliest", "--execute")
	if got := offsets(describe(t, addr, "billing")); got != "orders-0:0/15/15 orders-1:0/20/20 orders-2:0/37/37" {
		t.Errorf("after --to-earliest: %s", got)
	}
	mustJSON(t, addr, &rs, "group", "reset-offsets", "billing", "--topic", "orders:0", "--shift-by", "3", "--execute")
	mustJSON(t, addr, &rs, "group", "reset-offsets", "billing", "--topic", "orders:1", "--to-offset", "100", "--execute")
	mustJSON(t, addr, &rs, "group", "reset-offsets", "billing", "--topic", "orders:2", "--to-latest", "--execute")
	if got := offsets(describe(t, addr, "billing")); got != "orders-0:3/15/12 orders-1:20/20/0 orders-2:37/37/0" {
		t.Errorf("after shift, offset (clamped) and latest: %s", got)
	}
	mustJSON(t, addr, &rs, "group", "reset-offsets", "billing", "--topic", "orders", "--shift-by", "-2", "--execute")
	if got := resets(rs); got != "0:3->1 1:20->18 2:37->35" {
		t.Errorf("shift back: %s", got)
	}

	// The group resumes where the offsets were reset to.
	cons2 := newClient(t, addr, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit())
	got := consumeN(t, cons2, 14+2+2)
	first := map[int32]int64{}
	for _, r := range got {
		if _, ok := first[r.Partition]; !ok {
			first[r.Partition] = r.Offset
		}
	}
	if fmt.Sprint(first) != "map[0:1 1:18 2:35]" {
		t.Errorf("the group resumed at %v", first)
	}
	cons2.Close()
	waitState(t, addr, "billing", "Empty")

	out := must(t, addr, "group", "delete-offsets", "billing", "--topic", "orders:2")
	if !strings.Contains(out, "orders  2          Successful") {
		t.Errorf("delete-offsets:\n%s", out)
	}
	if got := offsets(describe(t, addr, "billing")); got != "orders-0:15/15/0 orders-1:20/20/0" {
		t.Errorf("after delete-offsets: %s", got)
	}
	if out := must(t, addr, "group", "delete", "billing"); !strings.Contains(out, "billing  Deleted") {
		t.Errorf("delete:\n%s", out)
	}
	if r := run(t, addr, "", "group", "describe", "billing"); r.err == nil || !strings.Contains(r.err.Error(), "does not exist") {
		t.Errorf("describe after delete: %v", r.err)
	}
}

// TestResetByTime resets a group by record timestamps: --to-datetime and
// --by-duration.
func TestResetByTime(t *testing.T) {
	addr := startBroker(t)
	must(t, addr, "topic", "create", "clock", "--partitions", "1")
	prod := newClient(t, addr)
	now := time.Now()
	for i, age := range []time.Duration{2 * time.Hour, 10 * time.Minute, time.Minute} {
		for j := range 5 {
			r := &kgo.Record{Topic: "clock", Timestamp: now.Add(-age), Value: fmt.Appendf(nil, "%d-%d", i, j)}
			if err := prod.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A group that does not exist yet may be given offsets.
	var rs []resetJSON
	mustJSON(t, addr, &rs, "group", "reset-offsets", "replay", "--topic", "clock", "--to-latest", "--execute")
	if got := resets(rs); got != "0:-->15" {
		t.Errorf("new group: %s", got)
	}
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"--by-duration", "PT30M"}, 5},
		{[]string{"--to-datetime", now.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")}, 5},
		{[]string{"--by-duration", "5m"}, 10},
		{[]string{"--by-duration", "P1D"}, 0},
		{[]string{"--to-datetime", now.Add(time.Hour).Format("2006-01-02T15:04:05-07:00")}, 15},
	} {
		mustJSON(t, addr, &rs, "group", append([]string{"reset-offsets", "replay", "--topic", "clock", "--execute"}, tc.args...)...)
		if len(rs) != 1 || rs[0].NewOffset != tc.want {
			t.Errorf("%v: %s, want %d", tc.args, resets(rs), tc.want)
		}
	}
}

// TestGroupOnKfake runs describe and reset-offsets against franz-go's fake
// cluster: the commands work with any Kafka-protocol broker.
func TestGroupOnKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo(t, prod, "t", 4, 6)
	cons := newClient(t, addr, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	consumeN(t, cons, 10)
	cons.Close()
	produceTo(t, prod, "t", 1, 2)
	waitState(t, addr, "g", "Empty")
	if got := offsets(describe(t, addr, "g")); got != "t-0:4/5/1 t-1:6/8/2" {
		t.Errorf("describe: %s", got)
	}
	var rs []resetJSON
	mustJSON(t, addr, &rs, "group", "reset-offsets", "--group", "g", "--all-topics", "--to-earliest", "--execute")
	if got := offsets(describe(t, addr, "g")); got != "t-0:0/5/5 t-1:0/8/8" {
		t.Errorf("after reset: %s", got)
	}
}
