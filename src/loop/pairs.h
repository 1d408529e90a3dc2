/* pairs.h: preference pairs from the model's own answers: for each prompt, a
 * (chosen, rejected) pair of its candidates, made by one pair rule, for a
 * preference objective (DPO and its variants) in the optimize stage.
 *
 * The candidates are the select stage's flat array (filters.h): for each
 * prompt, for each of m lineages, k samples (sample 0 greedy). A rule sees the
 * whole array, but every pair is made within one prompt; the filters' kept
 * flags are not read (a pair rule is its own selection).
 *
 * Definitions shared by every rule:
 * - Group: one prompt, every lineage and sample. Inside a group candidates are
 *   taken in (lineage, sample) order, the "canonical order"; ad_pairs_make
 *   requires (prompt, lineage, sample) to be unique, so the order is total and
 *   the pairs do not depend on how the array is ordered.
 * - Answer: `answer` when not NULL, else the whole completion, compared as
 *   whole strings (as the vote filters do). A candidate that did not reach EOS
 *   (hit_eos == 0) has no answer; all such candidates of a group form one
 *   "no-answer" class, which can be rejected but is never chosen.
 * - Class: the candidates of a group (or of a rule's pool of them) that give
 *   one answer. Its support is how many of the pool's candidates give it. Its
 *   representative, the candidate that goes into a pair, is its first member in
 *   canonical order (lowest (lineage, sample)), except in the scored rules
 *   (confidence, judge), where it is the member with the highest score (ties:
 *   lowest (lineage, sample)), and the class's score is that member's.
 * - One chosen per prompt: each rule picks at most one chosen class (never the
 *   no-answer class; its representative reached EOS) and ranks the other
 *   classes as rejected, in a rule-specific order, "most surely worse first".
 *   The prompt's pairs are the chosen against the rejected classes in that
 *   order, at most per_prompt of them. A rejected class always has an answer
 *   different from the chosen's.
 * - Texts: a pair whose rejected completion is identical to the chosen's is
 *   skipped, and so is one that repeats an earlier pair of the prompt (same
 *   chosen and rejected completions); the next rejected class takes its place.
 * - Output: pairs ordered by prompt, then by rank within the prompt (the order
 *   above). A prompt can give no pair (no chosen, or nothing to reject).
 *
 * The rules (each names its pool, chosen, rejected order and threshold):
 * - verifier (the oracle arm; reads `correct`, every candidate must be
 *   verified: 0 or 1). Chosen: among the right candidates that reached EOS
 *   (correct == 1), the class with the highest support (the most common right
 *   answer), ties by lowest representative (lineage, sample). Rejected: the
 *   classes of the wrong candidates (correct == 0, the no-answer class
 *   included), least support first, ties by lowest representative.
 * - vote (self-consistency, label-free). The mode of the answers of all the
 *   group's candidates (ad_vote_mode: no-answer candidates count for nobody;
 *   ties: no mode, no pair) is chosen when count / group size >= min_share,
 *   the group size counting every candidate, no-answer ones included (1e-9
 *   slack, so 0.6 of 5 is 3). Rejected: every other class (the minority answers
 *   and the no-answer class), least support first (the least consistent answer,
 *   as in self-consistency preference optimization), ties by lowest
 *   representative.
 * - lineages (agreement across m independently seeded models, label-free).
 *   Voters: each lineage's greedy (sample 0) candidate; a lineage without one,
 *   or whose greedy output has no answer, votes for nobody. The mode (ties: no
 *   mode) is the agreed answer when at least min_agree of the m lineages gave
 *   it; its representative is the greedy candidate of the lowest agreeing
 *   lineage. A lineage dissents when its greedy answer is not the agreed one
 *   (a missing or answerless greedy output dissents). Pool of the rejected:
 *   every candidate (any sample) of a dissenting lineage whose answer is not
 *   the agreed one; agreeing lineages' samples are trusted and never rejected
 *   (so a unanimous prompt gives no pair). Rejected order: least support in
 *   that pool first, ties by lowest representative. Requires 1 <= min_agree <=
 *   n_lineages and every lineage < n_lineages.
 * - confidence (the model's likelihood, label-free). Score of a candidate:
 *   ad_candidate_mean_logprob (nats per token, EOS included; -inf when it has
 *   no tokens). Chosen: the answer class with the highest score. Rejected:
 *   every other class (the no-answer class included, scored by its most
 *   confident member), lowest score first, kept only when chosen score -
 *   rejected score >= min_gap and the chosen's score is strictly higher (equal
 *   scores are never a preference, whatever min_gap). Ties in the ranking
 *   (equal scores): lowest representative (lineage, sample) first, for the
 *   chosen and for the rejected order.
 * - judge (a learned judge's `score`, a probability in [0, 1]). As confidence,
 *   with `score` in place of the mean log-prob; candidates whose score is NaN
 *   (not scored) are left out entirely (neither chosen nor rejected). A score
 *   that is not NaN and not in [0, 1] is an error.
 *
 * Pair accuracy (reporting only) needs the verifier's verdicts and must never
 * feed a label-free selection.
 *
 * Not here: computing log-probs or judge scores, the verifier, the objective
 * that trains on the pairs, or storing them. */
