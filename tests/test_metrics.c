/* test_metrics.c: pass@k against the exact formula computed independently
 * (brute-force enumeration of k-subsets; exact 128-bit binomials; lgamma for
 * large n), maj@k and its tie rule, diversity, the candidate summary, the
 * best-of-n choice, and the B-STaR balance score on hand-made groups. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "loop/metrics.h"

/* Fraction of the k-subsets of {0..n-1} that contain one of the first c
 * (correct) items, by enumerating every subset as a bit mask. */
static double brute_pass_at_k(unsigned n, unsigned c, unsigned k) {
    unsigned long total = 0, hit = 0;
    for (unsigned long mask = 0; mask < (1ul << n); mask++) {
        if ((unsigned)__builtin_popcountl(mask) != k) continue;
        total++;
        hit += (mask & ((1ul << c) - 1)) != 0;
    }
    return (double)hit / (double)total;
}

/* Exact C(n, k) for n <= 100 in 128-bit integers. */
static unsigned __int128 binom128(unsigned n, unsigned k) {
    if (k > n) return 0;
    unsigned __int128 r = 1;
    for (unsigned i = 0; i < k; i++)
        r = r * (n - i) / (i + 1); /* exact at every step */
    return r;
}

static void test_pass_at_k_brute_force(void) {
    ad_error err;
    int bad = 0;
    for (unsigned n = 1; n <= 14; n++)
        for (unsigned c = 0; c <= n; c++)
            for (unsigned k = 1; k <= n; k++) {
                double got;
                CHECK(ad_pass_at_k(n, c, k, &got, &err) == AD_OK);
                double want = brute_pass_at_k(n, c, k);
                if (fabs(got - want) > 1e-12) {
                    if (!bad++) CHECK_CLOSE(got, want, 0, 1e-12);
                }
            }
    CHECK_MSG(bad == 0, "%d mismatches", bad);
}

static void test_pass_at_k_exact_binomials(void) {
    ad_error err;
    int bad = 0;
    for (unsigned n = 1; n <= 100; n += 3)
        for (unsigned c = 0; c <= n; c += 1 + n / 10)
            for (unsigned k = 1; k <= n; k += 1 + n / 7) {
                long double want =
                    1.0L - (long double)binom128(n - c, k) / (long double)binom128(n, k);
                double got;
                CHECK(ad_pass_at_k(n, c, k, &got, &err) == AD_OK);
                if (fabsl((long double)got - want) > 1e-12L) {
                    if (!bad++) CHECK_CLOSE(got, (double)want, 0, 1e-12);
                }
            }
    CHECK_MSG(bad == 0, "%d mismatches", bad);
}

/* Large n, where C(n, k) overflows everything: compare the failure probability
 * with exp(lgamma) differences in long double. */
static void test_pass_at_k_large(void) {
    ad_error err;
    const size_t cases[][3] = {
        {10000, 37, 1000}, {5000, 1, 1}, {5000, 1, 4999}, {100000, 3000, 10}, {2048, 100, 16}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i][0], c = cases[i][1], k = cases[i][2];
        long double lf = lgammal(n - c + 1) - lgammal(k + 1) - lgammal(n - c - k + 1) -
                         (lgammal(n + 1) - lgammal(k + 1) - lgammal(n - k + 1));
        double want_fail = (double)expl(lf), got;
        CHECK(ad_pass_at_k(n, c, k, &got, &err) == AD_OK);
        CHECK_CLOSE(1.0 - got, want_fail, 1e-9, 1e-300);
    }
    double got;
    CHECK(ad_pass_at_k(5000, 1, 1, &got, &err) == AD_OK);
    CHECK_CLOSE(got, 1.0 / 5000.0, 1e-12, 0);                         /* pass@1 = c / n */
    CHECK(ad_pass_at_k(10, 8, 3, &got, &err) == AD_OK && got == 1.0); /* n - c < k */
    CHECK(ad_pass_at_k(10, 0, 3, &got, &err) == AD_OK && got == 0.0);
}

