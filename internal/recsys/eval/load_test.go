package eval

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	type row struct {
		user, item string
		weight     float32
		time       int64
	}
	tests := []struct {
		name string
		in   string
		opts ReadOptions
		want []row
	}{
		{"comma with header (MovieLens)", "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,3.5,964981247\n2,10,5,964983815\n", ReadOptions{},
			[]row{{"1", "10", 4, 964982703}, {"1", "20", 3.5, 964981247}, {"2", "10", 5, 964983815}}},
		{"tab with header and CRLF (Last.fm)", "userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\r\n", ReadOptions{},
			[]row{{"2", "51", 13883, 0}, {"2", "52", 11690, 0}}},
		{"double colon without header (ML-1M)", "1::1193::5::978300760\n1::661::3::978302109\n", ReadOptions{},
			[]row{{"1", "1193", 5, 978300760}, {"1", "661", 3, 978302109}}},
		{"tab without header", "7\t8\t2\n9\t8\t1\n", ReadOptions{}, []row{{"7", "8", 2, 0}, {"9", "8", 1, 0}}},
		{"two columns with header", "user,item\n1,5\n", ReadOptions{}, []row{{"1", "5", 1, 0}}},
		{"two string columns without header", "alice,blue-note-1500\nbob,ecm-1064\n", ReadOptions{},
			[]row{{"alice", "blue-note-1500", 1, 0}, {"bob", "ecm-1064", 1, 0}}},
		{"forced header", "alice,x\nbob,y\n", ReadOptions{Header: HeaderPresent}, []row{{"bob", "y", 1, 0}}},
		{"forced no header", "1,2,3\n", ReadOptions{Header: HeaderAbsent}, []row{{"1", "2", 3, 0}}},
		{"blank lines and padding", "\n 1 , 2 \n\r\n3,4\n\n", ReadOptions{}, []row{{"1", "2", 1, 0}, {"3", "4", 1, 0}}},
		{"duplicates merged", "1,2,1,5\n1,2,2,9\n1,3,1,1\n", ReadOptions{}, []row{{"1", "2", 3, 9}, {"1", "3", 1, 1}}},
		{"empty", "", ReadOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Read(strings.NewReader(tt.in), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []row
			for _, it := range ds.Interactions {
				u, _ := ds.Users.ID(it.User)
				i, _ := ds.Items.ID(it.Item)
				got = append(got, row{u, i, it.Weight, it.Time})
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for name, in := range map[string]string{
		"one field":     "1,2,1\n3\n",
		"bad weight":    "1,2,1\n1,3,lots\n",
		"bad timestamp": "1,2,1,100\n1,3,1,yesterday\n",
		"empty item":    "1,2\n1,\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Read(strings.NewReader(in), ReadOptions{}); !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
		})
	}
	if _, err := Load("/nonexistent/ratings.csv"); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestHeadAndCSR(t *testing.T) {
	ds, err := Read(strings.NewReader("u1,a,2\nu2,b,1\nu1,c,5\nu3,a,1\n"), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := ds.Head(2)
	if h.Users.Len() != 2 || h.Items.Len() != 3 || len(h.Interactions) != 3 {
		t.Fatalf("head: %d users, %d items, %d interactions", h.Users.Len(), h.Items.Len(), len(h.Interactions))
	}
	m, err := ds.CSR(false)
	if err != nil {
		t.Fatal(err)
	}
	if cols, ws := m.Row(0); !slices.Equal(cols, []int32{0, 2}) || !slices.Equal(ws, []float32{2, 5}) {
		t.Fatalf("row 0: %v %v", cols, ws)
	}
	b, err := ds.CSR(true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ws := b.Row(0); !slices.Equal(ws, []float32{1, 1}) {
		t.Fatalf("binary row 0: %v", ws)
	}
}
