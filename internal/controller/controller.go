// Package controller keeps every partition of a cluster led by a live
// broker. The broker that holds controllership runs Run; the broker's admin
// APIs use ElectLeaders (ElectLeaders, key 43) and Assign (CreateTopics,
// CreatePartitions).
//
// # Rules
//
// A replica is eligible when its broker is registered (Store.Brokers) and
// unfenced: the controller has processed the broker's current registration,
// so Store.UnfencedEpoch equals the broker's Epoch. A broker that has just
// registered, after a start or a restart, is fenced.
//
// Run is level-based: each pass reads the whole current state and applies,
// to every partition:
//
//  1. ISR: members that are not eligible leave the ISR, unless none would
//     remain; then the ISR stays as it is, so that a member, which holds
//     every committed record, can lead again when it returns (Kafka keeps
//     the last member for the same reason).
//  2. Leader: a leader that is not eligible is replaced by the first replica,
//     in replica order, that is in the ISR and eligible, or by none (-1). A
//     partition without a leader gets one the same way.
//  3. Unclean election: a partition still without a leader, whose topic sets
//     unclean.leader.election.enable (or the broker default does), and none
//     of whose ISR members is registered at all, gets the first eligible
//     replica as leader and as sole ISR member, at the cost of the records
//     only the ISR had. ISR members that are merely restarting are waited
//     for.
//  4. Fencing: once a pass has processed every partition that involves a
//     fenced broker, the controller unfences it (Store.Unfence). The next
//     pass, triggered by that write, elects it where it is the only ISR
//     member, so a restarted broker leads its single-replica partitions
//     again, at a new leader epoch.
//  5. Reassignment: a partition being reassigned whose adding replicas are
//     all in the ISR gets its target replicas (reassign.go), handing
//     leadership over if its leader is being removed.
//  6. Preferred leaders: when auto.leader.rebalance.enable, every
//     leader.imbalance.check.interval.seconds, each broker whose share of
//     the partitions it is preferred for (first in Replicas) but does not
//     lead exceeds leader.imbalance.per.broker.percentage gets those
//     partitions back where it is eligible and in the ISR.
//
// Passes run on every change the store reports (coalesced) and every
// ResyncInterval as a backstop. Every write is a compare-and-swap whose
// function applies the rules to the partition as committed, so a decision
// taken on state that has since changed is recomputed, and becomes a no-op
// rather than overwriting the newer state. The writes are batched
// (Store.UpdatePartitions, batchSize partitions per call), so failing over
// 10,000 partitions takes about eighty etcd transactions, not 10,000.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fjord-io/fjord/internal/metadata"
)

// Store is the cluster metadata the controller reads and changes;
// *metadata.Etcd implements it.
type Store interface {
	Brokers() []metadata.Broker
	Topics() []metadata.Topic
	UpdatePartitions(updates []metadata.PartitionUpdate) []error
	Watch(ctx context.Context) <-chan struct{}
	UnfencedEpoch(node int32) int64
	Unfence(node int32, epoch int64) error
}

var _ Store = (*metadata.Etcd)(nil)

// Config tunes the controller. ParseConfig(nil) gives Kafka's defaults; the
// zero Config never elects uncleanly and never rebalances.
type Config struct {
	// UncleanLeaderElection is the broker default of the topic config
	// unclean.leader.election.enable; a topic's override wins.
	UncleanLeaderElection bool
	// AutoLeaderRebalance (auto.leader.rebalance.enable) moves leadership
	// back to preferred replicas.
	AutoLeaderRebalance bool
	// ImbalanceCheckInterval (leader.imbalance.check.interval.seconds) is
	// how often leadership is rebalanced. Default 300 s.
	ImbalanceCheckInterval time.Duration
	// ImbalancePercentage (leader.imbalance.per.broker.percentage) is the
	// share of a broker's preferred partitions it may not lead before they
	// are moved back to it.
	ImbalancePercentage int
	// ResyncInterval is how often a pass runs when nothing changes, and how
	// soon failed writes are retried. Default 1 s.
	ResyncInterval time.Duration
	// MaxInFlight bounds the batches of partition updates (Store.
	// UpdatePartitions calls of up to batchSize partitions) written at
	// once. Default 8.
	MaxInFlight int
}

const (
	// batchSize is the partitions written per Store.UpdatePartitions
	// call: one transaction within etcd's default --max-txn-ops (128).
	batchSize = 128
	// batchesInFlight is the default of Config.MaxInFlight, and the bound
	// ElectLeaders and Reassign use.
	batchesInFlight = 8
)

