// Package topicconfig defines Kafka's topic-level configs: their names, types,
// validation, the broker properties their defaults come from, and how a
// resolved set becomes a commitlog.Config.
package topicconfig

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fjord-io/fjord/internal/commitlog"
)

// Type is a config's value type, numbered as DescribeConfigs v3+ reports it.
type Type int8

const (
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

// ErrInvalid is wrapped by every validation failure; it maps to INVALID_CONFIG.
var ErrInvalid = errors.New("invalid config")

// Def describes one topic config.
type Def struct {
	Name string
	Type Type
	// Default is Kafka's default when neither the topic nor the broker sets it.
	Default string
	// BrokerKeys are the broker properties that set the default, most
	// specific first (log.retention.ms before log.retention.minutes before
	// log.retention.hours), with the scale that turns each into this
	// config's unit.
	BrokerKeys []BrokerKey
	// Check validates a value already parsed as Type; nil accepts any.
	Check func(v string) error
	Doc   string
}

// BrokerKey is a broker property that provides a topic config's default.
type BrokerKey struct {
	Name  string
	Scale int64 // multiply the broker value by this (hours → ms); 0 means 1
}

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func listOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, item := range splitList(v) {
			if err := oneOf(allowed...)(item); err != nil {
				return fmt.Errorf("%q: %w", item, err)
			}
		}
		return nil
	}
}

func ratio(v string) error {
	f, _ := strconv.ParseFloat(v, 64)
	if f < 0 || f > 1 {
		return errors.New("must be between 0 and 1")
	}
	return nil
}

// throttledReplicas is Kafka's ThrottledReplicaListValidator: the literal
// "*", or a list of partitionId:brokerId items (empty items allowed).
func throttledReplicas(v string) error {
	items := strings.Split(strings.TrimSpace(v), ",")
	joined := ""
	ok := true
	for _, item := range items {
		item = strings.TrimSpace(item)
		joined += item
		if p, b, found := strings.Cut(item, ":"); item != "" && (!found || !digits(p) || !digits(b)) {
			ok = false
		}
	}
	if ok || joined == "*" {
		return nil
	}
	return errors.New("must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// ThrottledReplica reports whether list, a valid value of
// leader.replication.throttled.replicas or
// follower.replication.throttled.replicas, names the replica of partition
// on broker: "*" names every replica of the topic.
func ThrottledReplica(list string, partition, broker int32) bool {
	list = strings.TrimSpace(list)
	if list == "*" {
		return true
	}
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ",")
		p, b, _ := strings.Cut(strings.TrimSpace(item), ":")
		pn, perr := strconv.ParseInt(p, 10, 32)
		bn, berr := strconv.ParseInt(b, 10, 32)
		if perr == nil && berr == nil && int32(pn) == partition && int32(bn) == broker {
			return true
		}
	}
	return false
}

const maxLong = "9223372036854775807"

