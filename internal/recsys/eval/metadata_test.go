package eval

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMovieLensGenres(t *testing.T) {
	in := "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation|Children\r\n" +
		"11,\"American President, The (1995)\",Comedy|Drama|Romance\r\n" +
		"182727,A Christmas Story Live! (2017),(no genres listed)\r\n"
	got, err := readMovieLensGenres(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got["1"], []string{"Adventure", "Animation", "Children"}) ||
		!slices.Equal(got["11"], []string{"Comedy", "Drama", "Romance"}) || len(got["182727"]) != 0 || len(got) != 3 {
		t.Fatalf("got %v", got)
	}
}

func TestLastfmTags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tags.dat", "tagID\ttagValue\r\n1\tMetal\r\n2\tjazz\r\n10\tbebop\r\n3\t80s\r\n")
	write("user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear\r\n"+
		"1\t50\t2\t1\t1\t2009\r\n2\t50\t2\t1\t1\t2009\r\n3\t50\t10\t1\t1\t2009\r\n4\t50\t3\t1\t1\t2009\r\n"+
		"1\t60\t1\t1\t1\t2009\r\n1\t60\t99\t1\t1\t2009\r\n")
	got, err := LoadLastfmTags(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Artist 50: jazz ×2, then bebop and 80s tied ×1: tag 3 (80s) < 10.
	if !slices.Equal(got["50"], []string{"jazz", "80s"}) || !slices.Equal(got["60"], []string{"metal"}) {
		t.Fatalf("got %v", got)
	}
	if _, err := LoadLastfmTags(dir, 0); err == nil {
		t.Fatal("top 0 accepted")
	}
	if _, err := LoadLastfmTags(t.TempDir(), 3); err == nil {
		t.Fatal("missing files accepted")
	}
}
