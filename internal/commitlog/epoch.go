package commitlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// epochEntry records that leader epoch Epoch started at offset Start.
type epochEntry struct {
	Epoch int32
	Start int64
}

// The leader-epoch-checkpoint file uses Kafka's text format: a version line
// (0), a count line, then "epoch startOffset" per line.

func encodeEpochs(entries []epochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.Start)
	}
	return b.Bytes()
}

func readEpochs(dir string) ([]epochEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, epochFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	bad := fmt.Errorf("parse %s: malformed", epochFile)
	v, ok := line()
	if !ok || v != "0" {
		return nil, bad
	}
	c, ok := line()
	n, err := strconv.Atoi(c)
	if !ok || err != nil || n < 0 {
		return nil, bad
	}
	entries := make([]epochEntry, 0, min(n, 1024))
	for range n {
		l, ok := line()
		if !ok {
			return nil, bad
		}
		var e epochEntry
		if _, err := fmt.Sscanf(l, "%d %d", &e.Epoch, &e.Start); err != nil {
			return nil, bad
		}
		if k := len(entries); k > 0 && (e.Epoch <= entries[k-1].Epoch || e.Start < entries[k-1].Start) {
			return nil, bad
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// epochsTruncatedFromEnd returns entries without those starting at or after end.
func epochsTruncatedFromEnd(entries []epochEntry, end int64) []epochEntry {
	i := len(entries)
	for i > 0 && entries[i-1].Start >= end {
		i--
	}
	return entries[:i:i]
}

// epochsTruncatedFromStart returns entries without those wholly before start:
// the last entry starting at or before start is kept, moved to start.
func epochsTruncatedFromStart(entries []epochEntry, start int64) []epochEntry {
	i := 0
	for i+1 < len(entries) && entries[i+1].Start <= start {
		i++
	}
	if i == 0 && (len(entries) == 0 || entries[0].Start >= start) {
		return entries
	}
	out := append([]epochEntry(nil), entries[i:]...)
	if out[0].Start < start {
		out[0].Start = start
	}
	return out
}
