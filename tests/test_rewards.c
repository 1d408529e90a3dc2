/* test_rewards.c: the rewards (reward.h) on hand-made groups, the registry,
 * the spec string and weighted sums, and reward precision.
 *
 * Every expected value below is worked out by hand from reward.h's rules;
 * the groups cover ties, outputs without EOS, single-sample groups, missing
 * lineages and unverified candidates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "loop/reward.h"

/* A candidate of prompt 0 that reached EOS, unverified, unscored. */
static ad_candidate cand(size_t lineage, size_t sample, const char *completion) {
    ad_candidate c;
    memset(&c, 0, sizeof c);
    c.lineage = lineage;
    c.sample = sample;
    c.completion = completion;
    c.n_tokens = strlen(completion) + 1;
    c.hit_eos = 1;
    c.correct = -1;
    c.score = NAN;
    return c;
}

/* The same, cut at the budget: no EOS, so no answer. */
static ad_candidate cut(size_t lineage, size_t sample, const char *completion) {
    ad_candidate c = cand(lineage, sample, completion);
    c.hit_eos = 0;
    c.n_tokens = strlen(completion);
    return c;
}

static ad_reward_ctx group(const ad_candidate *c, size_t n, size_t m) {
    ad_reward_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.c = c;
    ctx.n = n;
    ctx.n_lineages = m;
    return ctx;
}

/* Scores with the named reward; prints the error unless quiet. */
static int score_with(const char *name, const ad_reward_ctx *ctx, double *out, int quiet,
                      ad_error *err) {
    const ad_reward *r = ad_reward_find(name);
    if (!r) return AD_ERR;
    int rc = ad_reward_score(r, ctx, out, err);
    if (rc && !quiet) fprintf(stderr, "  %s: %s\n", name, err->msg);
    return rc;
}

static int score(const char *name, const ad_reward_ctx *ctx, double *out) {
    ad_error err;
    return score_with(name, ctx, out, 0, &err);
}

/* Fails with a message that contains `needle`. */
static int refused(const char *name, const ad_reward_ctx *ctx, const char *needle) {
    ad_error err;
    double out[16];
    err.msg[0] = '\0';
    if (score_with(name, ctx, out, 1, &err) != AD_ERR) return 0;
    if (!strstr(err.msg, needle)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, needle);
        return 0;
    }
    return 1;
}

static int values_are(const double *got, const double *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-12)) {
            fprintf(stderr, "  value %zu: %g, expected %g\n", i, got[i], want[i]);
            return 0;
        }
    return 1;
}

/* ---- the registry ---- */

static void test_registry(void) {
    const char *names[] = {"verifier", "majority", "lineages", "self_certainty",
                           "judge",    "length",   "format"};
    size_t n = sizeof names / sizeof names[0];
    CHECK(ad_reward_count() == n);
    for (size_t i = 0; i < n; i++) {
        const ad_reward *r = ad_reward_at(i);
        CHECK(r && strcmp(r->name, names[i]) == 0);
        CHECK(ad_reward_find(names[i]) == r);
        CHECK(r && r->summary && *r->summary && r->score);
        CHECK(r && r->uses_verifier == (i == 0)); /* only the oracle arm reads verdicts */
    }
    CHECK(ad_reward_at(n) == NULL);
    CHECK(ad_reward_find("vote") == NULL);
    CHECK(ad_reward_find(NULL) == NULL);
    ad_candidate c = cand(0, 0, "1");
    ad_reward_ctx ctx = group(&c, 1, 1);
    double out;
    ad_error err;
    CHECK(ad_reward_score(NULL, &ctx, &out, &err) == AD_ERR);
}

/* Checks every reward shares: one prompt, unique (lineage, sample), lineage <
 * m, a completion; an empty group is fine. */
