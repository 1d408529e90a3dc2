/* mixture.c: set probabilities from levels and p_new; stateless draws. */
#include "loop/mixture.h"

#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

/* Tag mixed into every draw's seed so mixture draws never share a stream with
 * another use of the same seed. */
#define MIXTURE_TAG 0x6d69787475726531ull /* "mixture1" */

int ad_mixture_init(ad_mixture *m, const ad_mixture_set *sets, size_t n, double p_new,
                    uint64_t seed, ad_error *err) {
    memset(m, 0, sizeof *m);
    if (n == 0) return ad_error_set(err, "mixture: no data sets");
    if (!(p_new >= 0.0 && p_new <= 1.0))
        return ad_error_set(err, "mixture: p_new = %g is not in [0, 1]", p_new);
    double older_levels = 0;
    size_t drawable = 0;
    for (size_t j = 0; j < n; j++) {
        if (sets[j].n_examples && sets[j].n_levels == 0)
            return ad_error_set(err, "mixture: set %zu has %zu examples but covers no level", j,
                                sets[j].n_examples);
        if (sets[j].n_examples) drawable++;
        if (j + 1 < n && sets[j].n_examples) older_levels += (double)sets[j].n_levels;
    }
    if (!drawable) return ad_error_set(err, "mixture: all %zu data sets are empty", n);

    m->n_examples = malloc(n * sizeof *m->n_examples);
    m->prob = malloc(n * sizeof *m->prob);
    m->cum = malloc(n * sizeof *m->cum);
    if (!m->n_examples || !m->prob || !m->cum) {
        ad_mixture_free(m);
        return ad_error_set(err, "mixture: out of memory for %zu sets", n);
    }
    m->n_sets = n;
    m->seed = seed;
    /* The newest set takes p_new unless it is empty or alone; the older sets
     * share the rest by levels, or nothing when none of them can be drawn. */
    int newest_drawable = sets[n - 1].n_examples > 0;
    double p_newest = !newest_drawable ? 0.0 : older_levels == 0 ? 1.0 : p_new;
    double rest = 1.0 - p_newest;
    double cum = 0;
    size_t last = 0;
    for (size_t j = 0; j < n; j++) {
        m->n_examples[j] = sets[j].n_examples;
        if (j + 1 == n)
            m->prob[j] = p_newest;
        else
            m->prob[j] = sets[j].n_examples ? rest * (double)sets[j].n_levels / older_levels : 0;
        cum += m->prob[j];
        m->cum[j] = cum;
        if (m->prob[j] > 0) last = j;
    }
    /* Rounding must not leave a sliver of [0, 1) past the last drawable set. */
    for (size_t j = last; j < n; j++)
        m->cum[j] = 1.0;
    return AD_OK;
}

void ad_mixture_free(ad_mixture *m) {
    free(m->n_examples);
    free(m->prob);
    free(m->cum);
    memset(m, 0, sizeof *m);
}

ad_mixture_pick ad_mixture_draw(const ad_mixture *m, uint64_t step, uint64_t i) {
    ad_rng rng;
    ad_rng_seed(&rng, ad_seed_derive(m->seed, MIXTURE_TAG, step, i, 0));
    double u = ad_rng_uniform(&rng);
    /* first set whose cumulative probability exceeds u (a zero-probability set
     * repeats its predecessor's cum and so is never the first) */
    size_t lo = 0, hi = m->n_sets - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < m->cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    ad_mixture_pick pick = {lo, (size_t)ad_rng_below(&rng, m->n_examples[lo])};
    return pick;
}
