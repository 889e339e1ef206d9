package web

import (
	"net/http"
	"time"
)

// RateLimiter allows at most Limit requests per client in each window.
type RateLimiter struct {
	Limit  int
	Window time.Duration
	seen   map[string][]time.Time
}

// Allow reports whether a request from this client address may proceed now.
func (r *RateLimiter) Allow(client string, now time.Time) bool {
	kept := r.seen[client][:0]
	for _, t := range r.seen[client] {
		if now.Sub(t) < r.Window {
			kept = append(kept, t)
		}
	}
	if len(kept) >= r.Limit {
		r.seen[client] = kept
		return false
	}
	r.seen[client] = append(kept, now)
	return true
}

// Health answers load balancer health checks.
func Health(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}
