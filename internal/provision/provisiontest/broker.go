// Package provisiontest provides stand-ins for `fjord broker` and `fjord
// quorum` in tests of the provisioner and the reconcilers. The stand-in
// broker takes the broker's flags, records them in its data directory
// (FlagsFile), answers Metadata with the brokers of its cluster and every
// other Kafka request with an empty ApiVersions response. The stand-in
// quorum member takes the member's flags, records them the same way, listens
// on its peer address and answers etcd's /health on its client address.
//
// A test binary becomes a stand-in when run with EnvVar set: call
// MaybeRunBroker first thing in TestMain, and point the provisioner at
// os.Args[0] with EnvVar=1 in its environment.
package provisiontest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EnvVar makes a test binary run as a stand-in.
const EnvVar = "FJORD_FAKE_BROKER"

// DelayEnvVar, if set to a duration, delays the stand-ins' listening, as a
// slow start would.
const DelayEnvVar = "FJORD_FAKE_BROKER_DELAY"

// FlagsFile is the file in the data directory where a stand-in writes its
// flags, one name=value a line (a broker's config last: its whole file).
const FlagsFile = "fake-broker-flags"

// MaybeRunBroker runs the stand-in the arguments ask for (broker or quorum)
// and exits if EnvVar is set; otherwise it returns at once.
func MaybeRunBroker() {
	if os.Getenv(EnvVar) == "" {
		return
	}
	args := os.Args[1:]
	run := runBroker
	if len(args) > 0 && args[0] == "quorum" {
		run = runQuorum
	}
	if len(args) > 0 && (args[0] == "broker" || args[0] == "quorum") {
		args = args[1:]
	}
	if err := run(args); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runBroker(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	nodeID := fs.Int("node-id", 0, "")
	listen := fs.String("listen", "", "")
	advertised := fs.String("advertised", "", "")
	dataDir := fs.String("data-dir", "", "")
	rack := fs.String("rack", "", "")
	config := fs.String("config", "", "")
	clusterID := fs.String("cluster-id", "", "")
	endpoints := fs.String("metadata-endpoints", "", "")
	cluster := fs.String("cluster", "", "")
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
	record := fmt.Sprintf("node-id=%d\nlisten=%s\nadvertised=%s\nrack=%s\ncluster-id=%s\nmetadata-endpoints=%s\ncluster=%s\nconfig=%s\n",
		*nodeID, *listen, *advertised, *rack, *clusterID, *endpoints, *cluster, props)
	if err := os.WriteFile(filepath.Join(*dataDir, FlagsFile), []byte(record), 0o600); err != nil {
		return err
	}
	return serve(*listen, func(conn net.Conn) { answer(conn, *dataDir, *endpoints != "") })
}

// serve listens on addr after DelayEnvVar and runs handle for each
// connection until SIGTERM or SIGINT.
func serve(addr string, handle func(net.Conn)) error {
	if d, err := time.ParseDuration(os.Getenv(DelayEnvVar)); err == nil {
		time.Sleep(d)
	}
	ln, err := net.Listen("tcp", addr)
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
		wg.Go(func() { handle(conn) })
	}
	wg.Wait()
	return nil
}

// answer answers each request on conn: Metadata (v0-v8) with the brokers of
// the cluster, anything else with a v0 ApiVersions response body
// (correlation ID, error code 0, no API keys). A broker on a quorum
// (clustered) lists every stand-in broker that has recorded its flags in the
// cluster's directory; a standalone one lists itself.
func answer(conn net.Conn, dataDir string, clustered bool) {
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
		key, version := int16(binary.BigEndian.Uint16(req)), int16(binary.BigEndian.Uint16(req[2:]))
		body := []byte{0, 0, 0, 0, 0, 0} // error code, empty API key array
		if key == 3 && version <= 8 {
			body = metadata(dataDir, clustered, version)
		}
		resp := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
		resp = append(resp, req[4:8]...) // correlation ID
		if _, err := conn.Write(append(resp, body...)); err != nil {
			return
		}
	}
}

// metadata returns a Metadata response body listing the brokers.
func metadata(dataDir string, clustered bool, version int16) []byte {
	files := []string{filepath.Join(dataDir, FlagsFile)}
	if clustered {
		// <cluster>/broker-<id>/data/FlagsFile, for every broker.
		files, _ = filepath.Glob(filepath.Join(dataDir, "..", "..", "broker-*", "data", FlagsFile))
	}
	resp := kmsg.NewMetadataResponse()
	resp.Version = version
	resp.ControllerID = -1
	for _, f := range files {
		flags := readFlags(f)
		host, port, _ := net.SplitHostPort(flags["advertised"])
		id, err1 := strconv.Atoi(flags["node-id"])
		p, err2 := strconv.Atoi(port)
		if err1 != nil || err2 != nil {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(id), host, int32(p)
		if r := flags["rack"]; r != "" {
			b.Rack = &r
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp.AppendTo(nil)
}

// readFlags reads the single-line entries of a flags file.
func readFlags(path string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			if _, dup := out[k]; !dup {
				out[k] = v
			}
		}
	}
	return out
}
