/* trainer.c: micro-batching, loss normalisation, schedule and AdamW steps:
 * the SFT step, and the pieces (begin, forward, backward, finish) that it and
 * the other objectives (src/loop/objective*.c) are assembled from.
 * Not here: the objectives' losses, the model's maths (model_*.c). */
#include "model/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"

int ad_example_encode(ad_example *ex, const ad_vocab *v, const char *prompt, const char *completion,
                      size_t max_len, ad_error *err) {
    memset(ex, 0, sizeof *ex);
    size_t cap = strlen(prompt) + strlen(completion) + 2;
    if (cap > max_len) cap = max_len;
    int32_t *tok = malloc((cap ? cap : 1) * sizeof *tok);
    if (!tok) return ad_error_set(err, "out of memory encoding an example");
    size_t n_prompt = 0, n_comp = 0;
    if (cap < 2) goto too_long;
    tok[0] = AD_TOK_BOS;
    if (ad_vocab_encode(v, prompt, tok + 1, cap - 1, &n_prompt, err) != AD_OK) goto fail_prompt;
    if (ad_vocab_encode(v, completion, tok + 1 + n_prompt, cap - 1 - n_prompt, &n_comp, err) !=
        AD_OK)
        goto fail_completion;
    if (1 + n_prompt + n_comp + 1 > cap) goto too_long;
    tok[1 + n_prompt + n_comp] = AD_TOK_EOS;
    ex->tokens = tok;
    ex->len = n_prompt + n_comp + 2;
    ex->loss_from = 1 + n_prompt;
    return AD_OK;
fail_prompt:
    free(tok);
    return ad_error_prefix(err, "prompt '%.60s': ", prompt);
fail_completion:
    free(tok);
    return ad_error_prefix(err, "completion '%.60s': ", completion);
too_long:
    free(tok);
    return ad_error_set(err, "example '%.40s' + '%.40s' is longer than the model's %zu tokens",
                        prompt, completion, max_len);
}

void ad_example_free(ad_example *ex) {
    free(ex->tokens);
    ex->tokens = NULL;
    ex->len = 0;
}

ad_train_config ad_train_default_config(size_t total_steps) {
    ad_train_config c;
    memset(&c, 0, sizeof c);
    c.batch_size = 64;
    c.grad_accum = 1;
    c.schedule.peak_lr = 1e-3f;
    c.schedule.total_steps = total_steps;
    c.schedule.warmup_steps = total_steps / 10;
    c.schedule.decay_steps = total_steps / 5;
    c.schedule.floor_ratio = 0.01f;
    c.adamw = ad_adamw_default_config();
    return c;
}

int ad_trainer_init(ad_trainer *t, ad_model *model, const ad_train_config *cfg, ad_error *err) {
    memset(t, 0, sizeof *t);
    if (!cfg->batch_size || !cfg->grad_accum)
        return ad_error_set(err, "trainer: batch size and accumulation must be positive");
    if (cfg->bf16 && !ad_kernels_have_bf16())
        return ad_error_set(err,
                            "bf16 training needs a CPU with AVX512-BF16 (this one's kernels: "
                            "%s without it); use fp32",
                            ad_kernels_isa());
    t->model = model;
    t->cfg = *cfg;
    return ad_adamw_init(&t->opt, model, &cfg->adamw, err);
}

void ad_trainer_free(ad_trainer *t) {
    ad_adamw_free(&t->opt);
    free(t->tok_buf);
    free(t->tgt_buf);
    free(t->seg_buf);
    free(t->wt_buf);
    free(t->ex_first);
    free(t->ex_n);
    memset(t, 0, sizeof *t);
}

int ad_trainer_adopt_optimizer(ad_trainer *t, ad_adamw *opt, ad_error *err) {
    if (!opt->m || !opt->v || opt->n != t->model->n_params)
        return ad_error_set(err, "optimizer state has %zu values, the model %zu parameters", opt->n,
                            t->model->n_params);
    ad_adamw_config keep = t->opt.cfg;
    ad_adamw_free(&t->opt);
    t->opt = *opt;
    t->opt.cfg = keep;
    memset(opt, 0, sizeof *opt);
    return AD_OK;
}

