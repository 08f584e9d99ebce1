package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Readiness polling.
const (
	pollInterval = 100 * time.Millisecond
	probeTimeout = 2 * time.Second
	// waitLogEvery is how often a wait that drags on says what it waits for.
	waitLogEvery = 10 * time.Second
)

// waitQuorum returns once one of the quorum members reports itself healthy
// (it has a leader, so the quorum has formed), or ctx's error.
func waitQuorum(ctx context.Context, clientURLs []string) error {
	hc := &http.Client{Timeout: probeTimeout}
	return poll(ctx, "the metadata quorum", func() error {
		var errs []error
		for _, u := range clientURLs {
			err := quorumHealthy(ctx, hc, u)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// quorumHealthy asks one member for etcd's /health.
func quorumHealthy(ctx context.Context, hc *http.Client, clientURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("%s/health: %s: %w", clientURL, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || h.Health != "true" {
		return fmt.Errorf("%s/health: %s %q", clientURL, resp.Status, h.Reason)
	}
	return nil
}

// waitReady returns once every broker answers a Metadata request listing
// every broker of the cluster (node ids 0 to len(addrs)-1), or ctx's error.
func waitReady(ctx context.Context, addrs []string) error {
	for i, addr := range addrs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(probeTimeout))
		if err != nil {
			return err
		}
		err = poll(ctx, fmt.Sprintf("broker %d (%s)", i, addr), func() error {
			return listsBrokers(ctx, cl, len(addrs))
		})
		cl.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// listsBrokers sends a Metadata request to cl's seed broker and checks that
// the answer lists brokers 0 to n-1.
func listsBrokers(ctx context.Context, cl *kgo.Client, n int) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // no topics: only brokers
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	var ids []int32
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	for id := range int32(n) {
		if _, ok := slices.BinarySearch(ids, id); !ok {
			return fmt.Errorf("metadata lists brokers %v, not yet all of 0-%d", ids, n-1)
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
