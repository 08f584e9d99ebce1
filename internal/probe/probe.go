// Package probe asks Fjord's processes whether they are ready: a broker
// whether its cluster has formed, a metadata quorum member whether its
// quorum has. `fjord dev` and the control plane's local provider wait on
// these before they call a cluster up.
package probe

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Timeout bounds one probe.
const Timeout = 2 * time.Second

// ListsBrokers sends one Metadata request (no topics) to the broker at addr
// on a connection of its own, and checks that the answer lists every broker
// of ids: a broker that does lives in a cluster that has formed.
func ListsBrokers(ctx context.Context, addr string, ids []int32) error {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1                            // the brokers and their racks; not flexible
	req.Topics = []kmsg.MetadataRequestTopic{} // none (null would mean all)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	if err := roundTrip(ctx, addr, req, resp); err != nil {
		return err
	}
	var listed []int32
	for _, b := range resp.Brokers {
		listed = append(listed, b.NodeID)
	}
	slices.Sort(listed)
	for _, id := range ids {
		if _, ok := slices.BinarySearch(listed, id); !ok {
			return fmt.Errorf("its metadata lists brokers %v, not yet all of %v", listed, ids)
		}
	}
	return nil
}

// roundTrip sends req (at a version whose response header is not flexible)
// to addr on a new connection and decodes the answer into resp.
func roundTrip(ctx context.Context, addr string, req kmsg.Request, resp kmsg.Response) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
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
	const correlationID = 7
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fjord-probe")).AppendRequest(nil, req, correlationID)
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("send %s to %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return fmt.Errorf("read %s response from %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("%s response from %s has bad size %d", kmsg.NameForKey(req.Key()), addr, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return fmt.Errorf("read %s response from %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	if id := int32(binary.BigEndian.Uint32(body)); id != correlationID {
		return fmt.Errorf("%s response from %s has correlation ID %d, want %d", kmsg.NameForKey(req.Key()), addr, id, correlationID)
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body[4:]); err != nil {
		return fmt.Errorf("decode %s response from %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	return nil
}

// QuorumHealthy asks the quorum member serving clients on clientURL for
// etcd's /health, which is true once the quorum has a leader.
func QuorumHealthy(ctx context.Context, hc *http.Client, clientURL string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("%s/health: %s: %w", clientURL, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || h.Health != "true" {
		return fmt.Errorf("%s/health: %s %q", clientURL, resp.Status, h.Reason)
	}
	return nil
}