static void test_common_checks(void) {
    ad_candidate c[3] = {cand(0, 0, "1"), cand(0, 1, "1"), cand(1, 0, "2")};
    ad_reward_ctx ctx = group(c, 3, 2);
    double out[3];
    for (size_t k = 0; k < ad_reward_count(); k++) {
        const char *name = ad_reward_at(k)->name;
        ad_reward_ctx empty = group(NULL, 0, 1);
        CHECK(score(name, &empty, NULL) == AD_OK);
        c[2].prompt = 1;
        CHECK(refused(name, &ctx, "a group is one prompt"));
        c[2].prompt = 0;
        c[2].lineage = 0;
        c[2].sample = 1;
        CHECK(refused(name, &ctx, "both lineage 0, sample 1"));
        c[2].lineage = 2;
        CHECK(refused(name, &ctx, "lineage 2 but m = 2"));
        c[2].lineage = 1;
        c[2].sample = 0;
        ctx.n_lineages = 0;
        CHECK(refused(name, &ctx, "n_lineages"));
        ctx.n_lineages = 2;
        c[1].completion = NULL;
        CHECK(refused(name, &ctx, "no completion"));
        c[1].completion = "1";
        ad_error err;
        CHECK(ad_reward_score(ad_reward_at(k), &ctx, NULL, &err) == AD_ERR);
        CHECK(ad_reward_score(ad_reward_at(k), NULL, out, &err) == AD_ERR);
    }
}

/* ---- each reward ---- */

static void test_verifier(void) {
    ad_candidate c[4] = {cand(0, 0, "12"), cand(0, 1, "13"), cand(1, 0, "12"), cut(1, 1, "12")};
    int verdict[4] = {1, 0, 1, 1}; /* the cut one marked right: it still has no answer */
    for (size_t i = 0; i < 4; i++)
        c[i].correct = verdict[i];
    ad_reward_ctx ctx = group(c, 4, 2);
    double out[4];
    CHECK(score("verifier", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 0, 1, 0}, 4));
    ctx.n = 1; /* a single sample */
    CHECK(score("verifier", &ctx, out) == AD_OK && out[0] == 1.0);
    ctx.n = 4;
    c[1].correct = -1;
    CHECK(refused("verifier", &ctx, "candidate 1 (prompt 0, lineage 0, sample 1) is not verified"));
    c[1].correct = 2;
    CHECK(refused("verifier", &ctx, "not verified"));
}

static void test_majority(void) {
    /* answers 7, 7, 8, and a cut "7" with no answer: 7 wins 2 to 1 */
    ad_candidate c[4] = {cand(0, 0, "7"), cand(0, 1, "8"), cut(0, 2, "7"), cand(0, 3, "7")};
    ad_reward_ctx ctx = group(c, 4, 1);
    double out[5];
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 0, 0, 1}, 4));
    /* the order of the array does not matter */
    ad_candidate r[4] = {c[3], c[2], c[1], c[0]};
    ctx.c = r;
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 0, 0, 1}, 4));
    /* a tie (7, 7, 8, 8): no majority, every reward 0 */
    ad_candidate t[4] = {cand(0, 0, "7"), cand(0, 1, "8"), cand(1, 0, "8"), cand(1, 1, "7")};
    ctx = group(t, 4, 2);
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 0, 0, 0}, 4));
    /* all distinct: a tie of ones */
    ctx.n = 2;
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 0}, 2));
    /* the answer field, not the completion, is compared: "x=5" and "5" agree */
    ad_candidate a[3] = {cand(0, 0, "x=5"), cand(0, 1, "5"), cand(0, 2, "6")};
    a[0].answer = "5";
    ctx = group(a, 3, 1);
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 1, 0}, 3));
    /* a single sample is its own majority; a single cut one gets 0 */
    ad_candidate one = cand(0, 0, "9"), none = cut(0, 0, "9");
    ctx = group(&one, 1, 1);
    CHECK(score("majority", &ctx, out) == AD_OK && out[0] == 1.0);
    ctx.c = &none;
    CHECK(score("majority", &ctx, out) == AD_OK && out[0] == 0.0);
    /* nobody reached EOS: no mode */
    ad_candidate cuts[2] = {cut(0, 0, "1"), cut(0, 1, "1")};
    ctx = group(cuts, 2, 1);
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 0}, 2));
    /* the label-free reward ignores verdicts, right or wrong */
    c[0].correct = 0;
    c[1].correct = 1;
    ctx = group(c, 4, 1);
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 0, 0, 1}, 4));
}

