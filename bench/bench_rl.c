/* bench_rl.c: how long one on-policy RL step takes, phase by phase.
 *
 * One step is what the rl stage (src/loop/run_rl.c) does for one lineage with
 * rl.prompts = 64, rl.group = 8, the verifier reward, grpo advantages, the
 * grpo objective (epsilon 0.2, token-mean, no KL), rl.incomplete = mask,
 * round.batch = 128 and rl.inner_epochs = 1, built from the same public calls:
 *   generation  64 reverse-add prompts at levels drawn from --levels (9-10 by
 *               default, the demo's first rl rounds), encoded, and 8
 *               completions each from one ad_sample_generate call at
 *               temperature 1 (budget: the task's answer bound + 1), which
 *               also yields the old policy's per-token log-probs;
 *   scoring     decode + checker per completion, the reward spec per group,
 *               grpo advantages, the policy batch, and the step's figures
 *               (reward mean, accuracy, reward precision);
 *   update      one ad_objective_step of grpo over the 512 sequences
 *               (micro-batches of 128, forward + backward, AdamW).
 * The store writes of record_step and the progress line are left out.
 *
 * The weights: a checkpoint (--ckpt DIR, e.g. the demo's base
 * runs/demo/ckpt/l00/r0000) gives realistic completions; without one the
 * model is the demo's shape at random init, whose completions stop at EOS at
 * random (about 8 of 11.5 tokens), so the two sides' work then differs by
 * chance. bench/torch_rl_step.py runs the same
 * step in PyTorch; --dump DIR writes the starting weights and a logits check
 * for it (check.json: a few sequences, their logits and the sampler's
 * log-probs). Output: '#' lines and, per timed step,
 *   RESULT rl autodidact <threads> gen=S score=S update=S total=S key=value ...
 * Not a test. Usage: bench_rl [--ckpt DIR] [--steps 5] [--threads N]
 * [--prompts 64] [--group 8] [--batch 128] [--levels 9-10] [--seed 1]
 * [--dump DIR]. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "loop/advantage.h"
#include "loop/objective.h"
#include "loop/reward.h"
#include "model/checkpoint.h"
#include "model/kernels.h"
#include "model/sampler.h"
#include "model/trainer.h"
#include "tasks/task.h"
#include "util/atomic_file.h"
#include "util/memory.h"

typedef struct bench_opts {
    const char *ckpt, *dump, *levels;
    size_t steps, prompts, group, batch;
    int threads;
    uint64_t seed;
} bench_opts;

/* One prompt and its group's results. */
typedef struct rl_prompt {
    char *text;
    ad_level level;
    int32_t *ids; /* BOS + prompt */
    size_t n_ids, budget;
} rl_prompt;

/* Everything a step reads and writes, sized once for P prompts x G samples. */
typedef struct rl_bench {
    bench_opts o;
    ad_model *m;
    ad_vocab vocab;
    ad_task *task;
    ad_trainer tr;
    ad_reward_spec spec;
    ad_level_list levels;
    rl_prompt *p;           /* [P] */
    ad_sample_request *req; /* [P*G] */
    ad_sample_result *res;  /* [P*G] */
    char **texts;           /* [P*G] */
    ad_candidate *c;        /* [P*G] */
    double *certainty;      /* [P*G] */
    size_t *bound;          /* [P*G] */
    double *reward, *adv;   /* [P*G] */
    size_t *sizes;          /* [P] */
    ad_policy_example *px;  /* [P*G] */
} rl_bench;

/* The figures of a step, as run_rl.c's record_step computes them. */
typedef struct step_figures {
    double reward, accuracy, length, incomplete, precision;
    size_t tokens; /* generated tokens, EOS included */
} step_figures;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- setup ------------------------------------------------------------------ */

/* The demo's model (examples/demo*.ini) at random init, with the vocabulary
 * the run builds from the task. */
static int random_model(rl_bench *b, ad_error *err) {
    size_t n = 0;
    const char *const *tok = ad_task_tokens(b->task, &n);
    if (ad_vocab_build(&b->vocab, tok, n, err) != AD_OK) return AD_ERR;
    ad_model_config c = ad_model_default_config(); /* 3 layers, 4 heads, 128, 512, NoPE */
    c.vocab_size = b->vocab.size;
    c.max_seq_len = 97; /* the demo's */
    c.seed = b->o.seed;
    return ad_model_create(&b->m, &c, err);
}

