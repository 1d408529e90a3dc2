/* reward_internal.h: what the rewards share: the registry entries, the answer
 * a vote compares, the vote over a subset of the group, and the check of the
 * per-candidate arrays some rewards need.
 *
 * Internal to the rewards: callers use reward.h. A reward is one file
 * reward_<name>.c that defines `const ad_reward ad_reward_<name>`, listed in
 * reward.c's table. */
#ifndef AD_LOOP_REWARD_INTERNAL_H
#define AD_LOOP_REWARD_INTERNAL_H

#include <stddef.h>

#include "loop/reward.h"

/* The rewards, one file each, listed in reward.c. */
extern const ad_reward ad_reward_verifier;
extern const ad_reward ad_reward_majority;
extern const ad_reward ad_reward_lineages;
extern const ad_reward ad_reward_self_certainty;
extern const ad_reward ad_reward_judge;
extern const ad_reward ad_reward_length;
extern const ad_reward ad_reward_format;

/* The candidate's answer (`answer`, else the completion), or NULL when it did
 * not reach EOS. This function can't fail. */
const char *ad_reward_answer(const ad_candidate *c);

/* 1 when a is an answer (not NULL) equal to mode (not NULL). This function
 * can't fail. */
int ad_reward_matches(const char *a, const char *mode);

/* The mode (reward.h) of the answers of the candidates i with voter[i] != 0;
 * *mode is NULL when there is none. Fails only when out of memory. */
int ad_reward_vote(const ad_reward_ctx *ctx, const unsigned char *voter, const char **mode,
                   ad_error *err);

/* Checks that ctx->answer_bound is given; `reward` names the reward in the
 * message. */
int ad_reward_need_bound(const ad_reward_ctx *ctx, const char *reward, ad_error *err);

#endif
