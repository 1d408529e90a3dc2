/* test_curriculum.c: level syntax (levels, lists, schedules, the paper's
 * multiplication order) and the curriculum: fixed +k, explicit schedules, and
 * the adaptive pace with a measuring callback. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "loop/curriculum.h"

static int level_is(ad_level l, int32_t a, int32_t b) {
    return l.a == a && l.b == b;
}

static void test_level_parse_format(void) {
    ad_error err;
    ad_level l;
    char buf[AD_LEVEL_TEXT_MAX];
    CHECK(ad_level_parse("7", &l, &err) == AD_OK && level_is(l, 7, AD_LEVEL_SCALAR));
    CHECK(strcmp(ad_level_format(l, buf, sizeof buf), "7") == 0);
    CHECK(ad_level_parse(" 6x7 ", &l, &err) == AD_OK && level_is(l, 6, 7));
    CHECK(strcmp(ad_level_format(l, buf, sizeof buf), "6x7") == 0);
    CHECK(ad_level_parse("( 6 , 7 )", &l, &err) == AD_OK && level_is(l, 6, 7));
    CHECK(ad_level_parse("0", &l, &err) == AD_OK && level_is(l, 0, AD_LEVEL_SCALAR));
    CHECK(ad_level_parse("1000000", &l, &err) == AD_OK);
    l = ad_level_int(99);
    CHECK(ad_level_parse("1000001", &l, &err) == AD_ERR && l.a == 99);
    CHECK(strstr(err.msg, "'1000001'") != NULL && strstr(err.msg, "too large") != NULL);
    CHECK(ad_level_parse("", &l, &err) == AD_ERR);
    CHECK(ad_level_parse("-3", &l, &err) == AD_ERR);
    CHECK(ad_level_parse("3-5", &l, &err) == AD_ERR); /* a range is not one level */
    CHECK(ad_level_parse("6x", &l, &err) == AD_ERR);
    CHECK(ad_level_parse("(6,7", &l, &err) == AD_ERR);
    CHECK(ad_level_parse("7 8", &l, &err) == AD_ERR);
    CHECK(strstr(err.msg, "column 3") != NULL);
    CHECK(ad_level_cmp(ad_level_int(5), ad_level_pair(5, 1)) < 0);
    CHECK(ad_level_cmp(ad_level_pair(5, 2), ad_level_pair(5, 1)) > 0);
    CHECK(ad_level_cmp(ad_level_pair(4, 9), ad_level_int(5)) < 0);
    CHECK(ad_level_is_pair(ad_level_pair(0, 0)) && !ad_level_is_pair(ad_level_int(0)));
}

static void test_level_list(void) {
    ad_error err;
    ad_level_list L;
    CHECK(ad_level_list_parse(" 1-3, 10 ,5 ", &L, &err) == AD_OK);
    CHECK(L.n == 5 && L.v[0].a == 1 && L.v[2].a == 3 && L.v[3].a == 10 && L.v[4].a == 5);
    CHECK(strcmp(L.text, "1-3, 10 ,5") == 0);
    CHECK(ad_level_list_contains(&L, ad_level_int(10)) &&
          !ad_level_list_contains(&L, ad_level_int(4)));
    ad_level_list_free(&L);
    CHECK(L.v == NULL && L.n == 0 && L.text == NULL);
    CHECK(ad_level_list_parse("1-2x1-3, (4,4)", &L, &err) == AD_OK);
    CHECK(L.n == 7 && level_is(L.v[0], 1, 1) && level_is(L.v[2], 1, 3) && level_is(L.v[3], 2, 1));
    CHECK(level_is(L.v[6], 4, 4));
    ad_level_list_free(&L);
    CHECK(ad_level_list_parse("(1-5,1-5)", &L, &err) == AD_OK && L.n == 25);
    ad_level_list_free(&L);
    CHECK(ad_level_list_parse("", &L, &err) == AD_OK && L.n == 0 && strcmp(L.text, "") == 0);
    ad_level_list_free(&L);
    CHECK(ad_level_list_parse("1-5, 3", &L, &err) == AD_ERR);
    CHECK(strstr(err.msg, "level 3 appears twice") != NULL && L.v == NULL);
    CHECK(ad_level_list_parse("8-1", &L, &err) == AD_ERR && strstr(err.msg, "decreasing"));
    CHECK(ad_level_list_parse("1,,2", &L, &err) == AD_ERR);
    CHECK(ad_level_list_parse("1;2", &L, &err) == AD_ERR);
    CHECK(ad_level_list_parse("0-1000000", &L, &err) == AD_ERR); /* too many levels */
    CHECK(strstr(err.msg, "65536") != NULL);
    CHECK(ad_level_list_parse("1-1000x1-1000", &L, &err) == AD_ERR);
}

