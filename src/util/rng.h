/* rng.h: deterministic random numbers, and seeds derived from tuples.
 *
 * Every random choice in autodidact takes its seed from the run's seed through
 * ad_seed_derive(run_seed, lineage, round, stage, item): a stateless mix, so any
 * item of any stage can be reproduced (or computed on another rank) without
 * replaying the stream before it. The generator is xoshiro256** seeded by
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
 * give (with overwhelming probability) unrelated streams. */
uint64_t ad_seed_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* Well-known stage identifiers for ad_seed_derive, so streams never collide. */
enum {
    AD_STREAM_INIT = 1,     /* model weight initialisation */
    AD_STREAM_TRAIN = 2,    /* training batch order / mixture draws */
    AD_STREAM_ACQUIRE = 3,  /* fresh prompts for a round */
    AD_STREAM_SAMPLE = 4,   /* decoding randomness */
    AD_STREAM_EVAL = 5,     /* held-out evaluation prompts */
    AD_STREAM_BASE = 6,     /* labelled base data */
};

#endif
