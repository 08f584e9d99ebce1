package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wireConn is a raw Kafka connection for requests built with kmsg, so tests
// can put exact bytes on the wire.
type wireConn struct {
	net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

// dialWire connects to a broker.
func dialWire(ctx context.Context, addr string) (*wireConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return &wireConn{Conn: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("fjord-e2e"))}, nil
}

// frame returns req as a complete request frame (size prefix included) with
// correlation id corr.
func (c *wireConn) frame(req kmsg.Request, corr int32) []byte {
	return c.f.AppendRequest(nil, req, corr)
}

// roundTrip sends req and reads and decodes its response.
func (c *wireConn) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	c.corr++
	if _, err := c.Write(c.frame(req, c.corr)); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	body, err := readFrame(c)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return decodeResponse(req, c.corr, body)
}

// decodeResponse checks a response frame's correlation id and decodes its
// body as the response to req.
func decodeResponse(req kmsg.Request, corr int32, body []byte) (kmsg.Response, error) {
	r := kbin.Reader{Src: body}
	if got := r.Int32(); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	// Response header v1 (flexible requests, except ApiVersions) carries tags.
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		for n := r.Uvarint(); n > 0; n-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
	}
	if !r.Ok() {
		return nil, errors.New("response header truncated")
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("decode %T v%d: %w", resp, req.GetVersion(), err)
	}
	return resp, nil
}

// readFrame reads one size-prefixed frame and returns its body.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("bad response size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// probeApiVersions does one ApiVersions v3 round trip on a new connection.
func probeApiVersions(ctx context.Context, addr string) error {
	c, err := dialWire(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	req := apiVersionsV3()
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	av := resp.(*kmsg.ApiVersionsResponse)
	if av.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions error code %d", av.ErrorCode)
	}
	if len(av.ApiKeys) == 0 {
		return errors.New("ApiVersions listed no API keys")
	}
	return nil
}

// apiVersionsV3 returns an ApiVersions v3 request as a well-behaved client
// sends it (v3 requires the client software name and version).
func apiVersionsV3() *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "fjord-e2e"
	req.ClientSoftwareVersion = "0.0.0"
	return req
}