void ad_trainer_restart_schedule(ad_trainer *t, const ad_lr_schedule *schedule) {
    t->cfg.schedule = *schedule;
    t->sched_step = 0;
}

/* Writes example e at flat index at (its row's offset o = at % T): tokens,
 * targets (the next token where it is a completion token, else -1) and its
 * sequence start. */
static void place_example(const ad_example *e, size_t at, size_t T, int32_t *tok, int32_t *tgt,
                          int32_t *seg) {
    for (size_t t = 0; t < e->len; t++) {
        tok[at + t] = e->tokens[t];
        tgt[at + t] = (t + 1 < e->len && t + 1 >= e->loss_from) ? e->tokens[t + 1] : -1;
        seg[at + t] = (int32_t)(at % T);
    }
}

/* Orders a packed batch longest first (ties by index, so the layout is a
 * function of the batch alone). The products run over every padded token;
 * first fit over decreasing lengths leaves 10% of the rows as padding where
 * first fit in order left 12% (reverse addition at levels 1-8, batch 64: the
 * flagship's base trains about 4% faster). Rows stay as wide as the longest
 * example: attention no longer pays for width (it is cut at the sequences),
 * but rows twice as wide trained no faster there (71.0-71.1k against
 * 70.8-72.1k tokens/s, bf16), and a row may not pass the model's max_len. */
typedef struct example_rank {
    size_t len, index;
} example_rank;