static void test_lineages(void) {
    /* 4 lineages, greedy answers A A A B; sample 1 of each: B A A A */
    ad_candidate c[8] = {cand(0, 0, "A"), cand(0, 1, "B"), cand(1, 0, "A"), cand(1, 1, "A"),
                         cand(2, 0, "A"), cand(2, 1, "A"), cand(3, 0, "B"), cand(3, 1, "A")};
    ad_reward_ctx ctx = group(c, 8, 4);
    double out[8];
    /* L0..L2: the others' greedy answers are {A, A, B}: mode A. L3: {A, A, A}. */
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 0, 1, 1, 1, 1, 0, 1}, 8));
    /* 3 lineages A A B: L0 sees {A, B} (a tie: 0), L1 too, L2 sees {A, A} */
    ctx.n = 6;
    ctx.n_lineages = 3;
    c[4] = cand(2, 0, "B");
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 0, 0, 0, 0, 1}, 6));
    /* a lineage without its greedy sample does not vote (and its samples are
     * still judged); a cut greedy output votes for nobody */
    ad_candidate d[5] = {cand(0, 0, "A"), cand(1, 1, "A"), cut(2, 0, "B"), cand(2, 1, "A"),
                         cand(3, 0, "A")};
    ctx = group(d, 5, 4);
    /* L0: voters L2 (no answer), L3 (A): A. L1: L0 A, L2 -, L3 A: A. L2: L0, L3: A.
     * L3: L0 A, L2 -: A. The cut L2 greedy has no answer: 0. */
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 1, 0, 1, 1}, 5));
    /* a single lineage has nobody to agree with */
    ad_candidate s[2] = {cand(0, 0, "A"), cand(0, 1, "A")};
    ctx = group(s, 2, 1);
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 0}, 2));
    /* order does not matter */
    ad_candidate r[8] = {cand(3, 1, "A"), cand(2, 0, "A"), cand(0, 1, "B"), cand(1, 1, "A"),
                         cand(0, 0, "A"), cand(3, 0, "B"), cand(2, 1, "A"), cand(1, 0, "A")};
    ctx = group(r, 8, 4);
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 1, 0, 1, 1, 0, 1, 1}, 8));
    /* rl rounds: one lineage's samples against the others' answers given
     * apart (voters B B A: mode B; the samples' own answers do not vote) */
    ad_candidate mine[4] = {cand(0, 0, "A"), cand(0, 1, "B"), cand(0, 2, "A"), cut(0, 3, "B")};
    ad_candidate others[3] = {cand(1, 0, "B"), cand(2, 0, "B"), cand(3, 0, "A")};
    ctx = group(mine, 4, 4);
    ctx.others = others;
    ctx.n_others = 3;
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 1, 0, 0}, 4));
    /* a tie among the others (B, A), or a cut voter's non-answer: nobody agrees */
    others[1] = cut(2, 0, "B");
    CHECK(score("lineages", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, 0, 0, 0}, 4));
    ctx.others = NULL;
    CHECK(score("lineages", &ctx, out) == AD_ERR); /* n_others without the array */
}

static void test_self_certainty(void) {
    CHECK(ad_reward_certainty_mean(3.0, 4) == 0.75);
    CHECK(ad_reward_certainty_mean(3.0, 0) == 0.0);
    ad_candidate c[4] = {cand(0, 0, "12"), cut(0, 1, "1234"), cand(0, 2, "1"), cand(0, 3, "")};
    c[3].n_tokens = 0; /* a zero budget: nothing generated */
    double cert[4] = {0.5, 1.25, 3.0, NAN};
    ad_reward_ctx ctx = group(c, 4, 1);
    double out[4];
    CHECK(refused("self_certainty", &ctx, "needs the candidates' self-certainty"));
    ctx.certainty = cert;
    CHECK(score("self_certainty", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0.5, 1.25, 3.0, 0.0}, 4)); /* no EOS keeps its mean */
    cert[2] = INFINITY;
    CHECK(refused("self_certainty", &ctx, "candidate 2 (lineage 0, sample 2)"));
    cert[2] = NAN;
    CHECK(refused("self_certainty", &ctx, "not a finite number"));
}

