/* run_config.c: the registration table of a run's settings, and their checks. */
#include "loop/run_config.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/objective.h"
#include "loop/pairs.h"
#include "loop/reward.h"
#include "util/atomic_file.h"

#define K(name, type, field, def, doc)                                                             \
    { name, type, offsetof(ad_run_config, field), def, doc, NULL, 0, 0, 0 }
#define KR(name, type, field, def, doc, lo, hi)                                                    \
    { name, type, offsetof(ad_run_config, field), def, doc, NULL, 1, lo, hi }

static const char *const pos_choices[] = {"none", "rope", NULL};
static const char *const precision_choices[] = {"fp32", "bf16", NULL};
static const char *const pace_choices[] = {"fixed", "adaptive", NULL};
/* In ad_conf_group order. */
static const char *const group_choices[] = {"all", "level", "prompt", NULL};
static const char *const judge_label_choices[] = {"filters", "verifier", NULL};
static const char *const kind_choices[] = {"offline", "rl", NULL};
static const char *const labels_choices[] = {"shared", "split", NULL};
/* In ad_adv_estimator, ad_loss_agg order. */
static const char *const advantage_choices[] = {"grpo", "dr_grpo", "rloo", "reinforce", NULL};
static const char *const agg_choices[] = {"token_mean", "seq_mean_token_mean",
                                          "seq_mean_token_sum_norm", NULL};
static const char *const incomplete_choices[] = {"mask", "penalty", NULL};
/* In ad_dpo_loss order. */
static const char *const dpo_loss_choices[] = {"sigmoid", "ipo", "rpo", NULL};
/* In ad_nft_weight order. */
static const char *const nft_weight_choices[] = {"dr_grpo", "grpo", "none", NULL};

