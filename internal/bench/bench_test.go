package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func newKfake(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func checkLatency(t *testing.T, name string, l Latency) {
	t.Helper()
	if l.Count == 0 || l.P50 <= 0 {
		t.Errorf("%s latency: no samples or zero p50: %+v", name, l)
	}
	if !(l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s latency percentiles out of order: %+v", name, l)
	}
}

// TestRunAgainstKfake runs short workloads against an in-process kfake and
// checks that every acknowledged record was consumed and that the latency
// summaries are sane. It asserts nothing about speed.
func TestRunAgainstKfake(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"max", func(c *Config) {}},
		{"rate", func(c *Config) { c.Rate = 2000; c.Producers = 2; c.Consumers = 2 }},
		{"acks1-lz4", func(c *Config) {
			c.Acks, c.Compression, c.Rate, c.RecordSize = 1, "lz4", 1000, 100
			c.TopicConfigs = map[string]string{"retention.bytes": "1073741824"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Bootstrap = newKfake(t)
			cfg.Warmup = 200 * time.Millisecond
			cfg.Duration = 800 * time.Millisecond
			cfg.MaxBufferedRecords = 2000
			tc.edit(&cfg)
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.ProduceErrors != 0 || res.ConsumeErrors != 0 {
				t.Fatalf("errors: %+v", res)
			}
			if res.TotalProduced == 0 || res.TotalConsumed != res.TotalProduced {
				t.Fatalf("produced %d, consumed %d", res.TotalProduced, res.TotalConsumed)
			}
			if res.ProduceRate <= 0 || res.ConsumeMiBps <= 0 {
				t.Fatalf("zero rates: %+v", res)
			}
			checkLatency(t, "produce", res.ProduceLatency)
			checkLatency(t, "end-to-end", res.EndToEnd)
			var buf bytes.Buffer
			if err := res.WriteText(&buf); err != nil || !strings.Contains(buf.String(), "end-to-end") {
				t.Fatalf("WriteText: %v\n%s", err, buf.String())
			}
		})
	}
}

func TestRunReusesTopic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bootstrap = newKfake(t)
	cfg.Topic = "reused"
	cfg.Warmup, cfg.Duration, cfg.Rate = 0, 300*time.Millisecond, 500
	for range 2 {
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Consumers start at the end offsets, so a second run reads only
		// its own records.
		if res.TotalConsumed != res.TotalProduced {
			t.Fatalf("produced %d, consumed %d", res.TotalProduced, res.TotalConsumed)
		}
	}
	cfg.Partitions = 3
	if _, err := Run(t.Context(), cfg); err == nil {
		t.Fatal("reusing a 6-partition topic as 3 partitions: no error")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Bootstrap = []string{"127.0.0.1:1"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Config){
		"no bootstrap":     func(c *Config) { c.Bootstrap = nil },
		"tiny records":     func(c *Config) { c.RecordSize = 4 },
		"bad acks":         func(c *Config) { c.Acks = 2 },
		"bad compression":  func(c *Config) { c.Compression = "brotli" },
		"too many readers": func(c *Config) { c.Consumers = 7 },
		"negative rate":    func(c *Config) { c.Rate = -1 },
	} {
		c := ok
		edit(&c)
		if c.Validate() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMemStatus(t *testing.T) {
	rss, hwm, err := memStatus(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if rss == 0 || hwm < rss {
		t.Fatalf("rss %d, hwm %d", rss, hwm)
	}
	if cpu, err := cpuTime(os.Getpid()); err != nil || cpu <= 0 {
		t.Fatalf("cpu time %v, %v", cpu, err)
	}
	if avail, err := memAvailable(); err != nil || avail == 0 {
		t.Fatalf("MemAvailable %d, %v", avail, err)
	}
}

func TestPayloadsIncompressibleAndStamped(t *testing.T) {
	buf := newRandom(1<<16, 1)
	p := newPayloads(buf, 1000, 0)
	seen := map[string]bool{}
	v := make([]byte, 1000)
	for i := range 500 {
		p.fill(v, int64(i))
		if ts, ok := stamp(v); !ok || ts != int64(i) {
			t.Fatalf("stamp %d, want %d", ts, i)
		}
		body := string(v[stampSize:])
		if seen[body] && i < len(buf)/1000 {
			t.Fatalf("value %d repeats within one lap of the buffer", i)
		}
		seen[body] = true
	}
}

func TestWriteMarkdown(t *testing.T) {
	mk := func(name string, mibps, p99 float64) BrokerRuns {
		r := BrokerRun{Result: Result{ProduceMiBps: mibps, ConsumeMiBps: mibps, ProduceLatency: Latency{P99: p99}}}
		return BrokerRuns{Name: name, Max: r, Half: r}
	}
	var buf bytes.Buffer
	c := Comparison{HalfRate: 1000, Brokers: []BrokerRuns{mk("fjord", 200, 3), mk("kfake", 100, 1)}}
	if err := c.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "not met") || !strings.Contains(out, "| Fjord (durable) | kfake (in-memory) |") {
		t.Fatalf("unexpected markdown:\n%s", out)
	}
}
