package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// shared is the stack that every test uses. The first test that needs it
// builds the images and starts it; TestMain stops it after the last test.
var shared struct {
	once  sync.Once
	stack *stack
	// skip is why the tests skip, when Docker is missing outside CI.
	skip string
	err  error
	// buildLog is the output of `make images`, shown when the build fails.
	buildLog string
}

func TestMain(m *testing.M) {
	// Ryuk, testcontainers' reaper, is an image that no registry here can
	// provide. The stack is removed by TestMain instead.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")

	code := m.Run()

	if shared.stack != nil {
		shared.stack.terminate()
	}
	os.Exit(code)
}

// requireStack returns the running stack, starting it on first use. It
// skips the test when Docker is missing outside CI and fails it in CI.
func requireStack(t *testing.T) *stack {
	t.Helper()

	shared.once.Do(startShared)
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		if shared.buildLog != "" {
			t.Log("make images output:\n" + shared.buildLog)
		}
		t.Fatalf("start the stack: %v", shared.err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			shared.stack.printLogs(t)
		}
	})
	return shared.stack
}

func startShared() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	if err := dockerAvailable(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			shared.err = fmt.Errorf("docker is required when CI=true: %w", err)
			return
		}
		shared.skip = fmt.Sprintf("docker is not available (%v): "+
			"skipping the end-to-end tests; with CI=true they fail instead", err)
		return
	}

	root, err := repoRoot()
	if err != nil {
		shared.err = err
		return
	}

	shared.buildLog, err = buildImages(ctx, root)
	if err != nil {
		shared.err = err
		return
	}

	shared.stack, shared.err = startStack(ctx)
}

// dockerAvailable returns nil when a Docker daemon responds.
func dockerAvailable(ctx context.Context) error {
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	defer provider.Close()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return provider.Health(ctx)
}

// repoRoot returns the nearest directory above the working directory that
// contains go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}

	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository root: no go.work " +
				"above the working directory")
		}
		dir = parent
	}
}

// buildImages runs `make images` in root, once per test run, and returns
// its combined output.
func buildImages(ctx context.Context, root string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "images")
	cmd.Dir = root
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Env = append(os.Environ(), "GENRELAY_IMAGE_TAG="+imageTag)

	started := time.Now()
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("make images in %s: %w", root, err)
	}
	fmt.Fprintf(os.Stderr, "e2e: make images took %s\n",
		time.Since(started).Round(time.Second))
	return out.String(), nil
}
