/* run_rl.c: the rl stage of an on-policy round (round.kind = rl): for each
 * lineage, rl.steps steps of
 *
 *   rollout    rl.prompts fresh prompts at the round's levels, rl.group
 *              completions of each sampled from the current weights (the
 *              sampler's untempered per-token log-probs are the old policy);
 *   reward     the rl.rewards spec (reward.h) per group, and the checker's
 *              verdicts for the logged figures only (unless the spec names
 *              verifier);
 *   advantage  rl.advantage over each group (advantage.h); groups whose rewards
 *              are all equal carry no signal and, with rl.drop_uniform_groups,
 *              are dropped and replaced by fresh prompts (at most
 *              rl.max_resample a step, DAPO's dynamic sampling);
 *   update     rl.inner_epochs steps of the grpo objective (objective.h) on
 *              the batch, with the k3 KL to the round's starting model when
 *              rl.beta > 0 (else no reference pass is run).
 *
 * Every random choice is ad_seed(run, ..., round, ROLLOUT | SAMPLE, step, i):
 * a step's rollout depends only on the weights it starts from, so a partial
 * checkpoint (every run.save_every rl steps) resumes bit-identical. Every
 * step's figures go to the store's per-step series (stage "rl"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/advantage.h"
#include "loop/judge.h"
#include "loop/objective.h"
#include "loop/reward.h"
#include "loop/run_internal.h"
#include "model/sampler.h"
#include "util/atomic_file.h"
#include "util/progress.h"

/* One prompt's group of completions. */
typedef struct rl_group {
    char *prompt;
    ad_level level;
    int32_t *ids; /* BOS + prompt */
    size_t n_ids, budget;
    ad_sample_result *res;  /* [G] */
    char **texts;           /* [G] */
    ad_candidate *c;        /* [G] */
    double *certainty;      /* [G] mean self-certainty per token */
    size_t *bound;          /* [G] the task's answer-length bound */
    double *reward;         /* [G] the spec's total */
    double *terms;          /* [k * G] each reward of the spec */
    int uniform;            /* every reward equal */
    ad_completion *other_c; /* [n_others] the other lineages' greedy answers (lineages reward) */
    ad_candidate *others;   /* [n_others] the same, as the reward reads them */
} rl_group;

typedef struct rl_ctx {
    ad_run *run;
    run_round *rr;
    size_t lineage;
    ad_level_list levels;
    ad_reward_spec spec;
    ad_trainer *tr;   /* &train while a lineage trains */
    ad_trainer train; /* the lineage's trainer */
    ad_trainer ref;   /* the round's starting model, when rl.beta > 0 */
    int have_ref;
    /* The lineages reward's voters: the other lineages' models as of the round's
     * start (lineages train one after another, so their current weights are
     * not simultaneous; the round-start models are a fixed committee). */
    ad_model **others; /* [n_others], loaded when the spec names lineages */
    size_t *other_lineage;
    size_t n_others;
    /* The judge reward's frozen judge (run_judge_reward_load), when the spec
     * names judge: the same model for every lineage and round. */
    ad_model *judge;
    ad_vocab judge_vocab;
    size_t skipped;    /* steps of this lineage skipped for a non-finite loss or norm */
    run_rl_worker *wk; /* a worker rank's outputs (NULL: rank 0, or alone) */
} rl_ctx;

static void group_free(rl_group *g, size_t G, size_t n_others) {
    for (size_t j = 0; j < G; j++) {
        if (g->res) ad_sample_result_free(&g->res[j]);
        if (g->texts) free(g->texts[j]);
    }
    for (size_t o = 0; g->other_c && o < n_others; o++)
        ad_completion_free(&g->other_c[o]);
    free(g->other_c);
    free(g->others);
    free(g->prompt);
    free(g->ids);
    free(g->res);
    free(g->texts);
    free(g->c);
    free(g->certainty);
    free(g->bound);
    free(g->reward);
    free(g->terms);
    memset(g, 0, sizeof *g);
}