/* The demo-rl-verifier round's trainer: round.batch rows a micro-batch,
 * round.lr 2e-4 over rl.steps = 100 with 5% warmup and 20% decay, AdamW
 * (0.9, 0.98, 1e-8, weight decay 0.01, clip 1): run_train_config's values. */
static ad_train_config train_config(size_t batch) {
    ad_train_config tc = ad_train_default_config(100);
    tc.batch_size = batch;
    tc.schedule.peak_lr = 2e-4f;
    tc.schedule.warmup_steps = 5;
    tc.schedule.decay_steps = 20;
    tc.adamw = (ad_adamw_config){0.9f, 0.98f, 1e-8f, 0.01f, 1.0f};
    return tc;
}

static void *alloc_n(size_t n, size_t size, int *ok) {
    void *p = calloc(n ? n : 1, size);
    if (!p) *ok = 0;
    return p;
}

static int bench_init(rl_bench *b, ad_error *err) {
    if (ad_task_open("reverse-add", NULL, &b->task, err) != AD_OK) return AD_ERR;
    if (ad_level_list_parse(b->o.levels, &b->levels, err) != AD_OK) return AD_ERR;
    if (!b->levels.n) return ad_error_set(err, "--levels '%s' names no level", b->o.levels);
    for (size_t i = 0; i < b->levels.n; i++)
        if (ad_task_level_check(b->task, b->levels.v[i], err) != AD_OK) return AD_ERR;
    int rc = b->o.ckpt ? ad_checkpoint_load(b->o.ckpt, &b->m, &b->vocab, NULL, NULL, err)
                       : random_model(b, err);
    if (rc != AD_OK) return AD_ERR;
    ad_train_config tc = train_config(b->o.batch);
    if (ad_trainer_init(&b->tr, b->m, &tc, err) != AD_OK) return AD_ERR;
    if (ad_reward_spec_parse("verifier:1", &b->spec, err) != AD_OK) return AD_ERR;
    size_t P = b->o.prompts, n = P * b->o.group;
    int ok = 1;
    b->p = alloc_n(P, sizeof *b->p, &ok);
    b->req = alloc_n(n, sizeof *b->req, &ok);
    b->res = alloc_n(n, sizeof *b->res, &ok);
    b->texts = alloc_n(n, sizeof *b->texts, &ok);
    b->c = alloc_n(n, sizeof *b->c, &ok);
    b->certainty = alloc_n(n, sizeof *b->certainty, &ok);
    b->bound = alloc_n(n, sizeof *b->bound, &ok);
    b->reward = alloc_n(n, sizeof *b->reward, &ok);
    b->adv = alloc_n(n, sizeof *b->adv, &ok);
    b->sizes = alloc_n(P, sizeof *b->sizes, &ok);
    b->px = alloc_n(n, sizeof *b->px, &ok);
    return ok ? AD_OK : ad_error_set(err, "out of memory for %zu sequences", n);
}

/* Frees what a step allocated; the step's arrays stay for the next one. */
static void step_clear(rl_bench *b) {
    size_t n = b->o.prompts * b->o.group;
    for (size_t i = 0; b->p && i < b->o.prompts; i++) {
        free(b->p[i].text);
        free(b->p[i].ids);
        memset(&b->p[i], 0, sizeof b->p[i]);
    }
    for (size_t i = 0; b->res && i < n; i++) {
        ad_sample_result_free(&b->res[i]);
        free(b->texts[i]);
        b->texts[i] = NULL;
        ad_example_free(&b->px[i].seq);
    }
}

static void bench_free(rl_bench *b) {
    step_clear(b);
    free(b->p);
    free(b->req);
    free(b->res);
    free(b->texts);
    free(b->c);
    free(b->certainty);
    free(b->bound);
    free(b->reward);
    free(b->adv);
    free(b->sizes);
    free(b->px);
    ad_trainer_free(&b->tr);
    ad_model_free(b->m);
    ad_task_free(b->task);
    ad_level_list_free(&b->levels);
}

