package datacli

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic runs `fjord topic <subcommand> [flags]`: kafka-topics.sh, topic
// configs as kafka-configs.sh sets them, and the console producer and
// consumer; args are the words after "topic".
func Topic(ctx context.Context, args []string, env Env) error {
	return main(ctx, "topic", topicVerbs, args, env)
}

var topicVerbs = []subcommand{
	{"create", "TOPIC...", "create topics", defineTopicCreate},
	{"list", "", "list the topics", defineTopicList},
	{"describe", "[TOPIC...]", "show topics' partitions, leaders, replicas and non-default configs", defineTopicDescribe},
	{"alter", "TOPIC...", "add partitions, set or delete configs", defineTopicAlter},
	{"delete", "TOPIC...", "delete topics", defineTopicDelete},
	{"produce", "TOPIC", "send stdin to a topic, one record per line", defineTopicProduce},
	{"consume", "TOPIC...", "print records to stdout", defineTopicConsume},
}

// topicsFrom returns the topics named by --topic and the arguments.
func topicsFrom(flagged multiFlag, args []string) []string {
	return append(slices.Clone([]string(flagged)), args...)
}

// configFlags collects --config k=v (repeatable) into a map.
func parseConfigs(kvs []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("config %q is not name=value", kv)
		}
		out[k] = ptr(v)
	}
	return out, nil
}

// topicResult is one row of create, alter and delete.
type topicResult struct {
	Topic string `json:"topic"`
	// TopicID, Partitions and ReplicationFactor are set by create.
	TopicID           string `json:"topicId,omitempty"`
	Partitions        int32  `json:"partitions,omitempty"`
	ReplicationFactor int16  `json:"replicationFactor,omitempty"`
	Error             string `json:"error,omitempty"`
}

// printResults writes one line per topic (Kafka's "Created topic foo.") or
// the JSON array, and returns an error if any topic failed.
func (c *cli) printResults(verb string, rs []topicResult) error {
	failed := 0
	for _, r := range rs {
		if r.Error != "" {
			failed++
		}
	}
	if c.json() {
		if err := c.writeJSON(rs); err != nil {
			return err
		}
	} else {
		for _, r := range rs {
			if r.Error != "" {
				fmt.Fprintf(c.env.Stderr, "Error: topic %s: %s\n", r.Topic, r.Error)
			} else if verb != "" {
				fmt.Fprintf(c.env.Stdout, "%s topic %s.\n", verb, r.Topic)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d topics failed", failed, len(rs))
	}
	return nil
}

func defineTopicCreate(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var topics, configs multiFlag
	fs.Var(&topics, "topic", "a `topic` to create (repeatable; names may also be given as arguments)")
	partitions := fs.Int("partitions", -1, "number of partitions (default: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replicas of each partition (default: the broker's default.replication.factor)")
	fs.Var(&configs, "config", "topic config `name=value` (repeatable)")
	ifNotExists := fs.Bool("if-not-exists", false, "succeed if the topic already exists")
	validate := fs.Bool("validate-only", false, "ask the broker to check the request without creating anything")
	return func(ctx context.Context, c *cli, args []string) error {
		names := topicsFrom(topics, args)
		if len(names) == 0 {
			return errors.New("no topic given")
		}
		cfg, err := parseConfigs(configs)
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
		create := adm.CreateTopics
		if *validate {
			create = adm.ValidateCreateTopics
		}
		resps, err := create(ctx, int32(*partitions), int16(*rf), cfg, names...)
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		var rs []topicResult
		for _, name := range names {
			r := resps[name]
			row := topicResult{Topic: name, TopicID: topicID(r.ID), Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor}
			if r.Err != nil && !(*ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists)) {
				row.Error = explain(r.Err, r.ErrMessage).Error()
			}
			rs = append(rs, row)
		}
		verb := "Created"
		if *validate {
			verb = "Validated creating"
		}
		return c.printResults(verb, rs)
	}
}

// topicID formats a topic id as Kafka does: unpadded URL-safe base64.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// listedTopic is one row of `topic list`.
type listedTopic struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replicationFactor"`
	Internal          bool   `json:"internal"`
}

func defineTopicList(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	excludeInternal := fs.Bool("exclude-internal", false, "leave out internal topics (__consumer_offsets)")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected arguments %v", args)
		}
		adm, err := c.admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		details, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		rows := []listedTopic{}
		for _, d := range details.Sorted() {
			if d.IsInternal && *excludeInternal {
				continue
			}
			rows = append(rows, listedTopic{d.Topic, len(d.Partitions), d.Partitions.NumReplicas(), d.IsInternal})
		}
		if c.json() {
			return c.writeJSON(rows)
		}
		t := newTable(c.env.Stdout, "TOPIC", "PARTITIONS", "REPLICATION-FACTOR")
		for _, r := range rows {
			t.row(r.Topic, r.Partitions, r.ReplicationFactor)
		}
		return t.flush()
	}
}

