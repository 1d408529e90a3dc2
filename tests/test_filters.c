/* test_filters.c: the selection filters, one rule at a time, with ties, empty
 * groups, outputs that never reached EOS, and the composed pipeline. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "loop/filters.h"
#include "loop/vote.h"

/* A complete candidate of level `level` (scalar). */
static ad_candidate cand(size_t prompt, size_t lineage, size_t sample, const char *text) {
    ad_candidate c;
    memset(&c, 0, sizeof c);
    c.prompt = prompt;
    c.level = ad_level_int(1);
    c.lineage = lineage;
    c.sample = sample;
    c.completion = text;
    c.n_tokens = strlen(text) + 1;
    c.logprob_sum = -1.0 * (double)c.n_tokens;
    c.hit_eos = 1;
    c.correct = -1;
    c.score = NAN;
    return c;
}

static int passed(const ad_candidate *c, ad_filter_id id) {
    return (c->passed >> id) & 1u;
}

static int ran(const ad_candidate *c, ad_filter_id id) {
    return (c->ran >> id) & 1u;
}

static void test_vote_mode(void) {
    ad_error err;
    ad_vote v;
    const char *a[] = {"b", "a", NULL, "a", "c", "b", "a"};
    CHECK(ad_vote_mode(a, 7, &v, &err) == AD_OK);
    CHECK(v.unique && v.count == 3 && v.first == 1 && v.n_distinct == 3);
    const char *tie[] = {"x", "y", "y", "x"};
    CHECK(ad_vote_mode(tie, 4, &v, &err) == AD_OK);
    CHECK(!v.unique && v.count == 2 && v.n_distinct == 2);
    const char *none[] = {NULL, NULL};
    CHECK(ad_vote_mode(none, 2, &v, &err) == AD_OK);
    CHECK(!v.unique && v.count == 0 && v.n_distinct == 0);
    CHECK(ad_vote_mode(NULL, 0, &v, &err) == AD_OK);
    CHECK(!v.unique && v.count == 0);
    /* a later, larger run beats an earlier tie */
    const char *late[] = {"p", "q", "r", "r"};
    CHECK(ad_vote_mode(late, 4, &v, &err) == AD_OK);
    CHECK(v.unique && v.count == 2 && v.first == 2);
}

static void test_begin_validates(void) {
    ad_error err;
    ad_candidate c[3] = {cand(0, 0, 0, "1"), cand(0, 0, 1, "2"), cand(1, 0, 0, "3")};
    c[1].kept = 0;
    c[1].ran = c[1].passed = 7;
    CHECK(ad_filter_begin(c, 3, &err) == AD_OK);
    CHECK(c[1].kept == 1 && c[1].ran == 0 && c[1].passed == 0);
    c[2].prompt = 0;
    c[2].sample = 1; /* same (prompt, lineage, sample) as c[1] */
    c[0].kept = 0;
    CHECK(ad_filter_begin(c, 3, &err) == AD_ERR);
    CHECK(strstr(err.msg, "prompt 0, lineage 0, sample 1") != NULL);
    CHECK(c[0].kept == 0); /* nothing changed on error */
    c[2].sample = 2;
    c[2].completion = NULL;
    CHECK(ad_filter_begin(c, 3, &err) == AD_ERR);
    CHECK(ad_filter_begin(NULL, 0, &err) == AD_OK);
}

static void test_complete(void) {
    ad_error err;
    ad_candidate c[2] = {cand(0, 0, 0, "12"), cand(1, 0, 0, "1234")};
    c[1].hit_eos = 0;
    CHECK(ad_filter_begin(c, 2, &err) == AD_OK);
    ad_filter_complete(c, 2);
    CHECK(c[0].kept && passed(&c[0], AD_FILTER_COMPLETE));
    CHECK(!c[1].kept && ran(&c[1], AD_FILTER_COMPLETE) && !passed(&c[1], AD_FILTER_COMPLETE));
}