/* Prompt i of rl step `step`: its level and text, and its encoding. */
static int group_pose(rl_ctx *x, size_t step, size_t i, rl_group *g, ad_error *err) {
    ad_run *run = x->run;
    ad_rng rng;
    ad_rng_seed(&rng, ad_seed(run->cfg.seed, AD_SEED_ANY, x->rr->round, AD_SEED_ROLLOUT, step, i));
    g->level = x->levels.v[ad_rng_below(&rng, x->levels.n)];
    ad_problem p = {0};
    int rc = ad_task_generate(run->task, g->level, &rng, &p, err);
    size_t np = 0, bound = 0, max_len = x->tr->model->cfg.max_seq_len;
    if (rc == AD_OK && !(g->prompt = strdup(p.prompt.s))) rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK && !(g->ids = malloc((strlen(g->prompt) + 1) * sizeof *g->ids)))
        rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK) {
        g->ids[0] = AD_TOK_BOS;
        rc = ad_vocab_encode(&run->vocab, g->prompt, g->ids + 1, strlen(g->prompt), &np, err);
    }
    if (rc == AD_OK) rc = ad_task_max_answer_len(run->task, g->prompt, &bound, err);
    if (rc == AD_OK && np + 2 > max_len)
        rc = ad_error_set(err, "prompt '%.60s' is too long for the model", g->prompt);
    if (rc == AD_OK) {
        g->n_ids = np + 1;
        g->budget = bound + 1 < max_len - g->n_ids ? bound + 1 : max_len - g->n_ids;
    }
    ad_problem_free(&p);
    return rc;
}

/* Samples the G completions of each of the n groups in one batched call
 * (group i of the step's prompts is requests (first + i) * G + j). The sampler's
 * rows do not depend on their batch companions, so a group's completions are
 * the same bits whether it is sampled alone or with the rest of its wave. */
static int groups_sample(rl_ctx *x, size_t step, size_t first, rl_group *g, size_t n,
                         ad_error *err) {
    const ad_run_config *c = &x->run->cfg;
    size_t G = c->rl_group, total = n * G;
    ad_sample_request *req = calloc(total ? total : 1, sizeof *req);
    ad_sample_result *res = calloc(total ? total : 1, sizeof *res);
    int rc = req && res ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        if (!(g[i].res = calloc(G, sizeof *g[i].res))) rc = ad_error_set(err, "out of memory");
        for (size_t j = 0; rc == AD_OK && j < G; j++)
            req[i * G + j] =
                (ad_sample_request){g[i].ids, g[i].n_ids, g[i].budget, (first + i) * G + j};
    }
    ad_sample_params sp = ad_sample_default_params();
    sp.temperature = c->rl_temperature;
    sp.top_p = c->rl_top_p;
    sp.seed = ad_seed(c->seed, x->lineage, x->rr->round, AD_SEED_SAMPLE, step, 0);
    x->tr->model->decode_bf16 = c->decode_precision;
    if (rc == AD_OK) rc = ad_sample_generate(x->tr->model, req, total, &sp, res, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        memcpy(g[i].res, res + i * G, G * sizeof *res); /* each group owns its results */
    free(req);
    free(res);
    return rc;
}

static const char *group_prompt(const void *ctx, size_t j) {
    (void)j;
    return ((const rl_group *)ctx)->prompt;
}

/* Decodes and verifies (for the figures) the group's completions. */
static int group_decode(rl_ctx *x, size_t i, rl_group *g, ad_error *err) {
    ad_run *run = x->run;
    size_t G = run->cfg.rl_group, k = x->spec.n;
    g->texts = calloc(G, sizeof *g->texts);
    g->c = calloc(G, sizeof *g->c);
    g->certainty = calloc(G, sizeof *g->certainty);
    g->bound = calloc(G, sizeof *g->bound);
    g->reward = calloc(G, sizeof *g->reward);
    g->terms = calloc(k * G, sizeof *g->terms);
    int rc = g->texts && g->c && g->certainty && g->bound && g->reward && g->terms
                 ? AD_OK
                 : ad_error_set(err, "out of memory");
    for (size_t j = 0; rc == AD_OK && j < G; j++) {
        const ad_sample_result *r = &g->res[j];
        size_t body = r->n - (r->hit_eos ? 1 : 0), cap = body * (AD_TOKEN_MAX_LEN + 1) + 1;
        if (!(g->texts[j] = malloc(cap))) rc = ad_error_set(err, "out of memory");
        if (rc == AD_OK) rc = ad_vocab_decode(&run->vocab, r->tokens, body, g->texts[j], cap, err);
        if (rc != AD_OK) break;
        g->c[j] = (ad_candidate){.prompt = i,
                                 .level = g->level,
                                 .lineage = x->lineage,
                                 .sample = j,
                                 .completion = g->texts[j],
                                 .n_tokens = r->n,
                                 .logprob_sum = r->logprob_sum,
                                 .hit_eos = r->hit_eos,
                                 .correct = -1,
                                 .score = NAN};
        g->certainty[j] = ad_reward_certainty_mean(r->certainty_sum, r->n);
        g->bound[j] = g->budget - 1;
    }
    /* the checker's verdicts: the logged figures' (and the verifier reward's) */
    if (rc == AD_OK) rc = run_verify_candidates(run, g->c, G, group_prompt, g, err);
    return rc;
}

