/* checkpoint.c: saving and loading a checkpoint directory, and the directory
 * swap that makes a save all-or-nothing.
 *
 * The story of a save: every file is written into DIR.tmp.<pid> (each one
 * atomically, so fsynced) and the directory is fsynced; then DIR is renamed to
 * DIR.old, DIR.tmp.<pid> to DIR, the parent is fsynced and DIR.old removed. A
 * crash leaves one of: DIR whole (maybe with a stale DIR.old or DIR.tmp.*), or
 * only DIR.old whole (between the two renames). Loading therefore reads DIR, or
 * DIR.old when DIR has no config.json; the next save cleans up what is stale.
 *
 * Removing directories is dangerous when a user points --out at the wrong
 * place, so this file only ever deletes the checkpoint's own file names (and
 * their atomic-write temporaries); a directory holding anything else is refused.
 * Not for the file formats: see checkpoint_config.c and checkpoint_tensors.c. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/checkpoint_internal.h"
#include "model/safetensors.h"
#include "util/atomic_file.h"
#include "util/json.h"

#define PATH_CAP 4096
#define JOIN_CAP (PATH_CAP + 320) /* a checked path, '/', and a file name */

static const char *const ckpt_files[4] = {"model.safetensors", "config.json",
                                          "optimizer.safetensors", "trainer_state.json"};

typedef struct ckpt_paths {
    char dir[PATH_CAP];    /* DIR without trailing slashes */
    char tmp[PATH_CAP];    /* DIR.tmp.<pid> */
    char old[PATH_CAP];    /* DIR.old */
    char parent[PATH_CAP]; /* the directory holding DIR */
    char base[PATH_CAP];   /* DIR's last component */
} ckpt_paths;

static int make_paths(const char *dir, ckpt_paths *p, ad_error *err) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n + 32 >= PATH_CAP || (n == 1 && dir[0] == '/'))
        return ad_error_set(err, "'%s' is not a usable checkpoint directory", dir);
    memcpy(p->dir, dir, n);
    p->dir[n] = '\0';
    /* n + 32 < PATH_CAP leaves room for the suffixes. */
    snprintf(p->tmp, PATH_CAP, "%.4000s.tmp.%ld", p->dir, (long)getpid());
    snprintf(p->old, PATH_CAP, "%.4000s.old", p->dir);
    char a[PATH_CAP], b[PATH_CAP];
    strcpy(a, p->dir);
    strcpy(b, p->dir);
    snprintf(p->parent, PATH_CAP, "%s", dirname(a));
    snprintf(p->base, PATH_CAP, "%s", basename(b));
    return AD_OK;
}

/* dir/name into out[JOIN_CAP]; returns 0 (and an empty out) if it does not fit,
 * which cannot happen for the paths make_paths accepts and readdir names. */
static int join(char *out, const char *dir, const char *name) {
    int n = snprintf(out, JOIN_CAP, "%s/%s", dir, name);
    if (n < 0 || n >= JOIN_CAP) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* 1 when s is non-empty and all decimal digits. */
static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* A checkpoint file name, or one of their atomic-write temporaries. */
static int is_ckpt_entry(const char *name) {
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(ckpt_files[i]);
        if (!strncmp(name, ckpt_files[i], n) &&
            (!name[n] || (!strncmp(name + n, ".tmp.", 5) && all_digits(name + n + 5))))
            return 1;
    }
    return 0;
}

/* Checks that path (if it exists) holds only checkpoint files; with do_remove,
 * then deletes them and the directory. */
