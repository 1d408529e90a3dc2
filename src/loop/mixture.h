/* mixture.h: the optimize stage's training mixture: which example goes into
 * slot i of training step s.
 *
 * The sets are the base data and every round's self-made set, oldest first;
 * the last one is the newest round's. The newest set is drawn with
 * probability p_new (the reference paper: 0.5); the remaining 1 - p_new is
 * spread over the older sets (base included) in proportion to the number of
 * levels each covers (base data over 16 lengths weighs 16, a one-length round
 * 1). Within a set, examples are drawn uniformly with replacement, so a small
 * set is simply repeated. With a single set (round 0: base only) it gets
 * everything; an empty set is never drawn and its share goes to the others.
 *
 * Every draw is a pure function of (seed, step, i): data-parallel ranks that
 * split a step's slots between them agree on every example without talking,
 * and a resumed run redraws exactly what the interrupted one would have.
 *
 * Not here: the examples themselves (the caller maps (set, example) to data)
 * or the batch size. */
#ifndef AD_LOOP_MIXTURE_H
#define AD_LOOP_MIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct ad_mixture_set {
    size_t n_examples; /* 0: the set is never drawn */
    size_t n_levels;   /* levels it covers (>= 1 when it has examples): its weight */
} ad_mixture_set;

typedef struct ad_mixture {
    size_t n_sets;
    size_t *n_examples; /* [n_sets] */
    double *prob;       /* [n_sets] probability of each set; sums to 1 */
    double *cum;        /* [n_sets] cumulative probabilities; the last drawable one is 1 */
    uint64_t seed;
} ad_mixture;

/* Builds the mixture over sets[0..n) (oldest first, newest last) with the
 * newest set's probability p_new in [0, 1]. seed should already be derived for
 * (run, lineage, round), e.g. ad_seed(run_seed, lineage, round,
 * AD_SEED_TRAIN, 0, 0). Fails when n == 0, every set is empty, a non-empty set
 * covers 0 levels, or p_new is outside [0, 1]; on error *m is left empty. */
int ad_mixture_init(ad_mixture *m, const ad_mixture_set *sets, size_t n, double p_new,
                    uint64_t seed, ad_error *err);

/* Frees the mixture; safe on an empty one. */
void ad_mixture_free(ad_mixture *m);

typedef struct ad_mixture_pick {
    size_t set;     /* index into the sets given to ad_mixture_init */
    size_t example; /* index within that set, < its n_examples */
} ad_mixture_pick;

/* The example for slot i of training step `step`; depends only on (seed,
 * step, i) and the sets. This function can't fail. */
ad_mixture_pick ad_mixture_draw(const ad_mixture *m, uint64_t step, uint64_t i);

/* Split label sets (round.labels = split): lineage l of L reads labels l, l + L,
 * l + 2L, ... of a set of n, so that lineages voting together train on
 * disjoint labels. ad_mixture_split_count is lineage l's share of n (the
 * n_examples to give ad_mixture_init), ad_mixture_split_index the set index of
 * its e-th label. L = 1 is the whole set. */
static inline size_t ad_mixture_split_count(size_t n, size_t l, size_t L) {
    return n > l ? (n - l + L - 1) / L : 0;
}
static inline size_t ad_mixture_split_index(size_t e, size_t l, size_t L) {
    return e * L + l;
}

#endif
