/* advantage.c: the advantage estimators of advantage.h (grpo, dr_grpo, rloo,
 * reinforce) and the zero-variance check of DAPO's dynamic sampling.
 * Not here: rewards, sampling, the objective (objective_grpo.c). */
#include "loop/advantage.h"

#include <math.h>
#include <string.h>

static const char *const names[] = {"grpo", "dr_grpo", "rloo", "reinforce"};

#define N_ESTIMATORS (sizeof names / sizeof names[0])

size_t ad_adv_estimator_count(void) {
    return N_ESTIMATORS;
}

const char *ad_adv_estimator_name(ad_adv_estimator e) {
    return (size_t)e < N_ESTIMATORS ? names[e] : "?";
}

int ad_adv_estimator_parse(const char *name, ad_adv_estimator *out, ad_error *err) {
    for (size_t i = 0; name && i < N_ESTIMATORS; i++)
        if (strcmp(names[i], name) == 0) {
            *out = (ad_adv_estimator)i;
            return AD_OK;
        }
    return ad_error_set(err, "unknown advantage estimator '%s' (grpo, dr_grpo, rloo or reinforce)",
                        name ? name : "(null)");
}

/* The groups tile rewards[0..n) and every reward is finite. */
static int check_groups(const double *rewards, size_t n, const size_t *group_size, size_t n_groups,
                        ad_error *err) {
    if (n && !rewards) return ad_error_set(err, "advantages: %zu rewards but no array", n);
    if (n_groups && !group_size)
        return ad_error_set(err, "advantages: %zu groups but no sizes", n_groups);
    size_t total = 0;
    for (size_t g = 0; g < n_groups; g++) {
        if (group_size[g] == 0) return ad_error_set(err, "advantages: group %zu is empty", g);
        if (group_size[g] > n - total)
            return ad_error_set(err, "advantages: the groups hold more than the %zu rewards", n);
        total += group_size[g];
    }
    if (total != n)
        return ad_error_set(err, "advantages: the groups hold %zu of the %zu rewards", total, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(rewards[i]))
            return ad_error_set(err, "advantages: reward %zu is %g", i, rewards[i]);
    return AD_OK;
}

static double sum_of(const double *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += r[i];
    return s;
}

static double mean_of(const double *r, size_t n) {
    return sum_of(r, n) / (double)n;
}

/* All of r[0..n) are equal (n >= 1). */
static int all_equal(const double *r, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (r[i] != r[0]) return 0;
    return 1;
}

/* One group of G >= 1 rewards r into a (r and a may alias). A group of one
 * or of equal rewards gets exact zeros (its mean could round away from the
 * common value). */
static void group_advantages(ad_adv_estimator e, const double *r, size_t G, double *a) {
    if (all_equal(r, G)) { /* nothing to compare with */
        for (size_t i = 0; i < G; i++)
            a[i] = 0.0;
        return;
    }
    double sum = sum_of(r, G), mean = sum / (double)G;
    if (e == AD_ADV_RLOO) {
        for (size_t i = 0; i < G; i++) /* r - mean of the other G - 1 */
            a[i] = r[i] - (sum - r[i]) / (double)(G - 1);
        return;
    }
    double denom = 1.0;
    if (e == AD_ADV_GRPO) {
        double ss = 0;
        for (size_t i = 0; i < G; i++)
            ss += (r[i] - mean) * (r[i] - mean);
        denom = sqrt(ss / (double)(G - 1)) + AD_ADV_STD_EPS; /* sample std, as TRL */
    }
    for (size_t i = 0; i < G; i++)
        a[i] = (r[i] - mean) / denom;
}

int ad_advantages(ad_adv_estimator e, const double *rewards, size_t n, const size_t *group_size,
                  size_t n_groups, double *adv, ad_error *err) {
    if ((size_t)e >= N_ESTIMATORS)
        return ad_error_set(err, "advantages: unknown estimator %d", (int)e);
    if (check_groups(rewards, n, group_size, n_groups, err) != AD_OK) return AD_ERR;
    if (n && !adv) return ad_error_set(err, "advantages: no room for %zu advantages", n);
    if (e == AD_ADV_REINFORCE) {
        int flat = n == 0 || all_equal(rewards, n);
        double mean = flat ? 0.0 : mean_of(rewards, n);
        for (size_t i = 0; i < n; i++)
            adv[i] = flat ? 0.0 : rewards[i] - mean;
        return AD_OK;
    }
    for (size_t g = 0, at = 0; g < n_groups; at += group_size[g], g++)
        group_advantages(e, rewards + at, group_size[g], adv + at);
    return AD_OK;
}

int ad_groups_zero_variance(const double *rewards, size_t n, const size_t *group_size,
                            size_t n_groups, unsigned char *flat, size_t *n_flat, ad_error *err) {
    if (check_groups(rewards, n, group_size, n_groups, err) != AD_OK) return AD_ERR;
    size_t count = 0;
    for (size_t g = 0, at = 0; g < n_groups; at += group_size[g], g++) {
        int same = all_equal(rewards + at, group_size[g]);
        if (flat) flat[g] = (unsigned char)same;
        count += (size_t)same;
    }
    if (n_flat) *n_flat = count;
    return AD_OK;
}