static const ad_config_key keys[] = {
    K("run.task", AD_CONFIG_STRING, task, "reverse-add",
      "task name (autodidact tasks list) or file:PATH"),
    K("run.seed", AD_CONFIG_U64, seed, "1", "run seed: every random choice derives from it"),
    KR("run.lineages", AD_CONFIG_SIZE, lineages, "1",
       "independently seeded models trained side by side", 1, 16),
    KR("run.rounds", AD_CONFIG_SIZE, rounds, "4", "self-improvement rounds after base training", 0,
       100000),
    KR("run.threads", AD_CONFIG_SIZE, threads, "0", "compute threads (0: all cores)", 0, 1024),
    K("run.pack", AD_CONFIG_BOOL, pack, "true",
      "training rows hold several short sequences, each attending only to itself (no padding)"),
    {"run.precision", AD_CONFIG_ENUM, offsetof(ad_run_config, precision), "fp32",
     "training's matrix products: fp32, or bf16 operands with fp32 sums (AVX512-BF16 CPUs only)",
     precision_choices, 0, 0, 0},
    {"run.decode_precision", AD_CONFIG_ENUM, offsetof(ad_run_config, decode_precision), "fp32",
     "decoding's matrix products (acquire, RL, evaluation): fp32, or bf16 as run.precision's",
     precision_choices, 0, 0, 0},
    KR("run.shards", AD_CONFIG_SIZE, shards, "1",
       "slices of each sft step, gradients summed in slice order (bits depend on it, not on ranks)",
       1, 1024),
    KR("run.dist_timeout", AD_CONFIG_DOUBLE, dist_timeout, "600",
       "mpirun: seconds one wait for other ranks may last before the job stops (0: none; "
       "AD_DIST_TIMEOUT wins)",
       0, 1e9),
    KR("run.save_every", AD_CONFIG_SIZE, save_every, "100",
       "optimizer steps between partial checkpoints (resume points)", 1, 1e9),
    KR("run.record_every", AD_CONFIG_SIZE, record_every, "10",
       "optimizer steps between recorded training figures (loss, lr, ... curves; 0: none)", 0, 1e9),
    K("task.independent_lengths", AD_CONFIG_BOOL, independent_lengths, "true",
      "addition base data: operand lengths drawn independently (rounds: both of the level's "
      "length)"),
    KR("task.equal_length_share", AD_CONFIG_DOUBLE, equal_length_share, "0",
       "addition base data, independent lengths: share with both operands at the level's length", 0,
       1),
    K("task.verifier", AD_CONFIG_STRING, verifier, "",
      "file tasks: external verifier command (empty: exact match)"),
    KR("task.verifier_timeout", AD_CONFIG_DOUBLE, verifier_timeout, "10",
       "file tasks: seconds the verifier may take per answer before it is stopped", 0.001, 86400),
    KR("task.verifier_workers", AD_CONFIG_SIZE, verifier_workers, "2",
       "file tasks: verifier processes, checking answers in parallel", 1, 256),
    K("task.verifier_env", AD_CONFIG_STRING, verifier_env, "",
      "file tasks: environment variables passed to the verifier, by name (comma-separated; "
      "empty: none)"),
    KR("model.layers", AD_CONFIG_SIZE, layers, "3", "transformer blocks", 1, 4096),
    KR("model.heads", AD_CONFIG_SIZE, heads, "4", "attention heads", 1, 4096),
    KR("model.dim", AD_CONFIG_SIZE, dim, "128", "d_model", 1, 65536),
    KR("model.ffn", AD_CONFIG_SIZE, ffn, "512", "SwiGLU hidden size", 1, 1048576),
    KR("model.max_len", AD_CONFIG_SIZE, max_len, "0",
       "longest sequence in tokens (0: enough for the last curriculum level)", 0, 1048576),
    {"model.pos", AD_CONFIG_ENUM, offsetof(ad_run_config, pos), "none",
     "position encoding: none (NoPE) or rope", pos_choices, 0, 0, 0},
    KR("model.rope_theta", AD_CONFIG_FLOAT, rope_theta, "10000", "RoPE base", 1, 1e9),
    K("model.tie", AD_CONFIG_BOOL, tie, "false", "tie the LM head to the embedding"),
    K("base.levels", AD_CONFIG_LEVELS, base_levels, "1-8", "labelled base training levels"),
    KR("base.steps", AD_CONFIG_SIZE, base_steps, "2000", "base training optimizer steps", 1, 1e9),
    KR("base.batch", AD_CONFIG_SIZE, base_batch, "64", "base training sequences per step", 1, 1e6),
    KR("base.lr", AD_CONFIG_FLOAT, base_lr, "0.001", "base peak learning rate", 0, 1),
    KR("base.warmup", AD_CONFIG_FLOAT, base_warmup, "0.1", "base warmup, fraction of its steps", 0,
       1),
    KR("base.decay", AD_CONFIG_FLOAT, base_decay, "0.2",
       "base cosine decay, fraction of its steps at the end", 0, 1),
    KR("round.steps", AD_CONFIG_SIZE, round_steps, "500", "optimizer steps per round", 1, 1e9),
    KR("round.batch", AD_CONFIG_SIZE, round_batch, "64", "sequences per step in rounds", 1, 1e6),
    KR("round.prompts", AD_CONFIG_SIZE, round_prompts, "1024",
       "fresh unlabelled prompts per new level per round", 1, 1e8),
    KR("round.lr", AD_CONFIG_FLOAT, round_lr, "0.0005", "round peak learning rate", 0, 1),
    KR("round.lr_level", AD_CONFIG_SIZE, round_lr_level, "0",
       "rounds training past this level lower their lr to lr x this / level (0: off)", 0,
       AD_LEVEL_MAX),
    KR("round.warmup", AD_CONFIG_FLOAT, round_warmup, "0.1", "round warmup, fraction of its steps",
       0, 1),
    KR("round.decay", AD_CONFIG_FLOAT, round_decay, "0.5",
       "round cosine decay, fraction of its steps at the end", 0, 1),
    KR("round.p_new", AD_CONFIG_DOUBLE, p_new, "0.5",
       "probability of drawing from the newest round's data", 0, 1),
    KR("optim.beta1", AD_CONFIG_FLOAT, beta1, "0.9", "AdamW beta1", 0, 1),
    KR("optim.beta2", AD_CONFIG_FLOAT, beta2, "0.98", "AdamW beta2", 0, 1),
    KR("optim.eps", AD_CONFIG_FLOAT, eps, "1e-8", "AdamW epsilon", 0, 1),
    KR("optim.weight_decay", AD_CONFIG_FLOAT, weight_decay, "0.01",
       "decoupled weight decay (not on norms)", 0, 1),
    KR("optim.grad_clip", AD_CONFIG_FLOAT, grad_clip, "1", "global gradient-norm clip (0: off)", 0,
       1e9),
    KR("optim.max_skipped_steps", AD_CONFIG_SIZE, max_skipped, "10",
       "steps with a non-finite loss or gradient norm skipped before training stops", 0, 1e9),
    KR("optim.floor_ratio", AD_CONFIG_FLOAT, floor_ratio, "0.01",
       "cosine decay floor, fraction of peak", 0, 1),
    {"curriculum.pace", AD_CONFIG_ENUM, offsetof(ad_run_config, adaptive), "fixed",
     "fixed (+levels_per_round) or adaptive (label-free self-consistency)", pace_choices, 0, 0, 0},
    KR("curriculum.levels_per_round", AD_CONFIG_SIZE, levels_per_round, "1",
       "fixed: steps per round; adaptive: the most (0: any)", 0, 1e6),
    KR("curriculum.first_level", AD_CONFIG_INT, first_level, "0",
       "first self-taught level (0: one past the base levels)", 0, 1000000),
    KR("curriculum.last_level", AD_CONFIG_INT, last_level, "0",
       "last level there is (0: the task's maximum)", 0, 1000000),
    K("curriculum.schedule", AD_CONFIG_SCHEDULE, schedule, "",
      "explicit steps, e.g. pairs(6-10); empty: integers from first_level"),
    KR("curriculum.threshold", AD_CONFIG_DOUBLE, adaptive_threshold, "0.9",
       "adaptive: self-consistency needed to add a level", 0, 1),
    K("curriculum.hold", AD_CONFIG_BOOL, adaptive_hold, "false",
      "adaptive: repeat the last level while the next scores below threshold"),
    KR("curriculum.hold_max", AD_CONFIG_SIZE, hold_max, "0",
       "adaptive hold: stop the run after this many rounds in a row held at one level (0: never)",
       0, 1e6),
    KR("curriculum.probe", AD_CONFIG_SIZE, adaptive_probe, "64",
       "adaptive: prompts used to measure self-consistency", 1, 1e6),
    KR("acquire.samples", AD_CONFIG_SIZE, samples, "1",
       "candidates per prompt per lineage (sample 0 is greedy)", 1, 1024),
    KR("acquire.temperature", AD_CONFIG_FLOAT, temperature, "0.8", "temperature of samples 1..k-1",
       0, 100),
    KR("acquire.top_k", AD_CONFIG_SIZE, top_k, "0", "top-k of samples 1..k-1 (0: off)", 0, 1e6),
    KR("acquire.top_p", AD_CONFIG_FLOAT, top_p, "1", "top-p of samples 1..k-1 (1: off)", 0, 1),
    K("acquire.auto_temperature", AD_CONFIG_BOOL, auto_temperature, "false",
      "offline rounds sample at the grid's temperature with the best B-STaR balance on a probe"),
    K("acquire.temperature_grid", AD_CONFIG_STRING, temperature_grid, "0.4, 0.6, 0.8, 1.0, 1.2",
      "auto_temperature: the temperatures tried, comma-separated"),
    KR("acquire.temperature_probe", AD_CONFIG_SIZE, temperature_probe, "64",
       "auto_temperature: probe prompts (spread over the round's levels)", 1, 1e6),
    K("select.complete", AD_CONFIG_BOOL, f_complete, "true", "drop outputs that never reached EOS"),
    K("select.length", AD_CONFIG_BOOL, f_length, "false", "length filter"),
    KR("select.length_shortfall", AD_CONFIG_SIZE, length_shortfall, "2",
       "length filter: drop outputs this many tokens shorter than the longest", 1, 1e6),
    K("select.vote_samples", AD_CONFIG_BOOL, f_vote_samples, "false",
      "majority vote over one model's samples"),
    KR("select.vote_min_share", AD_CONFIG_DOUBLE, vote_min_share, "0.6",
       "vote_samples: share the modal answer needs", 0, 1),
    K("select.vote_lineages", AD_CONFIG_BOOL, f_vote_lineages, "false",
      "majority vote across lineages' greedy answers"),
    KR("select.vote_min_agree", AD_CONFIG_SIZE, vote_min_agree, "4",
       "vote_lineages: lineages that must agree", 1, 16),
    K("select.confidence", AD_CONFIG_BOOL, f_confidence, "false",
      "confidence filter on mean token log-prob"),
    KR("select.confidence_min", AD_CONFIG_DOUBLE, confidence_min, "-0.05",
       "confidence: minimum mean log-prob (nats/token)", -1e9, 0),
    KR("select.confidence_top", AD_CONFIG_DOUBLE, confidence_top, "0",
       "confidence: keep this top fraction per level instead (0: use the threshold)", 0, 1),
    {"select.confidence_group", AD_CONFIG_ENUM, offsetof(ad_run_config, confidence_group), "level",
     "confidence_top: rank within all, each level, or each prompt", group_choices, 0, 0, 0},
    K("select.verifier", AD_CONFIG_BOOL, f_verifier, "false",
      "keep only verified answers (rejection sampling, STaR/RFT)"),
    K("select.unique", AD_CONFIG_BOOL, f_unique, "true", "one copy of each (prompt, answer) label"),
    K("select.pairs", AD_CONFIG_STRING, pairs, "",
      "preference pairs from the candidates: verifier, vote, lineages or confidence (empty: none; "
      "docs/objectives.md)"),
    KR("select.pairs_per_prompt", AD_CONFIG_SIZE, pairs_per_prompt, "1",
       "pairs: at most this many per prompt", 1, 1e6),
    KR("select.pair_min_agree", AD_CONFIG_SIZE, pair_min_agree, "2",
       "pairs = lineages: lineages that must agree on the chosen answer", 1, 16),
    KR("select.pair_min_share", AD_CONFIG_DOUBLE, pair_min_share, "0.5",
       "pairs = vote: share of the prompt's candidates the chosen answer needs", 0, 1),
    KR("select.pair_min_gap", AD_CONFIG_DOUBLE, pair_min_gap, "0",
       "pairs = confidence: least score gap between chosen and rejected", 0, 1e9),
    K("select.judge", AD_CONFIG_BOOL, f_judge, "false",
      "keep only answers the self-taught judge accepts (judge.train must be on)"),
    K("select.sharpen", AD_CONFIG_BOOL, f_sharpen, "false",
      "keep each model's most likely complete sample per prompt (SFT-sharpening)"),
    KR("select.bstar_target", AD_CONFIG_SIZE, bstar_target, "8",
       "n* of the reported B-STaR balance score: distinct correct kept answers that count in "
       "full",
       1, 1e6),
    K("judge.train", AD_CONFIG_BOOL, judge_train, "false",
      "train a self-taught judge each round on the run's history and score the candidates"),
    {"judge.labels", AD_CONFIG_ENUM, offsetof(ad_run_config, judge_labels), "filters",
     "the judge's labels: the filters' past decisions (label-free) or the checker's verdicts",
     judge_label_choices, 0, 0, 0},
    KR("judge.layers", AD_CONFIG_SIZE, judge_layers, "2", "judge transformer blocks", 1, 4096),
    KR("judge.heads", AD_CONFIG_SIZE, judge_heads, "4", "judge attention heads", 1, 4096),
    KR("judge.dim", AD_CONFIG_SIZE, judge_dim, "64", "judge d_model", 1, 65536),
    KR("judge.ffn", AD_CONFIG_SIZE, judge_ffn, "256", "judge SwiGLU hidden size", 1, 1048576),
    KR("judge.steps", AD_CONFIG_SIZE, judge_steps, "300", "judge optimizer steps per round", 1,
       1e9),
    KR("judge.batch", AD_CONFIG_SIZE, judge_batch, "64",
       "judge sequences per step (half accepted, half rejected answers)", 1, 1e6),
    KR("judge.lr", AD_CONFIG_FLOAT, judge_lr, "0.001", "judge peak learning rate", 0, 1),
    KR("judge.threshold", AD_CONFIG_DOUBLE, judge_threshold, "0.5",
       "the judge says yes when P(yes) >= this (filter, precision and recall)", 0, 1),
    {"round.labels", AD_CONFIG_ENUM, offsetof(ad_run_config, labels_split), "shared",
     "offline rounds: shared (each lineage trains on every label or pair) or split (l on l, l+L, "
     "..)",
     labels_choices, 0, 0, 0},
    {"round.kind", AD_CONFIG_ENUM, offsetof(ad_run_config, round_kind), "offline",
     "offline (acquire, select, optimize on what was kept) or rl (on-policy rollouts and updates, "
     "rl.*)",
     kind_choices, 0, 0, 0},
    KR("rl.steps", AD_CONFIG_SIZE, rl_steps, "100",
       "rl: rollout-update steps per round and lineage", 1, 1e9),
    KR("rl.prompts", AD_CONFIG_SIZE, rl_prompts, "16", "rl: prompts per step", 1, 1e6),
    KR("rl.group", AD_CONFIG_SIZE, rl_group, "8", "rl: completions sampled per prompt", 1, 1024),
    KR("rl.inner_epochs", AD_CONFIG_SIZE, rl_inner_epochs, "1",
       "rl: optimizer steps on each step's rollouts", 1, 64),
    KR("rl.temperature", AD_CONFIG_FLOAT, rl_temperature, "1", "rl: sampling temperature", 0, 100),
    KR("rl.top_p", AD_CONFIG_FLOAT, rl_top_p, "1", "rl: sampling top-p (1: off)", 0, 1),
    K("rl.rewards", AD_CONFIG_STRING, rl_rewards, "verifier:1",
      "rl: reward as a weighted sum, e.g. majority:1, length:0.1 (docs/rl.md)"),
    K("rl.judge", AD_CONFIG_STRING, rl_judge, "",
      "rl: the judge reward's judge checkpoint (a run's ckpt/judge/rNNNN), copied into the run"),
    {"rl.advantage", AD_CONFIG_ENUM, offsetof(ad_run_config, rl_advantage), "grpo",
     "rl: advantage estimator", advantage_choices, 0, 0, 0},
    {"rl.loss_agg", AD_CONFIG_ENUM, offsetof(ad_run_config, rl_loss_agg), "token_mean",
     "rl: loss aggregation (DAPO, GRPO, Dr. GRPO)", agg_choices, 0, 0, 0},
    KR("rl.epsilon", AD_CONFIG_DOUBLE, rl_epsilon, "0.2",
       "rl: ratio clip 1 - epsilon .. 1 + epsilon_high", 1e-6, 0.999),
    KR("rl.epsilon_high", AD_CONFIG_DOUBLE, rl_epsilon_high, "0",
       "rl: upper clip (DAPO clip-higher: 0.28; 0: epsilon)", 0, 10),
    KR("rl.beta", AD_CONFIG_DOUBLE, rl_beta, "0",
       "rl: weight of the k3 KL to the round's starting model (0: no reference pass)", 0, 1e6),
    K("rl.drop_uniform_groups", AD_CONFIG_BOOL, rl_drop_uniform, "false",
      "rl: drop groups whose rewards are all equal and sample replacements (DAPO)"),
    KR("rl.max_resample", AD_CONFIG_SIZE, rl_max_resample, "16",
       "rl: at most this many replacement prompts per step", 0, 1e6),
    K("rl.guard", AD_CONFIG_BOOL, rl_guard, "false",
      "rl: roll the round back when its reward rose while self-consistency on mastered levels "
      "fell (reward hacking)"),
    {"rl.incomplete", AD_CONFIG_ENUM, offsetof(ad_run_config, rl_incomplete), "mask",
     "rl: outputs cut at the length bound: mask (no gradient) or penalty (reward -1)",
     incomplete_choices, 0, 0, 0},
    K("optimize.objective", AD_CONFIG_STRING, objective, "sft",
      "sft (kept labels), dpo (the round's pairs) or nft (kept and rejected samples: "
      "negative-aware fine-tuning)"),
    {"dpo.loss", AD_CONFIG_ENUM, offsetof(ad_run_config, dpo_loss), "sigmoid",
     "sigmoid (DPO), ipo or rpo (DPO + NLL of the chosen)", dpo_loss_choices, 0, 0, 0},
    KR("dpo.beta", AD_CONFIG_DOUBLE, dpo_beta, "0.1", "DPO temperature beta", 1e-9, 1e6),
    KR("dpo.nll_weight", AD_CONFIG_DOUBLE, dpo_nll_weight, "1",
       "rpo: weight of the chosen's length-normalized NLL", 0, 1e6),
    KR("dpo.label_smoothing", AD_CONFIG_DOUBLE, dpo_label_smoothing, "0",
       "conservative DPO: assumed share of flipped pairs, in [0, 0.5)", 0, 0.4999),
    KR("nft.eps", AD_CONFIG_DOUBLE, nft_eps, "1",
       "nft: floor of the negatives' likelihood ratio (value clipped, gradient kept)", 1e-6, 1),
    KR("nft.neg_weight", AD_CONFIG_DOUBLE, nft_neg_weight, "1",
       "nft: weight of the rejected samples' term (0: the kept ones only, RFT)", 0, 1e6),
    {"nft.prompt_weight", AD_CONFIG_ENUM, offsetof(ad_run_config, nft_weight), "dr_grpo",
     "nft: prompt weight, dr_grpo (1 - r), grpo (sqrt((1 - r) / r)) or none (1); r: the "
     "prompt's kept share",
     nft_weight_choices, 0, 0, 0},
    KR("eval.n", AD_CONFIG_SIZE, eval_n, "256", "held-out problems per level", 1, 1e7),
    KR("eval.below", AD_CONFIG_SIZE, eval_below, "2", "levels evaluated below the frontier", 0,
       1000),
    KR("eval.above", AD_CONFIG_SIZE, eval_above, "3", "levels evaluated above the frontier", 0,
       1000),
    K("accept.rollback", AD_CONFIG_BOOL, rollback, "false",
      "refuse a round that loses accuracy on mastered levels"),
    K("accept.label_free", AD_CONFIG_BOOL, rollback_label_free, "false",
      "rollback compares self-consistency (no labels) instead of held-out accuracy"),
    KR("accept.mastered", AD_CONFIG_DOUBLE, mastered, "0.95",
       "accuracy at which a level counts as mastered", 0, 1),
    KR("accept.max_drop", AD_CONFIG_DOUBLE, max_drop, "0.05",
       "largest allowed accuracy drop on a mastered level", 0, 1),
    KR("accept.max_loss_ratio", AD_CONFIG_DOUBLE, max_loss_ratio, "1.5",
       "roll back a round whose training loss ends above this times its start, and 0.05 higher (0: "
       "off)",
       0, 1e6),
};

