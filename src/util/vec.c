/* vec.c: the growable array (see vec.h). */
#include "util/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void ad_vec_init(ad_vec *v, size_t elem) {
    v->data = NULL;
    v->n = v->cap = 0;
    v->elem = elem ? elem : 1;
}

int ad_vec_reserve(ad_vec *v, size_t n, ad_error *err) {
    if (n <= v->cap) return AD_OK;
    size_t cap = v->cap ? v->cap : 16;
    while (cap < n) {
        if (cap > SIZE_MAX / 2) return ad_error_set(err, "array of %zu elements is too large", n);
        cap *= 2;
    }
    if (cap > SIZE_MAX / v->elem) return ad_error_set(err, "array of %zu elements is too large", n);
    void *grown = realloc(v->data, cap * v->elem);
    if (!grown) return ad_error_set(err, "out of memory for %zu elements", cap);
    v->data = grown;
    v->cap = cap;
    return AD_OK;
}

int ad_vec_push(ad_vec *v, const void *item, ad_error *err) {
    if (v->n == v->cap && ad_vec_reserve(v, v->n + 1, err) != AD_OK) return AD_ERR;
    memcpy((unsigned char *)v->data + v->n * v->elem, item, v->elem);
    v->n++;
    return AD_OK;
}

void *ad_vec_at(const ad_vec *v, size_t i) {
    return (unsigned char *)v->data + i * v->elem;
}

void *ad_vec_release(ad_vec *v) {
    void *data = v->data;
    v->data = NULL;
    v->n = v->cap = 0;
    return data;
}

void ad_vec_free(ad_vec *v) {
    free(v->data);
    v->data = NULL;
    v->n = v->cap = 0;
}
