/* test_pairs.c: the pair rules on hand-made candidates: each rule's chosen and
 * rejected order, ties, thresholds, outputs without EOS, identical texts,
 * several pairs per prompt, unscored candidates, bad parameters, pair accuracy
 * and the registry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "loop/pairs.h"

/* A complete, unverified, unscored candidate with mean log-prob -1. */
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

/* Sets the mean token log-prob to m. */
static void set_mean(ad_candidate *c, double m) {
    c->logprob_sum = m * (double)c->n_tokens;
}

/* Runs rule `name` and returns its pairs (caller frees), or NULL with *n = 0 on
 * error (err filled) or when there are no pairs. */
static ad_pair *make(const char *name, const ad_candidate *c, size_t n, const ad_pair_params *p,
                     size_t *n_out, int *rc, ad_error *err) {
    ad_pair *out = (ad_pair *)&n_out; /* garbage, to see it reset */
    *n_out = 99;
    const ad_pair_rule *rule = ad_pair_rule_find(name);
    *rc = ad_pairs_make(rule, c, n, p, &out, n_out, err);
    if (*rc != AD_OK) CHECK(out == NULL && *n_out == 0);
    if (*rc == AD_OK && *n_out == 0) CHECK(out == NULL);
    return out;
}

/* Pairs of `name` that must succeed. */
static ad_pair *make_ok(const char *name, const ad_candidate *c, size_t n, const ad_pair_params *p,
                        size_t *n_out) {
    ad_error err;
    int rc;
    ad_pair *out = make(name, c, n, p, n_out, &rc, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", name, err.msg);
    return out;
}

/* 1 when pair i is (chosen, rejected). */
static int is_pair(const ad_pair *pairs, size_t n, size_t i, size_t chosen, size_t rejected) {
    return i < n && pairs[i].chosen == chosen && pairs[i].rejected == rejected;
}

/* Expects the rule to fail with a message containing `needle`. */
static void expect_error(const char *name, const ad_candidate *c, size_t n, const ad_pair_params *p,
                         const char *needle) {
    ad_error err;
    err.msg[0] = 0;
    int rc;
    size_t n_out;
    ad_pair *out = make(name, c, n, p, &n_out, &rc, &err);
    CHECK_MSG(rc == AD_ERR, "%s should fail with \"%s\"", name, needle);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: \"%s\" lacks \"%s\"", name, err.msg, needle);
    free(out);
}

static void test_registry(void) {
    const char *names[] = {"verifier", "vote", "lineages", "confidence", "judge"};
    CHECK(ad_pair_rule_count() == 5);
    for (size_t i = 0; i < 5; i++) {
        const ad_pair_rule *r = ad_pair_rule_find(names[i]);
        CHECK_MSG(r != NULL, "%s", names[i]);
        if (!r) continue;
        CHECK(strcmp(r->name, names[i]) == 0);
        CHECK(r->summary && r->summary[0] && r->make);
        CHECK(r->uses_verifier == (strcmp(names[i], "verifier") == 0));
        CHECK(ad_pair_rule_at(i) == r);
    }
    CHECK(ad_pair_rule_at(5) == NULL);
    CHECK(ad_pair_rule_find("nope") == NULL);
    CHECK(ad_pair_rule_find("") == NULL);
    CHECK(ad_pair_rule_find(NULL) == NULL);
}

static void test_defaults_and_empty(void) {
    ad_pair_params p = ad_pair_default_params();
    CHECK(p.per_prompt == 1 && p.n_lineages == 5 && p.min_agree == 4);
    CHECK(p.min_share == 0.5 && p.min_gap == 0.0);
    for (size_t i = 0; i < ad_pair_rule_count(); i++) {
        size_t n = 99;
        ad_pair *out = make_ok(ad_pair_rule_at(i)->name, NULL, 0, &p, &n);
        CHECK(out == NULL && n == 0);
    }
}

