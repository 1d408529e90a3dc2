/* advantage.h: advantage estimators for the GRPO family: from the rewards of
 * groups of completions (the G samples of one prompt each) to one advantage
 * per completion, the number every token of it shares in the grpo objective
 * (loop/objective.h).
 *
 * Groups are consecutive: rewards[0 .. n) hold group 0's group_size[0]
 * rewards, then group 1's, and so on; the sizes add up to n. With mean_g and
 * std_g the mean and standard deviation of a completion's group, G its size:
 *
 *   grpo       (r - mean_g) / (std_g + 1e-4)      GRPO (Shao et al. 2024)
 *   dr_grpo    r - mean_g                         Dr. GRPO (Liu et al. 2025): no std
 *   rloo       r - (sum_g - r) / (G - 1)          leave-one-out (Ahmadian et al. 2024)
 *   reinforce  r - mean of the whole batch        REINFORCE with a batch baseline
 *
 * std_g is the sample standard deviation (Bessel's correction, divisor G - 1),
 * as TRL computes it (torch.std / trl's nanstd), and the 1e-4 added to it is
 * TRL's (GRPOTrainer, scale_rewards = "group"). A group of one has std 0 and
 * gets advantage 0 from grpo, dr_grpo and rloo: it has nothing to compare
 * with. A group whose rewards are all equal gets 0 from those three as well;
 * ad_groups_zero_variance finds such groups (DAPO's dynamic sampling drops
 * them and samples more). Formulas and their reasons: docs/rl.md.
 *
 * Pure functions in double; not here: rewards (the tasks' verifiers, votes),
 * sampling, the objective. */
#ifndef AD_LOOP_ADVANTAGE_H
#define AD_LOOP_ADVANTAGE_H

#include <stddef.h>

#include "util/error.h"

typedef enum ad_adv_estimator {
    AD_ADV_GRPO = 0,
    AD_ADV_DR_GRPO = 1,
    AD_ADV_RLOO = 2,
    AD_ADV_REINFORCE = 3
} ad_adv_estimator;

/* The epsilon grpo adds to a group's standard deviation (TRL's). */
#define AD_ADV_STD_EPS 1e-4

/* The estimators by name: "grpo", "dr_grpo", "rloo", "reinforce".
 * ad_adv_estimator_name gives "?" for an unknown value; parsing an unknown
 * name returns AD_ERR (listing the names) and leaves *out alone;
 * ad_adv_estimator_count is the number of estimators (valid values are
 * 0 .. count-1). */
size_t ad_adv_estimator_count(void);
const char *ad_adv_estimator_name(ad_adv_estimator e);
int ad_adv_estimator_parse(const char *name, ad_adv_estimator *out, ad_error *err);

/* Sets adv[0..n) to estimator e's advantage of each reward. rewards and adv
 * may be the same array. Fails (AD_ERR, adv unchanged) on an unknown
 * estimator, a group of size 0, group sizes that do not add up to n, a
 * missing array, or a reward that is not finite (naming it). n = 0 with
 * n_groups = 0 is fine and writes nothing. */
int ad_advantages(ad_adv_estimator e, const double *rewards, size_t n, const size_t *group_size,
                  size_t n_groups, double *adv, ad_error *err);

/* Sets flat[g] (g < n_groups; flat may be NULL) to 1 when every reward of
 * group g is equal (compared with ==; a group of one is flat), else 0, and
 * *n_flat (may be NULL) to the number of flat groups: the groups that carry no
 * learning signal under grpo, dr_grpo and rloo. Fails as ad_advantages does on
 * bad groups or rewards; nothing is written then. */
int ad_groups_zero_variance(const double *rewards, size_t n, const size_t *group_size,
                            size_t n_groups, unsigned char *flat, size_t *n_flat, ad_error *err);

#endif
