package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeDatabase struct {
	err   error
	delay time.Duration
}

// Check behaves like a query with a context: it returns the context's error when the answer comes too late.
func (f fakeDatabase) Check(ctx context.Context) error {
	select {
	case <-time.After(f.delay):
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func get(t *testing.T, checker Checker, method string) *httptest.ResponseRecorder {
	t.Helper()
	recorder := httptest.NewRecorder()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	Handler(checker, 50*time.Millisecond, logger).ServeHTTP(recorder, httptest.NewRequest(method, "/health", nil))
	return recorder
}

func TestHealth(t *testing.T) {
	cases := map[string]struct {
		db     fakeDatabase
		method string
		status int
		body   string
	}{
		"database answers":     {fakeDatabase{}, http.MethodGet, 200, "ok\n"},
		"HEAD too":             {fakeDatabase{}, http.MethodHead, 200, "ok\n"},
		"database refuses":     {fakeDatabase{err: errors.New("dial tcp 10.0.1.5:3306: connection refused")}, http.MethodGet, 503, "database unavailable\n"},
		"database too slow":    {fakeDatabase{delay: time.Second}, http.MethodGet, 503, "database unavailable\n"},
		"answers just in time": {fakeDatabase{delay: 5 * time.Millisecond}, http.MethodGet, 200, "ok\n"},
		"not a read":           {fakeDatabase{}, http.MethodPost, 405, "method not allowed\n"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			got := get(t, c.db, c.method)
			if got.Code != c.status || got.Body.String() != c.body {
				t.Fatalf("got %d %q, want %d %q", got.Code, got.Body.String(), c.status, c.body)
			}
			if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
				t.Fatalf("took %s: the check must give up after its timeout", elapsed)
			}
		})
	}
}

func TestTheReasonStaysInTheLog(t *testing.T) {
	got := get(t, fakeDatabase{err: errors.New("Access denied for user 'app'@'10.0.1.7'")}, http.MethodGet)
	if strings.Contains(got.Body.String(), "Access denied") {
		t.Fatalf("the answer leaks the database's message: %q", got.Body.String())
	}
}