/* The judge's P(yes) of every completion of the wave that reached EOS, as the
 * candidates' scores (the judge reward reads them; the rest stay NaN, which
 * it scores 0): one batched pass of the frozen judge. */
static int wave_judge(rl_ctx *x, rl_group *g, size_t n, ad_error *err) {
    size_t G = x->run->cfg.rl_group, total = n * G;
    const char **p = malloc((total ? total : 1) * sizeof *p);
    const char **c = malloc((total ? total : 1) * sizeof *c);
    double *got = malloc((total ? total : 1) * sizeof *got);
    int rc = p && c && got ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < total; i++) {
        p[i] = g[i / G].prompt;
        c[i] = g[i / G].c[i % G].hit_eos ? g[i / G].texts[i % G] : NULL;
    }
    if (rc == AD_OK) rc = ad_judge_score(x->judge, &x->judge_vocab, p, c, total, got, err);
    for (size_t i = 0; rc == AD_OK && i < total; i++)
        g[i / G].c[i % G].score = got[i];
    free(p);
    free(c);
    free(got);
    return rc;
}

/* The group's rewards from its decoded, verified (and judged) completions. */
static int group_reward(rl_ctx *x, rl_group *g, ad_error *err) {
    ad_run *run = x->run;
    size_t G = run->cfg.rl_group;
    ad_reward_ctx ctx = {g->c,      G,          g->certainty, g->bound, run->cfg.lineages,
                         g->others, x->n_others};
    int rc = ad_reward_spec_score(&x->spec, &ctx, g->reward, g->terms, err);
    for (size_t j = 0; rc == AD_OK && run->cfg.rl_incomplete == 1 && j < G; j++)
        if (!g->c[j].hit_eos) g->reward[j] = -1.0; /* rl.incomplete = penalty */
    g->uniform = 1;
    for (size_t j = 1; rc == AD_OK && j < G; j++)
        if (g->reward[j] != g->reward[0]) g->uniform = 0;
    return rc;
}

/* ---- one rl step ----------------------------------------------------------- */

/* The figures of a step. */
typedef struct rl_figures {
    size_t drawn, kept, uniform_first, resampled, samples, correct, incomplete;
    double reward_sum, reward_sq, length_sum;
} rl_figures;

/* The other lineages' greedy answers to the wave's prompts (lineages reward):
 * one batched greedy decode per other lineage's round-start model. */
static int groups_others(rl_ctx *x, size_t first, rl_group *g, size_t n, ad_error *err) {
    ad_run *run = x->run;
    const char **prompts = malloc((n ? n : 1) * sizeof *prompts);
    ad_completion *tmp = calloc(n ? n : 1, sizeof *tmp);
    int rc = prompts && tmp ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        prompts[i] = g[i].prompt;
        g[i].other_c = calloc(x->n_others, sizeof *g[i].other_c);
        g[i].others = calloc(x->n_others, sizeof *g[i].others);
        if (!g[i].other_c || !g[i].others) rc = ad_error_set(err, "out of memory");
    }
    ad_sample_params greedy = ad_sample_default_params(); /* temperature 0: no draws */
    for (size_t o = 0; rc == AD_OK && o < x->n_others; o++) {
        rc = ad_complete_prompts(x->others[o], &run->vocab, run->task, prompts, n, 1, &greedy, 0,
                                 tmp, err);
        for (size_t i = 0; rc == AD_OK && i < n; i++) {
            g[i].other_c[o] = tmp[i];
            g[i].others[o] = (ad_candidate){.prompt = first + i,
                                            .level = g[i].level,
                                            .lineage = x->other_lineage[o],
                                            .completion = tmp[i].text,
                                            .n_tokens = tmp[i].n_tokens,
                                            .logprob_sum = tmp[i].logprob_sum,
                                            .hit_eos = tmp[i].hit_eos,
                                            .correct = -1,
                                            .score = NAN};
        }
    }
    free(prompts);
    free(tmp);
    return rc;
}

/* Poses, samples and scores the step's groups first .. first + n - 1 as one
 * wave, and keeps those that carry signal (every group when dropping is off). */
