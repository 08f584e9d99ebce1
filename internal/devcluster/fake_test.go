package devcluster

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fjord-io/fjord/internal/quorum"
)

// The tests run this test binary as the fjord binary the cluster's
// processes run (Config.Binary): with fakeEnv set, TestMain hands the
// arguments to fakeMain instead of running tests. `quorum` runs a real
// member (internal/quorum, as `fjord quorum` does); `broker` runs a stand-in
// that needs no replication: a kfake broker whose Metadata lists the brokers
// registered in the quorum (or only itself when standalone).
//
// Both write what the tests check into their data directory: the broker its
// arguments (args.json), and both the time they stopped (stopped).
const fakeEnv = "FJORD_DEVCLUSTER_FAKE"

func fakeMain(args []string) int {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var err error
	switch {
	case len(args) > 0 && args[0] == "quorum":
		err = fakeQuorum(ctx, args[1:])
	case len(args) > 0 && args[0] == "broker":
		err = fakeBroker(ctx, args[1:])
	default:
		err = fmt.Errorf("unknown fake command %q", args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// fakeQuorum parses `fjord quorum`'s flags and runs a member.
func fakeQuorum(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("quorum", flag.ContinueOnError)
	var cfg quorum.Config
	fs.StringVar(&cfg.Name, "name", "", "")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "")
	fs.StringVar(&cfg.ListenClient, "listen-client", "", "")
	fs.StringVar(&cfg.ListenPeer, "listen-peer", "", "")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "")
	fs.StringVar(&cfg.InitialClusterState, "initial-cluster-state", "", "")
	fs.String("log-level", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	err := quorum.Run(ctx, cfg)
	markStopped(cfg.DataDir)
	return err
}

// fakeArgs are a fake broker's flags, as it records them in args.json.
type fakeArgs struct {
	Args              []string
	NodeID            int
	Listen            string
	Advertised        string
	DataDir           string
	Rack              string
	ClusterID         string
	Config            string
	LogLevel          string
	MetadataEndpoints string
	Cluster           string
}

func fakeBroker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	a := fakeArgs{Args: args}
	fs.IntVar(&a.NodeID, "node-id", 0, "")
	fs.StringVar(&a.Listen, "listen", "", "")
	fs.StringVar(&a.Advertised, "advertised", "", "")
	fs.StringVar(&a.DataDir, "data-dir", "", "")
	fs.StringVar(&a.Rack, "rack", "", "")
	fs.StringVar(&a.ClusterID, "cluster-id", "", "")
	fs.StringVar(&a.Config, "config", "", "")
	fs.StringVar(&a.LogLevel, "log-level", "", "")
	fs.StringVar(&a.MetadataEndpoints, "metadata-endpoints", "", "")
	fs.StringVar(&a.Cluster, "cluster", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.DataDir, "args.json"), b, 0o644); err != nil {
		return err
	}
	defer markStopped(a.DataDir)

	self, err := brokerEntry(int32(a.NodeID), a.Advertised)
	if err != nil {
		return err
	}
	list := func(context.Context) ([]kmsg.MetadataResponseBroker, error) {
		return []kmsg.MetadataResponseBroker{self}, nil
	}
	if a.MetadataEndpoints != "" {
		cl, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(a.MetadataEndpoints, ","),
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return err
		}
		defer cl.Close()
		prefix := "/fjord/" + a.Cluster + "/fake-brokers/"
		if err := register(ctx, cl, prefix+strconv.Itoa(a.NodeID), a.Advertised); err != nil {
			return err
		}
		list = func(ctx context.Context) ([]kmsg.MetadataResponseBroker, error) {
			resp, err := cl.Get(ctx, prefix, clientv3.WithPrefix())
			if err != nil {
				return nil, err
			}
			var out []kmsg.MetadataResponseBroker
			for _, kv := range resp.Kvs {
				id, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), prefix))
				if err != nil {
					return nil, err
				}
				b, err := brokerEntry(int32(id), string(kv.Value))
				if err != nil {
					return nil, err
				}
				out = append(out, b)
			}
			return out, nil
		}
	}

	_, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	kc, err := kfake.NewCluster(kfake.Ports(p), kfake.NumBrokers(1), kfake.ClusterID(a.ClusterID))
	if err != nil {
		return err
	}
	defer kc.Close()
	kc.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		brokers, err := list(ctx)
		if err != nil {
			return nil, err, true // closes the connection
		}
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = brokers
		resp.ClusterID = &a.ClusterID
		resp.ControllerID = 0
		return resp, nil, true
	})
	<-ctx.Done()
	return nil
}

// register puts key=value on a lease kept alive until ctx ends.
func register(ctx context.Context, cl *clientv3.Client, key, value string) error {
	lease, err := cl.Grant(ctx, 5)
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	if _, err := cl.Put(ctx, key, value, clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	ka, err := cl.KeepAlive(ctx, lease.ID)
	if err != nil {
		return fmt.Errorf("keep lease alive: %w", err)
	}
	go func() { // ends when ctx does: KeepAlive closes ka then
		for range ka {
		}
	}()
	return nil
}

func brokerEntry(id int32, addr string) (kmsg.MetadataResponseBroker, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return kmsg.MetadataResponseBroker{}, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return kmsg.MetadataResponseBroker{}, err
	}
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = id, host, int32(p)
	return b, nil
}

// markStopped records in dir when the process stopped.
func markStopped(dir string) {
	_ = os.WriteFile(filepath.Join(dir, "stopped"), []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
}

// stoppedAt reads the time markStopped recorded in dir.
func stoppedAt(dir string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(dir, "stopped"))
	if err != nil {
		return time.Time{}, err
	}
	ns, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns), nil
}

// readFakeArgs reads the arguments the fake broker in dir started with.
func readFakeArgs(dir string) (fakeArgs, error) {
	var a fakeArgs
	b, err := os.ReadFile(filepath.Join(dir, "args.json"))
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}
