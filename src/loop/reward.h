/* reward.h: rewards for reinforcement learning on the model's own answers: a
 * number for every completion of one group (the G samples of one prompt,
 * possibly from several lineages), for a group-relative objective (GRPO and
 * its kin: advantage = reward - the group's mean, ...). Rewards are plug-ins
 * (one file each, a registry) and combine into a weighted sum by a spec string
 * such as "majority:1, length:0.1".
 *
 * The candidates are the select stage's ad_candidate (filters.h), restricted
 * to one prompt; what a candidate does not carry (its self-certainty, the
 * task's answer-length bound) comes in ad_reward_ctx beside it.
 *
 * Definitions shared by every reward:
 * - Answer: `answer` when not NULL, else the whole completion, compared as
 *   whole strings (as the votes and pair rules do). A candidate that did not
 *   reach EOS (hit_eos == 0) has no answer: it never equals a mode, and every
 *   agreement reward gives it 0.
 * - Mode: ad_vote_mode's (vote.h): the one answer with the highest count among
 *   the voters' answers (no-answers vote for nobody); when two or more answers
 *   share the highest count, or no voter has an answer, there is no mode.
 * - Greedy: sample 0 of a lineage is its greedy decode (filters.h's
 *   convention).
 * - A reward's value depends on the candidates as a set (not on their order
 *   in the array): out[i] is always candidate i's.
 *
 * The rewards (r_i the reward of candidate i):
 * - verifier (RLVR, the oracle arm; reads `correct`): r_i = 1 when correct ==
 *   1 and the candidate reached EOS, else 0. Every candidate must be verified
 *   (correct 0 or 1): one with correct == -1 is an error. Values {0, 1}.
 * - majority (TTRL, label-free): voters: every candidate of the group. r_i = 1
 *   when candidate i's answer equals the group's mode, else 0; no mode (a tie,
 *   or no answer at all): every r_i = 0. No-EOS candidates get 0 (and do not
 *   vote). A single-sample group that reached EOS is its own mode: r = 1.
 *   Values {0, 1}.
 * - lineages (label-free, across models): for candidate i of lineage L, the
 *   voters are the greedy (sample 0) candidates of the group's lineages other
 *   than L (a lineage with no sample 0 in the group does not vote). r_i = 1
 *   when candidate i's answer equals their mode, else 0 (no other lineage, a
 *   tie, or no answer among them: 0). Leaving L out makes a lineage's reward
 *   agreement with the others, never with itself; note that with 3 lineages
 *   whose other two disagree there is a tie, so 0. Values {0, 1}. When
 *   ctx->others is given (rl rounds, where a group holds one lineage's
 *   samples), the voters are those candidates instead: the other lineages'
 *   answers to the same prompt, not scored themselves.
 * - self_certainty (Intuitor, label-free): r_i = the candidate's mean
 *   self-certainty per generated token, ctx->certainty[i] (nats; see
 *   ad_reward_certainty_mean), or 0 when n_tokens == 0. No-EOS candidates keep
 *   their mean (combine with `length` to penalise them). Needs
 *   ctx->certainty; a NaN or infinite value for a candidate with tokens is an
 *   error. Values >= 0, unbounded.
 * - judge (a learned judge, label-free): r_i = `score` (its probability that
 *   the answer is right), or 0 when the score is NaN (not scored: the judge
 *   had not learned yet, or the output never reached EOS). A score that is
 *   neither NaN nor in [0, 1] is an error. Values [0, 1].
 * - length (shaping): with b_i = ctx->answer_bound[i], the task's answer-length
 *   bound (ad_task_max_answer_len), counted in tokens as the generation budget
 *   counts it (ad_complete_prompts decodes at most b + 1 tokens, EOS
 *   included): r_i = 0 when the candidate reached EOS after at most b_i
 *   answer tokens (n_tokens - 1 <= b_i), else -1: it ran out of budget without
 *   EOS, or (when a caller gave a larger budget) it stopped past the bound.
 *   Why a step and not a ramp (DAPO's soft overlong penalty): the bound is the
 *   longest a well-formed answer can be, and a right answer often sits exactly
 *   at it (reverse-add at n digits: n + 1), so any penalty inside the bound
 *   would punish right answers; only outputs that cannot be well-formed lose.
 *   Needs ctx->answer_bound. Values {-1, 0}.
 * - format (shaping): r_i = 1 when the candidate reached EOS and its answer
 *   is well-formed as far as the loop can tell without the task: not empty and
 *   at most b_i bytes long (the bound's own unit: a well-formed answer never
 *   exceeds it); else 0. Needs ctx->answer_bound. Values {0, 1}.
 *
 * Reward precision (reporting only: it reads the checker's verdicts and must
 * never feed a label-free run): see ad_reward_precision.
 *
 * Not here: computing the figures a reward reads (the sampler's self-certainty,
 * the verifier, the judge), advantages, or the objective that trains on them. */
