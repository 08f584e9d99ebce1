package provision

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProbeTimeout bounds one ApiVersions probe.
const ProbeTimeout = 2 * time.Second

// apiVersions sends one ApiVersions request to addr and reads the answer. Any
// well-framed answer with our correlation ID counts: a broker that rejects
// the version still answers.
func apiVersions(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "fjord-controlplane"
	req.ClientSoftwareVersion = "1"
	const correlationID = 7
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fjord-controlplane")).AppendRequest(nil, req, correlationID)
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("send ApiVersions to %s: %w", addr, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return fmt.Errorf("read ApiVersions response from %s: %w", addr, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 6 || n > 1<<20 {
		return fmt.Errorf("ApiVersions response from %s has bad size %d", addr, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return fmt.Errorf("read ApiVersions response from %s: %w", addr, err)
	}
	if id := int32(binary.BigEndian.Uint32(body)); id != correlationID {
		return fmt.Errorf("ApiVersions response from %s has correlation ID %d, want %d", addr, id, correlationID)
	}
	return nil
}
