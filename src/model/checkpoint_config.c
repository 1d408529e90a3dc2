/* checkpoint_config.c: a checkpoint's config.json: the model configuration in
 * Hugging Face LlamaConfig terms plus autodidact's own keys
 * ("position_encoding", "seed", "vocab"). Reading treats the file as untrusted:
 * every key is type- and range-checked and named in the error. Not for the
 * tensors (checkpoint_tensors.c) or the directory swap (checkpoint.c). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint_internal.h"
#include "util/atomic_file.h"
#include "util/json.h"

/* JSON numbers are doubles: integers above 2^53 are not exact. */
#define MAX_JSON_INT 9007199254740992.0

/* The shortest decimal that reads back as exactly f, as a raw JSON number. */
static cJSON *json_float(float f) {
    char s[40];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, (double)f);
        if ((float)strtod(s, NULL) == f) break;
    }
    return cJSON_CreateRaw(s);
}

static cJSON *json_size(size_t v) {
    char s[32];
    snprintf(s, sizeof s, "%zu", v);
    return cJSON_CreateRaw(s);
}

/* Builds the config object; NULL when out of memory. */
static cJSON *config_json(const ad_model_config *c, const ad_vocab *v) {
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    int ok = arch && cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    ok = ok && cJSON_AddStringToObject(o, "model_type", "llama");
    struct {
        const char *key;
        size_t value;
    } sizes[] = {{"hidden_size", c->d_model},
                 {"intermediate_size", c->d_ff},
                 {"num_hidden_layers", c->n_layers},
                 {"num_attention_heads", c->n_heads},
                 {"num_key_value_heads", c->n_heads},
                 {"vocab_size", c->vocab_size},
                 {"max_position_embeddings", c->max_seq_len}};
    for (size_t i = 0; ok && i < sizeof sizes / sizeof sizes[0]; i++)
        ok = cJSON_AddItemToObject(o, sizes[i].key, json_size(sizes[i].value));
    ok = ok && cJSON_AddItemToObject(o, "rms_norm_eps", json_float(c->rms_eps));
    ok = ok && cJSON_AddItemToObject(o, "rope_theta", json_float(c->rope_theta));
    ok = ok && cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings != 0);
    ok = ok && cJSON_AddStringToObject(o, "hidden_act", "silu");
    ok = ok && cJSON_AddItemToObject(o, "initializer_range", json_float(c->init_std));
    ok = ok && cJSON_AddFalseToObject(o, "attention_bias");
    ok = ok && cJSON_AddFalseToObject(o, "mlp_bias");
    ok = ok && cJSON_AddNumberToObject(o, "pad_token_id", AD_TOK_PAD);
    ok = ok && cJSON_AddNumberToObject(o, "bos_token_id", AD_TOK_BOS);
    ok = ok && cJSON_AddNumberToObject(o, "eos_token_id", AD_TOK_EOS);
    ok = ok && cJSON_AddStringToObject(o, "torch_dtype", "float32");
    ok = ok &&
         cJSON_AddStringToObject(o, "position_encoding", c->pos == AD_POS_ROPE ? "rope" : "none");
    /* A string: a u64 seed does not survive a trip through a double. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    ok = ok && cJSON_AddStringToObject(o, "seed", seed);
    cJSON *vocab = ok ? cJSON_AddArrayToObject(o, "vocab") : NULL;
    ok = vocab != NULL;
    for (size_t i = 0; ok && i < v->size; i++)
        ok = cJSON_AddItemToArray(vocab, cJSON_CreateString(v->tokens[i]));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int ad_ckpt_config_write(const char *path, const ad_model_config *c, const ad_vocab *v,
                         ad_error *err) {
    if (v->size != c->vocab_size)
        return ad_error_set(err,
                            "%s: the vocabulary has %zu tokens but the model's vocab_size is "
                            "%zu",
                            path, v->size, c->vocab_size);
    if (!isfinite(c->rms_eps) || !isfinite(c->rope_theta) || !isfinite(c->init_std))
        return ad_error_set(err, "%s: rms_eps, rope_theta and init_std must be finite", path);
    cJSON *o = config_json(c, v);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return ad_error_set(err, "%s: out of memory building the config", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* the terminating NUL becomes a final newline */
    int rc = ad_atomic_write(path, text, len + 1, err);
    free(text);
    return rc;
}

