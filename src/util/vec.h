/* vec.h: the one growable array of the code base: elements of a fixed size,
 * stored contiguously, doubling on growth.
 *
 *     ad_vec v;
 *     ad_vec_init(&v, sizeof(ad_pair));
 *     if (ad_vec_push(&v, &pair, err) != AD_OK) ...
 *     ad_pair *pairs = v.data;   // v.n of them
 *     ad_vec_free(&v);
 *
 * Not here: ownership of what the elements point to (the caller frees it). */
#ifndef AD_UTIL_VEC_H
#define AD_UTIL_VEC_H

#include <stddef.h>

#include "util/error.h"

typedef struct ad_vec {
    void *data;  /* n elements of elem bytes; NULL while empty */
    size_t n;    /* elements in use */
    size_t cap;  /* elements allocated */
    size_t elem; /* bytes per element */
} ad_vec;

/* An empty vector of elements of `elem` bytes. This function can't fail. */
void ad_vec_init(ad_vec *v, size_t elem);

/* Makes room for at least `n` elements in total. On error (out of memory or a
 * size that overflows) nothing is changed. */
int ad_vec_reserve(ad_vec *v, size_t n, ad_error *err);

/* Appends a copy of the element at `item`. On error nothing is changed. */
int ad_vec_push(ad_vec *v, const void *item, ad_error *err);

/* The address of element i (i < n). This function can't fail. */
void *ad_vec_at(const ad_vec *v, size_t i);

/* Hands the storage to the caller (who frees it with free()) and leaves the
 * vector empty. Returns NULL for an empty vector. */
void *ad_vec_release(ad_vec *v);

/* Frees the storage and leaves the vector empty; safe on an empty one. */
void ad_vec_free(ad_vec *v);

#endif