static void test_bad_params(void) {
    ad_candidate c[3] = {cand(0, 0, 0, "A"), cand(0, 1, 0, "A"), cand(0, 2, 0, "B")};
    ad_pair_params p = ad_pair_default_params();
    p.n_lineages = 3;
    p.min_agree = 2;
    p.per_prompt = 0;
    for (size_t i = 0; i < ad_pair_rule_count(); i++)
        expect_error(ad_pair_rule_at(i)->name, c, 3, &p, "per_prompt must be >= 1");
    p.per_prompt = 1;
    p.min_agree = 4;
    expect_error("lineages", c, 3, &p, "min_agree 4 of n_lineages 3");
    p.min_agree = 0;
    expect_error("lineages", c, 3, &p, "min_agree 0 of n_lineages 3");
    p.min_agree = 2;
    p.n_lineages = 2;
    expect_error("lineages", c, 3, &p, "lineage 2 but m = 2");
    p.n_lineages = 3;
    p.min_share = 0.0;
    expect_error("vote", c, 3, &p, "min_share 0 is not in (0, 1]");
    p.min_share = 1.5;
    expect_error("vote", c, 3, &p, "not in (0, 1]");
    p.min_share = NAN;
    expect_error("vote", c, 3, &p, "not in (0, 1]");
    p.min_share = 0.5;
    p.min_gap = -0.1;
    expect_error("confidence", c, 3, &p, "min_gap -0.1 is not a number >= 0");
    p.min_gap = NAN;
    expect_error("judge", c, 3, &p, "min_gap");
    p.min_gap = 0.0;
    /* a rule checks only its own parameters */
    p.min_agree = 7;
    size_t n;
    free(make_ok("vote", c, 3, &p, &n));
    p.min_agree = 2;
    /* candidates: unverified for the verifier, scores out of range for the judge */
    expect_error("verifier", c, 3, &p, "candidate 0 (prompt 0, lineage 0, sample 0) was never");
    c[1].score = 1.5;
    expect_error("judge", c, 3, &p, "candidate 1 (prompt 0, lineage 1, sample 0) has score 1.5");
    c[1].score = NAN;
    /* duplicates and missing completions */
    c[2].lineage = 1;
    expect_error("vote", c, 3, &p, "candidates 1 and 2 are both prompt 0, lineage 1, sample 0");
    c[2].lineage = 2;
    c[2].completion = NULL;
    expect_error("confidence", c, 3, &p, "candidate 2 has no completion");
    c[2].completion = "B";
    ad_error err;
    ad_pair *out = (ad_pair *)&n;
    CHECK(ad_pairs_make(NULL, c, 3, &p, &out, &n, &err) == AD_ERR);
    CHECK(out == NULL && n == 0 && strstr(err.msg, "no pair rule"));
}

static void test_verifier(void) {
    /* prompt 0: the right answer 12 twice, wrong 13 once, 14 twice, one output without EOS */
    ad_candidate c[12] = {
        cand(0, 0, 0, "12"),
        cand(0, 0, 1, "13"),
        cand(0, 0, 2, "12"),
        cand(0, 1, 0, "14"),
        cand(0, 1, 1, "14"),
        cand(0, 1, 2, "1"),
        /* prompt 1: two right answers with the same support, and a wrong one */
        cand(1, 0, 0, "7"),
        cand(1, 1, 0, "8"),
        cand(1, 2, 0, "9"),
        /* prompt 2: nothing right; prompt 3: nothing wrong */
        cand(2, 0, 0, "5"),
        cand(3, 0, 0, "6"),
        cand(3, 0, 1, "6 "),
    };
    const int correct[12] = {1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1};
    for (size_t i = 0; i < 12; i++)
        c[i].correct = correct[i];
    c[5].hit_eos = 0;
    /* prompt 1: 7 and 8 are right once each: 7 has the lower lineage */
    ad_pair_params p = ad_pair_default_params();
    size_t n;
    ad_pair *pr = make_ok("verifier", c, 12, &p, &n);
    CHECK(n == 2 && is_pair(pr, n, 0, 0, 1) && is_pair(pr, n, 1, 6, 8));
    CHECK(ad_pairs_accuracy(c, pr, n) == 1.0);
    free(pr);
    /* more pairs: 13 (support 1, lineage 0), the no-answer output (1, lineage 1), 14 (2) */
    p.per_prompt = 5;
    pr = make_ok("verifier", c, 12, &p, &n);
    CHECK(n == 4);
    CHECK(is_pair(pr, n, 0, 0, 1) && is_pair(pr, n, 1, 0, 5) && is_pair(pr, n, 2, 0, 3));
    CHECK(is_pair(pr, n, 3, 6, 8));
    free(pr);
    /* a right output that never reached EOS is never chosen */
    c[6].hit_eos = 0;
    c[7].hit_eos = 0;
    pr = make_ok("verifier", c + 6, 3, &p, &n);
    CHECK(n == 0 && pr == NULL);
}

