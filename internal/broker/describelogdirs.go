package broker

import (
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs (key 35), v0-v4: the broker's one log directory with the
// size of every partition in it (or of the requested ones), and (v4+) the
// volume's total and usable bytes.

func (b *Broker) handleDescribeLogDirs(req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.cfg.DataDir
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var fs syscall.Statfs_t
	if err := syscall.Statfs(b.cfg.DataDir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * fs.Bsize
		dir.UsableBytes = int64(fs.Bavail) * fs.Bsize
	}
	add := func(ts *topicState, indexes []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = ts.meta.Name
		for _, i := range indexes {
			if i < 0 || int(i) >= len(ts.parts) || ts.parts[i] == nil {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = i
			dp.Size = ts.parts[i].Log().Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	if req.Topics == nil {
		for _, ts := range b.parts.all() {
			idx := make([]int32, len(ts.parts))
			for i := range idx {
				idx[i] = int32(i)
			}
			add(ts, idx)
		}
	} else {
		for _, rt := range req.Topics {
			if ts := b.parts.topic(rt.Topic); ts != nil {
				add(ts, rt.Partitions)
			}
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
