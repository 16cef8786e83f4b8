// Package demodata is the catalogue the demo ships with: about 1000 real
// releases of the Discogs dump of 2020-08-06 (see NOTICE), so that a fresh
// clone without the shared workspace shows real titles, artists and genres.
package demodata

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cratestream/cratestream/connectors/discogs/dump"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

//go:embed discogs_20200806_releases.xml.gz
var releasesGz []byte

// Releases decodes the embedded releases, ordered by primary genre then id:
// the demo's traffic generator gives each collector favourite blocks of the
// catalogue, so that order makes tastes follow real genres.
func Releases() ([]*pb.Release, error) {
	d, err := dump.NewReleases(bytes.NewReader(releasesGz), dump.EventTime(time.Date(2020, 8, 6, 0, 0, 0, 0, time.UTC)),
		dump.FileName("discogs_20200806_releases.xml.gz"))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []*pb.Release
	for {
		r, err := d.NextRelease()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *dump.RecordError
		if errors.As(err, &re) {
			continue // the sample is clean; a bad record is simply not part of the demo
		}
		if err != nil {
			return nil, fmt.Errorf("demo releases: %w", err)
		}
		out = append(out, r)
	}
	genre := func(r *pb.Release) string {
		if len(r.Genres) == 0 {
			return "~"
		}
		return r.Genres[0]
	}
	slices.SortStableFunc(out, func(a, b *pb.Release) int {
		if ga, gb := genre(a), genre(b); ga != gb {
			if ga < gb {
				return -1
			}
			return 1
		}
		return int(a.ReleaseId - b.ReleaseId)
	})
	return out, nil
}

// Genres counts the distinct primary genres of rs.
func Genres(rs []*pb.Release) int {
	seen := map[string]bool{}
	for _, r := range rs {
		if len(r.Genres) > 0 {
			seen[r.Genres[0]] = true
		}
	}
	return max(1, len(seen))
}
