/* run_optimize.c: the optimize stage: each lineage takes optimizer steps of
 * the configured objective (optimize.objective), continuing from the parent
 * round's weights and optimizer state with a fresh warmup-stable-decay
 * schedule. Round 0 is base training from scratch.
 *   sft: supervised training on the mixture of base data and the accepted
 *        rounds' self-made labels (rejection-sampling fine-tuning when the
 *        verifier filter is on);
 *   dpo: preference optimization on the round's pairs against the frozen
 *        parent model, whose log-probs of every pair are computed once per
 *        lineage and stored with the pairs.
 *   nft: negative-aware fine-tuning on the lineage's own samples of the
 *        round, kept (right) and rejected (wrong), against the parent model's
 *        per-token log-probs (the sampling policy), scored once per lineage
 *        and process from the parent's checkpoint.
 *
 * Batches are pure functions of (seed, lineage, round, step, slot), and a
 * partial checkpoint is written every run.save_every steps, so a killed stage
 * resumes mid-way and ends bit-identical. The step loop is train_driver.c,
 * shared with `autodidact train`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/complete.h"
#include "loop/mixture.h"
#include "loop/run_internal.h"
#include "loop/train_driver.h"
#include "model/sampler.h"
#include "model/checkpoint.h"
#include "util/atomic_file.h"
#include "util/progress.h"

#define BASE_VIRTUAL_EXAMPLES ((size_t)1 << 40)

void run_sets_clear(ad_run *run) {
    for (size_t i = 0; i < run->n_sets; i++) {
        for (size_t j = 0; run->sets[i].examples && j < run->sets[i].n_examples; j++)
            ad_example_free(&run->sets[i].examples[j]);
        free(run->sets[i].examples);
    }
    run->n_sets = 0;
}

/* Appends a set: the base generator (sel NULL) or a selection's labels. */
static int sets_add(ad_run *run, size_t round, const run_selection *sel, ad_error *err) {
    run_set *sets = realloc(run->sets, (run->n_sets + 1) * sizeof *sets);
    if (!sets) return ad_error_set(err, "out of memory");
    run->sets = sets;
    run_set *s = &sets[run->n_sets++];
    *s = (run_set){
        .round = round, .n_levels = run->cfg.base_levels.n, .n_examples = BASE_VIRTUAL_EXAMPLES};
    if (!sel) return AD_OK;
    ad_level *lv = NULL;
    size_t nl = 0;
    if (ad_store_levels_get(run->st, (uint32_t)round, "train", &lv, &nl, err) != AD_OK)
        return AD_ERR;
    free(lv);
    s->n_levels = nl ? nl : 1;
    s->n_examples = 0;
    s->examples = calloc(sel->labels.n ? sel->labels.n : 1, sizeof *s->examples);
    if (!s->examples) return ad_error_set(err, "out of memory");
    for (size_t i = 0; i < sel->labels.n; i++) {
        const run_label *l = ad_vec_at(&sel->labels, i);
        if (ad_example_encode(&s->examples[i], &run->vocab, l->prompt, l->completion, run->max_len,
                              err) != AD_OK)
            return AD_ERR;
        s->n_examples++;
    }
    return AD_OK;
}

/* The SFT mixture's sets for optimizing rr: base + accepted rounds before it
 * (their selections loaded from the store) + the round itself. */
int run_optimize_sets(ad_run *run, run_round *rr, ad_error *err) {
    run_sets_clear(run);
    if (sets_add(run, 0, NULL, err) != AD_OK) return AD_ERR;
    for (size_t r = 1; r < rr->round; r++) {
        ad_store_round row;
        int found = 0;
        if (ad_store_round_get(run->st, (uint32_t)r, &row, &found, err) != AD_OK) return AD_ERR;
        if (!found || row.status != AD_ROUND_ACCEPTED) continue;
        run_selection *sel = NULL;
        int rc = run_selection_load(run, r, &sel, err);
        if (rc == AD_OK) rc = sets_add(run, r, sel, err);
        run_selection_free(sel);
        if (rc != AD_OK) return AD_ERR;
    }
    if (rr->round == 0) return AD_OK;
    if (run_round_selection(run, rr, err) != AD_OK) return AD_ERR;
    return sets_add(run, rr->round, rr->sel, err);
}