/* The paper's multiplication order: (1,6)&(6,1), (2,6)&(6,2) ... (5,6)&(6,5),
 * (6,6), (1,7)&(7,1) ... */
static void test_schedule_pairs(void) {
    ad_error err;
    ad_level_schedule s;
    CHECK(ad_level_schedule_parse("pairs(6-7)", &s, &err) == AD_OK);
    CHECK(s.n_steps == 6 + 7);
    CHECK(s.n_levels == 5 * 2 + 1 + 6 * 2 + 1);
    for (int32_t i = 1; i <= 5; i++) {
        size_t at = s.step_start[i - 1];
        CHECK(s.step_start[i] - at == 2);
        CHECK(level_is(s.levels[at], i, 6) && level_is(s.levels[at + 1], 6, i));
    }
    CHECK(s.step_start[6] - s.step_start[5] == 1 && level_is(s.levels[s.step_start[5]], 6, 6));
    CHECK(level_is(s.levels[s.step_start[6]], 1, 7) &&
          level_is(s.levels[s.step_start[6] + 1], 7, 1));
    CHECK(level_is(s.levels[s.n_levels - 1], 7, 7) && s.step_start[s.n_steps] == s.n_levels);
    /* written out by hand, the first steps parse to the same */
    ad_level_schedule t;
    CHECK(ad_level_schedule_parse("(1,6)&(6,1), 2x6 & 6x2, 3x6&6x3,4x6&6x4,5x6&6x5,6x6", &t,
                                  &err) == AD_OK);
    CHECK(t.n_steps == 6);
    for (size_t i = 0; i < t.n_levels; i++)
        CHECK(ad_level_cmp(t.levels[i], s.levels[i]) == 0);
    for (size_t j = 0; j <= t.n_steps; j++)
        CHECK(t.step_start[j] == s.step_start[j]);
    ad_level_schedule_free(&t);
    ad_level_schedule_free(&s);
    /* mixed entries; pairs() among explicit steps */
    CHECK(ad_level_schedule_parse("1x1, pairs(2-2), 9&10", &s, &err) == AD_OK);
    CHECK(s.n_steps == 1 + 2 + 1 && s.n_levels == 1 + 3 + 2);
    ad_level_schedule_free(&s);
    CHECK(ad_level_schedule_parse("", &s, &err) == AD_OK && s.n_steps == 0);
    ad_level_schedule_free(&s);
    CHECK(ad_level_schedule_parse("pairs(5-6), 1x6", &s, &err) == AD_ERR);
    CHECK(strstr(err.msg, "1x6 appears twice") != NULL && s.levels == NULL);
    CHECK(ad_level_schedule_parse("pairs(0-2)", &s, &err) == AD_ERR);
    CHECK(ad_level_schedule_parse("pairs 6-7", &s, &err) == AD_ERR);
    CHECK(ad_level_schedule_parse("1&", &s, &err) == AD_ERR);
    CHECK(ad_level_schedule_parse("1 2", &s, &err) == AD_ERR);
}