static void test_length(void) {
    ad_error err;
    /* level 1: lengths 10, 9, 8, 7 (+ an unfinished 20); level 2: 5, 3; level 3: only unfinished */
    ad_candidate c[9];
    const size_t len[9] = {10, 9, 8, 7, 20, 5, 3, 2, 1};
    for (size_t i = 0; i < 9; i++) {
        c[i] = cand(i, 0, 0, "x");
        c[i].n_tokens = len[i];
        c[i].level = ad_level_int(i < 5 ? 1 : i < 7 ? 2 : 3);
    }
    c[4].hit_eos = 0;
    c[7].hit_eos = c[8].hit_eos = 0;
    CHECK(ad_filter_begin(c, 9, &err) == AD_OK);
    CHECK(ad_filter_length(c, 9, 2, &err) == AD_OK);
    CHECK(c[0].kept && c[1].kept);   /* 10 is the longest, 9 is short by 1 < 2 */
    CHECK(!c[2].kept && !c[3].kept); /* short by 2 and 3 */
    CHECK(c[4].kept);                /* unfinished: does not set the maximum, not short */
    CHECK(c[5].kept && !c[6].kept);  /* level 2 on its own: 5 vs 3 */
    CHECK(c[7].kept && c[8].kept);   /* no complete output: the group passes */
    for (size_t i = 0; i < 9; i++)
        CHECK(ran(&c[i], AD_FILTER_LENGTH));
    /* the same level written as a pair is a different group */
    c[5].level = ad_level_pair(2, 1);
    CHECK(ad_filter_begin(c, 9, &err) == AD_OK);
    CHECK(ad_filter_length(c, 9, 2, &err) == AD_OK);
    CHECK(c[5].kept && c[6].kept);
    /* d = 1 drops anything shorter at all */
    CHECK(ad_filter_begin(c, 9, &err) == AD_OK);
    CHECK(ad_filter_length(c, 9, 1, &err) == AD_OK);
    CHECK(c[0].kept && !c[1].kept);
    CHECK(ad_filter_length(c, 9, 0, &err) == AD_ERR);
    CHECK(ad_filter_length(NULL, 0, 2, &err) == AD_OK);
}

