package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// CompareConfig configures Compare.
type CompareConfig struct {
	// Workload is run against each broker. Bootstrap, Topic and Rate are
	// set per run: each run gets a fresh broker and topic, and each broker
	// a max-rate run and then a run at half of Fjord's max rate.
	Workload Config
	// Exe is the fjord binary that runs both brokers: `Exe broker ...` for
	// Fjord and `Exe bench kfake-serve ...` for kfake.
	Exe string
	// FjordArgs are appended to Fjord's broker command line.
	FjordArgs []string
	// WorkDir holds the Fjord data directory and both brokers' logs. It is
	// created if missing; the data directory is removed after each run.
	WorkDir string
	// Log, if not nil, receives progress lines.
	Log io.Writer
	// Settle is how long the machine rests (after the disks are synced)
	// before each half-rate run, so that it does not measure the
	// aftermath of the max-rate run: the kernel writing back and freeing
	// gigabytes.
	Settle time.Duration
}

// DefaultCompareConfig returns the issue-2 comparison: DefaultConfig's
// workload with a 20 s measured window. kfake keeps every record it is sent
// in memory, even past retention.bytes, at 1.3 to 1.7 bytes of RSS per byte
// produced; at the ~450 MiB/s it reaches on 2 cores, 5 s of warmup and 30 s
// of window would need 20 to 27 GB.
func DefaultCompareConfig() CompareConfig {
	w := DefaultConfig()
	w.Duration = 20 * time.Second
	return CompareConfig{Workload: w, Settle: 20 * time.Second}
}

// minAvailable is the MemAvailable below which a comparison run is
// stopped, rather than let the kernel pick a process to kill.
const minAvailable = 1 << 30

// BrokerRuns is what Compare measured for one broker.
type BrokerRuns struct {
	Name string    `json:"name"`
	Max  BrokerRun `json:"max"`  // max-rate run
	Half BrokerRun `json:"half"` // run at half of Fjord's max rate
}

// BrokerRun is one workload run against a broker process started for it
// alone.
type BrokerRun struct {
	Result Result `json:"result"`
	// PeakRSS is the largest VmRSS sampled during the run and HWM the
	// process's VmHWM at its end, in bytes.
	PeakRSS uint64 `json:"peak_rss_bytes"`
	HWM     uint64 `json:"vm_hwm_bytes"`
	// CPU is the broker's user plus system CPU time per second of the
	// run (warmup and drain included): 1 is one core kept busy.
	CPU float64 `json:"broker_cpu_cores"`
}

// Comparison is the result of Compare.
type Comparison struct {
	HalfRate float64      `json:"half_rate"` // records/s of the half runs
	Brokers  []BrokerRuns `json:"brokers"`   // Fjord, then kfake
	Env      Env          `json:"env"`
}

