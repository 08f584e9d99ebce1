package controller

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/fjord-io/fjord/internal/metadata"
)

// ErrInvalidReplicationFactor means a replication factor cannot be placed:
// under 1, or more than the brokers available. INVALID_REPLICATION_FACTOR.
var ErrInvalidReplicationFactor = errors.New("controller: invalid replication factor")

// Assign places the replicas of partitions new partitions, numbered from
// startPartition, on brokers (the live, unfenced ones), as Kafka's
// rack-aware assignment does. Brokers are listed alternating by rack
// (racks sorted by name, brokers by node id; a broker without a rack is in
// rack ""); partition p's first replica, its preferred leader, is broker
// (p + start) of that list, so leaders go round-robin; its followers follow
// at a shift that grows by one every len(brokers) partitions, skipping
// brokers that already hold one of its replicas and, while some rack holds
// none, racks that do. So a partition's replicas are on distinct brokers
// and, with at least replicationFactor racks, in distinct racks.
//
// seed picks the start and the first shift, which Kafka draws at random;
// the broker passes a random seed. Assigning partitions [0, n) and then
// [n, m) with the same seed and brokers continues the same pattern.
//
// Assign returns one replica list per partition.
func Assign(brokers []metadata.Broker, partitions, replicationFactor, startPartition int, seed uint64) ([][]int32, error) {
	switch {
	case partitions < 0 || startPartition < 0:
		return nil, fmt.Errorf("assign %d partitions from %d: negative", partitions, startPartition)
	case replicationFactor < 1:
		return nil, fmt.Errorf("%w: %d is under 1", ErrInvalidReplicationFactor, replicationFactor)
	case replicationFactor > len(brokers):
		return nil, fmt.Errorf("%w: replication factor %d is larger than the %d available brokers",
			ErrInvalidReplicationFactor, replicationFactor, len(brokers))
	}
	list, rackOf, racks := rackAlternated(brokers)
	n := len(list)
	if n != len(brokers) {
		return nil, fmt.Errorf("assign replicas: broker list names a node id twice")
	}
	rng := rand.New(rand.NewPCG(seed, 0x666a6f7264)) // "fjord"
	startIndex, firstShift := rng.IntN(n), rng.IntN(n)

	out := make([][]int32, partitions)
	for i := range out {
		p := startPartition + i
		shift := firstShift + p/n
		first := (p + startIndex) % n
		replicas := []int32{list[first]}
		usedRacks := map[string]bool{rackOf[list[first]]: true}
		for k := 0; len(replicas) < replicationFactor; k++ {
			b := list[followerIndex(first, shift*racks, k, n)]
			if usedRacks[rackOf[b]] && len(usedRacks) < racks || slices.Contains(replicas, b) {
				continue
			}
			replicas = append(replicas, b)
			usedRacks[rackOf[b]] = true
		}
		out[i] = replicas
	}
	return out, nil
}

// followerIndex is Kafka's replicaIndex: the k-th candidate follower of the
// replica at first, never first itself.
func followerIndex(first, shift, k, n int) int {
	return (first + 1 + (shift+k)%(n-1)) % n
}

// rackAlternated lists the brokers' node ids alternating by rack: the
// first broker of each rack in rack order, then the second of each, and so
// on. It returns the list, each node's rack and the number of racks.
func rackAlternated(brokers []metadata.Broker) ([]int32, map[int32]string, int) {
	rackOf := make(map[int32]string, len(brokers))
	byRack := make(map[string][]int32)
	for _, b := range brokers {
		if _, dup := rackOf[b.NodeID]; dup {
			continue
		}
		rackOf[b.NodeID] = b.Rack
		byRack[b.Rack] = append(byRack[b.Rack], b.NodeID)
	}
	var racks []string
	for r, nodes := range byRack {
		racks = append(racks, r)
		slices.Sort(nodes)
	}
	slices.Sort(racks)
	list := make([]int32, 0, len(rackOf))
	for i := 0; len(list) < len(rackOf); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				list = append(list, byRack[r][i])
			}
		}
	}
	return list, rackOf, len(racks)
}
