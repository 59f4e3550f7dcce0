package app

import (
	"net/http"
)

// healthHandler serves the probes an orchestrator asks:
//
//   - /healthz answers 200 while the process is up and not stopping
//     (liveness: a failure means restart it);
//   - /readyz answers 200 once Run has started every service and until it
//     begins to stop (readiness: a failure means send no clients here).
//   - /metrics serves every service's metrics (internal/metrics).
func (a *App) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if a.stopping.Load() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() || a.c2s.Draining() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}
