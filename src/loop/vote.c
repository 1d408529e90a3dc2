/* vote.c: modal answer by sorting indices by answer text and counting runs. */
#include "loop/vote.h"

#include <stdlib.h>
#include <string.h>

typedef struct vote_item {
    const char *answer;
    size_t index;
} vote_item;

/* By answer text, then by index so the first occurrence leads its run. */
static int cmp_item(const void *x, const void *y) {
    const vote_item *a = x, *b = y;
    int c = strcmp(a->answer, b->answer);
    if (c) return c;
    return (a->index > b->index) - (a->index < b->index);
}

int ad_vote_mode(const char *const *answers, size_t n, ad_vote *out, ad_error *err) {
    memset(out, 0, sizeof *out);
    vote_item *items = n ? malloc(n * sizeof *items) : NULL;
    if (n && !items) return ad_error_set(err, "vote: out of memory for %zu answers", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (answers[i]) items[m++] = (vote_item){answers[i], i};
    if (m > 1) qsort(items, m, sizeof *items, cmp_item);
    for (size_t i = 0; i < m;) {
        size_t j = i + 1;
        while (j < m && strcmp(items[j].answer, items[i].answer) == 0)
            j++;
        size_t run = j - i;
        out->n_distinct++;
        if (run > out->count) {
            out->count = run;
            out->first = items[i].index;
            out->unique = 1;
        } else if (run == out->count) {
            out->unique = 0;
        }
        i = j;
    }
    free(items);
    return AD_OK;
}
