/* test_checkpoint.c: checkpoint directories: bit-exact round trips (weights,
 * moments, step, trainer state, vocabulary, config) for tied/untied and
 * NoPE/RoPE models; recovery from a crash mid-swap; refusal of mismatched,
 * corrupt and truncated files with messages; a fuzz loop over corrupted files;
 * and an independent check of the written files with Python. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "st_python.h"
#include "util/atomic_file.h"
#include "util/rng.h"

static char tmpdir[256];
static const char *chars = "0123456789+= \"\\\n";

static void in_tmp(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void fill_random(float *x, size_t n, uint64_t seed) {
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)ad_rng_normal(&rng);
    /* Values whose bits a sloppy format would not keep. */
    if (n > 3) {
        x[0] = -0.0f;
        x[1] = 1e-40f; /* subnormal */
        x[2] = 3.4028235e38f;
    }
}

static ad_model_config tiny_config(ad_pos_encoding pos, int tied) {
    ad_model_config c = ad_model_default_config();
    c.n_layers = 2;
    c.n_heads = 2;
    c.d_model = 8;
    c.d_ff = 12;
    c.max_seq_len = 32;
    c.vocab_size = 3 + strlen(chars);
    c.pos = pos;
    c.tie_embeddings = tied;
    c.rope_theta = 500000.0f;
    c.rms_eps = 1e-5f;
    c.init_std = 0.037f;
    c.seed = UINT64_MAX - 12345; /* not representable as a double */
    return c;
}

typedef struct fixture {
    ad_model *m;
    ad_vocab v;
    ad_adamw opt;
} fixture;

/* A model with random (not initial) weights, its vocabulary, and moments. */
static int make_fixture(fixture *f, ad_pos_encoding pos, int tied) {
    ad_error err = {{0}};
    ad_model_config c = tiny_config(pos, tied);
    memset(f, 0, sizeof *f);
    if (ad_model_create(&f->m, &c, &err) != AD_OK || ad_vocab_from_chars(&f->v, chars, &err) ||
        ad_adamw_init(&f->opt, f->m, &(ad_adamw_config){0.9f, 0.98f, 1e-12f, 0.01f, 1.0f}, &err)) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return AD_ERR;
    }
    fill_random(f->m->params, f->m->n_params, 11 + (uint64_t)pos * 2 + (uint64_t)tied);
    fill_random(f->opt.m, f->opt.n, 12);
    fill_random(f->opt.v, f->opt.n, 13);
    f->opt.step = 1234;
    return AD_OK;
}

static void free_fixture(fixture *f) {
    ad_model_free(f->m);
    ad_adamw_free(&f->opt);
}

static const char *state_text =
    "{\n  \"optimizer_step\": 1234,\n  \"rng\": [\"18446744073709551615\", "
    "\"7\"], \"note\": \"caf\xc3\xa9\"\n}\n";

/* Checks that a loaded checkpoint equals the fixture bit for bit. */
static void check_same(const fixture *f, const ad_model *m, const ad_vocab *v, const ad_adamw *opt,
                       const char *state) {
    CHECK(m != NULL);
    if (!m) return;
    const ad_model_config *a = &f->m->cfg, *b = &m->cfg;
    CHECK(a->n_layers == b->n_layers && a->n_heads == b->n_heads && a->d_model == b->d_model &&
          a->d_ff == b->d_ff && a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len);
    CHECK(a->rms_eps == b->rms_eps && a->init_std == b->init_std && a->rope_theta == b->rope_theta);
    CHECK(a->pos == b->pos && a->tie_embeddings == b->tie_embeddings);
    CHECK_MSG(a->seed == b->seed, "seed %llu", (unsigned long long)b->seed);
    CHECK(m->n_params == f->m->n_params &&
          !memcmp(m->params, f->m->params, m->n_params * sizeof(float)));
    CHECK(m->w.lm_head == (b->tie_embeddings ? m->w.embed : m->w.lm_head));
    CHECK(v->size == f->v.size && v->max_token_len == f->v.max_token_len);
    for (size_t i = 0; i < v->size && i < AD_VOCAB_MAX; i++)
        CHECK_MSG(!strcmp(v->tokens[i], f->v.tokens[i]), "token %zu", i);
    CHECK(!memcmp(v->single_char, f->v.single_char, sizeof v->single_char));
    if (opt) {
        CHECK(opt->n == f->opt.n && opt->m && opt->v && opt->step == f->opt.step);
        if (opt->m && opt->v && opt->n == f->opt.n) {
            CHECK(!memcmp(opt->m, f->opt.m, opt->n * sizeof(float)));
            CHECK(!memcmp(opt->v, f->opt.v, opt->n * sizeof(float)));
        }
        CHECK(opt->cfg.beta1 == 0.5f); /* left as the caller set it */
    }
    if (state) CHECK(!strcmp(state, state_text));
}