/* ---- the SFT source: the mixture of base data and self-made labels ------- */

typedef struct sft_source {
    ad_run *run;
    const ad_mixture *mix;
    size_t lineage, n;
    size_t stride; /* round.labels = split: run.lineages; shared: 1 (mixture.h) */
    ad_example *ex;
    int *owned; /* base examples are generated (owned); round examples borrowed */
    ad_problem scratch;
} sft_source;

/* Slot i of step `step`: an example of the set the mixture picks. */
static int sft_fill(void *vctx, size_t step, ad_objective_batch *out, ad_error *err) {
    sft_source *src = vctx;
    ad_run *run = src->run;
    for (size_t i = 0; i < src->n; i++) {
        ad_mixture_pick pick = ad_mixture_draw(src->mix, step, i);
        const run_set *s = &run->sets[pick.set];
        src->owned[i] = s->examples == NULL;
        if (!src->owned[i]) {
            size_t e = ad_mixture_split_index(pick.example, src->lineage, src->stride);
            src->ex[i] = s->examples[e];
            continue;
        }
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(run->cfg.seed, src->lineage, 0, AD_SEED_BASE, 0, pick.example));
        const ad_level_list *lv = &run->cfg.base_levels;
        ad_level level = lv->v[ad_rng_below(&rng, lv->n)];
        if (ad_labelled_example(run->base_task, &run->vocab, run->max_len, level, &rng,
                                &src->scratch, &src->ex[i], err) != AD_OK) {
            for (size_t j = 0; j < i; j++)
                if (src->owned[j]) ad_example_free(&src->ex[j]);
            memset(src->owned, 0, src->n * sizeof *src->owned);
            return AD_ERR;
        }
    }
    *out = (ad_objective_batch){.kind = AD_BATCH_SEQUENCES, .seqs = src->ex, .n = src->n};
    return AD_OK;
}

static void sft_release(void *vctx) {
    sft_source *src = vctx;
    for (size_t i = 0; i < src->n; i++)
        if (src->owned[i]) ad_example_free(&src->ex[i]);
    memset(src->owned, 0, src->n * sizeof *src->owned);
}

/* ---- the DPO source: the round's pairs with the reference's log-probs ---- */

typedef struct pair_source {
    uint64_t seed;            /* run seed */
    size_t lineage, round, n; /* n pairs per step */
    const ad_pair_example *all;
    size_t n_all;
    size_t stride, share; /* round.labels = split: run.lineages and this lineage's share */
    ad_pair_example *batch;
} pair_source;

/* Pair j of step `step`: uniform over the round's pairs (this lineage's share
 * of them under round.labels = split), with replacement. */
static int pair_fill(void *vctx, size_t step, ad_objective_batch *out, ad_error *err) {
    pair_source *src = vctx;
    for (size_t j = 0; j < src->n; j++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(src->seed, src->lineage, src->round, AD_SEED_PAIRS, step, j));
        size_t e = ad_rng_below(&rng, src->share);
        src->batch[j] = src->all[ad_mixture_split_index(e, src->lineage, src->stride)];
    }
    *out = (ad_objective_batch){.kind = AD_BATCH_PAIRS, .pairs = src->batch, .n = src->n};
    (void)err;
    return AD_OK;
}

static void pair_release(void *vctx) {
    (void)vctx;
}

/* Encodes the round's pairs (rr->sel) for training. */
static int encode_pairs(ad_run *run, const run_selection *sel, ad_pair_example **out,
                        ad_error *err) {
    size_t n = sel->pairs.n;
    ad_pair_example *px = calloc(n ? n : 1, sizeof *px);
    if (!px) return ad_error_set(err, "out of memory");
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        const run_pair *p = ad_vec_at(&sel->pairs, i);
        rc = ad_example_encode(&px[i].chosen, &run->vocab, p->prompt, p->chosen, run->max_len, err);
        if (rc == AD_OK)
            rc = ad_example_encode(&px[i].rejected, &run->vocab, p->prompt, p->rejected,
                                   run->max_len, err);
    }
    *out = px;
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "pair: ");
}