static void test_judge(void) {
    ad_candidate c[4] = {cand(0, 0, "1"), cand(0, 1, "2"), cut(0, 2, "3"), cand(0, 3, "4")};
    c[0].score = 0.9;
    c[1].score = 0.0;
    c[3].score = 1.0; /* c[2] unscored (NaN): 0 */
    ad_reward_ctx ctx = group(c, 4, 1);
    double out[4];
    CHECK(score("judge", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0.9, 0.0, 0.0, 1.0}, 4));
    c[1].score = 1.5;
    CHECK(refused("judge", &ctx, "candidate 1 (lineage 0, sample 1) has score 1.5"));
    c[1].score = -0.25;
    CHECK(refused("judge", &ctx, "not a probability"));
}

static void test_length(void) {
    /* bound 3: "123" + EOS is 4 tokens (within), "1234" + EOS too long, a cut
     * output (no EOS) -1, an empty answer + EOS within */
    ad_candidate c[5] = {cand(0, 0, "123"), cand(0, 1, "1234"), cut(0, 2, "1234"), cand(0, 3, ""),
                         cut(0, 4, "")};
    c[4].n_tokens = 0;
    size_t bound[5] = {3, 3, 3, 3, 3};
    ad_reward_ctx ctx = group(c, 5, 1);
    double out[5];
    CHECK(refused("length", &ctx, "needs the task's answer-length bounds"));
    ctx.answer_bound = bound;
    CHECK(score("length", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){0, -1, -1, 0, -1}, 5));
    bound[1] = 4;
    CHECK(score("length", &ctx, out) == AD_OK && out[1] == 0.0);
}

static void test_format(void) {
    ad_candidate c[6] = {cand(0, 0, "12"), cand(0, 1, ""),      cand(0, 2, "1234"),
                         cut(0, 3, "12"),  cand(0, 4, "x=123"), cand(0, 5, "9")};
    c[4].answer = "123"; /* the extracted answer, not the completion, must fit */
    c[5].answer = "";    /* an empty extracted answer does not parse */
    size_t bound[6] = {3, 3, 3, 3, 3, 3};
    ad_reward_ctx ctx = group(c, 6, 1);
    double out[6];
    CHECK(refused("format", &ctx, "needs the task's answer-length bounds"));
    ctx.answer_bound = bound;
    CHECK(score("format", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 0, 0, 0, 1, 0}, 6));
}

/* ---- specs ---- */

static int parses(const char *text, ad_reward_spec *s) {
    ad_error err;
    int rc = ad_reward_spec_parse(text, s, &err);
    if (rc) fprintf(stderr, "  \"%s\": %s\n", text, err.msg);
    return rc == AD_OK;
}

/* Refused with a message containing `needle`, leaving the spec unchanged. */
static int spec_refused(const char *text, const char *needle) {
    ad_reward_spec s, before;
    memset(&s, 0x5a, sizeof s);
    before = s;
    ad_error err;
    err.msg[0] = '\0';
    if (ad_reward_spec_parse(text, &s, &err) != AD_ERR) {
        fprintf(stderr, "  \"%s\" was accepted\n", text ? text : "(null)");
        return 0;
    }
    if (memcmp(&s, &before, sizeof s) != 0) return 0;
    if (!strstr(err.msg, needle)) {
        fprintf(stderr, "  \"%s\": message \"%s\" lacks \"%s\"\n", text, err.msg, needle);
        return 0;
    }
    return 1;
}