/* Loads dir with optimizer and trainer state and compares it with f. */
static void load_and_compare(const fixture *f, const char *dir) {
    ad_model *m = NULL;
    ad_vocab v;
    ad_adamw opt = {.cfg = {.beta1 = 0.5f}};
    char *state = NULL;
    ad_error err = {{0}};
    CHECK_MSG(ad_checkpoint_load(dir, &m, &v, &opt, &state, &err) == AD_OK, "%s", err.msg);
    check_same(f, m, &v, &opt, state);
    ad_model_free(m);
    ad_adamw_free(&opt);
    free(state);
}

/* Loads only the weights of dir and returns params[i] (NaN when loading fails). */
static float loaded_param(const char *dir, size_t i) {
    ad_model *m = NULL;
    ad_vocab v;
    ad_error err = {{0}};
    if (ad_checkpoint_load(dir, &m, &v, NULL, NULL, &err) != AD_OK) {
        fprintf(stderr, "  load: %s\n", err.msg);
        return NAN;
    }
    float x = m->params[i];
    ad_model_free(m);
    return x;
}

static void round_trip(ad_pos_encoding pos, int tied) {
    fixture f;
    if (make_fixture(&f, pos, tied) != AD_OK) {
        CHECK(0);
        return;
    }
    char dir[512];
    in_tmp(dir, sizeof dir,
           pos == AD_POS_ROPE ? (tied ? "rope_tied" : "rope") : (tied ? "nope_tied" : "nope"));
    ad_error err = {{0}};
    CHECK(!ad_checkpoint_exists(dir));
    CHECK_MSG(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, state_text, &err) == AD_OK, "%s", err.msg);
    CHECK(ad_checkpoint_exists(dir));
    ad_model *m = NULL;
    ad_vocab v;
    load_and_compare(&f, dir);

    /* Overwrite with a checkpoint without optimizer and state: both are gone. */
    f.m->params[5] += 1.0f;
    CHECK_MSG(ad_checkpoint_save(dir, f.m, &f.v, NULL, NULL, &err) == AD_OK, "%s", err.msg);
    char old[600];
    snprintf(old, sizeof old, "%s.old", dir);
    CHECK(!file_exists(old));
    ad_adamw opt = {.cfg = {.beta1 = 0.5f}};
    char *state = (char *)1;
    CHECK_MSG(ad_checkpoint_load(dir, &m, &v, &opt, &state, &err) == AD_OK, "%s", err.msg);
    CHECK(m && m->params[5] == f.m->params[5]);
    CHECK(opt.m == NULL && opt.v == NULL && opt.n == 0 && opt.step == 0 && opt.cfg.beta1 == 0.5f);
    CHECK(state == NULL);
    ad_model_free(m);
    /* Loading the weights alone needs neither. */
    CHECK(loaded_param(dir, 5) == f.m->params[5]);
    free_fixture(&f);
}

static void test_round_trip_nope_untied(void) {
    round_trip(AD_POS_NONE, 0);
}
static void test_round_trip_nope_tied(void) {
    round_trip(AD_POS_NONE, 1);
}
static void test_round_trip_rope_untied(void) {
    round_trip(AD_POS_ROPE, 0);
}
static void test_round_trip_rope_tied(void) {
    round_trip(AD_POS_ROPE, 1);
}

