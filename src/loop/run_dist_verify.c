/* run_dist_verify.c: the task's checker spread over the ranks of an MPI job.
 *
 * The select stage (and acquire.auto_temperature's probe) gives every
 * candidate the checker's verdict. Under mpirun rank 0 broadcasts every
 * (prompt, answer) pair; rank r of N checks pairs [r n / N, (r + 1) n / N)
 * with its own copy of the task (a file task's external verifier processes
 * included: the slow case) and sends the verdicts back; rank 0 puts them in
 * candidate order. A verdict depends on nothing but its prompt and answer, so
 * the candidates' marks, and everything decided from them, are the
 * one-process run's, whatever N.
 *
 * Not here: the verdicts inside rl steps, which each lineage's rank computes
 * on its own while it trains (run_rl.c). */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "dist/dist_buf.h"
#include "loop/run_internal.h"

#define TAG_VERDICTS 19 /* run_dist.c's messages use 17 and 18 */

/* Pairs [*from, *to) of rank r among N. */
static void pair_range(size_t n, size_t r, size_t N, size_t *from, size_t *to) {
    *from = r * n / N;
    *to = (r + 1) * n / N;
}

/* The n pairs as the command's payload: n, then each prompt and answer with
 * its terminating NUL (so a worker reads them in place). */
static void put_pairs(ad_dist_buf *b, const ad_candidate *c, size_t n,
                      const char *(*prompt_of)(const void *ctx, size_t i), const void *ctx) {
    ad_dist_buf_put_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        const char *s[2] = {prompt_of(ctx, i), c[i].completion ? c[i].completion : ""};
        for (int j = 0; j < 2; j++) {
            size_t len = strlen(s[j]) + 1;
            ad_dist_buf_put_u64(b, len);
            ad_dist_buf_put(b, s[j], len);
        }
    }
}

/* Rank 0: rank r's verdicts (one byte each) into c[from, to). */
static int receive_verdicts(ad_candidate *c, size_t from, size_t to, int r, ad_error *err) {
    void *p = NULL;
    size_t len = 0;
    if (ad_dist_recv_bytes_await(&p, &len, r, TAG_VERDICTS, err) != AD_OK) return AD_ERR;
    int rc = len == to - from
                 ? AD_OK
                 : ad_error_set(err, "verdicts from rank %d: %zu bytes for %zu answers", r, len,
                                to - from);
    const unsigned char *ok = p;
    for (size_t i = from; rc == AD_OK && i < to; i++)
        c[i].correct = c[i].hit_eos && ok[i - from];
    free(p);
    return rc;
}

int run_dist_verify_candidates(ad_run *run, size_t round, ad_candidate *c, size_t n,
                               const char *(*prompt_of)(const void *ctx, size_t i), const void *ctx,
                               ad_error *err) {
    size_t N = (size_t)ad_dist_size(), from, to;
    if (N == 1) return run_verify_candidates(run, c, n, prompt_of, ctx, err);
    ad_dist_buf b = {0};
    put_pairs(&b, c, n, prompt_of, ctx);
    int rc = run_dist_command(RUN_CMD_VERIFY, round, 0, 0, &b, "verify", err);
    ad_dist_buf_free(&b);
    pair_range(n, 0, N, &from, &to);
    if (rc == AD_OK) rc = run_verify_candidates(run, c, to, prompt_of, ctx, err);
    for (size_t r = 1; rc == AD_OK && r < N; r++) {
        pair_range(n, r, N, &from, &to);
        rc = receive_verdicts(c, from, to, (int)r, err);
    }
    if (rc == AD_OK) run_log(run, "verify r%zu: %zu answers spread over %zu ranks", round, n, N);
    return rc;
}

/* The next NUL-terminated string of b (NULL when cut short or unterminated). */
static const char *take_string(ad_dist_buf *b) {
    size_t len = ad_dist_buf_get_u64(b);
    const char *s = len >= 1 && len <= b->n - b->off ? ad_dist_buf_take(b, len) : NULL;
    return s && s[len - 1] == '\0' ? s : NULL;
}

int run_dist_serve_verify(ad_run *run, ad_dist_buf *b, ad_error *err) {
    size_t n = ad_dist_buf_get_u64(b), from, to;
    if (b->failed || n > b->n) return ad_error_set(err, "verify: message cut short");
    pair_range(n, (size_t)ad_dist_rank(), (size_t)ad_dist_size(), &from, &to);
    const char **ps = calloc(to - from + 1, sizeof *ps), **as = calloc(to - from + 1, sizeof *as);
    unsigned char *ok = calloc(to - from + 1, 1);
    int rc = ps && as && ok ? AD_OK : ad_error_set(err, "verify: out of memory");
    for (size_t i = 0; rc == AD_OK && i < to; i++) {
        const char *p = take_string(b), *a = take_string(b);
        if (!p || !a) rc = ad_error_set(err, "verify: answer %zu cut short", i);
        if (rc == AD_OK && i >= from) {
            ps[i - from] = p;
            as[i - from] = a;
        }
    }
    if (rc == AD_OK) rc = run_verify_answers(run, ps, as, to - from, ok, err);
    if (rc == AD_OK) rc = ad_dist_send_bytes_await(ok, to - from, 0, TAG_VERDICTS, err);
    free(ps);
    free(as);
    free(ok);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "verify: ");
}