static int rollout_wave(rl_ctx *x, size_t step, size_t first, size_t n, ad_vec *groups,
                        rl_figures *f, ad_error *err) {
    const ad_run_config *c = &x->run->cfg;
    size_t want = c->rl_prompts;
    rl_group *g = calloc(n ? n : 1, sizeof *g);
    int rc = g ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        rc = group_pose(x, step, first + i, &g[i], err);
    if (rc == AD_OK && x->n_others) rc = groups_others(x, first, g, n, err);
    if (rc == AD_OK) rc = groups_sample(x, step, first, g, n, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        rc = group_decode(x, first + i, &g[i], err);
    if (rc == AD_OK && x->judge) rc = wave_judge(x, g, n, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        rc = group_reward(x, &g[i], err);
    for (size_t i = 0; g && i < n; i++) {
        int keep = rc == AD_OK && (!c->rl_drop_uniform || !g[i].uniform);
        if (rc == AD_OK) {
            f->uniform_first += first + i < want && g[i].uniform;
            f->resampled += first + i >= want;
            f->drawn++;
        }
        if (keep) rc = ad_vec_push(groups, &g[i], err);
        if (keep && rc == AD_OK)
            f->kept++;
        else
            group_free(&g[i], c->rl_group, x->n_others);
    }
    free(g);
    return rc;
}

/* Draws groups until rl.prompts of them carry signal (or every group when
 * dropping is off), replacing uniform ones up to rl.max_resample. Waves draw
 * exactly the prompts that are still missing, so they draw the same prompts,
 * in the same order, as drawing one at a time until rl.prompts are kept. */
static int rollout(rl_ctx *x, size_t step, ad_vec *groups, rl_figures *f, ad_error *err) {
    const ad_run_config *c = &x->run->cfg;
    size_t want = c->rl_prompts, cap = want + (c->rl_drop_uniform ? c->rl_max_resample : 0);
    int rc = AD_OK;
    while (rc == AD_OK && f->kept < want && f->drawn < cap) {
        size_t n = want - f->kept < cap - f->drawn ? want - f->kept : cap - f->drawn;
        rc = rollout_wave(x, step, f->drawn, n, groups, f, err);
    }
    return rc;
}

/* The policy batch of the kept groups: sequences, old log-probs, advantages. */
static int build_batch(rl_ctx *x, const ad_vec *groups, ad_policy_example *px, rl_figures *f,
                       ad_error *err) {
    const ad_run_config *c = &x->run->cfg;
    size_t G = c->rl_group, n = groups->n * G;
    double *r = malloc((n ? n : 1) * sizeof *r), *adv = malloc((n ? n : 1) * sizeof *adv);
    size_t *sizes = malloc((groups->n ? groups->n : 1) * sizeof *sizes);
    int rc = r && adv && sizes ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t gi = 0; rc == AD_OK && gi < groups->n; gi++) {
        const rl_group *g = ad_vec_at(groups, gi);
        sizes[gi] = G;
        for (size_t j = 0; j < G; j++)
            r[gi * G + j] = g->reward[j];
    }
    if (rc == AD_OK)
        rc = ad_advantages((ad_adv_estimator)c->rl_advantage, r, n, sizes, groups->n, adv, err);
    for (size_t gi = 0; rc == AD_OK && gi < groups->n; gi++) {
        const rl_group *g = ad_vec_at(groups, gi);
        for (size_t j = 0; rc == AD_OK && j < G; j++) {
            const ad_sample_result *s = &g->res[j];
            ad_policy_example *p = &px[gi * G + j];
            p->seq.len = g->n_ids + s->n;
            p->seq.loss_from = g->n_ids;
            p->seq.tokens = malloc(p->seq.len * sizeof *p->seq.tokens);
            if (!p->seq.tokens) {
                rc = ad_error_set(err, "out of memory");
                break;
            }
            memcpy(p->seq.tokens, g->ids, g->n_ids * sizeof *g->ids);
            memcpy(p->seq.tokens + g->n_ids, s->tokens, s->n * sizeof *s->tokens);
            p->old_logp = s->logprobs;
            p->advantage = (float)adv[gi * G + j];
            p->masked = !s->hit_eos && c->rl_incomplete == 0;
            f->samples++;
            f->correct += g->c[j].correct == 1;
            f->incomplete += !s->hit_eos;
            f->reward_sum += g->reward[j];
            f->reward_sq += g->reward[j] * g->reward[j];
            f->length_sum += (double)s->n;
        }
    }
    free(r);
    free(adv);
    free(sizes);
    return rc;
}

/* The reference's per-token log-probs of every sequence (rl.beta > 0). */
static int reference_logps(rl_ctx *x, ad_policy_example *px, size_t n, float **store,
                           ad_error *err) {
    size_t rows = x->ref.cfg.batch_size;
    double *lp = malloc(rows * sizeof *lp);
    if (!lp) return ad_error_set(err, "out of memory");
    int rc = AD_OK;
    ad_trainer_begin_step(&x->ref);
    for (size_t from = 0; rc == AD_OK && from < n; from += rows) {
        size_t k = n - from < rows ? n - from : rows;
        ad_example *ex = malloc(k * sizeof *ex);
        if (!ex) rc = ad_error_set(err, "out of memory");
        for (size_t i = 0; rc == AD_OK && i < k; i++)
            ex[i] = px[from + i].seq;
        if (rc == AD_OK) rc = ad_trainer_forward(&x->ref, ex, k, lp, err);
        for (size_t i = 0; rc == AD_OK && i < k; i++) {
            size_t m = 0;
            const float *t = ad_trainer_token_logps(&x->ref, i, &m);
            store[from + i] = malloc((m ? m : 1) * sizeof **store);
            if (!store[from + i] || !t) {
                rc = ad_error_set(err, "reference log-probs: out of memory");
                break;
            }
            memcpy(store[from + i], t, m * sizeof *t);
            px[from + i].ref_logp = store[from + i];
        }
        free(ex);
    }
    free(lp);
    return rc;
}

/* The reward terms' means and precision against the checker over the kept
 * groups, appended to keys/values (names in buf). */
static int term_figures(rl_ctx *x, const ad_vec *groups, const char **keys, double *v, size_t *n,
                        char (*buf)[48], ad_error *err) {
    size_t G = x->run->cfg.rl_group, total = groups->n * G, k = x->spec.n;
    ad_candidate *c = malloc((total ? total : 1) * sizeof *c);
    double *r = malloc((total ? total : 1) * sizeof *r);
    int rc = c && r ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t t = 0; rc == AD_OK && t < k; t++) {
        double sum = 0;
        for (size_t gi = 0; gi < groups->n; gi++) {
            const rl_group *g = ad_vec_at(groups, gi);
            for (size_t j = 0; j < G; j++) {
                c[gi * G + j] = g->c[j];
                c[gi * G + j].prompt = gi; /* precision pairs answers of one prompt */
                r[gi * G + j] = g->terms[t * G + j];
                sum += r[gi * G + j];
            }
        }
        ad_reward_precision p;
        rc = ad_reward_precision_of(c, r, total, &p, err);
        const char *name = x->spec.terms[t].reward->name;
        snprintf(buf[2 * t], 48, "reward_%s", name);
        snprintf(buf[2 * t + 1], 48, "precision_%s", name);
        keys[*n] = buf[2 * t];
        v[(*n)++] = total ? sum / (double)total : NAN;
        keys[*n] = buf[2 * t + 1];
        v[(*n)++] = p.precision;
    }
    free(c);
    free(r);
    return rc;
}