static int longest_first(const void *pa, const void *pb) {
    const example_rank *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Lays ex[0..n) out in rows of width T: one per row in order, or (pack) each,
 * longest first, in the first row with room left. Fills the example maps and
 * the three buffers (padding: PAD, no target, a sequence of its own); returns
 * the rows. rank[n] is scratch; used[n] gets the tokens taken in each row. */
static size_t lay_out(ad_trainer *t, const ad_example *ex, size_t n, size_t T, size_t *used,
                      example_rank *rank) {
    for (size_t i = 0; i < n; i++)
        rank[i] = (example_rank){ex[i].len, i};
    if (t->cfg.pack) qsort(rank, n, sizeof *rank, longest_first);
    size_t R = 0;
    for (size_t j = 0; j < n; j++) {
        size_t i = rank[j].index;
        size_t r = t->cfg.pack ? 0 : R;
        while (r < R && used[r] + ex[i].len > T)
            r++;
        if (r == R) used[R++] = 0;
        t->ex_first[i] = r * T + used[r] + ex[i].loss_from - 1;
        t->ex_n[i] = ex[i].len - ex[i].loss_from;
        used[r] += ex[i].len;
    }
    for (size_t k = 0; k < R * T; k++) {
        t->tok_buf[k] = AD_TOK_PAD;
        t->tgt_buf[k] = -1;
        t->seg_buf[k] = (int32_t)(k % T);
    }
    for (size_t i = 0; i < n; i++)
        place_example(&ex[i], t->ex_first[i] + 1 - ex[i].loss_from, T, t->tok_buf, t->tgt_buf,
                      t->seg_buf);
    return R;
}

/* Grows the batch buffers to `need` elements each and the example maps to
 * n_ex. On error the buffers keep their contents and capacities. */
static int ensure_buffers(ad_trainer *t, size_t need, size_t n_ex, ad_error *err) {
    if (n_ex > t->ex_cap) {
        size_t *f = realloc(t->ex_first, n_ex * sizeof *f);
        if (f) t->ex_first = f;
        size_t *c = realloc(t->ex_n, n_ex * sizeof *c);
        if (c) t->ex_n = c;
        if (!f || !c) return ad_error_set(err, "out of memory for a batch of %zu examples", n_ex);
        t->ex_cap = n_ex;
    }
    if (need <= t->buf_cap) return AD_OK;
    int32_t *a = realloc(t->tok_buf, need * sizeof *a);
    if (a) t->tok_buf = a;
    int32_t *b = realloc(t->tgt_buf, need * sizeof *b);
    if (b) t->tgt_buf = b;
    int32_t *sg = realloc(t->seg_buf, need * sizeof *sg);
    if (sg) t->seg_buf = sg;
    float *w = realloc(t->wt_buf, need * sizeof *w);
    if (w) t->wt_buf = w;
    if (!a || !b || !sg || !w)
        return ad_error_set(err, "out of memory for a batch of %zu tokens", need);
    t->buf_cap = need;
    return AD_OK;
}

int ad_trainer_check_examples(const ad_trainer *t, const ad_example *ex, size_t n,
                              size_t *n_targets, size_t *n_tokens, ad_error *err) {
    size_t targets = 0, tokens = 0;
    if (n && !ex) return ad_error_set(err, "trainer: %zu examples but no array", n);
    for (size_t i = 0; i < n; i++) {
        if (!ex[i].tokens || ex[i].len < 2 || ex[i].loss_from < 1 || ex[i].loss_from >= ex[i].len ||
            ex[i].len > t->model->cfg.max_seq_len)
            return ad_error_set(err,
                                "trainer: example %zu has a bad shape (len %zu, loss from %zu)", i,
                                ex[i].len, ex[i].loss_from);
        targets += ex[i].len - ex[i].loss_from;
        tokens += ex[i].len;
    }
    if (n_targets) *n_targets = targets;
    if (n_tokens) *n_tokens = tokens;
    return AD_OK;
}

/* Packs ex[0..n) (checked) as one micro-batch and runs the forward pass;
 * *loss_sum gets ad_model_forward's sum of -log p over the targets. Records
 * the batch shape for ad_trainer_backward; on error no shape is recorded. */
static int forward_micro_batch(ad_trainer *t, const ad_example *ex, size_t n, double *loss_sum,
                               ad_error *err) {
    size_t T = 0, count = 0;
    for (size_t i = 0; i < n; i++)
        if (ex[i].len > T) T = ex[i].len;
    t->fwd_rows = 0;
    size_t *used = malloc(n * sizeof *used); /* tokens taken in each row */
    example_rank *rank = malloc(n * sizeof *rank);
    int rc = used && rank ? ensure_buffers(t, n * T, n, err)
                          : ad_error_set(err, "out of memory for a batch of %zu examples", n);
    if (rc != AD_OK) {
        free(used);
        free(rank);
        return AD_ERR;
    }
    size_t R = lay_out(t, ex, n, T, used, rank);
    free(used);
    free(rank);
    ad_batch batch = {R, T, t->tok_buf, t->tgt_buf, t->cfg.pack ? t->seg_buf : NULL};
    int was_bf16 = ad_kernels_set_bf16(t->cfg.bf16);
    rc = ad_model_forward(t->model, &batch, loss_sum, &count, err);
    ad_kernels_set_bf16(was_bf16);
    if (rc != AD_OK) return AD_ERR;
    if (!isfinite(*loss_sum)) t->step_nonfinite = 1;
    t->fwd_rows = n;
    t->fwd_R = R;
    t->fwd_T = T;
    return AD_OK;
}

void ad_trainer_begin_step(ad_trainer *t) {
    ad_model_zero_grad(t->model);
    t->fwd_rows = 0;
    t->step_nonfinite = 0;
}

int ad_trainer_forward(ad_trainer *t, const ad_example *ex, size_t n, double *row_logp,
                       ad_error *err) {
    t->fwd_rows = 0; /* a failed forward leaves nothing for a backward */
    if (n == 0) return ad_error_set(err, "trainer: an empty micro-batch");
    if (!row_logp) return ad_error_set(err, "trainer: no room for the rows' log-probabilities");
    if (ad_trainer_check_examples(t, ex, n, NULL, NULL, err) != AD_OK) return AD_ERR;
    double loss_sum = 0;
    if (forward_micro_batch(t, ex, n, &loss_sum, err) != AD_OK) return AD_ERR;
    const float *lp = ad_model_target_logprobs(t->model);
    for (size_t b = 0; b < n; b++) {
        double sum = 0;
        for (size_t k = 0; k < t->ex_n[b]; k++)
            sum += (double)lp[t->ex_first[b] + k];
        row_logp[b] = sum;
    }
    return AD_OK;
}

/* The model's backward in the trainer's precision. */
static void model_backward(ad_trainer *t, const float *weights, float scale) {
    int was_bf16 = ad_kernels_set_bf16(t->cfg.bf16);
    ad_model_backward(t->model, weights, scale);
    ad_kernels_set_bf16(was_bf16);
}

void ad_trainer_backward(ad_trainer *t, const float *row_weight, float scale) {
    size_t B = t->fwd_rows;
    if (B == 0) return;
    if (!row_weight) {
        model_backward(t, NULL, scale);
        return;
    }
    /* only target positions carry weight (the model ignores the others) */
    memset(t->wt_buf, 0, t->fwd_R * t->fwd_T * sizeof *t->wt_buf);
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < t->ex_n[b]; k++)
            t->wt_buf[t->ex_first[b] + k] = row_weight[b];
    model_backward(t, t->wt_buf, scale);
}

