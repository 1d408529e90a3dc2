/* pairs_internal.h: what the pair rules share: the per-prompt driver (grouping,
 * the per_prompt cap, skipping identical and repeated texts), answer classes,
 * the two rankings (by support, by score) and the vote.
 *
 * Internal to the pair rules: callers use pairs.h. A rule is one file that
 * checks its parameters and hands a per-prompt pick function to
 * ad_pairs_by_prompt; the pick names the chosen and ranks the rejected, the
 * driver turns that into pairs. */
#ifndef AD_LOOP_PAIRS_INTERNAL_H
#define AD_LOOP_PAIRS_INTERNAL_H

#include <stddef.h>

#include "loop/pairs.h"
#include "loop/vote.h"

/* The rules, one file each, listed in pairs.c. */
extern const ad_pair_rule ad_pair_rule_verifier;
extern const ad_pair_rule ad_pair_rule_vote;
extern const ad_pair_rule ad_pair_rule_lineages;
extern const ad_pair_rule ad_pair_rule_confidence;
extern const ad_pair_rule ad_pair_rule_judge;

/* Slack for a share against a count, so that 0.6 * 5 counts as 3. */
#define AD_PAIR_SHARE_SLACK 1e-9

/* One prompt's candidates. Positions 0..n-1 are the canonical (lineage,
 * sample) order; idx maps a position to the candidate's index in c. */
typedef struct ad_pair_group {
    const ad_candidate *c; /* the whole candidate array */
    const size_t *idx;     /* n indices into c, in canonical order */
    size_t n;
    unsigned char *pool; /* n flags, all 0 when the pick starts: the rule's pool */
} ad_pair_group;

/* What a rule decides for one prompt: the chosen candidate, and the rejected
 * candidates in rank order (best rejected first). Positions are group
 * positions. The driver empties it before each prompt. */
typedef struct ad_pair_pick {
    int has_chosen;
    size_t chosen;
    ad_vec rejected; /* of size_t */
} ad_pair_pick;

typedef int (*ad_pair_pick_fn)(const ad_pair_group *g, const ad_pair_params *p, ad_pair_pick *pick,
                               ad_error *err);

/* The candidate at group position pos. This function can't fail. */
static inline const ad_candidate *ad_pair_at(const ad_pair_group *g, size_t pos) {
    return &g->c[g->idx[pos]];
}

/* The candidate's answer (`answer`, else the completion), or NULL when it did
 * not reach EOS. This function can't fail. */
const char *ad_pair_answer(const ad_candidate *c);

/* 1 when both are the no-answer (NULL) or both are equal strings. */
int ad_pair_same_answer(const char *a, const char *b);

/* The driver: checks the candidates (completion not NULL; (prompt, lineage,
 * sample) unique), groups them by prompt in canonical order, calls pick for
 * each prompt in ascending prompt order, and appends the prompt's pairs to out
 * (of ad_pair): the chosen (skipped whole unless it reached EOS) against each
 * rejected in rank order, skipping a rejected whose completion equals the
 * chosen's or an earlier rejected's of the prompt, until per_prompt pairs. On
 * error out may hold a partial result (ad_pairs_make discards it). */
int ad_pairs_by_prompt(const ad_candidate *c, size_t n, const ad_pair_params *p,
                       ad_pair_pick_fn pick, ad_vec *out, ad_error *err);

/* An answer class within a group: see pairs.h. */
typedef struct ad_pair_class {
    const char *answer; /* NULL: the no-answer class */
    size_t rep;         /* group position of the representative */
    size_t support;     /* pool members giving this answer */
    double score;       /* the representative's score (scored classes only) */
} ad_pair_class;

/* The classes of the pool (g->pool[pos] != 0) into `classes` (of
 * ad_pair_class, emptied first), in the canonical order of their first
 * members. With score NULL the representative is the first member; otherwise
 * the member with the highest score(candidate), ties by the earlier position.
 * Fails only when out of memory. */
int ad_pair_classes(const ad_pair_group *g, double (*score)(const ad_candidate *), ad_vec *classes,
                    ad_error *err);

/* Ranks the rejected by support: the classes of the pool minus the candidates
 * whose answer is chosen_answer, least support first, ties by the lower
 * representative position; appends their representatives to pick->rejected.
 * Fails only when out of memory. */
int ad_pair_reject_by_support(const ad_pair_group *g, const char *chosen_answer, ad_pair_pick *pick,
                              ad_error *err);

/* The scored pick (confidence, judge): pool = the candidates whose score is
 * not NaN; chosen = the answer class with the highest score (ties: lower
 * representative position); rejected = every other class with a strictly lower
 * score and a gap >= p->min_gap, lowest score first (ties: lower
 * representative position). Fails only when out of memory. */
int ad_pair_pick_by_score(const ad_pair_group *g, const ad_pair_params *p,
                          double (*score)(const ad_candidate *), ad_pair_pick *pick, ad_error *err);

/* The vote of the group (greedy_only: only sample-0 candidates vote), as
 * ad_vote_mode counts it; *mode is the modal answer when v->unique, else NULL,
 * and v->first its first group position. Fails only when out of memory. */
int ad_pair_vote(const ad_pair_group *g, int greedy_only, ad_vote *v, const char **mode,
                 ad_error *err);

/* Checks that min_gap is a number >= 0; `rule` names the rule in the message. */
int ad_pair_check_gap(const ad_pair_params *p, const char *rule, ad_error *err);

#endif