static const ad_config_schema schema = {keys, sizeof keys / sizeof keys[0]};

ad_model_config ad_run_model_config(const ad_run_config *c, size_t vocab_size, size_t max_len) {
    ad_model_config mc = ad_model_default_config();
    mc.n_layers = c->layers;
    mc.n_heads = c->heads;
    mc.d_model = c->dim;
    mc.d_ff = c->ffn;
    mc.vocab_size = vocab_size;
    mc.max_seq_len = max_len;
    mc.pos = c->pos ? AD_POS_ROPE : AD_POS_NONE;
    mc.rope_theta = c->rope_theta;
    mc.tie_embeddings = c->tie;
    mc.seed = 0;
    return mc;
}

const ad_config_schema *ad_run_config_schema(void) {
    return &schema;
}

/* "a, b, c": the names of a registry's n entries. */
static void list_names(char *buf, size_t cap, size_t n, const char *(*name_at)(size_t)) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", name_at(i));
        if (w > 0) len += (size_t)w;
    }
}

static const char *objective_name(size_t i) {
    return ad_objective_at(i)->name;
}

static const char *pair_rule_name(size_t i) {
    return ad_pair_rule_at(i)->name;
}

/* optimize.objective, select.pairs and how they fit together. */
static int validate_objective(const ad_run_config *c, const char **key, ad_error *err) {
    *key = "optimize.objective";
    const ad_objective *o = ad_objective_find(c->objective);
    char names[256];
    if (!o) {
        list_names(names, sizeof names, ad_objective_count(), objective_name);
        return ad_error_set(err, "optimize.objective: unknown objective '%s' (one of: %s)",
                            c->objective, names);
    }
    *key = "select.pairs";
    if (c->pairs[0] && !ad_pair_rule_find(c->pairs)) {
        list_names(names, sizeof names, ad_pair_rule_count(), pair_rule_name);
        return ad_error_set(err, "select.pairs: unknown pair rule '%s' (one of: %s)", c->pairs,
                            names);
    }
    if (!strcmp(c->pairs, "judge") && !c->judge_train)
        return ad_error_set(err, "select.pairs = judge needs judge.train = true");
    *key = "select.judge";
    if (c->f_judge && !c->judge_train)
        return ad_error_set(err, "select.judge needs judge.train = true");
    *key = "judge.heads";
    if (c->judge_train && c->judge_dim % c->judge_heads)
        return ad_error_set(err, "judge.heads = %zu does not divide judge.dim = %zu",
                            c->judge_heads, c->judge_dim);
    if (!strcmp(c->pairs, "lineages") && c->lineages < 2)
        return ad_error_set(err, "select.pairs = lineages needs run.lineages >= 2");
    *key = "select.pair_min_agree";
    if (!strcmp(c->pairs, "lineages") && c->pair_min_agree > c->lineages)
        return ad_error_set(err, "select.pair_min_agree = %zu exceeds run.lineages = %zu",
                            c->pair_min_agree, c->lineages);
    *key = "optimize.objective";
    if (o->batch == AD_BATCH_GROUPS)
        return ad_error_set(err,
                            "optimize.objective = %s learns from on-policy rollouts: set "
                            "round.kind = rl (rl.*) instead",
                            c->objective);
    if (o->batch == AD_BATCH_PAIRS && !c->pairs[0])
        return ad_error_set(err, "optimize.objective = %s trains on pairs: set select.pairs",
                            c->objective);
    if (o->batch == AD_BATCH_SAMPLES && c->samples < 2)
        return ad_error_set(err,
                            "optimize.objective = %s needs acquire.samples >= 2 (a prompt's kept "
                            "share r_q counts its samples), got acquire.samples = %zu",
                            c->objective, c->samples);
    return AD_OK;
}

