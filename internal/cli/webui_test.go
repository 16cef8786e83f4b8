package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cratestream/cratestream/connectors/gateway"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// chromium returns Debian's chromium: a failure under CI=true when it is
// missing, a skip otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true): scripts/install-deps.sh installs it (apt-get install chromium)")
	}
	t.Skip("skipping the browser test: chromium is not installed (apt-get install chromium, or scripts/install-deps.sh)")
	return ""
}

// The web UI end to end, in headless Chromium: profile, recommend, the real
// scraper against an in-process fake marketplace, the cart builder and the
// gateway serving the UI; log in by the demo link, fill in the cart form,
// watch the progress bar fed by SSE, read the cart cards. Screenshots go to
// the test's artifact directory (go test -artifacts) and, with
// CRATESTREAM_UPDATE_SCREENSHOT=1, to docs/screenshot.png.
func TestWebUIEndToEnd(t *testing.T) {
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := newCartEnv(ctx, t)

	// The demo user wants the eight releases with the most listings.
	const user = "user1"
	busiest := e.busiest(8)
	for _, in := range wantAdds(user, busiest) {
		e.produce(topics.Interactions().Name, user, in)
	}
	// The catalogue (releases.v1), which the gateway shows titles from.
	var releases []*pb.Release
	names := map[string]string{} // release URL -> "Artist – Title (year)"
	for _, id := range e.fake.Releases() {
		n := strconv.FormatInt(id, 10)
		releases = append(releases, &pb.Release{ReleaseId: id, Title: "Title " + n, Year: int32(1960 + id%40),
			Artists: []*pb.ArtistCredit{{Name: "Artist " + n + " (2)", Join: "&"}, {Name: "Friend"}}})
		names["https://www.discogs.com/release/"+n] = "Artist " + n + " & Friend – Title " + n + " (" + strconv.FormatInt(1960+id%40, 10) + ")"
	}
	if err := produceReleases(ctx, e.cl, releases); err != nil {
		t.Fatal(err)
	}

	d := e.deps(ctx)
	services := []string{"profile", "recommend", "scraper", "cartbuilder", "gateway"}
	// With ClickHouse installed, the sink feeds the dashboard's market charts.
	withCH := false
	if _, ok := embedded.LookPath("clickhouse-server"); ok {
		d.set.clickhouse.addr, withCH = testutil.ClickHouse(t), true
		services = append(services, "clickhouse-sink")
	}
	type listening struct{ base, link string }
	ready := make(chan listening, 1)
	d.gatewayHook = func(rc *gateway.RunConfig) {
		rc.Listen, rc.Gateway.DemoUser, rc.Gateway.SyncUnavailable = "127.0.0.1:0", user, demoSyncUnavailable
		rc.OnListen = func(addr string, s *gateway.Server) {
			link, err := s.DemoLink()
			if err != nil {
				t.Error(err)
			}
			ready <- listening{"http://" + addr, link}
		}
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- startServices(sctx, d, services) }()
	defer func() { stop(); <-done; d.close() }()
	var gw listening
	select {
	case gw = <-ready:
	case err := <-done:
		t.Fatalf("services stopped: %v", err)
	case <-ctx.Done():
		t.Fatal("the gateway never listened")
	}

	// A cart request needs the user's candidates: wait for them.
	e.waitCandidates(ctx, user, 8)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	shot := func(name string) []byte {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		return png
	}

	// Logged out, the page offers the logins.
	do("open the UI", chromedp.Navigate(gw.base+"/"), chromedp.WaitVisible("#login-discogs"))
	// The demo link logs in and lands on the carts page.
	do("demo login", chromedp.Navigate(gw.base+gw.link), chromedp.WaitVisible("#cart-form"))
	if got := eval(`document.querySelector("#user-name").textContent`); got != user {
		t.Fatalf("logged in as %q, want %s", got, user)
	}
	// The demo cannot sync (no Discogs API): the button is off and says why.
	if got := eval(`document.querySelector("#sync").disabled + "|" + document.querySelector("#sync-note").innerText`); got != "true|Syncing is not available here: "+demoSyncUnavailable+"." {
		t.Errorf("sync button and note: %q", got)
	}

	// Every criterion, then submit.
	do("fill in the form",
		chromedp.SetValue(`input[name=budget_amount]`, "500"),
		chromedp.SetValue(`select[name=budget_currency]`, "EUR"),
		chromedp.SetValue(`select[name=min_media_cond]`, "G"),
		chromedp.SetValue(`input[name=min_seller_rating]`, "0"),
		chromedp.SetValue(`input[name=min_qty]`, "1"),
		chromedp.SetValue(`input[name=wantlist_ratio]`, "1"),
		chromedp.SetValue(`input[name=top_n]`, "5"),
		chromedp.SetValue(`select[name=objective]`, "seed"),
		chromedp.Click("#cart-submit"),
	)
	// Watch the bar: sample it until a cart card shows.
	var seen []string
	deadline := time.Now().Add(45 * time.Second)
	for {
		v := eval(`(document.querySelector("#cart-progress .progress").dataset.value || "") + "|" + document.querySelectorAll("#carts .cart").length + "|" + document.querySelector("#cart-progress .progress-text").textContent`)
		if len(seen) == 0 || seen[len(seen)-1] != v {
			seen = append(seen, v)
		}
		if !strings.HasPrefix(strings.SplitN(v, "|", 3)[1], "0") {
			break
		}
		if time.Now().After(deadline) {
			shot("timeout.png")
			t.Fatalf("no cart card after 45s; progress seen: %q", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("progress bar states: %q", seen)
	// The page's own record of every value the bar took: it moved from
	// queued up to 100, never back.
	shown := eval(`JSON.stringify(window.cratestreamProgress.cart)`)
	var vals []int
	for _, f := range strings.FieldsFunc(strings.Trim(shown, "[]"), func(r rune) bool { return r == ',' }) {
		n, _ := strconv.Atoi(f)
		vals = append(vals, n)
	}
	if len(vals) < 2 || vals[0] >= 100 || vals[len(vals)-1] != 100 {
		t.Fatalf("progress values %v: want a move from below 100 to 100", vals)
	}
	for i := 1; i < len(vals); i++ {
		if vals[i] < vals[i-1] {
			t.Fatalf("progress went back: %v", vals)
		}
	}

	// The cards: records with release links, grades, seller and rating,
	// subtotal, shipping, total and score.
	card := eval(`document.querySelector("#carts .cart").innerText`)
	for _, want := range []string{"Cart 1", "Subtotal", "Shipping", "Score", "EUR", "%"} {
		if !strings.Contains(card, want) {
			t.Errorf("first cart card lacks %q:\n%s", want, card)
		}
	}
	if n := eval(`String(document.querySelectorAll('#carts .cart a[href^="https://www.discogs.com/release/"]').length)`); n == "0" {
		t.Errorf("no release links in the cards")
	}
	// Each release link reads "Artist – Title (year)" from releases.v1.
	links := eval(`JSON.stringify(Array.from(document.querySelectorAll("#carts .cart a.release")).map((a) => [a.href, a.textContent]))`)
	var pairs [][2]string
	if err := json.Unmarshal([]byte(links), &pairs); err != nil || len(pairs) == 0 {
		t.Fatalf("release links %s: %v", links, err)
	}
	for _, p := range pairs {
		if names[p[0]] != p[1] {
			t.Errorf("release link %s reads %q, want %q", p[0], p[1], names[p[0]])
		}
	}
	do("let the bar's transition end", chromedp.Sleep(500*time.Millisecond))
	png := shot("carts.png")
	if os.Getenv("CRATESTREAM_UPDATE_SCREENSHOT") == "1" {
		root, err := testutil.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "docs", "screenshot.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The recommendations and dashboard pages render: the pipeline chart
	// fills from the process's metrics, the market charts from ClickHouse
	// (or say there is none).
	do("recommendations", chromedp.Navigate(gw.base+"/#recommendations"), chromedp.WaitVisible("#recs li"))
	do("dashboard", chromedp.Navigate(gw.base+"/#dashboard"), chromedp.WaitVisible("#pipeline-table tr"))
	waitFor := func(what, expr string, timeout time.Duration, reload bool) {
		t.Helper()
		for end := time.Now().Add(timeout); eval(expr) != "true"; {
			if time.Now().After(end) {
				shot("timeout.png")
				t.Fatalf("%s: %s is not true after %s", what, expr, timeout)
			}
			if reload {
				do("reload", chromedp.Evaluate[chromedp.Void](`location.reload()`), chromedp.WaitVisible("#pipeline-table tr"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if withCH {
		waitFor("market charts", `String(document.querySelectorAll("#chart-grades svg rect").length > 0 && document.querySelectorAll("#chart-countries svg rect").length > 0)`, 20*time.Second, true)
		do("price distribution", chromedp.SetValue(`#price-form input[name=release]`, strconv.FormatInt(busiest[0], 10)), chromedp.Click(`#price-form button`))
		waitFor("price box plot", `String(document.querySelectorAll("#chart-prices svg rect").length > 0)`, 10*time.Second, false)
	} else if got := eval(`document.querySelector("#chart-grades").textContent`); !strings.Contains(got, "ClickHouse") {
		t.Errorf("market chart without ClickHouse says %q", got)
	}
	waitFor("throughput chart", `String(document.querySelectorAll("#chart-throughput polyline").length > 0)`, 10*time.Second, false)
	shot("dashboard.png")
}
