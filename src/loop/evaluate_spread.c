/* evaluate_spread.c: held-out evaluation spread over the ranks of an MPI job
 * (evaluate.h's ad_evaluate_levels_spread). The problem list is cut into N
 * contiguous ranges, one per rank; every rank decodes and verifies its range,
 * and rank 0 gathers the outcomes back in problem order and sums them as one
 * process would. Not here: who loads which model (the caller). */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/evaluate.h"

int ad_evaluate_levels_spread(ad_model *m, const ad_vocab *v, const ad_task *t,
                              const ad_level *levels, size_t n_levels, size_t n_per_level,
                              uint64_t seed, ad_level_accuracy *out, ad_error *err) {
    size_t N = (size_t)ad_dist_size(), r = (size_t)ad_dist_rank();
    if (N == 1) return ad_evaluate_levels(m, v, t, levels, n_levels, n_per_level, seed, out, err);
    size_t P = n_levels * n_per_level, per = (P + N - 1) / N;
    size_t from = r * P / N, to = (r + 1) * P / N;
    /* every rank sends `per` outcomes (its range, then padding): MPI_Gather
     * wants one size */
    ad_eval_outcome *mine = calloc(per ? per : 1, sizeof *mine), *all = NULL;
    if (r == 0) all = calloc(per ? N * per : 1, sizeof *all);
    int rc = mine && (all || r != 0) ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK)
        rc = ad_evaluate_range(m, v, t, levels, n_levels, n_per_level, seed, from, to, mine, err);
    if (rc == AD_OK) rc = ad_dist_gather(mine, all, per * sizeof *mine, 0, err);
    if (rc == AD_OK && r == 0) {
        /* rank k's range [k*P/N, (k+1)*P/N) sits at all + k*per: close the gaps */
        ad_eval_outcome *o = all;
        for (size_t k = 0, at = 0; k < N; k++) {
            size_t a = k * P / N, n = (k + 1) * P / N - a;
            memmove(o + at, all + k * per, n * sizeof *o);
            at += n;
        }
        ad_evaluate_summarize(levels, n_levels, n_per_level, o, out);
    }
    free(mine);
    free(all);
    return rc;
}
