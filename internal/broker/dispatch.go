package broker

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/partition"
	"github.com/fjord-io/fjord/internal/record"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

type apiRange struct{ min, max int16 }

// apis lists the APIs this broker serves with the versions it accepts: what
// Apache Kafka 3.9 accepts. Produce v0-v2 and Fetch v0-v3 carry the magic 0/1
// message formats, converted to and from the stored RecordBatch v2.
var apis = func() map[int16]apiRange {
	minVersions := map[kmsg.Key]int16{
		kmsg.Produce:                 0,
		kmsg.Fetch:                   0,
		kmsg.ListOffsets:             0,
		kmsg.Metadata:                0,
		kmsg.ApiVersions:             0,
		kmsg.CreateTopics:            0,
		kmsg.DeleteTopics:            0,
		kmsg.DeleteRecords:           0,
		kmsg.OffsetForLeaderEpoch:    0,
		kmsg.DescribeConfigs:         0,
		kmsg.AlterConfigs:            0,
		kmsg.DescribeLogDirs:         0,
		kmsg.CreatePartitions:        0,
		kmsg.IncrementalAlterConfigs: 0,
		kmsg.DescribeCluster:         0,
		// Consumer groups (group/*.go) and idempotent producers.
		kmsg.FindCoordinator: 0,
		kmsg.JoinGroup:       0,
		kmsg.SyncGroup:       0,
		kmsg.Heartbeat:       0,
		kmsg.LeaveGroup:      0,
		kmsg.OffsetCommit:    0,
		kmsg.OffsetFetch:     0,
		kmsg.ListGroups:      0,
		kmsg.DescribeGroups:  0,
		kmsg.DeleteGroups:    0,
		kmsg.OffsetDelete:    0,
		kmsg.InitProducerID:  0,
		// Replication (issue 4).
		kmsg.ElectLeaders:               0,
		kmsg.AlterPartitionAssignments:  0,
		kmsg.ListPartitionReassignments: 0,
	}
	kafka39 := kversion.V3_9_0()
	m := make(map[int16]apiRange, len(minVersions))
	for k, min := range minVersions {
		max, ok := kafka39.LookupMaxKeyVersion(int16(k))
		if !ok {
			panic(fmt.Sprintf("kafka 3.9 has no %s", kmsg.NameForKey(int16(k))))
		}
		if kmax := kmsg.RequestForKey(int16(k)).MaxVersion(); kmax < max {
			max = kmax
		}
		m[int16(k)] = apiRange{min: min, max: max}
	}
	return m
}()

