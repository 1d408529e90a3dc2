/* rng.c: splitmix64 seeding, xoshiro256** generation, tuple seed derivation. */
#include "util/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ad_rng_seed(ad_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t ad_rng_u64(ad_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Lemire's multiply-and-reject method: unbiased and usually one multiply. */
uint64_t ad_rng_below(ad_rng *rng, uint64_t n) {
    if (n == 0) return 0;
    unsigned __int128 m = (unsigned __int128)ad_rng_u64(rng) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = (unsigned __int128)ad_rng_u64(rng) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

int64_t ad_rng_range(ad_rng *rng, int64_t lo, int64_t hi) {
    return lo + (int64_t)ad_rng_below(rng, (uint64_t)(hi - lo) + 1);
}

double ad_rng_uniform(ad_rng *rng) {
    return (double)(ad_rng_u64(rng) >> 11) * 0x1.0p-53;
}

double ad_rng_normal(ad_rng *rng) {
    double u1 = ad_rng_uniform(rng);
    double u2 = ad_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void ad_rng_shuffle(ad_rng *rng, void *base, size_t n, size_t size) {
    unsigned char *p = base;
    if (n < 2) return;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)ad_rng_below(rng, i + 1);
        if (j == i) continue;
        unsigned char *a = p + i * size, *b = p + j * size;
        for (size_t k = 0; k < size; k++) {
            unsigned char t = a[k];
            a[k] = b[k];
            b[k] = t;
        }
    }
}

/* Folds n parts into a seed, each part salted by its position, so that
 * (a, b) and (b, a) differ. */
static uint64_t mix_parts(uint64_t seed, const uint64_t *parts, int n) {
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    for (int i = 0; i < n; i++) {
        x = h ^ (parts[i] + 0x632BE59BD9B4E019ull * (uint64_t)(i + 1));
        h = splitmix64(&x);
    }
    return h;
}

uint64_t ad_seed_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t parts[4] = {a, b, c, d};
    return mix_parts(seed, parts, 4);
}

uint64_t ad_seed(uint64_t run_seed, uint64_t lineage, uint64_t round, ad_seed_stage stage,
                 uint64_t stream, uint64_t item) {
    uint64_t parts[5] = {(uint64_t)stage, lineage, round, stream, item};
    return mix_parts(run_seed, parts, 5);
}

uint64_t ad_seed_level_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}
