package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Accepted is the 202 body of a queued request.
type Accepted struct {
	RequestID string `json:"request_id"`
	Kind      string `json:"kind"`
	// StatusURL and EventsURL are paths on this gateway.
	StatusURL string        `json:"status_url"`
	EventsURL string        `json:"events_url"`
	Criteria  *CriteriaView `json:"criteria,omitempty"`
}

// RequestView is a request's status and, for a finished cart request, its
// result.
type RequestView struct {
	RequestID string          `json:"request_id"`
	Kind      string          `json:"kind"`
	User      string          `json:"user"`
	Status    *StatusView     `json:"status"`
	Finished  bool            `json:"finished"`
	Result    json.RawMessage `json:"result"`
}

func newRequestID(kind string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return kind + "-" + hex.EncodeToString(b[:])
}

// MeView is the logged-in user.
type MeView struct {
	User string `json:"user"`
	// SyncUnavailable says why syncing is not possible here (the demo);
	// absent when it is.
	SyncUnavailable string `json:"sync_unavailable,omitempty"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, user string) {
	writeJSON(w, http.StatusOK, MeView{User: user, SyncUnavailable: s.cfg.SyncUnavailable})
}

func (s *Server) postCart(w http.ResponseWriter, r *http.Request, user string) {
	var body CartCriteriaJSON
	if err := decodeBody(r, &body); err != nil {
		writeErr(w, err)
		return
	}
	crit, err := body.Criteria()
	if err != nil {
		writeErr(w, err)
		return
	}
	id := newRequestID("cart")
	now := s.cfg.Now().UnixMilli()
	req := &pb.CartRequest{EventId: "cart-request:" + id, EventTimeMs: now, RequestId: id, UserId: user, Criteria: crit}
	st := &pb.RequestStatus{RequestId: id, Kind: pb.RequestKind_REQUEST_KIND_CART, UserId: user, Stage: "queued",
		Message: "waiting for the cart builder"}
	if !s.enqueue(w, r, st, topics.CartRequests().Name, user, req) {
		return
	}
	s.cfg.Logger.Info("cart requested", "request", id, "user", user)
	w.Header().Set("Location", "/api/v1/carts/"+id)
	writeJSON(w, http.StatusAccepted, Accepted{RequestID: id, Kind: "cart", StatusURL: "/api/v1/carts/" + id,
		EventsURL: "/api/v1/requests/" + id + "/events", Criteria: criteriaView(crit)})
}

// SyncBody is the optional body of POST /api/v1/users/{username}/sync.
type SyncBody struct {
	// Force syncs even if the user was synced recently.
	Force bool `json:"force"`
}

func (s *Server) postSync(w http.ResponseWriter, r *http.Request, user string) {
	name := r.PathValue("username")
	if !strings.EqualFold(name, user) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("logged in as %s: cannot sync %s", user, name), "username")
		return
	}
	if s.cfg.SyncUnavailable != "" {
		writeError(w, http.StatusServiceUnavailable, s.cfg.SyncUnavailable, "")
		return
	}
	var body SyncBody
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	if len(strings.TrimSpace(string(raw))) > 0 {
		r.Body = io.NopCloser(strings.NewReader(string(raw)))
		if err := decodeBody(r, &body); err != nil {
			writeErr(w, err)
			return
		}
	}
	id := newRequestID("sync")
	req := &pb.SyncRequest{EventId: "sync-request:" + id, EventTimeMs: s.cfg.Now().UnixMilli(), RequestId: id,
		UserId: user, Username: user, Force: body.Force}
	st := &pb.RequestStatus{RequestId: id, Kind: pb.RequestKind_REQUEST_KIND_SYNC, UserId: user, Stage: "queued",
		Message: "waiting for the importer"}
	if !s.enqueue(w, r, st, topics.SyncRequests().Name, user, req) {
		return
	}
	s.cfg.Logger.Info("sync requested", "request", id, "user", user)
	w.Header().Set("Location", "/api/v1/requests/"+id)
	writeJSON(w, http.StatusAccepted, Accepted{RequestID: id, Kind: "sync", StatusURL: "/api/v1/requests/" + id,
		EventsURL: "/api/v1/requests/" + id + "/events"})
}

// enqueue records the request's first status (Redis, then
// request-status.v1) and produces the request keyed by user. It writes the
// error response and returns false on failure.
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request, st *pb.RequestStatus, topic, user string, req proto.Message) bool {
	if s.cfg.Producer == nil {
		writeError(w, http.StatusServiceUnavailable, "no Kafka producer configured", "")
		return false
	}
	ctx := r.Context()
	st.EventTimeMs = s.cfg.Now().UnixMilli()
	st.EventId = fmt.Sprintf("status:%s:%s:%d:%d", st.RequestId, st.Stage, st.Done, st.EventTimeMs)
	if s.cfg.Status != nil {
		if err := s.cfg.Status.SetStatus(ctx, st); err != nil {
			s.cfg.Logger.Error("request status", "request", st.RequestId, "err", err)
			writeError(w, http.StatusServiceUnavailable, "status store unavailable, try again", "")
			return false
		}
	}
	sb, err := proto.Marshal(st)
	if err != nil {
		writeErr(w, err)
		return false
	}
	rb, err := proto.Marshal(req)
	if err != nil {
		writeErr(w, err)
		return false
	}
	// The status first: it is then the first record of the request's
	// partition of request-status.v1, before any processor's.
	if err := s.cfg.Producer.ProduceSync(ctx, &kgo.Record{Topic: topics.RequestStatus().Name, Key: []byte(st.RequestId), Value: sb}).FirstErr(); err != nil {
		s.cfg.Logger.Warn("request status not produced", "request", st.RequestId, "err", err)
	}
	if err := s.cfg.Producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(user), Value: rb}).FirstErr(); err != nil {
		s.cfg.Logger.Error("request not produced", "request", st.RequestId, "topic", topic, "err", err)
		writeError(w, http.StatusServiceUnavailable, "could not queue the request, try again", "")
		return false
	}
	return true
}

// request gathers what is known of request id: the hub's events and the
// status store. It writes 404/403 and returns false when the user may not
// see it.
func (s *Server) request(ctx context.Context, w http.ResponseWriter, id, user string) (RequestView, bool) {
	if id == "" || len(id) > 128 {
		writeError(w, http.StatusBadRequest, "malformed request id", "request_id")
		return RequestView{}, false
	}
	snap, known := s.hub.Lookup(id)
	st := snap.Status
	if s.cfg.Status != nil {
		rs, ok, err := s.cfg.Status.Status(ctx, id)
		if err != nil {
			s.cfg.Logger.Warn("status store", "request", id, "err", err)
		}
		if ok {
			known = true
			if st == nil || rs.EventTimeMs >= st.EventTimeMs {
				st = rs
			}
		}
	}
	owner := snap.User
	if owner == "" && st != nil {
		owner = st.UserId
	}
	if !known || owner == "" {
		writeError(w, http.StatusNotFound, "no request "+id+" (unknown or expired)", "request_id")
		return RequestView{}, false
	}
	if owner != user {
		writeError(w, http.StatusForbidden, "request "+id+" belongs to another user", "request_id")
		return RequestView{}, false
	}
	kind := snap.Kind
	if kind == pb.RequestKind_REQUEST_KIND_UNSPECIFIED && st != nil {
		kind = st.Kind
	}
	v := RequestView{RequestID: id, Kind: kindName(kind), User: owner, Status: statusView(st), Result: snap.Result}
	v.Finished = snap.Result != nil || (kind != pb.RequestKind_REQUEST_KIND_CART && st != nil && st.Finished)
	return v, true
}

func (s *Server) getCart(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("request_id")
	v, ok := s.request(r.Context(), w, id, user)
	if !ok {
		return
	}
	if v.Kind == "sync" {
		writeError(w, http.StatusNotFound, "request "+id+" is a sync request: see /api/v1/requests/"+id, "request_id")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request, user string) {
	v, ok := s.request(r.Context(), w, r.PathValue("request_id"), user)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, v)
}
