// Package ops serves what operators and other instances need from a running
// cratestream process: Prometheus metrics, liveness and readiness, and key
// lookups into the stores of its processors.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cratestream/cratestream/internal/stream"
)

// Check is one named health or readiness condition.
type Check struct {
	Name string
	// Fn returns nil when healthy (or ready).
	Fn func() error
}

// Server is the operations HTTP server.
type Server struct {
	Registry *prometheus.Registry
	mux      *http.ServeMux
	live     []Check
	ready    []Check
	srv      *http.Server
	ln       net.Listener
}

// NewServer returns a server with a fresh registry that also carries the Go
// runtime and process collectors.
func NewServer() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{Registry: reg, mux: http.NewServeMux()}
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { s.report(w, s.live) })
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { s.report(w, s.ready) })
	return s
}

// Mux is where other handlers (the gateway, the web UI) are mounted.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// AddLiveness adds a condition of /healthz.
func (s *Server) AddLiveness(c Check) { s.live = append(s.live, c) }

// AddReadiness adds a condition of /readyz.
func (s *Server) AddReadiness(c Check) { s.ready = append(s.ready, c) }

// AddRunner wires a processor instance: its health, readiness and store
// lookups under stream.StorePath<processor>/.
func (s *Server) AddRunner(r *stream.Runner) {
	name := r.Processor().Name()
	s.AddLiveness(Check{Name: name, Fn: r.Healthy})
	s.AddReadiness(Check{Name: name, Fn: r.Readiness})
	s.mux.Handle(stream.StorePath+name+"/", r)
}

func (s *Server) report(w http.ResponseWriter, checks []Check) {
	status := http.StatusOK
	out := make(map[string]string, len(checks))
	for _, c := range checks {
		if err := c.Fn(); err != nil {
			status = http.StatusServiceUnavailable
			out[c.Name] = err.Error()
		} else {
			out[c.Name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

// Listen binds addr (":0" picks a free port) and returns the bound address.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("ops server: %w", err)
	}
	s.ln = ln
	return ln.Addr().String(), nil
}

// Serve serves on the listener until ctx is canceled.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("ops server: Listen first")
	}
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	}()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// AdvertiseAddr turns a bound address into one other instances can dial:
// an unspecified host (":8080", "[::]:8080") becomes host.
func AdvertiseAddr(bound, host string) string {
	h, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if h == "" || h == "::" || h == "0.0.0.0" || strings.HasPrefix(h, "[") {
		h = host
	}
	return net.JoinHostPort(h, port)
}
