/* train_driver.c: the step loop shared by `autodidact train` and the optimize
 * stage (see train_driver.h). */
#include "loop/train_driver.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/run.h"
#include "util/progress.h"

ad_train_session ad_train_session_default(const ad_objective *objective) {
    ad_train_session s;
    memset(&s, 0, sizeof s);
    s.objective = objective;
    s.params = ad_objective_default_params();
    s.label = "train";
    s.max_skipped = 10;
    return s;
}

/* The progress line's figures: smoothed loss, rate, gradient norm and, for
 * pairs, the share of pairs the policy already prefers. */
static void progress_extra(const ad_train_result *r, char *buf, size_t cap) {
    const ad_objective_stats *st = &r->last;
    int n = snprintf(buf, cap, "loss %.4f lr %.1e |g| %.2f", r->loss_ema, (double)st->lr,
                     (double)st->grad_norm);
    if (n > 0 && (size_t)n < cap && !isnan(st->pref_accuracy))
        snprintf(buf + n, cap - (size_t)n, " pref %.2f", st->pref_accuracy);
}

/* The final line's figures: the smoothed loss, and its peak when that stood
 * well above both ends: a session that climbed mid-way and came back down
 * (an lr near the edge of stability) looks converged by its last loss alone. */
static void final_extra(const ad_train_result *r, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "final loss %.4f", r->loss_ema);
    int peaked = r->peak_loss > 2 * r->loss_ema && r->peak_loss > 2 * r->first_loss;
    if (peaked && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " (peak %.4f at step %zu, from %.4f)", r->peak_loss,
                 r->peak_step, r->first_loss);
}

int ad_train_session_run(const ad_train_session *s, ad_trainer *tr, const ad_batch_source *src,
                         ad_train_result *out, ad_error *err) {
    size_t total = tr->cfg.schedule.total_steps, first = tr->sched_step;
    memset(out, 0, sizeof *out);
    ad_progress prog;
    ad_progress_begin(&prog, s->label, total, "tok");
    int rc = AD_OK;
    for (size_t step = first; step < total && rc == AD_OK; step++) {
        if (s->kill_stage) ad_run_maybe_kill(s->kill_stage, s->kill_round, step);
        ad_dist_set_stage("%s, step %zu", s->label ? s->label : "training", step);
        ad_objective_batch b;
        rc = src->fill(src->ctx, step, &b, err);
        if (rc == AD_OK) rc = ad_objective_step(s->objective, tr, &s->params, &b, &out->last, err);
        src->release(src->ctx);
        if (rc != AD_OK) break;
        out->steps++;
        out->tokens += (double)out->last.n_tokens;
        if (!isfinite(out->last.loss) || !isfinite(out->last.grad_norm)) {
            if (++out->skipped > s->max_skipped) {
                rc = ad_error_set(err,
                                  "%s: %zu steps had a non-finite loss or gradient norm and were "
                                  "skipped, the last at step %zu (loss %g, gradient norm %g): the "
                                  "learning rate is probably too high",
                                  s->label, out->skipped, step + 1, out->last.loss,
                                  (double)out->last.grad_norm);
                break;
            }
        } else {
            int first_good = out->steps == out->skipped + 1;
            out->loss_ema =
                first_good ? out->last.loss : 0.9 * out->loss_ema + 0.1 * out->last.loss;
            if (first_good) out->first_loss = out->last.loss;
            if (first_good || out->loss_ema > out->peak_loss) {
                out->peak_loss = out->loss_ema;
                out->peak_step = step + 1;
            }
        }
        char extra[96];
        progress_extra(out, extra, sizeof extra);
        ad_progress_update(&prog, step + 1, out->tokens, extra);
        /* the first step too: its loss, before any update, is the round's start */
        int sample = step == 0 || (step + 1) % (s->record_every ? s->record_every : 1) == 0 ||
                     step + 1 == total;
        if (rc == AD_OK && s->record && s->record_every && sample)
            rc = s->record(s->record_ctx, step, &out->last, err);
        if (rc == AD_OK && s->save && s->save_every && (step + 1) % s->save_every == 0 &&
            step + 1 < total)
            rc = s->save(s->save_ctx, tr, err);
    }
    if (rc == AD_OK && out->steps) {
        char extra[128];
        final_extra(out, extra, sizeof extra);
        ad_progress_end(&prog, out->tokens, extra);
    }
    return rc;
}