static void test_spec_parse(void) {
    ad_reward_spec s;
    CHECK(parses("majority:1, length:0.1", &s));
    CHECK(s.n == 2 && s.terms[0].reward == ad_reward_find("majority") && s.terms[0].weight == 1.0 &&
          s.terms[1].reward == ad_reward_find("length") && s.terms[1].weight == 0.1);
    CHECK(parses("verifier", &s));
    CHECK(s.n == 1 && s.terms[0].reward == ad_reward_find("verifier") && s.terms[0].weight == 1.0);
    CHECK(ad_reward_spec_uses_verifier(&s));
    CHECK(parses(" \tself_certainty : 0.5 ,format:-0.25 , judge:0,lineages:1e-3\t", &s));
    CHECK(s.n == 4 && s.terms[0].weight == 0.5 && s.terms[1].weight == -0.25 &&
          s.terms[2].weight == 0.0 && s.terms[3].weight == 1e-3);
    CHECK(!ad_reward_spec_uses_verifier(&s));
    /* every reward at once, and the canonical form parses back to the same */
    CHECK(parses("verifier:2,majority:0.1,lineages:-3,self_certainty:0.3,judge:1,length:0.7,"
                 "format:1e-9",
                 &s));
    CHECK(s.n == ad_reward_count());
    char buf[512];
    size_t need = ad_reward_spec_format(&s, buf, sizeof buf);
    CHECK(need == strlen(buf));
    CHECK(strncmp(buf, "verifier:2,majority:0.10000000000000001,", 40) == 0);
    ad_reward_spec back;
    CHECK(parses(buf, &back));
    CHECK(back.n == s.n);
    for (size_t k = 0; k < s.n && k < back.n; k++)
        CHECK(back.terms[k].reward == s.terms[k].reward &&
              back.terms[k].weight == s.terms[k].weight);
    char small[8];
    CHECK(ad_reward_spec_format(&s, small, sizeof small) == need && strlen(small) == 7);

    CHECK(spec_refused(NULL, "none given"));
    CHECK(spec_refused("", "empty"));
    CHECK(spec_refused(" \t ", "empty"));
    CHECK(spec_refused("majority:1,", "term 2 is empty"));
    CHECK(spec_refused(",majority", "term 1 is empty"));
    CHECK(spec_refused("majority,,length", "term 2 is empty"));
    CHECK(spec_refused("majority:", "term 1 (majority): missing weight"));
    CHECK(spec_refused("majority:abc", "weight \"abc\" is not a number"));
    CHECK(spec_refused("majority:1x", "weight \"1x\" is not a number"));
    CHECK(spec_refused("majority:1:2", "weight \"1:2\" is not a number"));
    CHECK(spec_refused("majority:1 2", "weight \"1 2\" is not a number"));
    CHECK(spec_refused("majority:inf", "weight \"inf\" is not finite"));
    CHECK(spec_refused("majority:nan", "is not finite"));
    CHECK(spec_refused("length:0.1, majority:1e999", "term 2 (majority): weight \"1e999\""));
    CHECK(spec_refused("majority:1, lenght:0.1", "term 2: unknown reward \"lenght\""));
    CHECK(spec_refused("lenght", "known: verifier, majority, lineages, self_certainty, judge, "
                                 "length, format"));
    CHECK(spec_refused("Majority", "unknown reward \"Majority\""));
    CHECK(spec_refused(":1", "term 1 has no reward name"));
    CHECK(spec_refused("majority:1, length:1, majority:2", "term 3: majority appears twice"));
}

/* ---- weighted sums ---- */

