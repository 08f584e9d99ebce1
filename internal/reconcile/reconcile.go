// Package reconcile drives every cluster toward its spec. It is level-based:
// a change to a cluster's record queues the cluster's ARN, and Reconcile then
// reads the record and the brokers' observed state and takes the next steps,
// whatever happened before. Every step is recorded in the cluster's active
// operation. Because each step is idempotent, the control plane can be
// killed at any moment and, restarted, carries on without duplicating or
// orphaning a broker.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/provision"
	"github.com/fjord-io/fjord/internal/store"
)

// Config configures a Reconciler.
type Config struct {
	// PortMin and PortMax bound the ports brokers get (inclusive).
	PortMin, PortMax int
	// Workers is how many clusters are reconciled at once; 0 means 2.
	Workers int
	// CreateTimeout is how long a cluster may stay CREATING before it is
	// FAILED; 0 means 2 minutes.
	CreateTimeout time.Duration
	// ProbeInterval is how often brokers being created are probed; 0 means 50ms.
	ProbeInterval time.Duration
	// ResyncInterval is how often a settled cluster's brokers are checked
	// and restarted if they died; 0 means 10s.
	ResyncInterval time.Duration
	// Log receives progress and errors; nil discards.
	Log *slog.Logger
}

// Reconciler runs the reconcile loop for all clusters.
type Reconciler struct {
	cfg   Config
	store store.Store
	prov  provision.Provisioner
	queue *Queue
	start time.Time // when this Reconciler was made: creation deadlines count from here at the earliest
}

// New returns a Reconciler.
func New(cfg Config, st store.Store, prov provision.Provisioner) *Reconciler {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.CreateTimeout <= 0 {
		cfg.CreateTimeout = 2 * time.Minute
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 50 * time.Millisecond
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{cfg: cfg, store: st, prov: prov, queue: NewQueue(100*time.Millisecond, 30*time.Second), start: time.Now()}
}

// Run watches the store and reconciles clusters until ctx is done. Before
// its workers start it stops broker processes that belong to no stored
// cluster. It returns after all its goroutines have exited; broker processes
// keep running, to be adopted by the next Run.
func (r *Reconciler) Run(ctx context.Context) error {
	stop := r.store.Watch(r.queue.Add)
	defer stop()
	defer r.queue.ShutDown()

	arns, err := r.allClusters(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	keep := map[string]bool{}
	for _, arn := range arns {
		if a, err := cluster.ParseARN("", cluster.ResourceCluster, arn); err == nil {
			keep[a.UUID()] = true
		}
	}
	if err := r.prov.Sweep(ctx, keep); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, arn := range arns {
		r.queue.Add(arn)
	}

	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx) })
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	return nil
}

func (r *Reconciler) allClusters(ctx context.Context) ([]string, error) {
	var arns []string
	p := store.Page{}
	for {
		cs, next, err := r.store.Clusters(ctx, "", p)
		if err != nil {
			return nil, fmt.Errorf("reconcile: list clusters: %w", err)
		}
		for _, c := range cs {
			arns = append(arns, c.ARN)
		}
		if next == "" {
			return arns, nil
		}
		p.NextToken = next
	}
}

func (r *Reconciler) work(ctx context.Context) {
	for {
		arn, ok := r.queue.Get()
		if !ok {
			return
		}
		after, err := r.Reconcile(ctx, arn)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			r.cfg.Log.Warn("reconcile failed; will retry", "cluster", arn, "err", err)
			r.queue.AddRateLimited(arn)
		default:
			r.queue.Forget(arn)
			if after > 0 {
				r.queue.AddAfter(arn, after)
			}
		}
		r.queue.Done(arn)
	}
}

// Reconcile takes the next steps for one cluster. It returns how soon the
// cluster should be looked at again (0: only on its next change), or an
// error, after which it is retried with backoff.
func (r *Reconciler) Reconcile(ctx context.Context, arn string) (time.Duration, error) {
	a, err := cluster.ParseARN("", cluster.ResourceCluster, arn)
	if err != nil {
		return 0, nil
	}
	c, err := r.store.Cluster(ctx, arn)
	var ce *cluster.Error
	if errors.As(err, &ce) && ce.Kind == cluster.NotFound {
		// Gone from the store: make sure nothing of it runs.
		return 0, r.prov.Remove(ctx, a.UUID())
	}
	if err != nil {
		return 0, err
	}
	switch c.State {
	case cluster.Creating:
		return r.create(ctx, c, a)
	case cluster.Deleting:
		return 0, r.delete(ctx, c, a)
	case cluster.Failed:
		return 0, r.prov.Stop(ctx, a.UUID())
	default:
		return r.maintain(ctx, c, a)
	}
}
