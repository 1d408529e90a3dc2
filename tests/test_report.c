/* test_report.c: the HTML report on a small hand-made run store (written
 * through the store API): every SVG is well-formed XML (checked by Python's
 * xml.etree), heatmap cells carry the stored values at the coordinates the
 * layout gives, the frontier, a per-round point and a stage's bar land where
 * they should, stored text is escaped, nothing names a URL, the same store
 * gives the same bytes, a writer holding a transaction neither blocks the
 * report nor shows in it, and an old-schema store (tests/fixtures/store_v1)
 * is reported without its file changing. The browser test is
 * tests/cli_report.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "report/report.h"
#include "store/store.h"
#include "util/atomic_file.h"

static char tmpdir[256];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void eval_cell(ad_store *st, uint32_t round, int64_t lineage, int level, double v) {
    ad_error err;
    ad_store_eval e = {.round = round,
                       .lineage = lineage,
                       .level = ad_level_int(level),
                       .metric = "accuracy",
                       .value = v,
                       .n = 16};
    CHECK_MSG(ad_store_evals_insert(st, "evaluate", &e, 1, &err) == AD_OK, "%s", err.msg);
}

/* Accuracy of lineage l at level `level` after round r: a value the test
 * can recompute. */
static double acc(uint32_t r, int64_t l, int level) {
    return 0.25 * (double)(3 - level + (int)r) / 3.0 + 0.125 * (double)l;
}

/* Round r of the hand-made run: levels 1-3 evaluated for both lineages,
 * training levels (1-2 for the base, 3 for rounds 1-2), figures, seconds, a
 * per-step series, and two candidates (one kept, one rejected). */
static void make_round(ad_store *st, uint32_t r, int rolled_back) {
    ad_error err;
    CHECK(ad_store_round_begin(st, r, &err) == AD_OK);
    ad_level train[2] = {ad_level_int(r ? 3 : 1), ad_level_int(2)};
    CHECK(ad_store_levels_insert(st, r, "train", r ? &train[0] : train, NULL, r ? 1 : 2, &err) ==
          AD_OK);
    for (int64_t l = 0; l < 2; l++)
        for (int level = 1; level <= 3; level++)
            eval_cell(st, r, l, level, acc(r, l, level));
    CHECK(ad_store_stage_done(st, r, "optimize", 0, 1.5 + r, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, r, "optimize", 1, 0.5, &err) == AD_OK);
    const char *keys[] = {"loss", "lr"};
    for (size_t step = 0; step < 30; step += 10) {
        double v[] = {2.0 / (double)(step + 1 + r), 1e-3};
        CHECK(ad_store_step_metrics_insert(st, r, "optimize", 0, step, keys, v, 2, &err) == AD_OK);
    }
    if (r > 0) {
        CHECK(ad_store_stage_metric(st, r, "select", -1, "label_accuracy", 0.5 * r, &err) == AD_OK);
        CHECK(ad_store_stage_metric(st, r, "select", -1, "candidates", 2, &err) == AD_OK);
        CHECK(ad_store_stage_metric(st, r, "select", -1, "kept", 1, &err) == AD_OK);
        ad_store_sample s[2];
        memset(s, 0, sizeof s);
        for (size_t i = 0; i < 2; i++) {
            s[i].round = r;
            s[i].sample_index = i;
            s[i].level = ad_level_int(3);
            s[i].prompt = "12+3=";
            s[i].completion = i ? "<script>alert('x')</script>&" : "51";
            s[i].n_tokens = 3;
            s[i].hit_eos = 1;
            s[i].filters_ran = 0x1;
            s[i].filters_passed = i ? 0 : 0x1;
            s[i].kept = !i;
            s[i].correct = !i;
            s[i].score = NAN;
        }
        CHECK(ad_store_samples_insert(st, "select", s, 2, &err) == AD_OK);
    }
    CHECK(ad_store_round_finish(st, r, !rolled_back, rolled_back ? "accuracy fell" : NULL, &err) ==
          AD_OK);
}

/* A run directory with rounds 0-2 (round 2 rolled back), 2 lineages. */
static void make_run(const char *dir) {
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.ini", dir);
    write_text(path, "[run]\ntask = copy\nlineages = 2\n[acquire]\nsamples = 1\n");
    snprintf(path, sizeof path, "%s/run.db", dir);
    ad_error err;
    ad_store *st = NULL;
    CHECK_MSG(ad_store_open(path, 1, &st, &err) == AD_OK, "%s", err.msg);
    if (!st) return;
    CHECK(ad_store_run_create(st, "t", 1, "[run]\ntask = copy\n", &err) == AD_OK);
    CHECK(ad_store_lineage_add(st, 0, 1, &err) == AD_OK);
    CHECK(ad_store_lineage_add(st, 1, 2, &err) == AD_OK);
    for (uint32_t r = 0; r < 3; r++)
        make_round(st, r, r == 2);
    ad_store_close(st);
}