static void test_pass_at_k_errors(void) {
    ad_error err;
    double got = 42;
    CHECK(ad_pass_at_k(5, 1, 0, &got, &err) == AD_ERR);
    CHECK(ad_pass_at_k(5, 1, 6, &got, &err) == AD_ERR);
    CHECK(ad_pass_at_k(5, 6, 1, &got, &err) == AD_ERR);
    CHECK(ad_pass_at_k(0, 0, 1, &got, &err) == AD_ERR);
    CHECK(strstr(err.msg, "n=0") != NULL);
    CHECK(got == 42);
}

static void test_maj_and_diversity(void) {
    ad_error err;
    int ok;
    const char *a[] = {"5", "6", "5", NULL, "7"};
    int v[] = {1, 0, 1, 0, 0};
    CHECK(ad_maj_correct(a, v, 5, &ok, &err) == AD_OK && ok == 1);
    v[0] = 0; /* the mode's first occurrence decides */
    CHECK(ad_maj_correct(a, v, 5, &ok, &err) == AD_OK && ok == 0);
    const char *tie[] = {"5", "6"};
    int tv[] = {1, 0};
    CHECK(ad_maj_correct(tie, tv, 2, &ok, &err) == AD_OK && ok == 0); /* tie: no majority */
    const char *none[] = {NULL, NULL};
    CHECK(ad_maj_correct(none, tv, 2, &ok, &err) == AD_OK && ok == 0);
    double d;
    CHECK(ad_diversity(a, 5, &d, &err) == AD_OK);
    CHECK_CLOSE(d, 3.0 / 5.0, 0, 1e-15);
    CHECK(ad_diversity(none, 2, &d, &err) == AD_OK && d == 0.0);
    CHECK(ad_diversity(NULL, 0, &d, &err) == AD_OK && d == 0.0);
}

static ad_candidate mk(size_t prompt, size_t lineage, size_t sample, const char *text, int correct,
                       int kept) {
    ad_candidate c;
    memset(&c, 0, sizeof c);
    c.prompt = prompt;
    c.lineage = lineage;
    c.sample = sample;
    c.level = ad_level_int(3);
    c.completion = text;
    c.n_tokens = strlen(text) + 1;
    c.hit_eos = 1;
    c.correct = correct;
    c.kept = kept;
    return c;
}

