package integration

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the service binaries that TestMain builds once per run.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "genrelay-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create bin dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir

	// Tests run the services with the race detector; benchmarks measure
	// them as they are deployed.
	flag.Parse()
	args := []string{"build", "-race", "-o", dir + "/"}
	if flag.Lookup("test.bench").Value.String() != "" {
		args = []string{"build", "-o", dir + "/"}
	}
	args = append(args,
		"github.com/genrelay/genrelay/services/ingress",
		"github.com/genrelay/genrelay/services/moderation")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build services:", err)
		return 1
	}

	return m.Run()
}

// process is a service binary run by a test, with its combined output
// kept for assertions and printed when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// syncBuffer is a bytes.Buffer that the process writes to while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProcess runs the named binary with env added to a minimal
// environment, stops it at cleanup, and prints its output if the test
// failed.
func startProcess(t testing.TB, name string, env ...string) *process {
	t.Helper()

	p := &process{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name))
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "GENRELAY_LOG_FORMAT=json"}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()

	t.Cleanup(func() {
		p.stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends sig and waits for the process to exit, killing it after 20s.
func (p *process) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()

	select {
	case <-p.done:
		return
	default:
	}

	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not exit within 20s of %s", p.name, sig)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady polls url until it responds 200.
func waitReady(t testing.TB, url string, within time.Duration) {
	t.Helper()

	if err := pollStatus(url, http.StatusOK, within); err != nil {
		t.Fatal(err)
	}
}

// pollStatus polls url until it responds with want, or returns an error after
// within.
func pollStatus(url string, want int, within time.Duration) error {
	deadline := time.Now().Add(within)
	last := "no response"
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				cancel()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: want status %d within %s, last: %s", url, want, within, last)
}