// Broker properties Config reads, as in Kafka's server.properties.
const (
	propUnclean          = "unclean.leader.election.enable"
	propAutoRebalance    = "auto.leader.rebalance.enable"
	propImbalanceSeconds = "leader.imbalance.check.interval.seconds"
	propImbalancePercent = "leader.imbalance.per.broker.percentage"
)

// ParseConfig reads a Config from broker properties; missing keys take
// Kafka's defaults.
func ParseConfig(props map[string]string) (Config, error) {
	cfg := Config{
		AutoLeaderRebalance:    true,
		ImbalanceCheckInterval: 300 * time.Second,
		ImbalancePercentage:    10,
	}
	var err error
	if v, ok := props[propUnclean]; ok {
		if cfg.UncleanLeaderElection, err = parseBool(v); err != nil {
			return Config{}, fmt.Errorf("controller: %s: %w", propUnclean, err)
		}
	}
	if v, ok := props[propAutoRebalance]; ok {
		if cfg.AutoLeaderRebalance, err = parseBool(v); err != nil {
			return Config{}, fmt.Errorf("controller: %s: %w", propAutoRebalance, err)
		}
	}
	if v, ok := props[propImbalanceSeconds]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 1 || n > 1<<31 {
			return Config{}, fmt.Errorf("controller: %s=%q: want a whole number of seconds, at least 1", propImbalanceSeconds, v)
		}
		cfg.ImbalanceCheckInterval = time.Duration(n) * time.Second
	}
	if v, ok := props[propImbalancePercent]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 100 {
			return Config{}, fmt.Errorf("controller: %s=%q: want a percentage from 0 to 100", propImbalancePercent, v)
		}
		cfg.ImbalancePercentage = n
	}
	return cfg, nil
}

// parseBool parses a boolean as Kafka does: true or false, in any case.
func parseBool(v string) (bool, error) {
	switch v = strings.TrimSpace(v); {
	case strings.EqualFold(v, "true"):
		return true, nil
	case strings.EqualFold(v, "false"):
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", v)
}

func (c *Config) setDefaults() {
	if c.ImbalanceCheckInterval <= 0 {
		c.ImbalanceCheckInterval = 300 * time.Second
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = batchesInFlight
	}
}

// Run acts as the cluster's controller until ctx ends; the broker runs it
// while it holds controllership and cancels ctx when it loses it. Writes in
// flight when ctx ends finish (each is bounded by the store's request
// timeout) before Run returns.
func Run(ctx context.Context, s Store, cfg Config, log *slog.Logger) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	c := &controller{s: s, cfg: cfg}
	changes := s.Watch(ctx)
	resync := time.NewTicker(cfg.ResyncInterval)
	defer resync.Stop()
	var rebalance <-chan time.Time
	if cfg.AutoLeaderRebalance {
		t := time.NewTicker(cfg.ImbalanceCheckInterval)
		defer t.Stop()
		rebalance = t.C
	}
	log.Info("controller: started")
	defer log.Info("controller: stopped")
	preferred := false
	for ctx.Err() == nil {
		r := c.pass(ctx, preferred)
		preferred = false
		r.log(log)
		wake := changes
		if r.failed > 0 {
			wake = nil // retry at the next resync, not on our own writes
		}
		select {
		case <-ctx.Done():
		case _, ok := <-wake:
			if !ok {
				changes = nil // the store is closed; ctx ends soon
			}
		case <-resync.C:
		case <-rebalance:
			preferred = true
		}
	}
}

// controller runs passes; Run owns it.
type controller struct {
	s   Store
	cfg Config
}

// view is the brokers' state as one pass sees it.
type view struct {
	registered map[int32]bool
	fenced     map[int32]int64 // registered but fenced: node id → broker epoch
}

func observe(s Store) *view {
	v := &view{registered: make(map[int32]bool), fenced: make(map[int32]int64)}
	for _, b := range s.Brokers() {
		v.registered[b.NodeID] = true
		if s.UnfencedEpoch(b.NodeID) != b.Epoch {
			v.fenced[b.NodeID] = b.Epoch
		}
	}
	return v
}

// eligible reports whether node may be in an ISR or lead.
func (v *view) eligible(node int32) bool {
	_, fenced := v.fenced[node]
	return v.registered[node] && !fenced
}

// firstEligible returns the first of replicas that is eligible and, if among
// is not nil, in among.
func (v *view) firstEligible(replicas, among []int32) (int32, bool) {
	for _, r := range replicas {
		if v.eligible(r) && (among == nil || slices.Contains(among, r)) {
			return r, true
		}
	}
	return -1, false
}