/* rl.*: the reward spec and what an rl round cannot do. */
static int validate_rl(const ad_run_config *c, const char **key, ad_error *err) {
    *key = "rl.rewards";
    ad_reward_spec spec;
    if (ad_reward_spec_parse(c->rl_rewards, &spec, err) != AD_OK)
        return ad_error_prefix(err, "rl.rewards: ");
    if (ad_reward_spec_names(&spec, "lineages") && c->lineages < 2)
        return ad_error_set(err, "rl.rewards: lineages needs run.lineages >= 2 (the "
                                 "others' answers are the voters)");
    int judged = ad_reward_spec_names(&spec, "judge");
    *key = "rl.judge";
    int have_judge = c->rl_judge && c->rl_judge[0];
    if (judged && !have_judge)
        return ad_error_set(err, "rl.rewards names judge: set rl.judge to a judge checkpoint "
                                 "(e.g. a self+judge run's DIR/ckpt/judge/rNNNN)");
    if (!judged && have_judge)
        return ad_error_set(err, "rl.judge = %s is set but rl.rewards does not name judge",
                            c->rl_judge);
    *key = "rl.group";
    if (c->rl_group < 2 && c->rl_advantage != 3)
        return ad_error_set(err,
                            "rl.group = %zu: group advantages need >= 2 samples per "
                            "prompt (or rl.advantage = reinforce)",
                            c->rl_group);
    return AD_OK;
}

