/* test_mixture.c: the training mixture: set proportions (chi-square and 5-sigma
 * bounds per set), uniform repetition within a small set, round 0, a one-level
 * newest set, empty sets, and draws that depend only on (seed, step, i). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "loop/mixture.h"

/* Chi-square critical values at p = 1e-6 for df = 1..9 (so a correct sampler
 * fails about once in a million seeds; the seeds here are fixed). */
static const double chi2_crit_1e6[10] = {0,     23.93, 27.63, 30.66, 33.38,
                                         35.89, 38.26, 40.52, 42.70, 44.81};

/* Draws `steps` x `batch` picks, counts sets, and checks the counts against
 * want[] (probabilities): chi-square over the sets with want > 0, a 5-sigma
 * bound per set, and zero draws from sets with want == 0. Also checks every
 * example index is in range. */
static void check_proportions(const ad_mixture *m, const ad_mixture_set *sets, const double *want,
                              size_t steps, size_t batch) {
    size_t n = m->n_sets;
    size_t *count = calloc(n, sizeof *count);
    for (size_t s = 0; s < steps; s++)
        for (size_t i = 0; i < batch; i++) {
            ad_mixture_pick p = ad_mixture_draw(m, s, i);
            CHECK(p.set < n);
            if (p.set >= n) continue;
            CHECK(p.example < sets[p.set].n_examples);
            count[p.set]++;
        }
    double total = (double)(steps * batch), chi2 = 0;
    size_t df = 0;
    for (size_t j = 0; j < n; j++) {
        CHECK_CLOSE(m->prob[j], want[j], 1e-12, 1e-15);
        if (want[j] == 0) {
            CHECK_MSG(count[j] == 0, "set %zu drawn %zu times with probability 0", j, count[j]);
            continue;
        }
        double e = total * want[j], d = (double)count[j] - e;
        chi2 += d * d / e;
        df++;
        double sigma = sqrt(total * want[j] * (1 - want[j]));
        CHECK_MSG(fabs(d) <= 5 * sigma + 1e-9, "set %zu: %zu draws, expected %.1f", j, count[j], e);
    }
    if (df >= 2) CHECK_MSG(chi2 < chi2_crit_1e6[df - 1], "chi2 = %.2f with df %zu", chi2, df - 1);
    free(count);
}

static void test_paper_weights(void) {
    ad_error err;
    /* base over 16 levels, rounds of 1 and 2 levels, newest of 1 level */
    ad_mixture_set sets[4] = {{1000, 16}, {50, 1}, {10, 2}, {5, 1}};
    ad_mixture m;
    CHECK(ad_mixture_init(&m, sets, 4, 0.5, 7, &err) == AD_OK);
    double want[4] = {0.5 * 16 / 19, 0.5 * 1 / 19, 0.5 * 2 / 19, 0.5};
    size_t steps = test_quick() ? 100 : 400;
    check_proportions(&m, sets, want, steps, 256);
    ad_mixture_free(&m);
    /* another p_new */
    CHECK(ad_mixture_init(&m, sets, 4, 0.8, 8, &err) == AD_OK);
    double want2[4] = {0.2 * 16 / 19, 0.2 * 1 / 19, 0.2 * 2 / 19, 0.8};
    check_proportions(&m, sets, want2, steps, 256);
    ad_mixture_free(&m);
}

static void test_round0_and_round1(void) {
    ad_error err;
    ad_mixture_set base[1] = {{300, 16}};
    ad_mixture m;
    CHECK(ad_mixture_init(&m, base, 1, 0.5, 1, &err) == AD_OK); /* base alone gets everything */
    double all[1] = {1.0};
    check_proportions(&m, base, all, 50, 64);
    ad_mixture_free(&m);
    /* round 1: base + a one-level newest set of 3 examples */
    ad_mixture_set r1[2] = {{300, 16}, {3, 1}};
    CHECK(ad_mixture_init(&m, r1, 2, 0.5, 2, &err) == AD_OK);
    double half[2] = {0.5, 0.5};
    check_proportions(&m, r1, half, 200, 64);
    ad_mixture_free(&m);
}

/* A tiny set is repeated: each of its examples appears equally often. */
static void test_small_set_repeats_uniformly(void) {
    ad_error err;
    ad_mixture_set sets[2] = {{100000, 10}, {5, 1}};
    ad_mixture m;
    CHECK(ad_mixture_init(&m, sets, 2, 0.5, 3, &err) == AD_OK);
    size_t count[5] = {0}, total = 0;
    for (size_t s = 0; s < 200; s++)
        for (size_t i = 0; i < 128; i++) {
            ad_mixture_pick p = ad_mixture_draw(&m, s, i);
            if (p.set != 1) continue;
            count[p.example]++;
            total++;
        }
    double chi2 = 0, e = (double)total / 5;
    for (int j = 0; j < 5; j++)
        chi2 += ((double)count[j] - e) * ((double)count[j] - e) / e;
    CHECK_MSG(chi2 < chi2_crit_1e6[4], "chi2 = %.2f over 5 examples", chi2);
    CHECK(total > 10000);
    ad_mixture_free(&m);
}

