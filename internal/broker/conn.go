package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// request is one decoded request frame.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	body     kmsg.Request // nil when the version is unsupported (ApiVersions only)
	// frame is the pooled buffer body aliases, or nil (see pool.go). It is
	// returned by release, after the response is written.
	frame *[]byte
}

// release returns the request's pooled frame buffer, if any. Call it once,
// after the response has been written or dropped; the request's body must
// not be used afterwards.
func (r *request) release() {
	if r.frame != nil {
		r.body = nil
		putFrame(r.frame)
		r.frame = nil
	}
}

// errCloseConn asks the connection loop to close the connection without a
// response, as Kafka does for requests it cannot parse.
var errCloseConn = errors.New("close connection")

// maxQueuedRequests bounds how many requests a connection may have read ahead
// of the one being handled (Kafka processes one request per connection at a
// time; reading ahead only overlaps the network with the work).
const maxQueuedRequests = 16

// serveConn runs one client connection: a reader goroutine decodes frames,
// and this goroutine handles them in order and writes each response before
// the next request is handled. It returns when the connection ends, after
// its reader has exited.
func (b *Broker) serveConn(ctx context.Context, nc net.Conn) {
	reqs := make(chan *request, maxQueuedRequests)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(reqs)
		if err := b.readRequests(nc, reqs); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			b.log.Debug("closing connection", "remote", nc.RemoteAddr().String(), "err", err)
		}
	}()
	defer func() {
		nc.Close()
		for req := range reqs {
			req.release()
		}
		wg.Wait()
	}()

	cs := &connState{remote: nc.RemoteAddr().String()}
	var buf []byte
	for req := range reqs {
		rep, err := b.handle(ctx, cs, req)
		if err != nil {
			req.release()
			if !errors.Is(err, errCloseConn) && ctx.Err() == nil {
				b.log.Warn("request failed", "api", kmsg.NameForKey(req.key), "version", req.version, "err", err)
			}
			return
		}
		if rep == nil { // acks=0 produce
			req.release()
			continue
		}
		buf, err = rep.write(nc, buf)
		rep.release()
		req.release()
		if err != nil {
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a large fetch buffer to an idle connection
		}
	}
}

// connState is per-connection state handlers may keep (fetch sessions, SASL).
type connState struct {
	remote string
}

// readRequests decodes frames until the connection fails or a frame is
// malformed. It never panics on input: every length is checked.
func (b *Broker) readRequests(nc net.Conn, reqs chan<- *request) error {
	var sizeBuf [4]byte
	// Buffered, so a small request costs one read(2), not two.
	r := bufio.NewReaderSize(nc, 64<<10)
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > b.settings.maxRequestBytes {
			return fmt.Errorf("frame size %d outside [8, %d]", size, b.settings.maxRequestBytes)
		}
		// The API key leads the body; its frame size is at least 8.
		key, err := r.Peek(2)
		if err != nil {
			return err
		}
		var frame *[]byte
		var body []byte
		if pooledBody(int16(binary.BigEndian.Uint16(key))) {
			frame = getFrame(int(size))
			body = *frame
		} else {
			body = make([]byte, size)
		}
		if _, err := io.ReadFull(r, body); err != nil {
			if frame != nil {
				putFrame(frame)
			}
			return err
		}
		req, err := parseRequest(body)
		if err != nil {
			if frame != nil {
				putFrame(frame)
			}
			return err
		}
		req.frame = frame
		reqs <- req
	}
}

// parseRequest decodes a request header and body. Unknown API keys and bodies
// that do not parse are errors (the connection is closed, as in Kafka); a
// version outside what we support leaves body nil so the handler can answer
// UNSUPPORTED_VERSION where Kafka does (ApiVersions).
func parseRequest(frame []byte) (*request, error) {
	r := kbin.Reader{Src: frame}
	req := &request{key: r.Int16(), version: r.Int16(), corr: r.Int32()}
	if cid := r.NullableString(); cid != nil {
		req.clientID = *cid
	}
	if err := r.Complete(); err != nil {
		return nil, fmt.Errorf("request header: %w", err)
	}
	api, ok := apis[req.key]
	if !ok {
		return nil, fmt.Errorf("unknown api key %d", req.key)
	}
	body := kmsg.RequestForKey(req.key)
	if req.version < api.min || req.version > api.max {
		if req.key == kmsg.ApiVersions.Int16() {
			return req, nil
		}
		return nil, fmt.Errorf("%s v%d unsupported", kmsg.NameForKey(req.key), req.version)
	}
	body.SetVersion(req.version)
	if body.IsFlexible() {
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return nil, fmt.Errorf("request header tags: %w", err)
		}
	}
	if err := body.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	req.body = body
	return req, nil
}

// appendResponse frames resp: size, correlation id, the response header's
// tagged fields when flexible (never for ApiVersions, per KIP-511), body.
func appendResponse(dst []byte, req *request, resp kmsg.Response) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(req.corr))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

// errorCode maps an error to its Kafka error code. It is the one place
// errors become codes.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the message that accompanies a code in responses that
// carry one: the error's text, which says what to fix.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
