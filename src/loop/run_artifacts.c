/* run_artifacts.c: the artifacts the stages of a round hand each other
 * (candidates, selection): freeing them, and the one loader of each, which
 * reads a finished stage's artifact back from the store when a resumed run
 * needs it. Not here: making them (the stages do). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/run_internal.h"

void run_candidates_free(run_candidates *c) {
    if (!c) return;
    for (size_t i = 0; c->texts && i < 2 * c->n; i++)
        free(c->texts[i]);
    free(c->texts);
    free(c->c);
    free(c->rows);
    free(c);
}

static void pair_free(run_pair *p) {
    free(p->rule);
    free(p->prompt);
    free(p->chosen);
    free(p->rejected);
}

void run_selection_free(run_selection *s) {
    if (!s) return;
    for (size_t i = 0; i < s->labels.n; i++) {
        run_label *l = ad_vec_at(&s->labels, i);
        free(l->prompt);
        free(l->completion);
    }
    for (size_t i = 0; i < s->pairs.n; i++)
        pair_free(ad_vec_at(&s->pairs, i));
    ad_vec_free(&s->labels);
    ad_vec_free(&s->pairs);
    free(s);
}

/* ---- candidates ------------------------------------------------------------ */

typedef struct cand_loader {
    ad_vec rows;  /* ad_store_sample, strings pointing into texts */
    ad_vec texts; /* char *, two per row */
} cand_loader;

static int push_text(ad_vec *texts, const char *s, char **out, ad_error *err) {
    char *copy = strdup(s);
    if (!copy || ad_vec_push(texts, &copy, err) != AD_OK) {
        free(copy);
        return copy ? AD_ERR : ad_error_set(err, "out of memory reading candidates");
    }
    *out = copy;
    return AD_OK;
}

static int add_candidate_row(void *vctx, const ad_store_sample *row, ad_error *err) {
    cand_loader *cl = vctx;
    ad_store_sample r = *row;
    char *prompt = NULL, *completion = NULL;
    if (push_text(&cl->texts, row->prompt, &prompt, err) != AD_OK) return AD_ERR;
    if (push_text(&cl->texts, row->completion, &completion, err) != AD_OK) return AD_ERR;
    r.prompt = prompt;
    r.completion = completion;
    r.stage = NULL;
    return ad_vec_push(&cl->rows, &r, err);
}

/* Lineage-major order (lineage, prompt, sample): the order acquire makes the
 * candidates in, so that a loaded artifact equals the one made in memory (the
 * store reads rows prompt-major). */
static int row_cmp(const void *pa, const void *pb) {
    const ad_store_sample *a = pa, *b = pb;
    if (a->lineage != b->lineage) return a->lineage < b->lineage ? -1 : 1;
    if (a->prompt_index != b->prompt_index) return a->prompt_index < b->prompt_index ? -1 : 1;
    if (a->sample_index != b->sample_index) return a->sample_index < b->sample_index ? -1 : 1;
    return 0;
}

/* Sorts the loaded rows lineage-major; texts follow (2i, 2i + 1 = row i's). */
static void sort_rows(cand_loader *cl) {
    ad_store_sample *r = cl->rows.data;
    char **t = cl->texts.data;
    qsort(r, cl->rows.n, sizeof *r, row_cmp);
    for (size_t i = 0; i < cl->rows.n; i++) {
        t[2 * i] = (char *)r[i].prompt;
        t[2 * i + 1] = (char *)r[i].completion;
    }
}

static void loader_free(cand_loader *cl) {
    for (size_t i = 0; i < cl->texts.n; i++)
        free(*(char **)ad_vec_at(&cl->texts, i));
    ad_vec_free(&cl->texts);
    ad_vec_free(&cl->rows);
}

/* The filters' view of store row r (decisions reset; select makes them). */
static ad_candidate candidate_of(const ad_store_sample *r) {
    return (ad_candidate){.prompt = r->prompt_index,
                          .level = r->level,
                          .lineage = r->lineage,
                          .sample = r->sample_index,
                          .completion = r->completion,
                          .n_tokens = r->n_tokens,
                          .logprob_sum = r->logprob,
                          .hit_eos = r->hit_eos,
                          .correct = -1,
                          .score = r->score};
}

int run_candidates_load(ad_run *run, size_t round, run_candidates **out, ad_error *err) {
    *out = NULL;
    cand_loader cl;
    ad_vec_init(&cl.rows, sizeof(ad_store_sample));
    ad_vec_init(&cl.texts, sizeof(char *));
    run_candidates *c = calloc(1, sizeof *c);
    int rc = c ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK)
        rc = ad_store_samples_foreach(run->st, (uint32_t)round, AD_STAGE_ACQUIRE, add_candidate_row,
                                      &cl, err);
    if (rc == AD_OK) {
        sort_rows(&cl);
        c->n = cl.rows.n;
        c->rows = ad_vec_release(&cl.rows);
        c->texts = ad_vec_release(&cl.texts);
        c->c = calloc(c->n ? c->n : 1, sizeof *c->c);
        if (!c->c) rc = ad_error_set(err, "out of memory");
    }
    for (size_t i = 0; rc == AD_OK && i < c->n; i++)
        c->c[i] = candidate_of(&c->rows[i]);
    loader_free(&cl);
    if (rc != AD_OK) {
        run_candidates_free(c);
        return ad_error_prefix(err, "round %zu candidates: ", round);
    }
    *out = c;
    return AD_OK;
}