static void test_empty_sets(void) {
    ad_error err;
    ad_mixture m;
    /* an empty older set and an empty newest set: the base gets it all */
    ad_mixture_set a[3] = {{100, 4}, {0, 3}, {0, 1}};
    CHECK(ad_mixture_init(&m, a, 3, 0.5, 4, &err) == AD_OK);
    double wa[3] = {1.0, 0, 0};
    check_proportions(&m, a, wa, 20, 64);
    ad_mixture_free(&m);
    /* empty base, non-empty rounds */
    ad_mixture_set b[3] = {{0, 16}, {40, 3}, {8, 1}};
    CHECK(ad_mixture_init(&m, b, 3, 0.25, 5, &err) == AD_OK);
    double wb[3] = {0, 0.75, 0.25};
    check_proportions(&m, b, wb, 100, 64);
    ad_mixture_free(&m);
    /* errors leave the mixture empty */
    ad_mixture_set z[2] = {{0, 1}, {0, 1}};
    CHECK(ad_mixture_init(&m, z, 2, 0.5, 1, &err) == AD_ERR);
    CHECK(m.prob == NULL && m.n_sets == 0);
    CHECK(ad_mixture_init(&m, z, 0, 0.5, 1, &err) == AD_ERR);
    ad_mixture_set nolevels[2] = {{10, 0}, {5, 1}};
    CHECK(ad_mixture_init(&m, nolevels, 2, 0.5, 1, &err) == AD_ERR);
    CHECK(strstr(err.msg, "set 0") != NULL);
    CHECK(ad_mixture_init(&m, a, 3, 1.5, 1, &err) == AD_ERR);
    CHECK(ad_mixture_init(&m, a, 3, NAN, 1, &err) == AD_ERR);
    ad_mixture_free(&m);
}

/* p_new at its bounds: 1 draws only the newest set, 0 never draws it. */
static void test_p_new_bounds(void) {
    ad_error err;
    ad_mixture_set sets[3] = {{100, 8}, {20, 2}, {30, 1}};
    ad_mixture m;
    CHECK(ad_mixture_init(&m, sets, 3, 1.0, 6, &err) == AD_OK);
    double w1[3] = {0, 0, 1.0};
    check_proportions(&m, sets, w1, 20, 64);
    ad_mixture_free(&m);
    CHECK(ad_mixture_init(&m, sets, 3, 0.0, 6, &err) == AD_OK);
    double w0[3] = {0.8, 0.2, 0};
    check_proportions(&m, sets, w0, 100, 64);
    ad_mixture_free(&m);
}

/* Draws are a function of (seed, step, i): another order, another "rank"
 * split, or a rebuilt mixture give the same picks; another seed does not. */
static void test_indexable(void) {
    ad_error err;
    ad_mixture_set sets[3] = {{1000, 16}, {200, 1}, {300, 1}};
    ad_mixture a, b, c;
    CHECK(ad_mixture_init(&a, sets, 3, 0.5, 42, &err) == AD_OK);
    CHECK(ad_mixture_init(&b, sets, 3, 0.5, 42, &err) == AD_OK);
    CHECK(ad_mixture_init(&c, sets, 3, 0.5, 43, &err) == AD_OK);
    enum { B = 64 };
    ad_mixture_pick forward[B], rank0[B], rank1[B];
    for (size_t i = 0; i < B; i++)
        forward[i] = ad_mixture_draw(&a, 17, i);
    /* two ranks, each computing its half in reverse */
    for (size_t k = B / 2; k-- > 0;)
        rank0[k] = ad_mixture_draw(&b, 17, k);
    for (size_t k = B; k-- > B / 2;)
        rank1[k] = ad_mixture_draw(&b, 17, k);
    size_t same_seed = 0, other_seed = 0, other_step = 0;
    for (size_t i = 0; i < B; i++) {
        ad_mixture_pick r = i < B / 2 ? rank0[i] : rank1[i];
        same_seed += r.set == forward[i].set && r.example == forward[i].example;
        ad_mixture_pick o = ad_mixture_draw(&c, 17, i), t = ad_mixture_draw(&a, 18, i);
        other_seed += o.set == forward[i].set && o.example == forward[i].example;
        other_step += t.set == forward[i].set && t.example == forward[i].example;
    }
    CHECK(same_seed == B);
    CHECK(other_seed < B / 4);
    CHECK(other_step < B / 4);
    ad_mixture_free(&a);
    ad_mixture_free(&b);
    ad_mixture_free(&c);
}

/* Split label sets: the lineages' shares cover every label once. */
static void test_split_shares_partition(void) {
    for (size_t n = 0; n < 12; n++)
        for (size_t L = 1; L <= 4; L++) {
            int seen[12] = {0};
            size_t total = 0;
            for (size_t l = 0; l < L; l++) {
                size_t c = ad_mixture_split_count(n, l, L);
                total += c;
                for (size_t e = 0; e < c; e++) {
                    size_t i = ad_mixture_split_index(e, l, L);
                    CHECK(i < n && i % L == l);
                    if (i < n) seen[i]++;
                }
            }
            CHECK(total == n);
            for (size_t i = 0; i < n; i++)
                CHECK(seen[i] == 1);
        }
    CHECK(ad_mixture_split_count(7, 0, 3) == 3 && ad_mixture_split_count(7, 2, 3) == 2);
}

int main(void) {
    RUN(test_paper_weights);
    RUN(test_split_shares_partition);
    RUN(test_round0_and_round1);
    RUN(test_small_set_repeats_uniformly);
    RUN(test_empty_sets);
    RUN(test_p_new_bounds);
    RUN(test_indexable);
    return test_summary();
}
