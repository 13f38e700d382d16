package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// healthcheckTimeout bounds the whole probe.
const healthcheckTimeout = 3 * time.Second

// healthcheck gets /readyz of the ingress that listens on cfg.HTTPAddr,
// prints one line to w, and returns errHealthcheckFailed unless the status
// is 200. It serves container health checks in images without a shell.
func healthcheck(ctx context.Context, cfg Config, w io.Writer) error {
	target, err := probeURL(cfg.HTTPAddr, cfg.TLS())
	if err != nil {
		fmt.Fprintf(w, "not ready: %v\n", err)
		return errHealthcheckFailed
	}

	status, reason, err := getReadyz(ctx, target)
	switch {
	case err != nil:
		fmt.Fprintf(w, "not ready: %v\n", err)
		return errHealthcheckFailed
	case status != http.StatusOK:
		fmt.Fprintf(w, "not ready: GET %s returned %d: %s\n", target, status, reason)
		return errHealthcheckFailed
	}

	fmt.Fprintf(w, "ready: GET %s returned 200\n", target)
	return nil
}

// probeURL returns the /readyz URL of a server listening on addr. An
// empty or unspecified host (0.0.0.0, ::) becomes 127.0.0.1, because the
// probe runs beside the server.
func probeURL(addr string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("http-addr %q is not host:port: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}

	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// getReadyz returns the status code and, for an error response, the
// "error" member of its JSON body.
func getReadyz(ctx context.Context, target string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := probeClient().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()

	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
	return resp.StatusCode, body.Error, nil
}

// probeClient skips certificate verification, because the probe connects
// to its own listener by address, which the certificate does not name. It
// ignores proxy settings for the same reason.
func probeClient() *http.Client {
	//nolint:gosec // The probe connects to its own listener.
	tlsConfig := &tls.Config{InsecureSkipVerify: true}
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsConfig},
	}
}
