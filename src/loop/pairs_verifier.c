/* pairs_verifier.c: the verifier pair rule (the oracle arm): the most common
 * right answer over the wrong ones, least common first. See pairs.h. */
#include "loop/pairs_internal.h"

/* Chosen: among the right candidates that reached EOS, the class with the
 * highest support (ties: lower representative position). Rejected: the wrong
 * candidates' classes by support. */
static int pick_verifier(const ad_pair_group *g, const ad_pair_params *p, ad_pair_pick *pick,
                         ad_error *err) {
    for (size_t pos = 0; pos < g->n; pos++) {
        const ad_candidate *x = ad_pair_at(g, pos);
        g->pool[pos] = x->correct == 1 && x->hit_eos;
    }
    ad_vec classes;
    ad_vec_init(&classes, sizeof(ad_pair_class));
    int rc = ad_pair_classes(g, NULL, &classes, err);
    const ad_pair_class *best = NULL;
    for (size_t k = 0; rc == AD_OK && k < classes.n; k++) {
        const ad_pair_class *cl = ad_vec_at(&classes, k);
        if (!best || cl->support > best->support) best = cl; /* classes come in rep order */
    }
    if (rc == AD_OK && best) {
        pick->has_chosen = 1;
        pick->chosen = best->rep;
        const char *answer = best->answer;
        for (size_t pos = 0; pos < g->n; pos++)
            g->pool[pos] = ad_pair_at(g, pos)->correct == 0;
        rc = ad_pair_reject_by_support(g, answer, pick, err);
    }
    ad_vec_free(&classes);
    return rc;
}

static int make_verifier(const ad_candidate *c, size_t n, const ad_pair_params *p, ad_vec *out,
                         ad_error *err) {
    for (size_t i = 0; i < n; i++)
        if (c[i].correct != 0 && c[i].correct != 1)
            return ad_error_set(err,
                                "pairs (verifier): candidate %zu (prompt %zu, lineage %zu, "
                                "sample %zu) was never verified",
                                i, c[i].prompt, c[i].lineage, c[i].sample);
    return ad_pairs_by_prompt(c, n, p, pick_verifier, out, err);
}

const ad_pair_rule ad_pair_rule_verifier = {
    .name = "verifier",
    .summary = "a right answer over a wrong one, by the task's verifier (oracle arm)",
    .uses_verifier = 1,
    .make = make_verifier,
};