int ad_run_config_temperature_grid(const ad_run_config *cfg, float *out, size_t *n, ad_error *err) {
    const char *s = cfg->temperature_grid ? cfg->temperature_grid : "";
    *n = 0;
    while (*s) {
        char *end;
        double t = strtod(s, &end);
        if (end == s || !isfinite(t) || t <= 0 || t > 100)
            return ad_error_set(err,
                                "acquire.temperature_grid: '%.40s' is not a temperature in "
                                "(0, 100]",
                                s);
        if (*n == AD_TEMPERATURE_GRID_MAX)
            return ad_error_set(err, "acquire.temperature_grid: more than %d temperatures",
                                AD_TEMPERATURE_GRID_MAX);
        out[(*n)++] = (float)t;
        s = end + strspn(end, " \t");
        if (*s && *s++ != ',')
            return ad_error_set(err, "acquire.temperature_grid: expected ',' at '%.40s'", s - 1);
        s += strspn(s, " \t");
    }
    if (*n == 0) return ad_error_set(err, "acquire.temperature_grid: empty");
    return AD_OK;
}

/* acquire.auto_temperature: a grid to choose from, and samples it matters for.
 * (It acts in the acquire stage of offline rounds; rl rounds sample at
 * rl.temperature.) */
static int validate_auto_temperature(const ad_run_config *c, const char **key, ad_error *err) {
    float grid[AD_TEMPERATURE_GRID_MAX];
    size_t n;
    *key = "acquire.temperature_grid";
    if (ad_run_config_temperature_grid(c, grid, &n, err) != AD_OK) return AD_ERR;
    *key = "acquire.auto_temperature";
    if (!c->auto_temperature) return AD_OK;
    if (c->samples < 2)
        return ad_error_set(err, "acquire.auto_temperature needs acquire.samples >= 2 (sample 0 "
                                 "is greedy, whatever the temperature)");
    return AD_OK;
}

