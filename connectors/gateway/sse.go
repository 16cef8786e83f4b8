package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// events streams a request's statuses and result as Server-Sent Events:
//
//	id: <cursor>            (see hub.go)
//	event: status | result
//	data: <StatusView or ResultView JSON>
//
// then "event: end" once the request is over (a cart's result, a sync's
// final status), after which the server closes the stream. A reconnect
// with Last-Event-ID (or ?last_event_id=) resumes after that event.
func (s *Server) events(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PathValue("request_id")
	v, ok := s.request(r.Context(), w, id, user)
	if !ok {
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if !s.openStream(user) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many open event streams (%d): close one first", s.cfg.MaxStreamsPerUser), "")
		return
	}
	defer s.closeStream(user)
	sub, err := s.hub.Subscribe(id, last)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "Last-Event-ID")
		return
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flush := func() bool {
		if bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}
	bw.WriteString("retry: 2000\n\n")

	evs, done := sub.Next()
	if len(evs) == 0 && last == "" && v.Status != nil {
		// Nothing bridged yet (a request older than the bridge's lookback,
		// or one the bridge has not read yet): the stored status, without
		// an id so that it does not move the client's cursor.
		b, _ := json.Marshal(v.Status)
		writeEvent(bw, "", "status", b)
	}
	keep := time.NewTicker(s.cfg.KeepAlive)
	defer keep.Stop()
	for {
		for _, e := range evs {
			writeEvent(bw, e.ID, e.Type, e.Data)
		}
		if done {
			b, _ := json.Marshal(map[string]string{"request_id": id})
			writeEvent(bw, "", "end", b)
			flush()
			return
		}
		if !flush() {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-sub.C():
		case <-keep.C:
			bw.WriteString(": keep-alive\n\n")
		}
		evs, done = sub.Next()
	}
}

// openStream counts one more SSE stream of user, unless they have too many.
func (s *Server) openStream(user string) bool {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[user] >= s.cfg.MaxStreamsPerUser {
		return false
	}
	s.streams[user]++
	return true
}

func (s *Server) closeStream(user string) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[user]--; s.streams[user] <= 0 {
		delete(s.streams, user)
	}
}

func writeEvent(w *bufio.Writer, id, typ string, data []byte) {
	if id != "" {
		w.WriteString("id: " + id + "\n")
	}
	w.WriteString("event: " + typ + "\n")
	w.WriteString("data: ")
	w.Write(data)
	w.WriteString("\n\n")
}
