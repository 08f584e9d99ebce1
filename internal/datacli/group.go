package datacli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Group runs `fjord group <subcommand> [flags]`, Kafka's
// kafka-consumer-groups.sh; args are the words after "group".
func Group(ctx context.Context, args []string, env Env) error {
	return main(ctx, "group", groupVerbs, args, env)
}

var groupVerbs = []subcommand{
	{"list", "", "list the groups with their state", defineGroupList},
	{"describe", "[GROUP...]", "committed offset, log end offset and lag per partition, and who consumes it", defineGroupDescribe},
	{"delete", "GROUP...", "delete inactive groups and their committed offsets", defineGroupDelete},
	{"delete-offsets", "GROUP", "delete a group's committed offsets for --topic", defineGroupDeleteOffsets},
	{"reset-offsets", "[GROUP...]", "move an inactive group's committed offsets (prints the plan; --execute commits it)", defineGroupReset},
}

// groupsFlag is the group selection of describe, delete and reset-offsets:
// positional names, --group (repeatable, Kafka's spelling) or --all-groups.
type groupsFlag struct {
	names multiFlag
	all   bool
}

func (g *groupsFlag) define(fs *flag.FlagSet) {
	fs.Var(&g.names, "group", "a `group` to act on (repeatable; names may also be given as arguments)")
	fs.BoolVar(&g.all, "all-groups", false, "act on every group")
}

// resolve returns the groups asked for: the names given, or with --all-groups
// every group the cluster lists.
func (g *groupsFlag) resolve(ctx context.Context, adm *kadm.Client, args []string) ([]string, error) {
	names := append(slices.Clone([]string(g.names)), args...)
	switch {
	case g.all && len(names) > 0:
		return nil, errors.New("give group names or --all-groups, not both")
	case g.all:
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("list groups: %w", firstShard(err))
		}
		return listed.Groups(), nil
	case len(names) == 0:
		return nil, errors.New("no group: give group names or --all-groups")
	}
	return names, nil
}

// listedGroup is one row of `group list`.
type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocolType"`
}

func defineGroupList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var states multiFlag
	fs.Var(&states, "state", "list only groups in `state` (Stable, Empty, PreparingRebalance, CompletingRebalance; repeatable or comma-separated)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected arguments %v", args)
		}
		var filter []string
		for _, s := range states {
			filter = append(filter, strings.Split(s, ",")...)
		}
		adm, err := c.admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		listed, err := adm.ListGroups(ctx, filter...)
		if err != nil {
			return fmt.Errorf("list groups: %w", firstShard(err))
		}
		rows := []listedGroup{}
		for _, g := range listed.Sorted() {
			rows = append(rows, listedGroup{g.Group, g.State, g.ProtocolType})
		}
		if c.json() {
			return c.writeJSON(rows)
		}
		t := newTable(c.env.Stdout, "GROUP", "STATE", "PROTOCOL-TYPE")
		for _, r := range rows {
			t.row(r.Group, r.State, r.ProtocolType)
		}
		return t.flush()
	}
}

// describedGroup is what `group describe` reports about one group.
type describedGroup struct {
	Group              string            `json:"group"`
	State              string            `json:"state"`
	ProtocolType       string            `json:"protocolType"`
	AssignmentStrategy string            `json:"assignmentStrategy"`
	Coordinator        coordinator       `json:"coordinator"`
	Members            []describedMember `json:"members"`
	Offsets            []offsetRow       `json:"offsets"`
	// TotalLag sums the lag of the partitions with a committed offset.
	TotalLag int64 `json:"totalLag"`
}

type coordinator struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

type describedMember struct {
	MemberID   string            `json:"memberId"`
	InstanceID string            `json:"groupInstanceId,omitempty"`
	ClientID   string            `json:"clientId"`
	Host       string            `json:"host"`
	Assignment []topicPartitions `json:"assignment"`
}