static void test_fixed_integers(void) {
    ad_error err;
    ad_curriculum c = ad_curriculum_default(17, 24);
    size_t cursor = 0;
    ad_level_list L;
    for (int32_t want = 17; want <= 19; want++) {
        CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_OK);
        CHECK(L.n == 1 && level_is(L.v[0], want, AD_LEVEL_SCALAR));
        ad_level_list_free(&L);
    }
    CHECK(cursor == 3);
    c.steps_per_round = 3; /* +3 per round: 20-22, then 23-24, then nothing */
    CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_OK);
    CHECK(L.n == 3 && L.v[0].a == 20 && L.v[2].a == 22);
    ad_level_list_free(&L);
    CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_OK);
    CHECK(L.n == 2 && L.v[1].a == 24 && cursor == 8);
    ad_level_list_free(&L);
    CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_OK);
    CHECK(L.n == 0 && cursor == 8);
    ad_level_list_free(&L);
    c.steps_per_round = 0;
    cursor = 0;
    CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_ERR && cursor == 0);
    c = ad_curriculum_default(10, 9);
    CHECK(ad_curriculum_validate(&c, &err) == AD_ERR);
    CHECK(ad_curriculum_n_steps(&c) == 0);
}

static void test_fixed_schedule(void) {
    ad_error err;
    ad_level_schedule s;
    CHECK(ad_level_schedule_parse("pairs(6-10)", &s, &err) == AD_OK);
    ad_curriculum c = ad_curriculum_default(0, 0);
    c.schedule = &s;
    CHECK(ad_curriculum_n_steps(&c) == 40); /* 6 + 7 + 8 + 9 + 10 */
    size_t cursor = 0, rounds = 0;
    ad_level_list L;
    while (1) {
        CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_OK);
        if (L.n == 0) break;
        if (rounds == 0) CHECK(L.n == 2 && level_is(L.v[0], 1, 6) && level_is(L.v[1], 6, 1));
        if (rounds == 5) CHECK(L.n == 1 && level_is(L.v[0], 6, 6));
        if (rounds == 39) CHECK(L.n == 1 && level_is(L.v[0], 10, 10));
        rounds++;
        ad_level_list_free(&L);
    }
    ad_level_list_free(&L);
    CHECK(rounds == 40);
    ad_level step[4];
    CHECK(ad_curriculum_step_levels(&c, 6, step, 4) == 2 && level_is(step[0], 1, 7));
    CHECK(ad_curriculum_step_levels(&c, 40, step, 4) == 0);
    ad_level_schedule_free(&s);
}

/* A model whose score is 1 up to `mastered` and `low` beyond; counts calls. */
typedef struct fake_model {
    int32_t mastered; /* integer levels: a <= mastered; pairs: a, b <= mastered */
    double low;
    size_t calls;
    int32_t fail_at; /* level a that makes measure fail (-1: never) */
} fake_model;

static int fake_measure(void *ctx, ad_level l, double *score, ad_error *err) {
    fake_model *m = ctx;
    m->calls++;
    if (l.a == m->fail_at) return ad_error_set(err, "decode failed");
    int ok = l.a <= m->mastered && (!ad_level_is_pair(l) || l.b <= m->mastered);
    *score = ok ? 1.0 : m->low;
    return AD_OK;
}

static void test_adaptive_integers(void) {
    ad_error err;
    ad_curriculum c = ad_curriculum_default(21, 100);
    c.adaptive = 1;
    c.steps_per_round = 0;
    c.min_score = 0.99;
    fake_model m = {25, 0.5, 0, -1};
    size_t cursor = 0;
    ad_level_list L;
    /* 21..25 score 1: all taken; 26 falls short and is not measured further */
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(L.n == 5 && L.v[0].a == 21 && L.v[4].a == 25 && cursor == 5);
    CHECK(m.calls == 6);
    ad_level_list_free(&L);
    /* the next step falls short: it is taken alone (the ordinary +1) */
    m.calls = 0;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(L.n == 1 && L.v[0].a == 26 && cursor == 6 && m.calls == 1);
    ad_level_list_free(&L);
    /* the threshold is inclusive; the cap bounds a round */
    m.mastered = 99;
    m.low = 0.0;
    c.steps_per_round = 4;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(L.n == 4 && L.v[0].a == 27 && L.v[3].a == 30 && cursor == 10);
    ad_level_list_free(&L);
    m.mastered = 0;
    m.low = 0.99;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(L.n == 4 && cursor == 14);
    ad_level_list_free(&L);
    /* a failing measure is reported with the level, and nothing moves */
    m.fail_at = 35;
    m.low = 1.0;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_ERR);
    CHECK(cursor == 14 && L.n == 0 && L.v == NULL);
    CHECK(strstr(err.msg, "level 35") != NULL && strstr(err.msg, "decode failed") != NULL);
    /* adaptive without a measure is an error */
    CHECK(ad_curriculum_next(&c, &cursor, NULL, NULL, &L, &err) == AD_ERR);
    /* at the end of the sequence: empty, no measuring */
    cursor = 80;
    m.calls = 0;
    m.fail_at = -1;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(L.n == 0 && m.calls == 0 && cursor == 80);
    ad_level_list_free(&L);
    c.min_score = NAN;
    CHECK(ad_curriculum_validate(&c, &err) == AD_ERR);
}

