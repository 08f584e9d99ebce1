package devcluster

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/fjord-io/fjord/internal/atomicfile"
)

// devProperties returns the broker properties `fjord dev` sets for a cluster
// of n > 1 brokers: replicate everything as widely as the cluster allows (up
// to three copies), require two in-sync copies for acks=all once there are
// three, and move leadership back to preferred replicas within seconds
// rather than Kafka's five minutes, so a restarted broker soon leads again.
func devProperties(n int) map[string]string {
	rf := strconv.Itoa(min(n, 3))
	p := map[string]string{
		"default.replication.factor":              rf,
		"offsets.topic.replication.factor":        rf,
		"leader.imbalance.check.interval.seconds": "5",
	}
	if n >= 3 {
		p["min.insync.replicas"] = "2"
	}
	return p
}

// writeProperties writes the server.properties every broker of a cluster of
// n brokers is given: the dev defaults (devProperties) the user's file does
// not set, then the user's file as it is, so that the user's settings win.
// userFile may be empty.
func writeProperties(path, userFile string, n int) error {
	var user []byte
	var userKeys map[string]string
	if userFile != "" {
		var err error
		if user, err = os.ReadFile(userFile); err != nil {
			return fmt.Errorf("read --config: %w", err)
		}
		userKeys = parseProperties(user)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by `fjord dev` on every start; edits are lost. Pass your own\n")
	fmt.Fprintf(&b, "# properties with --config: they are copied below and win over these.\n")
	fmt.Fprintf(&b, "#\n# Defaults for a development cluster of %d brokers:\n", n)
	defaults := devProperties(n)
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		if v, ok := userKeys[k]; ok {
			fmt.Fprintf(&b, "# %s=%s is set by %s to %s\n", k, defaults[k], userFile, v)
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", k, defaults[k])
	}
	if userFile != "" {
		fmt.Fprintf(&b, "\n# From %s:\n", userFile)
		b.Write(user)
		if len(user) > 0 && user[len(user)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	if err := atomicfile.Write(path, b.Bytes()); err != nil {
		return fmt.Errorf("write dev properties: %w", err)
	}
	return nil
}

// parseProperties parses a server.properties file by the rules the broker
// reads it with (broker.ReadProperties): one key=value or key:value per
// line, # and ! comments, a trailing backslash continues a line, and a
// later line overrides an earlier one.
func parseProperties(data []byte) map[string]string {
	props := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var pending string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line, pending = pending+line, ""
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			pending = rest
			continue
		}
		k, v := line, ""
		if i := strings.IndexAny(line, "=:"); i >= 0 {
			k, v = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		props[k] = v
	}
	return props
}
