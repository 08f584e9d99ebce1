package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicaConn is a follower's connection to a leader: one request at a
// time, encoded and decoded with kmsg. Its owner is one replica fetcher.
type replicaConn struct {
	nc   net.Conn
	br   *bufio.Reader
	fmt  *kmsg.RequestFormatter
	corr int32
	buf  []byte
}

func dialReplica(ctx context.Context, addr string, node int32) (*replicaConn, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial leader %s: %w", addr, err)
	}
	return &replicaConn{
		nc:  nc,
		br:  bufio.NewReaderSize(nc, 64<<10),
		fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(fmt.Sprintf("fjord-replica-%d", node))),
	}, nil
}

func (c *replicaConn) Close() error { return c.nc.Close() }

// request sends req at its set version and reads the response, within
// timeout; ctx's end interrupts it. Any error leaves the connection
// unusable: the caller closes it.
func (c *replicaConn) request(ctx context.Context, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	c.corr++
	c.buf = c.fmt.AppendRequest(c.buf[:0], req, c.corr)
	if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.nc.Write(c.buf); err != nil {
		return nil, fmt.Errorf("send %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 1<<30 {
		return nil, fmt.Errorf("%s response of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	body := make([]byte, n) // kept: the decoded response aliases it
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return nil, fmt.Errorf("response correlation id %d, want %d", corr, c.corr)
	}
	body = body[4:]
	if req.IsFlexible() {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// skipTags skips a flexible header's tagged fields.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad response header tags")
	}
	b = b[k:]
	for range n {
		_, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errors.New("bad response header tag")
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < size {
			return nil, errors.New("bad response header tag size")
		}
		b = b[k+int(size):]
	}
	return b, nil
}