static void test_summarize(void) {
    ad_error err;
    /* prompt 0 lineage 0: R R W W (sample order shuffled in the array)
     * prompt 0 lineage 1: W W W R
     * prompt 1 lineage 0: R W X Y (all distinct, X and Y wrong) */
    ad_candidate c[12] = {
        mk(0, 0, 2, "W", 0, 0), mk(0, 0, 0, "R", 1, 1), mk(0, 0, 1, "R", 1, 1),
        mk(0, 0, 3, "W", 0, 0), mk(0, 1, 0, "W", 0, 1), mk(0, 1, 1, "W", 0, 0),
        mk(0, 1, 2, "W", 0, 0), mk(0, 1, 3, "R", 1, 0), mk(1, 0, 0, "R", 1, 1),
        mk(1, 0, 1, "W", 0, 0), mk(1, 0, 2, "X", 0, 0), mk(1, 0, 3, "Y", 0, 0),
    };
    ad_sample_metrics m;
    CHECK(ad_metrics_summarize(c, 12, 2, &m, &err) == AD_OK);
    /* pass@2: group A n=4 c=2: 1 - C(2,2)/C(4,2) = 5/6; group B c=1: 1 - 3/6 = 1/2;
     * group C c=1: 1/2 */
    CHECK(m.pass_at_k.n == 3);
    CHECK_CLOSE(m.pass_at_k.value, (5.0 / 6.0 + 0.5 + 0.5) / 3.0, 0, 1e-12);
    /* maj@2 on samples 0,1: A: R R -> right; B: W W -> wrong; C: R W tie -> wrong */
    CHECK(m.maj_at_k.n == 3);
    CHECK_CLOSE(m.maj_at_k.value, 1.0 / 3.0, 0, 1e-12);
    /* diversity: A 2/4, B 2/4, C 4/4 */
    CHECK_CLOSE(m.diversity.value, (0.5 + 0.5 + 1.0) / 3.0, 0, 1e-12);
    /* greedy accuracy: sample-0 verdicts R, W, R */
    CHECK(m.accuracy.n == 3);
    CHECK_CLOSE(m.accuracy.value, 2.0 / 3.0, 0, 1e-12);
    /* kept: 4 of 12; label accuracy: kept R, R, W, R -> 3/4 */
    CHECK(m.kept_fraction.n == 12);
    CHECK_CLOSE(m.kept_fraction.value, 4.0 / 12.0, 0, 1e-12);
    CHECK(m.label_accuracy.n == 4);
    CHECK_CLOSE(m.label_accuracy.value, 0.75, 0, 1e-12);
    /* k = 0 skips pass/maj; unjudged kept candidates do not count for label accuracy */
    c[4].correct = -1;
    CHECK(ad_metrics_summarize(c, 12, 0, &m, &err) == AD_OK);
    CHECK(m.pass_at_k.n == 0 && isnan(m.pass_at_k.value) && m.maj_at_k.n == 0);
    CHECK(m.label_accuracy.n == 3 && m.label_accuracy.value == 1.0);
    CHECK(m.accuracy.n == 2);
    /* with k > 0 a missing verdict is an error naming the sample */
    CHECK(ad_metrics_summarize(c, 12, 2, &m, &err) == AD_ERR);
    CHECK(strstr(err.msg, "prompt 0 lineage 1 sample 0") != NULL);
    c[4].correct = 0;
    CHECK(ad_metrics_summarize(c, 12, 5, &m, &err) == AD_ERR); /* only 4 samples */
    CHECK(strstr(err.msg, "fewer than k=5") != NULL);
    /* unfinished outputs have no answer for maj@k */
    c[1].hit_eos = c[2].hit_eos = 0;
    CHECK(ad_metrics_summarize(c, 12, 2, &m, &err) == AD_OK);
    CHECK(m.maj_at_k.value == 0.0);
    /* empty input */
    CHECK(ad_metrics_summarize(NULL, 0, 3, &m, &err) == AD_OK);
    CHECK(m.pass_at_k.n == 0 && m.kept_fraction.n == 0 && isnan(m.diversity.value));
}

/* Best-of-n choice: by likelihood the highest sum among finished samples
 * (ties: lowest index; NaN and unfinished never win), by vote the mode's first
 * occurrence (tie or no answer: none, reported as n). */
static void test_best_of_choose(void) {
    ad_error err;
    size_t ch = 99;
    ad_best_of_rule r = AD_BEST_OF_VOTE;
    const char *a[] = {"12", NULL, "13", "12", "14"};
    double lp[] = {-2.0, -0.1, -1.0, -1.0, NAN};
    CHECK(ad_best_of_choose(AD_BEST_OF_LIKELIHOOD, a, lp, 5, &ch, &err) == AD_OK && ch == 2);
    CHECK(ad_best_of_choose(AD_BEST_OF_VOTE, a, lp, 5, &ch, &err) == AD_OK && ch == 0);
    CHECK(ad_best_of_choose(AD_BEST_OF_VOTE, a, NULL, 5, &ch, &err) == AD_OK && ch == 0);
    const char *tie[] = {"1", "2", "2", "1"};
    double flat[] = {-1.0, -1.0, -1.0, -1.0};
    CHECK(ad_best_of_choose(AD_BEST_OF_VOTE, tie, flat, 4, &ch, &err) == AD_OK && ch == 4);
    CHECK(ad_best_of_choose(AD_BEST_OF_LIKELIHOOD, tie, flat, 4, &ch, &err) == AD_OK && ch == 0);
    const char *none[] = {NULL, NULL};
    double hi[] = {0.0, 0.0};
    CHECK(ad_best_of_choose(AD_BEST_OF_LIKELIHOOD, none, hi, 2, &ch, &err) == AD_OK && ch == 2);
    CHECK(ad_best_of_choose(AD_BEST_OF_VOTE, none, hi, 2, &ch, &err) == AD_OK && ch == 2);
    CHECK(ad_best_of_choose(AD_BEST_OF_LIKELIHOOD, NULL, NULL, 0, &ch, &err) == AD_OK && ch == 0);
    CHECK(ad_best_of_choose(AD_BEST_OF_LIKELIHOOD, a, NULL, 5, &ch, &err) == AD_ERR);
    CHECK(ad_best_of_choose((ad_best_of_rule)7, a, lp, 5, &ch, &err) == AD_ERR);
    /* by judge: the highest P(yes) among finished samples, as likelihood ranks log-probs */
    double py[] = {0.2, 0.99, 0.7, 0.7, NAN};
    CHECK(ad_best_of_choose(AD_BEST_OF_JUDGE, a, py, 5, &ch, &err) == AD_OK && ch == 2);
    CHECK(ad_best_of_choose(AD_BEST_OF_JUDGE, none, hi, 2, &ch, &err) == AD_OK && ch == 2);
    CHECK(ad_best_of_choose(AD_BEST_OF_JUDGE, a, NULL, 5, &ch, &err) == AD_ERR &&
          strstr(err.msg, "judge needs a value per sample"));
    CHECK(ad_best_of_rule_parse("judge", &r, &err) == AD_OK && r == AD_BEST_OF_JUDGE);
    CHECK(ad_best_of_rule_parse("likelihood", &r, &err) == AD_OK && r == AD_BEST_OF_LIKELIHOOD);
    CHECK(ad_best_of_rule_parse("vote", &r, &err) == AD_OK && r == AD_BEST_OF_VOTE);
    CHECK(ad_best_of_rule_parse("nope", &r, &err) == AD_ERR && strstr(err.msg, "'nope'"));
    CHECK(strcmp(ad_best_of_rule_name(AD_BEST_OF_VOTE), "vote") == 0);
    CHECK(strcmp(ad_best_of_rule_name((ad_best_of_rule)7), "?") == 0);
}

