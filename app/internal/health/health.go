// Package health answers the load balancer's health check: 200 only while the database answers.
package health

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Checker asks the database for a trivial answer (SELECT 1); the real one is a *sql.DB, the tests use a fake.
type Checker interface {
	Check(ctx context.Context) error
}

// Handler returns 200 "ok" when the check passes within timeout, 503 otherwise. The load balancer takes a server out
// after a few 503s, so a server that lost its database stops getting requests instead of failing them; the release's
// health gate waits for the same answer.
func Handler(checker Checker, timeout time.Duration, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		w.Header().Set("Cache-Control", "no-store")
		if err := checker.Check(ctx); err != nil {
			// The reason goes to the journal, not to whoever asks: it may name hosts and accounts.
			logger.Warn("health check failed", "error", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}
