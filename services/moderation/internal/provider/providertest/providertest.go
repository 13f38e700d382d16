// Package providertest is the programmable core shared by the provider
// mock servers: a queue of next responses or a response function,
// recorded requests and a request counter, behind an httptest server on
// 127.0.0.1 that the test's cleanup closes.
package providertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is one request as the mock received it.
type Request struct {
	Method string
	// Host is the Host header, which net/http keeps out of Header.
	Host   string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Response is the mock's reply to one request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Delay holds the response back this long, or until the client gives
	// up, to simulate a slow or hanging provider.
	Delay time.Duration
}

// Validator checks a request the way the real service does and returns
// the rejection to send, or nil to let the request through.
type Validator func(Request) *Response

// Server is a programmable mock. The zero value is not usable; call Start.
type Server struct {
	srv      *httptest.Server
	validate Validator
	fallback func(Request) Response

	mu       sync.Mutex
	queue    []Response
	handler  func(Request) Response
	requests []Request
}

// Start runs a mock on 127.0.0.1. validate rejects requests the real
// service would reject. fallback replies when no response is queued and
// no handler is set.
func Start(t testing.TB, validate Validator, fallback func(Request) Response) *Server {
	t.Helper()

	s := &Server{validate: validate, fallback: fallback}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL returns the server's base URL, for example http://127.0.0.1:4711.
func (s *Server) URL() string { return s.srv.URL }

// Enqueue adds responses for the next valid requests in order,
// before the handler or the fallback.
func (s *Server) Enqueue(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, rs...)
}

// SetHandler replies to valid requests with f once the queue is empty. A nil
// f restores the fallback.
func (s *Server) SetHandler(f func(Request) Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = f
}

// Requests returns a copy of every request received, valid or not.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns the number of requests received, valid or not.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{
		Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body,
	}

	resp := s.respond(req)
	if resp.Delay > 0 {
		select {
		case <-time.After(resp.Delay):
		case <-r.Context().Done():
			return
		}
	}
	write(w, resp)
}

func (s *Server) respond(req Request) Response {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	if s.validate != nil {
		if rej := s.validate(req); rej != nil {
			return *rej
		}
	}

	s.mu.Lock()
	if len(s.queue) > 0 {
		next := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return next
	}
	handler := s.handler
	s.mu.Unlock()

	if handler != nil {
		return handler(req)
	}
	return s.fallback(req)
}

func write(w http.ResponseWriter, resp Response) {
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader(resp.Body))
}

// JSON returns a response with the given status, a JSON content type and
// body.
func JSON(status int, body string) Response {
	return Response{
		Status: status,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(body),
	}
}

// Hang returns a response that arrives after d, long enough for a client
// timeout to end the call first.
func Hang(d time.Duration) Response {
	r := JSON(http.StatusGatewayTimeout, `{}`)
	r.Delay = d
	return r
}
