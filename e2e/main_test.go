// Package e2e holds Fjord's acceptance tests: they build the fjord binary,
// run it the way users do (`fjord dev`, `fjord broker`) and drive it with real
// Kafka clients: kcat, confluent-kafka-python (librdkafka), kafka-python and
// franz-go.
//
// Every process a test starts listens on 127.0.0.1 only, is stopped by the test
// that started it, and is killed by PID in t.Cleanup if the test gives up early.
//
// A missing client tool skips the tests that need it, except when the
// environment has CI=true: there it fails them, so CI cannot skip silently.
// Set FJORD_E2E_BIN to test an already built binary instead of building one.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fjordBin is the path of the fjord binary under test, set by TestMain.
var fjordBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("FJORD_E2E_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: FJORD_E2E_BIN: %v\n", err)
			return 1
		}
		fjordBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "fjord-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	fjordBin = filepath.Join(dir, "fjord")
	build := exec.Command("go", "build", "-o", fjordBin, "./cmd/fjord")
	build.Dir = ".." // the module root: this package lives in <root>/e2e
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/fjord: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