static void pairs_free(ad_pair_example *px, size_t n) {
    for (size_t i = 0; px && i < n; i++) {
        ad_example_free(&px[i].chosen);
        ad_example_free(&px[i].rejected);
    }
    free(px);
}

/* Scores both sides of every pair with model m: px[i].ref_chosen and
 * px[i].ref_rejected = log p(completion + EOS | BOS + prompt). */
static int score_pairs(ad_model *m, ad_pair_example *px, size_t n, ad_error *err) {
    const int32_t **seqs = calloc(2 * n, sizeof *seqs);
    size_t *lens = calloc(2 * n, sizeof *lens), *from = calloc(2 * n, sizeof *from);
    double *lp = calloc(2 * n, sizeof *lp);
    int rc = seqs && lens && from && lp ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < 2 * n; i++) {
        const ad_example *e = i % 2 ? &px[i / 2].rejected : &px[i / 2].chosen;
        seqs[i] = e->tokens;
        lens[i] = e->len;
        from[i] = e->loss_from;
    }
    if (rc == AD_OK) rc = ad_score_sequences(m, seqs, lens, from, 2 * n, lp, NULL, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        px[i].ref_chosen = lp[2 * i];
        px[i].ref_rejected = lp[2 * i + 1];
    }
    free(seqs);
    free(lens);
    free(from);
    free(lp);
    return rc;
}

/* The frozen reference's log-probs of every pair: read from the store when a
 * previous process of this stage computed them, else scored with the model as
 * it starts the round (m, before any step) and stored before training. */
static int reference_logps(ad_run *run, size_t round, size_t l, ad_model *m, ad_pair_example *px,
                           size_t n, ad_error *err) {
    double *chosen = NULL, *rejected = NULL;
    size_t got = 0;
    uint32_t r = (uint32_t)round;
    if (ad_store_pair_logps_get(run->st, r, l, &chosen, &rejected, &got, err) != AD_OK)
        return AD_ERR;
    int rc = AD_OK;
    if (got && got != n) {
        rc = ad_error_set(err, "the store holds reference log-probs of %zu pairs, the round %zu",
                          got, n);
    } else if (got) {
        for (size_t i = 0; i < n; i++) {
            px[i].ref_chosen = chosen[i];
            px[i].ref_rejected = rejected[i];
        }
    } else {
        free(chosen);
        free(rejected);
        chosen = malloc(n * sizeof *chosen);
        rejected = malloc(n * sizeof *rejected);
        rc = chosen && rejected ? score_pairs(m, px, n, err) : ad_error_set(err, "out of memory");
        for (size_t i = 0; rc == AD_OK && i < n; i++) {
            chosen[i] = px[i].ref_chosen;
            rejected[i] = px[i].ref_rejected;
        }
        if (rc == AD_OK) rc = ad_store_pair_logps_insert(run->st, r, l, chosen, rejected, n, err);
    }
    free(chosen);
    free(rejected);
    return rc;
}

/* ---- the NFT source: the lineage's own samples, judged, with pi_old ------- */

/* The lineage's samples that carry signal, with each sample's prompt index
 * while collecting (items and prompts index for index), and the counts the
 * log line reports. */
typedef struct nft_pool {
    size_t lineage;
    ad_run *run;
    ad_vec items;   /* ad_policy_example; seq tokens and old_logp owned */
    ad_vec prompts; /* size_t */
    size_t n_prompts, dropped, positives, unfinished;
} nft_pool;

static void nft_pool_free(nft_pool *p) {
    for (size_t i = 0; i < p->items.n; i++) {
        ad_policy_example *pe = ad_vec_at(&p->items, i);
        ad_example_free(&pe->seq);
        free((float *)pe->old_logp);
    }
    ad_vec_free(&p->items);
    ad_vec_free(&p->prompts);
}

/* Adds one select-stage row of the pool's lineage. A sample is right when it
 * reached EOS and failed no filter but unique (a repeated right answer is
 * still a right sample of pi_old). An output cut at the length bound is
 * wrong and is trained on as sampled, without EOS. */