// failover applies rules 1 to 3 of the package comment to p. It replaces
// p's slices rather than changing them in place.
func (v *view) failover(p *metadata.Partition, unclean bool) {
	var keep []int32
	for _, r := range p.ISR {
		if v.eligible(r) {
			keep = append(keep, r)
		}
	}
	if len(keep) > 0 && len(keep) < len(p.ISR) {
		p.ISR = keep
	}
	if p.Leader != -1 && !v.eligible(p.Leader) {
		p.Leader = -1
	}
	if p.Leader != -1 {
		return
	}
	if r, ok := v.firstEligible(p.Replicas, p.ISR); ok {
		p.Leader = r
		return
	}
	if unclean && !slices.ContainsFunc(p.ISR, func(r int32) bool { return v.registered[r] }) {
		if r, ok := v.firstEligible(p.Replicas, nil); ok {
			p.Leader, p.ISR = r, []int32{r}
		}
	}
}

// preferred moves p's leadership to its preferred replica, Replicas[0].
func (v *view) preferred(p *metadata.Partition) error {
	if len(p.Replicas) == 0 {
		return fmt.Errorf("%w: the partition has no replicas", ErrPreferredLeaderNotAvailable)
	}
	switch pr := p.Replicas[0]; {
	case p.Leader == pr:
		return fmt.Errorf("%w: preferred replica %d already leads", ErrElectionNotNeeded, pr)
	case !v.eligible(pr):
		return fmt.Errorf("%w: preferred replica %d is offline or fenced", ErrPreferredLeaderNotAvailable, pr)
	case !slices.Contains(p.ISR, pr):
		return fmt.Errorf("%w: preferred replica %d is not in the ISR %v", ErrPreferredLeaderNotAvailable, pr, p.ISR)
	default:
		p.Leader = pr
		return nil
	}
}

// topicUnclean resolves unclean.leader.election.enable for a topic.
func (c *controller) topicUnclean(t metadata.Topic) bool {
	if v, ok := t.Configs[propUnclean]; ok {
		if b, err := parseBool(v); err == nil {
			return b
		}
	}
	return c.cfg.UncleanLeaderElection
}

// job is one partition a pass changes.
type job struct {
	topic     string
	index     int32
	unclean   bool
	preferred bool
	fenced    []int32 // fenced brokers the partition involves
}

// apply is what a job does to the partition as committed, and reports
// whether it completed a reassignment.
func (j job) apply(v *view, p *metadata.Partition) (reassigned bool) {
	v.failover(p, j.unclean)
	reassigned = v.completeReassignment(p)
	if j.preferred {
		_ = v.preferred(p) // no longer possible or needed: leave it
	}
	return reassigned
}

// passResult summarizes one pass for the log.
type passResult struct {
	partitions int
	changed    int // partitions written
	elected    int // of which with a new leader (or none)
	offline    int // partitions left without a leader
	reassigned int // reassignments completed
	unfenced   []int32
	failed     int
	err        error // the first failure
	took       time.Duration
}

func (r passResult) log(log *slog.Logger) {
	if r.changed == 0 && r.failed == 0 && len(r.unfenced) == 0 {
		return
	}
	attrs := []any{"partitions", r.partitions, "changed", r.changed, "leaders changed", r.elected,
		"reassignments completed", r.reassigned, "offline", r.offline, "unfenced", r.unfenced,
		"took", r.took.Round(time.Millisecond)}
	if r.failed > 0 {
		log.Warn("controller: pass", append(attrs, "failed", r.failed, "err", r.err)...)
		return
	}
	log.Info("controller: pass", attrs...)
}