/* ---- generation ------------------------------------------------------------- */

/* Prompt i of step `step`, as run_rl.c's group_pose poses it: level and
 * problem from ad_seed(seed, any, round 1, ROLLOUT, step, i), BOS + encoding,
 * budget = the answer bound + 1 within max_seq_len. */
static int pose(rl_bench *b, size_t step, size_t i, ad_error *err) {
    rl_prompt *g = &b->p[i];
    ad_rng rng;
    ad_rng_seed(&rng, ad_seed(b->o.seed, AD_SEED_ANY, 1, AD_SEED_ROLLOUT, step, i));
    g->level = b->levels.v[ad_rng_below(&rng, b->levels.n)];
    ad_problem pr = {0};
    size_t np = 0, bound = 0, max_len = b->m->cfg.max_seq_len;
    int rc = ad_task_generate(b->task, g->level, &rng, &pr, err);
    if (rc == AD_OK && !(g->text = strdup(pr.prompt.s))) rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK && !(g->ids = malloc((strlen(g->text) + 1) * sizeof *g->ids)))
        rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK) {
        g->ids[0] = AD_TOK_BOS;
        rc = ad_vocab_encode(&b->vocab, g->text, g->ids + 1, strlen(g->text), &np, err);
    }
    if (rc == AD_OK) rc = ad_task_max_answer_len(b->task, g->text, &bound, err);
    if (rc == AD_OK && np + 2 > max_len)
        rc = ad_error_set(err, "prompt '%.60s' is too long for the model", g->text);
    if (rc == AD_OK) {
        g->n_ids = np + 1;
        g->budget = bound + 1 < max_len - g->n_ids ? bound + 1 : max_len - g->n_ids;
    }
    ad_problem_free(&pr);
    return rc;
}

/* The step's prompts and their G completions each, in one batched call with
 * run_rl.c's streams ((i * G + j) for sample j of prompt i). */
static int generate(rl_bench *b, size_t step, ad_error *err) {
    size_t P = b->o.prompts, G = b->o.group;
    for (size_t i = 0; i < P; i++) {
        if (pose(b, step, i, err) != AD_OK) return AD_ERR;
        for (size_t j = 0; j < G; j++)
            b->req[i * G + j] =
                (ad_sample_request){b->p[i].ids, b->p[i].n_ids, b->p[i].budget, i * G + j};
    }
    ad_sample_params sp = ad_sample_default_params();
    sp.temperature = 1.0f;
    sp.top_p = 1.0f;
    sp.seed = ad_seed(b->o.seed, 0, 1, AD_SEED_SAMPLE, step, 0);
    return ad_sample_generate(b->m, b->req, P * G, &sp, b->res, err);
}

/* ---- scoring ---------------------------------------------------------------- */

/* Decodes and verifies prompt i's completions and scores its group (run_rl.c's
 * group_score). */
static int score_group(rl_bench *b, size_t i, ad_error *err) {
    size_t G = b->o.group, at = i * G;
    const rl_prompt *g = &b->p[i];
    for (size_t j = 0; j < G; j++) {
        const ad_sample_result *r = &b->res[at + j];
        size_t body = r->n - (r->hit_eos ? 1 : 0), cap = body * (AD_TOKEN_MAX_LEN + 1) + 1;
        ad_verdict v;
        if (!(b->texts[at + j] = malloc(cap))) return ad_error_set(err, "out of memory");
        if (ad_vocab_decode(&b->vocab, r->tokens, body, b->texts[at + j], cap, err) != AD_OK ||
            ad_task_verify(b->task, g->text, b->texts[at + j], &v, err) != AD_OK)
            return AD_ERR;
        b->c[at + j] = (ad_candidate){.prompt = i,
                                      .level = g->level,
                                      .sample = j,
                                      .completion = b->texts[at + j],
                                      .n_tokens = r->n,
                                      .logprob_sum = r->logprob_sum,
                                      .hit_eos = r->hit_eos,
                                      .correct = r->hit_eos && v.correct,
                                      .score = NAN};
        b->certainty[at + j] = ad_reward_certainty_mean(r->certainty_sum, r->n);
        b->bound[at + j] = g->budget - 1;
    }
    ad_reward_ctx ctx = {b->c + at, G, b->certainty + at, b->bound + at, 1, NULL, 0};
    if (ad_reward_spec_score(&b->spec, &ctx, b->reward + at, NULL, err) != AD_OK) return AD_ERR;
    b->sizes[i] = G;
    return AD_OK;
}

