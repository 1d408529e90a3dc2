/* run_config.h: every setting of a self-improvement run, with its INI key,
 * default and meaning (the registration table is in run_config.c; docs/config.md
 * lists it). A run directory keeps the resolved config as config.ini, and
 * `resume` reads it back from there. */
#ifndef AD_LOOP_RUN_CONFIG_H
#define AD_LOOP_RUN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/config.h"
#include "util/error.h"
#include "util/level.h"

typedef struct ad_run_config {
    /* [run] */
    char *task;
    uint64_t seed;
    size_t lineages;
    size_t rounds;
    size_t threads;
    size_t shards;        /* slices of each sft step (objective_shards.c) */
    double dist_timeout;  /* seconds an MPI wait may last (0: no limit; dist.h) */
    size_t save_every;    /* optimizer steps between partial checkpoints */
    size_t record_every;  /* optimizer steps between recorded per-step figures */
    int pack;             /* training rows hold several sequences (ad_train_config.pack) */
    int precision;        /* 0 fp32, 1 bf16: training's matrix products (ad_train_config.bf16) */
    int decode_precision; /* 0 fp32, 1 bf16: decoding's matrix products (ad_model.decode_bf16) */
    /* [task] */
    int independent_lengths;
    double equal_length_share; /* of base problems (ad_task_options) */
    char *verifier;
    double verifier_timeout; /* seconds per answer */
    size_t verifier_workers; /* verifier processes */
    char *verifier_env;      /* names passed to the verifier's environment */
    /* [model] */
    size_t layers, heads, dim, ffn, max_len;
    int pos; /* 0 none, 1 rope */
    float rope_theta;
    int tie;
    /* [base] */
    ad_level_list base_levels;
    size_t base_steps, base_batch;
    float base_lr, base_warmup, base_decay;
    /* [round] */
    size_t round_steps, round_batch, round_prompts;
    float round_lr, round_warmup, round_decay;
    size_t round_lr_level; /* round.lr_level: lr scales as 1 / level past it (0: off) */
    double p_new;
    int labels_split; /* round.labels: 0 shared, 1 split across lineages */
    /* [optim] */
    float beta1, beta2, eps, weight_decay, grad_clip, floor_ratio;
    size_t max_skipped; /* non-finite steps a training session may skip */
    /* [curriculum] */
    int adaptive;
    int adaptive_hold; /* curriculum.hold */
    size_t hold_max;   /* curriculum.hold_max: held rounds in a row before the run stops */
    size_t levels_per_round;
    int64_t first_level, last_level; /* AD_CONFIG_INT fields are int64_t */
    ad_level_schedule schedule;
    double adaptive_threshold;
    size_t adaptive_probe;
    /* [acquire] */
    size_t samples;
    float temperature, top_p;
    size_t top_k;
    int auto_temperature;     /* acquire.auto_temperature: B-STaR's choice per round */
    char *temperature_grid;   /* acquire.temperature_grid: "0.4, 0.6, ..." */
    size_t temperature_probe; /* acquire.temperature_probe: probe prompts */
    /* [select] */
    int f_complete, f_length, f_vote_samples, f_vote_lineages, f_confidence, f_verifier, f_unique;
    size_t length_shortfall, vote_min_agree;
    double vote_min_share, confidence_min, confidence_top;
    int confidence_group; /* 0 all, 1 level, 2 prompt (ad_conf_group) */
    char *pairs;          /* pair rule (pairs.h); empty: no pairs */
    size_t pairs_per_prompt, pair_min_agree;
    double pair_min_share, pair_min_gap;
    int f_judge;         /* select.judge */
    int f_sharpen;       /* select.sharpen */
    size_t bstar_target; /* select.bstar_target: n* of the B-STaR balance score */
    /* [judge] */
    int judge_train, judge_labels; /* labels: 0 filters, 1 verifier */
    size_t judge_layers, judge_heads, judge_dim, judge_ffn, judge_steps, judge_batch;
    float judge_lr;
    double judge_threshold;
    /* [round] kind */
    int round_kind; /* 0 offline (acquire, select, optimize), 1 rl */
    /* [rl] */
    size_t rl_steps, rl_prompts, rl_group, rl_inner_epochs, rl_max_resample;
    float rl_temperature, rl_top_p;
    int rl_advantage, rl_loss_agg, rl_drop_uniform,
        rl_incomplete; /* enums of advantage.h,
                         objective.h; 0 mask 1 penalty */
    double rl_epsilon, rl_epsilon_high, rl_beta;
    char *rl_rewards; /* reward spec, e.g. "verifier:1" or "majority:1, length:0.1" */
    char *rl_judge;   /* the judge reward's checkpoint, as given ("" when none) */
    int rl_guard;     /* roll back a round whose reward rose while self-consistency fell */
    /* [optimize] */
    char *objective; /* objective.h registry name */
    /* [dpo] */
    int dpo_loss; /* ad_dpo_loss */
    double dpo_beta, dpo_nll_weight, dpo_label_smoothing;
    /* [nft] */
    double nft_eps, nft_neg_weight;
    int nft_weight; /* ad_nft_weight */
    /* [eval] */
    size_t eval_n, eval_below, eval_above;
    /* [accept] */
    int rollback, rollback_label_free;
    double mastered, max_drop;
    double max_loss_ratio; /* training loss divergence that rolls a round back (0: off) */
} ad_run_config;

/* The model a run's config describes (the one place model settings map to
 * a model config); vocab_size and max_len come from the task. The seed is
 * left 0: each lineage sets its own. This function can't fail. */
ad_model_config ad_run_model_config(const ad_run_config *c, size_t vocab_size, size_t max_len);

/* The registration table. */
const ad_config_schema *ad_run_config_schema(void);

/* Fills cfg with the defaults; then, when path is not NULL, the file; then each
 * "section.key=value" override. Validates the combination (e.g. the task's
 * levels). On error cfg must still be freed with ad_run_config_free. */
int ad_run_config_load(ad_run_config *cfg, const char *path, const char *const *overrides,
                       size_t n_overrides, ad_error *err);

/* Cross-key checks (positive sizes, vote thresholds within the lineage count...). */
int ad_run_config_validate(const ad_run_config *cfg, ad_error *err);

/* The most temperatures acquire.temperature_grid may list. */
#define AD_TEMPERATURE_GRID_MAX 16

/* Parses acquire.temperature_grid: comma-separated finite temperatures in
 * (0, 100], at most AD_TEMPERATURE_GRID_MAX, written to out[*n]. */
int ad_run_config_temperature_grid(const ad_run_config *cfg, float *out, size_t *n, ad_error *err);

void ad_run_config_free(ad_run_config *cfg);

#endif