// pass applies the rules once to every partition, then unfences the fenced
// brokers whose partitions were all processed. With preferred, it also
// rebalances leadership.
func (c *controller) pass(ctx context.Context, preferred bool) passResult {
	start := time.Now()
	v := observe(c.s)
	topics := c.s.Topics()
	var toPreferred map[partitionID]bool
	if preferred {
		toPreferred = imbalanced(topics, v, c.cfg.ImbalancePercentage)
	}

	var r passResult
	var jobs []job
	for _, t := range topics {
		unclean := c.topicUnclean(t)
		for _, p := range t.Partitions {
			r.partitions++
			j := job{topic: t.Name, index: p.Index, unclean: unclean, preferred: toPreferred[partitionID{t.Name, p.Index}]}
			next := p
			j.apply(v, &next)
			if next.Leader == -1 {
				r.offline++
			}
			if !assignmentChanged(p, next) {
				continue
			}
			for node := range v.fenced {
				if p.Leader == node || slices.Contains(p.ISR, node) {
					j.fenced = append(j.fenced, node)
				}
			}
			jobs = append(jobs, j)
		}
	}

	blocked := make(map[int32]bool) // fenced brokers with a partition not processed
	fail := func(err error) {
		r.failed++
		if r.err == nil {
			r.err = err
		}
	}
	// What each job's function did to the partition as last committed.
	type outcome struct{ changed, elected, reassigned bool }
	outs := make([]outcome, len(jobs))
	started := updateEach(ctx, c.s, c.cfg.MaxInFlight, len(jobs), func(i int) metadata.PartitionUpdate {
		j := jobs[i]
		return metadata.PartitionUpdate{Topic: j.topic, Index: j.index, Fn: func(p *metadata.Partition) error {
			before := *p
			reassigned := j.apply(v, p)
			outs[i] = outcome{changed: assignmentChanged(before, *p), elected: p.Leader != before.Leader, reassigned: reassigned}
			return nil
		}}
	}, func(i int, err error) {
		switch o := outs[i]; {
		case errors.Is(err, metadata.ErrUnknownTopic): // deleted meanwhile
		case err != nil:
			fail(err)
			for _, n := range jobs[i].fenced {
				blocked[n] = true
			}
		case o.changed:
			r.changed++
			if o.elected {
				r.elected++
			}
			if o.reassigned {
				r.reassigned++
			}
		}
	})
	for _, j := range jobs[started:] { // not attempted: ctx ended
		for _, n := range j.fenced {
			blocked[n] = true
		}
	}

	for node, epoch := range v.fenced {
		if blocked[node] || ctx.Err() != nil {
			continue
		}
		switch err := c.s.Unfence(node, epoch); {
		case errors.Is(err, metadata.ErrStaleBrokerEpoch):
			// It restarted again or left; the next pass sees that.
		case err != nil:
			fail(fmt.Errorf("unfence broker %d: %w", node, err))
		default:
			r.unfenced = append(r.unfenced, node)
		}
	}
	slices.Sort(r.unfenced)
	r.took = time.Since(start)
	return r
}

type partitionID struct {
	topic string
	index int32
}

// imbalanced returns the partitions to move back to their preferred
// replica, as Kafka's auto leader rebalance does: for every broker that
// fails to lead more than pct percent of the partitions it is preferred for,
// those of them it can lead now (it is eligible and in the ISR).
func imbalanced(topics []metadata.Topic, v *view, pct int) map[partitionID]bool {
	type share struct {
		preferred, notLed int
		movable           []partitionID
	}
	by := make(map[int32]*share)
	for _, t := range topics {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			pr := p.Replicas[0]
			s := by[pr]
			if s == nil {
				s = &share{}
				by[pr] = s
			}
			s.preferred++
			if p.Leader == pr {
				continue
			}
			s.notLed++
			if v.eligible(pr) && slices.Contains(p.ISR, pr) {
				s.movable = append(s.movable, partitionID{t.Name, p.Index})
			}
		}
	}
	out := make(map[partitionID]bool)
	for _, s := range by {
		if s.notLed*100 > pct*s.preferred {
			for _, id := range s.movable {
				out[id] = true
			}
		}
	}
	return out
}

// batchUpdater is the batched write Store and Assignments share.
type batchUpdater interface {
	UpdatePartitions(updates []metadata.PartitionUpdate) []error
}

// updateEach writes n partition changes in batches: update(i) returns
// change i, and done(i, err) receives its outcome; calls of done are
// serialized. It writes batchSize changes per UpdatePartitions call, at
// most inFlight calls at a time, in order, until ctx ends, and returns once
// every call has returned how many changes it started: those from there on
// were not attempted.
func updateEach(ctx context.Context, s batchUpdater, inFlight, n int, update func(i int) metadata.PartitionUpdate, done func(i int, err error)) int {
	var starts []int
	for i := 0; i < n; i += batchSize {
		starts = append(starts, i)
	}
	var mu sync.Mutex
	batches := forEach(ctx, inFlight, starts, func(start int) {
		updates := make([]metadata.PartitionUpdate, 0, batchSize)
		for i := start; i < min(start+batchSize, n); i++ {
			updates = append(updates, update(i))
		}
		errs := s.UpdatePartitions(updates)
		mu.Lock()
		defer mu.Unlock()
		for k, err := range errs {
			done(start+k, err)
		}
	})
	return min(batches*batchSize, n)
}

// forEach calls fn on items in order, at most n at a time, until ctx ends;
// it returns, once every call has returned, how many items it started.
func forEach[T any](ctx context.Context, n int, items []T, fn func(T)) int {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Go(func() {
			for it := range ch {
				fn(it)
			}
		})
	}
	started := 0
feed:
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		select {
		case ch <- it:
			started++
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	return started
}