/* The policy batch (run_rl.c's build_batch) and the figures. */
static int build_batch(rl_bench *b, step_figures *f, ad_error *err) {
    size_t P = b->o.prompts, G = b->o.group, n = P * G;
    double rsum = 0, len = 0;
    size_t correct = 0, incomplete = 0;
    for (size_t k = 0; k < n; k++) {
        const rl_prompt *g = &b->p[k / G];
        const ad_sample_result *s = &b->res[k];
        ad_policy_example *p = &b->px[k];
        p->seq.len = g->n_ids + s->n;
        p->seq.loss_from = g->n_ids;
        if (!(p->seq.tokens = malloc(p->seq.len * sizeof *p->seq.tokens)))
            return ad_error_set(err, "out of memory");
        memcpy(p->seq.tokens, g->ids, g->n_ids * sizeof *g->ids);
        memcpy(p->seq.tokens + g->n_ids, s->tokens, s->n * sizeof *s->tokens);
        p->old_logp = s->logprobs;
        p->ref_logp = NULL;
        p->advantage = (float)b->adv[k];
        p->masked = !s->hit_eos; /* rl.incomplete = mask */
        rsum += b->reward[k];
        len += (double)s->n;
        correct += b->c[k].correct == 1;
        incomplete += !s->hit_eos;
    }
    f->reward = rsum / (double)n;
    f->accuracy = (double)correct / (double)n;
    f->length = len / (double)n;
    f->incomplete = (double)incomplete / (double)n;
    f->tokens = (size_t)len;
    return AD_OK;
}

static int score(rl_bench *b, step_figures *f, ad_error *err) {
    size_t P = b->o.prompts, n = P * b->o.group;
    for (size_t i = 0; i < P; i++)
        if (score_group(b, i, err) != AD_OK) return AD_ERR;
    if (ad_advantages(AD_ADV_GRPO, b->reward, n, b->sizes, P, b->adv, err) != AD_OK) return AD_ERR;
    if (build_batch(b, f, err) != AD_OK) return AD_ERR;
    ad_reward_precision pr;
    if (ad_reward_precision_of(b->c, b->reward, n, &pr, err) != AD_OK) return AD_ERR;
    f->precision = pr.precision;
    return AD_OK;
}

/* ---- update ----------------------------------------------------------------- */

/* One grpo step on the batch with run_rl.c's policy_params for the demo's rl
 * settings (Dr. GRPO's norm_len is the longest budget; token-mean ignores it). */
static int update(rl_bench *b, ad_objective_stats *st, ad_error *err) {
    size_t budget = 1;
    for (size_t i = 0; i < b->o.prompts; i++)
        if (b->p[i].budget > budget) budget = b->p[i].budget;
    ad_objective_params p = ad_objective_default_params();
    p.epsilon = 0.2;
    p.epsilon_high = 0;
    p.kl_beta = 0;
    p.loss_agg = AD_AGG_TOKEN_MEAN;
    p.norm_len = (double)budget;
    ad_objective_batch batch = {
        .kind = AD_BATCH_GROUPS, .policy = b->px, .n = b->o.prompts * b->o.group};
    return ad_objective_step(ad_objective_find("grpo"), &b->tr, &p, &batch, st, err);
}

/* ---- the check for PyTorch -------------------------------------------------- */

/* Adds sequence px's tokens, loss_from, sampler log-probs and the model's
 * logits at each of its positions (its row of the last forward). */