#ifndef AD_LOOP_REWARD_H
#define AD_LOOP_REWARD_H

#include <stddef.h>

#include "loop/filters.h"
#include "util/error.h"

/* What a reward may read: the candidates of one group and what they do not
 * carry themselves. */
typedef struct ad_reward_ctx {
    const ad_candidate *c;      /* [n] one prompt's candidates, any order */
    size_t n;                   /* G, the group's size */
    const double *certainty;    /* [n] mean self-certainty per token (nats), as
                                 * ad_reward_certainty_mean gives it; NULL: not measured */
    const size_t *answer_bound; /* [n] the task's answer-length bound for the candidate's
                                 * prompt (ad_task_max_answer_len); NULL: not known */
    size_t n_lineages;          /* m >= 1; every candidate's lineage is < m */
    const ad_candidate *others; /* [n_others] the other lineages' answers to the prompt, for
                                 * the lineages reward; NULL: it takes its voters from c */
    size_t n_others;
} ad_reward_ctx;

/* A reward: one file reward_<name>.c and one line in reward.c's table. */
typedef struct ad_reward {
    const char *name;    /* "verifier", "majority", ... (in specs and stored figures: never
                          * rename) */
    const char *summary; /* one line, for docs and --help */
    int uses_verifier;   /* 1: reads the checker's verdicts (the oracle arm); a label-free run
                          * must not use it */
    /* Checks what it reads in ctx, then writes out[i] for every candidate.
     * Called by ad_reward_score after the common checks; call that, not this. */
    int (*score)(const ad_reward_ctx *ctx, double *out, ad_error *err);
} ad_reward;

/* The reward with this name; NULL when unknown or name is NULL. This function
 * can't fail. */
const ad_reward *ad_reward_find(const char *name);

/* The number of rewards, and reward i in table order (NULL when i >= the
 * count). These functions can't fail. */
size_t ad_reward_count(void);
const ad_reward *ad_reward_at(size_t i);

/* The mean self-certainty per generated token, certainty_sum / n_tokens
 * (ad_completion's figures), 0 when n_tokens == 0. This function can't fail. */
double ad_reward_certainty_mean(double certainty_sum, size_t n_tokens);

/* Scores one group: checks the common ground (r and ctx not NULL; c and out
 * not NULL when n > 0; every completion not NULL; every candidate of the same
 * prompt; no two with the same (lineage, sample); n_lineages >= 1 and every
 * lineage < n_lineages), then the reward's own inputs, and writes out[n]. An
 * empty group (n == 0) succeeds with nothing written. On error out holds no
 * meaningful value and err names the reward and the offending candidate. */
int ad_reward_score(const ad_reward *r, const ad_reward_ctx *ctx, double *out, ad_error *err);

/* ---- weighted sums ------------------------------------------------------------
 *
 * Spec syntax: terms separated by commas, each `name` or `name:weight`
 * (weight 1 when omitted), spaces and tabs allowed around names, weights and
 * separators: "majority:1, length:0.1", "verifier", "self_certainty:0.5,
 * format:-0.25". Names come from the registry; a weight is a finite number as
 * strtod reads it (0 and negative weights allowed); a name may appear once.
 * The total of candidate i is sum_k weight_k * r_k(i). */

