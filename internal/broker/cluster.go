package broker

import (
	"context"
	"slices"
	"sync"
	"time"
)

// runCluster is the broker's life as a member of a replicated cluster, until
// ctx ends: it follows the metadata (every change re-syncs the hosted
// partitions), runs the replica fetchers and the ISR upkeep, registers the
// broker and campaigns for controller, running the controller while it
// holds the role.
func (b *Broker) runCluster(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { b.followMetadata(ctx) })
	wg.Go(func() { b.fetchers.run(ctx) })
	wg.Go(func() { b.isr.run(ctx) })

	for {
		_, err := b.etcd.RegisterBroker(ctx, b.self)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("register broker; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	b.log.Info("broker registered", "rack", b.self.Rack)
	won, err := b.etcd.Campaign(ctx, b.cfg.NodeID)
	if err != nil {
		b.log.Error("campaign for controller", "err", err)
		return
	}
	var ctl *controllerRun
	for w := range won {
		switch {
		case w && ctl == nil:
			b.log.Info("became controller")
			ctl = startController(ctx, b.runController)
		case !w && ctl != nil:
			ctl.stop()
			ctl = nil
			b.log.Info("no longer controller")
		}
	}
	if ctl != nil {
		ctl.stop()
	}
}

// controllerRun is one term as controller.
type controllerRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startController(ctx context.Context, run func(context.Context)) *controllerRun {
	ctx, cancel := context.WithCancel(ctx)
	c := &controllerRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		run(ctx)
	}()
	return c
}

// stop ends the term and waits for the controller to return.
func (c *controllerRun) stop() {
	c.cancel()
	<-c.done
}

// syncDebounce gathers a burst of metadata changes (a failover changes
// thousands of partition keys, each its own watch event) into one sync: a
// sync walks every partition, so one per event would cost O(partitions²)
// during a failover.
const syncDebounce = 10 * time.Millisecond

// followMetadata re-syncs the hosted partitions on metadata changes, and
// every few seconds as a backstop (a log that failed to open is retried),
// until ctx ends.
func (b *Broker) followMetadata(ctx context.Context) {
	ch := b.meta.Watch(ctx)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		b.parts.sync(false)
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
			select {
			case <-time.After(syncDebounce):
			case <-ctx.Done():
				return
			}
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// handOver is the controlled part of a shutdown: it ends the registration
// (the controller then moves leadership to other in-sync replicas), stops
// leading at once, and waits a little for the new leaders to be elected
// so that clients find them when this broker stops answering.
func (b *Broker) handOver(stopCluster context.CancelFunc, clusterDone <-chan struct{}) {
	stopCluster()
	<-clusterDone
	if b.etcd == nil {
		return
	}
	deadline := time.Now().Add(b.settings.sessionTimeout)
	for {
		b.parts.sync(false) // unregistered: leads nothing
		if !b.leadsMovable() || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leadsMovable reports whether the metadata still names this broker leader
// of a partition that another live in-sync replica could lead.
func (b *Broker) leadsMovable() bool {
	live := make(map[int32]bool)
	for _, br := range b.meta.Brokers() {
		live[br.NodeID] = true
	}
	for _, t := range b.meta.Topics() {
		for _, p := range t.Partitions {
			if p.Leader != b.cfg.NodeID {
				continue
			}
			if slices.ContainsFunc(p.ISR, func(r int32) bool { return r != b.cfg.NodeID && live[r] }) {
				return true
			}
		}
	}
	return false
}