static int check_add(cJSON *seqs, const ad_policy_example *px, const float *logits, size_t V) {
    cJSON *o = cJSON_CreateObject(), *tok = cJSON_CreateArray(), *lp = cJSON_CreateArray();
    cJSON *lg = cJSON_CreateArray();
    if (!o || !tok || !lp || !lg || !cJSON_AddItemToArray(seqs, o)) {
        cJSON_Delete(o);
        cJSON_Delete(tok);
        cJSON_Delete(lp);
        cJSON_Delete(lg);
        return AD_ERR;
    }
    cJSON_AddItemToObject(o, "tokens", tok);
    cJSON_AddItemToObject(o, "old_logp", lp);
    cJSON_AddItemToObject(o, "logits", lg);
    cJSON_AddNumberToObject(o, "loss_from", (double)px->seq.loss_from);
    int ok = 1;
    for (size_t t = 0; t < px->seq.len; t++)
        ok &= cJSON_AddItemToArray(tok, cJSON_CreateNumber(px->seq.tokens[t]));
    for (size_t t = px->seq.loss_from; t < px->seq.len; t++)
        ok &= cJSON_AddItemToArray(lp, cJSON_CreateNumber(px->old_logp[t - px->seq.loss_from]));
    for (size_t t = 0; t < px->seq.len * V; t++)
        ok &= cJSON_AddItemToArray(lg, cJSON_CreateNumber(logits[t]));
    return ok ? AD_OK : AD_ERR;
}

/* Writes DIR/model.safetensors (the weights before any update) and
 * DIR/check.json: k sequences of the first step (sample 0 of prompts 0..k-1),
 * the sampler's log-probs and the logits of a teacher-forced forward. */
static int dump_check(rl_bench *b, const char *dir, ad_error *err) {
    size_t k = b->o.prompts < 8 ? b->o.prompts : 8, T = 0, V = b->m->cfg.vocab_size;
    char path[4096];
    if (ad_mkdir_p(dir, err) != AD_OK) return AD_ERR;
    if ((size_t)snprintf(path, sizeof path, "%s/model.safetensors", dir) >= sizeof path)
        return ad_error_set(err, "--dump path too long");
    if (ad_safetensors_save_model(path, b->m, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < k; i++)
        if (b->px[i * b->o.group].seq.len > T) T = b->px[i * b->o.group].seq.len;
    int32_t *tok = calloc(k * T, sizeof *tok), *tgt = malloc(k * T * sizeof *tgt);
    cJSON *root = cJSON_CreateObject(), *seqs = cJSON_AddArrayToObject(root, "sequences");
    int rc = tok && tgt && root && seqs ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < k; i++) {
        const ad_example *s = &b->px[i * b->o.group].seq;
        memcpy(tok + i * T, s->tokens, s->len * sizeof *tok);
    }
    for (size_t i = 0; tgt && i < k * T; i++)
        tgt[i] = -1;
    double loss = 0;
    size_t nt = 0;
    ad_batch batch = {k, T, tok, tgt, NULL};
    if (rc == AD_OK) rc = ad_model_forward(b->m, &batch, &loss, &nt, err);
    for (size_t i = 0; rc == AD_OK && i < k; i++)
        if (check_add(seqs, &b->px[i * b->o.group], ad_model_logits(b->m) + i * T * V, V))
            rc = ad_error_set(err, "out of memory");
    /* what the PyTorch side needs to run the same step */
    cJSON_AddStringToObject(root, "incomplete", "mask");
    cJSON_AddNumberToObject(root, "n_heads", (double)b->m->cfg.n_heads);
    cJSON_AddNumberToObject(root, "prompts", (double)b->o.prompts);
    cJSON_AddNumberToObject(root, "group", (double)b->o.group);
    cJSON_AddNumberToObject(root, "batch", (double)b->o.batch);
    cJSON *lv = cJSON_AddArrayToObject(root, "levels");
    for (size_t i = 0; lv && i < b->levels.n; i++)
        cJSON_AddItemToArray(lv, cJSON_CreateNumber(b->levels.v[i].a));
    char *text = rc == AD_OK ? cJSON_PrintUnformatted(root) : NULL;
    if (rc == AD_OK && !text) rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK && (size_t)snprintf(path, sizeof path, "%s/check.json", dir) >= sizeof path)
        rc = ad_error_set(err, "--dump path too long");
    if (rc == AD_OK) rc = ad_atomic_write(path, text, strlen(text), err);
    free(text);
    cJSON_Delete(root);
    free(tok);
    free(tgt);
    return rc;
}