static void test_vote_samples(void) {
    ad_error err;
    /* prompt 0, lineage 0: A A A B C; prompt 0, lineage 1: A B (a separate group) */
    ad_candidate c[7] = {cand(0, 0, 0, "A"), cand(0, 0, 1, "B"), cand(0, 0, 2, "A"),
                         cand(0, 0, 3, "C"), cand(0, 0, 4, "A"), cand(0, 1, 0, "A"),
                         cand(0, 1, 1, "B")};
    CHECK(ad_filter_begin(c, 7, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(c, 7, 0.6, &err) == AD_OK); /* 3/5 = 0.6 exactly */
    CHECK(c[0].kept && c[2].kept && c[4].kept);
    CHECK(!c[1].kept && !c[3].kept);
    CHECK(!c[5].kept && !c[6].kept); /* lineage 1 is a tie 1-1: no mode */
    CHECK(ad_filter_begin(c, 7, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(c, 7, 0.61, &err) == AD_OK);
    for (int i = 0; i < 5; i++)
        CHECK(!c[i].kept && ran(&c[i], AD_FILTER_VOTE_SAMPLES));
    /* a tie for the mode keeps nothing, whatever the threshold */
    ad_candidate t[5] = {cand(3, 0, 0, "A"), cand(3, 0, 1, "A"), cand(3, 0, 2, "B"),
                         cand(3, 0, 3, "B"), cand(3, 0, 4, "C")};
    CHECK(ad_filter_begin(t, 5, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(t, 5, 0.2, &err) == AD_OK);
    for (int i = 0; i < 5; i++)
        CHECK(!t[i].kept);
    /* an unfinished output is no vote and never matches the mode */
    t[2].completion = "A";
    t[2].hit_eos = 0; /* votes: A A - B C */
    CHECK(ad_filter_begin(t, 5, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(t, 5, 0.4, &err) == AD_OK);
    CHECK(t[0].kept && t[1].kept && !t[2].kept && !t[3].kept && !t[4].kept);
    /* the same denominator: 2 of 5 is below 0.5 */
    CHECK(ad_filter_begin(t, 5, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(t, 5, 0.5, &err) == AD_OK);
    CHECK(!t[0].kept && !t[1].kept);
    /* answers, not completions, are compared when given */
    ad_candidate a[3] = {cand(5, 0, 0, "7+8=15"), cand(5, 0, 1, "8+7=15"), cand(5, 0, 2, "14")};
    a[0].answer = a[1].answer = "15";
    a[2].answer = "14";
    CHECK(ad_filter_begin(a, 3, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(a, 3, 0.5, &err) == AD_OK);
    CHECK(a[0].kept && a[1].kept && !a[2].kept);
    /* all unfinished: nothing */
    for (int i = 0; i < 3; i++)
        a[i].hit_eos = 0;
    CHECK(ad_filter_begin(a, 3, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(a, 3, 0.1, &err) == AD_OK);
    CHECK(!a[0].kept && !a[1].kept && !a[2].kept);
    /* a group of one agrees with itself */
    ad_candidate one = cand(9, 0, 0, "Z");
    CHECK(ad_filter_begin(&one, 1, &err) == AD_OK);
    CHECK(ad_filter_vote_samples(&one, 1, 1.0, &err) == AD_OK && one.kept);
    CHECK(ad_filter_vote_samples(c, 7, 0.0, &err) == AD_ERR);
    CHECK(ad_filter_vote_samples(c, 7, 1.5, &err) == AD_ERR);
    CHECK(ad_filter_vote_samples(c, 7, NAN, &err) == AD_ERR);
    CHECK(ad_filter_vote_samples(NULL, 0, 0.5, &err) == AD_OK);
}

static void test_vote_lineages(void) {
    ad_error err;
    /* prompt 0: lineages 0-3 say A, lineage 4 says B; prompt 1: 3 A, 2 B;
     * prompt 0 also has a sample-1 candidate from lineage 4 saying A (no vote). */
    ad_candidate c[11];
    const char *p0[5] = {"A", "A", "A", "A", "B"}, *p1[5] = {"A", "B", "A", "B", "A"};
    for (size_t l = 0; l < 5; l++) {
        c[l] = cand(0, l, 0, p0[l]);
        c[5 + l] = cand(1, l, 0, p1[l]);
    }
    c[10] = cand(0, 4, 1, "A");
    CHECK(ad_filter_begin(c, 11, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(c, 11, 5, 4, &err) == AD_OK);
    CHECK(c[0].kept && c[1].kept && c[2].kept && c[3].kept && !c[4].kept);
    CHECK(c[10].kept); /* matches the accepted answer though it did not vote */
    for (size_t i = 5; i < 10; i++)
        CHECK(!c[i].kept); /* 3 of 5 < 4 */
    CHECK(ad_filter_begin(c, 11, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(c, 11, 5, 3, &err) == AD_OK);
    CHECK(c[5].kept && !c[6].kept && c[7].kept && !c[8].kept && c[9].kept);
    /* a non-voting sample cannot create a majority: 3 greedy A + 1 sampled A < 4 */
    c[3].completion = "C";
    CHECK(ad_filter_begin(c, 11, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(c, 11, 5, 4, &err) == AD_OK);
    CHECK(!c[0].kept && !c[10].kept);
    /* a missing lineage is dissent: 4 present and agreeing pass t = 4, not t = 5 */
    ad_candidate m[4];
    for (size_t l = 0; l < 4; l++)
        m[l] = cand(2, l, 0, "Q");
    CHECK(ad_filter_begin(m, 4, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(m, 4, 5, 4, &err) == AD_OK);
    CHECK(m[0].kept && m[3].kept);
    CHECK(ad_filter_begin(m, 4, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(m, 4, 5, 5, &err) == AD_OK);
    CHECK(!m[0].kept && !m[3].kept);
    /* tie for the mode with a low threshold: A A B B C at t = 2 keeps nothing */
    ad_candidate t[5];
    const char *tv[5] = {"A", "A", "B", "B", "C"};
    for (size_t l = 0; l < 5; l++)
        t[l] = cand(4, l, 0, tv[l]);
    CHECK(ad_filter_begin(t, 5, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(t, 5, 5, 2, &err) == AD_OK);
    for (int i = 0; i < 5; i++)
        CHECK(!t[i].kept && ran(&t[i], AD_FILTER_VOTE_LINEAGES));
    /* an unfinished greedy output is dissent */
    for (size_t l = 0; l < 4; l++)
        m[l].hit_eos = l != 0;
    CHECK(ad_filter_begin(m, 4, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(m, 4, 4, 4, &err) == AD_OK);
    CHECK(!m[1].kept);
    CHECK(ad_filter_begin(m, 4, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(m, 4, 4, 3, &err) == AD_OK);
    CHECK(!m[0].kept && m[1].kept && m[3].kept); /* unfinished never passes */
    /* bad parameters */
    CHECK(ad_filter_vote_lineages(m, 4, 5, 0, &err) == AD_ERR);
    CHECK(ad_filter_vote_lineages(m, 4, 5, 6, &err) == AD_ERR);
    CHECK(ad_filter_vote_lineages(m, 4, 3, 2, &err) == AD_ERR); /* lineage 3 >= m */
    CHECK(strstr(err.msg, "lineage 3") != NULL);
    CHECK(ad_filter_vote_lineages(NULL, 0, 5, 4, &err) == AD_OK);
}

static void test_confidence_threshold(void) {
    ad_error err;
    ad_candidate c[4] = {cand(0, 0, 0, "a"), cand(0, 0, 1, "b"), cand(0, 0, 2, "c"),
                         cand(0, 0, 3, "d")};
    c[0].logprob_sum = -0.2, c[0].n_tokens = 2; /* mean -0.1 */
    c[1].logprob_sum = -1.0, c[1].n_tokens = 4; /* mean -0.25: exactly the threshold */
    c[2].logprob_sum = -3.0, c[2].n_tokens = 4; /* mean -0.75 */
    c[3].logprob_sum = 0.0, c[3].n_tokens = 0;  /* no tokens: -inf */
    CHECK_CLOSE(ad_candidate_mean_logprob(&c[1]), -0.25, 0, 1e-15);
    CHECK(isinf(ad_candidate_mean_logprob(&c[3])));
    ad_conf_params p = {0};
    p.min_mean_logprob = -0.25;
    CHECK(ad_filter_begin(c, 4, &err) == AD_OK);
    CHECK(ad_filter_confidence(c, 4, &p, &err) == AD_OK);
    CHECK(c[0].kept && c[1].kept && !c[2].kept && !c[3].kept);
    p.min_mean_logprob = NAN;
    CHECK(ad_filter_confidence(c, 4, &p, &err) == AD_ERR);
}

static void test_confidence_top(void) {
    ad_error err;
    /* 10 candidates over 2 prompts and 2 levels; means are -i/10 except a tie */
    ad_candidate c[10];
    for (size_t i = 0; i < 10; i++) {
        c[i] = cand(i / 5, 0, i % 5, "x");
        c[i].level = ad_level_int(i % 2 ? 2 : 1);
        c[i].n_tokens = 1;
        c[i].logprob_sum = -(double)i / 10.0;
    }
    c[3].logprob_sum = c[2].logprob_sum; /* tie between 2 and 3: position decides */
    ad_conf_params p = {0};
    p.use_top_fraction = 1;
    p.top_fraction = 0.7;
    p.group = AD_CONF_GROUP_ALL;
    CHECK(ad_filter_begin(c, 10, &err) == AD_OK);
    CHECK(ad_filter_confidence(c, 10, &p, &err) == AD_OK);
    for (size_t i = 0; i < 10; i++)
        CHECK_MSG(c[i].kept == (i < 7), "i=%zu", i); /* 7, not 8 */
    p.top_fraction = 0.3;                            /* groups of 5: ceil(1.5) = 2 each */
    p.group = AD_CONF_GROUP_PROMPT;
    CHECK(ad_filter_begin(c, 10, &err) == AD_OK);
    CHECK(ad_filter_confidence(c, 10, &p, &err) == AD_OK);
    CHECK(c[0].kept && c[1].kept && !c[2].kept && !c[4].kept);
    CHECK(c[5].kept && c[6].kept && !c[7].kept);
    p.group = AD_CONF_GROUP_PROMPT;
    p.top_fraction = 0.4; /* 2 of 5; tie at ranks 2-3 broken by position: 2 wins */
    c[1].logprob_sum = -5.0;
    CHECK(ad_filter_begin(c, 10, &err) == AD_OK);
    CHECK(ad_filter_confidence(c, 10, &p, &err) == AD_OK);
    CHECK(c[0].kept && !c[1].kept && c[2].kept && !c[3].kept);
    p.group = AD_CONF_GROUP_LEVEL; /* level 1: 0,2,4,6,8 ; level 2: 1,3,5,7,9 */
    p.top_fraction = 0.2;
    CHECK(ad_filter_begin(c, 10, &err) == AD_OK);
    CHECK(ad_filter_confidence(c, 10, &p, &err) == AD_OK);
    size_t kept = 0;
    for (size_t i = 0; i < 10; i++)
        kept += c[i].kept;
    CHECK(kept == 2 && c[0].kept && c[3].kept); /* c[1] fell to -5 */
    p.top_fraction = 0.0;
    CHECK(ad_filter_confidence(c, 10, &p, &err) == AD_ERR);
    p.top_fraction = 1.0;
    p.group = (ad_conf_group)9;
    CHECK(ad_filter_confidence(c, 10, &p, &err) == AD_ERR);
    p.group = AD_CONF_GROUP_LEVEL;
    CHECK(ad_filter_confidence(NULL, 0, &p, &err) == AD_OK);
}

static void test_verifier(void) {
    ad_error err;
    ad_candidate c[3] = {cand(0, 0, 0, "a"), cand(1, 0, 0, "b"), cand(2, 0, 0, "c")};
    c[0].correct = 1;
    c[1].correct = 0;
    CHECK(ad_filter_begin(c, 3, &err) == AD_OK);
    CHECK(ad_filter_verifier(c, 3, &err) == AD_ERR); /* c[2] never verified */
    CHECK(strstr(err.msg, "candidate 2") != NULL);
    CHECK(c[0].ran == 0 && c[1].kept); /* nothing changed */
    c[2].correct = 1;
    CHECK(ad_filter_verifier(c, 3, &err) == AD_OK);
    CHECK(c[0].kept && !c[1].kept && c[2].kept);
}

/* The judge filter: scored answers pass at or above the threshold, unscored
 * ones are not judged (and stay kept); bad scores and thresholds are refused. */
static void test_judge(void) {
    ad_error err;
    ad_candidate c[4] = {cand(0, 0, 0, "1"), cand(0, 0, 1, "2"), cand(1, 0, 0, "3"),
                         cand(1, 0, 1, "4")};
    c[0].score = 0.9;
    c[1].score = 0.5;
    c[2].score = 0.49;
    c[3].score = NAN;
    CHECK(ad_filter_begin(c, 4, &err) == AD_OK);
    CHECK(ad_filter_judge(c, 4, 0.5, &err) == AD_OK);
    uint32_t bit = 1u << AD_FILTER_JUDGE;
    CHECK(c[0].kept && (c[0].ran & bit) && (c[0].passed & bit));
    CHECK(c[1].kept && (c[1].passed & bit)); /* at the threshold: yes */
    CHECK(!c[2].kept && (c[2].ran & bit) && !(c[2].passed & bit));
    CHECK(c[3].kept && !(c[3].ran & bit)); /* unscored: not judged */
    CHECK(ad_filter_judge(c, 4, 1.5, &err) == AD_ERR && strstr(err.msg, "threshold"));
    c[1].score = 2.0;
    CHECK(ad_filter_judge(c, 4, 0.5, &err) == AD_ERR && strstr(err.msg, "candidate 1"));
    CHECK(strcmp(ad_filter_name(AD_FILTER_JUDGE), "judge") == 0);
}

/* The sharpen filter: per (prompt, lineage), the complete sample with the
 * highest log-prob sum (not mean) wins; ties go to the lowest sample; an
 * unfinished output never wins, so a group with none finished keeps nothing;
 * lineages are separate groups. */
static void test_sharpen(void) {
    ad_error err;
    /* out of order on purpose */
    ad_candidate c[12] = {
        cand(0, 0, 2, "aaaa"), cand(0, 0, 0, "a"),  cand(0, 0, 1, "aa"),  /* p0 l0 */
        cand(0, 1, 1, "b"),    cand(0, 1, 0, "bb"), cand(0, 1, 2, "bbb"), /* p0 l1: tie */
        cand(1, 0, 0, "c"),    cand(1, 0, 1, "cc"),                       /* p1 l0: no EOS */
        cand(2, 0, 0, "d"),    cand(2, 0, 1, "dd"), cand(2, 0, 2, "ddd"), /* p2 l0 */
        cand(3, 0, 0, "e"),                                               /* p3: alone */
    };
    /* p0 l0: sample 1 (c[2]) has the highest sum */
    c[0].logprob_sum = -3.0;
    c[1].logprob_sum = -2.0;
    c[2].logprob_sum = -0.9;
    /* p0 l1: samples 1 and 2 tie at -0.5; sample 0 is worse */
    c[3].logprob_sum = -0.5;
    c[4].logprob_sum = -0.7;
    c[5].logprob_sum = -0.5;
    /* p1: nothing reached EOS */
    c[6].hit_eos = c[7].hit_eos = 0;
    c[6].logprob_sum = -0.1;
    /* p2: the likeliest never finished; a NaN sum never wins either */
    c[8].logprob_sum = -4.0;
    c[9].logprob_sum = -0.2;
    c[9].hit_eos = 0;
    c[10].logprob_sum = NAN;
    CHECK(ad_filter_begin(c, 12, &err) == AD_OK);
    CHECK(ad_filter_sharpen(c, 12, &err) == AD_OK);
    int want[12] = {0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1};
    for (size_t i = 0; i < 12; i++) {
        CHECK_MSG(ran(&c[i], AD_FILTER_SHARPEN), "candidate %zu", i);
        CHECK_MSG(c[i].kept == want[i] && passed(&c[i], AD_FILTER_SHARPEN) == want[i],
                  "candidate %zu", i);
    }
    /* the sum, not the mean: a long output with a better mean loses to a short one */
    ad_candidate d[2] = {cand(0, 0, 0, "x"), cand(0, 0, 1, "xxxxxxxxx")};
    d[0].logprob_sum = -1.0; /* 2 tokens: mean -0.5 */
    d[1].logprob_sum = -2.0; /* 10 tokens: mean -0.2 */
    CHECK(ad_filter_begin(d, 2, &err) == AD_OK);
    CHECK(ad_filter_sharpen(d, 2, &err) == AD_OK);
    CHECK(d[0].kept && !d[1].kept);
    /* through the registry, on top of another filter: sharpen judges every
     * candidate whatever the other filters decided */
    ad_filter_params p = ad_filter_default_params();
    p.unique = 0;
    p.sharpen = 1;
    CHECK(ad_filter_run(c, 12, &p, &err) == AD_OK);
    for (size_t i = 0; i < 12; i++)
        CHECK_MSG(c[i].kept == (want[i] && c[i].hit_eos), "candidate %zu", i);
    CHECK(strcmp(ad_filter_name(AD_FILTER_SHARPEN), "sharpen") == 0);
    CHECK(ad_filter_find("sharpen") == ad_filter_at(AD_FILTER_COUNT - 2));
    CHECK(ad_filter_sharpen(NULL, 0, &err) == AD_OK);
}

static void test_unique(void) {
    ad_error err;
    /* out of order on purpose: the lowest (lineage, sample) copy wins */
    ad_candidate c[6] = {cand(0, 1, 0, "A"), cand(0, 0, 2, "A"), cand(0, 0, 1, "A"),
                         cand(0, 0, 0, "B"), cand(1, 0, 0, "A"), cand(0, 2, 0, "B")};
    CHECK(ad_filter_begin(c, 6, &err) == AD_OK);
    c[2].kept = 0; /* dropped by an earlier filter: not a label */
    CHECK(ad_filter_unique(c, 6, &err) == AD_OK);
    CHECK(c[1].kept && !c[0].kept);         /* A: (0,2) beats (1,0); (0,1) not kept */
    CHECK(passed(&c[2], AD_FILTER_UNIQUE)); /* not a duplicate, still not kept */
    CHECK(!c[2].kept);
    CHECK(c[3].kept && !c[5].kept); /* B */
    CHECK(c[4].kept);               /* another prompt */
    CHECK(ad_filter_unique(NULL, 0, &err) == AD_OK);
}

/* The filters are independent tests: running them in another order gives the
 * same kept set, and the pipeline matches the filters called by hand. */
static void test_pipeline(void) {
    ad_error err;
    ad_candidate c[30], d[30];
    const char *ans[3] = {"111", "11", "112"};
    for (size_t i = 0; i < 30; i++) {
        size_t prompt = i / 10, lineage = (i / 2) % 5, sample = i % 2;
        c[i] = cand(prompt, lineage, sample, ans[i % 3 == 0 ? 1 : i % 5 == 0 ? 2 : 0]);
        c[i].level = ad_level_int((int32_t)prompt % 2);
        c[i].logprob_sum = -(double)((i * 13) % 10) / 4.0;
        c[i].hit_eos = (i % 11) != 3;
        c[i].correct = strcmp(c[i].completion, "111") == 0;
    }
    ad_filter_params p = ad_filter_default_params();
    p.length = 1;
    p.length_shortfall = 1;
    p.vote_lineages = 1;
    p.vote_min_agree = 2;
    p.confidence = 1;
    p.conf.min_mean_logprob = -1.5;
    p.unique = 0;
    memcpy(d, c, sizeof c);
    CHECK(ad_filter_run(c, 30, &p, &err) == AD_OK);
    CHECK(ad_filter_begin(d, 30, &err) == AD_OK);
    CHECK(ad_filter_confidence(d, 30, &p.conf, &err) == AD_OK);
    CHECK(ad_filter_vote_lineages(d, 30, 5, 2, &err) == AD_OK);
    CHECK(ad_filter_length(d, 30, 1, &err) == AD_OK);
    ad_filter_complete(d, 30);
    size_t kept = 0;
    for (size_t i = 0; i < 30; i++) {
        CHECK(c[i].kept == d[i].kept && c[i].ran == d[i].ran && c[i].passed == d[i].passed);
        uint32_t want = (1u << AD_FILTER_COMPLETE) | (1u << AD_FILTER_LENGTH) |
                        (1u << AD_FILTER_VOTE_LINEAGES) | (1u << AD_FILTER_CONFIDENCE);
        CHECK(c[i].ran == want);
        CHECK(c[i].kept == ((c[i].passed & want) == want));
        kept += c[i].kept;
    }
    ad_filter_tally t;
    ad_filter_count(c, 30, &t);
    CHECK(t.total == 30 && t.kept == kept);
    CHECK(t.judged[AD_FILTER_LENGTH] == 30 && t.judged[AD_FILTER_VERIFIER] == 0);
    CHECK(t.passed[AD_FILTER_COMPLETE] == 27); /* i = 3, 14 and 25 never finished */
    CHECK(kept > 0 && kept < 30);
    /* with unique on, the kept set has one copy per (prompt, completion) */
    p.unique = 1;
    CHECK(ad_filter_run(c, 30, &p, &err) == AD_OK);
    for (size_t i = 0; i < 30; i++)
        for (size_t j = i + 1; j < 30; j++)
            CHECK(!(c[i].kept && c[j].kept && c[i].prompt == c[j].prompt &&
                    strcmp(c[i].completion, c[j].completion) == 0));
    CHECK(strcmp(ad_filter_name(AD_FILTER_VOTE_LINEAGES), "vote_lineages") == 0);
    CHECK(strcmp(ad_filter_name((ad_filter_id)99), "?") == 0);
}

/* The registry: one entry per id, named as ad_filter_name says, applied in
 * ascending id order except unique, which reads the others' kept flags and so
 * must be last. */
static void test_registry(void) {
    static const char *const stored[AD_FILTER_COUNT] = {
        "complete", "length", "vote_samples", "vote_lineages", "confidence",
        "verifier", "unique", "judge",        "sharpen",
    }; /* stored in figures: never renamed */
    CHECK(ad_filter_count_registered() == AD_FILTER_COUNT);
    CHECK(ad_filter_at(AD_FILTER_COUNT) == NULL);
    unsigned seen = 0;
    for (size_t i = 0; i < ad_filter_count_registered(); i++) {
        const ad_filter_ops *f = ad_filter_at(i);
        CHECK(f != NULL);
        if (!f) continue;
        CHECK_MSG((unsigned)f->id < AD_FILTER_COUNT && !(seen & (1u << f->id)), "i=%zu", i);
        seen |= 1u << f->id;
        if (i < AD_FILTER_UNIQUE) CHECK_MSG(f->id == (ad_filter_id)i, "i=%zu", i);
        if (i > 0 && i + 1 < ad_filter_count_registered())
            CHECK(f->id > ad_filter_at(i - 1)->id); /* ascending before unique */
        CHECK(strcmp(f->name, ad_filter_name(f->id)) == 0);
        CHECK(strcmp(f->name, stored[f->id]) == 0);
        CHECK(f->summary && *f->summary && f->enabled && f->run);
        CHECK(ad_filter_find(f->name) == f);
    }
    CHECK(seen == (1u << AD_FILTER_COUNT) - 1);
    const ad_filter_ops *last = ad_filter_at(ad_filter_count_registered() - 1);
    CHECK(last && last->id == AD_FILTER_UNIQUE);
    CHECK(ad_filter_find("unique") == last);
    CHECK(ad_filter_find("nope") == NULL);
    CHECK(ad_filter_find("") == NULL);
    CHECK(ad_filter_find(NULL) == NULL);
    /* each switch in ad_filter_params turns on exactly its own filter */
    ad_filter_params none;
    memset(&none, 0, sizeof none);
    for (int id = 0; id < AD_FILTER_COUNT; id++) {
        ad_filter_params p = none;
        int *sw[AD_FILTER_COUNT] = {&p.complete,      &p.length,     &p.vote_samples,
                                    &p.vote_lineages, &p.confidence, &p.verifier,
                                    &p.unique,        &p.judge,      &p.sharpen};
        if (!sw[id]) { /* a filter added without its switch here */
            CHECK_MSG(0, "no switch for filter %d in this test", id);
            continue;
        }
        *sw[id] = 1;
        for (size_t i = 0; i < ad_filter_count_registered(); i++) {
            const ad_filter_ops *f = ad_filter_at(i);
            CHECK_MSG(!f->enabled(&none), "%s", f->name);
            CHECK_MSG(!f->enabled(&p) == (f->id != (ad_filter_id)id), "%s, switch %d", f->name, id);
        }
    }
}

/* ad_filter_run checks its arguments before running anything. */
static void test_run_checks(void) {
    ad_error err;
    ad_filter_params p = ad_filter_default_params();
    ad_candidate c = cand(0, 0, 0, "a");
    c.kept = 0;
    CHECK(ad_filter_run(&c, 1, NULL, &err) == AD_ERR);
    CHECK(c.kept == 0);
    CHECK(ad_filter_run(NULL, 3, &p, &err) == AD_ERR);
    CHECK(ad_filter_run(NULL, 0, &p, &err) == AD_OK);
    CHECK(ad_filter_run(&c, 1, &p, &err) == AD_OK && c.kept);
}

/* xorshift64: a fixed pseudo-random sequence for the equivalence test. */
static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Fills c with a round of up to 5 prompts x m lineages x k samples (some
 * missing), shuffled, with colliding answers, unfinished outputs, tied
 * log-probs and every candidate verified; returns how many. */
static size_t random_round(ad_candidate *c, size_t cap, size_t m, uint64_t *s) {
    static const char *const texts[] = {"A", "B", "AB", "7+8=15", "15", ""};
    static const char *const answers[] = {"15", "14", "A"};
    size_t n = 0, n_prompts = 1 + next_rand(s) % 5, k = 1 + next_rand(s) % 4;
    for (size_t p = 0; p < n_prompts; p++)
        for (size_t l = 0; l < m; l++)
            for (size_t j = 0; j < k && n < cap; j++) {
                if (next_rand(s) % 6 == 0) continue;
                ad_candidate *x = &c[n++];
                *x = cand(p, l, j, texts[next_rand(s) % 6]);
                x->level = next_rand(s) % 4 ? ad_level_int((int32_t)(p % 3))
                                            : ad_level_pair((int32_t)(p % 2), 1);
                x->answer = next_rand(s) % 3 ? NULL : answers[next_rand(s) % 3];
                x->n_tokens = next_rand(s) % 6;
                x->logprob_sum = -(double)(next_rand(s) % 8) / 2.0;
                x->hit_eos = next_rand(s) % 5 != 0;
                x->correct = (int)(next_rand(s) % 2);
                x->kept = (int)(next_rand(s) % 2); /* stale decisions that begin must clear */
                x->ran = x->passed = (uint32_t)next_rand(s);
                x->score = next_rand(s) % 4 ? (double)(next_rand(s) % 5) / 4.0 : NAN;
            }
    for (size_t i = n; i > 1; i--) {
        size_t j = next_rand(s) % i;
        ad_candidate t = c[i - 1];
        c[i - 1] = c[j];
        c[j] = t;
    }
    return n;
}

/* The documented pipeline by hand: begin, then each switched-on filter in id
 * order with unique last. */
static int run_by_hand(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    if (ad_filter_begin(c, n, err)) return AD_ERR;
    if (p->complete) ad_filter_complete(c, n);
    if (p->length && ad_filter_length(c, n, p->length_shortfall, err)) return AD_ERR;
    if (p->vote_samples && ad_filter_vote_samples(c, n, p->vote_min_share, err)) return AD_ERR;
    if (p->vote_lineages && ad_filter_vote_lineages(c, n, p->n_lineages, p->vote_min_agree, err))
        return AD_ERR;
    if (p->confidence && ad_filter_confidence(c, n, &p->conf, err)) return AD_ERR;
    if (p->verifier && ad_filter_verifier(c, n, err)) return AD_ERR;
    if (p->judge && ad_filter_judge(c, n, p->judge_min, err)) return AD_ERR;
    if (p->sharpen && ad_filter_sharpen(c, n, err)) return AD_ERR;
    if (p->unique && ad_filter_unique(c, n, err)) return AD_ERR;
    return AD_OK;
}

/* ad_filter_run (the registry) decides exactly as the filters called by hand,
 * for every filter on, each alone, and random subsets and parameters. */
static void test_run_equivalence(void) {
    enum { CAP = 120 };
    static ad_candidate c[CAP], a[CAP], b[CAP];
    ad_error err;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    size_t compared = 0, kept = 0, dropped = 0;
    const int trials = test_quick() ? 60 : 400;
    for (int t = 0; t < trials; t++) {
        size_t m = 1 + next_rand(&s) % 5;
        size_t n = random_round(c, CAP, m, &s);
        const unsigned all = (1u << AD_FILTER_COUNT) - 1;
        for (int set = 0; set < AD_FILTER_COUNT + 4; set++) {
            ad_filter_params p = ad_filter_default_params();
            /* set 0: every filter; 1..AD_FILTER_COUNT: each alone; then random subsets */
            unsigned on = set == 0                 ? all
                          : set <= AD_FILTER_COUNT ? 1u << (set - 1)
                                                   : (unsigned)(next_rand(&s) & all);
            p.complete = (on >> AD_FILTER_COMPLETE) & 1;
            p.length = (on >> AD_FILTER_LENGTH) & 1;
            p.vote_samples = (on >> AD_FILTER_VOTE_SAMPLES) & 1;
            p.vote_lineages = (on >> AD_FILTER_VOTE_LINEAGES) & 1;
            p.confidence = (on >> AD_FILTER_CONFIDENCE) & 1;
            p.verifier = (on >> AD_FILTER_VERIFIER) & 1;
            p.unique = (on >> AD_FILTER_UNIQUE) & 1;
            p.judge = (on >> AD_FILTER_JUDGE) & 1;
            p.sharpen = (on >> AD_FILTER_SHARPEN) & 1;
            p.judge_min = (double)(next_rand(&s) % 5) / 4.0;
            p.length_shortfall = 1 + next_rand(&s) % 3;
            p.vote_min_share = (double)(1 + next_rand(&s) % 10) / 10.0;
            p.n_lineages = m;
            p.vote_min_agree = 1 + next_rand(&s) % m;
            p.conf.use_top_fraction = (int)(next_rand(&s) % 2);
            p.conf.min_mean_logprob = -(double)(next_rand(&s) % 6) / 2.0;
            p.conf.top_fraction = (double)(1 + next_rand(&s) % 10) / 10.0;
            p.conf.group = (ad_conf_group)(next_rand(&s) % 3);
            memcpy(a, c, n * sizeof *c);
            memcpy(b, c, n * sizeof *c);
            int ra = ad_filter_run(a, n, &p, &err);
            int rb = run_by_hand(b, n, &p, &err);
            CHECK_MSG(ra == AD_OK && rb == AD_OK, "trial %d set %d: %s", t, set, err.msg);
            for (size_t i = 0; i < n; i++) {
                CHECK_MSG(a[i].kept == b[i].kept && a[i].ran == b[i].ran &&
                              a[i].passed == b[i].passed,
                          "trial %d set %d candidate %zu", t, set, i);
                kept += a[i].kept != 0;
                dropped += a[i].kept == 0;
            }
            compared += n;
        }
    }
    CHECK(compared > 1000 && kept > compared / 20 && dropped > compared / 20);
    /* an invalid parameter fails the run as it fails the filter */
    size_t n = random_round(c, CAP, 3, &s);
    ad_filter_params p = ad_filter_default_params();
    p.vote_lineages = 1;
    p.n_lineages = 3;
    p.vote_min_agree = 4; /* more than m */
    CHECK(ad_filter_run(c, n, &p, &err) == AD_ERR && strstr(err.msg, "lineage vote") != NULL);
}

int main(void) {
    RUN(test_vote_mode);
    RUN(test_begin_validates);
    RUN(test_complete);
    RUN(test_length);
    RUN(test_vote_samples);
    RUN(test_vote_lineages);
    RUN(test_confidence_threshold);
    RUN(test_confidence_top);
    RUN(test_verifier);
    RUN(test_unique);
    RUN(test_judge);
    RUN(test_sharpen);
    RUN(test_pipeline);
    RUN(test_registry);
    RUN(test_run_checks);
    RUN(test_run_equivalence);
    return test_summary();
}
