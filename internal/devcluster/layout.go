package devcluster

import (
	"net"
	"strconv"
	"strings"
)

// The ports and directories of a development cluster of N brokers, all on
// 127.0.0.1 and under Config.DataDir:
//
//	broker i            port Port+i                     dir broker-<i>
//	quorum member j     client Port+N+2j, peer Port+N+2j+1   dir quorum-<j>
//
// A cluster of one broker has no quorum (the broker runs standalone); two
// brokers get a quorum of one member, three or more a quorum of three. With
// the default --port 9092 and three brokers: brokers 9092-9094, members
// 9095/9096, 9097/9098 and 9099/9100.

// zones are the racks brokers are spread over, in turn.
var zones = []string{"zone-a", "zone-b", "zone-c"}

// clusterName is the cluster's name in the quorum: its metadata lives under
// /fjord/dev/.
const clusterName = "dev"

// quorumSize returns the number of quorum members a cluster of n brokers
// runs: none for one broker, one for two, three for more.
func quorumSize(brokers int) int {
	switch {
	case brokers <= 1:
		return 0
	case brokers == 2:
		return 1
	default:
		return 3
	}
}

// members returns the number of quorum members of c's cluster.
func (c Config) members() int { return quorumSize(c.Brokers) }

// lastPort returns the highest port the cluster uses.
func (c Config) lastPort() int {
	if m := c.members(); m > 0 {
		return c.Port + c.Brokers + 2*m - 1
	}
	return c.Port + c.Brokers - 1
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// brokerAddr returns broker i's listen (and advertised) address.
func (c Config) brokerAddr(i int) string { return loopback(c.Port + i) }

// brokerAddrs returns every broker's address, by node id.
func (c Config) brokerAddrs() []string {
	addrs := make([]string, c.Brokers)
	for i := range addrs {
		addrs[i] = c.brokerAddr(i)
	}
	return addrs
}

// memberName returns quorum member j's name.
func memberName(j int) string { return "quorum-" + strconv.Itoa(j) }

// memberClientAddr returns the address quorum member j serves clients on.
func (c Config) memberClientAddr(j int) string { return loopback(c.Port + c.Brokers + 2*j) }

// memberPeerAddr returns the address quorum member j serves its peers on.
func (c Config) memberPeerAddr(j int) string { return loopback(c.Port + c.Brokers + 2*j + 1) }

// initialCluster returns the quorum's members as `fjord quorum
// --initial-cluster` takes them: name=http://peer, comma separated.
func (c Config) initialCluster() string {
	var b strings.Builder
	for j := range c.members() {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(memberName(j) + "=http://" + c.memberPeerAddr(j))
	}
	return b.String()
}

// clientURLs returns every member's client URL, as `fjord broker
// --metadata-endpoints` takes them.
func (c Config) clientURLs() []string {
	urls := make([]string, c.members())
	for j := range urls {
		urls[j] = "http://" + c.memberClientAddr(j)
	}
	return urls
}