/* Records the step's figures in the per-step series and returns the mean
 * reward and accuracy for the progress line. */
static int record_step(rl_ctx *x, size_t step, const ad_vec *groups, const rl_figures *f,
                       const ad_objective_stats *st, double *reward, double *acc, ad_error *err) {
    const char *keys[64];
    double v[64];
    char buf[2 * AD_REWARD_MAX_TERMS][48];
    size_t n = 0, s = f->samples ? f->samples : 1;
    double mean = f->reward_sum / (double)s, var = f->reward_sq / (double)s - mean * mean;
    *reward = mean;
    *acc = (double)f->correct / (double)s;
#define PUT(k, val) (keys[n] = (k), v[n++] = (val))
    PUT(AD_METRIC_LOSS, st->loss);
    PUT(AD_METRIC_LR, st->lr);
    PUT(AD_METRIC_GRAD_NORM, st->grad_norm);
    PUT("clip_fraction", st->clip_fraction);
    PUT("kl", st->kl);
    PUT("ratio", st->ratio);
    PUT("entropy", st->entropy);
    PUT("reward_mean", mean);
    PUT("reward_std", var > 0 ? sqrt(var) : 0);
    PUT("accuracy", *acc);
    PUT("response_length", f->length_sum / (double)s);
    PUT("incomplete_fraction", (double)f->incomplete / (double)s);
    PUT("zero_variance_fraction", (double)f->uniform_first / (double)x->run->cfg.rl_prompts);
    PUT("dropped_fraction", f->drawn ? (double)(f->drawn - f->kept) / (double)f->drawn : 0);
    PUT("resampled", (double)f->resampled);
#undef PUT
    if (term_figures(x, groups, keys, v, &n, buf, err) != AD_OK) return AD_ERR;
    if (x->wk) return run_rl_figures_put(&x->wk->figures, step, keys, v, n, err);
    return ad_store_step_metrics_insert(x->run->st, (uint32_t)x->rr->round, AD_STAGE_RL,
                                        (int64_t)x->lineage, step, keys, v, n, err);
}