type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// offsetRow is one partition of a group: assigned to a member, or with a
// committed offset, or both. Unknown numbers are nil.
type offsetRow struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"currentOffset"`
	LogEndOffset  *int64 `json:"logEndOffset"`
	Lag           *int64 `json:"lag"`
	MemberID      string `json:"memberId"`
	Host          string `json:"host"`
	ClientID      string `json:"clientId"`
}

func defineGroupDescribe(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var sel groupsFlag
	sel.define(fs)
	members := fs.Bool("members", false, "show the members: GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS")
	verbose := fs.Bool("verbose", false, "with --members, also each member's instance id and assignment")
	state := fs.Bool("state", false, "show the group: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS")
	fs.Bool("offsets", true, "show the offsets and lag per partition (the default view)")
	return func(ctx context.Context, c *cli, args []string) error {
		if *members && *state {
			return errors.New("give at most one of --members and --state")
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
		groups, err := describeGroups(ctx, adm, names)
		if err != nil {
			return err
		}
		var missing []string
		found := groups[:0]
		for _, g := range groups {
			if g.State == "Dead" {
				missing = append(missing, g.Group)
				continue
			}
			found = append(found, g)
		}
		if c.json() {
			if err := c.writeJSON(found); err != nil {
				return err
			}
		} else {
			switch {
			case *members:
				err = c.printMembers(found, *verbose)
			case *state:
				err = c.printStates(found)
			default:
				err = c.printOffsets(found)
			}
			if err != nil {
				return err
			}
		}
		return groupsMissing(missing)
	}
}

func groupsMissing(names []string) error {
	switch len(names) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("consumer group %q does not exist", names[0])
	}
	return fmt.Errorf("consumer groups %q do not exist", names)
}

// describeGroups describes the named groups, in order, with their
// committed offsets and the log end offsets of every partition that is
// assigned or committed. A group that does not exist is reported in state
// Dead, as Kafka reports it.
func describeGroups(ctx context.Context, adm *kadm.Client, names []string) ([]describedGroup, error) {
	described, err := adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", firstShard(err))
	}
	committed := adm.FetchManyOffsets(ctx, names...)
	topics := kadm.TopicsSet{}
	for _, name := range names {
		g := described[name]
		if g.Err != nil {
			return nil, fmt.Errorf("describe group %s: %w", name, explain(g.Err, g.ErrMessage))
		}
		if r, ok := committed[name]; ok && r.Err != nil {
			return nil, fmt.Errorf("fetch offsets of group %s: %w", name, r.Err)
		}
		topics.Merge(g.AssignedPartitions())
		topics.Merge(committed[name].CommittedPartitions())
	}
	var ends kadm.ListedOffsets
	if ts := topics.Topics(); len(ts) > 0 {
		// Partial results are fine: a partition whose end is unknown shows "-".
		ends, err = adm.ListEndOffsets(ctx, ts...)
		if err != nil && ends == nil {
			return nil, fmt.Errorf("list end offsets: %w", err)
		}
	}
	out := make([]describedGroup, 0, len(names))
	for _, name := range names {
		g := described[name]
		d := describedGroup{
			Group: name, State: g.State, ProtocolType: g.ProtocolType, AssignmentStrategy: g.Protocol,
			Coordinator: coordinator{g.Coordinator.NodeID, g.Coordinator.Host, g.Coordinator.Port},
			Members:     []describedMember{},
			Offsets:     []offsetRow{},
		}
		rows := map[topicPartition]*offsetRow{}
		row := func(t string, p int32) *offsetRow {
			k := topicPartition{t, p}
			if r := rows[k]; r != nil {
				return r
			}
			r := &offsetRow{Topic: t, Partition: p}
			if o, ok := ends.Lookup(t, p); ok && o.Err == nil && o.Offset >= 0 {
				r.LogEndOffset = ptr(o.Offset)
			}
			rows[k] = r
			return r
		}
		for _, m := range g.Members {
			dm := describedMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: []topicPartitions{}}
			if m.InstanceID != nil {
				dm.InstanceID = *m.InstanceID
			}
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range a.Topics {
					ps := slices.Sorted(slices.Values(t.Partitions))
					dm.Assignment = append(dm.Assignment, topicPartitions{t.Topic, ps})
					for _, p := range ps {
						r := row(t.Topic, p)
						r.MemberID, r.Host, r.ClientID = m.MemberID, m.ClientHost, m.ClientID
					}
				}
				slices.SortFunc(dm.Assignment, func(a, b topicPartitions) int { return cmp.Compare(a.Topic, b.Topic) })
			}
			d.Members = append(d.Members, dm)
		}
		committed[name].Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || o.At < 0 {
				return
			}
			r := row(o.Topic, o.Partition)
			r.CurrentOffset = ptr(o.At)
		})
		for _, r := range rows {
			if r.CurrentOffset != nil && r.LogEndOffset != nil {
				r.Lag = ptr(*r.LogEndOffset - *r.CurrentOffset)
				d.TotalLag += *r.Lag
			}
			d.Offsets = append(d.Offsets, *r)
		}
		slices.SortFunc(d.Offsets, func(a, b offsetRow) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		out = append(out, d)
	}
	return out, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// printOffsets is Kafka's default --describe view.
func (c *cli) printOffsets(groups []describedGroup) error {
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(c.env.Stdout)
		}
		c.stateNote(g)
		if len(g.Offsets) == 0 {
			c.note("Consumer group '%s' has no committed offsets and no assigned partitions.", g.Group)
			continue
		}
		t := newTable(c.env.Stdout, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
		for _, r := range g.Offsets {
			t.row(g.Group, r.Topic, r.Partition, r.CurrentOffset, r.LogEndOffset, r.Lag, r.MemberID, r.Host, r.ClientID)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// stateNote says on stderr what Kafka's tool says about a group that is not
// stable.
func (c *cli) stateNote(g describedGroup) {
	switch g.State {
	case "Empty":
		c.note("Consumer group '%s' has no active members.", g.Group)
	case "PreparingRebalance", "CompletingRebalance":
		c.note("Warning: consumer group '%s' is rebalancing.", g.Group)
	}
}

// printMembers is Kafka's --describe --members [--verbose] view.
func (c *cli) printMembers(groups []describedGroup, verbose bool) error {
	header := []string{"GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"}
	if verbose {
		header = []string{"GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"}
	}
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(c.env.Stdout)
		}
		c.stateNote(g)
		if len(g.Members) == 0 {
			continue
		}
		t := newTable(c.env.Stdout, header...)
		for _, m := range g.Members {
			n := 0
			var parts []string
			for _, a := range m.Assignment {
				n += len(a.Partitions)
				ps := make([]string, len(a.Partitions))
				for i, p := range a.Partitions {
					ps[i] = strconv.Itoa(int(p))
				}
				parts = append(parts, a.Topic+"("+strings.Join(ps, ",")+")")
			}
			if verbose {
				t.row(g.Group, m.MemberID, m.InstanceID, m.Host, m.ClientID, n, strings.Join(parts, ","))
			} else {
				t.row(g.Group, m.MemberID, m.Host, m.ClientID, n)
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// printStates is Kafka's --describe --state view.
func (c *cli) printStates(groups []describedGroup) error {
	t := newTable(c.env.Stdout, "GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
	for _, g := range groups {
		co := fmt.Sprintf("%s:%d (%d)", g.Coordinator.Host, g.Coordinator.Port, g.Coordinator.ID)
		t.row(g.Group, co, g.AssignmentStrategy, g.State, len(g.Members))
	}
	return t.flush()
}

// deletedGroup is one row of `group delete`.
type deletedGroup struct {
	Group string `json:"group"`
	Error string `json:"error,omitempty"`
}

func defineGroupDelete(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var sel groupsFlag
	sel.define(fs)
	return func(ctx context.Context, c *cli, args []string) error {
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
		resps, err := adm.DeleteGroups(ctx, names...)
		if err != nil && resps == nil {
			return fmt.Errorf("delete groups: %w", firstShard(err))
		}
		rows := make([]deletedGroup, 0, len(names))
		failed := 0
		for _, name := range names {
			r, ok := resps[name]
			row := deletedGroup{Group: name}
			switch {
			case !ok:
				row.Error = fmt.Sprintf("no response: %v", err)
			case r.Err != nil:
				row.Error = explain(r.Err, r.ErrMessage).Error()
			}
			if row.Error != "" {
				failed++
			}
			rows = append(rows, row)
		}
		if c.json() {
			err = c.writeJSON(rows)
		} else {
			t := newTable(c.env.Stdout, "GROUP", "STATUS")
			for _, r := range rows {
				t.row(r.Group, cmp.Or(r.Error, "Deleted"))
			}
			err = t.flush()
		}
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d groups not deleted", failed, len(names))
		}
		return nil
	}
}

// deletedOffset is one row of `group delete-offsets`.
type deletedOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error,omitempty"`
}

