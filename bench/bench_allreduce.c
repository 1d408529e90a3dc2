/* bench_allreduce.c: what one optimizer step's gradient exchange costs under
 * mpirun (docs/distributed.md checks its scaling model against these numbers).
 *
 * For the gradient sizes of the flagship model (3 layers x 128, ffn 512, the
 * reverse-add vocabulary) and the reference paper's 14M model (6 layers x 384,
 * ffn 1536), it times, on every rank:
 *   allreduce  MPI_Allreduce(SUM) of the n floats in place (the library's
 *              order: what a production data-parallel step would use);
 *   ordered    the rank-ordered sum autodidact uses for bits that do not
 *              depend on the rank count (an all-gather of n floats per rank,
 *              then a sum in rank order: objective_shards.c, dist.c);
 * and prints the median and best of --reps timed repetitions (after 2 warm-up
 * ones) with the bus bandwidth of a ring allreduce, 2 (N-1)/N * 4n bytes / t.
 *
 *   mpirun -np 2 --bind-to none build/bench/bench_allreduce [--reps 20]
 *
 * Alone (no launcher) it says so and exits 0: there is nothing to exchange. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "model/model.h"

typedef struct size_spec {
    const char *name;
    size_t layers, heads, dim, ffn;
} size_spec;

static const size_spec SIZES[] = {
    {"flagship", 3, 4, 128, 512},
    {"14M", 6, 6, 384, 1536},
};

#define VOCAB 15 /* reverse-add: <pad> <bos> <eos> 0-9 + = */

static size_t n_params_of(const size_spec *sz) {
    ad_model_config mc = ad_model_default_config();
    mc.n_layers = sz->layers;
    mc.n_heads = sz->heads;
    mc.d_model = sz->dim;
    mc.d_ff = sz->ffn;
    mc.vocab_size = VOCAB;
    mc.max_seq_len = 64;
    ad_model *m = NULL;
    ad_error err = {{0}};
    if (ad_model_create(&m, &mc, &err) != AD_OK) return 0;
    size_t n = m->n_params;
    ad_model_free(m);
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times reps calls of one exchange of x[n]; fills t[reps] (seconds, the
 * slowest rank's). */
static int time_exchange(int ordered, float *x, size_t n, int reps, double *t, ad_error *err) {
    for (int r = -2; r < reps; r++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((i % 97) * 0.001);
        if (ad_dist_barrier(err) != AD_OK) return AD_ERR;
        double t0 = ad_dist_time();
        int rc =
            ordered ? ad_dist_allreduce_sum_ordered(x, n, err) : ad_dist_allreduce_sum(x, n, err);
        if (rc != AD_OK) return AD_ERR;
        double dt = ad_dist_time() - t0, all[1024];
        int size = ad_dist_size();
        if (size > 1024) return ad_error_set(err, "too many ranks");
        if (ad_dist_gather(&dt, all, sizeof dt, 0, err) != AD_OK) return AD_ERR;
        for (int k = 1; ad_dist_rank() == 0 && k < size; k++)
            if (all[k] > all[0]) all[0] = all[k];
        if (r >= 0) t[r] = all[0];
    }
    return AD_OK;
}

int main(int argc, char **argv) {
    ad_error err = {{0}};
    if (ad_dist_init(&argc, &argv, &err) != AD_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    ad_dist_set_timeout(0); /* plain MPI_Wait: the timeout's polling may notice an end late */
    int reps = 20;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    if (reps < 1 || reps > 1000) reps = 20;
    int size = ad_dist_size(), rank = ad_dist_rank();
    if (size < 2) {
        printf("bench_allreduce: run it under mpirun -np 2 (or more); alone there is nothing "
               "to exchange\n");
        ad_dist_finalize();
        return 0;
    }
    int rc = AD_OK;
    for (size_t s = 0; rc == AD_OK && s < sizeof SIZES / sizeof *SIZES; s++) {
        size_t n = n_params_of(&SIZES[s]);
        float *x = malloc(n * sizeof *x);
        double *t = malloc((size_t)reps * sizeof *t);
        if (!n || !x || !t) rc = ad_error_set(&err, "out of memory");
        for (int ordered = 0; rc == AD_OK && ordered < 2; ordered++) {
            rc = time_exchange(ordered, x, n, reps, t, &err);
            if (rc != AD_OK || rank != 0) continue;
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            double med = t[reps / 2], bytes = 4.0 * (double)n;
            printf("RESULT %s %s ranks=%d params=%zu MB=%.2f median_ms=%.3f best_ms=%.3f "
                   "busbw_GBps=%.2f\n",
                   ordered ? "ordered" : "allreduce", SIZES[s].name, size, n, bytes / 1e6,
                   med * 1e3, t[0] * 1e3, 2.0 * (size - 1) / size * bytes / med / 1e9);
        }
        free(x);
        free(t);
    }
    if (rc != AD_OK) ad_dist_abort(err.msg, 1);
    ad_dist_finalize();
    return 0;
}