/* The checks of ad_run_config_validate; *key names the key to point at. */
static int validate(const ad_run_config *c, const char **key, ad_error *err) {
    *key = "run.task";
    if (!c->task || !c->task[0]) return ad_error_set(err, "run.task: empty");
    *key = "base.levels";
    if (c->base_levels.n == 0) return ad_error_set(err, "base.levels: no levels");
    *key = "model.heads";
    if (c->dim % c->heads)
        return ad_error_set(err, "model.heads = %zu does not divide model.dim = %zu", c->heads,
                            c->dim);
    *key = "run.shards";
    if (c->shards > c->base_batch || c->shards > c->round_batch)
        return ad_error_set(err, "run.shards = %zu exceeds base.batch or round.batch (%zu, %zu)",
                            c->shards, c->base_batch, c->round_batch);
    *key = "base.decay";
    if (c->base_warmup + c->base_decay > 1)
        return ad_error_set(err, "base.warmup + base.decay = %g exceeds 1",
                            (double)(c->base_warmup + c->base_decay));
    *key = "round.decay";
    if (c->round_warmup + c->round_decay > 1)
        return ad_error_set(err, "round.warmup + round.decay = %g exceeds 1",
                            (double)(c->round_warmup + c->round_decay));
    *key = "select.vote_min_agree";
    if (c->f_vote_lineages && c->vote_min_agree > c->lineages)
        return ad_error_set(err, "select.vote_min_agree = %zu exceeds run.lineages = %zu",
                            c->vote_min_agree, c->lineages);
    *key = "select.vote_lineages";
    if (c->f_vote_lineages && c->lineages < 2)
        return ad_error_set(err, "select.vote_lineages needs run.lineages >= 2");
    *key = "curriculum.hold_max";
    if (c->hold_max && !(c->adaptive && c->adaptive_hold))
        return ad_error_set(err, "curriculum.hold_max needs curriculum.pace = adaptive and "
                                 "curriculum.hold = true");
    *key = "round.labels";
    if (c->labels_split && c->lineages < 2)
        return ad_error_set(err, "round.labels = split needs run.lineages >= 2");
    const ad_objective *split_obj = c->labels_split ? ad_objective_find(c->objective) : NULL;
    if (split_obj && split_obj->batch == AD_BATCH_SAMPLES)
        return ad_error_set(err,
                            "round.labels = split splits labels or pairs; "
                            "optimize.objective = %s trains on samples",
                            c->objective);
    *key = "select.vote_samples";
    if (c->f_vote_samples && c->samples < 2)
        return ad_error_set(err, "select.vote_samples needs acquire.samples >= 2");
    if (validate_objective(c, key, err) != AD_OK) return AD_ERR;
    if (c->round_kind == 1 && validate_rl(c, key, err) != AD_OK) return AD_ERR;
    if (validate_auto_temperature(c, key, err) != AD_OK) return AD_ERR;
    *key = "curriculum.levels_per_round";
    if (!c->adaptive && c->levels_per_round == 0)
        return ad_error_set(err, "curriculum.levels_per_round must be >= 1 with a fixed pace");
    return AD_OK;
}

