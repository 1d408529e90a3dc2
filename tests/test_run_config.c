/* test_run_config.c: the run's configuration (src/loop/run_config.h): its
 * registration table, errors that name the file line, key and value (single
 * keys and cross-key checks), --set overrides, the snapshot that reloads to the
 * same values, and every ready config in examples/ loading and opening its task.
 *
 * Not here: the INI mechanism itself (test_config.c) or running a config
 * (test_run.c). */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "loop/run.h"
#include "loop/run_config.h"
#include "util/atomic_file.h"

static char tmpdir[] = "/tmp/ad_test_run_config_XXXXXX";

/* Writes text to DIR/name and returns the path (static buffer, one at a time). */
static const char *write_ini(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    ad_error err;
    int rc = ad_atomic_write(path, text, strlen(text), &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    return path;
}

/* Loads text (as a file named run.ini) with overrides; returns the status. */
static int load_text(ad_run_config *c, const char *text, const char *const *sets, size_t n_sets,
                     ad_error *err) {
    const char *path = write_ini("run.ini", text);
    return ad_run_config_load(c, path, sets, n_sets, err);
}

/* The load fails and the message holds every one of the NULL-terminated parts. */
static void expect_error(const char *text, const char *const *sets, size_t n_sets, ...) {
    ad_run_config c;
    ad_error err = {{0}};
    int rc = load_text(&c, text, sets, n_sets, &err);
    CHECK_MSG(rc == AD_ERR, "accepted:\n%s", text);
    va_list ap;
    va_start(ap, n_sets);
    for (const char *part; (part = va_arg(ap, const char *));)
        CHECK_MSG(strstr(err.msg, part) != NULL, "\"%s\" lacks \"%s\"", err.msg, part);
    va_end(ap);
    ad_run_config_free(&c);
}

static void test_schema_and_defaults(void) {
    ad_error err = {{0}};
    const ad_config_schema *s = ad_run_config_schema();
    CHECK_MSG(ad_config_schema_check(s, &err) == AD_OK, "%s", err.msg);
    CHECK(s->n_keys >= 60);
    ad_run_config c;
    int rc = ad_run_config_load(&c, NULL, NULL, 0, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(strcmp(c.task, "reverse-add") == 0 && c.seed == 1 && c.lineages == 1 && c.rounds == 4);
    CHECK(c.layers == 3 && c.heads == 4 && c.dim == 128 && c.ffn == 512 && c.pos == 0);
    CHECK(c.base_levels.n == 8 && c.base_levels.v[7].a == 8 && c.base_steps == 2000);
    CHECK(c.p_new == 0.5 && c.samples == 1 && c.f_complete && c.f_unique && !c.f_verifier);
    CHECK(c.first_level == 0 && c.last_level == 0 && c.schedule.n_steps == 0);
    CHECK(c.eval_n == 256 && !c.rollback);
    ad_run_config_free(&c);
}

static void test_errors_name_line_key_value(void) {
    const char *path = write_ini("run.ini", "");
    char at3[600], at4[600];
    snprintf(at3, sizeof at3, "%s:3: ", path);
    snprintf(at4, sizeof at4, "%s:4: ", path);
    expect_error("[run]\ntask = copy\n[modle]\nlayers = 2\n", NULL, 0, at4,
                 "unknown key 'modle.layers'", (const char *)NULL);
    expect_error("[run]\ntask = copy\nlinages = 2\n", NULL, 0, at3, "'run.linages'",
                 "did you mean 'run.lineages'", (const char *)NULL);
    expect_error("[run]\ntask = copy\n[model]\nlayers = two\n", NULL, 0, at4,
                 "model.layers = 'two': not a non-negative integer", (const char *)NULL);
    expect_error("[run]\n\nlineages = 17\n", NULL, 0, at3,
                 "run.lineages = '17': must be between 1 and 16", (const char *)NULL);
    /* issue 14 item 18: CR-only line endings, text after a section header, a
     * float that would underflow to 0 -- each an error with its line */
    char at1[600];
    snprintf(at1, sizeof at1, "%s:1: ", path);
    expect_error("[run]\rtask = copy\r[model]\rlayers = 1\r", NULL, 0, at1,
                 "a carriage return inside the line (CR-only line endings?", (const char *)NULL);
    expect_error("[run]\r\ntask = copy\r\n[model] junk\r\nlayers = 1\r\n", NULL, 0, at3,
                 "text after the section header: 'junk", (const char *)NULL);
    expect_error("[run]\ntask = copy\n[base]\nlr = 1e-50\n", NULL, 0, at4,
                 "base.lr = '1e-50': too small for a float: it would be read as 0",
                 (const char *)NULL);
    expect_error("[round]\n\np_new = 1.5\n", NULL, 0, at3,
                 "round.p_new = '1.5': must be between 0 and 1", (const char *)NULL);
    expect_error("[model]\n\npos = alibi\n", NULL, 0, at3,
                 "model.pos = 'alibi': not one of: none, rope", (const char *)NULL);
    expect_error("[select]\n\nverifier = sometimes\n", NULL, 0, at3,
                 "select.verifier = 'sometimes': not a boolean", (const char *)NULL);
    expect_error("[base]\n\nlevels = 3-1\n", NULL, 0, at3, "base.levels", "3-1",
                 (const char *)NULL);
    expect_error("[curriculum]\n\nschedule = pairs(6-\n", NULL, 0, at3, "curriculum.schedule",
                 "pairs(6-", (const char *)NULL);
    expect_error("[curriculum]\n\nfirst_level = -1\n", NULL, 0, at3,
                 "curriculum.first_level = '-1': must be between 0 and", (const char *)NULL);
    expect_error("[run]\nseed = 1\nseed = 2\n", NULL, 0, at3,
                 "run.seed is set twice (first on line 2)", (const char *)NULL);
}

/* The load fails with exactly "PATH:LINE: msg" (line 0: "PATH: msg"). */
static void expect_exact(const char *text, const char *const *sets, size_t n_sets, size_t line,
                         const char *msg) {
    ad_run_config c;
    ad_error err = {{0}};
    char want[1200];
    int rc = load_text(&c, text, sets, n_sets, &err);
    const char *path = write_ini("run.ini", text);
    if (line)
        snprintf(want, sizeof want, "%s:%zu: %s", path, line, msg);
    else
        snprintf(want, sizeof want, "%s: %s", path, msg);
    CHECK_MSG(rc == AD_ERR && strcmp(err.msg, want) == 0, "got \"%s\"\n  want \"%s\"", err.msg,
              want);
    ad_run_config_free(&c);
}

/* Checks that span keys: the message names the keys and their values, and the
 * file line that set the key it points at (none when that key kept its default
 * or was overridden). */
static void test_cross_key_checks(void) {
    expect_exact("[run]\nlineages = 3\n[select]\nvote_lineages = true\nvote_min_agree = 4\n", NULL,
                 0, 5, "select.vote_min_agree = 4 exceeds run.lineages = 3");
    expect_exact("[select]\nvote_lineages = true\nvote_min_agree = 1\n", NULL, 0, 2,
                 "select.vote_lineages needs run.lineages >= 2");
    expect_exact("; vote\n\n  [select] \n  vote_samples=true ; on\n", NULL, 0, 4,
                 "select.vote_samples needs acquire.samples >= 2");
    expect_exact("[optimize]\nobjective = nft\n", NULL, 0, 2,
                 "optimize.objective = nft needs acquire.samples >= 2 (a prompt's kept share r_q "
                 "counts its samples), got acquire.samples = 1");
    expect_exact("[round]\nkind = rl\n[rl]\nrewards = judge:1\n", NULL, 0, 0,
                 "rl.rewards names judge: set rl.judge to a judge checkpoint (e.g. a self+judge "
                 "run's DIR/ckpt/judge/rNNNN)");
    expect_exact("[round]\nkind = rl\n[rl]\njudge = j/r0003\n", NULL, 0, 4,
                 "rl.judge = j/r0003 is set but rl.rewards does not name judge");
    expect_exact("[model]\ndim = 100\nheads = 3\n", NULL, 0, 3,
                 "model.heads = 3 does not divide model.dim = 100");
    expect_exact("[base]\nwarmup = 0.6\ndecay = 0.5\n", NULL, 0, 3,
                 "base.warmup + base.decay = 1.1 exceeds 1");
    expect_exact("[round]\ndecay = 0.5\nwarmup = 0.7\n", NULL, 0, 2,
                 "round.warmup + round.decay = 1.2 exceeds 1");
    expect_exact("curriculum.levels_per_round = 0\n", NULL, 0, 1,
                 "curriculum.levels_per_round must be >= 1 with a fixed pace");
    expect_exact("[base]\nlevels = \n", NULL, 0, 2, "base.levels: no levels");
    /* the key pointed at kept its default: the file, no line */
    expect_exact("[run]\nlineages = 2\n[select]\nvote_lineages = true\n", NULL, 0, 0,
                 "select.vote_min_agree = 4 exceeds run.lineages = 2");
    /* a key of the same name in another section is not it */
    expect_exact("[base]\ndecay = 0.5\n[round]\nwarmup = 0.7\ndecay = 0.5\n", NULL, 0, 5,
                 "round.warmup + round.decay = 1.2 exceeds 1");
    /* the same combinations are fine once consistent */
    ad_run_config c;
    ad_error err = {{0}};
    int rc = load_text(&c,
                       "[run]\nlineages = 4\n[select]\nvote_lineages = true\nvote_min_agree = 4\n"
                       "[curriculum]\npace = adaptive\nlevels_per_round = 0\n",
                       NULL, 0, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.lineages == 4 && c.vote_min_agree == 4 && c.f_vote_lineages && c.adaptive == 1);
    ad_run_config_free(&c);
    /* a combination an override breaks is caught after the overrides; the line
     * is the file's when the key pointed at comes from the file */
    const char *sets[] = {"run.lineages=2"};
    expect_exact("[run]\nlineages = 4\n[select]\nvote_lineages = true\nvote_min_agree = 3\n", sets,
                 1, 5, "select.vote_min_agree = 3 exceeds run.lineages = 2");
    const char *agree[] = {" select.vote_min_agree = 5"};
    expect_exact("[run]\nlineages = 4\n[select]\nvote_lineages = true\nvote_min_agree = 3\n", agree,
                 1, 0, "select.vote_min_agree = 5 exceeds run.lineages = 4");
}

static void test_overrides(void) {
    ad_run_config c;
    ad_error err = {{0}};
    const char *sets[] = {"model.layers=5", " run.task = copy ", "base.levels=1-4, 6",
                          "curriculum.schedule=pairs(2-3)", "model.layers=6"};
    int rc = load_text(&c, "[run]\ntask = reverse\n[model]\nlayers = 2\ndim = 64\n", sets, 5, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.layers == 6 && c.dim == 64 && strcmp(c.task, "copy") == 0); /* the last --set wins */
    CHECK(c.base_levels.n == 5 && c.base_levels.v[4].a == 6 && c.schedule.n_steps == 5);
    ad_run_config_free(&c);
    const char *bad[] = {"model.layers=0"};
    expect_error("", bad, 1, "--set: model.layers = '0': must be between 1 and 4096",
                 (const char *)NULL);
    const char *unknown[] = {"model.layer=3"};
    expect_error("", unknown, 1, "--set: unknown key 'model.layer'", "did you mean 'model.layers'",
                 (const char *)NULL);
    const char *noeq[] = {"model.layers"};
    expect_error("", noeq, 1, "--set 'model.layers': expected section.key=value",
                 (const char *)NULL);
    /* overrides need no file */
    const char *only[] = {"run.task=sort", "run.rounds=0"};
    rc = ad_run_config_load(&c, NULL, only, 2, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(strcmp(c.task, "sort") == 0 && c.rounds == 0);
    ad_run_config_free(&c);
}

/* first_level and last_level are 64-bit fields (the config writes int64_t):
 * setting one must leave the other, and the schedule after them, intact. */
static void test_level_keys_do_not_overlap(void) {
    ad_run_config c;
    ad_error err = {{0}};
    const char *sets[] = {"curriculum.last_level=12", "curriculum.first_level=7",
                          "curriculum.schedule=1x6&6x1, 6x6", "curriculum.last_level=40"};
    int rc = ad_run_config_load(&c, NULL, sets, 4, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.first_level == 7 && c.last_level == 40);
    CHECK(c.schedule.n_steps == 2 && c.schedule.n_levels == 3 && c.schedule.levels[2].a == 6);
    CHECK(c.schedule.text && strcmp(c.schedule.text, "1x6&6x1, 6x6") == 0);
    ad_run_config_free(&c);
}

/* A config with most keys away from their defaults. */
static const char *nondefault_ini =
    "[run]\ntask = multiply\nseed = 18446744073709551615\nlineages = 3\nrounds = 7\nthreads = "
    "2\nshards = 2\ndist_timeout = 42.5\nsave_every = 7\nrecord_every = 3\npack = false\n"
    "precision = bf16\ndecode_precision = bf16\n"
    "[task]\nindependent_lengths = false\nverifier = ./check.sh --strict\n"
    "verifier_timeout = 2.5\nverifier_workers = 6\nverifier_env = OPENAI_API_KEY, LANG\n"
    "equal_length_share = 0.25\n"
    "[model]\nlayers = 2\nheads = 2\ndim = 48\nffn = 96\nmax_len = 300\npos = rope\n"
    "rope_theta = 500.5\ntie = yes\n"
    "[base]\nlevels = 1-5x1-5\nsteps = 17\nbatch = 3\nlr = 0.1\nwarmup = 0.25\ndecay = 0.75\n"
    "[round]\nsteps = 9\nbatch = 5\nprompts = 11\nlr = 3e-05\nlr_level = 40\nwarmup = 0\n"
    "decay = 1\n"
    "kind = rl\n"
    "p_new = 0.3\nlabels = split\n"
    "[optim]\nmax_skipped_steps = 3\nbeta1 = 0.8\nbeta2 = 0.95\neps = 1e-06\nweight_decay = "
    "0.1\ngrad_clip = 0\n"
    "floor_ratio = 0.1\n"
    "[curriculum]\npace = adaptive\nlevels_per_round = 0\nfirst_level = 3\nlast_level = 9\n"
    "schedule = pairs(6-7)\nthreshold = 0.75\nhold = yes\nhold_max = 4\nprobe = 8\n"
    "[acquire]\nsamples = 4\ntemperature = 0.5\ntop_k = 3\ntop_p = 0.9\n"
    "auto_temperature = on\ntemperature_grid = 0.5, 1.5\ntemperature_probe = 9\n"
    "[select]\ncomplete = false\nlength = on\nlength_shortfall = 3\nvote_samples = on\n"
    "vote_min_share = 0.51\nvote_lineages = on\nvote_min_agree = 2\nconfidence = on\n"
    "confidence_min = -0.25\nconfidence_top = 0.4\nconfidence_group = prompt\nverifier = "
    "on\nunique = off\npairs = lineages\npairs_per_prompt = 2\npair_min_agree = 3\n"
    "pair_min_share = 0.6\npair_min_gap = 0.5\njudge = on\nsharpen = on\n"
    "bstar_target = 4\n"
    "[judge]\ntrain = on\nlabels = verifier\nlayers = 1\nheads = 2\ndim = 32\nffn = 64\n"
    "steps = 50\nbatch = 16\nlr = 0.002\nthreshold = 0.7\n"
    "[optimize]\nobjective = dpo\n"
    "[rl]\nsteps = 7\nprompts = 5\ngroup = 3\ninner_epochs = 2\ntemperature = 0.7\ntop_p = 0.9\n"
    "rewards = majority:1, length:0.5, judge:0.25\njudge = /runs/j/ckpt/judge/r0003\nadvantage = "
    "rloo\nloss_agg = seq_mean_token_sum_norm\n"
    "epsilon = 0.1\nepsilon_high = 0.28\nbeta = 0.04\ndrop_uniform_groups = on\n"
    "max_resample = 4\nincomplete = penalty\nguard = on\n"
    "[dpo]\nloss = ipo\nbeta = 0.5\nnll_weight = 0.5\nlabel_smoothing = 0.1\n"
    "[nft]\neps = 0.5\nneg_weight = 0.5\nprompt_weight = grpo\n"
    "[eval]\nn = 33\nbelow = 0\nabove = 5\n"
    "[accept]\nrollback = on\nlabel_free = on\nmastered = 0.9\nmax_drop = 0.02\nmax_loss_ratio = "
    "3\n";

/* Every key of a and b formats to the same text. */
static void check_same_values(const ad_run_config *a, const ad_run_config *b) {
    const ad_config_schema *s = ad_run_config_schema();
    for (size_t i = 0; i < s->n_keys; i++) {
        char va[AD_CONFIG_VALUE_MAX + 1], vb[AD_CONFIG_VALUE_MAX + 1];
        ad_error err;
        CHECK(ad_config_format_value(&s->keys[i], a, va, sizeof va, &err) == AD_OK);
        CHECK(ad_config_format_value(&s->keys[i], b, vb, sizeof vb, &err) == AD_OK);
        CHECK_MSG(strcmp(va, vb) == 0, "%s: '%s' vs '%s'", s->keys[i].name, va, vb);
    }
}

static void test_dump_reload_identity(void) {
    const ad_config_schema *s = ad_run_config_schema();
    ad_run_config a, b;
    ad_error err = {{0}};
    int rc = load_text(&a, nondefault_ini, NULL, 0, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    /* every key was read from the file: none kept its default */
    for (size_t i = 0; rc == AD_OK && i < s->n_keys; i++) {
        char v[AD_CONFIG_VALUE_MAX + 1];
        CHECK(ad_config_format_value(&s->keys[i], &a, v, sizeof v, &err) == AD_OK);
        CHECK_MSG(strcmp(v, s->keys[i].def) != 0, "%s kept its default '%s'", s->keys[i].name, v);
    }
    CHECK(a.seed == UINT64_MAX && a.rope_theta == 500.5f && a.round_lr == 3e-05f);
    CHECK(a.base_levels.n == 25 && a.schedule.n_steps == 13 && a.confidence_min == -0.25);
    char *text = NULL, *again = NULL;
    CHECK(ad_config_dump(s, &a, &text, &err) == AD_OK);
    rc = text ? load_text(&b, text, NULL, 0, &err) : AD_ERR;
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (rc == AD_OK) {
        check_same_values(&a, &b);
        CHECK(memcmp(&a.seed, &b.seed, sizeof a.seed) == 0 && a.p_new == b.p_new);
        CHECK(ad_config_dump(s, &b, &again, &err) == AD_OK);
        CHECK(again && strcmp(text, again) == 0);
    }
    free(text);
    free(again);
    ad_run_config_free(&a);
    ad_run_config_free(&b);
    /* the defaults too */
    rc = ad_run_config_load(&a, NULL, NULL, 0, &err);
    CHECK(rc == AD_OK && ad_config_dump(s, &a, &text, &err) == AD_OK);
    rc = load_text(&b, text, NULL, 0, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (rc == AD_OK) check_same_values(&a, &b);
    free(text);
    ad_run_config_free(&a);
    ad_run_config_free(&b);
}

/* The per-key table of docs/config.md lists every registered key, once (a
 * stale second table once survived a merge below the generated one). */
static void test_doc_table_lists_every_key(void) {
    const ad_config_schema *s = ad_run_config_schema();
    char *doc = NULL;
    size_t len = 0;
    ad_error err = {{0}};
    const char *paths[] = {"docs/config.md", "../docs/config.md"};
    int rc = AD_ERR;
    for (size_t i = 0; i < 2 && rc != AD_OK; i++)
        rc = ad_read_file(paths[i], 1u << 20, &doc, &len, &err);
    CHECK_MSG(rc == AD_OK, "docs/config.md: %s", err.msg);
    for (size_t i = 0; doc && i < s->n_keys; i++) {
        char row[128];
        snprintf(row, sizeof row, "| `%s` |", s->keys[i].name);
        const char *at = strstr(doc, row);
        CHECK_MSG(at != NULL, "docs/config.md lacks the row of %s", row);
        CHECK_MSG(!at || !strstr(at + 1, row), "docs/config.md has %s twice", row);
    }
    CHECK_MSG(doc && !strstr(doc, "\n<<<<<<< ") && !strstr(doc, "\n>>>>>>> "),
              "docs/config.md holds merge conflict markers");
    free(doc);
}

/* Opens a run from an example in a scratch directory: this loads the config,
 * opens the task, checks the base levels and the curriculum, sizes the model
 * and writes the snapshot, without training. */
static void check_example(const char *path) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run", tmpdir);
    ad_run *run = NULL;
    ad_error err = {{0}};
    int rc = ad_run_create(&run, dir, path, NULL, 0, &err);
    /* an rl example whose judge another run trains (demo-rl-judge.ini): refused
     * for the missing judge alone, and whole with the verifier reward instead */
    const char *no_judge[] = {"rl.rewards=verifier:1", "rl.judge="};
    if (rc != AD_OK && strstr(err.msg, "rl.judge: ") && strstr(err.msg, "no checkpoint here"))
        rc = ad_run_create(&run, dir, path, no_judge, 2, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", path, err.msg);
    ad_run_free(run);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_examples_open(void) {
    const char *dirs[] = {"examples", "../examples"};
    DIR *d = NULL;
    const char *where = NULL;
    for (size_t i = 0; i < 2 && !d; i++)
        if ((d = opendir(dirs[i]))) where = dirs[i];
    CHECK_MSG(d != NULL, "no examples/ folder (run from the repository root)");
    if (!d) return;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".ini") != 0) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", where, e->d_name);
        check_example(path);
        n++;
    }
    closedir(d);
    CHECK_MSG(n >= 9, "found %zu examples, want one per built-in task", n);
}

/* The model defaults live in ad_model_default_config: a run's default model
 * keys (and `autodidact train`, which starts from that function) describe the
 * same model. */
static void test_model_defaults_agree(void) {
    ad_run_config c;
    ad_error err = {{0}};
    CHECK_MSG(ad_run_config_load(&c, NULL, NULL, 0, &err) == AD_OK, "%s", err.msg);
    ad_model_config want = ad_model_default_config();
    ad_model_config got = ad_run_model_config(&c, 17, 99);
    CHECK(got.n_layers == want.n_layers && got.n_heads == want.n_heads);
    CHECK(got.d_model == want.d_model && got.d_ff == want.d_ff);
    CHECK(got.pos == want.pos && got.rope_theta == want.rope_theta);
    CHECK(got.tie_embeddings == want.tie_embeddings);
    CHECK(got.rms_eps == want.rms_eps && got.init_std == want.init_std);
    CHECK(got.vocab_size == 17 && got.max_seq_len == 99);
    ad_run_config_free(&c);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_schema_and_defaults);
    RUN(test_errors_name_line_key_value);
    RUN(test_cross_key_checks);
    RUN(test_overrides);
    RUN(test_level_keys_do_not_overlap);
    RUN(test_dump_reload_identity);
    RUN(test_doc_table_lists_every_key);
    RUN(test_examples_open);
    RUN(test_model_defaults_agree);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
