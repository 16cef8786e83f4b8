package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cratestream/cratestream/internal/recsys/eval"
)

func main() {
	which := os.Args[1]
	models := strings.Split(os.Args[2], ",")
	var path string
	cfg := eval.DefaultConfig()
	cfg.Seeds = 1
	if len(os.Args) > 3 {
		if err := json.Unmarshal([]byte(os.Args[3]), &cfg); err != nil {
			panic(err)
		}
	}
	var err error
	if which == "ml" {
		path = "/work/shared/datasets/ml-latest-small/ratings.csv"
		cfg.ItemGenres, err = eval.LoadMovieLensGenres("/work/shared/datasets/ml-latest-small/movies.csv")
	} else {
		path = "/work/shared/datasets/hetrec2011-lastfm-2k/user_artists.dat"
		cfg.ItemGenres, err = eval.LoadLastfmTags("/work/shared/datasets/hetrec2011-lastfm-2k", 5)
	}
	if err != nil {
		panic(err)
	}
	ds, err := eval.Load(path)
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(os.Stderr, ds.Name, ds.Users.Len(), ds.Items.Len(), len(ds.Interactions))
	for _, m := range models {
		t := time.Now()
		r, err := eval.Evaluate(context.Background(), ds, m, cfg)
		if err != nil {
			panic(err)
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b), time.Since(t).Round(time.Millisecond))
	}
}
