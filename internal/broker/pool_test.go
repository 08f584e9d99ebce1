package broker

import "testing"

func TestFrameClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{1, 0},
		{4096, 0},
		{4097, 1},
		{8192, 1},
		{1 << 20, 8},
		{1<<20 + 1, 9},
		{1 << 24, 12},
		{1<<24 + 1, -1},
	} {
		if got := frameClass(tc.n); got != tc.class {
			t.Errorf("frameClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
}

func TestGetPutFrame(t *testing.T) {
	for _, n := range []int{8, 5000, 1 << 24, 1<<24 + 1} {
		p := getFrame(n)
		if len(*p) != n {
			t.Fatalf("getFrame(%d): len %d", n, len(*p))
		}
		if c := frameClass(n); c >= 0 && cap(*p) != 1<<(minFrameShift+c) {
			t.Fatalf("getFrame(%d): cap %d, not its class's", n, cap(*p))
		}
		putFrame(p)
	}
	// A buffer that is not a class's size is dropped, not pooled.
	b := make([]byte, 5000)
	putFrame(&b)
}

// TestRequestRelease checks that release returns a pooled frame once and
// drops the body that aliases it.
func TestRequestRelease(t *testing.T) {
	req := &request{frame: getFrame(100)}
	req.release()
	if req.frame != nil || req.body != nil {
		t.Fatal("release kept the frame or the body")
	}
	req.release() // no-op
	(&request{}).release()
}
