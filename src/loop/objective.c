/* objective.c: the objective registry, the parameters' defaults and ranges,
 * and ad_objective_step, which checks its arguments before it dispatches.
 * Not here: the objectives themselves (objective_sft.c, objective_dpo.c,
 * objective_grpo.c, objective_nft.c). */
#include "loop/objective.h"

#include <math.h>
#include <string.h>

static const ad_objective *const registry[] = {&ad_objective_sft, &ad_objective_dpo,
                                               &ad_objective_grpo, &ad_objective_nft};

#define N_OBJECTIVES (sizeof registry / sizeof registry[0])

static const char *const loss_names[] = {"sigmoid", "ipo", "rpo"};

#define N_LOSSES (sizeof loss_names / sizeof loss_names[0])

static const char *const agg_names[] = {"token-mean", "seq-mean-token-mean",
                                        "seq-mean-token-sum-norm"};

#define N_AGGS (sizeof agg_names / sizeof agg_names[0])

size_t ad_objective_count(void) {
    return N_OBJECTIVES;
}

const ad_objective *ad_objective_at(size_t i) {
    return i < N_OBJECTIVES ? registry[i] : NULL;
}

const ad_objective *ad_objective_find(const char *name) {
    for (size_t i = 0; name && i < N_OBJECTIVES; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

ad_objective_params ad_objective_default_params(void) {
    ad_objective_params p;
    memset(&p, 0, sizeof p);
    p.loss = AD_DPO_SIGMOID;
    p.beta = 0.1;
    p.nll_weight = 1.0;
    p.label_smoothing = 0.0;
    p.epsilon = 0.2;
    p.epsilon_high = 0.0; /* the same as epsilon */
    p.kl_beta = 0.0;
    p.loss_agg = AD_AGG_TOKEN_MEAN;
    p.norm_len = 0.0;
    p.nft_eps = 1.0;
    p.nft_neg_weight = 1.0;
    p.nft_weight = AD_NFT_WEIGHT_DR_GRPO;
    return p;
}

const char *ad_dpo_loss_name(ad_dpo_loss loss) {
    return (size_t)loss < N_LOSSES ? loss_names[loss] : "?";
}

int ad_dpo_loss_parse(const char *name, ad_dpo_loss *out, ad_error *err) {
    for (size_t i = 0; name && i < N_LOSSES; i++)
        if (strcmp(loss_names[i], name) == 0) {
            *out = (ad_dpo_loss)i;
            return AD_OK;
        }
    return ad_error_set(err, "dpo.loss: unknown loss '%s' (sigmoid, ipo or rpo)",
                        name ? name : "(null)");
}

const char *ad_loss_agg_name(ad_loss_agg agg) {
    return (size_t)agg < N_AGGS ? agg_names[agg] : "?";
}

int ad_loss_agg_parse(const char *name, ad_loss_agg *out, ad_error *err) {
    for (size_t i = 0; name && i < N_AGGS; i++)
        if (strcmp(agg_names[i], name) == 0) {
            *out = (ad_loss_agg)i;
            return AD_OK;
        }
    return ad_error_set(err,
                        "grpo.loss_agg: unknown aggregation '%s' (token-mean, seq-mean-token-mean "
                        "or seq-mean-token-sum-norm)",
                        name ? name : "(null)");
}

/* The grpo parameters' ranges. */
static int grpo_params_check(const ad_objective_params *p, ad_error *err) {
    if (!(p->epsilon > 0.0 && p->epsilon < 1.0))
        return ad_error_set(err, "grpo.epsilon: must be in (0, 1), got %g", p->epsilon);
    if (!(p->epsilon_high >= 0.0 && isfinite(p->epsilon_high)))
        return ad_error_set(err, "grpo.epsilon_high: must be a number >= 0 (0: epsilon), got %g",
                            p->epsilon_high);
    if (!(p->kl_beta >= 0.0 && isfinite(p->kl_beta)))
        return ad_error_set(err, "grpo.kl_beta: must be a number >= 0, got %g", p->kl_beta);
    if ((size_t)p->loss_agg >= N_AGGS)
        return ad_error_set(err,
                            "grpo.loss_agg: unknown aggregation %d (token-mean, "
                            "seq-mean-token-mean or seq-mean-token-sum-norm)",
                            (int)p->loss_agg);
    if (!(p->norm_len >= 0.0 && isfinite(p->norm_len)))
        return ad_error_set(err, "grpo.norm_len: must be a number >= 0, got %g", p->norm_len);
    if (p->loss_agg == AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM && !(p->norm_len > 0.0))
        return ad_error_set(err,
                            "grpo.norm_len: seq-mean-token-sum-norm needs a positive constant "
                            "(the generation budget in tokens), got %g",
                            p->norm_len);
    return AD_OK;
}

/* The nft parameters' ranges. */
static int nft_params_check(const ad_objective_params *p, ad_error *err) {
    if (!(p->nft_eps > 0.0 && p->nft_eps <= 1.0))
        return ad_error_set(err, "nft.eps: must be in (0, 1], got %g", p->nft_eps);
    if (!(p->nft_neg_weight >= 0.0 && isfinite(p->nft_neg_weight)))
        return ad_error_set(err, "nft.neg_weight: must be a number >= 0, got %g",
                            p->nft_neg_weight);
    if ((unsigned)p->nft_weight > AD_NFT_WEIGHT_NONE)
        return ad_error_set(err, "nft.prompt_weight: unknown weight %d (dr_grpo, grpo or none)",
                            (int)p->nft_weight);
    return AD_OK;
}

int ad_objective_params_check(const ad_objective_params *p, ad_error *err) {
    if ((size_t)p->loss >= N_LOSSES)
        return ad_error_set(err, "dpo.loss: unknown loss %d (sigmoid, ipo or rpo)", (int)p->loss);
    if (!(p->beta > 0.0 && isfinite(p->beta)))
        return ad_error_set(err, "dpo.beta: must be a positive number, got %g", p->beta);
    if (!(p->label_smoothing >= 0.0 && p->label_smoothing < 0.5))
        return ad_error_set(err, "dpo.label_smoothing: must be in [0, 0.5), got %g",
                            p->label_smoothing);
    if (!(p->nll_weight >= 0.0 && isfinite(p->nll_weight)))
        return ad_error_set(err, "dpo.nll_weight: must be a number >= 0, got %g", p->nll_weight);
    if (grpo_params_check(p, err) != AD_OK) return AD_ERR;
    return nft_params_check(p, err);
}

static const char *kind_name(ad_batch_kind k) {
    return k == AD_BATCH_SEQUENCES ? "sequences"
           : k == AD_BATCH_PAIRS   ? "pairs"
           : k == AD_BATCH_GROUPS  ? "groups"
           : k == AD_BATCH_SAMPLES ? "samples"
                                   : "an unknown kind";
}

/* The batch matches what o consumes and holds something. */
static int check_batch(const ad_objective *o, const ad_objective_batch *b, ad_error *err) {
    if (!b) return ad_error_set(err, "objective %s: no batch", o->name);
    if (b->kind != o->batch)
        return ad_error_set(err, "objective %s consumes a batch of %s, got one of %s", o->name,
                            kind_name(o->batch), kind_name(b->kind));
    if (b->n == 0) return ad_error_set(err, "objective %s: empty batch", o->name);
    const void *items = b->kind == AD_BATCH_SEQUENCES ? (const void *)b->seqs
                        : b->kind == AD_BATCH_PAIRS   ? (const void *)b->pairs
                                                      : (const void *)b->policy;
    if (!items)
        return ad_error_set(err, "objective %s: a batch of %zu %s but no array", o->name, b->n,
                            kind_name(b->kind));
    for (size_t i = 0; b->kind == AD_BATCH_SEQUENCES && b->weights && i < b->n; i++)
        if (!isfinite(b->weights[i]))
            return ad_error_set(err, "objective %s: sequence %zu has weight %g", o->name, i,
                                (double)b->weights[i]);
    return AD_OK;
}

int ad_objective_step(const ad_objective *o, ad_trainer *t, const ad_objective_params *p,
                      const ad_objective_batch *b, ad_objective_stats *st, ad_error *err) {
    if (!o || !o->step) return ad_error_set(err, "objective step: no objective");
    if (!t || !t->model) return ad_error_set(err, "objective %s: no trainer", o->name);
    if (check_batch(o, b, err) != AD_OK) return AD_ERR;
    ad_objective_params defaults = ad_objective_default_params();
    if (!p) p = &defaults;
    if (ad_objective_params_check(p, err) != AD_OK)
        return ad_error_prefix(err, "objective %s: ", o->name);
    ad_objective_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    st->margin = st->pref_accuracy = st->chosen_logp = st->rejected_logp = NAN;
    st->clip_fraction = st->kl = st->ratio = st->entropy = NAN;
    return o->step(t, p, b, st, err);
}