static int scan_ckpt_dir(const char *path, int do_remove, ad_error *err) {
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT) return AD_OK;
        return ad_error_set(err, "%s: cannot open directory: %s", path, strerror(errno));
    }
    int rc = AD_OK;
    struct dirent *e;
    while (rc == AD_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!is_ckpt_entry(e->d_name))
            rc = ad_error_set(err,
                              "%s holds '%s', which is not part of a checkpoint; refusing to "
                              "replace or delete it",
                              path, e->d_name);
        else if (do_remove && unlinkat(dirfd(d), e->d_name, 0) != 0)
            rc = ad_error_set(err, "%s/%s: cannot remove: %s", path, e->d_name, strerror(errno));
    }
    closedir(d);
    if (rc == AD_OK && do_remove && rmdir(path) != 0)
        rc = ad_error_set(err, "%s: cannot remove directory: %s", path, strerror(errno));
    return rc;
}

/* Removes a checkpoint directory if it exists, refusing (before deleting
 * anything) when it holds foreign files. */
static int remove_ckpt_dir(const char *path, ad_error *err) {
    if (scan_ckpt_dir(path, 0, err) != AD_OK) return AD_ERR;
    return scan_ckpt_dir(path, 1, err);
}

/* Removes DIR.tmp.<pid> directories left by this process or by processes that
 * no longer run (a crash mid-save). Best effort for others' leftovers. */
static void remove_stale_tmps(const ckpt_paths *p) {
    DIR *d = opendir(p->parent);
    if (!d) return;
    size_t bl = strlen(p->base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, p->base, bl) || strncmp(e->d_name + bl, ".tmp.", 5) ||
            !all_digits(e->d_name + bl + 5))
            continue;
        long pid = strtol(e->d_name + bl + 5, NULL, 10);
        if (pid != (long)getpid() && (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            continue;
        char path[JOIN_CAP];
        ad_error ignored;
        if (join(path, p->parent, e->d_name)) remove_ckpt_dir(path, &ignored);
    }
    closedir(d);
}

/* The first number in a JSON value (searched depth first) that is not finite
 * or lies outside float range, or NULL. Its readers cast such numbers to float
 * or, after their own range check, to integers: a crafted 1e300 must stop
 * here rather than overflow a cast (undefined behaviour). */
static const cJSON *number_out_of_range(const cJSON *v) {
    if (cJSON_IsNumber(v))
        return isfinite(v->valuedouble) && fabs(v->valuedouble) <= FLT_MAX ? NULL : v;
    for (const cJSON *c = v->child; c; c = c->next) {
        const cJSON *bad = number_out_of_range(c);
        if (bad) return bad;
    }
    return NULL;
}

/* Parses a trainer state: a JSON object whose numbers are finite and within
 * float range, and whose "optimizer_step", when present, is a non-negative
 * integer. */
