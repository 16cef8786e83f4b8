package main

import (
	"testing"

	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/recsys/eval"
)

func TestEaseProf(t *testing.T) {
	ds, _ := eval.Load("/work/shared/datasets/ml-latest-small/ratings.csv")
	sp, _ := eval.NewSplit(ds, 1, 0.8)
	m, err := recsys.TrainEASE(sp.Train, recsys.DefaultEASEConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(len(m.Support))
}
