package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbeStatus(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		expectedErr error
	}{
		{name: "ok", status: http.StatusOK},
		{name: "unavailable", status: http.StatusServiceUnavailable,
			expectedErr: errUnhealthy},
		{name: "not found", status: http.StatusNotFound,
			expectedErr: errUnhealthy},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(
				func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(tt.status)
				}))
			t.Cleanup(srv.Close)

			err := probe(context.Background(), srv.URL+"/healthz")
			if !errors.Is(err, tt.expectedErr) {
				t.Fatalf("probe error = %v, expected %v", err, tt.expectedErr)
			}
		})
	}
}

func TestProbeTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(
		func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t.Cleanup(cancel)

	if err := probe(ctx, srv.URL); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe error = %v, expected a deadline error", err)
	}
}

func TestProbeRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	if err := probe(context.Background(), url); err == nil {
		t.Fatal("probe of a closed server returned nil")
	}
}
