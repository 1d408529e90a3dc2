/* pairs_lineages.c: the lineages pair rule (label-free): the answer the
 * lineages' greedy outputs agree on over the answers of the lineages that
 * dissent. See pairs.h. */
#include "loop/pairs_internal.h"

/* Chosen: the unique mode of the sample-0 answers, given by at least min_agree
 * lineages. Rejected: the other answers of the dissenting lineages' candidates
 * (any sample), by support among them. */
static int pick_lineages(const ad_pair_group *g, const ad_pair_params *p, ad_pair_pick *pick,
                         ad_error *err) {
    ad_vote v;
    const char *mode;
    if (ad_pair_vote(g, 1, &v, &mode, err) != AD_OK) return AD_ERR;
    if (!mode || v.count < p->min_agree) return AD_OK;
    pick->has_chosen = 1;
    pick->chosen = v.first;
    /* Positions run lineage by lineage, sample 0 first when present, so a
     * lineage agrees exactly when its first position is a sample 0 that gave
     * the mode. */
    int agrees = 0;
    for (size_t pos = 0; pos < g->n; pos++) {
        const ad_candidate *x = ad_pair_at(g, pos);
        if (pos == 0 || x->lineage != ad_pair_at(g, pos - 1)->lineage)
            agrees = x->sample == 0 && ad_pair_same_answer(ad_pair_answer(x), mode);
        g->pool[pos] = !agrees;
    }
    return ad_pair_reject_by_support(g, mode, pick, err);
}

static int make_lineages(const ad_candidate *c, size_t n, const ad_pair_params *p, ad_vec *out,
                         ad_error *err) {
    if (p->min_agree < 1 || p->min_agree > p->n_lineages)
        return ad_error_set(err,
                            "pairs (lineages): min_agree %zu of n_lineages %zu is not a valid "
                            "threshold (need 1 <= min_agree <= n_lineages)",
                            p->min_agree, p->n_lineages);
    for (size_t i = 0; i < n; i++)
        if (c[i].lineage >= p->n_lineages)
            return ad_error_set(err, "pairs (lineages): candidate %zu has lineage %zu but m = %zu",
                                i, c[i].lineage, p->n_lineages);
    return ad_pairs_by_prompt(c, n, p, pick_lineages, out, err);
}

const ad_pair_rule ad_pair_rule_lineages = {
    .name = "lineages",
    .summary = "the answer the lineages' greedy outputs agree on over a dissenting lineage's "
               "answer (label-free)",
    .uses_verifier = 0,
    .make = make_lineages,
};
