package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
)

func queryCommand() command {
	c := command{
		name:    "query",
		summary: "run a dashboard query against ClickHouse",
		usage: `Usage: cratestream query NAME [flags] [--json]

Queries (all parameterised; values are bound, never spliced into SQL):
  market-overview                      live listings by media grade, ships-from country, currency
  price-distribution --release ID      EUR price quantiles (10/25/50/75/90%), count, min, max
  cheapest --releases IDS [--min-grade G] [--min-rating R] [--ships-from C,...] [--max-price EUR] [--limit N]
                                       the cheapest live listings of those releases
  sellers-for-wantlist --user U [--limit N]
                                       sellers listing the most of U's wanted releases
  rec-quality [--since 168h]           online recommendation quality: releases recommended and then
                                       wanted or collected, by model version and cascade level

Output is a table, or with --json one JSON document (the result structs of
connectors/clickhouse: money in integer minor units, grades 1=M .. 8=P).`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fs := newFlags(env, c)
			if err := parse(fs, args); err != nil {
				return err
			}
			return usagef("name a query: market-overview, price-distribution, cheapest, sellers-for-wantlist, rec-quality")
		}
		name := args[0]
		fs := newFlags(env, c)
		var cf endpointFlags
		cf.register(fs, env, "clickhouse", "ClickHouse native host:port")
		asJSON := fs.Bool("json", false, "print JSON")
		release := fs.Int64("release", 0, "release id (price-distribution)")
		releases := fs.String("releases", "", "comma-separated release ids (cheapest)")
		minGrade := fs.String("min-grade", "", "worst acceptable media grade, e.g. VG+ (cheapest)")
		minRating := fs.Float64("min-rating", 0, "lowest seller rating in percent (cheapest)")
		shipsFrom := fs.String("ships-from", "", "comma-separated ships-from countries (cheapest)")
		maxPrice := fs.String("max-price", "", "highest price in EUR, e.g. 25.00 (cheapest)")
		user := fs.String("user", "", "user id (sellers-for-wantlist)")
		limit := fs.Int("limit", 0, "rows (default 100)")
		since := fs.Duration("since", 0, "only outcomes newer than this (rec-quality; 0: all)")
		timeout := fs.Duration("timeout", 30*time.Second, "query time limit (also sent as max_execution_time)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if cf.addr == "" {
			return usagef("no ClickHouse: pass --clickhouse host:port or set CRATESTREAM_CLICKHOUSE")
		}
		co, err := cf.clickhouseOptions()
		if err != nil {
			return err
		}
		conn, err := chsink.Open(ctx, co)
		if err != nil {
			return err
		}
		defer conn.Close()
		q := chsink.NewQueries(conn, chsink.QueryOptions{Timeout: *timeout})
		var result any
		switch name {
		case "market-overview":
			result, err = q.MarketOverview(ctx)
		case "price-distribution":
			if *release <= 0 {
				return usagef("price-distribution needs --release ID")
			}
			result, err = q.PriceDistribution(ctx, *release)
		case "cheapest":
			cq := chsink.CheapestQuery{MinSellerRating: *minRating, Limit: *limit}
			for _, s := range splitList(*releases) {
				id, perr := strconv.ParseInt(s, 10, 64)
				if perr != nil {
					return usagef("--releases: %q is not a release id", s)
				}
				cq.Releases = append(cq.Releases, id)
			}
			if len(cq.Releases) == 0 {
				return usagef("cheapest needs --releases ID,ID,...")
			}
			if *minGrade != "" {
				g, gerr := grade.ParseMedia(*minGrade)
				if gerr != nil {
					return usagef("--min-grade: %v", gerr)
				}
				cq.MinGrade = uint8(g)
			}
			cq.ShipsFrom = splitList(*shipsFrom)
			if *maxPrice != "" {
				cq.MaxPriceEURMinor, err = money.ParseAmount(*maxPrice, "EUR")
				if err != nil {
					return usagef("--max-price: %v", err)
				}
			}
			result, err = q.Cheapest(ctx, cq)
		case "sellers-for-wantlist":
			if *user == "" {
				return usagef("sellers-for-wantlist needs --user U")
			}
			result, err = q.SellersForWantlist(ctx, *user, *limit)
		case "rec-quality":
			from := time.Time{}
			if *since > 0 {
				from = time.Now().Add(-*since)
			}
			result, err = q.RecQuality(ctx, from)
		default:
			return usagef("unknown query %q", name)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(result)
		}
		return printQuery(env, result)
	}
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func eur(minor int64) string { return money.Decimal(minor, "EUR") }

// printQuery writes a result as a human table.
func printQuery(env *Env, result any) error {
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	switch r := result.(type) {
	case *chsink.MarketOverview:
		fmt.Fprintf(tw, "live listings\t%d\n\nMEDIA GRADE\tLISTINGS\n", r.Listings)
		for _, g := range r.ByMediaGrade {
			name := g.Name
			if name == "" {
				name = "(not given)"
			}
			fmt.Fprintf(tw, "%s\t%d\n", name, g.Listings)
		}
		fmt.Fprintln(tw, "\nSHIPS FROM\tLISTINGS")
		for _, k := range r.ByShipsFrom {
			fmt.Fprintf(tw, "%s\t%d\n", k.Key, k.Listings)
		}
		fmt.Fprintln(tw, "\nCURRENCY\tLISTINGS")
		for _, k := range r.ByCurrency {
			fmt.Fprintf(tw, "%s\t%d\n", k.Key, k.Listings)
		}
	case *chsink.PriceDistribution:
		fmt.Fprintf(tw, "release\t%d\nlistings\t%d\n", r.ReleaseID, r.Listings)
		if r.Listings > 0 {
			fmt.Fprintf(tw, "min\t%s EUR\np10\t%s EUR\np25\t%s EUR\nmedian\t%s EUR\np75\t%s EUR\np90\t%s EUR\nmax\t%s EUR\n",
				eur(r.MinEUR), eur(r.P10EUR), eur(r.P25EUR), eur(r.MedianEUR), eur(r.P75EUR), eur(r.P90EUR), eur(r.MaxEUR))
		}
	case []chsink.Listing:
		fmt.Fprintln(tw, "LISTING\tRELEASE\tSELLER\tRATING\tMEDIA\tPRICE\tEUR\tSHIPS FROM")
		for _, l := range r {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f%%\t%s\t%s %s\t%s\t%s\n", l.ListingID, l.ReleaseID, l.Seller, l.SellerRating,
				l.Media, money.Decimal(l.PriceMinor, l.Currency), l.Currency, eur(l.PriceEURMinor), l.ShipsFrom)
		}
	case []chsink.WantlistSeller:
		fmt.Fprintln(tw, "SELLER\tWANTED RELEASES\tCHEAPEST TOTAL (EUR, no shipping)")
		for _, s := range r {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Seller, s.Releases, eur(s.MinTotalEURMinor))
		}
	case []chsink.RecQuality:
		fmt.Fprintln(tw, "MODEL VERSION\tLEVEL\tRECOMMENDED\tADOPTED\tADOPTION")
		for _, r := range r {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f%%\n", r.ModelVersion, r.Level, r.Recommended, r.Adopted, 100*r.AdoptionRate)
		}
	default:
		return json.NewEncoder(env.Stdout).Encode(result)
	}
	return tw.Flush()
}