int ad_run_config_validate(const ad_run_config *c, ad_error *err) {
    const char *key;
    return validate(c, &key, err);
}

/* The line of the INI file at path that sets `name` ("section.key"), or 0 when
 * none does; for pointing a cross-key error at the file. Only locates lines
 * (the file was already parsed by inih). */
static size_t key_line(const char *path, const char *name) {
    char *text = NULL, section[AD_CONFIG_NAME_MAX] = "", full[2 * AD_CONFIG_NAME_MAX + 2];
    size_t len = 0, line = 0, found = 0;
    ad_error ignored;
    if (ad_read_file(path, AD_CONFIG_FILE_MAX, &text, &len, &ignored) != AD_OK) return 0;
    for (char *p = text, *next; p && *p; p = next) {
        next = strchr(p, '\n');
        if (next) *next++ = '\0';
        line++;
        p += strspn(p, " \t\xEF\xBB\xBF");
        size_t n = strcspn(p, "]=");
        if (*p == '[' && p[n] == ']') {
            snprintf(section, sizeof section, "%.*s", (int)(n - 1), p + 1);
        } else if (*p != ';' && *p != '#' && p[n] == '=') {
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            snprintf(full, sizeof full, "%s%s%.*s", section, section[0] ? "." : "", (int)n, p);
            if (strcmp(full, name) == 0) found = line;
        }
    }
    free(text);
    return found;
}

/* 1 when an override "name=..." sets the key. */
static int overridden(const char *name, const char *const *overrides, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *o = overrides[i] + strspn(overrides[i], " \t");
        size_t len = strlen(name);
        if (strncmp(o, name, len) == 0 && (o[len] == '=' || o[len] == ' ' || o[len] == '\t'))
            return 1;
    }
    return 0;
}

int ad_run_config_load(ad_run_config *cfg, const char *path, const char *const *overrides,
                       size_t n_overrides, ad_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (ad_config_defaults(&schema, cfg, err) != AD_OK) return AD_ERR;
    if (path && ad_config_load_file(&schema, cfg, path, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < n_overrides; i++)
        if (ad_config_set(&schema, cfg, overrides[i], err) != AD_OK) return AD_ERR;
    const char *key = NULL;
    if (validate(cfg, &key, err) == AD_OK) return AD_OK;
    if (!path) return AD_ERR;
    size_t line = overridden(key, overrides, n_overrides) ? 0 : key_line(path, key);
    return line ? ad_error_prefix(err, "%s:%zu: ", path, line) : ad_error_prefix(err, "%s: ", path);
}

void ad_run_config_free(ad_run_config *cfg) {
    ad_config_free(&schema, cfg);
}