func defineGroupDeleteOffsets(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var group string
	var topics multiFlag
	fs.StringVar(&group, "group", "", "the `group` (or give it as the argument)")
	fs.Var(&topics, "topic", "`topic[:partition,...]` whose offsets to delete; without partitions, all of them (repeatable)")
	return func(ctx context.Context, c *cli, args []string) error {
		if group == "" && len(args) == 1 {
			group, args = args[0], nil
		}
		if group == "" || len(args) > 0 {
			return errors.New("give exactly one group")
		}
		if len(topics) == 0 {
			return errors.New("--topic is required")
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
		set, err := expandSpecs(ctx, adm, specs)
		if err != nil {
			return err
		}
		resps, err := adm.DeleteOffsets(ctx, group, set)
		if err != nil {
			return fmt.Errorf("delete offsets of group %s: %w", group, err)
		}
		var rows []deletedOffset
		failed := 0
		for _, tp := range set.Sorted() {
			for _, p := range tp.Partitions {
				row := deletedOffset{Topic: tp.Topic, Partition: p}
				if e, ok := resps.Lookup(tp.Topic, p); !ok {
					row.Error = "no response"
				} else if e != nil {
					row.Error = e.Error()
				}
				if row.Error != "" {
					failed++
				}
				rows = append(rows, row)
			}
		}
		if c.json() {
			err = c.writeJSON(rows)
		} else {
			t := newTable(c.env.Stdout, "TOPIC", "PARTITION", "STATUS")
			for _, r := range rows {
				t.row(r.Topic, r.Partition, cmp.Or(r.Error, "Successful"))
			}
			err = t.flush()
		}
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d partitions' offsets not deleted", failed)
		}
		return nil
	}
}

// explain adds a broker's error message, when it sent one, to its error
// code: "TOPIC_ALREADY_EXISTS: topic "a" already exists". errors.Is still
// matches the code.
func explain(err error, msg string) error {
	if msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return &brokerError{err, msg}
}

// brokerError is a Kafka error code with the broker's message about it.
type brokerError struct {
	code error
	msg  string
}

func (e *brokerError) Error() string {
	name := e.code.Error()
	if ke, ok := e.code.(*kerr.Error); ok {
		name = ke.Message
	}
	return name + ": " + e.msg
}

func (e *brokerError) Unwrap() error { return e.code }
