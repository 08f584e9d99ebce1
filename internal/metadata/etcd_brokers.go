package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// RegisterBroker records b as a live broker under a lease (a
// concurrency.Session of EtcdConfig.SessionTTL) that the store keeps alive
// until ctx ends; then it revokes the lease, so the registration disappears
// at once. If the broker stops renewing it (a crash, a partition from the
// quorum) the registration disappears SessionTTL later; that is how the
// controller learns a broker is gone. If the lease is lost while ctx is
// still alive, the store registers the broker again on a new lease.
//
// When another lease holds b's node id (this broker's previous incarnation,
// killed less than SessionTTL ago, or another broker), RegisterBroker waits
// up to twice SessionTTL for it to go, then returns ErrBrokerIDInUse. It
// returns the lease id. A store registers one broker at a time; once ctx has
// ended and the registration is gone, RegisterBroker may be called again.
func (e *Etcd) RegisterBroker(ctx context.Context, b Broker) (clientv3.LeaseID, error) {
	e.mu.Lock()
	if e.mu.registered {
		e.mu.Unlock()
		return 0, errors.New("metadata: this store already registered a broker")
	}
	e.mu.registered = true
	e.mu.Unlock()

	ctx, release := e.scope(ctx)
	sess, err := e.register(ctx, b)
	if err != nil {
		release()
		e.mu.Lock()
		e.mu.registered = false
		e.mu.Unlock()
		return 0, err
	}
	e.setSession(sess)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer release()
		e.keepRegistered(ctx, b, sess)
	}()
	return sess.Lease(), nil
}

// register opens a session and puts the broker's key on its lease, waiting
// for a previous holder of the key to go. The session lives until ctx ends.
func (e *Etcd) register(ctx context.Context, b Broker) (*concurrency.Session, error) {
	value, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	ttl := int64(math.Ceil(e.cfg.SessionTTL.Seconds()))
	gctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	lease, err := e.client.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("register broker %d: grant lease: %w", b.NodeID, err)
	}
	sess, err := concurrency.NewSession(e.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("register broker %d: open session: %w", b.NodeID, err)
	}
	key := e.brokerKey(b.NodeID)
	// Each attempt gets RequestTimeout; waiting for a holder to go gets
	// twice SessionTTL in all, counted from the first time the key is seen
	// taken.
	var deadline time.Time
	for {
		tctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		resp, err := e.client.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(value), clientv3.WithLease(sess.Lease()))).
			Commit()
		cancel()
		if err == nil && resp.Succeeded {
			return sess, nil
		}
		if err == nil && b.DirID != "" {
			// Our own previous incarnation (same data directory) need not
			// be waited for: end its lease now.
			var took bool
			if took, err = e.takeOver(ctx, key, b.DirID); err == nil && took {
				continue
			}
		}
		if err == nil {
			if deadline.IsZero() {
				ttl := max(e.cfg.SessionTTL, time.Duration(lease.TTL)*time.Second) // etcd may raise a short TTL
				deadline = time.Now().Add(2 * ttl)
			}
			wctx, cancel := context.WithDeadline(ctx, deadline)
			err = waitDeleted(wctx, e.client, key, resp.Header.Revision+1)
			cancel()
			if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: node id %d", ErrBrokerIDInUse, b.NodeID)
			}
		}
		if err != nil {
			e.revoke(sess)
			return nil, fmt.Errorf("register broker %d: %w", b.NodeID, err)
		}
	}
}

// takeOver revokes the lease holding key if its broker has dirID: the same
// data directory, so this broker's previous incarnation. It reports whether
// it did.
func (e *Etcd) takeOver(ctx context.Context, key, dirID string) (bool, error) {
	tctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	resp, err := e.client.Get(tctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return err == nil, err // gone already: try again
	}
	var old Broker
	if json.Unmarshal(resp.Kvs[0].Value, &old) != nil || old.DirID != dirID {
		return false, nil
	}
	_, err = e.client.Revoke(tctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false, fmt.Errorf("end previous incarnation's lease: %w", err)
	}
	return true, nil
}

