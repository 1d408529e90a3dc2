/* run_names.h: the names a run writes into its store, in one place: stage
 * names (the `stage` column of markers, samples, figures) and the keys of the
 * stages' figures. `autodidact status`, scripts/ and the report read these
 * strings, so they are part of the store's format: add, never rename. */
#ifndef AD_LOOP_RUN_NAMES_H
#define AD_LOOP_RUN_NAMES_H

/* stages */
#define AD_STAGE_ACQUIRE "acquire"
#define AD_STAGE_LEVELS "levels" /* rl rounds: the curriculum's choice alone */
#define AD_STAGE_RL "rl"
#define AD_STAGE_JUDGE "judge"
#define AD_STAGE_SELECT "select"
#define AD_STAGE_OPTIMIZE "optimize"
#define AD_STAGE_EVALUATE "evaluate"
#define AD_STAGE_ACCEPT "accept"

/* the auto-temperature probe's per-step series (step = grid point) */
#define AD_STAGE_TEMPERATURE "temperature"

/* acquire figures */
#define AD_METRIC_LEVELS "levels"
#define AD_METRIC_TEMPERATURE "temperature" /* the temperature of samples 1..k-1 */
#define AD_METRIC_TOKENS_PER_S "tokens_per_s"

/* select figures */
#define AD_METRIC_CANDIDATES "candidates"
#define AD_METRIC_KEPT "kept"
#define AD_METRIC_KEPT_FRACTION "kept_fraction"
#define AD_METRIC_LABEL_ACCURACY "label_accuracy"
#define AD_METRIC_GREEDY_ACCURACY "greedy_accuracy"
#define AD_METRIC_PASS_RATE_PREFIX "pass_rate_" /* + filter name */
#define AD_METRIC_DIVERSITY "diversity"
#define AD_METRIC_BSTAR_BALANCE "bstar_balance"       /* B-STaR's balance score */
#define AD_METRIC_DISTINCT_CORRECT "distinct_correct" /* per prompt, among all candidates */
#define AD_METRIC_PAIRS "pairs"
#define AD_METRIC_PAIR_ACCURACY "pair_accuracy"

/* judge figures */
#define AD_METRIC_JUDGE_YES "history_yes" /* answers of the history labelled yes */
#define AD_METRIC_JUDGE_NO "history_no"
#define AD_METRIC_JUDGE_PRECISION "judge_precision" /* select: against the checker */
#define AD_METRIC_JUDGE_RECALL "judge_recall"

/* optimize figures (per lineage) */
#define AD_METRIC_LOSS "loss"
#define AD_METRIC_LR "lr"                       /* per-step series */
#define AD_METRIC_GRAD_NORM "grad_norm"         /* per-step series, before clipping */
#define AD_METRIC_MARGIN "margin"               /* DPO: mean chosen-minus-rejected log-ratio */
#define AD_METRIC_PREF_ACCURACY "pref_accuracy" /* DPO: share of pairs with margin > 0 */

/* evaluation rows */
#define AD_EVAL_ACCURACY "accuracy"

#endif
