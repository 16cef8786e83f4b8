// Package eval is the offline evaluation protocol for the recsys models,
// as specified in ../shared/datasets/README.md so that figures compare with
// published tables:
//
//   - every interaction is a binary positive (weights and duplicate pairs
//     are collapsed);
//   - one global random 80/20 split of interactions per seed; results are
//     the mean ± sample standard deviation over seeds (default 5);
//   - for each test user all items are ranked, excluding the user's
//     training items; ties rank by item index (first-seen order in the
//     file), so results are deterministic;
//   - P@10 = hits/10, R@10 = hits/|test items of the user|, NDCG@10 with
//     binary gains and the ideal DCG over min(|test items|, 10);
//   - averages are over users with at least one test item;
//   - coverage is the share of the catalogue (all items in the file)
//     recommended in at least one test user's top 10; train_seconds is the
//     training wall time. Both are means over seeds.
//
// Tuning runs over the full shared datasets live behind the recsystune
// build tag (see TUNING.md); tests use small slices.
package eval
