/* test_config.c: the INI config mechanism on a sample registration table:
 * defaults, files, overrides, every kind of error with its exact message,
 * and the dump that re-reads identically. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "util/config.h"

typedef struct sample_cfg {
    uint64_t seed;
    int64_t layers;
    int rope;
    size_t batch;
    double lr;
    float temperature;
    char *name;
    int filter;
    ad_level_list base;
    ad_level_schedule schedule;
    int64_t offset;
} sample_cfg;

static const char *const filter_names[] = {"none", "length", "vote", NULL};

static const ad_config_key sample_keys[] = {
    {.name = "seed",
     .type = AD_CONFIG_U64,
     .offset = offsetof(sample_cfg, seed),
     .def = "42",
     .doc = "run seed"},
    {.name = "model.layers",
     .type = AD_CONFIG_INT,
     .offset = offsetof(sample_cfg, layers),
     .def = "6",
     .doc = "transformer blocks",
     .has_range = 1,
     .min = 1,
     .max = 64},
    {.name = "model.rope",
     .type = AD_CONFIG_BOOL,
     .offset = offsetof(sample_cfg, rope),
     .def = "false",
     .doc = "rotary positions instead of none"},
    {.name = "train.batch",
     .type = AD_CONFIG_SIZE,
     .offset = offsetof(sample_cfg, batch),
     .def = "32",
     .doc = "sequences per step"},
    {.name = "train.lr",
     .type = AD_CONFIG_DOUBLE,
     .offset = offsetof(sample_cfg, lr),
     .def = "5e-4",
     .doc = "peak learning rate",
     .has_range = 1,
     .min = 0,
     .max = 1},
    {.name = "sample.temperature",
     .type = AD_CONFIG_FLOAT,
     .offset = offsetof(sample_cfg, temperature),
     .def = "0.7",
     .doc = "sampling temperature"},
    {.name = "run.name",
     .type = AD_CONFIG_STRING,
     .offset = offsetof(sample_cfg, name),
     .def = "demo",
     .doc = "a label for the run"},
    {.name = "select.filter",
     .type = AD_CONFIG_ENUM,
     .offset = offsetof(sample_cfg, filter),
     .def = "length",
     .doc = "selection rule",
     .choices = filter_names},
    {.name = "data.base_levels",
     .type = AD_CONFIG_LEVELS,
     .offset = offsetof(sample_cfg, base),
     .def = "1-8",
     .doc = "levels of the labelled base data"},
    {.name = "curriculum.schedule",
     .type = AD_CONFIG_SCHEDULE,
     .offset = offsetof(sample_cfg, schedule),
     .def = "",
     .doc = "explicit level schedule"},
    {.name = "model.offset",
     .type = AD_CONFIG_INT,
     .offset = offsetof(sample_cfg, offset),
     .def = "-3",
     .doc = "a signed value registered after another section"},
};

static const ad_config_schema schema = {sample_keys, sizeof sample_keys / sizeof sample_keys[0]};

static void fresh(sample_cfg *c) {
    ad_error err;
    memset(c, 0, sizeof *c);
    int rc = ad_config_defaults(&schema, c, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
}

/* Loads text into fresh defaults and returns the status; err gets the message. */
static int load(sample_cfg *c, const char *text, ad_error *err) {
    fresh(c);
    return ad_config_load_string(&schema, c, text, "run.ini", err);
}

static void test_defaults(void) {
    sample_cfg c;
    fresh(&c);
    CHECK(c.seed == 42 && c.layers == 6 && c.rope == 0 && c.batch == 32);
    CHECK(c.lr == 5e-4 && c.temperature == 0.7f && strcmp(c.name, "demo") == 0);
    CHECK(c.filter == 1 && c.base.n == 8 && c.base.v[7].a == 8 && c.schedule.n_steps == 0);
    CHECK(c.offset == -3);
    ad_config_free(&schema, &c);
    CHECK(c.name == NULL && c.base.v == NULL);
}

