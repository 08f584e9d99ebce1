package broker

import (
	"math/bits"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request frame buffers.
//
// Produce request bodies are nearly all the bytes a broker reads, and a fresh
// zeroed buffer for each one made the garbage collector run dozens of times a
// second under load. They are read into buffers from framePools instead.
//
// Ownership: a pooled buffer belongs to its request from readRequests until
// serveConn has written the request's response (or learnt there is none, or
// given up on the connection) and calls request.release; only then does it
// go back to the pool. The decoded kmsg request aliases the buffer (kmsg
// copies strings but not byte fields: a produce partition's Records point
// into it, and the log append rewrites offsets there in place), so nothing
// may keep a slice of a pooled body once its response is written. Bodies of
// APIs whose handlers keep request bytes (SyncGroup stores
// MemberAssignment, JoinGroup the protocol metadata) must never be pooled;
// pooledBody lists the APIs that are.

// Size classes are the powers of two from 1<<minFrameShift to
// 1<<maxFrameShift bytes; larger frames are allocated and left to the
// garbage collector.
const (
	minFrameShift = 12 // 4 KiB
	maxFrameShift = 24 // 16 MiB
)

// framePools[i] holds *[]byte of capacity 1<<(minFrameShift+i).
var framePools [maxFrameShift - minFrameShift + 1]sync.Pool

// pooledBody reports whether requests with API key key are read into pooled
// buffers: only those whose handler keeps no reference to the body after
// the response is written.
func pooledBody(key int16) bool {
	return key == kmsg.Produce.Int16()
}

// frameClass returns the index in framePools of the smallest class holding
// n bytes, or -1 when n is too large to pool.
func frameClass(n int) int {
	if n <= 1<<minFrameShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxFrameShift {
		return -1
	}
	return shift - minFrameShift
}

// getFrame returns a buffer of length n (contents undefined) from the pool
// of its size class. Return it with putFrame once nothing refers to it.
func getFrame(n int) *[]byte {
	c := frameClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if p, ok := framePools[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(minFrameShift+c))
	return &b
}

// putFrame returns a buffer from getFrame to its pool. The caller must not
// use it, or any slice of it, afterwards.
func putFrame(p *[]byte) {
	c := frameClass(cap(*p))
	if c < 0 || cap(*p) != 1<<(minFrameShift+c) {
		return // not from a pool
	}
	framePools[c].Put(p)
}