static int nft_add_row(void *vctx, const ad_store_sample *row, ad_error *err) {
    nft_pool *p = vctx;
    if (row->lineage != p->lineage) return AD_OK;
    uint32_t failed = row->filters_ran & ~row->filters_passed & ~(1u << AD_FILTER_UNIQUE);
    ad_policy_example pe = {.positive = row->hit_eos && !failed};
    /* room for the EOS that an unfinished output drops again */
    size_t cap = p->run->max_len + !row->hit_eos;
    if (ad_example_encode(&pe.seq, &p->run->vocab, row->prompt, row->completion, cap, err) != AD_OK)
        return ad_error_prefix(err, "prompt %zu sample %zu: ", row->prompt_index,
                               row->sample_index);
    if (!row->hit_eos) pe.seq.len--;
    if (pe.seq.len <= pe.seq.loss_from) { /* nothing was generated: nothing to learn */
        ad_example_free(&pe.seq);
        return AD_OK;
    }
    size_t q = row->prompt_index;
    if (ad_vec_push(&p->items, &pe, err) != AD_OK) {
        ad_example_free(&pe.seq);
        return AD_ERR;
    }
    return ad_vec_push(&p->prompts, &q, err);
}

/* Sets each sample's r_q = right / samples of its prompt, and drops the
 * prompts whose samples are all right or all wrong (no signal; the paper
 * drops them too). Rows arrive grouped by prompt. */
static void nft_rates(nft_pool *p) {
    size_t kept = 0, n = p->items.n;
    ad_policy_example *it = p->items.data;
    const size_t *q = p->prompts.data;
    for (size_t a = 0, b; a < n; a = b) {
        size_t right = 0;
        for (b = a; b < n && q[b] == q[a]; b++)
            right += (size_t)it[b].positive;
        p->n_prompts++;
        int signal = right > 0 && right < b - a;
        p->dropped += !signal;
        for (size_t i = a; i < b; i++) {
            if (!signal) {
                ad_example_free(&it[i].seq);
                continue;
            }
            it[i].correct_rate = (float)((double)right / (double)(b - a));
            p->positives += (size_t)it[i].positive;
            p->unfinished += it[i].seq.tokens[it[i].seq.len - 1] != AD_TOK_EOS;
            it[kept++] = it[i];
        }
    }
    p->items.n = kept;
}

/* Each sample's per-token log-probs under the round's starting model (lineage
 * l's parent checkpoint: the policy that sampled them), teacher-forced with
 * the untempered model whatever acquire.temperature was, in chunks of
 * round.batch rows. Always from the checkpoint, so a resumed stage scores the
 * same bits. */
static int nft_old_logps(ad_run *run, const run_round *rr, size_t l, nft_pool *p, ad_error *err) {
    ad_train_config tc = run_train_config(run, rr);
    size_t rows = tc.batch_size, n = p->items.n;
    ad_policy_example *it = p->items.data;
    ad_model *m = NULL;
    ad_trainer t = {0};
    ad_example *ex = malloc(rows * sizeof *ex);
    double *lp = malloc(rows * sizeof *lp);
    int rc = ex && lp ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = run_load_model(run, l, rr->parent, &m, err);
    if (rc == AD_OK) rc = ad_trainer_init(&t, m, &tc, err);
    if (rc == AD_OK) ad_trainer_begin_step(&t);
    for (size_t from = 0; rc == AD_OK && from < n; from += rows) {
        size_t k = n - from < rows ? n - from : rows;
        for (size_t i = 0; i < k; i++)
            ex[i] = it[from + i].seq;
        rc = ad_trainer_forward(&t, ex, k, lp, err);
        for (size_t i = 0; rc == AD_OK && i < k; i++) {
            size_t cnt = 0;
            const float *x = ad_trainer_token_logps(&t, i, &cnt);
            float *old = malloc((cnt ? cnt : 1) * sizeof *old);
            if (!x || !old) {
                free(old);
                rc = ad_error_set(err, "out of memory");
                break;
            }
            memcpy(old, x, cnt * sizeof *old);
            it[from + i].old_logp = old;
        }
    }
    if (t.model) ad_trainer_free(&t);
    ad_model_free(m);
    free(ex);
    free(lp);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "nft: sampling policy's log-probs: ");
}