#define AD_REWARD_MAX_TERMS 16

typedef struct ad_reward_term {
    const ad_reward *reward;
    double weight;
} ad_reward_term;

typedef struct ad_reward_spec {
    size_t n; /* terms, 1..AD_REWARD_MAX_TERMS, in the order written */
    ad_reward_term terms[AD_REWARD_MAX_TERMS];
} ad_reward_spec;

/* Parses text into *spec. Errors name the offending term and what is wrong
 * with it: empty spec or term, unknown name (listing the known ones), a
 * missing, malformed or non-finite weight, a duplicate name, too many terms.
 * On error *spec is unchanged. */
int ad_reward_spec_parse(const char *text, ad_reward_spec *spec, ad_error *err);

/* Writes the spec in canonical form, "name:weight,name:weight" (weights with
 * %.17g, so parsing it back gives the same spec), into buf[cap]. Returns the
 * length it needs (as snprintf); the text is cut when that is >= cap. This
 * function can't fail. */
size_t ad_reward_spec_format(const ad_reward_spec *spec, char *buf, size_t cap);

/* 1 when any term's reward uses the verifier. This function can't fail. */
int ad_reward_spec_uses_verifier(const ad_reward_spec *spec);

/* 1 when a term of the spec is the reward called name. This function can't fail. */
int ad_reward_spec_names(const ad_reward_spec *spec, const char *name);

/* Scores one group with every term (ad_reward_score) and writes the weighted
 * total of candidate i to out[i]; per_reward_out, when not NULL, gets term k's
 * unweighted reward of candidate i at per_reward_out[k * n + i]
 * ([spec->n, n]). On error the outputs hold no meaningful values and err names
 * the term. */
int ad_reward_spec_score(const ad_reward_spec *spec, const ad_reward_ctx *ctx, double *out,
                         double *per_reward_out, ad_error *err);

/* ---- reward precision (reporting only) ----------------------------------------
 *
 * How well a reward agrees with the checker, over any number of candidates
 * (several prompts allowed); only verified candidates (correct 0 or 1) count,
 * the others are skipped. Two figures, for the two kinds of reward:
 * - precision, for {0, 1} rewards (verifier, majority, lineages, format) and
 *   the judge's yes at 0.5: the fraction of correct candidates among the
 *   "rewarded" ones, those with r >= 0.5. It is what label accuracy is to a
 *   filter: how often a reward of 1 is deserved.
 * - pair agreement, for any reward (self_certainty, length, weighted sums
 *   too): over every pair (i, j) of verified candidates of the same prompt
 *   with i correct and j wrong, the fraction with r_i > r_j, counting a tie
 *   r_i == r_j as 1/2 (the within-prompt ROC AUC). A group-relative objective
 *   only sees reward differences inside a group, so this says how often its
 *   push goes the right way: 1 always, 0.5 no better than chance, 0 always
 *   wrong. Prompts whose verified candidates are all right or all wrong give
 *   no pair. */

typedef struct ad_reward_precision {
    size_t verified;       /* candidates with correct 0 or 1 */
    size_t rewarded;       /* verified candidates with r >= 0.5 */
    size_t rewarded_right; /* ... that are correct */
    double precision;      /* rewarded_right / rewarded; NaN when rewarded == 0 */
    size_t pairs;          /* (right, wrong) pairs of one prompt among the verified */
    double pair_agreement; /* concordant pairs + ties / 2, over pairs; NaN when pairs == 0 */
} ad_reward_precision;

/* Computes both figures for rewards r[n] of candidates c[n]. Fails on a NaN
 * reward of a verified candidate, on NULL arrays with n > 0, or when out of
 * memory; on error *out is unchanged. */
int ad_reward_precision_of(const ad_candidate *c, const double *r, size_t n,
                           ad_reward_precision *out, ad_error *err);

#endif
