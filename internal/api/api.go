// Package api serves the MSK REST API (restJson1) over HTTP: it routes on the
// escaped path, authenticates every request with SigV4, decodes and
// validates the request, calls the store, and writes MSK's response shapes.
// It is the one place where errors become HTTP status codes and MSK
// exception names (see writeError).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/fjord-io/fjord/internal/sigv4"
	"github.com/fjord-io/fjord/internal/store"
)

// Config configures a Handler.
type Config struct {
	// Partition, Region and Account name this control plane in ARNs.
	Partition string
	Region    string
	Account   string
	// Store holds the state the API reads and writes.
	Store store.Store
	// Verifier authenticates requests. It is required.
	Verifier *sigv4.Verifier
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Handler is the MSK API as an http.Handler. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	routes []route
}

// New returns a Handler serving cfg.
func New(cfg Config) *Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	h := &Handler{cfg: cfg}
	h.routes = h.table()
	return h
}

// request is one decoded API call as a handler sees it.
type request struct {
	op     string
	params map[string]string // path labels, decoded
	http   *http.Request
}

// noContent is returned by handlers whose operation answers 204 with no body.
type noContent struct{}

// ServeHTTP authenticates, routes and answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	w.Header().Set("X-Amzn-RequestId", reqID)
	ctx := r.Context()
	if _, err := h.cfg.Verifier.Verify(ctx, r); err != nil {
		h.writeError(w, r, reqID, "", err)
		return
	}
	rt, params, err := h.match(r)
	if err != nil {
		h.writeError(w, r, reqID, "", err)
		return
	}
	out, err := rt.handle(ctx, &request{op: rt.op, params: params, http: r})
	if err != nil {
		h.writeError(w, r, reqID, rt.op, err)
		return
	}
	if _, ok := out.(noContent); ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) now() time.Time { return h.cfg.Now().UTC() }

type handlerFunc func(ctx context.Context, req *request) (any, error)
