package provisiontest

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// runQuorum runs the stand-in quorum member: it records its flags, holds
// its peer port and answers GET /health on its client address as a member
// of a quorum with a leader does, until SIGTERM or SIGINT.
func runQuorum(args []string) error {
	fs := flag.NewFlagSet("quorum", flag.ContinueOnError)
	name := fs.String("name", "", "")
	dataDir := fs.String("data-dir", "", "")
	client := fs.String("listen-client", "", "")
	peer := fs.String("listen-peer", "", "")
	initial := fs.String("initial-cluster", "", "")
	state := fs.String("initial-cluster-state", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	record := fmt.Sprintf("name=%s\nlisten-client=%s\nlisten-peer=%s\ninitial-cluster=%s\ninitial-cluster-state=%s\n", *name, *client, *peer, *initial, *state)
	if err := os.WriteFile(filepath.Join(*dataDir, FlagsFile), []byte(record), 0o600); err != nil {
		return err
	}
	if d, err := time.ParseDuration(os.Getenv(DelayEnvVar)); err == nil {
		time.Sleep(d)
	}
	peerLn, err := net.Listen("tcp", *peer)
	if err != nil {
		return err
	}
	defer peerLn.Close()
	clientLn, err := net.Listen("tcp", *client)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	srv := &http.Server{Handler: http.HandlerFunc(health), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(clientLn); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func health(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/health" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"health":"true","reason":""}`)
}