/* The files follow the Hugging Face conventions and parse in Python. */
static void test_files_on_disk(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_ROPE, 0) != AD_OK) return;
    char dir[512], path[700];
    in_tmp(dir, sizeof dir, "hf");
    ad_error err = {{0}};
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, state_text, &err) == AD_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text;
    size_t len;
    CHECK(ad_read_file(path, 1 << 20, &text, &len, &err) == AD_OK);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    CHECK(o != NULL);
    if (o) {
        CHECK(!strcmp(cJSON_GetObjectItem(o, "model_type")->valuestring, "llama"));
        CHECK(!strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "architectures"), 0)->valuestring,
                      "LlamaForCausalLM"));
        CHECK(cJSON_GetObjectItem(o, "hidden_size")->valueint == 8);
        CHECK(cJSON_GetObjectItem(o, "intermediate_size")->valueint == 12);
        CHECK(cJSON_GetObjectItem(o, "num_key_value_heads")->valueint == 2);
        CHECK(cJSON_GetObjectItem(o, "max_position_embeddings")->valueint == 32);
        CHECK(cJSON_GetObjectItem(o, "rms_norm_eps")->valuedouble == 1e-5);
        CHECK(cJSON_GetObjectItem(o, "rope_theta")->valuedouble == 500000.0);
        CHECK(!strcmp(cJSON_GetObjectItem(o, "position_encoding")->valuestring, "rope"));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "tie_word_embeddings")));
        const cJSON *voc = cJSON_GetObjectItem(o, "vocab");
        CHECK(cJSON_GetArraySize(voc) == 3 + (int)strlen(chars));
        CHECK(!strcmp(cJSON_GetArrayItem(voc, 0)->valuestring, "<pad>"));
        CHECK(!strcmp(cJSON_GetArrayItem(voc, 3 + 13)->valuestring, "\""));
    }
    cJSON_Delete(o);
    free(text);
    /* Tensor names and [out, in] shapes as in Hugging Face Llama checkpoints. */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ad_safetensors *st = NULL;
    CHECK(ad_safetensors_open(&st, path, 0, &err) == AD_OK);
    if (st) {
        const ad_safetensors_tensor *t =
            ad_safetensors_find(st, "model.layers.1.mlp.gate_proj.weight");
        CHECK(t && t->ndim == 2 && t->shape[0] == 12 && t->shape[1] == 8);
        t = ad_safetensors_find(st, "model.layers.1.mlp.down_proj.weight");
        CHECK(t && t->shape[0] == 8 && t->shape[1] == 12);
        t = ad_safetensors_find(st, "lm_head.weight");
        CHECK(t && t->shape[0] == 19 && t->shape[1] == 8);
        CHECK(ad_safetensors_count(st) == 2 * 9 + 3);
        CHECK(ad_safetensors_metadata(st, "format") &&
              !strcmp(ad_safetensors_metadata(st, "format"), "pt"));
        ad_safetensors_close(st);
    }
    const char *files[3] = {"model.safetensors", "optimizer.safetensors", "config.json"};
    for (int i = 0; i < 3; i++) {
        char out[8192];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        int rc = st_python_check(path, out, sizeof out);
        if (rc == ST_PYTHON_ABSENT) {
            fprintf(stderr, "  note: /usr/bin/python3 absent, Python reader check skipped\n");
            break;
        }
        CHECK_MSG(rc == 0, "%s: %s", files[i], out);
        CHECK(strstr(out, i == 0 ? "ok 21" : i == 1 ? "ok 42" : "ok json") != NULL);
    }
    free_fixture(&f);
}

/* Copies a checkpoint directory's files (flat) from src to dst. */
static void copy_dir(const char *src, const char *dst) {
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/* '%s'/", dst, src, dst);
    CHECK(system(cmd) == 0);
}

static void test_recovery(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_NONE, 0) != AD_OK) return;
    char dir[512], old[600], tmp[600], path[700];
    in_tmp(dir, sizeof dir, "rec");
    snprintf(old, sizeof old, "%s.old", dir);
    ad_error err = {{0}};
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, state_text, &err) == AD_OK);

    /* Crash between the two renames: only DIR.old is left. */
    CHECK(rename(dir, old) == 0);
    CHECK(ad_checkpoint_exists(dir));
    load_and_compare(&f, dir);
    /* The next save puts DIR back and removes DIR.old. */
    CHECK_MSG(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, state_text, &err) == AD_OK, "%s", err.msg);
    CHECK(!file_exists(old));
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(file_exists(path));

    /* Crash before removing DIR.old: DIR wins; save removes the stale one. */
    copy_dir(dir, old);
    f.m->params[0] = 42.0f;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, state_text, &err) == AD_OK);
    CHECK(!file_exists(old));
    CHECK(loaded_param(dir, 0) == 42.0f);

    /* Crash mid-write: a partial DIR.tmp.<dead pid> is ignored, then removed. */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)child);
    CHECK(ad_mkdir_p(tmp, &err) == AD_OK);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    CHECK(ad_atomic_write(path, "garbage", 7, &err) == AD_OK);
    snprintf(path, sizeof path, "%s/config.json.tmp.%ld", tmp, (long)child);
    CHECK(ad_atomic_write(path, "{", 1, &err) == AD_OK);
    CHECK(loaded_param(dir, 0) == 42.0f);
    f.m->params[0] = 43.0f;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, NULL, &err) == AD_OK);
    CHECK(!file_exists(tmp));
    /* A temporary of a live process (pid 1) is left alone. */
    snprintf(tmp, sizeof tmp, "%s.tmp.1", dir);
    CHECK(ad_mkdir_p(tmp, &err) == AD_OK);
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, NULL, &err) == AD_OK);
    CHECK(file_exists(tmp));
    rmdir(tmp);

    /* A directory holding foreign files is never replaced or deleted. */
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    CHECK(ad_atomic_write(path, "mine", 4, &err) == AD_OK);
    f.m->params[0] = 44.0f;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, NULL, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "holds 'notes.txt', which is not part of a checkpoint"), "%s",
              err.msg);
    CHECK(file_exists(path));
    CHECK(loaded_param(dir, 0) == 43.0f);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(!file_exists(tmp)); /* the failed save cleaned up after itself */
    free_fixture(&f);
}