/* ---- reading --------------------------------------------------------------- */

/* Context for the key readers: the parsed object and the file's path. */
typedef struct reader {
    const cJSON *o;
    const char *path;
    ad_error *err;
} reader;

static const cJSON *get(const reader *r, const char *key, int required) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r->o, key);
    if (!it && required) ad_error_set(r->err, "%s: key \"%s\" is missing", r->path, key);
    return it;
}

/* A required positive integer. */
static int read_size(const reader *r, const char *key, size_t *out) {
    const cJSON *it = get(r, key, 1);
    if (!it) return AD_ERR;
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || !(d >= 1 && d <= MAX_JSON_INT) || d != floor(d))
        return ad_error_set(r->err, "%s: \"%s\" must be a positive integer", r->path, key);
    *out = (size_t)d;
    return AD_OK;
}

/* A positive finite float; `fallback` when absent and not required. */
static int read_float(const reader *r, const char *key, int required, float fallback, float *out) {
    const cJSON *it = get(r, key, required);
    if (!it) {
        *out = fallback;
        return required ? AD_ERR : AD_OK;
    }
    /* range-checked as a double first: casting 1e300 to float is undefined */
    double d = cJSON_IsNumber(it) ? it->valuedouble : 0;
    float f = d > 0 && d <= FLT_MAX ? (float)d : 0.0f;
    if (!(f > 0) || !isfinite(f))
        return ad_error_set(r->err, "%s: \"%s\" must be a positive finite number", r->path, key);
    *out = f;
    return AD_OK;
}

/* Optional key that must have a fixed value when present, given as its JSON
 * text: features we do not support (grouped-query attention, biases, other
 * activations, other special ids) are refused rather than ignored. */
static int read_fixed(const reader *r, const char *key, const char *want) {
    const cJSON *it = get(r, key, 0);
    if (!it) return AD_OK;
    char *shown = cJSON_PrintUnformatted(it);
    int rc = AD_OK;
    if (!shown || strcmp(shown, want))
        rc = ad_error_set(r->err, "%s: \"%s\" is %.80s; autodidact supports only %s", r->path, key,
                          shown ? shown : "?", want);
    free(shown);
    return rc;
}

static int read_seed(const reader *r, uint64_t *seed) {
    const cJSON *it = get(r, "seed", 0);
    *seed = 0;
    if (!it) return AD_OK;
    if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= MAX_JSON_INT &&
        it->valuedouble == floor(it->valuedouble)) {
        *seed = (uint64_t)it->valuedouble;
        return AD_OK;
    }
    if (cJSON_IsString(it) && it->valuestring[0] >= '0' && it->valuestring[0] <= '9') {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(it->valuestring, &end, 10);
        if (!*end && errno == 0) {
            *seed = (uint64_t)s;
            return AD_OK;
        }
    }
    return ad_error_set(r->err, "%s: \"seed\" must be an unsigned 64-bit integer", r->path);
}

/* "vocab": the token strings by id, specials first; rebuilt with ad_vocab_build
 * so the same rules apply as when a task makes it. */
