/* dist_buf.h: a growable byte buffer for the messages ranks send each other:
 * values appended as raw bytes, read back in the same order. Ranks run the
 * same binary on the same architecture, so structs travel as they are. */
#ifndef AD_DIST_DIST_BUF_H
#define AD_DIST_DIST_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct ad_dist_buf {
    unsigned char *p;
    size_t n, cap; /* bytes held, allocated */
    size_t off;    /* the read position */
    int failed;    /* an append ran out of memory, or a read ran past the end */
} ad_dist_buf;

/* Appends n bytes (on out of memory: sets failed, appends nothing more). */
void ad_dist_buf_put(ad_dist_buf *b, const void *data, size_t n);
void ad_dist_buf_put_u64(ad_dist_buf *b, uint64_t v);

/* Reads n bytes at the read position (past the end: zeros, and failed set). */
void ad_dist_buf_get(ad_dist_buf *b, void *data, size_t n);
uint64_t ad_dist_buf_get_u64(ad_dist_buf *b);

/* A pointer to the next n bytes, advancing past them (NULL past the end). */
const void *ad_dist_buf_take(ad_dist_buf *b, size_t n);

/* AD_OK, or an error naming `what` when an append or a read failed. */
int ad_dist_buf_check(const ad_dist_buf *b, const char *what, ad_error *err);

/* Frees the bytes; the buffer is empty again. Safe on an empty buffer. */
void ad_dist_buf_free(ad_dist_buf *b);

#endif
