/* run_round.c: the round driver. A round is a list of stages (its kind); the
 * driver opens the round (where it starts: the parent round and its
 * curriculum cursor), then runs each stage, which reads the artifacts the
 * stages before it made (in memory, or reloaded from the store after a
 * resume) and writes its own. The driver's state comes from the store's
 * round rows, never from a reporting query. */
#include <stdlib.h>

#include "dist/dist.h"
#include "loop/run_internal.h"
#include "model/kernels.h"

typedef int (*run_stage_fn)(ad_run *run, run_round *rr, ad_error *err);

typedef struct run_stage {
    const char *name;
    run_stage_fn run;
} run_stage;

/* A round kind: the stages it runs, in order. */
typedef struct run_kind {
    const char *name;
    const run_stage *stages;
    size_t n_stages;
} run_kind;

static const run_stage base_stages[] = {
    {AD_STAGE_OPTIMIZE, run_stage_optimize},
    {AD_STAGE_EVALUATE, run_stage_evaluate},
    {AD_STAGE_ACCEPT, run_stage_accept},
};

static const run_stage self_stages[] = {
    {AD_STAGE_ACQUIRE, run_stage_acquire},   {AD_STAGE_SELECT, run_stage_select},
    {AD_STAGE_OPTIMIZE, run_stage_optimize}, {AD_STAGE_EVALUATE, run_stage_evaluate},
    {AD_STAGE_ACCEPT, run_stage_accept},
};

/* ... with the self-taught judge trained and scoring before select. */
static const run_stage judged_stages[] = {
    {AD_STAGE_ACQUIRE, run_stage_acquire},   {AD_STAGE_JUDGE, run_stage_judge},
    {AD_STAGE_SELECT, run_stage_select},     {AD_STAGE_OPTIMIZE, run_stage_optimize},
    {AD_STAGE_EVALUATE, run_stage_evaluate}, {AD_STAGE_ACCEPT, run_stage_accept},
};

/* ... on-policy: rollouts and updates in one stage (round.kind = rl). */
static const run_stage rl_stages[] = {
    {AD_STAGE_LEVELS, run_stage_levels},
    {AD_STAGE_RL, run_stage_rl},
    {AD_STAGE_EVALUATE, run_stage_evaluate},
    {AD_STAGE_ACCEPT, run_stage_accept},
};

/* Round 0 trains on labelled base data; every later round teaches itself. */
static const run_kind kinds[] = {
    {"base", base_stages, sizeof base_stages / sizeof base_stages[0]},
    {"self", self_stages, sizeof self_stages / sizeof self_stages[0]},
    {"self+judge", judged_stages, sizeof judged_stages / sizeof judged_stages[0]},
    {"rl", rl_stages, sizeof rl_stages / sizeof rl_stages[0]},
};

static const run_kind *round_kind(const ad_run *run, size_t round) {
    if (round == 0) return &kinds[0];
    if (run->cfg.round_kind == 1) return &kinds[3];
    return &kinds[run->cfg.judge_train ? 2 : 1];
}

static void round_free(run_round *rr) {
    run_candidates_free(rr->cands);
    run_selection_free(rr->sel);
    rr->cands = NULL;
    rr->sel = NULL;
}

/* Where round r starts: its parent (the last accepted round before it) and
 * the curriculum cursor after the parent. */
static int round_origin(ad_run *run, run_round *rr, ad_error *err) {
    uint32_t parent = 0;
    int found = 0;
    rr->parent = 0;
    rr->cursor_before = 0;
    if (rr->round == 0) return AD_OK;
    if (ad_store_last_accepted(run->st, (uint32_t)rr->round, &parent, &found, err) != AD_OK)
        return AD_ERR;
    if (!found) return ad_error_set(err, "no accepted round before round %zu", rr->round);
    rr->parent = parent;
    if (parent == 0) return AD_OK;
    ad_store_round row;
    if (ad_store_round_get(run->st, parent, &row, &found, err) != AD_OK) return AD_ERR;
    if (!found || row.cursor < 0)
        return ad_error_set(err, "round %u recorded no curriculum cursor", parent);
    rr->cursor_before = (size_t)row.cursor;
    return AD_OK;
}

/* Begins round r in the store unless it exists; *finished = 1 when it was
 * already accepted or rolled back. Loads its cursor when acquire recorded it. */
