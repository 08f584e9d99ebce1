package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replyTimeout is how long a malformed-input case waits for the broker to
// answer or close the connection. It only bounds a hang.
const replyTimeout = 10 * time.Second

// outcome is what the broker did with one connection's input.
type outcome struct {
	data   []byte // bytes the broker sent
	closed bool   // the broker closed (or reset) the connection
}

// readOutcome reads what the broker sends until it closes the connection or
// replyTimeout passes; with untilFrame it stops after one complete frame.
func readOutcome(c net.Conn, untilFrame bool) outcome {
	var o outcome
	_ = c.SetReadDeadline(time.Now().Add(replyTimeout))
	buf := make([]byte, 64<<10)
	for {
		if untilFrame && len(o.data) >= 4 {
			if n := int(binary.BigEndian.Uint32(o.data)); n >= 0 && len(o.data) >= 4+n {
				return o
			}
		}
		n, err := c.Read(buf)
		o.data = append(o.data, buf[:n]...)
		if err != nil {
			o.closed = errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
			return o
		}
	}
}

// rawFrame returns size (as given, maybe wrong) followed by body.
func rawFrame(size int32, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(size)), body...)
}

// reqHeader returns a request header v1 (api key, version, correlation id,
// client id) followed by body.
func reqHeader(key, version int16, corr int32, body []byte) []byte {
	var b []byte
	b = kbin.AppendInt16(b, key)
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, corr)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("fjord-e2e"))
	return append(b, body...)
}

// withSize frames body with its true size.
func withSize(body []byte) []byte { return rawFrame(int32(len(body)), body) }

// maxVersion returns the highest version of key both the broker (per its
// ApiVersions answer) and kmsg support.
func maxVersion(t testing.TB, addr string, key int16) int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replyTimeout)
	defer cancel()
	c, err := dialWire(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := apiVersionsV3()
	resp, err := c.roundTrip(req)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == key {
			return min(k.MaxVersion, kmsg.RequestForKey(key).MaxVersion())
		}
	}
	t.Fatalf("broker lists no versions for API key %d", key)
	return 0
}

// checkServes does an ApiVersions and a Metadata round trip on c.
func checkServes(t testing.TB, c *wireConn, metadataVersion int16) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(replyTimeout))
	av := apiVersionsV3()
	resp, err := c.roundTrip(av)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
		t.Fatalf("ApiVersions: error %v", kerr.ErrorForCode(code))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = metadataVersion
	resp, err = c.roundTrip(md)
	if err != nil {
		t.Fatalf("Metadata v%d: %v", metadataVersion, err)
	}
	if len(resp.(*kmsg.MetadataResponse).Brokers) == 0 {
		t.Fatalf("Metadata v%d lists no brokers", metadataVersion)
	}
}

// TestMalformedInput sends broken frames over raw TCP. For each, the broker
// must answer with the right error or close that connection, and must keep
// serving a connection opened before the case and a fresh one after it.
func TestMalformedInput(t *testing.T) {
	b := startBroker(t, brokerOptions{})
	mdVersion := maxVersion(t, b.Addr, kmsg.Metadata.Int16())
	produceVersion := maxVersion(t, b.Addr, kmsg.Produce.Int16())
	ctx := t.Context()
	bystander, err := dialWire(ctx, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()
	checkServes(t, bystander, mdVersion)

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		g := make([]byte, n)
		for i := range g {
			g[i] = byte(rng.IntN(256))
		}
		return g
	}
	apiVersionsV0 := reqHeader(kmsg.ApiVersions.Int16(), 0, 1, nil)

	type expect int
	const (
		closes          expect = iota // the broker closes the connection by itself
		closesAfterEOF                // the broker closes once the client half-closes
		answersOrCloses               // a response with the request's correlation id, or a close
	)
	cases := []struct {
		name      string
		input     []byte
		halfClose bool // close our writing side after the input
		want      expect
		corr      int32 // answersOrCloses: the correlation id a response must carry
	}{
		{name: "truncated size", input: []byte{0, 0}, halfClose: true, want: closesAfterEOF},
		{name: "truncated frame", input: rawFrame(100, apiVersionsV0), halfClose: true, want: closesAfterEOF},
		{name: "size 2 GiB-1", input: rawFrame(1<<31-1, apiVersionsV0), want: closes},
		{name: "size just over socket.request.max.bytes", input: rawFrame(100<<20+1, apiVersionsV0), want: closes},
		{name: "size -1", input: rawFrame(-1, apiVersionsV0), want: closes},
		{name: "size -2 GiB", input: rawFrame(-1<<31, apiVersionsV0), want: closes},
		{name: "size 0", input: rawFrame(0, nil), want: closes},
		{name: "size 1", input: rawFrame(1, []byte{0}), want: closes},
		{name: "header cut short", input: withSize([]byte{0, 18, 0, 0, 0}), want: closes},
		{name: "client id longer than frame", input: withSize(append(kbin.AppendInt32(kbin.AppendInt32(nil, 18<<16), 5), 0x03, 0xe8)), want: closes},
		{name: "garbage body", input: withSize(garbage(64)), want: answersOrCloses, corr: -1},
		{name: "garbage body, large", input: withSize(garbage(1 << 20)), want: answersOrCloses, corr: -1},
		{name: "unknown api key 9999", input: withSize(reqHeader(9999, 0, 77, nil)), want: closes},
		{name: "negative api key", input: withSize(reqHeader(-1, 0, 78, nil)), want: closes},
		{name: "metadata v99", input: withSize(reqHeader(kmsg.Metadata.Int16(), 99, 79, garbage(16))), want: answersOrCloses, corr: 79},
		{name: "metadata with garbage body", input: withSize(reqHeader(kmsg.Metadata.Int16(), mdVersion, 80, bytes.Repeat([]byte{0xff}, 40))), want: answersOrCloses, corr: 80},
		{name: "produce with garbage body", input: withSize(reqHeader(kmsg.Produce.Int16(), produceVersion, 81, garbage(200))), want: answersOrCloses, corr: 81},
		{name: "produce with truncated body", input: withSize(reqHeader(kmsg.Produce.Int16(), produceVersion, 82, []byte{0, 1})), want: answersOrCloses, corr: 82},
		{name: "create topics with garbage body", input: withSize(reqHeader(kmsg.CreateTopics.Int16(), 4, 83, garbage(50))), want: answersOrCloses, corr: 83},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if b.exited() {
				t.Fatalf("broker exited (%v)\nstderr:\n%s", b.err, b.stderr())
			}
			c, err := net.Dial("tcp", b.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(replyTimeout))
			if _, err := c.Write(tc.input); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("write: %v", err)
			}
			if tc.halfClose {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			o := readOutcome(c, tc.want == answersOrCloses)
			switch tc.want {
			case closes, closesAfterEOF:
				if !o.closed {
					t.Errorf("broker kept the connection open (sent %d bytes)", len(o.data))
				}
			case answersOrCloses:
				if !o.closed {
					body, err := readFrame(bytes.NewReader(o.data))
					switch {
					case err != nil:
						t.Errorf("broker neither answered nor closed: %v (%d bytes)", err, len(o.data))
					case tc.corr >= 0 && int32(binary.BigEndian.Uint32(body)) != tc.corr:
						t.Errorf("answer has correlation id %d, want %d", int32(binary.BigEndian.Uint32(body)), tc.corr)
					default:
						t.Logf("answered with %d bytes", len(body))
					}
				}
			}
			checkServes(t, bystander, mdVersion)
			fresh, err := dialWire(ctx, b.Addr)
			if err != nil {
				t.Fatalf("broker accepts no new connection: %v", err)
			}
			defer fresh.Close()
			checkServes(t, fresh, mdVersion)
		})
	}

	if b.exited() {
		t.Fatalf("broker exited: %v\nstderr:\n%s", b.err, b.stderr())
	}
}