/* ---- the steps -------------------------------------------------------------- */

/* One step, timed by phase (t[0] generation, t[1] scoring, t[2] update); the
 * check is written between scoring and update when dump is not NULL. */
static int rl_step(rl_bench *b, size_t step, const char *dump, double t[3], step_figures *f,
                   ad_objective_stats *st, ad_error *err) {
    step_clear(b);
    double t0 = now_s();
    if (generate(b, step, err) != AD_OK) return ad_error_prefix(err, "generation: ");
    double t1 = now_s();
    if (score(b, f, err) != AD_OK) return ad_error_prefix(err, "scoring: ");
    double t2 = now_s();
    if (dump && dump_check(b, dump, err) != AD_OK) return ad_error_prefix(err, "--dump: ");
    double t3 = now_s();
    if (update(b, st, err) != AD_OK) return ad_error_prefix(err, "update: ");
    double t4 = now_s();
    t[0] = t1 - t0;
    t[1] = t2 - t1;
    t[2] = t4 - t3;
    return AD_OK;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){NULL, NULL, "9-10", 5, 64, 8, 128, 0, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return AD_ERR;
        if (!strcmp(a, "--ckpt"))
            o->ckpt = v;
        else if (!strcmp(a, "--dump"))
            o->dump = v;
        else if (!strcmp(a, "--levels"))
            o->levels = v;
        else if (!strcmp(a, "--steps"))
            o->steps = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--prompts"))
            o->prompts = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--group"))
            o->group = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            o->batch = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else
            return AD_ERR;
        i++;
    }
    return o->prompts && o->group >= 2 && o->batch ? AD_OK : AD_ERR;
}

int main(int argc, char **argv) {
    ad_memory_keep_freed(); /* as the CLI does: util/memory.c */
    rl_bench b;
    memset(&b, 0, sizeof b);
    if (parse_args(argc, argv, &b.o) != AD_OK) {
        fprintf(stderr, "usage: bench_rl [--ckpt DIR] [--steps 5] [--threads N] [--prompts 64] "
                        "[--group 8 (>= 2)] [--batch 128] [--levels 9-10] [--seed 1] "
                        "[--dump DIR]\n");
        return 2;
    }
    if (b.o.threads > 0) ad_kernels_set_threads(b.o.threads);
    ad_error err = {{0}};
    int rc = bench_init(&b, &err);
    if (rc == AD_OK)
        printf("# autodidact rl step: kernels %s, %d threads, %zu params, weights %s, "
               "levels %s, %zu prompts x %zu samples, micro-batch %zu, incomplete %s\n",
               ad_kernels_isa(), ad_kernels_get_threads(), b.m->n_params,
               b.o.ckpt ? b.o.ckpt : "random", b.o.levels, b.o.prompts, b.o.group, b.o.batch,
               "mask");
    /* step 0 is the warm-up (buffers grow, pages fault in) and writes the check */
    for (size_t s = 0; rc == AD_OK && s <= b.o.steps; s++) {
        double t[3] = {0, 0, 0};
        step_figures f = {0};
        ad_objective_stats st = {0};
        rc = rl_step(&b, s, s == 0 ? b.o.dump : NULL, t, &f, &st, &err);
        if (rc != AD_OK || s == 0) continue;
        printf("RESULT rl autodidact %d gen=%.4f score=%.4f update=%.4f total=%.4f step=%zu "
               "tokens=%zu length=%.2f incomplete=%.3f reward=%.3f accuracy=%.3f loss=%.4f "
               "entropy=%.3f\n",
               ad_kernels_get_threads(), t[0], t[1], t[2], t[0] + t[1] + t[2], s, f.tokens,
               f.length, f.incomplete, f.reward, f.accuracy, st.loss, st.entropy);
        fflush(stdout);
    }
    if (rc != AD_OK) fprintf(stderr, "bench_rl: %s\n", err.msg);
    bench_free(&b);
    return rc == AD_OK ? 0 : 1;
}