/* With pair steps, a step is taken only when all its levels pass. */
static void test_adaptive_pairs(void) {
    ad_error err;
    ad_level_schedule s;
    CHECK(ad_level_schedule_parse("pairs(6-7)", &s, &err) == AD_OK);
    ad_curriculum c = ad_curriculum_default(0, 0);
    c.schedule = &s;
    c.adaptive = 1;
    c.steps_per_round = 0;
    c.min_score = 0.9;
    /* scores 1 for both sides <= 6 ... everything of size 6 passes, 1x7 fails */
    fake_model m = {6, 0.2, 0, -1};
    size_t cursor = 0;
    ad_level_list L;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(cursor == 6 && L.n == 11 && level_is(L.v[10], 6, 6));
    CHECK(m.calls == 11 + 1); /* 1x7 falls short, 7x1 is never measured */
    ad_level_list_free(&L);
    ad_level_schedule_free(&s);
}

/* hold: the first round takes the first step regardless; later rounds repeat
 * the last step taken until the next one scores high enough. */
static void test_adaptive_hold(void) {
    ad_error err;
    ad_level_schedule s;
    CHECK(ad_level_schedule_parse("1x4&4x1, 2x4&4x2, 3x4&4x3", &s, &err) == AD_OK);
    ad_curriculum c = ad_curriculum_default(0, 0);
    c.schedule = &s;
    c.adaptive = 1;
    c.hold = 1;
    c.steps_per_round = 0;
    c.min_score = 0.9;
    fake_model m = {0, 0.5, 0, -1};
    size_t cursor = 0;
    ad_level_list L;
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(cursor == 1 && L.n == 2 && level_is(L.v[0], 1, 4) && level_is(L.v[1], 4, 1));
    ad_level_list_free(&L);
    for (int round = 0; round < 2; round++) { /* held: the same step again */
        m.calls = 0;
        CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
        CHECK(cursor == 1 && L.n == 2 && level_is(L.v[0], 1, 4) && level_is(L.v[1], 4, 1));
        CHECK(m.calls == 1);
        ad_level_list_free(&L);
    }
    m.mastered = 4; /* now every level scores 1: both remaining steps are taken */
    CHECK(ad_curriculum_next(&c, &cursor, fake_measure, &m, &L, &err) == AD_OK);
    CHECK(cursor == 3 && L.n == 4 && level_is(L.v[3], 4, 3));
    ad_level_list_free(&L);
    ad_level_schedule_free(&s);
    /* integers: hold repeats the single last level */
    ad_curriculum ci = ad_curriculum_default(9, 20);
    ci.adaptive = 1;
    ci.hold = 1;
    ci.min_score = 0.9;
    fake_model mi = {8, 0.0, 0, -1};
    cursor = 3;
    CHECK(ad_curriculum_next(&ci, &cursor, fake_measure, &mi, &L, &err) == AD_OK);
    CHECK(cursor == 3 && L.n == 1 && L.v[0].a == 11);
    ad_level_list_free(&L);
}

int main(void) {
    RUN(test_level_parse_format);
    RUN(test_level_list);
    RUN(test_schedule_pairs);
    RUN(test_fixed_integers);
    RUN(test_fixed_schedule);
    RUN(test_adaptive_integers);
    RUN(test_adaptive_pairs);
    RUN(test_adaptive_hold);
    return test_summary();
}