// waitDeleted waits for key to be deleted at or after rev.
func waitDeleted(ctx context.Context, client *clientv3.Client, key string, rev int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range client.Watch(ctx, key, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if err := resp.Err(); err != nil {
			return err
		}
		if len(resp.Events) > 0 {
			return nil
		}
	}
	return ctx.Err()
}

// keepRegistered owns the registration until ctx ends: it re-registers the
// broker whenever its session is lost, and revokes the lease at the end.
func (e *Etcd) keepRegistered(ctx context.Context, b Broker, sess *concurrency.Session) {
	defer func() {
		e.mu.Lock()
		e.mu.registered = false
		e.mu.Unlock()
	}()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			e.setSession(nil)
			e.revoke(sess)
			return
		case <-sess.Done():
		}
		slog.Warn("metadata: broker registration lost; registering again", "node", b.NodeID)
		e.setSession(nil)
		e.revoke(sess) // in case only this side lost it: free the node id now
		for {
			s, err := e.register(ctx, b)
			if err == nil {
				sess = s
				break
			}
			if ctx.Err() != nil {
				return
			}
			slog.Warn("metadata: register broker", "node", b.NodeID, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, e.cfg.SessionTTL)
		}
		backoff = 100 * time.Millisecond
		e.setSession(sess)
	}
}

// revoke ends a session and deletes its keys now rather than when its lease
// expires.
func (e *Etcd) revoke(sess *concurrency.Session) {
	sess.Orphan()
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RequestTimeout)
	defer cancel()
	_, err := e.client.Revoke(ctx, sess.Lease())
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		slog.Warn("metadata: revoke broker lease; it expires by itself", "lease", sess.Lease(), "err", err)
	}
}

func (e *Etcd) setSession(s *concurrency.Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.session = s
	close(e.mu.sessionChanged)
	e.mu.sessionChanged = make(chan struct{})
}