static int round_begin(ad_run *run, run_round *rr, int *finished, ad_error *err) {
    ad_store_round row;
    int found = 0;
    uint32_t r = (uint32_t)rr->round;
    *finished = 0;
    if (ad_store_round_get(run->st, r, &row, &found, err) != AD_OK) return AD_ERR;
    if (found) {
        *finished = row.status != AD_ROUND_RUNNING;
        rr->have_cursor = row.cursor >= 0;
        rr->cursor = row.cursor >= 0 ? (size_t)row.cursor : 0;
        return AD_OK;
    }
    /* Round 0 trains on the labelled base levels: record them as its levels. */
    const ad_level_list *base = &run->cfg.base_levels;
    int rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) rc = ad_store_round_begin(run->st, r, err);
    if (rc == AD_OK && r == 0)
        rc = ad_store_levels_insert(run->st, 0, "train", base->v, NULL, base->n, err);
    if (rc == AD_OK) return ad_store_commit(run->st, err);
    ad_store_rollback(run->st);
    return AD_ERR;
}

static int run_stages(ad_run *run, run_round *rr, ad_error *err) {
    const run_kind *kind = round_kind(run, rr->round);
    for (size_t i = 0; i < kind->n_stages; i++) {
        ad_dist_set_stage("round %zu %s", rr->round, kind->stages[i].name);
        if (kind->stages[i].run(run, rr, err) != AD_OK) return AD_ERR;
    }
    return AD_OK;
}

/* Rounds in a row held at the parent's cursor: the accepted rounds before r
 * that ended there, less the one that got there. A held round leaves the
 * cursor where its parent had it, so they all record the same cursor. */
static int rounds_held(ad_run *run, const run_round *rr, size_t *held, ad_error *err) {
    size_t same = 0;
    *held = 0;
    for (size_t q = rr->parent; q > 0; q--) {
        ad_store_round row;
        int found = 0;
        if (ad_store_round_get(run->st, (uint32_t)q, &row, &found, err) != AD_OK) return AD_ERR;
        if (!found || row.status != AD_ROUND_ACCEPTED) continue; /* rolled back: not a step */
        if (row.cursor < 0 || (size_t)row.cursor != rr->cursor_before) break;
        same++;
    }
    *held = same ? same - 1 : 0;
    return AD_OK;
}

/* 1 when curriculum.hold_max says round r should not start. */
static int hold_limit_reached(ad_run *run, const run_round *rr, ad_error *err) {
    size_t held = 0, max = run->cfg.hold_max;
    if (max == 0 || rr->round == 0) return 0; /* the config allows it with the adaptive hold only */
    if (rounds_held(run, rr, &held, err) != AD_OK) return -1;
    if (held < max) return 0;
    run_log(run,
            "held %zu rounds in a row at one level (curriculum.hold_max = %zu): the run stops "
            "after round %zu",
            held, max, rr->round - 1);
    return 1;
}

int ad_run_execute(ad_run *run, ad_error *err) {
    if (ad_dist_rank() != 0) return run_dist_serve(run, err);
    run_log(run, "run %s: task %s, %zu lineage(s), %zu rounds, max_len %zu, %d threads (%s)",
            run->dir, run->cfg.task, run->cfg.lineages, run->cfg.rounds, run->max_len,
            ad_kernels_get_threads(), ad_kernels_isa());
    for (size_t r = 0; r <= run->cfg.rounds; r++) {
        run_round rr = {.round = r};
        int finished = 0, rc = round_origin(run, &rr, err);
        if (rc == AD_OK && r > 0 && rr.cursor_before >= ad_curriculum_n_steps(&run->cur)) {
            run_log(run, "curriculum exhausted after round %zu", r - 1);
            break;
        }
        int stop = rc == AD_OK ? hold_limit_reached(run, &rr, err) : 0;
        if (stop < 0) rc = AD_ERR;
        if (stop > 0) break;
        if (rc == AD_OK) rc = round_begin(run, &rr, &finished, err);
        if (rc == AD_OK && !finished) rc = run_stages(run, &rr, err);
        round_free(&rr);
        if (rc != AD_OK) return ad_error_prefix(err, "round %zu: ", r);
    }
    return run_dist_release(err);
}
