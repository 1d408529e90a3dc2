/* checkpoint_tensors.c: a model's weights (model.safetensors) and its AdamW
 * moments (optimizer.safetensors) as safetensors files with Hugging Face names.
 * A file must hold exactly the model's tensors, F32, with the exact shapes:
 * a missing, misshapen or unknown tensor is an error, and nothing is copied
 * until the whole file has been checked. Not for config.json (checkpoint_config.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint_internal.h"
#include "model/safetensors.h"

#define NAME_CAP 128

/* A family of tensors stored per model tensor: file names are the model's
 * names plus a suffix, data comes from / goes to a flat buffer laid out like
 * the model's params. */
typedef struct tensor_set {
    const char *suffix;
    float *buf;
} tensor_set;

/* Writes every model tensor of every set, with metadata. */
static int save_sets(const char *path, const ad_model *m, const tensor_set *sets, size_t n_sets,
                     const ad_safetensors_meta *meta, size_t n_meta, ad_error *err) {
    size_t n = m->n_tensors * n_sets;
    ad_safetensors_entry *e = calloc(n, sizeof *e);
    char(*names)[NAME_CAP] = calloc(n, sizeof *names);
    int rc = AD_ERR;
    if (!e || !names) {
        ad_error_set(err, "%s: out of memory", path);
        goto done;
    }
    for (size_t s = 0; s < n_sets; s++)
        for (size_t i = 0; i < m->n_tensors; i++) {
            const ad_tensor_info *t = &m->tensors[i];
            size_t k = s * m->n_tensors + i;
            snprintf(names[k], NAME_CAP, "%s%s", t->name, sets[s].suffix);
            e[k].name = names[k];
            e[k].dtype = AD_DTYPE_F32;
            e[k].ndim = t->ndim;
            e[k].shape[0] = t->shape[0];
            e[k].shape[1] = t->shape[1];
            e[k].data = sets[s].buf + t->offset;
        }
    rc = ad_safetensors_write(path, e, n, meta, n_meta, err);
done:
    free(e);
    free(names);
    return rc;
}

/* The model tensor a file tensor stands for, or NULL when it is none. */
static const ad_tensor_info *tensor_for(const ad_model *m, const char *name, const tensor_set *sets,
                                        size_t n_sets) {
    size_t len = strlen(name);
    for (size_t s = 0; s < n_sets; s++) {
        size_t sl = strlen(sets[s].suffix);
        if (len <= sl || len - sl >= NAME_CAP || strcmp(name + len - sl, sets[s].suffix)) continue;
        char base[NAME_CAP];
        memcpy(base, name, len - sl);
        base[len - sl] = '\0';
        const ad_tensor_info *t = ad_model_find_tensor(m, base);
        if (t) return t;
    }
    return NULL;
}

/* Checks that f holds exactly the tensors of every set, then copies them. */
static int load_sets(const ad_safetensors *f, const ad_model *m, const tensor_set *sets,
                     size_t n_sets, ad_error *err) {
    const char *path = ad_safetensors_path(f);
    const ad_safetensors_tensor **found = calloc(m->n_tensors * n_sets, sizeof *found);
    if (!found) return ad_error_set(err, "%s: out of memory", path);
    /* Every tensor the model needs, with the right dtype and shape... */
    for (size_t s = 0; s < n_sets; s++)
        for (size_t i = 0; i < m->n_tensors; i++) {
            const ad_tensor_info *t = &m->tensors[i];
            char name[NAME_CAP];
            snprintf(name, sizeof name, "%s%s", t->name, sets[s].suffix);
            found[s * m->n_tensors + i] =
                ad_safetensors_expect(f, name, AD_DTYPE_F32, t->ndim, t->shape, err);
            if (!found[s * m->n_tensors + i]) {
                free(found);
                return AD_ERR;
            }
        }
    /* ...and nothing else. */
    for (size_t i = 0; i < ad_safetensors_count(f); i++) {
        const char *name = ad_safetensors_at(f, i)->name;
        if (!tensor_for(m, name, sets, n_sets)) {
            int tied_head = m->cfg.tie_embeddings && !strncmp(name, "lm_head.weight", 14);
            free(found);
            return ad_error_set(err, "%s: unexpected tensor '%.100s'%s", path, name,
                                tied_head ? " (config.json says tie_word_embeddings is true)"
                                          : " (not part of the model config.json describes)");
        }
    }
    for (size_t s = 0; s < n_sets; s++)
        for (size_t i = 0; i < m->n_tensors; i++) {
            const ad_safetensors_tensor *st = found[s * m->n_tensors + i];
            memcpy(sets[s].buf + m->tensors[i].offset, st->data, st->nbytes);
        }
    free(found);
    return AD_OK;
}

/* Opens a file that should hold n_sets copies of the model's parameters; files
 * larger than that could hold can be refused before reading them. */
static int open_for_model(ad_safetensors **f, const char *path, const ad_model *m, size_t n_sets,
                          ad_error *err) {
    size_t limit = m->n_params * sizeof(float) * n_sets + AD_SAFETENSORS_MAX_HEADER + 8;
    return ad_safetensors_open(f, path, limit, err);
}

int ad_safetensors_save_model(const char *path, const ad_model *m, ad_error *err) {
    tensor_set set = {"", m->params};
    ad_safetensors_meta meta = {"format", "pt"}; /* transformers requires it */
    return save_sets(path, m, &set, 1, &meta, 1, err);
}

int ad_safetensors_load_model(const char *path, ad_model *m, ad_error *err) {
    ad_safetensors *f;
    if (open_for_model(&f, path, m, 1, err) != AD_OK) return AD_ERR;
    tensor_set set = {"", m->params};
    int rc = load_sets(f, m, &set, 1, err);
    ad_safetensors_close(f);
    return rc;
}

int ad_ckpt_moments_save(const char *path, const ad_model *m, const ad_adamw *opt, ad_error *err) {
    if (opt->n != m->n_params || !opt->m || !opt->v)
        return ad_error_set(err, "%s: optimizer holds %zu moments, the model has %zu parameters",
                            path, opt->n, m->n_params);
    tensor_set sets[2] = {{".exp_avg", opt->m}, {".exp_avg_sq", opt->v}};
    char step[32];
    snprintf(step, sizeof step, "%llu", (unsigned long long)opt->step);
    ad_safetensors_meta meta[2] = {{"format", "pt"}, {"step", step}};
    return save_sets(path, m, sets, 2, meta, 2, err);
}

int ad_ckpt_moments_load(const char *path, const ad_model *m, ad_adamw *opt, uint64_t *step,
                         ad_error *err) {
    ad_safetensors *f;
    if (open_for_model(&f, path, m, 2, err) != AD_OK) return AD_ERR;
    const char *s = ad_safetensors_metadata(f, "step");
    char *end = NULL;
    errno = 0;
    unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || !end || *end || errno) {
        ad_error_set(err, "%s: metadata \"step\" is missing or not an unsigned integer", path);
        ad_safetensors_close(f);
        return AD_ERR;
    }
    tensor_set sets[2] = {{".exp_avg", opt->m}, {".exp_avg_sq", opt->v}};
    int rc = load_sets(f, m, sets, 2, err);
    if (rc == AD_OK) *step = (uint64_t)v;
    ad_safetensors_close(f);
    return rc;
}