int run_candidates_from_rows(const ad_store_sample *rows, size_t n, run_candidates **out,
                             ad_error *err) {
    *out = NULL;
    run_candidates *c = calloc(1, sizeof *c);
    if (!c) return ad_error_set(err, "out of memory");
    c->c = calloc(n ? n : 1, sizeof *c->c);
    c->rows = calloc(n ? n : 1, sizeof *c->rows);
    c->texts = calloc(n ? 2 * n : 1, sizeof *c->texts);
    int rc = c->c && c->rows && c->texts ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK) c->n = n;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        c->texts[2 * i] = strdup(rows[i].prompt);
        c->texts[2 * i + 1] = strdup(rows[i].completion);
        if (!c->texts[2 * i] || !c->texts[2 * i + 1]) rc = ad_error_set(err, "out of memory");
        c->rows[i] = rows[i];
        c->rows[i].prompt = c->texts[2 * i];
        c->rows[i].completion = c->texts[2 * i + 1];
        c->c[i] = candidate_of(&c->rows[i]);
    }
    if (rc != AD_OK) {
        run_candidates_free(c);
        return AD_ERR;
    }
    *out = c;
    return AD_OK;
}

/* ---- selection ------------------------------------------------------------- */

int run_selection_add_label(run_selection *s, const char *prompt, const char *completion,
                            ad_error *err) {
    run_label l = {strdup(prompt), strdup(completion)};
    if (!l.prompt || !l.completion || ad_vec_push(&s->labels, &l, err) != AD_OK) {
        free(l.prompt);
        free(l.completion);
        return ad_error_set(err, "out of memory for a label");
    }
    return AD_OK;
}

int run_selection_add_pair(run_selection *s, const ad_store_pair *row, ad_error *err) {
    run_pair p = {.prompt_index = row->prompt_index,
                  .level = row->level,
                  .rule = strdup(row->rule ? row->rule : ""),
                  .prompt = strdup(row->prompt),
                  .chosen = strdup(row->chosen),
                  .rejected = strdup(row->rejected),
                  .chosen_lineage = row->chosen_lineage,
                  .chosen_sample = row->chosen_sample,
                  .rejected_lineage = row->rejected_lineage,
                  .rejected_sample = row->rejected_sample,
                  .chosen_correct = row->chosen_correct,
                  .rejected_correct = row->rejected_correct};
    if (!p.rule || !p.prompt || !p.chosen || !p.rejected ||
        ad_vec_push(&s->pairs, &p, err) != AD_OK) {
        pair_free(&p);
        return ad_error_set(err, "out of memory for a pair");
    }
    return AD_OK;
}

ad_store_pair run_pair_row(const run_pair *p, size_t round, size_t index) {
    return (ad_store_pair){.round = (uint32_t)round,
                           .pair_index = index,
                           .rule = p->rule,
                           .prompt_index = p->prompt_index,
                           .level = p->level,
                           .prompt = p->prompt,
                           .chosen = p->chosen,
                           .rejected = p->rejected,
                           .chosen_lineage = p->chosen_lineage,
                           .chosen_sample = p->chosen_sample,
                           .rejected_lineage = p->rejected_lineage,
                           .rejected_sample = p->rejected_sample,
                           .chosen_correct = p->chosen_correct,
                           .rejected_correct = p->rejected_correct};
}

run_selection *run_selection_new(void) {
    run_selection *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    ad_vec_init(&s->labels, sizeof(run_label));
    ad_vec_init(&s->pairs, sizeof(run_pair));
    return s;
}

static int add_kept_row(void *vctx, const ad_store_sample *row, ad_error *err) {
    return row->kept ? add_candidate_row(vctx, row, err) : AD_OK;
}

static int add_pair_row(void *vctx, const ad_store_pair *row, ad_error *err) {
    return run_selection_add_pair(vctx, row, err);
}

int run_selection_load(ad_run *run, size_t round, run_selection **out, ad_error *err) {
    *out = NULL;
    run_selection *s = calloc(1, sizeof *s);
    if (!s) return ad_error_set(err, "out of memory");
    ad_vec_init(&s->labels, sizeof(run_label));
    ad_vec_init(&s->pairs, sizeof(run_pair));
    cand_loader cl;
    ad_vec_init(&cl.rows, sizeof(ad_store_sample));
    ad_vec_init(&cl.texts, sizeof(char *));
    /* the kept labels in the order select made them (sort_rows) */
    int rc =
        ad_store_samples_foreach(run->st, (uint32_t)round, AD_STAGE_SELECT, add_kept_row, &cl, err);
    if (rc == AD_OK) sort_rows(&cl);
    for (size_t i = 0; rc == AD_OK && i < cl.rows.n; i++) {
        const ad_store_sample *r = ad_vec_at(&cl.rows, i);
        rc = run_selection_add_label(s, r->prompt, r->completion, err);
    }
    loader_free(&cl);
    if (rc == AD_OK) rc = ad_store_pairs_foreach(run->st, (uint32_t)round, add_pair_row, s, err);
    if (rc != AD_OK) {
        run_selection_free(s);
        return ad_error_prefix(err, "round %zu selection: ", round);
    }
    *out = s;
    return AD_OK;
}

int run_round_candidates(ad_run *run, run_round *rr, ad_error *err) {
    if (rr->cands) return AD_OK;
    return run_candidates_load(run, rr->round, &rr->cands, err);
}

int run_round_selection(ad_run *run, run_round *rr, ad_error *err) {
    if (rr->sel) return AD_OK;
    return run_selection_load(run, rr->round, &rr->sel, err);
}