/* The grpo objective's parameters from rl.*. */
static ad_objective_params policy_params(const ad_run_config *c, size_t norm_len) {
    ad_objective_params p = ad_objective_default_params();
    p.epsilon = c->rl_epsilon;
    p.epsilon_high = c->rl_epsilon_high;
    p.kl_beta = c->rl_beta;
    p.loss_agg = (ad_loss_agg)c->rl_loss_agg;
    p.norm_len = (double)norm_len;
    return p;
}

/* One rl step: rollout, rewards, advantages, rl.inner_epochs updates. */
static int rl_step(rl_ctx *x, size_t step, double *reward, double *acc, ad_error *err) {
    const ad_run_config *c = &x->run->cfg;
    size_t G = c->rl_group;
    ad_vec groups;
    ad_vec_init(&groups, sizeof(rl_group));
    rl_figures f = {0};
    ad_policy_example *px = NULL;
    float **ref = NULL;
    ad_objective_stats st = {0};
    int rc = rollout(x, step, &groups, &f, err);
    size_t n = groups.n * G, budget = 1;
    for (size_t gi = 0; gi < groups.n; gi++) {
        const rl_group *g = ad_vec_at(&groups, gi);
        if (g->budget > budget) budget = g->budget;
    }
    if (rc == AD_OK && !(px = calloc(n ? n : 1, sizeof *px))) rc = ad_error_set(err, "oom");
    if (rc == AD_OK && !(ref = calloc(n ? n : 1, sizeof *ref))) rc = ad_error_set(err, "oom");
    if (rc == AD_OK) rc = build_batch(x, &groups, px, &f, err);
    if (rc == AD_OK && x->have_ref) rc = reference_logps(x, px, n, ref, err);
    ad_objective_params p = policy_params(c, budget);
    ad_objective_batch b = {.kind = AD_BATCH_GROUPS, .policy = px, .n = n};
    const ad_objective *grpo = ad_objective_find("grpo");
    for (size_t e = 0; rc == AD_OK && e < c->rl_inner_epochs; e++) {
        if (n == 0) { /* every group uniform and dropped: a step with no gradient, so the
                         schedule (and a resume) stays in step with the rl steps */
            ad_trainer_begin_step(x->tr);
            st.grad_norm = ad_trainer_finish_step(x->tr, &st.lr);
            st.loss = st.clip_fraction = st.kl = st.ratio = st.entropy = NAN;
            continue;
        }
        rc = ad_objective_step(grpo, x->tr, &p, &b, &st, err);
    }
    if (rc == AD_OK) rc = record_step(x, step, &groups, &f, &st, reward, acc, err);
    if (rc == AD_OK && n && (!isfinite(st.loss) || !isfinite(st.grad_norm)) &&
        ++x->skipped > c->max_skipped)
        rc = ad_error_set(err,
                          "%zu rl steps had a non-finite loss or gradient norm and were skipped, "
                          "the last at step %zu (loss %g, gradient norm %g): the learning rate is "
                          "probably too high",
                          x->skipped, step + 1, st.loss, (double)st.grad_norm);
    for (size_t i = 0; px && i < n; i++) {
        ad_example_free(&px[i].seq);
        if (ref) free(ref[i]);
    }
    free(px);
    free(ref);
    for (size_t gi = 0; gi < groups.n; gi++)
        group_free(ad_vec_at(&groups, gi), G, x->n_others);
    ad_vec_free(&groups);
    return rc;
}

/* ---- one lineage ----------------------------------------------------------- */

/* The schedule of an rl round: rl.steps x rl.inner_epochs optimizer steps, with
 * round.warmup and round.decay as fractions of them. */
