package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/cratestream/cratestream/internal/cartopt"
	"github.com/cratestream/cratestream/internal/testutil"
)

// TestMain lets a test exec this test binary as `cratestream` (bench cart
// times whole processes of its own executable; the dev kafka test kills and
// restarts one). It stops on SIGINT/SIGTERM like cmd/cratestream.
func TestMain(m *testing.M) {
	if os.Getenv("CRATESTREAM_TEST_AS_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

const tinyCart = `{"format":"cart-input/1","criteria":{"budget":30,"currency":"EUR","min_media_cond":"Very Good Plus (VG+)",
"seller_rating":98,"min_qty":2,"top_n":5},
"rates_per_eur":{"EUR":{"rate":1.0},"USD":{"rate":1.25}},
"candidates":[{"release_id":1,"score":1.0},{"release_id":2,"score":0.5},{"release_id":3,"score":0.25}],
"listings":[
 {"listing_id":11,"release_id":1,"seller_id":7,"seller_name":"a","seller_rating":99,"country":"Germany","price":10,"currency":"EUR","shipping":5,"media_cond":"Mint (M)","sleeve_cond":"Generic"},
 {"listing_id":12,"release_id":2,"seller_id":7,"seller_name":"a","seller_rating":99,"country":"Germany","price":12.50,"currency":"USD","shipping":3,"media_cond":"Near Mint (NM or M-)","sleeve_cond":"Generic"},
 {"listing_id":13,"release_id":3,"seller_id":7,"seller_name":"a","seller_rating":99,"country":"Germany","price":9,"currency":"EUR","media_cond":"Very Good Plus (VG+)","sleeve_cond":"Generic"},
 {"listing_id":21,"release_id":1,"seller_id":8,"seller_name":"b","seller_rating":97,"country":"Germany","price":1,"currency":"EUR","media_cond":"Mint (M)","sleeve_cond":"Generic"},
 {"listing_id":31,"release_id":2,"seller_id":9,"seller_name":"c","seller_rating":100,"country":"France","price":2,"currency":"EUR","media_cond":"Good (G)","sleeve_cond":"Generic"}
]}`

type cartOut struct {
	Carts []struct {
		Rank       int     `json:"rank"`
		SellerID   int64   `json:"seller_id"`
		ListingIDs []int64 `json:"listing_ids"`
		Quantity   int     `json:"quantity"`
		Subtotal   float64 `json:"subtotal"`
		Shipping   float64 `json:"shipping"`
		Total      float64 `json:"total"`
		Score      float64 `json:"score"`
	} `json:"carts"`
	Objective string `json:"objective"`
	Counts    struct {
		ListingsIn   int            `json:"listings_in"`
		ListingsKept int            `json:"listings_kept"`
		Rejected     map[string]int `json:"rejected"`
	} `json:"counts"`
}

func TestCartSolve(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "tiny.json")
	if err := os.WriteFile(in, []byte(tinyCart), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, "cart", "solve", "--input", in)
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	var got cartOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	// Seller 7: all three cost 10 + 10 (12.50 USD) + 9 = 29 plus the
	// largest parcel, 5: 34 > 30. The best pair is 11+12 (10 + 10 + 5 = 25,
	// score 2 × 1.5 = 3) over 11+13 (24, 2 × 1.25). Seller 8 is below the
	// rating, seller 9 below the grade.
	if len(got.Carts) != 1 || got.Objective != "seed" {
		t.Fatalf("carts: %s", out)
	}
	c := got.Carts[0]
	if c.Rank != 1 || c.SellerID != 7 || len(c.ListingIDs) != 2 || c.ListingIDs[0] != 11 || c.ListingIDs[1] != 12 ||
		c.Quantity != 2 || c.Subtotal != 20 || c.Shipping != 5 || c.Total != 25 || c.Score != 3 {
		t.Fatalf("cart: %+v", c)
	}
	if got.Counts.ListingsIn != 5 || got.Counts.ListingsKept != 3 || got.Counts.Rejected["seller_rating"] != 1 || got.Counts.Rejected["grade"] != 1 {
		t.Fatalf("counts: %+v", got.Counts)
	}

	// sum: one record scores more alone than the seed objective allows.
	out, _, code = run(t, "cart", "solve", "--input", in, "--objective", "sum")
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Objective != "sum" || len(got.Carts) != 1 {
		t.Fatalf("sum: %d %s", code, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cart", "solve"}, 2, "--input"},
		{[]string{"cart", "solve", "--input", in, "--objective", "max"}, 2, "seed or sum"},
		{[]string{"cart", "optimise", "--input", in}, 2, "cart solve"},
		{[]string{"cart", "solve", "--input", filepath.Join(dir, "none.json")}, 1, "no such file"},
		{[]string{"cart", "solve", "--input", writeFile(t, dir, "bad.json", strings.Replace(tinyCart, `"currency":"EUR","min_media_cond"`, `"currency":"XXX","min_media_cond"`, 1))}, 1, "XXX"},
		{[]string{"cart", "solve", "--input", writeFile(t, dir, "trunc.json", tinyCart[:200])}, 1, "trunc.json"},
	} {
		_, errs, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The command prints what the optimizer computes, on the shared problems
// in both modes.
func TestCartSolveSharedFiles(t *testing.T) {
	dir := testutil.SharedDir(t, "carts")
	for _, tc := range [][]string{{"small.json"}, {"shipping.json", "--multi-seller", "--objective", "sum"}} {
		path := filepath.Join(dir, tc[0])
		out, errs, code := run(t, append([]string{"cart", "solve", "--input", path}, tc[1:]...)...)
		if code != 0 {
			t.Fatalf("%v: %d %s", tc, code, errs)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		o := cartopt.Options{}
		if len(tc) > 1 {
			o = cartopt.Options{MultiSeller: true, Objective: "sum"}
		}
		res, err := cartopt.SolveJSON(f, o)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := res.WriteJSON(&want); err != nil {
			t.Fatal(err)
		}
		elapsed := regexp.MustCompile(`"elapsed_ms": ?[0-9.]+`)
		if a, b := elapsed.ReplaceAllString(out, ""), elapsed.ReplaceAllString(want.String(), ""); a != b {
			t.Fatalf("%v: command output differs from the optimizer's:\n%s\nwant\n%s", tc, a, b)
		}
	}
}

func TestBenchCart(t *testing.T) {
	shared := testutil.SharedDir(t, "carts")
	dir := t.TempDir()
	// The benchmark solves medium, shipping and large: give it small
	// problems under those names to keep the test quick.
	small, err := os.ReadFile(filepath.Join(shared, "small.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"medium", "shipping", "large"} {
		writeFile(t, dir, n+".json", string(small))
	}
	t.Setenv("CRATESTREAM_TEST_AS_MAIN", "1") // the processes it starts run Main
	out, errs, code := run(t, "bench", "--quiet", "--reps", "2", "--carts-dir", dir, "cart")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	line := regexp.MustCompile(`^bench=cart file=(medium|shipping|large) multi_seller=(true|false) listings=100 kept=\d+ carts=\d+ solve_p50_ms=[0-9.]+ solve_min_ms=[0-9.]+ process_p50_ms=[0-9.]+ process_min_ms=[0-9.]+ start_p50_ms=[0-9.]+$`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("line %q", l)
		}
	}
}
