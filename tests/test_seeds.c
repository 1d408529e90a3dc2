/* test_seeds.c: the one seed rule (rng.h): ad_seed is a pure function of its
 * tuple, every slot matters, and the streams of a run never collide. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/rng.h"

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_pure_and_slot_sensitive(void) {
    uint64_t s = ad_seed(7, 1, 2, AD_SEED_ACQUIRE, 3, 4);
    CHECK(s == ad_seed(7, 1, 2, AD_SEED_ACQUIRE, 3, 4));
    /* the same numbers in other slots name other streams */
    CHECK(s != ad_seed(7, 2, 1, AD_SEED_ACQUIRE, 3, 4));
    CHECK(s != ad_seed(7, 1, 2, AD_SEED_ACQUIRE, 4, 3));
    CHECK(s != ad_seed(7, 1, 3, AD_SEED_ACQUIRE, 2, 4));
    CHECK(s != ad_seed(8, 1, 2, AD_SEED_ACQUIRE, 3, 4));
    CHECK(s != ad_seed(7, 1, 2, AD_SEED_SAMPLE, 3, 4));
    CHECK(s != ad_seed(7, AD_SEED_ANY, 2, AD_SEED_ACQUIRE, 3, 4));
    CHECK(ad_seed_level_key(3, -1) != ad_seed_level_key(-1, 3));
    CHECK(ad_seed_level_key(0, 0) != ad_seed_level_key(0, -1));
}

/* Every stream a run of 3 lineages and 16 rounds draws (each stage, with the
 * shared "any" slots the loop uses, 12 level keys, 64 items each) gets its
 * own seed, and so does the first number of each stream's generator. */
static void test_run_streams_do_not_collide(void) {
    const ad_seed_stage stages[] = {AD_SEED_INIT,    AD_SEED_TRAIN,      AD_SEED_ACQUIRE,
                                    AD_SEED_SAMPLE,  AD_SEED_EVAL,       AD_SEED_BASE,
                                    AD_SEED_PROBE,   AD_SEED_PAIRS,      AD_SEED_JUDGE,
                                    AD_SEED_ROLLOUT, AD_SEED_TEMPERATURE};
    const size_t n_stage = sizeof stages / sizeof stages[0], L = 4, R = 17, K = 12, I = 64;
    size_t n = n_stage * L * R * K * I, at = 0;
    uint64_t *seeds = malloc(n * sizeof *seeds), *firsts = malloc(n * sizeof *firsts);
    CHECK(seeds && firsts);
    if (!seeds || !firsts) return;
    for (size_t s = 0; s < n_stage; s++)
        for (size_t l = 0; l < L; l++) /* lineage L-1 stands for AD_SEED_ANY */
            for (size_t r = 0; r < R; r++)
                for (size_t k = 0; k < K; k++)
                    for (size_t i = 0; i < I; i++) {
                        uint64_t lin = l + 1 == L ? AD_SEED_ANY : l;
                        uint64_t key = ad_seed_level_key((int32_t)k + 1, k % 2 ? 3 : -1);
                        seeds[at] = ad_seed(42, lin, r, stages[s], key, i);
                        ad_rng rng;
                        ad_rng_seed(&rng, seeds[at]);
                        firsts[at++] = ad_rng_u64(&rng);
                    }
    qsort(seeds, n, sizeof *seeds, cmp_u64);
    qsort(firsts, n, sizeof *firsts, cmp_u64);
    size_t dup_seeds = 0, dup_firsts = 0;
    for (size_t i = 1; i < n; i++) {
        dup_seeds += seeds[i] == seeds[i - 1];
        dup_firsts += firsts[i] == firsts[i - 1];
    }
    CHECK_MSG(dup_seeds == 0, "%zu colliding seeds among %zu streams", dup_seeds, n);
    CHECK_MSG(dup_firsts == 0, "%zu colliding first draws among %zu streams", dup_firsts, n);
    free(seeds);
    free(firsts);
}

int main(void) {
    RUN(test_pure_and_slot_sensitive);
    RUN(test_run_streams_do_not_collide);
    return test_summary();
}