typedef struct nft_source {
    uint64_t seed;
    size_t lineage, round, n; /* n samples per step */
    const nft_pool *pool;
    ad_policy_example *batch;
} nft_source;

/* Sample j of step `step`: uniform over the pool, with replacement. */
static int nft_fill(void *vctx, size_t step, ad_objective_batch *out, ad_error *err) {
    nft_source *src = vctx;
    const ad_policy_example *all = src->pool->items.data;
    for (size_t j = 0; j < src->n; j++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(src->seed, src->lineage, src->round, AD_SEED_TRAIN, step, j));
        src->batch[j] = all[ad_rng_below(&rng, src->pool->items.n)];
    }
    *out = (ad_objective_batch){.kind = AD_BATCH_SAMPLES, .policy = src->batch, .n = src->n};
    (void)err;
    return AD_OK;
}

/* Trains lineage l with nft on its own samples of the round (round.batch
 * samples per step). A round where every prompt's samples were all kept or
 * all rejected leaves the parent's weights as they are. */
static int train_nft(ad_run *run, const run_round *rr, size_t l, ad_trainer *tr,
                     const ad_train_session *s, ad_train_result *res, ad_error *err) {
    nft_pool pool = {.lineage = l, .run = run};
    ad_vec_init(&pool.items, sizeof(ad_policy_example));
    ad_vec_init(&pool.prompts, sizeof(size_t));
    int rc = ad_store_samples_foreach(run->st, (uint32_t)rr->round, AD_STAGE_SELECT, nft_add_row,
                                      &pool, err);
    if (rc == AD_OK) nft_rates(&pool);
    size_t n = pool.items.n;
    if (rc == AD_OK)
        run_log(run,
                "optimize r%zu l%zu: nft on %zu samples (%zu kept, %zu rejected of which %zu "
                "unfinished) of %zu prompts; %zu prompts all kept or all rejected left out",
                rr->round, l, n, pool.positives, n - pool.positives, pool.unfinished,
                pool.n_prompts - pool.dropped, pool.dropped);
    if (rc == AD_OK && n == 0) {
        memset(res, 0, sizeof *res);
        res->last.margin = res->last.pref_accuracy = NAN;
        nft_pool_free(&pool);
        return AD_OK;
    }
    if (rc == AD_OK) rc = nft_old_logps(run, rr, l, &pool, err);
    nft_source src = {.seed = run->cfg.seed,
                      .lineage = l,
                      .round = rr->round,
                      .n = run->cfg.round_batch,
                      .pool = &pool};
    src.batch = calloc(src.n, sizeof *src.batch);
    if (rc == AD_OK && !src.batch) rc = ad_error_set(err, "out of memory");
    ad_batch_source bs = {nft_fill, pair_release, &src};
    if (rc == AD_OK) rc = ad_train_session_run(s, tr, &bs, res, err);
    free(src.batch);
    nft_pool_free(&pool);
    return rc;
}

/* ---- one lineage ----------------------------------------------------------- */

typedef struct save_ctx {
    ad_run *run;
    size_t round, lineage;
    char path[2300];
    ad_vec *steps; /* a worker rank's step figures (run_step_figures); NULL: the store */
} save_ctx;

static int save_partial(void *vctx, ad_trainer *tr, ad_error *err) {
    save_ctx *c = vctx;
    return run_save_trainer(c->run, c->path, tr, c->round, c->lineage, err);
}

/* Records the finished lineage: checkpoint row, figures and the done marker in
 * one transaction, after the checkpoint files are durable. */
