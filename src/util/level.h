/* level.h: a difficulty level (an integer, or a pair a x b), lists of levels,
 * and curriculum schedules, with their text syntax.
 *
 * A level is what a task calls its difficulty: a digit count or a length (one
 * integer), or a pair of operand lengths for multiplication (a x b). The text
 * forms are shared by config files, the run store and the CLI:
 *
 *   level     7    6x7    (6,7)          (a pair is written "6x7" on output)
 *   list      1-8, 10, 1-5x1-5           ranges expand in order; "1-5x1-5" is the
 *                                        25 pairs with a major; no level twice
 *   schedule  1x6&6x1, 2x6&6x2, 6x6      steps separated by ',', the levels of a
 *             pairs(6-10)                step joined by '&'; pairs(N-M) expands to
 *                                        the reference paper's multiplication order:
 *                                        for n = N..M: 1xn&nx1, ..., (n-1)xn&nx(n-1), nxn
 *
 * Levels are integers in [0, AD_LEVEL_MAX]. This module is not the curriculum
 * (src/loop/curriculum.h decides which step comes when); it only names levels. */
#ifndef AD_UTIL_LEVEL_H
#define AD_UTIL_LEVEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define AD_LEVEL_MAX 1000000
#define AD_LEVEL_SCALAR (-1)    /* value of b for a one-integer level */
#define AD_LEVEL_TEXT_MAX 24    /* buffer size that holds any formatted level */
#define AD_LEVEL_LIST_MAX 65536 /* most levels a list or schedule may expand to */

typedef struct ad_level {
    int32_t a; /* the level, or the first of a pair */
    int32_t b; /* the second of a pair; AD_LEVEL_SCALAR for a one-integer level */
} ad_level;

/* A one-integer level. This function can't fail. */
ad_level ad_level_int(int32_t a);

/* A pair level a x b. This function can't fail. */
ad_level ad_level_pair(int32_t a, int32_t b);

/* 1 when the level is a pair. */
int ad_level_is_pair(ad_level l);

/* Total order: by a, then by b (a one-integer level before the pairs with the
 * same a). Returns <0, 0, >0. This function can't fail. */
int ad_level_cmp(ad_level x, ad_level y);

/* Writes "7" or "6x7" into buf (cap >= AD_LEVEL_TEXT_MAX always suffices);
 * returns buf. This function can't fail. */
char *ad_level_format(ad_level l, char *buf, size_t cap);

/* Parses one level ("7", "6x7" or "(6,7)", surrounding blanks allowed). On
 * error *out is unchanged and the message quotes the text. */
int ad_level_parse(const char *text, ad_level *out, ad_error *err);

/* A list of distinct levels in the order written. */
typedef struct ad_level_list {
    ad_level *v;
    size_t n;
    char *text; /* the text it was parsed from, trimmed: written back by config dumps */
} ad_level_list;

/* Parses a level list (see the syntax above). An empty text gives an empty list.
 * On error *out is left empty (nothing to free). */
int ad_level_list_parse(const char *text, ad_level_list *out, ad_error *err);

/* 1 when the list holds the level. This function can't fail. */
int ad_level_list_contains(const ad_level_list *list, ad_level l);

/* Frees the list's memory and empties it; safe on an empty list. */
void ad_level_list_free(ad_level_list *list);

/* A schedule: n_steps steps; step s holds levels[step_start[s] .. step_start[s+1]). */
typedef struct ad_level_schedule {
    ad_level *levels;
    size_t n_levels;
    size_t *step_start; /* n_steps + 1 entries (NULL when n_steps == 0) */
    size_t n_steps;
    char *text; /* the text it was parsed from, trimmed */
} ad_level_schedule;

/* Parses a schedule (see the syntax above). No level may appear twice. An empty
 * text gives an empty schedule. On error *out is left empty. */
int ad_level_schedule_parse(const char *text, ad_level_schedule *out, ad_error *err);

/* Frees the schedule's memory and empties it; safe on an empty schedule. */
void ad_level_schedule_free(ad_level_schedule *s);

#endif