// describedTopic is what `topic describe` reports about one topic.
type describedTopic struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topicId"`
	PartitionCount    int    `json:"partitionCount"`
	ReplicationFactor int    `json:"replicationFactor"`
	Internal          bool   `json:"internal"`
	// Configs are the configs not at their defaults (set on the topic or
	// on the broker), as Kafka's describe shows them.
	Configs    map[string]string    `json:"configs"`
	Partitions []describedPartition `json:"partitions"`
}

type describedPartition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Offline     []int32 `json:"offline,omitempty"`
	Error       string  `json:"error,omitempty"`
}

func defineTopicDescribe(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var topics multiFlag
	fs.Var(&topics, "topic", "a `topic` to describe (repeatable; names may also be given as arguments; default all)")
	excludeInternal := fs.Bool("exclude-internal", false, "without named topics, leave out internal topics")
	return func(ctx context.Context, c *cli, args []string) error {
		names := topicsFrom(topics, args)
		adm, err := c.admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		details, err := adm.ListTopicsWithInternal(ctx, names...)
		if err != nil {
			return fmt.Errorf("describe topics: %w", err)
		}
		var missing []string
		var found []string
		for _, d := range details.Sorted() {
			switch {
			case errors.Is(d.Err, kerr.UnknownTopicOrPartition):
				missing = append(missing, d.Topic)
			case d.Err != nil:
				return fmt.Errorf("describe topic %s: %w", d.Topic, d.Err)
			case len(names) == 0 && d.IsInternal && *excludeInternal:
			default:
				found = append(found, d.Topic)
			}
		}
		configs, err := adm.DescribeTopicConfigs(ctx, found...)
		if err != nil {
			return fmt.Errorf("describe topic configs: %w", err)
		}
		out := []describedTopic{}
		for _, name := range found {
			d := details[name]
			dt := describedTopic{
				Topic: name, TopicID: topicID(d.ID), PartitionCount: len(d.Partitions),
				ReplicationFactor: d.Partitions.NumReplicas(), Internal: d.IsInternal,
				Configs: map[string]string{}, Partitions: []describedPartition{},
			}
			rc, err := configs.On(name, nil)
			if err != nil {
				return fmt.Errorf("describe configs of topic %s: %w", name, err)
			}
			if rc.Err != nil {
				return fmt.Errorf("describe configs of topic %s: %w", name, explain(rc.Err, rc.ErrMessage))
			}
			for _, cfg := range rc.Configs {
				if cfg.Source == kmsg.ConfigSourceDefaultConfig {
					continue
				}
				v := ""
				switch {
				case cfg.Sensitive:
					v = "(sensitive)"
				case cfg.Value != nil:
					v = *cfg.Value
				}
				dt.Configs[cfg.Key] = v
			}
			for _, p := range d.Partitions.Sorted() {
				dp := describedPartition{
					Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
					Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), Offline: p.OfflineReplicas,
				}
				if p.Err != nil {
					dp.Error = p.Err.Error()
				}
				dt.Partitions = append(dt.Partitions, dp)
			}
			out = append(out, dt)
		}
		if c.json() {
			err = c.writeJSON(out)
		} else {
			err = c.printTopics(out)
		}
		if err != nil {
			return err
		}
		switch len(missing) {
		case 0:
			return nil
		case 1:
			return fmt.Errorf("topic %q does not exist", missing[0])
		}
		return fmt.Errorf("topics %q do not exist", missing)
	}
}

// printTopics writes topics as kafka-topics.sh --describe does: a line per
// topic, then a tab-indented line per partition.
func (c *cli) printTopics(ts []describedTopic) error {
	w := c.env.Stdout
	for _, t := range ts {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range t.Configs {
				if !yield(k) {
					return
				}
			}
		})
		cfgs := make([]string, len(keys))
		for i, k := range keys {
			cfgs[i] = k + "=" + t.Configs[k]
		}
		fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
			t.Topic, cmp.Or(t.TopicID, "-"), t.PartitionCount, t.ReplicationFactor, strings.Join(cfgs, ","))
		for _, p := range t.Partitions {
			leader := strconv.Itoa(int(p.Leader))
			if p.Leader < 0 {
				leader = "none"
			}
			fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s", t.Topic, p.Partition, leader, ints(p.Replicas), ints(p.ISR))
			if len(p.Offline) > 0 {
				fmt.Fprintf(w, "\tOffline: %s", ints(p.Offline))
			}
			if p.Error != "" {
				fmt.Fprintf(w, "\tError: %s", p.Error)
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

func ints(ns []int32) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(int(n))
	}
	return strings.Join(s, ",")
}

func nonNil(ns []int32) []int32 {
	if ns == nil {
		return []int32{}
	}
	return ns
}

