/* kernels_scratch.c: scratch memory the kernels reuse from call to call.
 *
 * A product or an attention pass needs megabytes of temporary buffers; asking
 * malloc for them on every call means fresh pages, page faults and zeroing each
 * time (on a virtual machine, faults the host must serve too). Each slot here
 * keeps one 64-byte-aligned buffer that only grows. A slot serves one caller at
 * a time; a concurrent caller (another thread running kernels) gets a private
 * allocation instead, so the pool is thread-safe and never blocks.
 * Not here: the activations (model_activations.c), which the model owns. */
#include <pthread.h>
#include <stdlib.h>

#include "model/kernels_internal.h"

typedef struct scratch_slot {
    pthread_mutex_t lock;
    float *buf;
    size_t cap; /* floats */
    int busy;
} scratch_slot;

static scratch_slot g_slots[AD_SCRATCH_SLOTS] = {
    [0 ... AD_SCRATCH_SLOTS - 1] = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0}};

static float *alloc_floats(size_t n) {
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    if (bytes / sizeof(float) < n) return NULL;
    return aligned_alloc(64, bytes);
}

void *ad_scratch_get(int slot, size_t n) {
    scratch_slot *s = &g_slots[slot];
    pthread_mutex_lock(&s->lock);
    if (s->busy) {
        pthread_mutex_unlock(&s->lock);
        return alloc_floats(n);
    }
    if (s->cap < n) {
        free(s->buf);
        s->buf = alloc_floats(n);
        s->cap = s->buf ? n : 0;
    }
    float *p = s->buf;
    s->busy = p != NULL;
    pthread_mutex_unlock(&s->lock);
    return p;
}

void ad_scratch_put(int slot, void *p) {
    if (!p) return;
    scratch_slot *s = &g_slots[slot];
    pthread_mutex_lock(&s->lock);
    if (p == s->buf) {
        s->busy = 0;
        p = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free(p);
}
