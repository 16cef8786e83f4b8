// Package web is cratestream's web UI: one page of plain HTML, CSS and
// JavaScript (no build step) embedded in the binary, served by the gateway
// for every path outside its API (gateway.Config.UI).
//
// The page talks only to the gateway's JSON API (schemas/openapi.yaml): it
// logs in through /auth/login (Discogs) or a demo link (/auth/demo), syncs
// the user's collection, asks for carts and follows them live over
// Server-Sent Events, lists recommendations and similar releases, and draws
// the dashboard's charts as inline SVG.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Handler serves the UI: "/" is the page, the rest its assets. Views are
// chosen by the URL fragment (#carts, #recommendations, #dashboard), so any
// other path is a 404.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		if r.URL.Path == "/index.html" {
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
			return
		}
		if r.URL.Path != "/" && strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		// The assets change with the binary: revalidate every time.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