static void test_spec_score(void) {
    /* majority: 1 1 0 0; length (bound 2): 0 0 -1 -1; judge: .8 .5 0 .1 */
    ad_candidate c[4] = {cand(0, 0, "12"), cand(0, 1, "12"), cand(0, 2, "123"), cut(0, 3, "12")};
    c[0].score = 0.8;
    c[1].score = 0.5;
    c[3].score = 0.1;
    size_t bound[4] = {2, 2, 2, 2};
    ad_reward_ctx ctx = group(c, 4, 1);
    ctx.answer_bound = bound;
    ad_reward_spec s;
    CHECK(parses("majority:1, length:0.5, judge:-2", &s));
    double total[4], parts[3 * 4], alone[4];
    ad_error err;
    CHECK(ad_reward_spec_score(&s, &ctx, total, parts, &err) == AD_OK);
    CHECK(values_are(parts, (double[]){1, 1, 0, 0}, 4));
    CHECK(values_are(parts + 4, (double[]){0, 0, -1, -1}, 4));
    CHECK(values_are(parts + 8, (double[]){0.8, 0.5, 0, 0.1}, 4));
    CHECK(values_are(total, (double[]){1 - 1.6, 1 - 1.0, -0.5, -0.5 - 0.2}, 4));
    CHECK(ad_reward_spec_score(&s, &ctx, alone, NULL, &err) == AD_OK);
    CHECK(values_are(alone, total, 4));
    /* a term that cannot score fails the sum, and says which */
    ctx.answer_bound = NULL;
    CHECK(ad_reward_spec_score(&s, &ctx, total, NULL, &err) == AD_ERR);
    CHECK(strstr(err.msg, "reward length") != NULL);
    ctx.answer_bound = bound;
    CHECK(parses("verifier, majority", &s));
    CHECK(ad_reward_spec_score(&s, &ctx, total, parts, &err) == AD_ERR);
    CHECK(strstr(err.msg, "reward verifier: candidate 0") != NULL);
    /* a single sample, weights 0 */
    CHECK(parses("majority:0, judge", &s));
    ctx.n = 1;
    CHECK(ad_reward_spec_score(&s, &ctx, total, parts, &err) == AD_OK);
    CHECK(values_are(total, (double[]){0.8}, 1) && parts[0] == 1.0 && parts[1] == 0.8);
    /* an empty group, and bad arguments */
    ctx.n = 0;
    CHECK(ad_reward_spec_score(&s, &ctx, NULL, NULL, &err) == AD_OK);
    ctx.n = 4;
    CHECK(ad_reward_spec_score(&s, &ctx, NULL, parts, &err) == AD_ERR);
    CHECK(ad_reward_spec_score(&s, NULL, total, parts, &err) == AD_ERR);
    ad_reward_spec none = {0};
    CHECK(ad_reward_spec_score(&none, &ctx, total, parts, &err) == AD_ERR);
}

/* ---- precision ---- */

static ad_reward_precision precision_of(const ad_candidate *c, const double *r, size_t n) {
    ad_reward_precision p;
    memset(&p, 0, sizeof p);
    ad_error err;
    if (ad_reward_precision_of(c, r, n, &p, &err)) fprintf(stderr, "  precision: %s\n", err.msg);
    return p;
}

