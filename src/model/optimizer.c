/* optimizer.c: AdamW over the model's flat parameter buffer with global-norm
 * gradient clipping, and the warmup-stable-decay learning-rate schedule.
 * The element-wise update itself is ad_adamw_update (kernels.h).
 * Not here: gradient accumulation (the caller sums backward passes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/optimizer.h"

ad_adamw_config ad_adamw_default_config(void) {
    ad_adamw_config c;
    c.beta1 = 0.9f;
    c.beta2 = 0.98f;
    c.eps = 1e-12f;
    c.weight_decay = 0.01f;
    c.grad_clip = 1.0f;
    return c;
}

int ad_adamw_init(ad_adamw *opt, const ad_model *model, const ad_adamw_config *cfg, ad_error *err) {
    memset(opt, 0, sizeof *opt);
    if (!(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f))
        return ad_error_set(err, "adamw: betas must be in [0, 1), got %g and %g",
                            (double)cfg->beta1, (double)cfg->beta2);
    if (!(cfg->eps >= 0.0f) || !(cfg->weight_decay >= 0.0f) || !(cfg->grad_clip >= 0.0f))
        return ad_error_set(err, "adamw: eps, weight_decay and grad_clip must be >= 0");
    size_t n = model->n_params, bytes = ((n * sizeof(float)) + 63) & ~(size_t)63;
    float *m = aligned_alloc(64, bytes ? bytes : 64), *v = aligned_alloc(64, bytes ? bytes : 64);
    if (!m || !v) {
        free(m);
        free(v);
        return ad_error_set(err, "adamw: out of memory for %zu moments", n);
    }
    memset(m, 0, n * sizeof(float));
    memset(v, 0, n * sizeof(float));
    opt->cfg = *cfg;
    opt->n = n;
    opt->m = m;
    opt->v = v;
    opt->step = 0;
    return AD_OK;
}

void ad_adamw_free(ad_adamw *opt) {
    if (!opt) return;
    free(opt->m);
    free(opt->v);
    opt->m = opt->v = NULL;
    opt->n = 0;
}

/* When the gradient norm is not finite (an overflow somewhere upstream) the
 * update is skipped altogether (parameters, moments and step unchanged) so a
 * single bad batch cannot poison the weights; the caller sees the norm. */
float ad_adamw_step(ad_adamw *opt, ad_model *model, float lr) {
    size_t n = opt->n < model->n_params ? opt->n : model->n_params;
    double norm = sqrt(ad_sum_squares(model->grads, n));
    if (!isfinite(norm)) return (float)norm;
    const ad_adamw_config *c = &opt->cfg;
    /* as torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when below 1 */
    double coef = c->grad_clip > 0.0f ? (double)c->grad_clip / (norm + 1e-6) : 1.0;
    if (coef < 1.0) ad_scale(model->grads, n, (float)coef);
    uint64_t t = opt->step + 1;
    size_t nt = model->n_tensors, *seg = malloc(2 * nt * sizeof(size_t)), ns = 0;
    float *wd = malloc(nt * sizeof(float));
    for (size_t i = 0; seg && wd && i < nt; i++) {
        const ad_tensor_info *ti = &model->tensors[i];
        if (ti->offset + ti->numel > n) continue;
        seg[ns] = ti->offset;
        seg[nt + ns] = ti->numel;
        wd[ns++] = ti->is_norm ? 0.0f : c->weight_decay;
    }
    if (seg && wd) {
        ad_adamw_update_segments(model->params, model->grads, opt->m, opt->v, seg, seg + nt, wd, ns,
                                 lr, c->beta1, c->beta2, c->eps, t);
    } else {
        /* no memory for the segment table: one tensor at a time */
        for (size_t i = 0; i < nt; i++) {
            const ad_tensor_info *ti = &model->tensors[i];
            if (ti->offset + ti->numel > n) continue;
            ad_adamw_update(model->params + ti->offset, model->grads + ti->offset,
                            opt->m + ti->offset, opt->v + ti->offset, ti->numel, lr, c->beta1,
                            c->beta2, c->eps, ti->is_norm ? 0.0f : c->weight_decay, t);
        }
    }
    free(seg);
    free(wd);
    opt->step = t;
    return (float)norm;
}

/* Convention (0-based step s, W = warmup, D = decay, S = total steps):
 *   s < W:            lr = peak * (s + 1) / W        (the first step is not 0)
 *   W <= s < S - D:   lr = peak
 *   S - D <= s < S:   lr = peak * (f + (1 - f) * (1 + cos(pi * (s - (S - D) + 1) / D)) / 2)
 *                     which reaches floor f * peak exactly at the last step s = S - 1
 *   s >= S:           lr = f * peak.
 * When warmup and decay overlap (W + D > S) the two factors multiply. */
float ad_lr_at(const ad_lr_schedule *s, size_t step) {
    double peak = s->peak_lr, f = s->floor_ratio;
    if (f < 0.0) f = 0.0;
    if (f > 1.0) f = 1.0;
    if (step >= s->total_steps) return (float)(peak * f);
    double warm = 1.0, decay = 1.0;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        warm = (double)(step + 1) / (double)s->warmup_steps;
    size_t D = s->decay_steps < s->total_steps ? s->decay_steps : s->total_steps;
    size_t start = s->total_steps - D;
    if (D > 0 && step >= start) {
        double progress = (double)(step - start + 1) / (double)D;
        decay = f + (1.0 - f) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    return (float)(peak * warm * decay);
}
