// Package recsys holds the recommender algorithms behind cratestream's
// "what to dig for next" features: implicit-feedback ALS solved with
// conjugate gradient, EASE, item-kNN, genre/style affinity and popularity,
// plus similar-item/similar-user look-ups and a cascade that serves each
// request from the best model able to answer it.
//
// The package is pure: no I/O, no global state. Users and items are dense
// int32 indices (0..n-1); map external ids (release ids, user names) with
// Index. Trained models are read-only and safe for concurrent use.
//
// Interaction data enters as a CSR matrix (users × items) with weights.
// Scores are float32 because factors are published as []float32 and
// single precision halves memory traffic on the hot scoring loops.
package recsys
