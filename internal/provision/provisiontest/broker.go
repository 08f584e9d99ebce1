// Package provisiontest provides a stand-in broker for tests of the
// provisioner and the reconcilers: a process that takes the flags of
// `fjord broker`, records them in its data directory, and answers every
// Kafka request with an empty ApiVersions response.
//
// A test binary becomes the stand-in when run with EnvVar set: call
// MaybeRunBroker first thing in TestMain, and point the provisioner at
// os.Args[0] with EnvVar=1 in its environment.
package provisiontest

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// EnvVar makes a test binary run as the stand-in broker.
const EnvVar = "FJORD_FAKE_BROKER"

// DelayEnvVar, if set to a duration, delays the stand-in's listening, as a
// slow broker start would.
const DelayEnvVar = "FJORD_FAKE_BROKER_DELAY"

// FlagsFile is the file in the data directory where the stand-in writes its flags.
const FlagsFile = "fake-broker-flags"

// MaybeRunBroker runs the stand-in broker and exits if EnvVar is set;
// otherwise it returns at once.
func MaybeRunBroker() {
	if os.Getenv(EnvVar) == "" {
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fake broker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "broker" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	nodeID := fs.Int("node-id", 0, "")
	listen := fs.String("listen", "", "")
	advertised := fs.String("advertised", "", "")
	dataDir := fs.String("data-dir", "", "")
	rack := fs.String("rack", "", "")
	config := fs.String("config", "", "")
	clusterID := fs.String("cluster-id", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var props []byte
	if *config != "" {
		var err error
		if props, err = os.ReadFile(*config); err != nil {
			return err
		}
	}
	record := fmt.Sprintf("node-id=%d\nlisten=%s\nadvertised=%s\nrack=%s\ncluster-id=%s\nconfig=%s\n", *nodeID, *listen, *advertised, *rack, *clusterID, props)
	if err := os.WriteFile(filepath.Join(*dataDir, FlagsFile), []byte(record), 0o600); err != nil {
		return err
	}
	if d, err := time.ParseDuration(os.Getenv(DelayEnvVar)); err == nil {
		time.Sleep(d)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var wg sync.WaitGroup
	wg.Go(func() {
		<-sig
		ln.Close()
	})
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Go(func() { serve(conn) })
	}
	wg.Wait()
	return nil
}

// serve answers each request on conn with a v0 ApiVersions response body:
// correlation ID, error code 0, no API keys.
func serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, req); err != nil || len(req) < 8 {
			return
		}
		resp := make([]byte, 4+4+2+4)
		binary.BigEndian.PutUint32(resp, uint32(len(resp)-4))
		copy(resp[4:8], req[4:8]) // correlation ID
		if _, err := conn.Write(resp); err != nil {
			return
		}
	}
}