#ifndef AD_LOOP_PAIRS_H
#define AD_LOOP_PAIRS_H

#include <stddef.h>

#include "loop/filters.h"
#include "util/error.h"
#include "util/vec.h"

typedef struct ad_pair {
    size_t chosen, rejected; /* indices into the candidate array */
} ad_pair;

typedef struct ad_pair_params {
    size_t per_prompt; /* at most this many pairs per prompt (>= 1) */
    size_t n_lineages; /* m, for the lineages rule */
    size_t min_agree;  /* lineages rule: lineages that must agree on the chosen answer */
    double min_share;  /* vote rule: share of all of the prompt's candidates the majority
                        * answer needs, in (0, 1] */
    double min_gap;    /* confidence and judge rules: the chosen's score must beat the
                        * rejected's by at least this (>= 0) */
} ad_pair_params;

/* One pair per prompt; m 5 with 4 to agree and a share of 0.5 (the filters'
 * defaults); gap 0 (any strictly higher score). This function can't fail. */
ad_pair_params ad_pair_default_params(void);

/* A pair rule: one file pairs_<name>.c and one line in pairs.c's table. */
typedef struct ad_pair_rule {
    const char *name;    /* "verifier", "vote", "lineages", "confidence", "judge" */
    const char *summary; /* one line for docs/--help */
    int uses_verifier;   /* 1: needs the task's checker (the oracle arm); a label-free run
                          * must not use it */
    /* Checks the parameters the rule reads (and the candidate fields it reads),
     * then appends the pairs to `out` (of ad_pair) in output order. Called by
     * ad_pairs_make after the common checks; call that, not this. */
    int (*make)(const ad_candidate *c, size_t n, const ad_pair_params *p, ad_vec *out,
                ad_error *err);
} ad_pair_rule;

/* The rule with this name; NULL when unknown. This function can't fail. */
const ad_pair_rule *ad_pair_rule_find(const char *name);

/* The number of rules, and rule i (i < count; NULL past the end), in table
 * order. These functions can't fail. */
size_t ad_pair_rule_count(void);
const ad_pair_rule *ad_pair_rule_at(size_t i);

/* Checks the params and candidates (rule not NULL, per_prompt >= 1, every
 * completion not NULL, no two candidates with the same (prompt, lineage,
 * sample), then the rule's own parameters), runs the rule, and returns the
 * pairs ordered by (prompt, then rank within prompt) in *out (the caller frees
 * it with free(); NULL when there are none) and their number in *n_out. On
 * error nothing is returned (*out NULL, *n_out 0) and err says why. */
int ad_pairs_make(const ad_pair_rule *rule, const ad_candidate *c, size_t n,
                  const ad_pair_params *p, ad_pair **out, size_t *n_out, ad_error *err);

/* Pair accuracy (reporting only, never used by a label-free selection):
 * fraction of pairs whose chosen is correct (correct == 1) and rejected is
 * wrong (correct == 0); NaN when n == 0 or when any candidate of a pair is
 * unverified (correct not 0 or 1). This function can't fail. */
double ad_pairs_accuracy(const ad_candidate *c, const ad_pair *pairs, size_t n);

#endif
