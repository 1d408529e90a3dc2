/* sampler_pick.c: choosing the next token from one row of logits: argmax,
 * log-softmax, self-certainty, and temperature / top-k / top-p sampling from a
 * uniform draw.
 *
 * Not for: running the model (sampler_decode.c) or owning random generators
 * (sampler.c draws the uniform and passes it in, so this file is pure).
 *
 * Ranking is by logit, ties to the lower id, so top-k = 1 is exactly greedy.
 * The most likely tokens are found with a binary max-heap that is popped only
 * as far as the cut needs, so top-k with small k costs O(V + k log V). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/sampler.h"
#include "model/sampler_internal.h"

int32_t ad_sample_argmax(const float *logits, size_t V) {
    size_t best = 0;
    for (size_t j = 1; j < V; j++)
        if (logits[j] > logits[best]) best = j;
    return (int32_t)best;
}

double ad_sample_logprob(const float *logits, size_t V, int32_t tok) {
    size_t best = (size_t)ad_sample_argmax(logits, V);
    double mx = logits[best], z = 1.0; /* the max term is exp(0) */
    for (size_t j = 0; j < V; j++)
        if (j != best) z += exp((double)logits[j] - mx);
    return (double)logits[tok] - mx - log(z);
}

/* With lp_v = l_v - mx - log z (mx the largest logit, z = sum_v exp(l_v - mx)):
 * -log V - (1/V) sum_v lp_v = log z - (1/V) sum_v (l_v - mx) - log V. Shifting
 * by mx keeps exp() in range and the sum of small negative numbers exact enough. */
double ad_sample_certainty(const float *logits, size_t V) {
    size_t best = (size_t)ad_sample_argmax(logits, V);
    double mx = logits[best], z = 1.0, shifted = 0.0; /* the max term is exp(0) */
    for (size_t j = 0; j < V; j++) {
        double d = (double)logits[j] - mx;
        shifted += d;
        if (j != best) z += exp(d);
    }
    return log(z) - shifted / (double)V - log((double)V);
}

/* 1 when token a ranks before token b: larger logit, or equal logit and lower id. */
static int ranks_before(const float *logits, int32_t a, int32_t b) {
    if (logits[a] != logits[b]) return logits[a] > logits[b];
    return a < b;
}

static void sift_down(int32_t *heap, size_t n, size_t i, const float *logits) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && ranks_before(logits, heap[l], heap[top])) top = l;
        if (r < n && ranks_before(logits, heap[r], heap[top])) top = r;
        if (top == i) return;
        int32_t t = heap[i];
        heap[i] = heap[top];
        heap[top] = t;
        i = top;
    }
}

/* Builds a max-heap of all V ids in heap[] (scratch of V entries). */
static void heap_build(int32_t *heap, size_t V, const float *logits) {
    for (size_t j = 0; j < V; j++)
        heap[j] = (int32_t)j;
    for (size_t i = V / 2; i-- > 0;)
        sift_down(heap, V, i, logits);
}

/* Pops the best id of the heap ids[0..*n) into ids[*n - 1] (heapsort order:
 * the p-th best ends at ids[V - 1 - p]) and returns it. */
static int32_t heap_pop(int32_t *ids, size_t *n, const float *logits) {
    int32_t top = ids[0];
    ids[0] = ids[*n - 1];
    ids[*n - 1] = top;
    --*n;
    sift_down(ids, *n, 0, logits);
    return top;
}

size_t ad_sample_support(const float *logits, size_t V, float temperature, size_t top_k,
                         float top_p, int32_t *ids, double *probs) {
    float mx = logits[ad_sample_argmax(logits, V)];
    double inv_t = 1.0 / (double)temperature;
    int truncate_k = top_k > 0 && top_k < V;
    int truncate_p = top_p < 1.0f;
    if (!truncate_k && !truncate_p) {
        double z = 0;
        for (size_t j = 0; j < V; j++) {
            ids[j] = (int32_t)j;
            probs[j] = exp(((double)logits[j] - mx) * inv_t);
            z += probs[j];
        }
        for (size_t j = 0; j < V; j++)
            probs[j] /= z;
        return V;
    }
    /* probs[p] is the weight of the p-th best token once popped; z is the
     * normaliser over the top-k set (over all V when k is off). */
    size_t k = truncate_k ? top_k : V, heap_n = V, popped = 0;
    heap_build(ids, V, logits);
    double z = 0;
    if (truncate_k) {
        for (; popped < k; popped++) {
            int32_t id = heap_pop(ids, &heap_n, logits);
            probs[popped] = exp(((double)logits[id] - mx) * inv_t);
            z += probs[popped];
        }
    } else {
        for (size_t j = 0; j < V; j++)
            z += exp(((double)logits[j] - mx) * inv_t);
    }
    /* Top-p: keep a token while the mass ranked before it is below top_p; pop
     * lazily when k is off, so a tight top-p touches few tokens. */
    size_t n_keep = 0;
    double before = 0, bound = truncate_p ? (double)top_p * z : INFINITY;
    while (n_keep < k && (n_keep == 0 || before < bound)) {
        if (n_keep == popped) {
            int32_t id = heap_pop(ids, &heap_n, logits);
            probs[popped++] = exp(((double)logits[id] - mx) * inv_t);
        }
        before += probs[n_keep++];
    }
    for (size_t j = 0; j < n_keep; j++)
        probs[j] /= before;
    /* The kept ids sit at ids[V-1], ids[V-2], ...: reverse them to the front. */
    for (size_t j = 0; j < n_keep / 2; j++) {
        int32_t t = ids[V - 1 - j];
        ids[V - 1 - j] = ids[V - n_keep + j];
        ids[V - n_keep + j] = t;
    }
    memmove(ids, ids + (V - n_keep), n_keep * sizeof *ids);
    return n_keep;
}

int32_t ad_sample_pick(const float *logits, size_t V, float temperature, size_t top_k, float top_p,
                       double u, int32_t *ids, double *probs) {
    if (temperature == 0.0f) return ad_sample_argmax(logits, V);
    size_t n = ad_sample_support(logits, V, temperature, top_k, top_p, ids, probs);
    double cum = 0;
    for (size_t j = 0; j < n; j++) {
        cum += probs[j];
        if (u < cum) return ids[j];
    }
    return ids[n - 1]; /* u within rounding of 1 */
}