static int read_vocab(const reader *r, size_t vocab_size, ad_vocab *v) {
    const cJSON *arr = get(r, "vocab", 1);
    if (!arr) return AD_ERR;
    if (!cJSON_IsArray(arr)) return ad_error_set(r->err, "%s: \"vocab\" is not a list", r->path);
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n != vocab_size)
        return ad_error_set(r->err, "%s: \"vocab\" lists %zu tokens but vocab_size is %zu", r->path,
                            n, vocab_size);
    if (n < 3 || n > AD_VOCAB_MAX)
        return ad_error_set(r->err, "%s: \"vocab\" must hold 3 to %d tokens, has %zu", r->path,
                            AD_VOCAB_MAX, n);
    static const char *const specials[3] = {"<pad>", "<bos>", "<eos>"};
    const char **syms = calloc(n, sizeof *syms);
    if (!syms) return ad_error_set(r->err, "%s: out of memory", r->path);
    size_t i = 0;
    int rc = AD_OK;
    for (const cJSON *it = arr->child; it && rc == AD_OK; it = it->next, i++) {
        if (!cJSON_IsString(it))
            rc = ad_error_set(r->err, "%s: \"vocab\" entry %zu is not a string", r->path, i);
        else if (i < 3 && strcmp(it->valuestring, specials[i]))
            rc = ad_error_set(r->err, "%s: \"vocab\" entry %zu must be \"%s\", found \"%.40s\"",
                              r->path, i, specials[i], it->valuestring);
        else
            syms[i] = it->valuestring;
    }
    if (rc == AD_OK && ad_vocab_build(v, syms + 3, n - 3, r->err) != AD_OK)
        rc = ad_error_prefix(r->err, "%s: ", r->path);
    if (rc == AD_OK && v->size != n)
        rc = ad_error_set(r->err, "%s: \"vocab\" lists a token twice", r->path);
    free(syms);
    return rc;
}

/* Reads the keys of a parsed config. */
static int read_config(const reader *r, ad_model_config *c, ad_vocab *v) {
    *c = ad_model_default_config();
    if (read_size(r, "hidden_size", &c->d_model) || read_size(r, "intermediate_size", &c->d_ff) ||
        read_size(r, "num_hidden_layers", &c->n_layers) ||
        read_size(r, "num_attention_heads", &c->n_heads) ||
        read_size(r, "vocab_size", &c->vocab_size) ||
        read_size(r, "max_position_embeddings", &c->max_seq_len) ||
        read_float(r, "rms_norm_eps", 1, 0, &c->rms_eps) ||
        read_float(r, "rope_theta", 1, 0, &c->rope_theta) ||
        read_float(r, "initializer_range", 0, c->init_std, &c->init_std) || read_seed(r, &c->seed))
        return AD_ERR;
    const cJSON *tie = get(r, "tie_word_embeddings", 1);
    if (!tie) return AD_ERR;
    if (!cJSON_IsBool(tie))
        return ad_error_set(r->err, "%s: \"tie_word_embeddings\" must be true or false", r->path);
    c->tie_embeddings = cJSON_IsTrue(tie);
    const cJSON *pos = get(r, "position_encoding", 1);
    if (!pos) return AD_ERR;
    if (cJSON_IsString(pos) && !strcmp(pos->valuestring, "none"))
        c->pos = AD_POS_NONE;
    else if (cJSON_IsString(pos) && !strcmp(pos->valuestring, "rope"))
        c->pos = AD_POS_ROPE;
    else
        return ad_error_set(r->err, "%s: \"position_encoding\" must be \"none\" or \"rope\"",
                            r->path);
    char heads[32];
    snprintf(heads, sizeof heads, "%zu", c->n_heads);
    if (read_fixed(r, "num_key_value_heads", heads) || read_fixed(r, "hidden_act", "\"silu\"") ||
        read_fixed(r, "attention_bias", "false") || read_fixed(r, "mlp_bias", "false") ||
        read_fixed(r, "pad_token_id", "0") || read_fixed(r, "bos_token_id", "1") ||
        read_fixed(r, "eos_token_id", "2"))
        return AD_ERR;
    if (read_vocab(r, c->vocab_size, v) != AD_OK) return AD_ERR;
    if (ad_model_config_validate(c, r->err) != AD_OK)
        return ad_error_prefix(r->err, "%s: ", r->path);
    return AD_OK;
}

int ad_ckpt_config_read(const char *path, ad_model_config *c, ad_vocab *v, ad_error *err) {
    char *text;
    size_t len;
    if (ad_read_file(path, AD_CKPT_MAX_JSON, &text, &len, err) != AD_OK) return AD_ERR;
    cJSON *o = ad_json_parse_strict(text, len, err);
    int rc;
    if (!o)
        rc = ad_error_prefix(err, "%s: ", path);
    else if (!cJSON_IsObject(o))
        rc = ad_error_set(err, "%s: not a JSON object", path);
    else {
        reader r = {o, path, err};
        rc = read_config(&r, c, v);
    }
    cJSON_Delete(o);
    free(text);
    return rc;
}