// waitSession returns the broker's live session, waiting for one while the
// broker (re-)registers, or nil once ctx ends.
func (e *Etcd) waitSession(ctx context.Context) *concurrency.Session {
	for {
		e.mu.Lock()
		s, changed := e.mu.session, e.mu.sessionChanged
		e.mu.Unlock()
		if s != nil {
			select {
			case <-s.Done():
			default:
				return s
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// Campaign makes this broker a candidate for controller, the one broker that
// reacts to broker loss (electing new partition leaders). It uses an etcd
// election (concurrency.Election under P/controller) on the broker's
// registration session, so a broker whose registration lapses also stops
// being controller. RegisterBroker must have been called, and a store runs
// one campaign at a time; while the broker is between registrations the
// campaign waits for the next one.
//
// The returned channel receives true when this broker becomes controller and
// false when it stops being controller while still campaigning (its session
// was lost); it then campaigns again on its next session. When ctx ends, the
// store resigns (if controller), then closes the channel. The caller must
// receive promptly and must stop acting as controller on false, on ctx's end
// and, to be safe against a lapsed session it has not yet been told about,
// guard its writes with compare-and-swap (UpdatePartition) so that decisions
// made on stale state fail rather than overwrite a newer controller's.
func (e *Etcd) Campaign(ctx context.Context, nodeID int32) (<-chan bool, error) {
	e.mu.Lock()
	switch {
	case !e.mu.registered:
		e.mu.Unlock()
		return nil, errors.New("metadata: campaign: register the broker first")
	case e.mu.campaigning:
		e.mu.Unlock()
		return nil, errors.New("metadata: campaign: already campaigning")
	}
	e.mu.campaigning = true
	e.mu.Unlock()

	ctx, release := e.scope(ctx)
	ch := make(chan bool)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer release()
		defer close(ch)
		defer func() {
			e.mu.Lock()
			e.mu.campaigning = false
			e.mu.Unlock()
		}()
		e.campaign(ctx, nodeID, ch)
	}()
	return ch, nil
}

// campaign runs elections on successive sessions until ctx ends.
func (e *Etcd) campaign(ctx context.Context, nodeID int32, ch chan<- bool) {
	send := func(v bool) bool {
		select {
		case ch <- v:
			return true
		case <-ctx.Done():
			return false
		}
	}
	value := strconv.FormatInt(int64(nodeID), 10)
	for {
		sess := e.waitSession(ctx)
		if sess == nil {
			return
		}
		el := concurrency.NewElection(sess, e.controllerPrefix())
		// A campaign ends when its session does, so that a lapsed
		// candidate is never told it won.
		cctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(sess.Ctx(), cancel)
		err := el.Campaign(cctx, value)
		if err == nil && !e.isLeader(cctx, el) {
			err = concurrency.ErrElectionNotLeader
		}
		stop()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			select { // a lost session is replaced; anything else, retry shortly
			case <-ctx.Done():
				return
			case <-sess.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if !send(true) {
			e.resign(el)
			return
		}
		select {
		case <-ctx.Done():
			e.resign(el)
			return
		case <-sess.Done():
			if !send(false) {
				return
			}
		}
	}
}

// isLeader checks that the election key el won with is still there: etcd's
// election waits for older keys to go but does not recheck its own.
func (e *Etcd) isLeader(ctx context.Context, el *concurrency.Election) bool {
	resp, err := e.client.Get(ctx, el.Key())
	return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].CreateRevision == el.Rev()
}

func (e *Etcd) resign(el *concurrency.Election) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RequestTimeout)
	defer cancel()
	if err := el.Resign(ctx); err != nil {
		slog.Warn("metadata: resign controllership; it lapses with the session", "err", err)
	}
}

// ErrStaleBrokerEpoch means a broker epoch is not that of the node's live
// registration: the broker has restarted since, or is gone.
var ErrStaleBrokerEpoch = errors.New("metadata: broker epoch is not the live registration's")

// Fencing (Kafka's broker epochs): a registered broker is fenced until the
// controller has processed its current registration, that is, removed it
// from every ISR it may have been in before it (re)started and re-elected
// leaders it held. The controller records the broker epoch it processed in
//
//	P/unfenced/<node id>         the broker epoch last unfenced (decimal)
//
// so a broker whose Epoch differs from its unfenced epoch has (re)started
// since and is fenced. The key outlives the registration: a broker that
// comes back registers with a new epoch and is fenced again.

func (e *Etcd) unfencedKey(id int32) string {
	return e.prefix + "unfenced/" + strconv.FormatInt(int64(id), 10)
}

// UnfencedEpoch returns the broker epoch the controller last unfenced for
// node, or 0 if it never did, from the cache.
func (e *Etcd) UnfencedEpoch(node int32) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.cache.unfenced[node]
}

// Fenced reports whether b, as returned by Brokers, is fenced: registered
// at an epoch the controller has not yet unfenced.
func (e *Etcd) Fenced(b Broker) bool {
	return b.Epoch != e.UnfencedEpoch(b.NodeID)
}

// Unfence records that the controller has processed node's registration at
// epoch, which unfences it. The write is guarded by the registration: if
// node is no longer registered at epoch it changes nothing and returns
// ErrStaleBrokerEpoch. Unfencing twice is harmless.
func (e *Etcd) Unfence(node int32, epoch int64) error {
	if epoch <= 0 {
		return fmt.Errorf("%w: node %d, epoch %d", ErrStaleBrokerEpoch, node, epoch)
	}
	e.mu.Lock()
	b, ok := e.mu.cache.brokers[node]
	done := ok && b.Epoch == epoch && e.mu.cache.unfenced[node] == epoch
	e.mu.Unlock()
	if done {
		return nil
	}
	ctx, cancel := e.request()
	defer cancel()
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(e.brokerKey(node)), "=", epoch)).
		Then(clientv3.OpPut(e.unfencedKey(node), strconv.FormatInt(epoch, 10))).
		Commit()
	if err != nil {
		return fmt.Errorf("unfence broker %d: %w", node, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: node %d, epoch %d", ErrStaleBrokerEpoch, node, epoch)
	}
	e.waitApplied(ctx, resp.Header.Revision)
	return nil
}