// handle runs one request. A nil reply with a nil error means no response
// is sent (acks=0 produce); an error closes the connection.
func (b *Broker) handle(ctx context.Context, cs *connState, req *request) (reply, error) {
	if req.body == nil {
		return kmsgReply{req: req, resp: b.handleUnsupportedApiVersions()}, nil
	}
	var (
		resp kmsg.Response
		err  error
	)
	switch body := req.body.(type) {
	case *kmsg.ApiVersionsRequest:
		resp = b.handleApiVersions(body)
	case *kmsg.MetadataRequest:
		resp = b.handleMetadata(body)
	case *kmsg.ProduceRequest:
		resp = b.handleProduce(ctx, body)
	case *kmsg.FetchRequest:
		fr, views, err := b.handleFetch(ctx, cs, body)
		if err != nil {
			return nil, err
		}
		return encodeFetch(req.corr, fr, views), nil
	case *kmsg.ListOffsetsRequest:
		resp = b.handleListOffsets(body)
	case *kmsg.CreateTopicsRequest:
		resp = b.handleCreateTopics(body)
	case *kmsg.DeleteTopicsRequest:
		resp = b.handleDeleteTopics(body)
	case *kmsg.CreatePartitionsRequest:
		resp = b.handleCreatePartitions(body)
	case *kmsg.DescribeConfigsRequest:
		resp = b.handleDescribeConfigs(body)
	case *kmsg.AlterConfigsRequest:
		resp = b.handleAlterConfigs(body)
	case *kmsg.IncrementalAlterConfigsRequest:
		resp = b.handleIncrementalAlterConfigs(body)
	case *kmsg.DescribeClusterRequest:
		resp = b.handleDescribeCluster(body)
	case *kmsg.DeleteRecordsRequest:
		resp = b.handleDeleteRecords(body)
	case *kmsg.OffsetForLeaderEpochRequest:
		resp = b.handleOffsetForLeaderEpoch(body)
	case *kmsg.DescribeLogDirsRequest:
		resp = b.handleDescribeLogDirs(body)
	case *kmsg.ElectLeadersRequest:
		resp = b.handleElectLeaders(ctx, body)
	case *kmsg.AlterPartitionAssignmentsRequest:
		resp = b.handleAlterPartitionReassignments(ctx, body)
	case *kmsg.ListPartitionReassignmentsRequest:
		resp = b.handleListPartitionReassignments(body)
	case *kmsg.InitProducerIDRequest:
		resp = b.handleInitProducerID(body)
	case *kmsg.FindCoordinatorRequest:
		resp = b.handleFindCoordinator(body)
	case *kmsg.JoinGroupRequest:
		resp, err = b.handleJoinGroup(ctx, cs, req.clientID, body)
	case *kmsg.SyncGroupRequest:
		resp, err = b.handleSyncGroup(ctx, body)
	case *kmsg.HeartbeatRequest:
		resp = b.handleHeartbeat(body)
	case *kmsg.LeaveGroupRequest:
		resp = b.handleLeaveGroup(body)
	case *kmsg.OffsetCommitRequest:
		resp = b.handleOffsetCommit(body)
	case *kmsg.OffsetFetchRequest:
		resp = b.handleOffsetFetch(body)
	case *kmsg.ListGroupsRequest:
		resp = b.handleListGroups(body)
	case *kmsg.DescribeGroupsRequest:
		resp = b.handleDescribeGroups(body)
	case *kmsg.DeleteGroupsRequest:
		resp = b.handleDeleteGroups(body)
	case *kmsg.OffsetDeleteRequest:
		resp = b.handleOffsetDelete(body)
	default:
		return nil, fmt.Errorf("%w: no handler for %s", errCloseConn, kmsg.NameForKey(req.key))
	}
	if err != nil || resp == nil {
		return nil, err
	}
	resp.SetVersion(req.version)
	return kmsgReply{req: req, resp: resp}, nil
}

// reply is a response ready to be written to a connection.
type reply interface {
	// write sends the whole response frame; buf is scratch space it may
	// grow and return.
	write(nc net.Conn, buf []byte) ([]byte, error)
	// release frees what the reply holds; called once, after write or
	// instead of it.
	release()
}

// kmsgReply is a response that kmsg encodes.
type kmsgReply struct {
	req  *request
	resp kmsg.Response
}

func (r kmsgReply) write(nc net.Conn, buf []byte) ([]byte, error) {
	buf = appendResponse(buf[:0], r.req, r.resp)
	_, err := nc.Write(buf)
	return buf, err
}

func (kmsgReply) release() {}

// errorMap maps our sentinel errors to Kafka codes; errorCode consults it.
var errorMap = []struct {
	err  error
	code *kerr.Error
}{
	{commitlog.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{commitlog.ErrClosed, kerr.NotLeaderForPartition},
	{record.ErrCorrupt, kerr.CorruptMessage},
	{record.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{record.ErrInvalidRecord, kerr.InvalidRecord},
	{record.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
	{record.ErrTooLarge, kerr.MessageTooLarge},
	{metadata.ErrTopicExists, kerr.TopicAlreadyExists},
	{metadata.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{metadata.ErrInvalidTopic, kerr.InvalidTopicException},
	{metadata.ErrPartitionsDec, kerr.InvalidPartitions},
	{topicconfig.ErrInvalid, kerr.InvalidConfig},
	{partition.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{partition.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{partition.ErrNotLeader, kerr.NotLeaderForPartition},
}

// codedError is a Kafka error code with a message that says what to fix.
type codedError struct {
	code *kerr.Error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.code }

// kerrf returns a Kafka error code carrying a message that says what to fix.
func kerrf(code *kerr.Error, format string, args ...any) error {
	return &codedError{code: code, msg: fmt.Sprintf(format, args...)}
}

func nowMillis() int64 { return time.Now().UnixMilli() }