static void test_vote(void) {
    /* prompt 0: A A A B C + one without EOS (6 candidates, A has 3/6) */
    ad_candidate c[6] = {cand(0, 0, 0, "B"), cand(0, 0, 1, "A"), cand(0, 1, 0, "A"),
                         cand(0, 1, 1, "C"), cand(0, 2, 0, "A"), cand(0, 2, 1, "A")};
    c[5].hit_eos = 0; /* its text equals the majority's but it has no answer */
    ad_pair_params p = ad_pair_default_params();
    p.per_prompt = 3;
    size_t n;
    ad_pair *pr = make_ok("vote", c, 6, &p, &n);
    /* chosen: the first A in (lineage, sample) order; rejected by support (all 1): B, C; the
     * no-answer output has the chosen's text and is skipped */
    CHECK(n == 2 && is_pair(pr, n, 0, 1, 0) && is_pair(pr, n, 1, 1, 3));
    free(pr);
    /* the share counts every candidate, the no-answer one too: 3/6 < 0.6 */
    p.min_share = 0.6;
    pr = make_ok("vote", c, 6, &p, &n);
    CHECK(n == 0);
    free(pr);
    c[5].hit_eos = 1;
    c[5].completion = "D"; /* now A 3, B 1, C 1, D 1: 3/6 = 0.5 */
    p.min_share = 0.5;
    pr = make_ok("vote", c, 6, &p, &n);
    CHECK(n == 3 && is_pair(pr, n, 2, 1, 5));
    free(pr);
    /* a tie: no majority, no pair */
    ad_candidate t[4] = {cand(0, 0, 0, "X"), cand(0, 0, 1, "Y"), cand(0, 1, 0, "Y"),
                         cand(0, 1, 1, "X")};
    p.min_share = 0.1;
    pr = make_ok("vote", t, 4, &p, &n);
    CHECK(n == 0);
    free(pr);
    /* a share exactly at the threshold (0.6 of 5 is 3) */
    ad_candidate s[5] = {cand(0, 0, 0, "X"), cand(0, 0, 1, "X"), cand(0, 0, 2, "X"),
                         cand(0, 0, 3, "Y"), cand(0, 0, 4, "Y")};
    p.min_share = 0.6;
    p.per_prompt = 5;
    pr = make_ok("vote", s, 5, &p, &n);
    /* Y twice is one class: one pair */
    CHECK(n == 1 && is_pair(pr, n, 0, 0, 3));
    free(pr);
    p.min_share = 0.61;
    pr = make_ok("vote", s, 5, &p, &n);
    CHECK(n == 0);
    free(pr);
}

static void test_vote_rejected_order(void) {
    /* majority M (4), minority R1 (2), R2 (1), no-answer (2): least support first */
    ad_candidate c[9] = {cand(0, 0, 0, "M"),  cand(0, 0, 1, "R1"), cand(0, 0, 2, "M"),
                         cand(0, 1, 0, "M"),  cand(0, 1, 1, "x"),  cand(0, 1, 2, "R1"),
                         cand(0, 2, 0, "R2"), cand(0, 2, 1, "M"),  cand(0, 2, 2, "y")};
    c[4].hit_eos = c[8].hit_eos = 0;
    ad_pair_params p = ad_pair_default_params();
    p.min_share = 0.4;
    p.per_prompt = 3;
    size_t n;
    ad_pair *pr = make_ok("vote", c, 9, &p, &n);
    /* R2 (support 1), then R1 and the no-answer class (support 2; R1's representative is
     * at (0, 1), the no-answer's at (1, 1)) */
    CHECK(n == 3 && is_pair(pr, n, 0, 0, 6) && is_pair(pr, n, 1, 0, 1) && is_pair(pr, n, 2, 0, 4));
    free(pr);
    p.per_prompt = 1;
    pr = make_ok("vote", c, 9, &p, &n);
    CHECK(n == 1 && is_pair(pr, n, 0, 0, 6));
    free(pr);
}

