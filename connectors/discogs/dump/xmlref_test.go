package dump_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// A reference decoder built on encoding/xml: slow, but an independent
// reading of the same files, to compare every record of every fixture.

type xArtist struct {
	ID   string `xml:"id"`
	Name string `xml:"name"`
	Anv  string `xml:"anv"`
	Join string `xml:"join"`
}

type xRelease struct {
	ID      string    `xml:"id,attr"`
	Status  string    `xml:"status,attr"`
	Title   string    `xml:"title"`
	Artists []xArtist `xml:"artists>artist"`
	Labels  []struct {
		Name  string `xml:"name,attr"`
		Catno string `xml:"catno,attr"`
		ID    string `xml:"id,attr"`
	} `xml:"labels>label"`
	Formats []struct {
		Name         string   `xml:"name,attr"`
		Qty          string   `xml:"qty,attr"`
		Text         string   `xml:"text,attr"`
		Descriptions []string `xml:"descriptions>description"`
	} `xml:"formats>format"`
	Genres      []string `xml:"genres>genre"`
	Styles      []string `xml:"styles>style"`
	Country     string   `xml:"country"`
	Released    string   `xml:"released"`
	DataQuality string   `xml:"data_quality"`
	Master      struct {
		Main string `xml:"is_main_release,attr"`
		ID   string `xml:",chardata"`
	} `xml:"master_id"`
}

type xMaster struct {
	ID          string    `xml:"id,attr"`
	MainRelease string    `xml:"main_release"`
	Title       string    `xml:"title"`
	Year        string    `xml:"year"`
	Artists     []xArtist `xml:"artists>artist"`
	Genres      []string  `xml:"genres>genre"`
	Styles      []string  `xml:"styles>style"`
	DataQuality string    `xml:"data_quality"`
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func refArtists(xs []xArtist) []*pb.ArtistCredit {
	var out []*pb.ArtistCredit
	for _, a := range xs {
		out = append(out, &pb.ArtistCredit{ArtistId: num(a.ID), Name: a.Name, Anv: a.Anv, Join: a.Join})
	}
	return out
}

// refDecode decodes every record element named rec with encoding/xml.
func refDecode(t *testing.T, data []byte, rec string) []proto.Message {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out []proto.Message
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != rec {
			continue
		}
		if rec == "master" {
			var x xMaster
			if err := dec.DecodeElement(&x, &se); err != nil {
				t.Fatal(err)
			}
			id := num(x.ID)
			out = append(out, &pb.Master{
				EventId: fmt.Sprintf("dump:masters:%d", id), MasterId: id, MainRelease: num(x.MainRelease),
				Title: x.Title, Year: int32(num(x.Year)), Artists: refArtists(x.Artists),
				Genres: nonEmpty(x.Genres), Styles: nonEmpty(x.Styles), DataQuality: x.DataQuality,
			})
			continue
		}
		var x xRelease
		if err := dec.DecodeElement(&x, &se); err != nil {
			t.Fatal(err)
		}
		id := num(x.ID)
		r := &pb.Release{
			EventId: fmt.Sprintf("dump:releases:%d", id), ReleaseId: id, Status: x.Status, Title: x.Title,
			Artists: refArtists(x.Artists), Genres: nonEmpty(x.Genres), Styles: nonEmpty(x.Styles),
			Country: x.Country, Released: x.Released, DataQuality: x.DataQuality,
			MasterId: num(x.Master.ID), IsMainRelease: x.Master.Main == "true",
		}
		if len(x.Released) >= 4 {
			r.Year = int32(num(x.Released[:4]))
		}
		for _, l := range x.Labels {
			r.Labels = append(r.Labels, &pb.LabelCredit{LabelId: num(l.ID), Name: l.Name, Catno: l.Catno})
		}
		for _, f := range x.Formats {
			r.Formats = append(r.Formats, &pb.Format{Name: f.Name, Qty: int32(num(f.Qty)), Text: f.Text, Descriptions: nonEmpty(f.Descriptions)})
		}
		out = append(out, r)
	}
}

// TestAgainstEncodingXML compares every record of every fixture with what
// encoding/xml reads.
func TestAgainstEncodingXML(t *testing.T) {
	for _, f := range []string{rel2017, rel2020, relSingle, mas2017, mas2020, mas2026, masSingle} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data := open(t, f)
			if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
				data = gunzip(t, data)
			}
			masters := strings.Contains(f, "master")
			rec := "release"
			if masters {
				rec = "master"
			}
			want := refDecode(t, data, rec)
			got, _, err := readAll(t, masters, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, encoding/xml %d", len(got), len(want))
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) {
					t.Fatalf("record %d:\n%s\nencoding/xml:\n%s", i, prototext.Format(got[i]), prototext.Format(want[i]))
				}
			}
		})
	}
}
