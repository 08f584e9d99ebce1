package broker

import (
	"context"

	"github.com/fjord-io/fjord/internal/controller"
)

// runController acts as the cluster's controller (internal/controller)
// until ctx ends: the broker holds the role while it wins the etcd
// election.
func (b *Broker) runController(ctx context.Context) {
	controller.Run(ctx, b.etcd, b.ctlConfig, b.log.With("role", "controller"))
}
