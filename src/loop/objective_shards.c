/* objective_shards.c: data parallelism inside one optimizer step (run.shards).
 *
 * The step's n sequences are cut into S slices, slice s holding sequences
 * [s*n/S, (s+1)*n/S). Each slice's gradient is computed from zero (its own
 * micro-batches of cfg.batch_size rows, scale 1 / completion tokens of the
 * whole step, as ad_trainer_step), then the S gradients are summed in slice
 * order: g = ((g_0 + g_1) + g_2) + ... Floating-point addition is not
 * associative, so this order is the whole point: it is the same whoever
 * computed the slices, and so the bits depend on S, not on the number of
 * ranks. With a group of G ranks (G divides S) member k computes slices
 * k*S/G .. (k+1)*S/G - 1 and an all-gather in group order hands every member
 * all S gradients in slice order. Every member then takes the same AdamW
 * step on the same sum, so the replicas stay identical.
 *
 * Cost: every member receives S gradients (S * 4 bytes per parameter) and
 * adds them; a reduce-scatter of a fixed tree would move less (see
 * docs/distributed.md). S = 1 never comes here (today's bits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/objective.h"

/* Slice s's gradient into t->model->grads (zeroed first) and its loss sum
 * (-sum_i w_i log p_i) into *loss. */
static int slice_gradient(ad_trainer *t, const ad_objective_batch *b, size_t from, size_t to,
                          float scale, double *lp, double *loss, ad_error *err) {
    size_t rows = t->cfg.batch_size;
    *loss = 0;
    ad_trainer_begin_step(t);
    for (size_t i = from; i < to; i += rows) {
        size_t k = to - i < rows ? to - i : rows;
        if (ad_trainer_forward(t, b->seqs + i, k, lp, err) != AD_OK) return AD_ERR;
        for (size_t j = 0; j < k; j++)
            *loss -= (b->weights ? (double)b->weights[i + j] : 1.0) * lp[j];
        ad_trainer_backward(t, b->weights ? b->weights + i : NULL, scale);
    }
    return AD_OK;
}

/* Sums the S gradients all[S][np] in slice order into grads, and the losses. */
static void sum_in_order(const float *all, const double *losses, size_t S, size_t np, float *grads,
                         double *loss) {
    memcpy(grads, all, np * sizeof *grads);
    *loss = losses[0];
    for (size_t s = 1; s < S; s++) {
        const float *g = all + s * np;
        for (size_t i = 0; i < np; i++)
            grads[i] += g[i];
        *loss += losses[s];
    }
}

int ad_objective_sharded_step(ad_trainer *t, const ad_objective_params *p,
                              const ad_objective_batch *b, ad_objective_stats *st, ad_error *err) {
    size_t S = p->shards, G = (size_t)ad_dist_group_size(p->shard_group);
    size_t me = (size_t)ad_dist_group_rank(p->shard_group), per = S / G;
    size_t targets = 0, tokens = 0, np = t->model->n_params, n = b->n;
    if (S % G) return ad_error_set(err, "run.shards = %zu: not a multiple of %zu ranks", S, G);
    if (ad_trainer_check_examples(t, b->seqs, n, &targets, &tokens, err) != AD_OK) return AD_ERR;
    if (targets == 0) return ad_error_set(err, "sft: empty step");
    float *mine = malloc(per * np * sizeof *mine), *all = NULL;
    int nonfinite = 0; /* each slice's begin_step clears the trainer's flag */
    double *lp = malloc(t->cfg.batch_size * sizeof *lp), loss = 0;
    double *mine_loss = malloc((per + S) * sizeof *mine_loss), *losses = mine_loss + per;
    if (G > 1) all = malloc(S * np * sizeof *all);
    int rc = mine && (all || G == 1) && lp && mine_loss
                 ? AD_OK
                 : ad_error_set(err, "out of memory (%zu shards)", S);
    for (size_t k = 0; rc == AD_OK && k < per; k++) {
        size_t s = me * per + k;
        rc = slice_gradient(t, b, s * n / S, (s + 1) * n / S, 1.0f / (float)targets, lp,
                            &mine_loss[k], err);
        if (rc == AD_OK) memcpy(mine + k * np, t->model->grads, np * sizeof *mine);
        nonfinite |= t->step_nonfinite;
    }
    /* alone every slice is here already, in order */
    const float *grads_all = G > 1 ? all : mine;
    const double *loss_all = G > 1 ? losses : mine_loss;
    if (rc == AD_OK && G > 1)
        rc = ad_dist_group_allgather(p->shard_group, mine, all, per * np * sizeof *mine, err);
    if (rc == AD_OK && G > 1)
        rc = ad_dist_group_allgather(p->shard_group, mine_loss, losses, per * sizeof *losses, err);
    if (rc == AD_OK) sum_in_order(grads_all, loss_all, S, np, t->model->grads, &loss);
    /* a non-finite loss in any slice skips the step, as without shards; with
     * several ranks the summed losses carry it to every member */
    if (rc == AD_OK && (nonfinite || !isfinite(loss))) t->step_nonfinite = 1;
    free(all);
    free(mine);
    free(lp);
    free(mine_loss);
    if (rc != AD_OK) {
        ad_trainer_begin_step(t); /* drop the partial gradients */
        return ad_error_prefix(err, "sft (%zu shards): ", S);
    }
    st->grad_norm = ad_trainer_finish_step(t, &st->lr);
    st->loss = loss / (double)targets;
    st->n_tokens = tokens;
    st->n_targets = targets;
    return AD_OK;
}
