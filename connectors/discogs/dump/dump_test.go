package dump_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/dump"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// fixture returns the path of a file of the shared dump_xml fixtures.
func fixture(t testing.TB, elems ...string) string {
	t.Helper()
	return testutil.SharedDir(t, append([]string{"fixtures", "dump_xml"}, elems...)...)
}

const (
	rel2017   = "xml2db_20170401_head50/discogs_20170401_releases.xml.gz"
	mas2017   = "xml2db_20170401_head50/discogs_20170401_masters.xml.gz"
	rel2020   = "xml2db_20200806/discogs_20200806_releases.xml.gz"
	mas2020   = "xml2db_20200806/discogs_20200806_masters.xml.gz"
	mas2026   = "xml2db_20260201/discogs_20260201_masters.xml"
	relSingle = "xml2db_single_records/release.xml"
	masSingle = "xml2db_single_records/master.xml"
)

func open(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture(t, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// result is one call of Next: a record's id, or an error.
type result struct {
	id  int64
	pos dump.Position
	err error
}

// readAll decodes input to the end or the first fatal error.
func readAll(t testing.TB, masters bool, r io.Reader, opts ...dump.Option) (recs []proto.Message, res []result, fatal error) {
	t.Helper()
	var d *dump.Decoder
	var err error
	if masters {
		d, err = dump.NewMasters(r, opts...)
	} else {
		d, err = dump.NewReleases(r, opts...)
	}
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	for {
		var m proto.Message
		var id int64
		if masters {
			var x *pb.Master
			x, err = d.NextMaster()
			if x != nil {
				m, id = x, x.MasterId
			}
		} else {
			var x *pb.Release
			x, err = d.NextRelease()
			if x != nil {
				m, id = x, x.ReleaseId
			}
		}
		if err == io.EOF {
			return recs, res, nil
		}
		var re *dump.RecordError
		if err != nil && !errors.As(err, &re) {
			return recs, res, err
		}
		if m != nil {
			recs = append(recs, m)
		}
		res = append(res, result{id: id, pos: d.Position(), err: err})
		if len(res) > 1e6 {
			t.Fatal("decoder does not progress")
		}
	}
}

func TestFixtureCounts(t *testing.T) {
	tests := []struct {
		file           string
		masters        bool
		want           int
		firstID, lastD int64
	}{
		{rel2017, false, 10, 1, 10},
		{rel2020, false, 1000, 1, 0},
		{mas2017, true, 47, 18500, 0},
		{mas2020, true, 1000, 113, 0},
		{mas2026, true, 4, 392818, 3319987},
		{relSingle, false, 1, 3, 3},
		{masSingle, true, 1, 122, 122},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			recs, res, err := readAll(t, tt.masters, bytes.NewReader(open(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.want || len(res) != tt.want {
				t.Fatalf("got %d records, %d results, want %d", len(recs), len(res), tt.want)
			}
			if res[0].id != tt.firstID {
				t.Errorf("first id %d, want %d", res[0].id, tt.firstID)
			}
			if tt.lastD != 0 && res[len(res)-1].id != tt.lastD {
				t.Errorf("last id %d, want %d", res[len(res)-1].id, tt.lastD)
			}
		})
	}
}

func artist(id int64, name, anv, join string) *pb.ArtistCredit {
	return &pb.ArtistCredit{ArtistId: id, Name: name, Anv: anv, Join: join}
}

// TestReleaseValues compares decoded releases with values read by hand in
// the fixture files.
func TestReleaseValues(t *testing.T) {
	vinyl12 := func(qty int32) *pb.Format {
		return &pb.Format{Name: "Vinyl", Qty: qty, Descriptions: []string{`12"`, "33 ⅓ RPM"}}
	}
	tests := []struct {
		file string
		want *pb.Release
	}{
		{rel2020, &pb.Release{
			ReleaseId: 1, Status: "Accepted", Title: "Stockholm",
			Artists: []*pb.ArtistCredit{artist(1, "The Persuader", "", "")},
			Labels:  []*pb.LabelCredit{{LabelId: 5, Name: "Svek", Catno: "SK032"}},
			Formats: []*pb.Format{vinyl12(2)},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Deep House"},
			Country: "Sweden", Released: "1999-03-00", Year: 1999,
			DataQuality: "Needs Vote", MasterId: 1660109, IsMainRelease: true,
		}},
		{rel2020, &pb.Release{
			ReleaseId: 2, Status: "Accepted", Title: "Knockin' Boots (Vol 2 Of 2)",
			Artists: []*pb.ArtistCredit{artist(2, "Mr. James Barth & A.D.", "", "")},
			Labels: []*pb.LabelCredit{
				{LabelId: 5, Name: "Svek", Catno: "SK 026"},
				{LabelId: 5, Name: "Svek", Catno: "SK026"},
			},
			Formats: []*pb.Format{vinyl12(1)},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Broken Beat", "Techno", "Tech House"},
			Country: "Sweden", Released: "1998-06-00", Year: 1998,
			DataQuality: "Needs Vote", MasterId: 713738, IsMainRelease: true,
		}},
		{rel2020, &pb.Release{ // no master, released is a bare year
			ReleaseId: 29, Status: "Accepted", Title: "6 Hits Of Sunshine",
			Artists: []*pb.ArtistCredit{artist(61, "John Tejada & Arian Leviste", "", "")},
			Labels:  []*pb.LabelCredit{{LabelId: 30, Name: "Palette Recordings", Catno: "PAL-11"}},
			Formats: []*pb.Format{vinyl12(1)},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Techno", "Tech House"},
			Country: "US", Released: "2000", Year: 2000, DataQuality: "Needs Vote",
		}},
		{rel2020, &pb.Release{
			ReleaseId: 30, Status: "Accepted", Title: "Song Forms & Freedom EP",
			Artists: []*pb.ArtistCredit{artist(62, "John Tejada", "", "")},
			Labels:  []*pb.LabelCredit{{LabelId: 31, Name: "Mosaic", Catno: "MOSAIC026"}},
			Formats: []*pb.Format{{Name: "Vinyl", Qty: 1, Descriptions: []string{`12"`, "EP"}}},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Tech House"},
			Country: "UK", Released: "2000-00-00", Year: 2000,
			DataQuality: "Complete and Correct", MasterId: 689053, IsMainRelease: true,
		}},
		{rel2020, &pb.Release{ // two artists with a join, two labels, two formats
			ReleaseId: 9343067, Status: "Accepted", Title: "PPPP-Playbirds",
			Artists: []*pb.ArtistCredit{
				artist(5369146, "Philosophers Of Darkness", "", "Special Guest Appearance By"),
				artist(73136, "Skin Crime", "", ""),
			},
			Labels: []*pb.LabelCredit{
				{LabelId: 932496, Name: "Chamber Of The Lost Souls Studios", Catno: "CLS777"},
				{LabelId: 13923, Name: "Self Abuse Records", Catno: "SAR-PPPP"},
			},
			Formats: []*pb.Format{
				{Name: "Cassette", Qty: 15},
				{Name: "Box Set", Qty: 1, Text: "Handpainted & collaged", Descriptions: []string{"Album", "Limited Edition", "Numbered"}},
			},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Harsh Noise Wall"},
			Country: "UK & US", Released: "2016-12-00", Year: 2016,
			DataQuality: "Needs Vote", MasterId: 1089143, IsMainRelease: true,
		}},
		{rel2017, &pb.Release{ // 2017: labels without id, no master
			ReleaseId: 1, Status: "Accepted", Title: "Stockholm",
			Artists: []*pb.ArtistCredit{artist(1, "The Persuader", "", ",")},
			Labels:  []*pb.LabelCredit{{Name: "Svek", Catno: "SK032"}},
			Formats: []*pb.Format{vinyl12(2)},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Deep House"},
			Country: "Sweden", Released: "1999-03-00", Year: 1999, DataQuality: "Needs Vote",
		}},
		{rel2017, &pb.Release{ // 2017: master_id without is_main_release
			ReleaseId: 7, Status: "Accepted", Title: "Moonchildren EP",
			Artists: []*pb.ArtistCredit{artist(28, "Moonchildren", "", ",")},
			Labels:  []*pb.LabelCredit{{Name: "Deep4Life", Catno: "D4L12002"}},
			Formats: []*pb.Format{{Name: "Vinyl", Qty: 1, Text: "Clear", Descriptions: []string{`12"`, "EP"}}},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Deep House"},
			Country: "US", Released: "2000-02-00", Year: 2000, DataQuality: "Needs Vote", MasterId: 267770,
		}},
		{relSingle, &pb.Release{ // pretty-printed, no root element
			ReleaseId: 3, Status: "Accepted", Title: "Profound Sounds Vol. 1",
			Artists: []*pb.ArtistCredit{artist(3, "Josh Wink", "", "")},
			Labels:  []*pb.LabelCredit{{LabelId: 6, Name: "Ruffhouse Records", Catno: "CK 63628"}},
			Formats: []*pb.Format{{Name: "CD", Qty: 1, Descriptions: []string{"Compilation", "Mixed"}}},
			Genres:  []string{"Electronic"},
			Styles:  []string{"Techno", "Tech House"},
			Country: "US", Released: "1999-07-13", Year: 1999, DataQuality: "Correct", MasterId: 66526,
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", filepath.Base(tt.file), tt.want.ReleaseId), func(t *testing.T) {
			name := filepath.Base(tt.file)
			recs, _, err := readAll(t, false, bytes.NewReader(open(t, tt.file)), dump.FileName(name))
			if err != nil {
				t.Fatal(err)
			}
			want := proto.Clone(tt.want).(*pb.Release)
			want.EventId = fmt.Sprintf("dump:releases:%d", want.ReleaseId)
			if dt, ok := dump.DumpDate(name); ok {
				want.EventTimeMs = dt.UnixMilli()
			}
			for _, m := range recs {
				if got := m.(*pb.Release); got.ReleaseId == want.ReleaseId {
					if !proto.Equal(got, want) {
						t.Errorf("got\n%s\nwant\n%s", prototext.Format(got), prototext.Format(want))
					}
					return
				}
			}
			t.Fatalf("release %d not found", want.ReleaseId)
		})
	}
}

func TestMasterValues(t *testing.T) {
	tests := []struct {
		file string
		want *pb.Master
	}{
		{mas2026, &pb.Master{
			MasterId: 392818, MainRelease: 1946857, Year: 2008,
			Title:       "Kulkurin Taival (Kaikki Levytykset 1946-1979)",
			Artists:     []*pb.ArtistCredit{artist(598091, "Tapio Rautavaara", "", ",")},
			Genres:      []string{"Rock", "Pop", "Children's", "Folk, World, & Country"},
			Styles:      []string{"Country", "Soft Rock", "Folk", "Ballad", "Schlager"},
			DataQuality: "Correct",
		}},
		{mas2026, &pb.Master{
			MasterId: 1168624, MainRelease: 1028981, Year: 2005,
			Title:       "Complete Works = L'Oeuvre Intégrale = Gesamtwerk",
			Artists:     []*pb.ArtistCredit{artist(95546, "Wolfgang Amadeus Mozart", "", ",")},
			Genres:      []string{"Classical"},
			Styles:      []string{"Classical", "Choral", "Opera"},
			DataQuality: "Correct",
		}},
		{mas2026, &pb.Master{
			MasterId: 2280259, MainRelease: 5355366, Year: 2012, Title: "The Complete Bach Edition",
			Artists:     []*pb.ArtistCredit{artist(95537, "Johann Sebastian Bach", "Bach", ",")},
			Genres:      []string{"Classical"},
			Styles:      []string{"Baroque", "Cantata", "Mass"},
			DataQuality: "Correct",
		}},
		{mas2020, &pb.Master{
			MasterId: 113, MainRelease: 116925, Year: 2002, Title: "Moments In Time",
			Artists:     []*pb.ArtistCredit{artist(3225, "Vince Watson", "", "")},
			Genres:      []string{"Electronic"},
			Styles:      []string{"Techno", "Tech House"},
			DataQuality: "Correct",
		}},
		{mas2017, &pb.Master{
			MasterId: 18500, MainRelease: 155102, Year: 2001, Title: "New Soil",
			Artists:     []*pb.ArtistCredit{artist(212070, "Samuel L Session", "Samuel L", "")},
			Genres:      []string{"Electronic"},
			Styles:      []string{"Techno"},
			DataQuality: "Correct",
		}},
		{masSingle, &pb.Master{
			MasterId: 122, MainRelease: 85912, Year: 1993, Title: "Organized Chaos E.P.",
			Artists:     []*pb.ArtistCredit{artist(69209, "Mixrace", "", "")},
			Genres:      []string{"Electronic"},
			Styles:      []string{"Breakbeat", "Hardcore", "Jungle"},
			DataQuality: "Correct",
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", filepath.Base(tt.file), tt.want.MasterId), func(t *testing.T) {
			recs, _, err := readAll(t, true, bytes.NewReader(open(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			want := proto.Clone(tt.want).(*pb.Master)
			want.EventId = fmt.Sprintf("dump:masters:%d", want.MasterId)
			for _, m := range recs {
				if got := m.(*pb.Master); got.MasterId == want.MasterId {
					if !proto.Equal(got, want) {
						t.Errorf("got\n%s\nwant\n%s", prototext.Format(got), prototext.Format(want))
					}
					return
				}
			}
			t.Fatalf("master %d not found", want.MasterId)
		})
	}
}

// TestGzipByMagic: compression is recognised by content, not by name.
func TestGzipByMagic(t *testing.T) {
	gz := open(t, rel2020)
	plain := gunzip(t, gz)
	a, _, err := readAll(t, false, bytes.NewReader(gz), dump.FileName("releases.xml"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := readAll(t, false, bytes.NewReader(plain), dump.FileName("releases.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 1000 || len(a) != len(b) {
		t.Fatalf("gzip %d records, plain %d", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
}

const good = `<release id="%d" status="Accepted"><artists><artist><id>1</id><name>A</name></artist></artists><title>T%d</title><tracklist><track><title>x</title></track></tracklist></release>
`

func TestBadRecordsContinue(t *testing.T) {
	bad := []struct {
		rec, id, reason string
	}{
		{`<release status="Accepted"><title>no id</title></release>`, "", "missing id"},
		{`<release id="12a"><title>bad id</title></release>`, "12a", "invalid id"},
		{`<release id="13"><title>x</title><tracklist><track><title>y</track></tracklist></release>`, "13", "closes"},
		{`<release id="14"><title>x &nbsp; y</title></release>`, "14", "entity"},
		{`<release id="15"><title>x</title><notes>unclosed</release>`, "15", "closes"},
		{"<release id=\"16\"><title>\xff\xfe</title></release>", "16", "UTF-8"},
		{`<release id="17"><title>x</title><images><image uri="a"/></images>`, "17", "inside a record"}, // no end tag: the next record starts
		{`<release id='18' <title>x</title></release>`, "", "inside tag"},
		{`<release id="19"><labels><label name="x" catno=y/></labels></release>`, "19", "unquoted"},
		{`<release id="20"><title>&#0;</title></release>`, "20", "entity"},
	}
	var in strings.Builder
	in.WriteString("\xef\xbb\xbf" + `<?xml version="1.0" encoding="UTF-8"?>` + "\n<releases>\n")
	want := []string{}
	for i, b := range bad {
		fmt.Fprintf(&in, good, 100+i, 100+i)
		want = append(want, fmt.Sprint(100+i))
		in.WriteString(b.rec + "\n")
		want = append(want, "bad:"+b.id+":"+b.reason)
	}
	fmt.Fprintf(&in, good, 999, 999)
	want = append(want, "999")
	in.WriteString("</releases>\n")

	d, err := dump.NewReleases(strings.NewReader(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var positions []dump.Position
	for {
		r, err := d.NextRelease()
		if err == io.EOF {
			break
		}
		positions = append(positions, d.Position())
		var re *dump.RecordError
		switch {
		case errors.As(err, &re):
			if string(re.Raw) != bad[(len(got)-1)/2].rec {
				t.Errorf("raw of %q: %q", re.ID, re.Raw)
			}
			if !strings.HasPrefix(in.String()[re.Offset:], "<release") {
				t.Errorf("offset %d of %q is not a record start", re.Offset, re.ID)
			}
			got = append(got, "bad:"+re.ID+":"+re.Reason)
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, fmt.Sprint(r.ReleaseId))
			if r.Title != "T"+fmt.Sprint(r.ReleaseId) {
				t.Errorf("release %d title %q", r.ReleaseId, r.Title)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(want[i], "bad:") {
			if got[i] != want[i] {
				t.Errorf("%d: got %q, want %q", i, got[i], want[i])
			}
			continue
		}
		w := strings.SplitN(want[i], ":", 3)
		if !strings.HasPrefix(got[i], "bad:"+w[1]+":") || !strings.Contains(got[i], w[2]) {
			t.Errorf("%d: got %q, want id %q and a reason with %q", i, got[i], w[1], w[2])
		}
	}
	// Resuming after any of them, good or bad, yields the rest.
	for i, p := range positions {
		d, err := dump.NewReleases(strings.NewReader(in.String()), dump.ResumeAfter(p))
		if err != nil {
			t.Fatal(err)
		}
		var rest []string
		for {
			r, err := d.NextRelease()
			if err == io.EOF {
				break
			}
			var re *dump.RecordError
			switch {
			case errors.As(err, &re):
				rest = append(rest, "bad:"+re.ID+":"+re.Reason)
			case err != nil:
				t.Fatalf("resume after %+v: %v", p, err)
			default:
				rest = append(rest, fmt.Sprint(r.ReleaseId))
			}
		}
		if fmt.Sprint(rest) != fmt.Sprint(got[i+1:]) {
			t.Errorf("resume after %d %+v:\n got %q\nwant %q", i, p, rest, got[i+1:])
		}
	}
	st := d.Stats()
	if st.Records != int64(len(bad)+1) || st.Bad != int64(len(bad)) || st.Bytes != int64(strings.LastIndex(in.String(), "</release>")+len("</release>")) {
		t.Errorf("stats %+v, input %d bytes", st, in.Len())
	}
}

func TestTruncatedIsFatal(t *testing.T) {
	plain := gunzip(t, open(t, rel2020))
	gz := open(t, rel2020)
	cuts := []struct {
		name string
		in   []byte
	}{
		{"mid-record", plain[:len(plain)/2]},
		{"mid-tag", plain[:bytes.Index(plain, []byte(`<release id="2"`))+5]},
		{"mid-attribute", plain[:bytes.Index(plain, []byte(`<release id="2"`))+12]},
		{"before root end", plain[:bytes.LastIndex(plain, []byte("</releases>"))]},
		{"root end cut", plain[:bytes.LastIndex(plain, []byte("</releases>"))+4]},
		{"gzip cut", gz[:len(gz)/2]},
		{"bad record at the end", append(plain[:bytes.LastIndex(plain, []byte("</releases>"))], "<release id=\"5\"><title>x</titl>"...)},
	}
	for _, tt := range cuts {
		t.Run(tt.name, func(t *testing.T) {
			_, res, err := readAll(t, false, bytes.NewReader(tt.in))
			if !errors.Is(err, dump.ErrTruncated) {
				t.Fatalf("after %d records: err %v, want ErrTruncated", len(res), err)
			}
		})
	}
	d, err := dump.NewReleases(bytes.NewReader(plain[:1000]))
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := d.NextRelease()
	_, err2 := d.NextRelease()
	if !errors.Is(err1, dump.ErrTruncated) || err1 != err2 {
		t.Errorf("fatal error is not sticky: %v, then %v", err1, err2)
	}
}

func TestMalformedDocument(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"other root", "<artists><artist><id>1</id></artist></artists>"},
		{"text before root", "hello <releases></releases>"},
		{"stray end tag", "<releases></release></releases>"},
		{"masters file", "<masters><master id=\"1\"></master></masters>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(t, false, strings.NewReader(tt.in))
			if !errors.Is(err, dump.ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
		})
	}
}

// TestSyntaxVariants: things the dumps may do that the fixtures do not.
func TestSyntaxVariants(t *testing.T) {
	in := `<?xml version="1.0"?>
<!DOCTYPE releases [ <!ELEMENT releases ANY> ]>
<!-- a comment -->
<releases>
<release id='1' status = 'Accepted'>
  <title><![CDATA[A <b>&amp;</b> ]]>&amp; &lt;&gt;&quot;&apos; &#x263A;&#9731;</title>
  <labels><label name='O&apos;Neil "x"' catno="a&#10;b" id="7"></label></labels>
  <!-- <title>not this</title> -->
  <notes>&lt;release id="2"&gt; is text</notes>
  <formats><format name="Vinyl" qty="x" text=""/></formats>
  <genres><genre/><genre>Jazz</genre></genres>
  <released>  </released>
  <master_id is_main_release="true"></master_id>
  <unknown a="1"><deep><deeper/></deep></unknown>
</release>
<foo>between records</foo>
<release id="2"/>
</releases>
<!-- trailer -->
`
	recs, res, err := readAll(t, false, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records: %+v", len(recs), res)
	}
	want := &pb.Release{
		EventId: "dump:releases:1", ReleaseId: 1, Status: "Accepted",
		Title:   `A <b>&amp;</b> & <>"' ☺☃`,
		Labels:  []*pb.LabelCredit{{LabelId: 7, Name: `O'Neil "x"`, Catno: "a\nb"}},
		Formats: []*pb.Format{{Name: "Vinyl"}},
		Genres:  []string{"Jazz"}, Released: "  ", IsMainRelease: true,
	}
	if got := recs[0].(*pb.Release); !proto.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", prototext.Format(got), prototext.Format(want))
	}
}

func TestMaxRecordSize(t *testing.T) {
	big := `<release id="2"><notes>` + strings.Repeat("x", 20000) + `</notes></release>`
	in := "<releases>" + fmt.Sprintf(good, 1, 1) + big + fmt.Sprintf(good, 3, 3) + "</releases>"
	_, res, err := readAll(t, false, strings.NewReader(in), dump.MaxRecordSize(8192), dump.MaxRawBytes(100))
	if err != nil {
		t.Fatal(err)
	}
	var re *dump.RecordError
	if len(res) != 3 || res[0].id != 1 || !errors.As(res[1].err, &re) || res[2].id != 3 {
		t.Fatalf("results %+v", res)
	}
	if re.ID != "2" || len(re.Raw) != 100 {
		t.Errorf("record error %v, raw %d bytes", re, len(re.Raw))
	}
}

func TestResume(t *testing.T) {
	gz := open(t, rel2020)
	_, all, err := readAll(t, false, bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{0, 1, 499, 998, 999} {
		for _, mode := range []string{"offset", "id", "offset+id"} {
			t.Run(fmt.Sprintf("after-%d/%s", k, mode), func(t *testing.T) {
				p := all[k].pos
				switch mode {
				case "offset":
					p.ID = 0
				case "id":
					p.Offset = 0
				}
				d, err := dump.NewReleases(bytes.NewReader(gz), dump.ResumeAfter(p))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				for i := k + 1; ; i++ {
					r, err := d.NextRelease()
					if err == io.EOF {
						if i != len(all) {
							t.Fatalf("EOF after %d records, want %d", i, len(all))
						}
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if r.ReleaseId != all[i].id || d.Position() != all[i].pos {
						t.Fatalf("record %d: id %d at %+v, want %+v", i, r.ReleaseId, d.Position(), all[i].pos)
					}
				}
				skipped := int64(1)
				if mode == "id" {
					skipped = int64(k + 1) // every record through the id
				}
				if st := d.Stats(); st.Skipped != skipped || st.Records != int64(len(all)-k-1) {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
	// Resuming masters of 2017, whose ids are not in order, by id.
	_, masters, err := readAll(t, true, bytes.NewReader(open(t, mas2017)))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, err := readAll(t, true, bytes.NewReader(open(t, mas2017)), dump.ResumeAfter(dump.Position{ID: masters[20].id}))
	if err != nil || len(rest) != len(masters)-21 || rest[0].id != masters[21].id {
		t.Errorf("masters resumed after %d: %d left, err %v", masters[20].id, len(rest), err)
	}
	bad := []dump.Position{
		{ID: 12345678},                      // not in the file
		{ID: 2, Offset: all[0].pos.Offset},  // id mismatch
		{Offset: all[0].pos.Offset + 1},     // not a record start
		{Offset: int64(len(gunzip(t, gz)))}, // past the end
	}
	for _, p := range bad {
		_, _, err := readAll(t, false, bytes.NewReader(gz), dump.ResumeAfter(p))
		if !errors.Is(err, dump.ErrResume) {
			t.Errorf("resume %+v: err %v, want ErrResume", p, err)
		}
	}
}

func TestStatsAndEventTime(t *testing.T) {
	gz := open(t, rel2020)
	d, err := dump.NewReleases(bytes.NewReader(gz), dump.FileName("/data/discogs_20200806_releases.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.NextRelease()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2020, 8, 6, 0, 0, 0, 0, time.UTC).UnixMilli(); r.EventTimeMs != want || r.EventId != "dump:releases:1" {
		t.Errorf("event time %d id %q, want %d", r.EventTimeMs, r.EventId, want)
	}
	for err == nil {
		_, err = d.NextRelease()
	}
	st := d.Stats()
	if err != io.EOF || st.Records != 1000 || st.Bad != 0 || !st.Gzip || st.InputBytes != int64(len(gz)) ||
		st.Bytes != int64(bytes.LastIndex(gunzip(t, gz), []byte("</release>"))+len("</release>")) {
		t.Errorf("err %v, stats %+v", err, st)
	}
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	_, _ = dump.DumpDate("x")
	d2, _ := dump.NewMasters(strings.NewReader(`<masters><master id="1"/></masters>`), dump.EventTime(at), dump.FileName("discogs_20200806_masters.xml"))
	if m, err := d2.NextMaster(); err != nil || m.EventTimeMs != at.UnixMilli() {
		t.Errorf("master %v, err %v", m, err)
	}
	if _, err := d2.NextRelease(); err == nil {
		t.Error("NextRelease on a masters decoder")
	}
}

func TestSynthesize(t *testing.T) {
	var buf bytes.Buffer
	if err := dump.Synthesize(&buf, 25); err != nil {
		t.Fatal(err)
	}
	_, res, err := readAll(t, false, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 25 {
		t.Fatalf("%d records", len(res))
	}
	for i, r := range res {
		if r.err != nil || r.id != int64(i+1) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

// TestReadAheadStops: the gzip read-ahead goroutine ends on Close, and
// also when a decoder is dropped without Close.
func TestReadAheadStops(t *testing.T) {
	gz := open(t, rel2020)
	waitGoroutines := func(n int) bool {
		for range 200 {
			runtime.GC()
			if runtime.NumGoroutine() <= n {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	base := runtime.NumGoroutine()
	d, err := dump.NewReleases(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.NextRelease(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if !waitGoroutines(base) {
		t.Errorf("%d goroutines after Close, %d before", runtime.NumGoroutine(), base)
	}
	func() {
		d, err := dump.NewReleases(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.NextRelease(); err != nil {
			t.Fatal(err)
		}
	}()
	if !waitGoroutines(base) {
		t.Errorf("%d goroutines after dropping a decoder, %d before", runtime.NumGoroutine(), base)
	}
}

// A gzip stream cut inside a bad record ends in ErrTruncated, as
// everywhere else, not in gzip's bare io.ErrUnexpectedEOF (found by
// FuzzReleases).
func TestCutGzipInsideBadRecord(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`<releases><release<` + strings.Repeat("text of a broken record ", 2000)))
	zw.Close()
	cut := gz.Bytes()[:gz.Len()/2]
	d, err := dump.NewReleases(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var re *dump.RecordError
	if _, err := d.NextRelease(); !errors.As(err, &re) {
		t.Fatalf("first call: %v, want a *RecordError", err)
	}
	for range 2 { // and sticky
		if _, err := d.NextRelease(); !errors.Is(err, dump.ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("after the bad record: %v, want ErrTruncated wrapping io.ErrUnexpectedEOF", err)
		}
	}
}
