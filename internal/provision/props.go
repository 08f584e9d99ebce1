package provision

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// MSKDefaults returns the broker properties MSK's default configuration
// gives a cluster of n brokers: topics and the consumer offsets replicated as
// widely as the cluster allows, up to three copies, with two in sync required
// for acks=all once there are three; one partition per new topic; and no
// topics created by producing to or fetching from them.
func MSKDefaults(n int) map[string]string {
	rf := strconv.Itoa(min(max(n, 1), 3))
	minISR := "1"
	if n >= 3 {
		minISR = "2"
	}
	return map[string]string{
		"default.replication.factor":       rf,
		"offsets.topic.replication.factor": rf,
		"min.insync.replicas":              minISR,
		"num.partitions":                   "1",
		"auto.create.topics.enable":        "false",
	}
}

// serverProperties returns the server.properties of a broker of a cluster of
// n brokers: MSK's defaults, then the cluster's configuration (nil if none)
// as it is. A broker reads a key's last line, so the configuration wins.
func serverProperties(n int, configuration []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by the Fjord control plane; edits are lost.\n")
	fmt.Fprintf(&b, "# MSK's defaults for a cluster of %d brokers:\n", n)
	defaults := MSKDefaults(n)
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		fmt.Fprintf(&b, "%s=%s\n", k, defaults[k])
	}
	if configuration != nil {
		fmt.Fprintf(&b, "\n# The cluster's configuration revision, which wins over the defaults above:\n")
		b.Write(configuration)
		if len(configuration) > 0 && configuration[len(configuration)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