int run_optimize_record(ad_run *run, size_t round, size_t l, const char *path, long parent,
                        const ad_train_result *res, double seconds, ad_error *err) {
    ad_store *st = run->st;
    uint32_t r = (uint32_t)round;
    const char *S = AD_STAGE_OPTIMIZE;
    const ad_objective_stats *last = &res->last;
    int rc = ad_store_begin(st, err);
    if (rc == AD_OK) rc = ad_store_checkpoint_insert(st, r, (int64_t)l, S, path, parent, err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, S, (int64_t)l, AD_METRIC_LOSS,
                                   res->steps ? last->loss : NAN, err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, S, (int64_t)l, AD_METRIC_TOKENS_PER_S,
                                   seconds > 0 ? res->tokens / seconds : 0, err);
    if (rc == AD_OK && !isnan(last->margin))
        rc = ad_store_stage_metric(st, r, S, (int64_t)l, AD_METRIC_MARGIN, last->margin, err);
    if (rc == AD_OK && !isnan(last->pref_accuracy))
        rc = ad_store_stage_metric(st, r, S, (int64_t)l, AD_METRIC_PREF_ACCURACY,
                                   last->pref_accuracy, err);
    if (rc == AD_OK) rc = ad_store_stage_done(st, r, S, (int64_t)l, seconds, err);
    if (rc == AD_OK) return ad_store_commit(st, err);
    ad_store_rollback(st);
    return AD_ERR;
}

int run_optimize_record_step(ad_run *run, size_t round, size_t l, size_t step,
                             const ad_objective_stats *st, ad_error *err) {
    const char *keys[] = {AD_METRIC_LOSS, AD_METRIC_LR, AD_METRIC_GRAD_NORM, AD_METRIC_MARGIN,
                          AD_METRIC_PREF_ACCURACY};
    double v[] = {st->loss, st->lr, st->grad_norm, st->margin, st->pref_accuracy};
    size_t n = isnan(st->margin) ? 3 : 5;
    return ad_store_step_metrics_insert(run->st, (uint32_t)round, AD_STAGE_OPTIMIZE, (int64_t)l,
                                        step, keys, v, n, err);
}

/* The step figures the curves are drawn from: into the store, or (a worker
 * rank) into the buffer that goes to rank 0. */
static int record_step(void *vctx, size_t step, const ad_objective_stats *st, ad_error *err) {
    save_ctx *c = vctx;
    if (!c->steps) return run_optimize_record_step(c->run, c->round, c->lineage, step, st, err);
    run_step_figures f = {step, *st};
    return ad_vec_push(c->steps, &f, err);
}

/* The objective's session settings for round `round`. */
static ad_train_session session_for(ad_run *run, size_t round, const ad_objective *obj,
                                    save_ctx *sc, char *label, size_t cap) {
    ad_train_session s = ad_train_session_default(obj);
    s.max_skipped = run->cfg.max_skipped;
    const ad_run_config *c = &run->cfg;
    s.params.loss = (ad_dpo_loss)c->dpo_loss;
    s.params.beta = c->dpo_beta;
    s.params.nll_weight = c->dpo_nll_weight;
    s.params.label_smoothing = c->dpo_label_smoothing;
    s.params.nft_eps = c->nft_eps;
    s.params.nft_neg_weight = c->nft_neg_weight;
    s.params.nft_weight = (ad_nft_weight)c->nft_weight;
    s.params.shards = c->shards;
    s.params.shard_group = run->group;
    snprintf(label, cap, "optimize r%zu l%zu", round, sc->lineage);
    s.label = label;
    s.save_every = c->save_every;
    s.save = sc->steps ? NULL : save_partial; /* a worker rank writes nothing */
    s.save_ctx = sc;
    s.kill_stage = AD_STAGE_OPTIMIZE;
    s.kill_round = round;
    s.record_every = c->record_every;
    s.record = record_step;
    s.record_ctx = sc;
    return s;
}

/* The lineages that share out a round's labels or pairs (round.labels). */
static size_t label_stride(const ad_run *run) {
    return run->cfg.labels_split ? run->cfg.lineages : 1;
}

