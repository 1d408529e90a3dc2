/* vote.h: the modal answer among a handful of answers, shared by the vote
 * filters (select) and maj@k / diversity (evaluate) so both count the same way.
 *
 * Answers are compared as whole strings. A NULL answer is a non-answer (an
 * output that never reached EOS): it counts in nobody's favour and is not a
 * distinct answer. Tie rule, used everywhere in the loop: when two or more
 * answers share the highest count there is no mode (unique == 0), so a vote
 * keeps nothing and maj@k scores the prompt as wrong. */
#ifndef AD_LOOP_VOTE_H
#define AD_LOOP_VOTE_H

#include <stddef.h>

#include "util/error.h"

typedef struct ad_vote {
    int unique;   /* 1 when exactly one answer has the highest count */
    size_t first; /* index of the first occurrence of the mode (valid when unique) */
    size_t count; /* how many answers equal the mode (the tied count when !unique; 0 if none) */
    size_t n_distinct; /* distinct non-NULL answers */
} ad_vote;

/* Counts the n answers (NULL entries allowed) and fills *out. n == 0 gives
 * {unique 0, count 0, n_distinct 0}. Fails only when out of memory. */
int ad_vote_mode(const char *const *answers, size_t n, ad_vote *out, ad_error *err);

#endif