/* Example `row` of the last forward: its completion positions are the n
 * consecutive ones from *first (a flat index into the micro-batch). Returns 0
 * when there is no such example. */
static int row_span(const ad_trainer *t, size_t row, size_t *first, size_t *n) {
    *first = *n = 0;
    if (row >= t->fwd_rows || !ad_model_target_logprobs(t->model)) return 0;
    *first = t->ex_first[row];
    *n = t->ex_n[row];
    return 1;
}

const float *ad_trainer_token_logps(const ad_trainer *t, size_t row, size_t *n) {
    size_t first, count;
    if (!row_span(t, row, &first, &count)) {
        if (n) *n = 0;
        return NULL;
    }
    if (n) *n = count;
    return ad_model_target_logprobs(t->model) + first;
}

double ad_trainer_token_entropy_sum(const ad_trainer *t, size_t row) {
    size_t first, count, V = t->model->cfg.vocab_size;
    const float *logits = ad_model_logits(t->model);
    if (!row_span(t, row, &first, &count) || !logits) return NAN;
    double sum = 0;
    for (size_t k = 0; k < count; k++) {
        /* H = log Z - sum_v p_v z_v with z shifted by its max, Z = sum_v exp(z_v) */
        const float *z = logits + (first + k) * V;
        double mx = z[0], se = 0, sz = 0;
        for (size_t v = 1; v < V; v++)
            if (z[v] > mx) mx = z[v];
        for (size_t v = 0; v < V; v++) {
            double e = exp((double)z[v] - mx);
            se += e;
            sz += e * ((double)z[v] - mx);
        }
        if (se > 0) sum += log(se) - sz / se; /* se >= 1: the max term is exp(0) */
    }
    return sum;
}

void ad_trainer_backward_tokens(ad_trainer *t, const float *const *token_weight, float scale) {
    size_t B = t->fwd_rows;
    if (B == 0 || !token_weight) return;
    memset(t->wt_buf, 0, t->fwd_R * t->fwd_T * sizeof *t->wt_buf);
    for (size_t b = 0; b < B; b++) {
        size_t first, n;
        if (token_weight[b] && row_span(t, b, &first, &n))
            memcpy(t->wt_buf + first, token_weight[b], n * sizeof *t->wt_buf);
    }
    model_backward(t, t->wt_buf, scale);
}

float ad_trainer_finish_step(ad_trainer *t, float *lr) {
    float rate = ad_lr_at(&t->cfg.schedule, t->sched_step);
    /* a non-finite loss skips the update as a non-finite gradient norm does
     * inside AdamW: parameters, moments and optimizer step stay as they were */
    float norm = t->step_nonfinite ? NAN : ad_adamw_step(&t->opt, t->model, rate);
    t->step_nonfinite = 0;
    t->sched_step++;
    t->fwd_rows = 0;
    if (lr) *lr = rate;
    return norm;
}