/* Saves a fresh checkpoint at dir and returns the path of one of its files. */
static void fresh(fixture *f, const char *dir, const char *file, char *path, size_t cap) {
    ad_error err = {{0}};
    CHECK_MSG(ad_checkpoint_save(dir, f->m, &f->v, &f->opt, state_text, &err) == AD_OK, "%s",
              err.msg);
    snprintf(path, cap, "%s/%s", dir, file);
}

/* Rewrites config.json after setting key to the JSON value `json` (NULL deletes). */
static void edit_config(const char *dir, const char *key, const char *json) {
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text;
    size_t len;
    ad_error err;
    if (ad_read_file(path, 1 << 20, &text, &len, &err) != AD_OK) return;
    cJSON *o = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(o, key);
    if (json) cJSON_AddItemToObject(o, key, cJSON_Parse(json));
    text = cJSON_Print(o);
    CHECK(ad_atomic_write(path, text, strlen(text), &err) == AD_OK);
    free(text);
    cJSON_Delete(o);
}

/* Loads dir, expecting a refusal whose message contains want. */
static void expect_refused(const char *what, const char *dir, const char *want) {
    ad_model *m = (ad_model *)1;
    ad_vocab v;
    ad_adamw opt = {0};
    char *state = (char *)1;
    ad_error err = {{0}};
    int rc = ad_checkpoint_load(dir, &m, &v, &opt, &state, &err);
    CHECK_MSG(rc == AD_ERR && m == NULL && state == NULL && opt.m == NULL, "%s: accepted", what);
    CHECK_MSG(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
    if (rc == AD_OK) {
        ad_model_free(m);
        ad_adamw_free(&opt);
        free(state);
    }
}

/* A kill during a save that is never repeated (a run's last partial): tidy
 * removes DIR.old and dead writers' DIR.tmp.<pid> beside a whole DIR, and
 * keeps DIR.old when it is all there is. */
static void test_tidy(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_NONE, 0) != AD_OK) return;
    char dir[512], old[600], tmp[600];
    in_tmp(dir, sizeof dir, "tidy");
    snprintf(old, sizeof old, "%s.old", dir);
    ad_error err = {{0}};
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, state_text, &err) == AD_OK);
    copy_dir(dir, old);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)child);
    CHECK(ad_mkdir_p(tmp, &err) == AD_OK);
    CHECK_MSG(ad_checkpoint_tidy(dir, &err) == AD_OK, "%s", err.msg);
    CHECK(!file_exists(old));
    CHECK(!file_exists(tmp));
    load_and_compare(&f, dir);
    /* Crash between the renames: DIR.old is the checkpoint, and stays. */
    CHECK(rename(dir, old) == 0);
    CHECK(ad_checkpoint_tidy(dir, &err) == AD_OK);
    CHECK(file_exists(old));
    load_and_compare(&f, dir);
    free_fixture(&f);
}

