package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"CRATESTREAM_PUBLIC_URL":     "https://crates.example",
		"CRATESTREAM_SESSION_SECRET": strings.Repeat("s", 32),
		"CRATESTREAM_DEMO_USER":      "demo",
		"CRATESTREAM_LOOKUP_ADDRS":   "a:1, b:2,",
		"DISCOGS_CONSUMER_KEY":       "ck",
		"DISCOGS_CONSUMER_SECRET":    "cs",
	}
	rc, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	g := rc.Gateway
	if rc.Listen != ":8080" || g.PublicURL != "https://crates.example" || !g.SecureCookies || g.DemoUser != "demo" ||
		len(rc.LookupAddrs) != 2 || g.Discogs.ConsumerKey != "ck" || g.Discogs.ConsumerSecret != "cs" || len(g.SessionSecret) != 32 {
		t.Fatalf("config %+v", rc)
	}
	if rc.NoReleaseTitles {
		t.Fatal("release titles are on by default")
	}
	env["CRATESTREAM_GATEWAY_TITLES"] = "off"
	if rc, err := ConfigFromEnv(func(k string) string { return env[k] }); err != nil || !rc.NoReleaseTitles {
		t.Fatalf("titles off: %v %v", rc.NoReleaseTitles, err)
	}
	env["CRATESTREAM_GATEWAY_TITLES"] = "maybe"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("CRATESTREAM_GATEWAY_TITLES=maybe accepted")
	}
	env["CRATESTREAM_GATEWAY_TITLES"] = ""
	env["CRATESTREAM_SESSION_SECRET"] = "short"
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	links := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{Listen: "127.0.0.1:0", Gateway: Config{DemoUser: "demo",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			OnListen: func(addr string, s *Server) {
				l, _ := s.DemoLink()
				links <- l
				addrc <- addr
			}})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+<-links, nil)
	req.Header.Set("Accept", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("demo link: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if got := loopbackIfUnspecified("[::]:80"); got != "127.0.0.1:80" {
		t.Fatal(got)
	}
}
