// Package grade parses, prints and compares Discogs media and sleeve
// grades. Grades are ordered best first: Mint, Near Mint, VG+, VG, G+, G,
// Fair, Poor; sleeves also have Generic, Not Graded and No Cover, which are
// not on the quality scale.
package grade

import (
	"fmt"
	"strings"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

var mediaNames = map[pb.MediaGrade]string{
	pb.MediaGrade_MEDIA_GRADE_MINT:           "Mint (M)",
	pb.MediaGrade_MEDIA_GRADE_NEAR_MINT:      "Near Mint (NM or M-)",
	pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS: "Very Good Plus (VG+)",
	pb.MediaGrade_MEDIA_GRADE_VERY_GOOD:      "Very Good (VG)",
	pb.MediaGrade_MEDIA_GRADE_GOOD_PLUS:      "Good Plus (G+)",
	pb.MediaGrade_MEDIA_GRADE_GOOD:           "Good (G)",
	pb.MediaGrade_MEDIA_GRADE_FAIR:           "Fair (F)",
	pb.MediaGrade_MEDIA_GRADE_POOR:           "Poor (P)",
}

var mediaShort = map[pb.MediaGrade]string{
	pb.MediaGrade_MEDIA_GRADE_MINT:           "M",
	pb.MediaGrade_MEDIA_GRADE_NEAR_MINT:      "NM",
	pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS: "VG+",
	pb.MediaGrade_MEDIA_GRADE_VERY_GOOD:      "VG",
	pb.MediaGrade_MEDIA_GRADE_GOOD_PLUS:      "G+",
	pb.MediaGrade_MEDIA_GRADE_GOOD:           "G",
	pb.MediaGrade_MEDIA_GRADE_FAIR:           "F",
	pb.MediaGrade_MEDIA_GRADE_POOR:           "P",
}

// lookup maps every accepted spelling, upper-cased, to a media grade.
var lookup = func() map[string]pb.MediaGrade {
	m := map[string]pb.MediaGrade{"M-": pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, "NM OR M-": pb.MediaGrade_MEDIA_GRADE_NEAR_MINT,
		"NEAR MINT": pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, "MINT": pb.MediaGrade_MEDIA_GRADE_MINT,
		"VERY GOOD PLUS": pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS, "VERY GOOD": pb.MediaGrade_MEDIA_GRADE_VERY_GOOD,
		"GOOD PLUS": pb.MediaGrade_MEDIA_GRADE_GOOD_PLUS, "GOOD": pb.MediaGrade_MEDIA_GRADE_GOOD,
		"FAIR": pb.MediaGrade_MEDIA_GRADE_FAIR, "POOR": pb.MediaGrade_MEDIA_GRADE_POOR}
	for g, n := range mediaNames {
		m[strings.ToUpper(n)] = g
	}
	for g, n := range mediaShort {
		m[n] = g
	}
	return m
}()

func normalize(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), " "))
}

// ParseMedia parses a media grade: the Discogs text ("Very Good Plus
// (VG+)"), its abbreviation ("VG+", "NM", "M-") or its name ("Near Mint").
func ParseMedia(s string) (pb.MediaGrade, error) {
	if g, ok := lookup[normalize(s)]; ok {
		return g, nil
	}
	return pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED, fmt.Errorf("unknown media grade %q", s)
}

// ParseSleeve parses a sleeve grade: a media grade spelling or Generic,
// Not Graded, No Cover.
func ParseSleeve(s string) (pb.SleeveGrade, error) {
	switch normalize(s) {
	case "GENERIC":
		return pb.SleeveGrade_SLEEVE_GRADE_GENERIC, nil
	case "NOT GRADED":
		return pb.SleeveGrade_SLEEVE_GRADE_NOT_GRADED, nil
	case "NO COVER":
		return pb.SleeveGrade_SLEEVE_GRADE_NO_COVER, nil
	}
	g, err := ParseMedia(s)
	if err != nil {
		return pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED, fmt.Errorf("unknown sleeve grade %q", s)
	}
	// The first eight sleeve grades mirror the media grades.
	return pb.SleeveGrade(g), nil
}

// Media returns the Discogs text of g ("Very Good Plus (VG+)"), or "" for
// an unspecified grade.
func Media(g pb.MediaGrade) string { return mediaNames[g] }

// Short returns the abbreviation of g ("VG+").
func Short(g pb.MediaGrade) string { return mediaShort[g] }

// Sleeve returns the Discogs text of a sleeve grade.
func Sleeve(g pb.SleeveGrade) string {
	switch g {
	case pb.SleeveGrade_SLEEVE_GRADE_GENERIC:
		return "Generic"
	case pb.SleeveGrade_SLEEVE_GRADE_NOT_GRADED:
		return "Not Graded"
	case pb.SleeveGrade_SLEEVE_GRADE_NO_COVER:
		return "No Cover"
	}
	return mediaNames[pb.MediaGrade(g)]
}

// AtLeast reports whether media grade g is min or better. An unspecified
// grade is never at least anything.
func AtLeast(g, min pb.MediaGrade) bool {
	if g == pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || g > pb.MediaGrade_MEDIA_GRADE_POOR {
		return false
	}
	return min == pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || g <= min
}

// All returns the media grades best first.
func All() []pb.MediaGrade {
	return []pb.MediaGrade{
		pb.MediaGrade_MEDIA_GRADE_MINT, pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS,
		pb.MediaGrade_MEDIA_GRADE_VERY_GOOD, pb.MediaGrade_MEDIA_GRADE_GOOD_PLUS, pb.MediaGrade_MEDIA_GRADE_GOOD,
		pb.MediaGrade_MEDIA_GRADE_FAIR, pb.MediaGrade_MEDIA_GRADE_POOR,
	}
}
