package datacli

import (
	"flag"
	"slices"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"PT30M", 30 * time.Minute},
		{"pt1h", time.Hour},
		{"P1D", 24 * time.Hour},
		{"P1DT2H3M4S", 26*time.Hour + 3*time.Minute + 4*time.Second},
		{"PT0.5S", 500 * time.Millisecond},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
	} {
		got, err := parseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "P1H", "-5m", "soon"} {
		if d, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

func TestParseDatetime(t *testing.T) {
	utc := time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2024-03-01T12:30:45Z", utc},
		{"2024-03-01T12:30:45.250Z", utc.Add(250 * time.Millisecond)},
		{"2024-03-01T14:30:45+02:00", utc},
		{"2024-03-01T14:30:45+0200", utc},
		{"2024-03-01T12:30:45", time.Date(2024, 3, 1, 12, 30, 45, 0, time.Local)},
	} {
		got, err := parseDatetime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseDatetime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"2024-03-01", "yesterday", "2024-03-01 12:30:45"} {
		if _, err := parseDatetime(bad); err == nil {
			t.Errorf("parseDatetime(%q): want an error", bad)
		}
	}
}

func TestResetTarget(t *testing.T) {
	const start, end = 10, 50
	committed := ptr(int64(30))
	for _, tc := range []struct {
		name      string
		to        resetTo
		committed *int64
		atTime    int64
		want      int64 // after clamping
		wantErr   bool
	}{
		{"earliest", resetTo{kind: "earliest"}, committed, -1, start, false},
		{"latest", resetTo{kind: "latest"}, committed, -1, end, false},
		{"current", resetTo{kind: "current"}, committed, -1, 30, false},
		{"current without commit goes to the end", resetTo{kind: "current"}, nil, -1, end, false},
		{"offset", resetTo{kind: "offset", offset: 20}, nil, -1, 20, false},
		{"offset below start clamps", resetTo{kind: "offset", offset: 3}, nil, -1, start, false},
		{"offset above end clamps", resetTo{kind: "offset", offset: 99}, nil, -1, end, false},
		{"shift back", resetTo{kind: "shift", offset: -5}, committed, -1, 25, false},
		{"shift past end clamps", resetTo{kind: "shift", offset: 100}, committed, -1, end, false},
		{"shift without commit", resetTo{kind: "shift", offset: 1}, nil, -1, 0, true},
		{"time", resetTo{kind: "time"}, nil, 42, 42, false},
		{"time after the last record", resetTo{kind: "time"}, nil, -1, end, false},
	} {
		off, err := tc.to.target(tc.committed, start, end, tc.atTime)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: got %d, want an error", tc.name, off)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got, _ := clamp(off, start, end); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestParseTopicSpecs(t *testing.T) {
	got, err := parseTopicSpecs([]string{"a", "b:0,2", "c:1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []topicSpec{{"a", nil}, {"b", []int32{0, 2}}, {"c", []int32{1}}}
	if !slices.EqualFunc(got, want, func(x, y topicSpec) bool { return x.topic == y.topic && slices.Equal(x.partitions, y.partitions) }) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{":1", "a:", "a:x", "a:-1"} {
		if _, err := parseTopicSpecs([]string{bad}); err == nil {
			t.Errorf("parseTopicSpecs(%q): want an error", bad)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	n := fs.Int("n", 0, "")
	v := fs.Bool("v", false, "")
	pos, err := parseInterspersed(fs, []string{"a", "--n", "3", "b", "-v", "--", "-c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if *n != 3 || !*v || !slices.Equal(pos, []string{"a", "b", "-c", "d"}) {
		t.Errorf("n=%d v=%v pos=%q", *n, *v, pos)
	}
}
