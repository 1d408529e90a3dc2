/* cmd_status.c: `autodidact status DIR`: the round table and the per-level
 * accuracy grid over rounds, read from the run store opened read-only (safe
 * while a run writes; works on a run the user cannot write; writes nothing). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "loop/run_names.h"
#include "store/store.h"

static const char *usage_text =
    "usage: autodidact status DIR [--lineage L] [--json]\n\n"
    "Prints the run's rounds (status, stages done, candidates kept, label accuracy,\n"
    "time) and a grid of held-out accuracy per level (rows) and round (columns) for\n"
    "lineage L (default 0). With --json, prints one JSON object instead:\n"
    "{\"rounds\": [{\"round\", \"status\", \"trained_levels\": [lo, hi], \"accuracy\":\n"
    "{\"LEVEL\": acc}, \"label_accuracy\", \"kept_fraction\", \"wall_seconds\"}]}, plus\n"
    "\"pairs\", \"pair_accuracy\", \"judge_precision\" and \"judge_recall\" in rounds\n"
    "that made pairs or ran the judge.\n";

/* A select-stage figure of a round, or NaN. */
static double select_metric(ad_store *st, uint32_t round, const char *key) {
    double v;
    int found = 0;
    ad_error err;
    if (ad_store_stage_metric_get(st, round, AD_STAGE_SELECT, -1, key, &v, &found, &err) != AD_OK)
        return NAN;
    return found ? v : NAN;
}

static void print_rounds(ad_store *st, const ad_store_round_row *rows, size_t n) {
    printf("round  status       kept/candidates  label_acc  pair_acc  seconds  stages\n");
    for (size_t i = 0; i < n; i++) {
        double kept = select_metric(st, rows[i].round, AD_METRIC_KEPT);
        double cand = select_metric(st, rows[i].round, AD_METRIC_CANDIDATES);
        double la = select_metric(st, rows[i].round, AD_METRIC_LABEL_ACCURACY);
        double pa = select_metric(st, rows[i].round, AD_METRIC_PAIR_ACCURACY);
        char kc[48] = "-", lab[16] = "-", pab[16] = "-";
        if (!isnan(kept) && !isnan(cand)) snprintf(kc, sizeof kc, "%.0f/%.0f", kept, cand);
        if (!isnan(la)) snprintf(lab, sizeof lab, "%.3f", la);
        if (!isnan(pa)) snprintf(pab, sizeof pab, "%.3f", pa);
        printf("%5u  %-11s  %15s  %9s  %8s  %7.0f  %s%s%s\n", rows[i].round,
               ad_round_status_name(rows[i].status), kc, lab, pab, rows[i].stage_seconds,
               rows[i].stages_done, rows[i].reason[0] ? "  -- " : "", rows[i].reason);
    }
}

/* Rows: levels (in level order); columns: the rounds of the round table. The
 * columns are the table's rows, never a count read from the store, so a
 * damaged store (a round 4294967295) costs one column, not four billion. */
static void print_grid(const ad_store_eval *cells, size_t n, const ad_store_round_row *rounds,
                       size_t n_rounds) {
    printf("\naccuracy per level (rows) after each round (columns)\nlevel ");
    for (size_t r = 0; r < n_rounds; r++)
        printf(" %6s%u", "r", rounds[r].round);
    printf("\n");
    for (size_t i = 0; i < n;) {
        size_t j = i;
        char b[AD_LEVEL_TEXT_MAX];
        printf("%5s ", ad_level_format(cells[i].level, b, sizeof b));
        for (size_t r = 0; r < n_rounds; r++) {
            double v = NAN;
            for (j = i; j < n && ad_level_cmp(cells[j].level, cells[i].level) == 0; j++)
                if (cells[j].round == rounds[r].round) v = cells[j].value;
            if (isnan(v))
                printf(" %7s", ".");
            else
                printf(" %7.3f", v);
        }
        printf("\n");
        i = j;
    }
}

/* The JSON form: one object per round with its trained levels, accuracies,
 * label accuracy, kept fraction and time. */