// Env describes where and when a comparison ran.
type Env struct {
	Start     time.Time `json:"start"`
	GoVersion string    `json:"go_version"` // of the load generator
	CPUs      int       `json:"cpus"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute
	// averages at the start and end: other work on the machine skews
	// results.
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// rssInterval is how often the brokers' VmRSS is sampled.
const rssInterval = 250 * time.Millisecond

// Compare measures cfg.Workload against a Fjord broker and then against
// kfake: for each, a max-rate run, then a run at half of the max rate Fjord
// achieved. Every run gets a broker process of its own, listening on
// 127.0.0.1 (Fjord with an empty data directory), so no run inherits
// another's data or memory; the disks are synced before each run. Compare
// returns once every process it started has exited; cancelling ctx stops
// the current run and its broker.
func Compare(ctx context.Context, cfg CompareConfig) (cmp Comparison, err error) {
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return Comparison{}, err
	}
	cmp = Comparison{Env: Env{
		Start: time.Now(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), LoadBefore: loadavg(),
	}}
	defer func() { cmp.Env.LoadAfter = loadavg() }()

	// Each Fjord run's data directory is deleted as soon as the run ends,
	// before the disks are synced and the machine settles. Keeping the max
	// run's gigabytes instead made the half-rate run allocate its page
	// cache from memory that had sat free long enough for a VM's host to
	// reclaim it (free page reporting): every first touch of such a page
	// faults in the host, and copying produced records into the page cache
	// (copy_folio_from_iter_atomic) went from under 1% to 27% of the
	// machine's CPU, with stalls of 80-160 ms every few seconds. Memory
	// just freed is reused before memory long free, so deleting first
	// measures the broker rather than the hypervisor.
	dataDir := filepath.Join(cfg.WorkDir, "fjord-data")
	defer func() {
		if rerr := os.RemoveAll(dataDir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	fjordArgs := func(port int) []string {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := []string{"broker", "--node-id", "0", "--listen", addr, "--advertised", addr, "--data-dir", dataDir}
		return append(args, cfg.FjordArgs...)
	}
	kfakeArgs := func(port int) []string {
		return []string{"bench", "kfake-serve", "--port", strconv.Itoa(port)}
	}

	fjord := BrokerRuns{Name: "fjord"}
	kf := BrokerRuns{Name: "kfake"}
	for _, r := range []struct {
		name string
		args func(int) []string
		run  *BrokerRun
		half bool
	}{
		{"fjord", fjordArgs, &fjord.Max, false},
		{"fjord", fjordArgs, &fjord.Half, true},
		{"kfake", kfakeArgs, &kf.Max, false},
		{"kfake", kfakeArgs, &kf.Half, true},
	} {
		w := cfg.Workload
		if r.half {
			cmp.HalfRate = fjord.Max.Result.ProduceRate / 2
			w.Rate = cmp.HalfRate
			syncDisks()
			logf(cfg.Log, "settling for %v before the half-rate run", cfg.Settle)
			select {
			case <-ctx.Done():
				return cmp, ctx.Err()
			case <-time.After(cfg.Settle):
			}
		} else {
			w.Rate = 0
		}
		if err := os.RemoveAll(dataDir); err != nil {
			return cmp, err
		}
		*r.run, err = runBroker(ctx, cfg, r.name, r.args, w)
		if err != nil {
			return cmp, fmt.Errorf("%s: %w", r.name, err)
		}
		if err := os.RemoveAll(dataDir); err != nil {
			return cmp, err
		}
	}
	cmp.Brokers = []BrokerRuns{fjord, kf}
	return cmp, nil
}

// runBroker starts a broker with the arguments args(port) gives, runs w
// against it while sampling its VmRSS, and stops it. The run fails if the
// broker exits.
func runBroker(ctx context.Context, cfg CompareConfig, name string, args func(port int) []string, w Config) (BrokerRun, error) {
	port, err := freePort()
	if err != nil {
		return BrokerRun{}, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	w.Bootstrap = []string{addr}
	w.Topic = fmt.Sprintf("bench-%s", name)
	w.Progress = cfg.Log
	logf(cfg.Log, "%s on %s: rate %s, %v warmup + %v", name, addr, rateString(w.Rate), w.Warmup, w.Duration)

	syncDisks()
	proc, err := startBroker(ctx, name, addr, filepath.Join(cfg.WorkDir, name+".log"), cfg.Exe, args(port)...)
	if err != nil {
		return BrokerRun{}, err
	}
	defer proc.Stop()

	cpu0, err := cpuTime(proc.pid())
	if err != nil {
		return BrokerRun{}, err
	}
	t0 := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var run BrokerRun
	var lowMem atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		run.PeakRSS = sampleRSS(rctx, proc.pid(), rssInterval, func() {
			lowMem.Store(true)
			cancel()
		})
	})
	wg.Go(func() {
		select {
		case <-proc.done: // a broker that dies ends the run
			cancel()
		case <-rctx.Done():
		}
	})
	run.Result, err = Run(rctx, w)
	cancel()
	wg.Wait()
	if lowMem.Load() {
		return run, fmt.Errorf("stopped with under %d MiB of memory available (broker RSS %d MiB): shorten --duration",
			minAvailable>>20, run.PeakRSS>>20)
	}
	if exited, perr := proc.Exited(); exited {
		return run, fmt.Errorf("exited during the run (%v); log: %s", perr, proc.log.Name())
	}
	if err != nil {
		return run, err
	}
	if _, run.HWM, err = memStatus(proc.pid()); err != nil {
		return run, err
	}
	cpu1, err := cpuTime(proc.pid())
	if err != nil {
		return run, err
	}
	run.CPU = (cpu1 - cpu0).Seconds() / time.Since(t0).Seconds()
	return run, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "# "+format+"\n", args...)
	}
}

// ServeKfake runs a one-broker in-memory kfake cluster on 127.0.0.1:port
// until ctx is done.
func ServeKfake(ctx context.Context, port int) error {
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	<-ctx.Done()
	c.Close()
	return nil
}