/* bs = min(n'/n*, 1) * n'/n, worked by hand. */
static void test_bstar_balance(void) {
    ad_error err;
    double b = -1;
    CHECK(ad_bstar_balance(0, 0, 8, &b, &err) == AD_OK && b == 0.0); /* nothing selected */
    CHECK(ad_bstar_balance(0, 5, 8, &b, &err) == AD_OK && b == 0.0); /* nothing right */
    CHECK(ad_bstar_balance(2, 4, 8, &b, &err) == AD_OK);
    CHECK_CLOSE(b, 2.0 / 8.0 * 2.0 / 4.0, 0, 1e-15);
    CHECK(ad_bstar_balance(8, 8, 8, &b, &err) == AD_OK && b == 1.0);
    CHECK(ad_bstar_balance(10, 16, 8, &b, &err) == AD_OK); /* past the target: precision only */
    CHECK_CLOSE(b, 10.0 / 16.0, 0, 1e-15);
    CHECK(ad_bstar_balance(3, 3, 1, &b, &err) == AD_OK && b == 1.0);
    CHECK(ad_bstar_balance(1, 1, 0, &b, &err) == AD_ERR && strstr(err.msg, "n*=0"));
    CHECK(ad_bstar_balance(3, 2, 8, &b, &err) == AD_ERR && strstr(err.msg, "n'=3"));
}

/* The summary over a round: groups by prompt (lineages pooled), counts
 * distinct correct completions among the kept for n', all kept for n, and
 * all candidates for distinct_correct. */