static void test_config_mismatch(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_NONE, 0) != AD_OK) return;
    char dir[512], path[700];
    in_tmp(dir, sizeof dir, "bad");
    struct {
        const char *what, *key, *json, *want;
    } cases[] = {
        {"vocab size", "vocab_size", "20", "\"vocab\" lists 19 tokens but vocab_size is 20"},
        {"hidden size", "hidden_size", "4",
         "model.safetensors: tensor 'model.embed_tokens.weight' has shape [19, 8], expected "
         "[19, 4]"},
        {"bigger", "hidden_size", "16", "too few for the 3888 parameters config.json describes"},
        {"ffn size", "intermediate_size", "10", "has shape [12, 8], expected [10, 8]"},
        {"layers", "num_hidden_layers", "3", "parameters config.json describes"},
        {"fewer layers", "num_hidden_layers", "1",
         "unexpected tensor 'model.layers.1.input_layernorm.weight'"},
        {"tied", "tie_word_embeddings", "true",
         "unexpected tensor 'lm_head.weight' (config.json says tie_word_embeddings is true)"},
        {"tie type", "tie_word_embeddings", "1", "\"tie_word_embeddings\" must be true or false"},
        {"gqa", "num_key_value_heads", "1",
         "\"num_key_value_heads\" is 1; autodidact supports only 2"},
        {"act", "hidden_act", "\"gelu\"", "\"hidden_act\" is \"gelu\"; autodidact supports only"},
        {"bias", "attention_bias", "true", "\"attention_bias\" is true"},
        {"bos", "bos_token_id", "5", "\"bos_token_id\" is 5"},
        {"pos", "position_encoding", "\"alibi\"",
         "\"position_encoding\" must be \"none\" or \"rope\""},
        {"missing", "hidden_size", NULL, "key \"hidden_size\" is missing"},
        {"negative", "hidden_size", "-8", "\"hidden_size\" must be a positive integer"},
        {"fraction", "hidden_size", "8.5", "\"hidden_size\" must be a positive integer"},
        {"huge", "hidden_size", "1e300", "\"hidden_size\" must be a positive integer"},
        {"eps", "rms_norm_eps", "0", "\"rms_norm_eps\" must be a positive finite number"},
        {"eps overflow", "rms_norm_eps", "1e300", "\"rms_norm_eps\" must be a positive finite"},
        {"seed", "seed", "\"-1\"", "\"seed\" must be an unsigned 64-bit integer"},
        {"seed range", "seed", "\"99999999999999999999\"", "\"seed\" must be an unsigned"},
        {"vocab type", "vocab", "\"abc\"", "\"vocab\" is not a list"},
        {"vocab order", "vocab",
         "[\"<bos>\",\"<pad>\",\"<eos>\",\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
         "\"9\",\"+\",\"=\",\" \",\"a\",\"b\",\"c\"]",
         "\"vocab\" entry 0 must be \"<pad>\", found \"<bos>\""},
        {"vocab dup", "vocab",
         "[\"<pad>\",\"<bos>\",\"<eos>\",\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
         "\"9\",\"+\",\"=\",\" \",\"a\",\"b\",\"a\"]",
         "\"vocab\" lists a token twice"},
        {"vocab entry", "vocab",
         "[\"<pad>\",\"<bos>\",\"<eos>\",\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
         "\"9\",\"+\",\"=\",\" \",\"a\",\"b\",7]",
         "\"vocab\" entry 18 is not a string"},
        {"vocab special", "vocab",
         "[\"<pad>\",\"<bos>\",\"<eos>\",\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
         "\"9\",\"+\",\"=\",\" \",\"a\",\"b\",\"<x>\"]",
         "looks like a special token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fresh(&f, dir, "config.json", path, sizeof path);
        edit_config(dir, cases[i].key, cases[i].json);
        expect_refused(cases[i].what, dir, cases[i].want);
    }
    /* Heads that do not divide d_model (the kv-head count agreeing). */
    fresh(&f, dir, "config.json", path, sizeof path);
    edit_config(dir, "num_attention_heads", "3");
    edit_config(dir, "num_key_value_heads", NULL);
    expect_refused("heads", dir, "3 heads do not divide d_model 8");
    /* Each message names the file. */
    fresh(&f, dir, "config.json", path, sizeof path);
    edit_config(dir, "hidden_size", NULL);
    char want[800];
    snprintf(want, sizeof want, "%s/config.json: key \"hidden_size\" is missing", dir);
    expect_refused("file named", dir, want);
    /* A sparse weights file as large as a much bigger config needs: the header,
     * read alone, is refused before the model (4.6 GB here) is allocated. */
    fresh(&f, dir, "config.json", path, sizeof path);
    edit_config(dir, "hidden_size", "12000");
    edit_config(dir, "intermediate_size", "16");
    char weights[700];
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    CHECK(truncate(weights, (off_t)8 << 30) == 0);
    expect_refused("sparse", dir, "its header declares 1432 values, too few for the");
    free_fixture(&f);
}