func defineTopicAlter(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var topics, set, del multiFlag
	fs.Var(&topics, "topic", "a `topic` to alter (repeatable; names may also be given as arguments)")
	partitions := fs.Int("partitions", 0, "grow each topic to `n` partitions (partitions can only be added)")
	fs.Var(&set, "config", "set topic config `name=value` (repeatable)")
	fs.Var(&set, "add-config", "same as --config, kafka-configs.sh's name for it")
	fs.Var(&del, "delete-config", "return topic config `name` to its default (repeatable)")
	return func(ctx context.Context, c *cli, args []string) error {
		names := topicsFrom(topics, args)
		if len(names) == 0 {
			return errors.New("no topic given")
		}
		if *partitions == 0 && len(set) == 0 && len(del) == 0 {
			return errors.New("nothing to alter: give --partitions, --config or --delete-config")
		}
		cfg, err := parseConfigs(set)
		if err != nil {
			return err
		}
		var alters []kadm.AlterConfig
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range cfg {
				if !yield(k) {
					return
				}
			}
		}) {
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: cfg[k]})
		}
		for _, k := range del {
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
		}
		adm, err := c.admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		failed := map[string]string{}
		if *partitions > 0 {
			resps, err := adm.UpdatePartitions(ctx, *partitions, names...)
			if err != nil {
				return fmt.Errorf("create partitions: %w", err)
			}
			for _, name := range names {
				if r, ok := resps[name]; !ok {
					failed[name] = "no response to create partitions"
				} else if r.Err != nil {
					failed[name] = "partitions: " + explain(r.Err, r.ErrMessage).Error()
				}
			}
		}
		if len(alters) > 0 {
			resps, err := adm.AlterTopicConfigs(ctx, alters, names...)
			if err != nil {
				return fmt.Errorf("alter topic configs: %w", err)
			}
			for _, name := range names {
				r, err := resps.On(name, nil)
				switch {
				case err != nil:
					failed[name] = strings.TrimPrefix(failed[name]+"; ", "; ") + "configs: no response"
				case r.Err != nil:
					failed[name] = strings.TrimPrefix(failed[name]+"; ", "; ") + "configs: " + explain(r.Err, r.ErrMessage).Error()
				}
			}
		}
		var rs []topicResult
		for _, name := range names {
			rs = append(rs, topicResult{Topic: name, Error: failed[name]})
		}
		return c.printResults("Updated", rs)
	}
}

func defineTopicDelete(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	var topics multiFlag
	fs.Var(&topics, "topic", "a `topic` to delete (repeatable; names may also be given as arguments)")
	ifExists := fs.Bool("if-exists", false, "succeed if the topic does not exist")
	return func(ctx context.Context, c *cli, args []string) error {
		names := topicsFrom(topics, args)
		if len(names) == 0 {
			return errors.New("no topic given")
		}
		adm, err := c.admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		resps, err := adm.DeleteTopics(ctx, names...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		var rs []topicResult
		for _, name := range names {
			row := topicResult{Topic: name}
			if r, ok := resps[name]; !ok {
				row.Error = "no response"
			} else if r.Err != nil && !(*ifExists && errors.Is(r.Err, kerr.UnknownTopicOrPartition)) {
				row.Error = explain(r.Err, r.ErrMessage).Error()
			}
			rs = append(rs, row)
		}
		return c.printResults("Deleted", rs)
	}
}

// topicSpec is a --topic of reset-offsets and delete-offsets:
// topic[:p,p,...], nil partitions meaning all of them.
type topicSpec struct {
	topic      string
	partitions []int32
}

func parseTopicSpecs(ss []string) ([]topicSpec, error) {
	var out []topicSpec
	for _, s := range ss {
		name, ps, hasPs := strings.Cut(s, ":")
		if name == "" {
			return nil, fmt.Errorf("--topic %q: no topic name", s)
		}
		spec := topicSpec{topic: name}
		if hasPs {
			for _, p := range strings.Split(ps, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("--topic %q: partition %q is not a number", s, p)
				}
				spec.partitions = append(spec.partitions, int32(n))
			}
		}
		out = append(out, spec)
	}
	return out, nil
}

// expandSpecs checks the topics exist and returns their partitions: those
// given, or all of them.
func expandSpecs(ctx context.Context, adm *kadm.Client, specs []topicSpec) (kadm.TopicsSet, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.topic
	}
	details, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	set := kadm.TopicsSet{}
	for _, s := range specs {
		d, ok := details[s.topic]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return nil, fmt.Errorf("topic %q does not exist", s.topic)
		case d.Err != nil:
			return nil, fmt.Errorf("describe topic %s: %w", s.topic, d.Err)
		}
		if s.partitions == nil {
			for p := range d.Partitions {
				set.Add(s.topic, p)
			}
			continue
		}
		for _, p := range s.partitions {
			if _, ok := d.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %s has no partition %d", s.topic, p)
			}
			set.Add(s.topic, p)
		}
	}
	return set, nil
}