var defs = []Def{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", BrokerKeys: []BrokerKey{{Name: "log.cleanup.policy"}},
		Check: listOf("delete", "compact"), Doc: "delete, compact, or both: how old log segments are discarded."},
	{Name: "compression.type", Type: TypeString, Default: "producer", BrokerKeys: []BrokerKey{{Name: "compression.type"}},
		Check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), Doc: "The codec batches are stored with; producer keeps the producer's."},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", BrokerKeys: []BrokerKey{{Name: "log.cleaner.delete.retention.ms"}},
		Check: atLeast(0), Doc: "How long compaction keeps tombstones."},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", BrokerKeys: []BrokerKey{{Name: "log.segment.delete.delay.ms"}},
		Check: atLeast(0), Doc: "Delay before a deleted segment's file is removed."},
	{Name: "flush.messages", Type: TypeLong, Default: maxLong, BrokerKeys: []BrokerKey{{Name: "log.flush.interval.messages"}},
		Check: atLeast(1), Doc: "fsync the log after this many messages; 1 fsyncs every append."},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, BrokerKeys: []BrokerKey{{Name: "log.flush.interval.ms"}},
		Check: atLeast(0), Doc: "fsync the log at least this often."},
	{Name: "follower.replication.throttled.replicas", Type: TypeList, Default: "", Check: throttledReplicas,
		Doc: "Replicas throttled on the follower side, partitionId:brokerId,... or * for all: broker brokerId fetches partitionId, while outside its ISR, within its follower.replication.throttled.rate."},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", BrokerKeys: []BrokerKey{{Name: "log.index.interval.bytes"}},
		Check: atLeast(0), Doc: "Bytes between offset index entries."},
	{Name: "leader.replication.throttled.replicas", Type: TypeList, Default: "", Check: throttledReplicas,
		Doc: "Replicas throttled on the leader side, partitionId:brokerId,... or * for all: broker brokerId, leading partitionId, sends it to followers outside the ISR within its leader.replication.throttled.rate."},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: maxLong, BrokerKeys: []BrokerKey{{Name: "log.cleaner.max.compaction.lag.ms"}},
		Check: atLeast(1), Doc: "Longest a record may stay uncompacted."},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", BrokerKeys: []BrokerKey{{Name: "message.max.bytes"}},
		Check: atLeast(0), Doc: "Largest record batch the topic accepts."},
	{Name: "message.downconversion.enable", Type: TypeBoolean, Default: "true", BrokerKeys: []BrokerKey{{Name: "log.message.downconversion.enable"}},
		Doc: "Whether old fetch versions get down-converted batches."},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, BrokerKeys: []BrokerKey{{Name: "log.message.timestamp.after.max.ms"}},
		Check: atLeast(0), Doc: "How far in the future a CreateTime timestamp may be."},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, BrokerKeys: []BrokerKey{{Name: "log.message.timestamp.before.max.ms"}},
		Check: atLeast(0), Doc: "How far in the past a CreateTime timestamp may be."},
	{Name: "message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, BrokerKeys: []BrokerKey{{Name: "log.message.timestamp.difference.max.ms"}},
		Check: atLeast(0), Doc: "Deprecated: largest difference between a CreateTime timestamp and the broker's clock."},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", BrokerKeys: []BrokerKey{{Name: "log.message.timestamp.type"}},
		Check: oneOf("CreateTime", "LogAppendTime"), Doc: "Whether record timestamps are the producer's or the broker's append time."},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", BrokerKeys: []BrokerKey{{Name: "log.cleaner.min.cleanable.ratio"}},
		Check: ratio, Doc: "Share of the log that must be uncompacted before compaction runs."},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", BrokerKeys: []BrokerKey{{Name: "log.cleaner.min.compaction.lag.ms"}},
		Check: atLeast(0), Doc: "Shortest time a record stays uncompacted."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", BrokerKeys: []BrokerKey{{Name: "min.insync.replicas"}},
		Check: atLeast(1), Doc: "Replicas that must have a batch before an acks=all produce succeeds."},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", BrokerKeys: []BrokerKey{{Name: "log.preallocate"}}, Doc: "Preallocate segment files."},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1", BrokerKeys: []BrokerKey{{Name: "log.retention.bytes"}},
		Doc: "Largest size of a partition's log before old segments are deleted; -1 for no limit."},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000",
		BrokerKeys: []BrokerKey{{Name: "log.retention.ms"}, {Name: "log.retention.minutes", Scale: 60_000}, {Name: "log.retention.hours", Scale: 3_600_000}},
		Check:      atLeast(-1), Doc: "How long records are kept; -1 for ever."},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", BrokerKeys: []BrokerKey{{Name: "log.segment.bytes"}},
		Check: atLeast(14), Doc: "Size at which a log segment is rolled."},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", BrokerKeys: []BrokerKey{{Name: "log.index.size.max.bytes"}},
		Check: atLeast(4), Doc: "Largest size of a segment's offset index."},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0",
		BrokerKeys: []BrokerKey{{Name: "log.roll.jitter.ms"}, {Name: "log.roll.jitter.hours", Scale: 3_600_000}},
		Check:      atLeast(0), Doc: "Random jitter subtracted from segment.ms."},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000",
		BrokerKeys: []BrokerKey{{Name: "log.roll.ms"}, {Name: "log.roll.hours", Scale: 3_600_000}},
		Check:      atLeast(1), Doc: "Age at which a log segment is rolled."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", BrokerKeys: []BrokerKey{{Name: "unclean.leader.election.enable"}},
		Doc: "Whether a replica outside the ISR may become leader, at the cost of lost records."},
}

var byName = func() map[string]*Def {
	m := make(map[string]*Def, len(defs))
	for i := range defs {
		m[defs[i].Name] = &defs[i]
	}
	return m
}()

// Lookup returns the definition of a topic config.
func Lookup(name string) (*Def, bool) {
	d, ok := byName[name]
	return d, ok
}

// Defs returns every topic config definition, sorted by name.
func Defs() []Def { return defs }

// Validate checks one value against its definition.
func Validate(name, value string) error {
	d, ok := byName[name]
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalid, name)
	}
	if err := checkType(d.Type, value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, value, err)
	}
	if d.Check != nil {
		if err := d.Check(value); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, value, err)
		}
	}
	return nil
}

// ValidateAll checks a whole set of topic overrides.
func ValidateAll(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for k := range configs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := Validate(k, configs[k]); err != nil {
			return err
		}
	}
	return nil
}

func checkType(t Type, v string) error {
	var err error
	switch t {
	case TypeBoolean:
		if v != "true" && v != "false" {
			err = errors.New("must be true or false")
		}
	case TypeInt:
		_, err = strconv.ParseInt(v, 10, 32)
	case TypeShort:
		_, err = strconv.ParseInt(v, 10, 16)
	case TypeLong:
		_, err = strconv.ParseInt(v, 10, 64)
	case TypeDouble:
		_, err = strconv.ParseFloat(v, 64)
	}
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			return fmt.Errorf("not a valid %s", typeName(t))
		}
	}
	return err
}