static ad_train_config rl_train_config(const ad_run *run, const run_round *rr) {
    const ad_run_config *c = &run->cfg;
    ad_train_config tc = run_train_config(run, rr);
    size_t total = c->rl_steps * c->rl_inner_epochs;
    tc.schedule.total_steps = total;
    tc.schedule.warmup_steps = (size_t)(c->round_warmup * (float)total);
    tc.schedule.decay_steps = (size_t)(c->round_decay * (float)total);
    return tc;
}

/* The other lineages' round-start models, when the spec names the lineages
 * reward (the committee whose greedy answers it agrees with). */
static int load_others(rl_ctx *x, ad_error *err) {
    size_t L = x->run->cfg.lineages;
    if (!ad_reward_spec_names(&x->spec, "lineages") || L < 2) return AD_OK;
    x->others = calloc(L - 1, sizeof *x->others);
    x->other_lineage = calloc(L - 1, sizeof *x->other_lineage);
    if (!x->others || !x->other_lineage) return ad_error_set(err, "out of memory");
    for (size_t l = 0; l < L; l++) {
        if (l == x->lineage) continue;
        x->other_lineage[x->n_others] = l;
        if (run_load_model(x->run, l, x->rr->parent, &x->others[x->n_others], err) != AD_OK)
            return AD_ERR;
        x->n_others++;
    }
    return AD_OK;
}

static void free_others(rl_ctx *x) {
    for (size_t o = 0; o < x->n_others; o++)
        ad_model_free(x->others[o]);
    free(x->others);
    free(x->other_lineage);
    x->others = NULL;
    x->other_lineage = NULL;
    x->n_others = 0;
}

/* The round's starting model as a frozen reference (rl.beta > 0). */
static int load_reference(rl_ctx *x, const ad_train_config *tc, ad_model **ref, ad_error *err) {
    if (run_load_model(x->run, x->lineage, x->rr->parent, ref, err) != AD_OK) return AD_ERR;
    if (ad_trainer_init(&x->ref, *ref, tc, err) != AD_OK) return AD_ERR;
    x->have_ref = 1;
    return AD_OK;
}

static int rl_steps(rl_ctx *x, ad_error *err) {
    ad_run *run = x->run;
    size_t inner = run->cfg.rl_inner_epochs, first = x->tr->sched_step / inner;
    size_t total = run->cfg.rl_steps, round = x->rr->round, l = x->lineage;
    char label[64], partial[2300];
    snprintf(label, sizeof label, "rl r%zu l%zu", round, l);
    run_partial_path(run, l, partial, sizeof partial);
    ad_progress prog;
    ad_progress_begin(&prog, label, total, "step");
    int rc = AD_OK;
    for (size_t s = first; rc == AD_OK && s < total; s++) {
        ad_run_maybe_kill(AD_STAGE_RL, round, s);
        double reward = 0, acc = 0;
        rc = rl_step(x, s, &reward, &acc, err);
        char extra[96];
        snprintf(extra, sizeof extra, "reward %.3f  accuracy %.3f", reward, acc);
        if (rc == AD_OK) ad_progress_update(&prog, s + 1, (double)(s + 1), extra);
        /* a worker writes no partial: its lineage restarts the stage after a kill */
        if (rc == AD_OK && !x->wk && (s + 1) % run->cfg.save_every == 0 && s + 1 < total)
            rc = run_save_trainer(run, partial, x->tr, round, l, err);
    }
    if (rc == AD_OK) ad_progress_end(&prog, (double)total, NULL);
    return rc;
}

int run_rl_record(ad_run *run, const run_round *rr, size_t l, const char *path, double seconds,
                  ad_error *err) {
    uint32_t r = (uint32_t)rr->round;
    int rc = ad_store_begin(run->st, err);
    if (rc == AD_OK)
        rc = ad_store_checkpoint_insert(run->st, r, (int64_t)l, AD_STAGE_RL, path,
                                        (int64_t)rr->parent, err);
    if (rc == AD_OK) rc = ad_store_stage_done(run->st, r, AD_STAGE_RL, (int64_t)l, seconds, err);
    if (rc == AD_OK) return ad_store_commit(run->st, err);
    ad_store_rollback(run->st);
    return AD_ERR;
}