static void test_balance_summarize(void) {
    ad_error err;
    /* prompt 0: kept R, R (a duplicate: unique was off), R2, W; R3 right but dropped
     * prompt 1: two lineages keep the same right A
     * prompt 2: everything dropped (B right, C wrong)
     * prompt 3: only a wrong W kept */
    ad_candidate c[11] = {
        mk(0, 0, 0, "R", 1, 1),  mk(0, 0, 1, "R", 1, 1), mk(2, 0, 0, "B", 1, 0),
        mk(0, 0, 2, "R2", 1, 1), mk(1, 1, 0, "A", 1, 1), mk(0, 0, 3, "W", 0, 1),
        mk(0, 0, 4, "R3", 1, 0), mk(1, 0, 0, "A", 1, 1), mk(2, 0, 1, "C", 0, 0),
        mk(3, 0, 0, "W", 0, 1),  mk(3, 0, 1, "W", 0, 0),
    };
    ad_balance_metrics m;
    CHECK(ad_balance_summarize(c, 11, 2, &m, &err) == AD_OK);
    /* bs: p0 min(2/2, 1) * 2/4 = 0.5; p1 min(1/2, 1) * 1/2 = 0.25; p2 0 (n = 0); p3 0 */
    CHECK(m.target == 2 && m.bstar_balance.n == 4);
    CHECK_CLOSE(m.bstar_balance.value, (0.5 + 0.25) / 4.0, 0, 1e-15);
    CHECK(m.bstar_balance_selected.n == 3); /* p2 kept nothing */
    CHECK_CLOSE(m.bstar_balance_selected.value, (0.5 + 0.25) / 3.0, 0, 1e-15);
    /* distinct correct among all: p0 R R2 R3, p1 A, p2 B, p3 none */
    CHECK(m.distinct_correct.n == 4);
    CHECK_CLOSE(m.distinct_correct.value, (3.0 + 1.0 + 1.0 + 0.0) / 4.0, 0, 1e-15);
    /* the paper's n* = 8 */
    CHECK(ad_balance_summarize(c, 11, 8, &m, &err) == AD_OK);
    CHECK_CLOSE(m.bstar_balance.value, (2.0 / 8.0 * 0.5 + 1.0 / 8.0 * 0.5) / 4.0, 0, 1e-15);
    /* the order of the array does not matter */
    ad_candidate r[11];
    for (size_t i = 0; i < 11; i++)
        r[i] = c[10 - i];
    ad_balance_metrics mr;
    CHECK(ad_balance_summarize(r, 11, 8, &mr, &err) == AD_OK);
    CHECK(mr.bstar_balance.value == m.bstar_balance.value &&
          mr.distinct_correct.value == m.distinct_correct.value);
    /* every candidate needs a verdict; n* >= 1 */
    c[8].correct = -1;
    CHECK(ad_balance_summarize(c, 11, 8, &m, &err) == AD_ERR);
    CHECK(strstr(err.msg, "prompt 2 lineage 0 sample 1") != NULL);
    c[8].correct = 0;
    CHECK(ad_balance_summarize(c, 11, 0, &m, &err) == AD_ERR && strstr(err.msg, "n*"));
    /* empty input */
    CHECK(ad_balance_summarize(NULL, 0, 8, &m, &err) == AD_OK);
    CHECK(m.bstar_balance.n == 0 && isnan(m.bstar_balance.value));
    CHECK(m.distinct_correct.n == 0 && isnan(m.distinct_correct.value));
}

/* The divergence test needs both the ratio and an absolute rise. */
static void test_loss_diverged(void) {
    CHECK(ad_loss_diverged(0.5, 1.0, 1.5));            /* doubled, +0.5 */
    CHECK(ad_loss_diverged(2.7, 40.4, 1.5));           /* a base at lr 1 */
    CHECK(ad_loss_diverged(0.5, NAN, 1.5));            /* not finite */
    CHECK(ad_loss_diverged(0.5, INFINITY, 1.5));       /* not finite */
    CHECK(!ad_loss_diverged(0.5, 0.7, 1.5));           /* +40%: below the ratio */
    CHECK(!ad_loss_diverged(5.136e-6, 1.252e-5, 1.5)); /* 2.4x at the loss floor */
    CHECK(!ad_loss_diverged(0.02, 0.06, 1.5));         /* 3x, but only 0.04 nats */
    CHECK(ad_loss_diverged(0.02, 0.08, 1.5));          /* 4x and 0.06 nats */
    CHECK(!ad_loss_diverged(0.5, 100.0, 0));           /* the rule off */
    CHECK(!ad_loss_diverged(0.0, 1.0, 1.5));           /* no positive start */
}

int main(void) {
    RUN(test_pass_at_k_brute_force);
    RUN(test_pass_at_k_exact_binomials);
    RUN(test_pass_at_k_large);
    RUN(test_pass_at_k_errors);
    RUN(test_maj_and_diversity);
    RUN(test_summarize);
    RUN(test_best_of_choose);
    RUN(test_bstar_balance);
    RUN(test_balance_summarize);
    RUN(test_loss_diverged);
    return test_summary();
}