static void test_lineages(void) {
    /* m = 3, k = 3. Greedy: A, A, D. Lineage 2 dissents with samples D, E, A. */
    ad_candidate c[9] = {cand(0, 0, 0, "A"), cand(0, 0, 1, "B"), cand(0, 0, 2, "A"),
                         cand(0, 1, 0, "A"), cand(0, 1, 1, "C"), cand(0, 1, 2, "C"),
                         cand(0, 2, 0, "D"), cand(0, 2, 1, "E"), cand(0, 2, 2, "A")};
    ad_pair_params p = ad_pair_default_params();
    p.n_lineages = 3;
    p.min_agree = 2;
    p.per_prompt = 5;
    size_t n;
    ad_pair *pr = make_ok("lineages", c, 9, &p, &n);
    /* chosen: lineage 0's greedy A; rejected: D then E (support 1 each, by position);
     * B and C belong to agreeing lineages, A is the agreed answer */
    CHECK(n == 2 && is_pair(pr, n, 0, 0, 6) && is_pair(pr, n, 1, 0, 7));
    free(pr);
    p.per_prompt = 1;
    pr = make_ok("lineages", c, 9, &p, &n);
    CHECK(n == 1 && is_pair(pr, n, 0, 0, 6));
    free(pr);
    /* 2 of 3 is not enough for min_agree 3 */
    p.min_agree = 3;
    pr = make_ok("lineages", c, 9, &p, &n);
    CHECK(n == 0);
    free(pr);
    /* unanimous: nobody dissents, no pair */
    c[6].completion = "A";
    p.per_prompt = 5;
    pr = make_ok("lineages", c, 9, &p, &n);
    CHECK(n == 0);
    free(pr);
    /* lineage 2's greedy never reached EOS: it dissents (no answer), 2 of 3 agree */
    c[6].hit_eos = 0;
    p.min_agree = 2;
    pr = make_ok("lineages", c, 9, &p, &n);
    /* pool: the no-answer greedy (its text "A" equals the chosen's: skipped) and E */
    CHECK(n == 1 && is_pair(pr, n, 0, 0, 7));
    free(pr);
    /* a lineage with no greedy sample dissents; its other samples can be rejected */
    ad_candidate m[4] = {cand(0, 0, 0, "A"), cand(0, 1, 0, "A"), cand(0, 2, 1, "X"),
                         cand(0, 2, 2, "X")};
    pr = make_ok("lineages", m, 4, &p, &n);
    CHECK(n == 1 && is_pair(pr, n, 0, 0, 2));
    free(pr);
    /* a greedy tie between lineages: no agreed answer */
    ad_candidate t[4] = {cand(0, 0, 0, "A"), cand(0, 1, 0, "B"), cand(0, 2, 0, "A"),
                         cand(0, 3, 0, "B")};
    p.n_lineages = 4;
    p.min_agree = 1;
    pr = make_ok("lineages", t, 4, &p, &n);
    CHECK(n == 0);
    free(pr);
}