static void test_corrupt_files(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_NONE, 0) != AD_OK) return;
    char dir[512], path[700];
    in_tmp(dir, sizeof dir, "corrupt");
    ad_error err = {{0}};

    fresh(&f, dir, "config.json", path, sizeof path);
    CHECK(ad_atomic_write(path, "{\"hidden_size\": ", 16, &err) == AD_OK);
    expect_refused("config syntax", dir, "config.json: not valid JSON");
    fresh(&f, dir, "config.json", path, sizeof path);
    CHECK(ad_atomic_write(path, "[1]", 3, &err) == AD_OK);
    expect_refused("config array", dir, "config.json: not a JSON object");

    /* model.safetensors: truncated, emptied, extra tensor. */
    fresh(&f, dir, "model.safetensors", path, sizeof path);
    struct stat st;
    CHECK(stat(path, &st) == 0 && truncate(path, st.st_size - 10) == 0);
    expect_refused("truncated weights", dir,
                   "model.safetensors: tensor 'lm_head.weight': data_offsets [5120, 5728] reach "
                   "past the end of the data section (5718 bytes; file truncated?)");
    CHECK(truncate(path, 4) == 0);
    expect_refused("tiny weights", dir,
                   "model.safetensors: holds 4 bytes, too few for the 1432 parameters");
    fresh(&f, dir, "model.safetensors", path, sizeof path);
    {
        ad_safetensors *st = NULL;
        CHECK(ad_safetensors_open(&st, path, 0, &err) == AD_OK);
        size_t n = st ? ad_safetensors_count(st) : 0;
        ad_safetensors_entry *e = calloc(n + 1, sizeof *e);
        for (size_t i = 0; i < n; i++) {
            const ad_safetensors_tensor *t = ad_safetensors_at(st, i);
            e[i] = (ad_safetensors_entry){
                t->name, t->dtype, t->ndim, {t->shape[0], t->shape[1]}, t->data};
        }
        float extra[2] = {1, 2};
        e[n] = (ad_safetensors_entry){"model.extra.weight", AD_DTYPE_F32, 1, {2}, extra};
        char other[800];
        snprintf(other, sizeof other, "%s/x.safetensors", tmpdir);
        CHECK(ad_safetensors_write(other, e, n + 1, NULL, 0, &err) == AD_OK);
        CHECK(rename(other, path) == 0);
        /* And a file whose lm_head is F16 instead of F32. */
        for (size_t i = 0; i < n; i++)
            if (!strcmp(e[i].name, "lm_head.weight")) e[i].dtype = AD_DTYPE_F16;
        CHECK(ad_safetensors_write(other, e, n, NULL, 0, &err) == AD_OK);
        expect_refused("extra tensor", dir, "unexpected tensor 'model.extra.weight'");
        CHECK(rename(other, path) == 0);
        expect_refused("dtype", dir, "tensor 'lm_head.weight' has dtype F16, expected F32");
        /* A renamed tensor: the model's own is missing. */
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(e[i].name, "lm_head.weight")) e[i].dtype = AD_DTYPE_F32;
            if (!strcmp(e[i].name, "model.layers.1.mlp.up_proj.weight"))
                e[i].name = "model.layers.1.mlp.upp_proj.weight";
        }
        CHECK(ad_safetensors_write(path, e, n, NULL, 0, &err) == AD_OK);
        expect_refused("renamed", dir,
                       "model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' is missing");
        free(e);
        ad_safetensors_close(st);
    }

    /* Optimizer and trainer state. */
    fresh(&f, dir, "optimizer.safetensors", path, sizeof path);
    CHECK(stat(path, &st) == 0 && truncate(path, st.st_size - 1) == 0);
    expect_refused("truncated moments", dir, "optimizer.safetensors: tensor");
    CHECK(truncate(path, 5) == 0);
    expect_refused("tiny moments", dir, "optimizer.safetensors: file is 5 bytes, too short");
    fresh(&f, dir, "trainer_state.json", path, sizeof path);
    CHECK(ad_atomic_write(path, "{\"optimizer_step\": 1233}", 24, &err) == AD_OK);
    expect_refused("step mismatch", dir,
                   "step 1234 disagrees with trainer_state.json's optimizer_step 1233");
    CHECK(ad_atomic_write(path, "{\"optimizer_step\": -1}", 22, &err) == AD_OK);
    expect_refused("negative step", dir, "\"optimizer_step\" must be a non-negative integer");
    CHECK(ad_atomic_write(path, "not json", 8, &err) == AD_OK);
    expect_refused("state syntax", dir, "trainer_state.json: not a valid JSON object");
    /* numbers that would overflow a cast to float or to an integer */
    const char *huge = "{\"optimizer_step\": 1234, \"round\": 1e300}";
    CHECK(ad_atomic_write(path, huge, strlen(huge), &err) == AD_OK);
    expect_refused("round 1e300", dir,
                   "trainer_state.json: \"round\" is 1e+300, outside the range of a float");
    const char *inf = "{\"optimizer_step\": 1234, \"sched\": {\"peak_lr\": -1e999}}";
    CHECK(ad_atomic_write(path, inf, strlen(inf), &err) == AD_OK);
    expect_refused("nested -inf", dir, "\"peak_lr\" is -inf, outside the range of a float");

    /* Nothing there at all. */
    in_tmp(dir, sizeof dir, "nothing");
    expect_refused("absent", dir, "no checkpoint here (config.json is missing)");
    free_fixture(&f);
}