static void test_precision(void) {
    /* prompt 0: right 0, 3; wrong 1, 2; unverified 4 (ignored) */
    ad_candidate c[9] = {cand(0, 0, "a"), cand(0, 1, "b"), cand(0, 2, "c"),
                         cand(0, 3, "d"), cand(0, 4, "e"), cand(0, 0, "f"),
                         cand(0, 1, "g"), cand(0, 2, "h"), cand(0, 3, "i")};
    int verdict[9] = {1, 0, 0, 1, -1, 1, 1, 0, 1};
    for (size_t i = 0; i < 9; i++) {
        c[i].correct = verdict[i];
        c[i].prompt = i < 5 ? 0 : 1;
    }
    /* a {0,1} reward on prompt 0: rewarded 0, 1 (one right); pairs (right,
     * wrong): (0,1) tie .5, (0,2) 1, (3,1) 0, (3,2) tie .5: 2 of 4 */
    double r[9] = {1, 1, 0, 0, 1};
    ad_reward_precision p = precision_of(c, r, 5);
    CHECK(p.verified == 4 && p.rewarded == 2 && p.rewarded_right == 1 && p.pairs == 4);
    CHECK_CLOSE(p.precision, 0.5, 0, 1e-15);
    CHECK_CLOSE(p.pair_agreement, 0.5, 0, 1e-15);
    /* a continuous reward over two prompts; prompt 1: right 5, 6, 8, wrong 7.
     * prompt 0: (0,1) .9>.2, (0,2) .9>.4, (3,1) .3>.2, (3,2) .3<.4: 3 of 4;
     * prompt 1: 5 (.6) > 7 (.5), 6 (.5) = 7: .5, 8 (.1) < 7: 1.5 of 3.
     * Pairs never cross prompts: 4.5 of 7. Rewarded (>= .5): 0, 5, 6, 7 -> 3
     * right of 4. */
    double s[9] = {0.9, 0.2, 0.4, 0.3, 0.99, 0.6, 0.5, 0.5, 0.1};
    p = precision_of(c, s, 9);
    CHECK(p.verified == 8 && p.pairs == 7 && p.rewarded == 4 && p.rewarded_right == 3);
    CHECK_CLOSE(p.pair_agreement, 4.5 / 7, 0, 1e-15);
    CHECK_CLOSE(p.precision, 0.75, 0, 1e-15);
    /* the same set in another order gives the same figures */
    ad_candidate rc[9];
    double rs[9];
    for (size_t i = 0; i < 9; i++) {
        rc[i] = c[8 - i];
        rs[i] = s[8 - i];
    }
    ad_reward_precision q = precision_of(rc, rs, 9);
    CHECK(q.pairs == 7 && q.pair_agreement == p.pair_agreement && q.precision == p.precision);
    /* a perfect and a perfectly wrong reward */
    double good[9] = {1, 0, 0, 1, 0, 1, 1, 0, 1}, bad[9];
    for (size_t i = 0; i < 9; i++)
        bad[i] = 1 - good[i];
    p = precision_of(c, good, 9);
    CHECK(p.precision == 1.0 && p.pair_agreement == 1.0);
    p = precision_of(c, bad, 9);
    CHECK(p.rewarded_right == 0 && p.precision == 0.0 && p.pair_agreement == 0.0);
    /* nothing rewarded, no pair (all right), nothing verified: NaN */
    double zero[9] = {0};
    p = precision_of(c + 5, zero, 2); /* 5 and 6 are both right */
    CHECK(p.verified == 2 && p.rewarded == 0 && isnan(p.precision));
    CHECK(p.pairs == 0 && isnan(p.pair_agreement));
    p = precision_of(c + 4, zero, 1);
    CHECK(p.verified == 0 && isnan(p.precision) && isnan(p.pair_agreement));
    p = precision_of(NULL, NULL, 0);
    CHECK(p.verified == 0 && isnan(p.pair_agreement));
    /* a NaN reward: fine on an unverified candidate, an error on a verified one */
    double n4[5] = {1, 0, 0, 1, NAN};
    p = precision_of(c, n4, 5);
    CHECK(p.verified == 4 && p.pair_agreement == 1.0);
    n4[1] = NAN;
    ad_error err;
    CHECK(ad_reward_precision_of(c, n4, 5, &p, &err) == AD_ERR);
    CHECK(strstr(err.msg, "candidate 1") != NULL);
    CHECK(ad_reward_precision_of(NULL, n4, 5, &p, &err) == AD_ERR);
}

/* The majority reward's precision on a group whose majority is wrong: the
 * figure a TTRL run reports to show it is being fooled. */
static void test_precision_of_a_label_free_reward(void) {
    ad_candidate c[5] = {cand(0, 0, "41"), cand(0, 1, "41"), cand(0, 2, "41"), cand(0, 3, "42"),
                         cut(0, 4, "4")};
    int verdict[5] = {0, 0, 0, 1, 0};
    for (size_t i = 0; i < 5; i++)
        c[i].correct = verdict[i];
    ad_reward_ctx ctx = group(c, 5, 1);
    double out[5];
    CHECK(score("majority", &ctx, out) == AD_OK);
    CHECK(values_are(out, (double[]){1, 1, 1, 0, 0}, 5));
    ad_reward_precision p = precision_of(c, out, 5);
    CHECK(p.rewarded == 3 && p.precision == 0.0);
    /* right 3 vs wrong 0,1,2 (0 < 1: 0 each) and 4 (0 = 0: .5): .5 of 4 */
    CHECK(p.pairs == 4 && p.pair_agreement == 0.125);
    CHECK(score("verifier", &ctx, out) == AD_OK);
    p = precision_of(c, out, 5);
    CHECK(p.precision == 1.0 && p.pair_agreement == 1.0);
}

int main(void) {
    RUN(test_registry);
    RUN(test_common_checks);
    RUN(test_verifier);
    RUN(test_majority);
    RUN(test_lineages);
    RUN(test_self_certainty);
    RUN(test_judge);
    RUN(test_length);
    RUN(test_format);
    RUN(test_spec_parse);
    RUN(test_spec_score);
    RUN(test_precision);
    RUN(test_precision_of_a_label_free_reward);
    return test_summary();
}