// TestApiVersionsUnsupportedVersion: per KIP-511, an ApiVersions request of a
// version the broker does not know gets UNSUPPORTED_VERSION in the v0
// response shape, listing the versions the broker does support, and the
// connection stays usable.
func TestApiVersionsUnsupportedVersion(t *testing.T) {
	b := startBroker(t, brokerOptions{})
	c, err := dialWire(t.Context(), b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(replyTimeout))

	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 99
	req.ClientSoftwareName = "fjord-e2e"
	req.ClientSoftwareVersion = "0"
	if _, err := c.Write(c.frame(req, 42)); err != nil {
		t.Fatal(err)
	}
	body, err := readFrame(c)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	v0 := kmsg.NewPtrApiVersionsRequest() // decode as the v0 shape
	v0.Version = 0
	resp, err := decodeResponse(v0, 42, body)
	if err != nil {
		t.Fatalf("response is not an ApiVersions v0 response: %v", err)
	}
	av := resp.(*kmsg.ApiVersionsResponse)
	if av.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("error code %d, want %d (UNSUPPORTED_VERSION)", av.ErrorCode, kerr.UnsupportedVersion.Code)
	}
	var found bool
	for _, k := range av.ApiKeys {
		if k.ApiKey == kmsg.ApiVersions.Int16() {
			found = true
			if k.MinVersion != 0 || k.MaxVersion < 3 {
				t.Errorf("ApiVersions versions %d..%d, want 0..3 or more", k.MinVersion, k.MaxVersion)
			}
		}
	}
	if !found {
		t.Errorf("UNSUPPORTED_VERSION answer does not list ApiVersions itself: %+v", av.ApiKeys)
	}
	// The client retries with a version it now knows the broker supports.
	checkServes(t, c, maxVersion(t, b.Addr, kmsg.Metadata.Int16()))
}

// TestPipelinedAndSplitRequests: several requests written at once are all
// answered, in order; a request trickled in one byte per write is answered.
func TestPipelinedAndSplitRequests(t *testing.T) {
	b := startBroker(t, brokerOptions{})
	mdVersion := maxVersion(t, b.Addr, kmsg.Metadata.Int16())
	c, err := dialWire(t.Context(), b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(replyTimeout))

	var reqs []kmsg.Request
	var wire []byte
	for i := range 20 {
		var req kmsg.Request
		if i%2 == 0 {
			av := apiVersionsV3()
			req = av
		} else {
			md := kmsg.NewPtrMetadataRequest()
			md.Version = mdVersion
			req = md
		}
		reqs = append(reqs, req)
		wire = append(wire, c.frame(req, int32(1000+i))...)
	}
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	for i, req := range reqs {
		body, err := readFrame(c)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if _, err := decodeResponse(req, int32(1000+i), body); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
	}

	av := apiVersionsV3()
	for _, by := range c.frame(av, 2000) {
		if _, err := c.Write([]byte{by}); err != nil {
			t.Fatal(err)
		}
	}
	body, err := readFrame(c)
	if err != nil {
		t.Fatalf("trickled request: %v", err)
	}
	if _, err := decodeResponse(av, 2000, body); err != nil {
		t.Fatalf("trickled request: %v", err)
	}
}