/* Overwrites the first float of the data of a safetensors file with NaN (the
 * data begins after the 8-byte header length and the header). */
static void poke_nan(const char *path) {
    FILE *fp = fopen(path, "r+b");
    unsigned char len8[8];
    CHECK(fp && fread(len8, 1, 8, fp) == 8);
    if (!fp) return;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    float nan = NAN;
    CHECK(fseek(fp, (long)(8 + hlen), SEEK_SET) == 0 && fwrite(&nan, sizeof nan, 1, fp) == 1);
    fclose(fp);
}

/* A checkpoint whose weights or moments hold a NaN is refused at load. */
static void test_nonfinite_load(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_NONE, 0) != AD_OK) return;
    char dir[512], path[700];
    in_tmp(dir, sizeof dir, "nanload");
    ad_error err = {{0}};
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, NULL, &err) == AD_OK);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    poke_nan(path);
    ad_model *m = NULL;
    ad_vocab v;
    ad_adamw opt = {.cfg = f.opt.cfg};
    CHECK(ad_checkpoint_load(dir, &m, &v, &opt, NULL, &err) == AD_ERR && !m && !opt.m);
    CHECK_MSG(strstr(err.msg, "moment of") && strstr(err.msg, "holds nan"), "%s", err.msg);
    CHECK(ad_checkpoint_load(dir, &m, &v, NULL, NULL, &err) == AD_OK); /* weights alone: fine */
    ad_model_free(m);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    poke_nan(path);
    CHECK(ad_checkpoint_load(dir, &m, &v, NULL, NULL, &err) == AD_ERR && !m);
    CHECK_MSG(strstr(err.msg, "the weights of") && strstr(err.msg, "holds nan"), "%s", err.msg);
    free_fixture(&f);
}

