/* rng.h: deterministic random numbers, and seeds derived from tuples.
 *
 * Every random choice in autodidact takes its seed from the run's seed through
 * one rule, ad_seed(run_seed, lineage, round, stage, stream, item): a stateless
 * mix, so any item of any stage can be reproduced (or computed on another
 * rank) without replaying the stream before it. The generator is xoshiro256** seeded by
 * splitmix64; its whole state is 4 words and can be saved in a checkpoint. */
#ifndef AD_UTIL_RNG_H
#define AD_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct ad_rng {
    uint64_t s[4];
} ad_rng;

/* Seeds the generator from one 64-bit value. This function can't fail. */
void ad_rng_seed(ad_rng *rng, uint64_t seed);

/* Next 64 random bits. */
uint64_t ad_rng_u64(ad_rng *rng);

/* Uniform integer in [0, n), without modulo bias; n must be > 0. */
uint64_t ad_rng_below(ad_rng *rng, uint64_t n);

/* Uniform integer in [lo, hi] (inclusive); requires lo <= hi. */
int64_t ad_rng_range(ad_rng *rng, int64_t lo, int64_t hi);

/* Uniform double in [0, 1) with 53 random bits. */
double ad_rng_uniform(ad_rng *rng);

/* Standard normal deviate (Box-Muller, no cached second value so the state
 * alone determines the stream). */
double ad_rng_normal(ad_rng *rng);

/* Shuffles n elements of size `size` in place (Fisher-Yates). */
void ad_rng_shuffle(ad_rng *rng, void *base, size_t n, size_t size);

/* Mixes a tuple into one seed: ad_seed_derive(seed, a, b, c, d). Distinct tuples
 * give (with overwhelming probability) unrelated streams. Inside a module that
 * was handed one stream's seed (a model's init seed, a sampler's seed, a
 * mixture's seed), it names the items of that stream. */
uint64_t ad_seed_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* The stages that draw random numbers: the stage slot of ad_seed. Values are
 * part of every run's bits: append, never renumber. */
typedef enum ad_seed_stage {
    AD_SEED_INIT = 1,         /* model weights (item: none; the model derives per tensor) */
    AD_SEED_TRAIN = 2,        /* the optimize stage's batch draws (the mixture) */
    AD_SEED_ACQUIRE = 3,      /* a round's fresh prompts (stream: level key, item: prompt) */
    AD_SEED_SAMPLE = 4,       /* decoding of candidates (stream: 0 greedy, 1 sampled) */
    AD_SEED_EVAL = 5,         /* held-out evaluation problems (stream: level key, item: problem) */
    AD_SEED_BASE = 6,         /* labelled base examples (item: example index) */
    AD_SEED_PROBE = 7,        /* self-consistency probe prompts and their decoding */
    AD_SEED_PAIRS = 8,        /* the optimize stage's draws of preference pairs */
    AD_SEED_JUDGE = 9,        /* the judge's training draws (its weights: INIT, stream 1) */
    AD_SEED_ROLLOUT = 10,     /* an RL step's prompts (stream: step, item: prompt) */
    AD_SEED_TEMPERATURE = 11, /* the auto-temperature probe's prompts (stream: level key, item:
                               * prompt) and their decoding (stream: 0 greedy, 1 sampled) */
} ad_seed_stage;

/* "Any": the slot of a stream shared by every lineage or every round (held-out
 * problems are the same for all lineages and rounds; a round's prompts are the
 * same for all lineages). */
#define AD_SEED_ANY UINT64_MAX

/* The one seed rule of a run. Every random stream of autodidact is named by
 *     (run seed, lineage, round, stage, stream, item)
 * and its seed is ad_seed of that tuple: a stateless mix, so any item of any
 * stage can be reproduced on resume (or on another process) without replaying
 * what came before, and two distinct tuples give unrelated streams. The level
 * key of a stream is ad_seed_level_key(level). This function can't fail. */
uint64_t ad_seed(uint64_t run_seed, uint64_t lineage, uint64_t round, ad_seed_stage stage,
                 uint64_t stream, uint64_t item);

/* A level as one 64-bit stream key: a in the high half, b in the low half. */
uint64_t ad_seed_level_key(int32_t a, int32_t b);

#endif