/* Trains lineage l with the SFT mixture. */
static int train_sft(ad_run *run, const run_round *rr, size_t l, ad_trainer *tr,
                     const ad_train_session *s, ad_train_result *res, ad_error *err) {
    ad_mixture mix = {0};
    size_t n = tr->cfg.batch_size, stride = label_stride(run);
    sft_source src = {.run = run, .mix = &mix, .lineage = l, .n = n, .stride = stride};
    src.ex = calloc(n, sizeof *src.ex);
    src.owned = calloc(n, sizeof *src.owned);
    ad_mixture_set *ms = calloc(run->n_sets, sizeof *ms);
    int rc = src.ex && src.owned && ms ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < run->n_sets; i++)
        ms[i] = (ad_mixture_set){run->sets[i].examples
                                     ? ad_mixture_split_count(run->sets[i].n_examples, l, stride)
                                     : run->sets[i].n_examples,
                                 run->sets[i].n_levels};
    uint64_t seed = ad_seed(run->cfg.seed, l, rr->round, AD_SEED_TRAIN, 0, 0);
    if (rc == AD_OK)
        rc = ad_mixture_init(&mix, ms, run->n_sets, rr->round ? run->cfg.p_new : 1.0, seed, err);
    ad_batch_source bs = {sft_fill, sft_release, &src};
    if (rc == AD_OK) rc = ad_train_session_run(s, tr, &bs, res, err);
    ad_mixture_free(&mix);
    ad_problem_free(&src.scratch);
    free(ms);
    free(src.ex);
    free(src.owned);
    return rc;
}

/* Trains lineage l on the round's pairs (round.batch sequences per step:
 * round.batch / 2 pairs, so a step costs what an SFT step costs). A round
 * without pairs leaves the parent's weights as they are. */
static int train_pairs(ad_run *run, const run_round *rr, size_t l, ad_trainer *tr,
                       const ad_train_session *s, ad_train_result *res, ad_error *err) {
    const run_selection *sel = rr->sel;
    size_t n_all = sel->pairs.n, stride = label_stride(run);
    size_t share = ad_mixture_split_count(n_all, l, stride);
    if (share == 0) {
        run_log(run, "optimize r%zu l%zu: no pairs; the weights stay the parent's", rr->round, l);
        memset(res, 0, sizeof *res);
        res->last.margin = res->last.pref_accuracy = NAN;
        return AD_OK;
    }
    ad_pair_example *px = NULL;
    size_t per = run->cfg.round_batch / 2 ? run->cfg.round_batch / 2 : 1;
    pair_source src = {.seed = run->cfg.seed,
                       .lineage = l,
                       .round = rr->round,
                       .n = per,
                       .n_all = n_all,
                       .stride = stride,
                       .share = share};
    int rc = encode_pairs(run, sel, &px, err);
    if (rc == AD_OK) rc = reference_logps(run, rr->round, l, tr->model, px, n_all, err);
    src.all = px;
    src.batch = calloc(per, sizeof *src.batch);
    if (rc == AD_OK && !src.batch) rc = ad_error_set(err, "out of memory");
    ad_batch_source bs = {pair_fill, pair_release, &src};
    if (rc == AD_OK) rc = ad_train_session_run(s, tr, &bs, res, err);
    free(src.batch);
    pairs_free(px, n_all);
    return rc;
}

/* Gets lineage l's trainer ready and trains it (everything but the final
 * checkpoint and the record); sc->steps set: a worker rank's session (no
 * store, no partial checkpoints). *start: the step it started from. */
static int train_lineage(ad_run *run, run_round *rr, size_t l, const ad_objective *obj,
                         save_ctx *sc, ad_model **m, ad_trainer *tr, ad_train_result *res,
                         size_t *start, ad_error *err) {
    size_t round = rr->round;
    ad_train_config tc = run_train_config(run, rr);
    char label[64];
    int resumed = 0;
    run_partial_path(run, l, sc->path, sizeof sc->path);
    ad_train_session s = session_for(run, round, obj, sc, label, sizeof label);
    int rc = run_prepare_trainer(run, rr, l, &tc, m, tr, &resumed, err);
    *start = rc == AD_OK && resumed ? tr->sched_step : 0;
    /* steps past the resume point were recorded by the killed process: redo them */
    if (rc == AD_OK && !sc->steps)
        rc = ad_store_step_metrics_truncate(run->st, (uint32_t)round, AD_STAGE_OPTIMIZE, (int64_t)l,
                                            *start, err);
    if (rc == AD_OK && obj->batch == AD_BATCH_PAIRS)
        rc = train_pairs(run, rr, l, tr, &s, res, err);
    else if (rc == AD_OK && obj->batch == AD_BATCH_SAMPLES)
        rc = train_nft(run, rr, l, tr, &s, res, err);
    else if (rc == AD_OK)
        rc = train_sft(run, rr, l, tr, &s, res, err);
    return rc;
}