static void test_save_refusals(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_NONE, 0) != AD_OK) return;
    char dir[512];
    in_tmp(dir, sizeof dir, "refuse");
    ad_error err = {{0}};
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, NULL, &err) == AD_OK);
    float before = f.m->params[3];
    f.m->params[3] = 99.0f;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, "{\"a\": ", &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "trainer state: not a valid JSON object"), "%s", err.msg);
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, "[1, 2]", &err) == AD_ERR);
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, "{\"peak_lr\": 1e39}", &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "\"peak_lr\" is 1e+39, outside the range of a float"), "%s", err.msg);
    ad_vocab small;
    CHECK(ad_vocab_from_chars(&small, "01", &err) == AD_OK);
    CHECK(ad_checkpoint_save(dir, f.m, &small, NULL, NULL, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "the vocabulary has 5 tokens but the model's vocab_size is 19"), "%s",
              err.msg);
    ad_adamw bad = f.opt;
    bad.n = 3;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &bad, NULL, &err) == AD_ERR);
    CHECK(ad_checkpoint_save("", f.m, &f.v, NULL, NULL, &err) == AD_ERR);
    CHECK(ad_checkpoint_save("/", f.m, &f.v, NULL, NULL, &err) == AD_ERR);
    /* A plain file in the way. */
    char file[600];
    in_tmp(file, sizeof file, "plainfile");
    CHECK(ad_atomic_write(file, "x", 1, &err) == AD_OK);
    CHECK(ad_checkpoint_save(file, f.m, &f.v, NULL, NULL, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "exists and is not a directory"), "%s", err.msg);
    /* Non-finite weights or moments are never saved: the message names the tensor. */
    f.m->params[3] = NAN;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, NULL, NULL, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "not saved: the weights of model.embed_tokens.weight holds nan at "
                              "entry 3"),
              "%s", err.msg);
    f.m->params[3] = 99.0f;
    float keep = f.opt.v[5];
    f.opt.v[5] = INFINITY;
    CHECK(ad_checkpoint_save(dir, f.m, &f.v, &f.opt, NULL, &err) == AD_ERR);
    CHECK_MSG(
        strstr(err.msg, "the second moment of model.embed_tokens.weight holds inf at entry 5"),
        "%s", err.msg);
    f.opt.v[5] = keep;
    /* The old checkpoint is untouched by all of the above. */
    CHECK(loaded_param(dir, 3) == before);
    /* Trailing slashes name the same directory. */
    char slashed[600];
    snprintf(slashed, sizeof slashed, "%s//", dir);
    CHECK(ad_checkpoint_exists(slashed));
    CHECK(ad_checkpoint_save(slashed, f.m, &f.v, NULL, NULL, &err) == AD_OK);
    CHECK(loaded_param(dir, 3) == 99.0f);
    free_fixture(&f);
}

/* Corrupts bytes of one file of a checkpoint at random and loads it; loading
 * must fail cleanly or succeed, never crash (run under ASan by make test-asan). */
static void fuzz_file(fixture *f, const char *dir, const char *file, int iters, ad_rng *rng) {
    char path[700];
    fresh(f, dir, file, path, sizeof path);
    char *orig;
    size_t len;
    ad_error err = {{0}};
    if (ad_read_file(path, 1 << 24, &orig, &len, &err) != AD_OK) return;
    unsigned char *buf = malloc(len);
    int refused = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)ad_rng_below(rng, 3);
        /* Aim at the headers and JSON, where the structure is. */
        size_t span = len < 600 ? len : 600;
        for (int k = 0; k < flips; k++)
            buf[ad_rng_below(rng, span)] =
                (unsigned char)"{}[]\",:0123456789-.e x\xff"[ad_rng_below(rng, 23)];
        size_t n = ad_rng_below(rng, 6) == 0 ? ad_rng_below(rng, len + 1) : len;
        CHECK(ad_atomic_write(path, buf, n, &err) == AD_OK);
        ad_model *m = NULL;
        ad_vocab v;
        ad_adamw opt = {0};
        char *state = NULL;
        if (ad_checkpoint_load(dir, &m, &v, &opt, &state, &err) == AD_OK) {
            CHECK(m && m->n_params == f->m->n_params);
            ad_model_free(m);
            ad_adamw_free(&opt);
            free(state);
        } else {
            CHECK(m == NULL && err.msg[0] != '\0');
            refused++;
        }
    }
    CHECK(refused > 0);
    free(buf);
    free(orig);
}

static void test_fuzz(void) {
    fixture f;
    if (make_fixture(&f, AD_POS_ROPE, 0) != AD_OK) return;
    char dir[512];
    in_tmp(dir, sizeof dir, "fuzz");
    ad_rng rng;
    ad_rng_seed(&rng, 7);
    int iters = test_quick() ? 150 : 400;
    fuzz_file(&f, dir, "config.json", iters, &rng);
    fuzz_file(&f, dir, "model.safetensors", iters, &rng);
    fuzz_file(&f, dir, "optimizer.safetensors", iters / 2, &rng);
    fuzz_file(&f, dir, "trainer_state.json", iters / 4, &rng);
    free_fixture(&f);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ad_test_checkpoint.%ld", (long)getpid());
    ad_error err;
    if (ad_mkdir_p(tmpdir, &err) != AD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    RUN(test_round_trip_nope_untied);
    RUN(test_round_trip_nope_tied);
    RUN(test_round_trip_rope_untied);
    RUN(test_round_trip_rope_tied);
    RUN(test_files_on_disk);
    RUN(test_recovery);
    RUN(test_tidy);
    RUN(test_config_mismatch);
    RUN(test_corrupt_files);
    RUN(test_save_refusals);
    RUN(test_nonfinite_load);
    RUN(test_fuzz);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