static int check_state(const char *label, const char *text, size_t len, int *has_step,
                       uint64_t *step, ad_error *err) {
    ad_error why = {{0}};
    cJSON *o = ad_json_parse_strict(text, len, &why);
    int rc = AD_OK;
    const cJSON *bad = NULL;
    *has_step = 0;
    if (!o || !cJSON_IsObject(o)) {
        rc = ad_error_set(err, "%s: not a valid JSON object%s%s", label, o ? "" : ": ",
                          o ? "" : why.msg);
    } else if ((bad = number_out_of_range(o))) {
        rc = ad_error_set(err, "%s: \"%s\" is %g, outside the range of a float", label,
                          bad->string ? bad->string : "(array item)", bad->valuedouble);
    } else {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "optimizer_step");
        if (s) {
            double d = s->valuedouble;
            if (!cJSON_IsNumber(s) || !(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
                rc = ad_error_set(err, "%s: \"optimizer_step\" must be a non-negative integer",
                                  label);
            *has_step = 1;
            *step = rc == AD_OK ? (uint64_t)d : 0;
        }
    }
    cJSON_Delete(o);
    return rc;
}

/* Writes every file of the checkpoint into p->tmp. */
static int write_files(const ckpt_paths *p, const ad_model *m, const ad_vocab *v,
                       const ad_adamw *opt, const char *state, ad_error *err) {
    char path[JOIN_CAP];
    join(path, p->tmp, "model.safetensors");
    if (ad_safetensors_save_model(path, m, err) != AD_OK) return AD_ERR;
    join(path, p->tmp, "config.json");
    if (ad_ckpt_config_write(path, &m->cfg, v, err) != AD_OK) return AD_ERR;
    join(path, p->tmp, "optimizer.safetensors");
    if (opt && ad_ckpt_moments_save(path, m, opt, err) != AD_OK) return AD_ERR;
    join(path, p->tmp, "trainer_state.json");
    if (state && ad_atomic_write(path, state, strlen(state), err) != AD_OK) return AD_ERR;
    return ad_fsync_dir(p->tmp, err);
}

/* Moves the complete p->tmp into place as p->dir (see the story at the top). */
static int swap_in(const ckpt_paths *p, ad_error *err) {
    struct stat st;
    int have_dir = lstat(p->dir, &st) == 0;
    if (have_dir && !S_ISDIR(st.st_mode))
        return ad_error_set(err, "%s exists and is not a directory", p->dir);
    if (have_dir) {
        /* DIR is whole, so a DIR.old beside it is stale. */
        if (scan_ckpt_dir(p->dir, 0, err) != AD_OK || remove_ckpt_dir(p->old, err) != AD_OK)
            return AD_ERR;
        if (rename(p->dir, p->old) != 0)
            return ad_error_set(err, "%s: cannot rename to %s: %s", p->dir, p->old,
                                strerror(errno));
    }
    if (rename(p->tmp, p->dir) != 0) {
        int e = errno;
        if (have_dir && rename(p->old, p->dir) != 0)
            return ad_error_set(err,
                                "%s: cannot rename into place (%s), and moving %s back "
                                "failed: the checkpoint is in %s",
                                p->tmp, strerror(e), p->old, p->old);
        return ad_error_set(err, "%s: cannot rename to %s: %s", p->tmp, p->dir, strerror(e));
    }
    if (ad_fsync_dir(p->parent, err) != AD_OK) return AD_ERR;
    /* The new checkpoint is in place; a DIR.old that cannot be removed now is
     * removed by the next save. */
    ad_error ignored;
    if (exists(p->old) && remove_ckpt_dir(p->old, &ignored) == AD_OK)
        ad_fsync_dir(p->parent, &ignored);
    return AD_OK;
}

/* AD_OK when every value of the model's tensors, read from `values` (its
 * parameters, or an optimizer moment laid out like them), is finite; else the
 * error names the first tensor and entry that is not. */
static int check_finite(const char *what, const ad_model *m, const float *values, ad_error *err) {
    for (size_t t = 0; t < m->n_tensors; t++) {
        const ad_tensor_info *ti = &m->tensors[t];
        const float *x = values + ti->offset;
        for (size_t i = 0; i < ti->numel; i++)
            if (!isfinite(x[i]))
                return ad_error_set(err, "%s of %s holds %g at entry %zu (a diverged model)", what,
                                    ti->name, (double)x[i], i);
    }
    return AD_OK;
}

/* Weights and, when given, both optimizer moments: all finite. */
static int check_all_finite(const ad_model *m, const ad_adamw *opt, ad_error *err) {
    if (check_finite("the weights", m, m->params, err) != AD_OK) return AD_ERR;
    if (opt && opt->m && check_finite("the first moment", m, opt->m, err) != AD_OK) return AD_ERR;
    if (opt && opt->v && check_finite("the second moment", m, opt->v, err) != AD_OK) return AD_ERR;
    return AD_OK;
}

int ad_checkpoint_save(const char *dir, const ad_model *m, const ad_vocab *v, const ad_adamw *opt,
                       const char *trainer_state_json, ad_error *err) {
    ckpt_paths p;
    if (make_paths(dir, &p, err) != AD_OK) return AD_ERR;
    if (v->size != m->cfg.vocab_size)
        return ad_error_set(err,
                            "%s: the vocabulary has %zu tokens but the model's vocab_size is %zu",
                            p.dir, v->size, m->cfg.vocab_size);
    if (opt && (opt->n != m->n_params || !opt->m || !opt->v))
        return ad_error_set(err,
                            "%s: the optimizer holds %zu moments, the model has %zu parameters",
                            p.dir, opt->n, m->n_params);
    int has_step;
    uint64_t step;
    if (trainer_state_json &&
        check_state("trainer state", trainer_state_json, strlen(trainer_state_json), &has_step,
                    &step, err) != AD_OK)
        return ad_error_prefix(err, "%s: ", p.dir);
    if (check_all_finite(m, opt, err) != AD_OK)
        return ad_error_prefix(err, "%s: not saved: ", p.dir);
    remove_stale_tmps(&p);
    if (exists(p.tmp))
        return ad_error_set(err, "%s: a leftover temporary directory could not be removed", p.tmp);
    if (ad_mkdir_p(p.tmp, err) != AD_OK) return AD_ERR;
    ad_error ignored;
    if (write_files(&p, m, v, opt, trainer_state_json, err) != AD_OK || swap_in(&p, err) != AD_OK) {
        remove_ckpt_dir(p.tmp, &ignored);
        return AD_ERR;
    }
    return AD_OK;
}

/* The directory to read: DIR, or DIR.old after a crash between the renames. */
static const char *source_dir(const ckpt_paths *p) {
    char path[JOIN_CAP];
    join(path, p->dir, "config.json");
    if (exists(path)) return p->dir;
    join(path, p->old, "config.json");
    if (exists(path)) return p->old;
    return NULL;
}

int ad_checkpoint_tidy(const char *dir, ad_error *err) {
    ckpt_paths p;
    if (make_paths(dir, &p, err) != AD_OK) return AD_ERR;
    remove_stale_tmps(&p);
    /* DIR is only ever renamed into place whole, so beside it DIR.old is stale. */
    if (source_dir(&p) != p.dir || !exists(p.old)) return AD_OK;
    if (remove_ckpt_dir(p.old, err) != AD_OK) return AD_ERR;
    return ad_fsync_dir(p.parent, err);
}

int ad_checkpoint_exists(const char *dir) {
    ckpt_paths p;
    return make_paths(dir, &p, NULL) == AD_OK && source_dir(&p) != NULL;
}

/* Reads trainer_state.json when present (*text NULL when absent). */
static int read_state(const char *src, char **text, int *has_step, uint64_t *step, ad_error *err) {
    char path[JOIN_CAP];
    join(path, src, "trainer_state.json");
    *text = NULL;
    *has_step = 0;
    if (!exists(path)) return AD_OK;
    size_t len;
    if (ad_read_file(path, AD_CKPT_MAX_JSON, text, &len, err) != AD_OK) return AD_ERR;
    if (check_state(path, *text, len, has_step, step, err) != AD_OK) {
        free(*text);
        *text = NULL;
        return AD_ERR;
    }
    return AD_OK;
}

/* Allocates and reads the moments into *opt when optimizer.safetensors exists;
 * otherwise leaves opt with no moments. The step comes from the file's metadata
 * and must agree with the trainer state's "optimizer_step" when both exist. */
static int read_optimizer(const char *src, const ad_model *m, ad_adamw *opt, int has_step,
                          uint64_t state_step, ad_error *err) {
    char path[JOIN_CAP];
    join(path, src, "optimizer.safetensors");
    ad_adamw_config cfg = opt->cfg;
    ad_adamw o;
    memset(&o, 0, sizeof o);
    o.cfg = cfg;
    o.step = has_step ? state_step : 0;
    if (exists(path)) {
        uint64_t file_step;
        if (ad_adamw_init(&o, m, &cfg, err) != AD_OK) return AD_ERR;
        if (ad_ckpt_moments_load(path, m, &o, &file_step, err) != AD_OK) {
            ad_adamw_free(&o);
            return AD_ERR;
        }
        if (has_step && file_step != state_step) {
            ad_adamw_free(&o);
            return ad_error_set(err,
                                "%s: step %llu disagrees with trainer_state.json's "
                                "optimizer_step %llu",
                                path, (unsigned long long)file_step,
                                (unsigned long long)state_step);
        }
        o.step = file_step;
    }
    *opt = o;
    return AD_OK;
}

/* Refuses a config.json that describes a model larger than model.safetensors
 * could hold, before allocating it: a corrupt or hostile config must not make
 * us allocate gigabytes. The config has been validated, so nothing overflows. */
/* Before the model is allocated: the weights file's header must describe exactly
 * the parameters config.json does (a sparse or lying file is refused unread). */
static int check_weights_size(const char *path, const ad_model_config *c, ad_error *err) {
    size_t C = c->d_model, V = c->vocab_size;
    size_t n = V * C * (c->tie_embeddings ? 1 : 2) + C +
               c->n_layers * (4 * C * C + 3 * C * c->d_ff + 2 * C);
    struct stat st;
    if (stat(path, &st) != 0)
        return ad_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    if ((unsigned long long)st.st_size < (unsigned long long)n * sizeof(float))
        return ad_error_set(err,
                            "%s: holds %lld bytes, too few for the %zu parameters config.json "
                            "describes",
                            path, (long long)st.st_size, n);
    /* st_size alone trusts a sparse file's holes: the header must declare them too */
    size_t declared;
    if (ad_safetensors_header_numel(path, &declared, err) != AD_OK) return AD_ERR;
    if (declared < n)
        return ad_error_set(err,
                            "%s: its header declares %zu values, too few for the %zu "
                            "parameters config.json describes",
                            path, declared, n);
    return AD_OK;
}

int ad_checkpoint_load(const char *dir, ad_model **out, ad_vocab *v, ad_adamw *opt,
                       char **trainer_state_json, ad_error *err) {
    *out = NULL;
    if (trainer_state_json) *trainer_state_json = NULL;
    ckpt_paths p;
    if (make_paths(dir, &p, err) != AD_OK) return AD_ERR;
    const char *src = source_dir(&p);
    if (!src) return ad_error_set(err, "%s: no checkpoint here (config.json is missing)", p.dir);
    char path[JOIN_CAP];
    ad_vocab *voc = malloc(sizeof *voc);
    ad_model *m = NULL;
    char *state = NULL;
    int has_step = 0;
    uint64_t step = 0;
    ad_model_config cfg;
    join(path, src, "config.json");
    int rc = voc ? ad_ckpt_config_read(path, &cfg, voc, err)
                 : ad_error_set(err, "%s: out of memory", p.dir);
    char weights[JOIN_CAP];
    join(weights, src, "model.safetensors");
    if (rc == AD_OK) rc = check_weights_size(weights, &cfg, err);
    if (rc == AD_OK && ad_model_create(&m, &cfg, err) != AD_OK)
        rc = ad_error_prefix(err, "%s: ", path);
    strcpy(path, weights);
    if (rc == AD_OK) rc = ad_safetensors_load_model(path, m, err);
    if (rc == AD_OK && (trainer_state_json || opt))
        rc = read_state(src, &state, &has_step, &step, err);
    if (rc == AD_OK && opt) rc = read_optimizer(src, m, opt, has_step, step, err);
    if (rc == AD_OK && check_all_finite(m, opt, err) != AD_OK) {
        rc = ad_error_prefix(err, "%s: ", src);
        if (opt) ad_adamw_free(opt);
    }
    if (rc != AD_OK) {
        ad_model_free(m);
        free(state);
        free(voc);
        return AD_ERR;
    }
    if (trainer_state_json)
        *trainer_state_json = state;
    else
        free(state);
    *v = *voc;
    free(voc);
    *out = m;
    return AD_OK;
}
