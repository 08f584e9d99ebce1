// Package controlplane assembles the Fjord control plane: the MSK API over
// HTTP, the store behind it, the reconcilers and the local provisioner.
// Run is all cmd/fjord needs.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fjord-io/fjord/internal/api"
	"github.com/fjord-io/fjord/internal/provision"
	"github.com/fjord-io/fjord/internal/reconcile"
	"github.com/fjord-io/fjord/internal/sigv4"
	"github.com/fjord-io/fjord/internal/store"
)

// Config configures the control plane. Zero values take the defaults noted.
type Config struct {
	// Listen is the API's address; default "127.0.0.1:8080".
	Listen string
	// DataDir holds the database, the root credentials file and the
	// brokers' directories. Required.
	DataDir string
	// Region is the AWS region this control plane claims to be; requests
	// must be signed for it. Default "us-east-1".
	Region string
	// Account is the 12-digit account ID in ARNs; default "000000000000".
	Account string
	// RootAccessKeyID and RootSecretAccessKey, if set (both or neither), are
	// the root key; otherwise one is created on first start and written to
	// DataDir/credentials.
	RootAccessKeyID     string
	RootSecretAccessKey string
	// BrokerBinary is the executable brokers run; default the running
	// executable. BrokerArgs precede the broker flags; default ["broker"].
	BrokerBinary string
	BrokerArgs   []string
	// BrokerEnv is added to the brokers' environment.
	BrokerEnv []string
	// PortMin and PortMax bound broker ports; default 21092 to 21999.
	PortMin, PortMax int
	// QuorumPortMin and QuorumPortMax bound the ports of the clusters'
	// metadata quorum members (two each); default 22000 to 22999. The
	// range must not overlap the brokers'.
	QuorumPortMin, QuorumPortMax int
	// CreateTimeout is how long a cluster may take to become ACTIVE before
	// it is FAILED; default 2 minutes.
	CreateTimeout time.Duration
	// Log receives the control plane's logs; nil means slog.Default().
	Log *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("controlplane: no data directory")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Account == "" {
		c.Account = "000000000000"
	}
	if len(c.Account) != 12 {
		return fmt.Errorf("controlplane: account %q is not 12 digits", c.Account)
	}
	if (c.RootAccessKeyID == "") != (c.RootSecretAccessKey == "") {
		return errors.New("controlplane: set both the root access key ID and its secret, or neither")
	}
	if c.BrokerBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("controlplane: find broker binary: %w", err)
		}
		c.BrokerBinary = exe
	}
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = 21092, 21999
	}
	if c.PortMin < 1024 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return fmt.Errorf("controlplane: broker port range %d-%d is invalid", c.PortMin, c.PortMax)
	}
	if c.QuorumPortMin == 0 && c.QuorumPortMax == 0 {
		c.QuorumPortMin, c.QuorumPortMax = 22000, 22999
	}
	if c.QuorumPortMin < 1024 || c.QuorumPortMax > 65535 || c.QuorumPortMin > c.QuorumPortMax {
		return fmt.Errorf("controlplane: quorum port range %d-%d is invalid", c.QuorumPortMin, c.QuorumPortMax)
	}
	if c.QuorumPortMin <= c.PortMax && c.PortMin <= c.QuorumPortMax {
		return fmt.Errorf("controlplane: quorum ports %d-%d overlap broker ports %d-%d",
			c.QuorumPortMin, c.QuorumPortMax, c.PortMin, c.PortMax)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// Run serves the control plane until ctx is done, then stops the API and
// the reconcilers and waits for them. Broker processes keep running; the
// next Run adopts them.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "fjord.db"))
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	defer st.Close()
	credsPath, err := ensureRootKey(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}

	prov, err := provision.NewLocal(provision.LocalConfig{
		DataDir: cfg.DataDir, Binary: cfg.BrokerBinary, Args: cfg.BrokerArgs, Env: cfg.BrokerEnv,
		QuorumPortMin: cfg.QuorumPortMin, QuorumPortMax: cfg.QuorumPortMax,
		Log: cfg.Log.With("component", "provision"),
	})
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	rec := reconcile.New(reconcile.Config{
		PortMin: cfg.PortMin, PortMax: cfg.PortMax, CreateTimeout: cfg.CreateTimeout,
		Log: cfg.Log.With("component", "reconcile"),
	}, st, prov)

	verifier := &sigv4.Verifier{Service: "kafka", Region: cfg.Region, Secret: func(ctx context.Context, id string) (string, error) {
		k, err := st.AccessKey(ctx, id)
		if errors.Is(err, store.ErrNoAccessKey) {
			return "", sigv4.ErrUnknownKey
		}
		return k.Secret, err
	}}
	handler := api.New(api.Config{Region: cfg.Region, Account: cfg.Account, Store: st, Verifier: verifier, Log: cfg.Log.With("component", "api")})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs = make(chan error, 2)
	)
	wg.Go(func() {
		if err := rec.Run(ctx); err != nil {
			errs <- err
			cancel()
		}
	})
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("controlplane: serve: %w", err)
			cancel()
		}
	})
	msg := "root credentials from FJORD_ROOT_ACCESS_KEY_ID"
	if credsPath != "" {
		msg = "root credentials in " + credsPath
	}
	cfg.Log.Info("fjord control plane listening", "url", "http://"+ln.Addr().String(), "region", cfg.Region, "data_dir", cfg.DataDir, "credentials", msg)

	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	srv.Shutdown(shutdownCtx)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	cfg.Log.Info("fjord control plane stopped; broker processes keep running and the next start adopts them")
	return nil
}
