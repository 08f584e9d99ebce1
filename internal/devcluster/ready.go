package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/fjord-io/fjord/internal/probe"
)

// Readiness polling.
const (
	pollInterval = 100 * time.Millisecond
	// waitLogEvery is how often a wait that drags on says what it waits for.
	waitLogEvery = 10 * time.Second
)

// waitQuorum returns once one of the quorum members reports itself healthy
// (it has a leader, so the quorum has formed), or ctx's error.
func waitQuorum(ctx context.Context, clientURLs []string) error {
	hc := &http.Client{Timeout: probe.Timeout}
	return poll(ctx, "the metadata quorum", func() error {
		var errs []error
		for _, u := range clientURLs {
			err := probe.QuorumHealthy(ctx, hc, u)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// waitReady returns once every broker answers a Metadata request listing
// every broker of the cluster (node ids 0 to len(addrs)-1), or ctx's error.
func waitReady(ctx context.Context, addrs []string) error {
	ids := make([]int32, len(addrs))
	for i := range ids {
		ids[i] = int32(i)
	}
	for i, addr := range addrs {
		err := poll(ctx, fmt.Sprintf("broker %d (%s)", i, addr), func() error {
			return probe.ListsBrokers(ctx, addr, ids)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// poll calls try until it succeeds or ctx is done, logging what it waits
// for every waitLogEvery.
func poll(ctx context.Context, what string, try func() error) error {
	start, logged := time.Now(), time.Now()
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Since(logged) >= waitLogEvery {
			slog.Info("waiting for "+what, "for", time.Since(start).Round(time.Second), "last", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