static void test_load_file_syntax(void) {
    ad_error err = {{0}};
    sample_cfg c;
    const char *text = "\xEF\xBB\xBF; a comment\n"
                       "# another comment\n"
                       "seed = 7\n"
                       "\n"
                       "[model]\n"
                       "  layers = 12   ; inline comment\n"
                       "\trope = Yes\n"
                       "[train]\r\n"
                       "lr=0.001\r\n"
                       "[run]\n"
                       "name = my run #1 = fine\n"
                       "[select]\n"
                       "filter = VOTE\n"
                       "[data]\n"
                       "base_levels = 1-3, 5\n"
                       "[curriculum]\n"
                       "schedule = pairs(6-7)\n";
    int rc = load(&c, text, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.seed == 7 && c.layers == 12 && c.rope == 1 && c.lr == 0.001);
    CHECK(strcmp(c.name, "my run #1 = fine") == 0);
    CHECK(c.filter == 2 && c.base.n == 4 && c.schedule.n_steps == 13);
    CHECK(c.batch == 32); /* untouched keys keep their defaults */
    ad_config_free(&schema, &c);
    /* a dotted name before any section */
    rc = load(&c, "train.batch = 64\nmodel.layers = 2\n", &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.batch == 64 && c.layers == 2);
    ad_config_free(&schema, &c);
    /* an indented line after a key is a key of its own, never a continuation */
    rc = load(&c, "[model]\nlayers = 3\n    rope = on\n", &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.layers == 3 && c.rope == 1);
    ad_config_free(&schema, &c);
    CHECK(load(&c, "", &err) == AD_OK);
    ad_config_free(&schema, &c);
}

/* Each bad input gives exactly this message. */
static void expect_error(const char *text, const char *want) {
    ad_error err;
    sample_cfg c;
    err.msg[0] = 0;
    int rc = load(&c, text, &err);
    CHECK_MSG(rc == AD_ERR && strcmp(err.msg, want) == 0, "got \"%s\"\n  want \"%s\"", err.msg,
              want);
    ad_config_free(&schema, &c);
}

static void test_errors_name_line_key_value(void) {
    expect_error("seed = 1\n\n[model]\nlayers = abc\n",
                 "run.ini:4: model.layers = 'abc': not an integer");
    expect_error("[model]\nlayres = 3\n",
                 "run.ini:2: unknown key 'model.layres' (did you mean 'model.layers'?)");
    expect_error("[optimizer]\nbeta9 = 3\n", "run.ini:2: unknown key 'optimizer.beta9'");
    expect_error("[model]\nlayers = 3\nrope = no\nlayers = 4\n",
                 "run.ini:4: model.layers is set twice (first on line 2)");
    expect_error("model.layers = 3\n[model]\nlayers = 4\n",
                 "run.ini:3: model.layers is set twice (first on line 1)");
    expect_error("[model]\nlayers = 65\n",
                 "run.ini:2: model.layers = '65': must be between 1 and 64");
    expect_error("[model]\nlayers = 0x10\n", "run.ini:2: model.layers = '0x10': not an integer");
    expect_error("[model]\nlayers = 99999999999999999999\n",
                 "run.ini:2: model.layers = '99999999999999999999': not an integer");
    expect_error("[model]\nlayers =\n", "run.ini:2: model.layers = '': not an integer");
    expect_error("[train]\nbatch = -1\n",
                 "run.ini:2: train.batch = '-1': not a non-negative integer");
    expect_error("[train]\nlr = fast\n", "run.ini:2: train.lr = 'fast': not a number");
    expect_error("[train]\nlr = 1.5\n", "run.ini:2: train.lr = '1.5': must be between 0 and 1");
    expect_error("[train]\nlr = nan\n", "run.ini:2: train.lr = 'nan': not a number");
    expect_error("[sample]\ntemperature = 1e39\n",
                 "run.ini:2: sample.temperature = '1e39': not a number");
    expect_error(
        "[model]\nrope = maybe\n",
        "run.ini:2: model.rope = 'maybe': not a boolean (true/false, yes/no, on/off, 1/0)");
    expect_error("[select]\nfilter = lenght\n",
                 "run.ini:2: select.filter = 'lenght': not one of: none, length, vote");
    expect_error("[data]\nbase_levels = 1-x\n",
                 "run.ini:2: data.base_levels: level list '1-x': expected a number at column 3");
    expect_error("[curriculum]\nschedule = 1x6, 1x6\n",
                 "run.ini:2: curriculum.schedule: schedule '1x6, 1x6': level 1x6 appears twice");
    expect_error("seed = 1\n[model\n",
                 "run.ini:2: syntax error (expected '[section]' or 'key = value')");
    expect_error("seed = 1\njust words\n",
                 "run.ini:2: syntax error (expected '[section]' or 'key = value')");
    /* the first error is the one reported */
    expect_error("[model]\nlayers = x\nrope = y\n",
                 "run.ini:2: model.layers = 'x': not an integer");
    /* a line longer than inih's buffer is refused, not split into two lines */
    char long_text[600];
    snprintf(long_text, sizeof long_text, "seed = 1\n[run]\nname = %0500d\n", 7);
    ad_error err;
    sample_cfg c;
    CHECK(load(&c, long_text, &err) == AD_ERR);
    CHECK_MSG(strncmp(err.msg, "run.ini:3: line longer than", 27) == 0, "%s", err.msg);
    ad_config_free(&schema, &c);
}

