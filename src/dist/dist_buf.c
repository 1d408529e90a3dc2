/* dist_buf.c: the message byte buffer (see dist_buf.h). */
#include "dist/dist_buf.h"

#include <stdlib.h>
#include <string.h>

void ad_dist_buf_put(ad_dist_buf *b, const void *data, size_t n) {
    if (b->failed || n == 0) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

void ad_dist_buf_put_u64(ad_dist_buf *b, uint64_t v) {
    ad_dist_buf_put(b, &v, sizeof v);
}

const void *ad_dist_buf_take(ad_dist_buf *b, size_t n) {
    if (b->failed || n > b->n - b->off) {
        b->failed = 1;
        return NULL;
    }
    const void *at = b->p + b->off;
    b->off += n;
    return at;
}

void ad_dist_buf_get(ad_dist_buf *b, void *data, size_t n) {
    const void *at = ad_dist_buf_take(b, n);
    if (at)
        memcpy(data, at, n);
    else
        memset(data, 0, n);
}

uint64_t ad_dist_buf_get_u64(ad_dist_buf *b) {
    uint64_t v = 0;
    ad_dist_buf_get(b, &v, sizeof v);
    return v;
}

int ad_dist_buf_check(const ad_dist_buf *b, const char *what, ad_error *err) {
    if (!b->failed) return AD_OK;
    return ad_error_set(err, "%s: message %s", what,
                        b->off ? "shorter than its contents say" : "out of memory");
}

void ad_dist_buf_free(ad_dist_buf *b) {
    free(b->p);
    *b = (ad_dist_buf){0};
}