static int rl_lineage(rl_ctx *x, ad_error *err) {
    ad_run *run = x->run;
    size_t round = x->rr->round, l = x->lineage;
    ad_train_config tc = rl_train_config(run, x->rr);
    ad_model *m = NULL, *ref = NULL;
    ad_trainer *tr = &x->train;
    int resumed = 0;
    double t0 = ad_now();
    char path[2300], dir[2300];
    memset(tr, 0, sizeof *tr);
    x->tr = tr;
    x->skipped = 0;
    int rc = run_prepare_trainer(run, x->rr, l, &tc, &m, tr, &resumed, err);
    size_t start = resumed ? tr->sched_step / run->cfg.rl_inner_epochs : 0;
    if (rc == AD_OK && x->wk) x->wk->start = start;
    if (rc == AD_OK && !x->wk)
        rc = ad_store_step_metrics_truncate(run->st, (uint32_t)round, AD_STAGE_RL, (int64_t)l,
                                            start, err);
    if (rc == AD_OK && run->cfg.rl_beta > 0) rc = load_reference(x, &tc, &ref, err);
    if (rc == AD_OK) rc = load_others(x, err);
    if (rc == AD_OK) rc = rl_steps(x, err);
    run_ckpt_path(run, l, round, path, sizeof path);
    snprintf(dir, sizeof dir, "%s/ckpt/l%02zu", run->dir, l);
    if (rc == AD_OK && !x->wk) rc = ad_mkdir_p(dir, err);
    if (rc == AD_OK) rc = run_save_trainer(run, x->wk ? x->wk->save_to : path, tr, round, l, err);
    if (rc == AD_OK && x->wk) x->wk->seconds = ad_now() - t0;
    if (rc == AD_OK && !x->wk) rc = run_rl_record(run, x->rr, l, path, ad_now() - t0, err);
    if (x->have_ref) ad_trainer_free(&x->ref);
    x->have_ref = 0;
    free_others(x);
    ad_model_free(ref);
    ad_trainer_free(tr);
    x->tr = NULL;
    ad_model_free(m);
    return rc;
}

/* The stage's shared pieces: the reward spec, the round's levels (lv[n]) and,
 * when the spec names judge, the frozen judge. */
static int ctx_open(rl_ctx *x, ad_run *run, run_round *rr, const ad_level *lv, size_t n,
                    ad_error *err) {
    *x = (rl_ctx){.run = run, .rr = rr, .levels = {.v = (ad_level *)lv, .n = n}};
    if (ad_reward_spec_parse(run->cfg.rl_rewards, &x->spec, err) != AD_OK) return AD_ERR;
    if (n == 0) return ad_error_set(err, "round %zu has no levels", rr->round);
    if (ad_reward_spec_names(&x->spec, "judge"))
        return run_judge_reward_load(run, &x->judge, &x->judge_vocab, err);
    return AD_OK;
}

int run_rl_lineages(ad_run *run, run_round *rr, const ad_level *lv, size_t n, const uint64_t *todo,
                    int only_rank, run_rl_worker *wk, ad_error *err) {
    rl_ctx x;
    int rc = ctx_open(&x, run, rr, lv, n, err);
    x.wk = wk;
    for (size_t l = 0; rc == AD_OK && l < run->cfg.lineages; l++) {
        if (!todo[l] || (only_rank >= 0 && run_dist_lineage_rank(run, l) != only_rank)) continue;
        x.lineage = l;
        if (rl_lineage(&x, err) != AD_OK) rc = ad_error_prefix(err, "rl, lineage %zu: ", l);
    }
    ad_model_free(x.judge);
    return rc;
}

/* Reads: the round's levels, the parent's checkpoints. Writes: each lineage's
 * checkpoint, the per-step series of its rl steps. Under mpirun lineage l
 * trains on its rank (run_dist_rl), as sft's optimize stage. */
int run_stage_rl(ad_run *run, run_round *rr, ad_error *err) {
    ad_level *lv = NULL;
    size_t n = 0, L = run->cfg.lineages;
    uint64_t *todo = calloc(L, sizeof *todo);
    int rc = todo ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = ad_store_levels_get(run->st, (uint32_t)rr->round, "train", &lv, &n, err);
    if (rc == AD_OK) run_round_set_top_level(run, rr, lv, n);
    for (size_t l = 0; rc == AD_OK && l < L; l++) {
        int done = 0;
        rc = ad_store_stage_is_done(run->st, (uint32_t)rr->round, AD_STAGE_RL, (int64_t)l, &done,
                                    err);
        todo[l] = !done;
    }
    if (rc == AD_OK)
        rc = ad_dist_size() > 1 ? run_dist_rl(run, rr, todo, lv, n, err)
                                : run_rl_lineages(run, rr, lv, n, todo, -1, NULL, err);
    free(lv);
    free(todo);
    return rc;
}