/* SFT: the mean over all completion tokens of the step, so every micro-batch's
 * backward has scale 1 / (completion tokens of the whole step). */
int ad_trainer_step(ad_trainer *t, const ad_example *ex, size_t n, ad_step_stats *stats,
                    ad_error *err) {
    size_t total_targets = 0, total_tokens = 0;
    if (ad_trainer_check_examples(t, ex, n, &total_targets, &total_tokens, err) != AD_OK)
        return AD_ERR;
    if (total_targets == 0) return ad_error_set(err, "trainer: empty step");
    ad_trainer_begin_step(t);
    double loss_sum = 0;
    for (size_t from = 0; from < n; from += t->cfg.batch_size) {
        size_t rows = n - from < t->cfg.batch_size ? n - from : t->cfg.batch_size;
        double part = 0;
        if (forward_micro_batch(t, ex + from, rows, &part, err) != AD_OK) {
            ad_trainer_begin_step(t);
            return AD_ERR;
        }
        loss_sum += part;
        ad_trainer_backward(t, NULL, 1.0f / (float)total_targets);
    }
    float lr = 0;
    float norm = ad_trainer_finish_step(t, &lr);
    if (stats) {
        stats->loss = loss_sum / (double)total_targets;
        stats->n_targets = total_targets;
        stats->n_tokens = total_tokens;
        stats->grad_norm = norm;
        stats->lr = lr;
    }
    return AD_OK;
}

char *ad_trainer_state_json(const ad_trainer *t) {
    cJSON *o = cJSON_CreateObject();
    const ad_lr_schedule *s = &t->cfg.schedule;
    cJSON_AddNumberToObject(o, "optimizer_step", (double)t->opt.step);
    cJSON_AddNumberToObject(o, "schedule_step", (double)t->sched_step);
    cJSON_AddNumberToObject(o, "peak_lr", s->peak_lr);
    cJSON_AddNumberToObject(o, "total_steps", (double)s->total_steps);
    cJSON_AddNumberToObject(o, "warmup_steps", (double)s->warmup_steps);
    cJSON_AddNumberToObject(o, "decay_steps", (double)s->decay_steps);
    cJSON_AddNumberToObject(o, "floor_ratio", s->floor_ratio);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* Reads a non-negative integer field; returns 0 when missing or bad. */
static int get_count(const cJSON *o, const char *key, size_t *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e15) return 0;
    *out = (size_t)it->valuedouble;
    return 1;
}

int ad_trainer_state_parse(ad_trainer *t, const char *json, ad_error *err) {
    cJSON *o = cJSON_Parse(json);
    if (!o) return ad_error_set(err, "trainer_state.json: not valid JSON");
    size_t opt_step, sched_step, total, warm, decay;
    const cJSON *peak = cJSON_GetObjectItemCaseSensitive(o, "peak_lr");
    const cJSON *floor = cJSON_GetObjectItemCaseSensitive(o, "floor_ratio");
    int ok = get_count(o, "optimizer_step", &opt_step) &&
             get_count(o, "schedule_step", &sched_step) && get_count(o, "total_steps", &total) &&
             get_count(o, "warmup_steps", &warm) && get_count(o, "decay_steps", &decay) &&
             cJSON_IsNumber(peak) && cJSON_IsNumber(floor);
    if (ok) {
        t->opt.step = opt_step;
        t->sched_step = sched_step;
        t->cfg.schedule.total_steps = total;
        t->cfg.schedule.warmup_steps = warm;
        t->cfg.schedule.decay_steps = decay;
        t->cfg.schedule.peak_lr = (float)peak->valuedouble;
        t->cfg.schedule.floor_ratio = (float)floor->valuedouble;
    }
    cJSON_Delete(o);
    if (!ok) return ad_error_set(err, "trainer_state.json: missing or invalid fields");
    return AD_OK;
}
