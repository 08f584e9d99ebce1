package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"
)

// TestControlPlaneBenchmark measures what BENCHMARKS.md reports for the
// control plane: seconds from CreateCluster to ACTIVE for 3 brokers, and
// DescribeCluster requests per second. It runs only with FJORD_CP_BENCH=1:
//
//	FJORD_CP_BENCH=1 go test ./e2e -run TestControlPlaneBenchmark -v -count=1
//
// FJORD_CP_BENCH_RUNS (default 5) sets how many clusters are created,
// FJORD_CP_BENCH_CONCURRENCY (default 16) how many DescribeCluster callers
// run at once, for FJORD_CP_BENCH_SECONDS (default 5).
func TestControlPlaneBenchmark(t *testing.T) {
	if os.Getenv("FJORD_CP_BENCH") == "" {
		t.Skip("set FJORD_CP_BENCH=1 to measure the control plane")
	}
	env := func(name string, def int) int {
		if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
			return n
		}
		return def
	}
	runs, conc, secs := env("FJORD_CP_BENCH_RUNS", 5), env("FJORD_CP_BENCH_CONCURRENCY", 16), env("FJORD_CP_BENCH_SECONDS", 5)
	dir := t.TempDir()
	s := startCPServer(t, dir, "25600-25699")
	c := s.sdk(t)
	ctx := t.Context()

	var took []time.Duration
	var arn string
	for i := range runs {
		start := time.Now()
		out, err := c.CreateCluster(ctx, &kafka.CreateClusterInput{
			ClusterName: aws.String(fmt.Sprintf("bench-%d", i)), KafkaVersion: aws.String("3.9.x"), NumberOfBrokerNodes: aws.Int32(3),
			BrokerNodeGroupInfo: &types.BrokerNodeGroupInfo{ClientSubnets: []string{"a", "b", "c"}, InstanceType: aws.String("kafka.m5.large")},
		})
		if err != nil {
			t.Fatal(err)
		}
		for {
			d, err := c.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: out.ClusterArn})
			if err != nil {
				t.Fatal(err)
			}
			if d.ClusterInfo.State == types.ClusterStateActive {
				break
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("cluster %d not ACTIVE after a minute", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took = append(took, time.Since(start))
		arn = aws.ToString(out.ClusterArn)
		if i < runs-1 {
			c.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: out.ClusterArn})
			cpWaitState(t, c, arn, "", time.Minute)
		}
	}
	slices.Sort(took)
	t.Logf("CreateCluster -> ACTIVE, 3 brokers, %d runs: min %.3fs median %.3fs max %.3fs",
		runs, took[0].Seconds(), took[len(took)/2].Seconds(), took[len(took)-1].Seconds())

	// DescribeCluster throughput: conc callers sharing one SDK client with
	// enough idle connections for all of them.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conc
	fast := kafka.New(c.Options(), func(o *kafka.Options) { o.HTTPClient = &http.Client{Transport: tr} })
	var ok, failed atomic.Int64
	stop := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := fast.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: aws.String(arn)}); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d DescribeCluster calls failed", failed.Load())
	}
	t.Logf("DescribeCluster: %d callers for %ds: %.0f requests/s (%d ok)", conc, secs, float64(ok.Load())/float64(secs), ok.Load())
	s.stop(t)
}