func typeName(t Type) string {
	switch t {
	case TypeInt, TypeShort:
		return "int"
	case TypeLong:
		return "long"
	case TypeDouble:
		return "double"
	}
	return "value"
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Source says where a resolved value came from, numbered as DescribeConfigs
// reports it.
type Source int8

const (
	SourceTopic        Source = 1 // DYNAMIC_TOPIC_CONFIG
	SourceStaticBroker Source = 4 // STATIC_BROKER_CONFIG
	SourceDefault      Source = 5 // DEFAULT_CONFIG
)

// Value is one resolved config.
type Value struct {
	Def    *Def
	Value  string
	Source Source
	// Synonyms are the lower-precedence sources, most specific first.
	Synonyms []Synonym
}

// Synonym is a lower-precedence source of a config's value.
type Synonym struct {
	Name   string
	Value  string
	Source Source
}

// Set is a topic's resolved configuration: its overrides layered over the
// broker's properties and Kafka's defaults.
type Set struct {
	values map[string]Value
	// cleanup.policy, parsed once: produce checks it for every batch.
	compact, delete bool
}

// Resolve layers topic overrides over broker properties over defaults.
// Overrides must already be valid.
func Resolve(overrides, brokerProps map[string]string) Set {
	s := Set{values: make(map[string]Value, len(defs))}
	for i := range defs {
		d := &defs[i]
		v := Value{Def: d, Value: d.Default, Source: SourceDefault}
		var syn []Synonym
		if o, ok := overrides[d.Name]; ok {
			syn = append(syn, Synonym{Name: d.Name, Value: o, Source: SourceTopic})
		}
		for _, bk := range d.BrokerKeys {
			raw, ok := brokerProps[bk.Name]
			if !ok {
				continue
			}
			val := raw
			if bk.Scale > 1 {
				if n, err := strconv.ParseInt(raw, 10, 64); err == nil && n > 0 && n <= math.MaxInt64/bk.Scale {
					val = strconv.FormatInt(n*bk.Scale, 10)
				}
			}
			syn = append(syn, Synonym{Name: bk.Name, Value: val, Source: SourceStaticBroker})
		}
		syn = append(syn, Synonym{Name: d.Name, Value: d.Default, Source: SourceDefault})
		v.Value, v.Source = syn[0].Value, syn[0].Source
		v.Synonyms = syn
		s.values[d.Name] = v
	}
	s.compact = hasPolicy(s.str("cleanup.policy"), "compact")
	s.delete = hasPolicy(s.str("cleanup.policy"), "delete")
	return s
}

// Get returns a resolved value by name.
func (s Set) Get(name string) (Value, bool) {
	v, ok := s.values[name]
	return v, ok
}

// All returns every resolved value, sorted by name.
func (s Set) All() []Value {
	out := make([]Value, 0, len(defs))
	for i := range defs {
		out = append(out, s.values[defs[i].Name])
	}
	return out
}

func (s Set) str(name string) string { return s.values[name].Value }

func (s Set) long(name string) int64 {
	n, _ := strconv.ParseInt(s.values[name].Value, 10, 64)
	return n
}

// Int64 returns a numeric config.
func (s Set) Int64(name string) int64 { return s.long(name) }

// String returns a config's value.
func (s Set) String(name string) string { return s.str(name) }

// Compact reports whether cleanup.policy includes compact.
func (s Set) Compact() bool { return s.compact }

// Delete reports whether cleanup.policy includes delete.
func (s Set) Delete() bool { return s.delete }

func hasPolicy(v, p string) bool {
	for _, item := range splitList(v) {
		if item == p {
			return true
		}
	}
	return false
}

// LogAppendTime reports whether message.timestamp.type is LogAppendTime.
func (s Set) LogAppendTime() bool { return s.str("message.timestamp.type") == "LogAppendTime" }

func ms(n int64) time.Duration {
	if n < 0 {
		return -1
	}
	if n > int64(math.MaxInt64/time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Millisecond
}

// LogConfig turns the resolved set into the storage engine's tunables.
func (s Set) LogConfig() commitlog.Config {
	return commitlog.Config{
		SegmentBytes:       s.long("segment.bytes"),
		SegmentAge:         ms(s.long("segment.ms")),
		IndexIntervalBytes: int(s.long("index.interval.bytes")),
		RetentionAge:       ms(s.long("retention.ms")),
		RetentionBytes:     s.long("retention.bytes"),
		Delete:             s.Delete(),
		Compact:            s.Compact(),
		DeleteRetention:    ms(s.long("delete.retention.ms")),
		FlushMessages:      s.long("flush.messages"),
	}
}
