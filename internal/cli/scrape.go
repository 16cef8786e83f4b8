package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cratestream/cratestream/connectors/discogs/marketplace"
)

func scrapeCommand() command {
	c := command{
		name:    "scrape",
		summary: "parse saved Discogs marketplace pages",
		usage: `Usage: cratestream scrape parse [--release ID] FILE.html...

Parses Discogs marketplace release pages (/sell/release/<id>, or the
table.mpitems fragment of one) and prints one JSON object per listing per
line, with the keys

  listing_id, release_id, seller, seller_rating (percent, null for a new
  seller), seller_ratings_count, media_condition, sleeve_condition (Discogs
  grade text, null when absent), price and shipping ({"amount_minor": N,
  "currency": "EUR"}; shipping null when the seller does not ship to you),
  ships_from, available (false: "Unavailable in <your country>").

Money is in integer minor units of the listing's currency. A page whose
markup no longer matches (rows present, fields not found) is an error
naming the row and the field; an empty listings table prints nothing.`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		release := fs.Int64("release", 0, "release id when the page does not show it")
		if len(args) == 0 || args[0] != "parse" {
			if err := parse(fs, args); err != nil {
				return err
			}
			return usagef("want: scrape parse [--release ID] FILE.html...")
		}
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usagef("want: scrape parse [--release ID] FILE.html...")
		}
		for _, path := range fs.Args() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			p, err := marketplace.Parse(f, marketplace.Options{ReleaseID: *release, Now: time.Now(), Source: "file"})
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := marketplace.WriteJSONLines(env.Stdout, p); err != nil {
				return err
			}
		}
		return nil
	}
	return c
}