static void test_overrides(void) {
    ad_error err;
    sample_cfg c;
    CHECK(load(&c, "[model]\nlayers = 3\n", &err) == AD_OK);
    CHECK(ad_config_set(&schema, &c, "model.layers=12", &err) == AD_OK && c.layers == 12);
    CHECK(ad_config_set(&schema, &c, " model.layers =  13 ", &err) == AD_OK && c.layers == 13);
    CHECK(ad_config_set(&schema, &c, "seed=18446744073709551615", &err) == AD_OK);
    CHECK(c.seed == UINT64_MAX);
    CHECK(ad_config_set(&schema, &c, "run.name=a b=c", &err) == AD_OK);
    CHECK(strcmp(c.name, "a b=c") == 0);
    CHECK(ad_config_set(&schema, &c, "data.base_levels=1-5x1-5", &err) == AD_OK && c.base.n == 25);
    CHECK(ad_config_set(&schema, &c, "model.layers=abc", &err) == AD_ERR);
    CHECK(strcmp(err.msg, "--set: model.layers = 'abc': not an integer") == 0);
    CHECK(c.layers == 13); /* unchanged */
    CHECK(ad_config_set(&schema, &c, "model.layerz=3", &err) == AD_ERR);
    CHECK(strcmp(err.msg, "--set: unknown key 'model.layerz' (did you mean 'model.layers'?)") == 0);
    CHECK(ad_config_set(&schema, &c, "model.layers", &err) == AD_ERR);
    CHECK(strcmp(err.msg, "--set 'model.layers': expected section.key=value") == 0);
    /* values an INI file could not hold are refused, so the dump always re-reads */
    CHECK(ad_config_set(&schema, &c, "run.name=a ;b", &err) == AD_ERR);
    CHECK(strstr(err.msg, "--set: run.name = 'a ;b': cannot be written") == err.msg);
    CHECK(ad_config_set(&schema, &c, "run.name=a\nb", &err) == AD_ERR);
    char big[300];
    snprintf(big, sizeof big, "run.name=%0200d", 1);
    CHECK(ad_config_set(&schema, &c, big, &err) == AD_ERR);
    CHECK(strstr(err.msg, "too long") != NULL);
    CHECK(strcmp(c.name, "a b=c") == 0);
    CHECK(ad_config_set_value(&schema, &c, "data.base_levels", "3-1", "--set", &err) == AD_ERR);
    CHECK(c.base.n == 25);
    ad_config_free(&schema, &c);
}

static int same_config(const sample_cfg *a, const sample_cfg *b) {
    if (a->seed != b->seed || a->layers != b->layers || a->rope != b->rope) return 0;
    if (a->batch != b->batch || a->lr != b->lr || a->temperature != b->temperature) return 0;
    if (strcmp(a->name, b->name) || a->filter != b->filter || a->offset != b->offset) return 0;
    if (a->base.n != b->base.n || strcmp(a->base.text, b->base.text)) return 0;
    for (size_t i = 0; i < a->base.n; i++)
        if (ad_level_cmp(a->base.v[i], b->base.v[i])) return 0;
    if (a->schedule.n_steps != b->schedule.n_steps || a->schedule.n_levels != b->schedule.n_levels)
        return 0;
    for (size_t i = 0; i < a->schedule.n_levels; i++)
        if (ad_level_cmp(a->schedule.levels[i], b->schedule.levels[i])) return 0;
    return strcmp(a->schedule.text, b->schedule.text) == 0;
}