static char *render(const char *dir) {
    const char *dirs[] = {dir};
    char *html = NULL;
    size_t len = 0;
    ad_error err;
    int rc = ad_report_render(dirs, 1, NULL, &html, &len, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (html) CHECK(strlen(html) == len);
    return html;
}

static size_t count(const char *s, const char *what) {
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* Python's xml.etree parses every <svg>...</svg> of the page; prints how
 * many. */
static const char svg_check_py[] = "import re, sys, xml.etree.ElementTree as ET\n"
                                   "html = open(sys.argv[1], encoding='utf-8').read()\n"
                                   "svgs = re.findall(r'<svg\\b.*?</svg>', html, re.S)\n"
                                   "for s in svgs:\n"
                                   "    ET.fromstring(s)\n"
                                   "print(len(svgs))\n";

static void test_svg_well_formed(void) {
    char dir[300], page[340], script[340], cmd[1200];
    snprintf(dir, sizeof dir, "%s/wf", tmpdir);
    make_run(dir);
    snprintf(page, sizeof page, "%s/page.html", tmpdir);
    snprintf(script, sizeof script, "%s/svg_check.py", tmpdir);
    const char *dirs[] = {dir};
    ad_error err;
    CHECK_MSG(ad_report_write(dirs, 1, NULL, page, &err) == AD_OK, "%s", err.msg);
    write_text(script, svg_check_py);
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "  note: /usr/bin/python3 absent, XML check skipped\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s 2>&1", script, page);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    char out[4096] = "";
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int status = pclose(p);
    CHECK_MSG(status == 0, "xml.etree: %s", out);
    CHECK_MSG(atoi(out) >= 6, "only %d svg elements", atoi(out));
}

static void test_cells_and_coordinates(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cells", tmpdir);
    make_run(dir);
    char *html = render(dir);
    if (!html) return;
    /* 3 rounds x 3 levels x 2 lineages, each one rect */
    CHECK_MSG(count(html, "<rect class=\"cell\"") == 18, "%zu cells",
              count(html, "<rect class=\"cell\""));
    CHECK(count(html, "<svg class=\"heatmap\"") == 2);
    /* round 1, level 2, lineage 0: column 1 (x = 78 + 46), row 1 (y = 30 + 22) */
    char want[256];
    snprintf(want, sizeof want,
             "<rect class=\"cell\" data-round=\"1\" data-level=\"2\" data-value=\"%.4f\" "
             "x=\"124.0\" y=\"52.0\" width=\"46.0\" height=\"22.0\"",
             acc(1, 0, 2));
    CHECK_MSG(strstr(html, want) != NULL, "missing %s", want);
    /* lineage 1's grid holds its own values */
    snprintf(want, sizeof want, "data-round=\"2\" data-level=\"3\" data-value=\"%.4f\"",
             acc(2, 1, 3));
    CHECK_MSG(strstr(html, want) != NULL, "missing %s", want);
    /* frontier: base trained on 1-2 (right edge of column 2: x = 78 + 2 * 46), round 1
     * on 3 (x = 78 + 3 * 46); round 2 was rolled back but trained on 3 too */
    CHECK(strstr(html, "d=\"M170.0 30.0 V52.0 H216.0 V74.0 H216.0 V96.0 \"") != NULL);
    CHECK(strstr(html, "r2 \xE2\x86\xBA</text>") != NULL);
    /* label accuracy 0.5 at round 1: x = 62 + 1/2 * 364, y = 208 - 0.5 * 182 */
    const char *fig = strstr(html, "id=\"fig-label-accuracy\"");
    CHECK(fig != NULL);
    if (fig) CHECK(strstr(fig, "cx=\"244.0\" cy=\"117.0\"") != NULL);
    /* round 1 optimize: 2.5 s (lineage 0) + 0.5 s (lineage 1) */
    CHECK(strstr(html, "round 1, optimize: 3.0 s") != NULL);
    CHECK(strstr(html, "rolled back</td><td>accuracy fell</td>") != NULL);
    CHECK(strstr(html, "<td class=\"advance\">advance to 3</td>") != NULL);
    /* training curves from the per-step series */
    CHECK(strstr(html, "Training loss (base training)") != NULL);
    CHECK(strstr(html, "Learning rate (rounds)") != NULL);
    for (const char *id = "heatmap\0rounds\0curves\0time\0acceptance\0config\0samples\0"; *id;
         id += strlen(id) + 1) {
        char sec[64];
        snprintf(sec, sizeof sec, "<section id=\"%s\">", id);
        CHECK_MSG(strstr(html, sec) != NULL, "no section %s", id);
    }
    free(html);
}

static void test_escaping_and_no_urls(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/esc", tmpdir);
    make_run(dir);
    char *html = render(dir);
    if (!html) return;
    CHECK(strstr(html, "<script") == NULL);
    CHECK(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;") != NULL);
    CHECK(strstr(html, "http:") == NULL && strstr(html, "https:") == NULL);
    CHECK(strstr(html, "url(") == NULL && strstr(html, "src=") == NULL);
    CHECK(strstr(html, "default-src 'none'") != NULL);
    /* the config shown is the run directory's config.ini */
    CHECK(strstr(html, "<code>run.lineages</code> = 2") != NULL);
    free(html);
}

static void test_deterministic(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/det", tmpdir);
    make_run(dir);
    char *a = render(dir), *b = render(dir);
    CHECK(a && b && strcmp(a, b) == 0);
    free(a);
    free(b);
}

/* A writer in the middle of a transaction: the report neither waits for it
 * nor sees its rows. */
static void test_reader_does_not_block(void) {
    char dir[300], path[340];
    snprintf(dir, sizeof dir, "%s/live", tmpdir);
    make_run(dir);
    snprintf(path, sizeof path, "%s/run.db", dir);
    ad_error err;
    ad_store *st = NULL;
    CHECK(ad_store_open(path, 0, &st, &err) == AD_OK);
    if (!st) return;
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    CHECK(ad_store_begin(st, &err) == AD_OK);
    CHECK(ad_store_round_begin(st, 3, &err) == AD_OK);
    eval_cell(st, 3, 0, 1, 0.5);
    char *html = render(dir);
    if (html) CHECK(count(html, "<rect class=\"cell\"") == 18);
    free(html);
    CHECK(ad_store_commit(st, &err) == AD_OK);
    html = render(dir);
    if (html) {
        CHECK(count(html, "<rect class=\"cell\"") == 19);
        CHECK(strstr(html, "running (this page shows its last commit)") != NULL);
        CHECK(strstr(html, "r3 \xE2\x80\xA6</text>") != NULL);
    }
    free(html);
    ad_store_close(st);
}

/* A schema version 1 store: reported (migrated in memory), file unchanged. */
static void test_old_schema(void) {
    const char *fx = getenv("AD_STORE_FIXTURES");
    char src[512], dir[300], cmd[1200], db[340];
    snprintf(src, sizeof src, "%s/run", fx && *fx ? fx : "tests/fixtures/store_v1");
    snprintf(dir, sizeof dir, "%s/v1", tmpdir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dir);
    CHECK(system(cmd) == 0);
    snprintf(db, sizeof db, "%s/run.db", dir);
    char *before = NULL, *after = NULL;
    size_t n0 = 0, n1 = 0;
    ad_error err;
    CHECK(ad_read_file(db, 1u << 26, &before, &n0, &err) == AD_OK);
    char *html = render(dir);
    if (html) {
        CHECK(count(html, "<rect class=\"cell\"") > 0);
        CHECK(strstr(html, "<table class=\"samples\">") != NULL);
    }
    CHECK(ad_read_file(db, 1u << 26, &after, &n1, &err) == AD_OK);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    free(html);
}

static void test_errors(void) {
    const char *dirs[] = {"/nonexistent/run"};
    char *html = NULL;
    size_t len = 0;
    ad_error err;
    CHECK(ad_report_render(dirs, 1, NULL, &html, &len, &err) == AD_ERR && html == NULL);
    CHECK(strstr(err.msg, "/nonexistent/run/run.db") != NULL);
    CHECK(ad_report_render(dirs, 0, NULL, &html, &len, &err) == AD_ERR);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ad_test_report_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_svg_well_formed);
    RUN(test_cells_and_coordinates);
    RUN(test_escaping_and_no_urls);
    RUN(test_deterministic);
    RUN(test_reader_does_not_block);
    RUN(test_old_schema);
    RUN(test_errors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "  note: could not remove %s\n", tmpdir);
    return test_summary();
}