int run_optimize_train(ad_run *run, run_round *rr, size_t l, const ad_objective *obj, ad_vec *steps,
                       ad_model **m, ad_trainer *tr, ad_train_result *res, size_t *start,
                       ad_error *err) {
    save_ctx sc = {run, rr->round, l, "", steps};
    return train_lineage(run, rr, l, obj, &sc, m, tr, res, start, err);
}

int run_optimize_lineage(ad_run *run, run_round *rr, size_t l, const ad_objective *obj,
                         ad_error *err) {
    size_t round = rr->round, start = 0;
    ad_model *m = NULL;
    ad_trainer tr = {0};
    ad_train_result res = {0};
    save_ctx sc = {run, round, l, "", NULL};
    char path[2300], dir[2300];
    double t0 = ad_now();
    int rc = train_lineage(run, rr, l, obj, &sc, &m, &tr, &res, &start, err);
    run_ckpt_path(run, l, round, path, sizeof path);
    snprintf(dir, sizeof dir, "%s/ckpt/l%02zu", run->dir, l);
    if (rc == AD_OK) rc = ad_mkdir_p(dir, err);
    if (rc == AD_OK) rc = run_save_trainer(run, path, &tr, round, l, err);
    ad_run_maybe_kill("optimize-saved", round, 0);
    long parent = round > 0 ? (long)rr->parent : -1;
    if (rc == AD_OK)
        rc = run_optimize_record(run, round, l, path, parent, &res, ad_now() - t0, err);
    ad_trainer_free(&tr);
    ad_model_free(m);
    return rc;
}

/* The objective of round `round`: base training is always SFT. */
const ad_objective *run_round_objective(const ad_run *run, size_t round) {
    return ad_objective_find(round == 0 ? "sft" : run->cfg.objective);
}

/* Reads: the parent's checkpoints; sft: the base data and the selections of
 * the accepted rounds and this one; dpo: this round's pairs; nft: this round's
 * candidates with the select stage's decisions. Writes: each lineage's
 * checkpoint, its figures and (dpo) the reference's log-probs. */
int run_stage_optimize(ad_run *run, run_round *rr, ad_error *err) {
    const ad_objective *obj = run_round_objective(run, rr->round);
    if (!obj)
        return ad_error_set(err, "optimize.objective: unknown objective '%s'", run->cfg.objective);
    /* under mpirun the lineages are spread over the ranks (run_dist.c); dpo and
     * nft read and write the store per lineage, so they stay on rank 0 */
    if (run_round_top_level(run, rr, err) != AD_OK) return AD_ERR;
    if (ad_dist_size() > 1 && obj->batch == AD_BATCH_SEQUENCES)
        return run_dist_optimize(run, rr, obj, err);
    int ready = 0;
    for (size_t l = 0; l < run->cfg.lineages; l++) {
        int done = 0;
        if (ad_store_stage_is_done(run->st, (uint32_t)rr->round, AD_STAGE_OPTIMIZE, (int64_t)l,
                                   &done, err))
            return AD_ERR;
        if (done) continue;
        int rc = AD_OK;
        if (!ready && obj->batch == AD_BATCH_PAIRS)
            rc = run_round_selection(run, rr, err);
        else if (!ready && obj->batch != AD_BATCH_SAMPLES) /* nft reads the store per lineage */
            rc = run_optimize_sets(run, rr, err);
        if (rc != AD_OK) return AD_ERR;
        ready = 1;
        if (run_optimize_lineage(run, rr, l, obj, err) != AD_OK)
            return ad_error_prefix(err, "optimize, lineage %zu: ", l);
    }
    return AD_OK;
}