static void test_confidence(void) {
    /* A (-0.1 best member, -2 other), B -0.5, C -0.9, D without EOS at -3 */
    ad_candidate c[5] = {cand(0, 0, 0, "B"), cand(0, 0, 1, "A"), cand(0, 1, 0, "C"),
                         cand(0, 1, 1, "A"), cand(0, 1, 2, "D")};
    set_mean(&c[0], -0.5);
    set_mean(&c[1], -2.0);
    set_mean(&c[2], -0.9);
    set_mean(&c[3], -0.1);
    set_mean(&c[4], -3.0);
    c[4].hit_eos = 0;
    ad_pair_params p = ad_pair_default_params();
    p.per_prompt = 5;
    size_t n;
    ad_pair *pr = make_ok("confidence", c, 5, &p, &n);
    /* chosen: A's most confident member (index 3); rejected lowest first: D, C, B */
    CHECK(n == 3 && is_pair(pr, n, 0, 3, 4) && is_pair(pr, n, 1, 3, 2) && is_pair(pr, n, 2, 3, 0));
    free(pr);
    /* gaps: 2.9, 0.8, 0.4 */
    p.min_gap = 0.6;
    pr = make_ok("confidence", c, 5, &p, &n);
    CHECK(n == 2 && is_pair(pr, n, 0, 3, 4) && is_pair(pr, n, 1, 3, 2));
    free(pr);
    p.min_gap = 3.0;
    pr = make_ok("confidence", c, 5, &p, &n);
    CHECK(n == 0);
    free(pr);
    /* an output without EOS more confident than every answer: never chosen, never rejected */
    set_mean(&c[4], 0.0);
    p.min_gap = 0.0;
    pr = make_ok("confidence", c, 5, &p, &n);
    CHECK(n == 2 && is_pair(pr, n, 0, 3, 2) && is_pair(pr, n, 1, 3, 0));
    free(pr);
}

static void test_confidence_ties(void) {
    /* A at lineage 1 and B at lineage 0 tie at -0.1; C -0.5 and D -0.5 tie too */
    ad_candidate c[4] = {cand(0, 1, 0, "A"), cand(0, 0, 0, "B"), cand(0, 2, 0, "D"),
                         cand(0, 1, 1, "C")};
    set_mean(&c[0], -0.1);
    set_mean(&c[1], -0.1);
    set_mean(&c[2], -0.5);
    set_mean(&c[3], -0.5);
    ad_pair_params p = ad_pair_default_params();
    p.per_prompt = 5;
    size_t n;
    ad_pair *pr = make_ok("confidence", c, 4, &p, &n);
    /* chosen: B (lower (lineage, sample)); rejected: C (1, 1) before D (2, 0); A ties the
     * chosen and is no preference */
    CHECK(n == 2 && is_pair(pr, n, 0, 1, 3) && is_pair(pr, n, 1, 1, 2));
    free(pr);
    /* every answer equally confident: nothing */
    set_mean(&c[2], -0.1);
    set_mean(&c[3], -0.1);
    pr = make_ok("confidence", c, 4, &p, &n);
    CHECK(n == 0);
    free(pr);
}

static void test_judge(void) {
    ad_candidate c[6] = {cand(0, 0, 0, "A"), cand(0, 0, 1, "B"), cand(0, 0, 2, "C"),
                         cand(0, 0, 3, "D"), cand(1, 0, 0, "E"), cand(1, 0, 1, "F")};
    c[0].score = 0.4;
    c[1].score = 0.9;
    c[2].score = NAN; /* not scored: left out */
    c[3].score = 0.1;
    /* prompt 1: nothing scored */
    ad_pair_params p = ad_pair_default_params();
    p.per_prompt = 5;
    size_t n;
    ad_pair *pr = make_ok("judge", c, 6, &p, &n);
    CHECK(n == 2 && is_pair(pr, n, 0, 1, 3) && is_pair(pr, n, 1, 1, 0));
    free(pr);
    p.min_gap = 0.6;
    pr = make_ok("judge", c, 6, &p, &n);
    CHECK(n == 1 && is_pair(pr, n, 0, 1, 3));
    free(pr);
    /* the judge does not read log-probs, the confidence rule does not read scores */
    set_mean(&c[3], -0.01);
    set_mean(&c[5], -2.0);
    p.min_gap = 0.0;
    p.per_prompt = 1;
    pr = make_ok("confidence", c, 6, &p, &n);
    CHECK(n == 2 && pr && pr[0].chosen == 3 && pr[1].chosen == 4);
    free(pr);
    /* a single scored answer has nobody to beat */
    c[0].score = c[3].score = NAN;
    pr = make_ok("judge", c, 6, &p, &n);
    CHECK(n == 0);
    free(pr);
}

