package grade

import (
	"testing"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want pb.MediaGrade
	}{
		{"Mint (M)", pb.MediaGrade_MEDIA_GRADE_MINT},
		{"Near Mint (NM or M-)", pb.MediaGrade_MEDIA_GRADE_NEAR_MINT},
		{"  near   mint (nm or m-) ", pb.MediaGrade_MEDIA_GRADE_NEAR_MINT},
		{"M-", pb.MediaGrade_MEDIA_GRADE_NEAR_MINT},
		{"NM", pb.MediaGrade_MEDIA_GRADE_NEAR_MINT},
		{"Very Good Plus (VG+)", pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS},
		{"VG", pb.MediaGrade_MEDIA_GRADE_VERY_GOOD},
		{"Good Plus (G+)", pb.MediaGrade_MEDIA_GRADE_GOOD_PLUS},
		{"Good (G)", pb.MediaGrade_MEDIA_GRADE_GOOD},
		{"Fair (F)", pb.MediaGrade_MEDIA_GRADE_FAIR},
		{"Poor (P)", pb.MediaGrade_MEDIA_GRADE_POOR},
	}
	for _, tt := range tests {
		g, err := ParseMedia(tt.in)
		if err != nil || g != tt.want {
			t.Errorf("ParseMedia(%q) = %v, %v; want %v", tt.in, g, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Excellent", "VG++", "Generic"} {
		if _, err := ParseMedia(bad); err == nil {
			t.Errorf("ParseMedia(%q) accepted", bad)
		}
	}
	for in, want := range map[string]pb.SleeveGrade{
		"Generic": pb.SleeveGrade_SLEEVE_GRADE_GENERIC, "Not Graded": pb.SleeveGrade_SLEEVE_GRADE_NOT_GRADED,
		"No Cover": pb.SleeveGrade_SLEEVE_GRADE_NO_COVER, "Very Good (VG)": pb.SleeveGrade_SLEEVE_GRADE_VERY_GOOD,
	} {
		if g, err := ParseSleeve(in); err != nil || g != want {
			t.Errorf("ParseSleeve(%q) = %v, %v", in, g, err)
		}
		if Sleeve(want) != in {
			t.Errorf("Sleeve(%v) = %q", want, Sleeve(want))
		}
	}
	for _, g := range All() {
		if back, err := ParseMedia(Media(g)); err != nil || back != g {
			t.Errorf("round trip of %v: %v %v", g, back, err)
		}
	}
}

func TestAtLeast(t *testing.T) {
	vgp := pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS
	if !AtLeast(pb.MediaGrade_MEDIA_GRADE_MINT, vgp) || !AtLeast(vgp, vgp) || AtLeast(pb.MediaGrade_MEDIA_GRADE_VERY_GOOD, vgp) {
		t.Error("order wrong")
	}
	if AtLeast(pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED, pb.MediaGrade_MEDIA_GRADE_POOR) {
		t.Error("unspecified grade passed a minimum")
	}
	if !AtLeast(pb.MediaGrade_MEDIA_GRADE_POOR, pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED) {
		t.Error("no minimum rejected a grade")
	}
}