static int print_json(ad_store *st, const ad_store_round_row *rows, size_t n,
                      const ad_store_eval *cells, size_t n_cells, ad_error *err) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "rounds");
    int rc = AD_OK;
    for (size_t i = 0; i < n && rc == AD_OK; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "round", rows[i].round);
        cJSON_AddStringToObject(o, "status", ad_round_status_name(rows[i].status));
        ad_level *lv = NULL;
        size_t nl = 0;
        rc = ad_store_levels_get(st, rows[i].round, "train", &lv, &nl, err);
        if (rc == AD_OK && nl) {
            char a[AD_LEVEL_TEXT_MAX], b[AD_LEVEL_TEXT_MAX];
            cJSON *tl = cJSON_AddArrayToObject(o, "trained_levels");
            cJSON_AddItemToArray(tl, cJSON_CreateString(ad_level_format(lv[0], a, sizeof a)));
            cJSON_AddItemToArray(tl, cJSON_CreateString(ad_level_format(lv[nl - 1], b, sizeof b)));
        }
        free(lv);
        cJSON *acc = cJSON_AddObjectToObject(o, "accuracy");
        for (size_t j = 0; j < n_cells; j++) {
            if (cells[j].round != rows[i].round) continue;
            char b[AD_LEVEL_TEXT_MAX];
            cJSON_AddNumberToObject(acc, ad_level_format(cells[j].level, b, sizeof b),
                                    cells[j].value);
        }
        static const char *const figures[] = {AD_METRIC_LABEL_ACCURACY,  AD_METRIC_KEPT_FRACTION,
                                              AD_METRIC_PAIRS,           AD_METRIC_PAIR_ACCURACY,
                                              AD_METRIC_JUDGE_PRECISION, AD_METRIC_JUDGE_RECALL};
        for (size_t f = 0; f < sizeof figures / sizeof figures[0]; f++) {
            double v = select_metric(st, rows[i].round, figures[f]);
            if (!isnan(v)) cJSON_AddNumberToObject(o, figures[f], v);
        }
        cJSON_AddNumberToObject(o, "wall_seconds", rows[i].stage_seconds);
        if (rows[i].reason[0]) cJSON_AddStringToObject(o, "reason", rows[i].reason);
    }
    char *text = rc == AD_OK ? cJSON_Print(root) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
    return rc;
}

int cmd_status(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    const char *dir = NULL;
    size_t lineage = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(argv[i], "--lineage") && i + 1 < argc) {
            if (cli_parse_size("status", "--lineage", argv[++i], &lineage)) return 2;
        } else if (!dir && argv[i][0] != '-') {
            dir = argv[i];
        } else {
            return fprintf(stderr, "%s", usage_text), 2;
        }
    }
    if (!dir) return fprintf(stderr, "%s", usage_text), 2;
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/run.db", dir) >= sizeof path)
        return fprintf(stderr, "autodidact status: %.80s...: path too long\n", dir), 2;
    ad_error err = {{0}};
    ad_store *st = NULL;
    ad_store_round_row *rows = NULL;
    ad_store_eval *cells = NULL;
    size_t n_rows = 0, n_cells = 0;
    int rc = ad_store_open_readonly(path, &st, &err);
    if (rc == AD_OK) rc = ad_store_run_select(st, NULL, NULL, NULL, &err);
    if (rc == AD_OK) rc = ad_store_rounds(st, &rows, &n_rows, &err);
    if (rc == AD_OK)
        rc = ad_store_eval_series(st, AD_EVAL_ACCURACY, (int64_t)lineage, &cells, &n_cells, &err);
    if (rc == AD_OK && json) {
        rc = print_json(st, rows, n_rows, cells, n_cells, &err);
    } else if (rc == AD_OK) {
        print_rounds(st, rows, n_rows);
        if (n_rows) print_grid(cells, n_cells, rows, n_rows);
    }
    free(rows);
    free(cells);
    ad_store_close(st);
    return rc == AD_OK ? 0 : cli_fail("status", &err);
}