static void test_identical_texts(void) {
    /* answers extracted from the text: two candidates can share a completion with
     * different answers, or differ in text with one answer */
    ad_candidate c[6] = {cand(0, 0, 0, "x=1"), cand(0, 0, 1, "so x=1"), cand(0, 0, 2, "x=1"),
                         cand(0, 1, 0, "x=1"), cand(0, 1, 1, "x=3"),    cand(0, 1, 2, "x=3")};
    const char *answers[6] = {"1", "1", "1", "2", "3", "4"};
    for (size_t i = 0; i < 6; i++)
        c[i].answer = answers[i];
    ad_pair_params p = ad_pair_default_params();
    p.per_prompt = 5;
    size_t n;
    ad_pair *pr = make_ok("vote", c, 6, &p, &n);
    /* chosen: answer 1 at index 0 ("x=1"); 2 has the chosen's text (skipped); 3's text "x=3"
     * is paired once; 4 repeats the same (chosen, rejected) texts (skipped) */
    CHECK(n == 1 && is_pair(pr, n, 0, 0, 4));
    free(pr);
}

static void test_order_independence(void) {
    /* three prompts, listed out of order; pairs come by prompt and name the same
     * candidates whatever the array order */
    ad_candidate c[9] = {cand(2, 0, 0, "P"), cand(2, 0, 1, "P"), cand(2, 0, 2, "Q"),
                         cand(0, 0, 0, "A"), cand(0, 0, 1, "B"), cand(0, 0, 2, "A"),
                         cand(1, 0, 0, "X"), cand(1, 0, 1, "X"), cand(1, 0, 2, "Y")};
    ad_pair_params p = ad_pair_default_params();
    size_t n;
    ad_pair *pr = make_ok("vote", c, 9, &p, &n);
    CHECK(n == 3 && is_pair(pr, n, 0, 3, 4) && is_pair(pr, n, 1, 6, 8) && is_pair(pr, n, 2, 0, 2));
    /* reversed array: the same candidates, mapped by position */
    ad_candidate r[9];
    for (size_t i = 0; i < 9; i++)
        r[i] = c[8 - i];
    size_t m;
    ad_pair *qr = make_ok("vote", r, 9, &p, &m);
    CHECK(m == n);
    for (size_t i = 0; i < n && i < m; i++)
        CHECK(qr[i].chosen == 8 - pr[i].chosen && qr[i].rejected == 8 - pr[i].rejected);
    free(pr);
    free(qr);
}

static void test_accuracy(void) {
    ad_candidate c[4] = {cand(0, 0, 0, "A"), cand(0, 0, 1, "B"), cand(0, 0, 2, "C"),
                         cand(0, 0, 3, "D")};
    c[0].correct = 1;
    c[1].correct = 0;
    c[2].correct = 0;
    c[3].correct = 1;
    ad_pair pairs[4] = {{0, 1}, {0, 2}, {2, 1}, {0, 3}};
    CHECK(ad_pairs_accuracy(c, pairs, 4) == 0.5); /* right-wrong twice; wrong-wrong, right-right */
    CHECK(ad_pairs_accuracy(c, pairs, 2) == 1.0);
    CHECK(isnan(ad_pairs_accuracy(c, pairs, 0)));
    c[3].correct = -1;
    CHECK(isnan(ad_pairs_accuracy(c, pairs, 4)));
    CHECK(ad_pairs_accuracy(c, pairs, 3) == 2.0 / 3.0);
}

int main(void) {
    RUN(test_registry);
    RUN(test_defaults_and_empty);
    RUN(test_bad_params);
    RUN(test_verifier);
    RUN(test_vote);
    RUN(test_vote_rejected_order);
    RUN(test_lineages);
    RUN(test_confidence);
    RUN(test_confidence_ties);
    RUN(test_judge);
    RUN(test_identical_texts);
    RUN(test_order_independence);
    RUN(test_accuracy);
    return test_summary();
}