static void test_dump_rereads_identically(void) {
    ad_error err;
    sample_cfg a, b;
    CHECK(load(&a, "[curriculum]\nschedule = pairs(6-10)\n[train]\nlr = 0.1\n", &err) == AD_OK);
    const char *sets[] = {"sample.temperature=0.3", "seed=123456789012345",
                          "model.offset=-77",       "run.name=x # y = z",
                          "model.rope=1",           "data.base_levels=(1-5,1-5)",
                          "select.filter=none"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK_MSG(ad_config_set(&schema, &a, sets[i], &err) == AD_OK, "%s", err.msg);
    char *text = NULL, *again = NULL;
    CHECK(ad_config_dump(&schema, &a, &text, &err) == AD_OK);
    CHECK(strstr(text, "\nlr = 0.1\n") != NULL);          /* shortest exact decimal */
    CHECK(strstr(text, "\ntemperature = 0.3\n") != NULL); /* for a float too */
    CHECK(strstr(text, "; peak learning rate\nlr = ") != NULL);
    CHECK(strstr(text, "schedule = pairs(6-10)\n") != NULL);
    /* top-level keys come before the first section */
    CHECK(strstr(text, "seed = 123456789012345") < strstr(text, "["));
    /* model.offset is written in [model], not in a second [model] */
    const char *m1 = strstr(text, "[model]");
    CHECK(m1 && !strstr(m1 + 1, "[model]"));
    int rc = load(&b, text, &err);
    CHECK_MSG(rc == AD_OK, "%s\n%s", err.msg, text);
    CHECK(same_config(&a, &b));
    CHECK(ad_config_dump(&schema, &b, &again, &err) == AD_OK);
    CHECK(text && again && strcmp(text, again) == 0);
    free(text);
    free(again);
    ad_config_free(&schema, &b);
    /* the same through a file written atomically */
    char path[] = "/tmp/ad_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(ad_config_save(&schema, &a, path, &err) == AD_OK);
    fresh(&b);
    rc = ad_config_load_file(&schema, &b, path, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(same_config(&a, &b));
    ad_config_free(&schema, &b);
    /* a file path appears in messages */
    FILE *f = fopen(path, "w");
    fputs("[model]\nlayers = many\n", f);
    fclose(f);
    fresh(&b);
    CHECK(ad_config_load_file(&schema, &b, path, &err) == AD_ERR);
    char want[256];
    snprintf(want, sizeof want, "%s:2: model.layers = 'many': not an integer", path);
    CHECK_MSG(strcmp(err.msg, want) == 0, "%s", err.msg);
    f = fopen(path, "wb");
    fwrite("seed = 1\n\0x", 1, 11, f);
    fclose(f);
    CHECK(ad_config_load_file(&schema, &b, path, &err) == AD_ERR && strstr(err.msg, "NUL"));
    unlink(path);
    CHECK(ad_config_load_file(&schema, &b, path, &err) == AD_ERR && strstr(err.msg, path));
    ad_config_free(&schema, &b);
    ad_config_free(&schema, &a);
}

static void test_schema_check(void) {
    ad_error err;
    ad_config_key keys[2] = {sample_keys[1], sample_keys[1]};
    ad_config_schema s = {keys, 2};
    CHECK(ad_config_schema_check(&s, &err) == AD_ERR && strstr(err.msg, "registered twice"));
    keys[1].name = "Model.Layers";
    CHECK(ad_config_schema_check(&s, &err) == AD_ERR && strstr(err.msg, "bad name"));
    keys[1].name = "a.b.c";
    CHECK(ad_config_schema_check(&s, &err) == AD_ERR);
    keys[1].name = "model.depth";
    keys[1].def = "100"; /* out of its own range */
    CHECK(ad_config_schema_check(&s, &err) == AD_ERR);
    CHECK(strcmp(err.msg,
                 "config schema: default: model.depth = '100': must be between 1 and 64") == 0);
    keys[1] = sample_keys[7];
    keys[1].choices = NULL;
    CHECK(ad_config_schema_check(&s, &err) == AD_ERR && strstr(err.msg, "enum without choices"));
    keys[1] = sample_keys[6];
    keys[1].doc = "x\ny";
    CHECK(ad_config_schema_check(&s, &err) == AD_ERR);
    keys[1].doc = "ok";
    CHECK(ad_config_schema_check(&s, &err) == AD_OK);
    CHECK(ad_config_find(&schema, "train.lr") == &sample_keys[4]);
    CHECK(ad_config_find(&schema, "train") == NULL);
}

static void test_doc_table(void) {
    ad_error err;
    char *t = NULL;
    CHECK(ad_config_doc_table(&schema, &t, &err) == AD_OK);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(strstr(t, "| key | type | default | meaning |") == t);
    CHECK(strstr(t, "| `model.layers` | int (1..64) | `6` | transformer blocks |\n") != NULL);
    CHECK(strstr(t, "| `select.filter` | enum: none/length/vote | `length` |") != NULL);
    free(t);
}

int main(void) {
    RUN(test_defaults);
    RUN(test_load_file_syntax);
    RUN(test_errors_name_line_key_value);
    RUN(test_overrides);
    RUN(test_dump_rereads_identically);
    RUN(test_schema_check);
    RUN(test_doc_table);
    return test_summary();
}
