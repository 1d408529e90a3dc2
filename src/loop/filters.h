/* filters.h: the select stage: filters that decide which self-generated
 * candidates become training labels, each decision recorded per candidate.
 *
 * A round's candidates are one flat array: for each prompt, for each lineage,
 * one or more samples (sample 0 is the greedy decode by convention). Every
 * filter is a pure function over that array: it judges every candidate, sets
 * the filter's bit in `ran`, sets it in `passed` when the candidate passes, and
 * clears `kept` when it does not. Filters are independent tests (each looks at
 * the whole array, not at what earlier filters kept), so their AND does not
 * depend on the order they run in; the one exception is ad_filter_unique, which
 * removes duplicate labels among the kept candidates and so runs last.
 *
 * What "the answer" is: votes and diversity compare `answer` (the task's
 * extracted answer) or, when it is NULL, the whole completion (the reference
 * paper votes on complete outputs). A candidate that did not reach EOS has no
 * answer: it never wins a vote and never matches a winning answer.
 *
 * Not here: decoding, the verifier itself (its verdicts arrive in `correct`),
 * or what happens to the kept labels (the round builds a dataset from them). */
#ifndef AD_LOOP_FILTERS_H
#define AD_LOOP_FILTERS_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/level.h"

/* Filter identifiers: bit positions in ad_candidate.ran / .passed. Values are
 * stored in the run store, so new filters are appended, never renumbered.
 * ad_filter_run applies them in registry order (ad_filter_at), which is
 * ascending id except that unique comes last. */
typedef enum ad_filter_id {
    AD_FILTER_COMPLETE = 0,      /* reached EOS within the budget */
    AD_FILTER_LENGTH = 1,        /* not much shorter than the longest of its level */
    AD_FILTER_VOTE_SAMPLES = 2,  /* modal answer of one model's k samples */
    AD_FILTER_VOTE_LINEAGES = 3, /* modal greedy answer across m lineages */
    AD_FILTER_CONFIDENCE = 4,    /* mean token log-prob */
    AD_FILTER_VERIFIER = 5,      /* the task's verifier says correct */
    AD_FILTER_UNIQUE = 6,        /* first kept copy of a (prompt, completion) */
    AD_FILTER_JUDGE = 7,         /* the self-taught judge says yes */
    AD_FILTER_SHARPEN = 8,       /* the most likely complete sample of one model */
    AD_FILTER_COUNT = 9
} ad_filter_id;

/* The registered filter's name: "complete", "length", "vote_samples",
 * "vote_lineages", "confidence", "verifier", "unique", "judge", "sharpen"; "?"
 * for an unknown id. This function can't fail. */
const char *ad_filter_name(ad_filter_id id);

typedef struct ad_candidate {
    size_t prompt;          /* index of the prompt within the round */
    ad_level level;         /* the prompt's level */
    size_t lineage;         /* which independently seeded model produced it */
    size_t sample;          /* index among that model's samples for the prompt; 0 = greedy */
    const char *completion; /* decoded text without EOS; owned by the caller, not NULL */
    const char *answer;     /* what votes compare; NULL means the completion */
    size_t n_tokens;        /* generated tokens, EOS included when reached */
    double logprob_sum;     /* sum of those tokens' log-probs (nats, untempered) */
    int hit_eos;            /* 1 when decoding stopped at EOS, 0 when the budget ran out */
    int kept;               /* 1 after ad_filter_begin; cleared by any failed filter */
    uint32_t ran;           /* bit (1u << id) set when filter id judged this candidate */
    uint32_t passed;        /* bit (1u << id) set when it passed filter id */
    int correct;            /* verifier verdict: 1 right, 0 wrong, -1 not checked.
                             * Reporting only, unless the verifier filter is on. */
    double score; /* a learned judge's probability that the answer is right, NAN when not scored */
} ad_candidate;

/* Checks the array (completion not NULL; no two candidates with the same
 * (prompt, lineage, sample)) and resets every candidate to kept = 1, ran =
 * passed = 0. Call before the filters. On error nothing is changed. */
int ad_filter_begin(ad_candidate *c, size_t n, ad_error *err);

/* Drops candidates that did not reach EOS. This function can't fail. */
void ad_filter_complete(ad_candidate *c, size_t n);

/* Length filter. Group: all candidates of one level (every lineage and
 * sample). L = the largest n_tokens among the group's complete candidates; a
 * candidate fails when L - n_tokens >= min_shortfall. Candidates that did not
 * reach EOS do not set L and are not judged short (ad_filter_complete drops
 * them). A group without a complete candidate passes whole. min_shortfall must
 * be >= 1. */
int ad_filter_length(ad_candidate *c, size_t n, size_t min_shortfall, ad_error *err);

/* Majority vote across the k samples of one model. Group: (prompt, lineage),
 * k = the group's size. The group's mode (ad_vote_mode; ties: no mode) is
 * accepted when count / k >= min_share (with 1e-9 slack, so 0.6 of 5 is 3);
 * every candidate whose answer equals an accepted mode passes, the rest fail.
 * min_share must be in (0, 1]. */
int ad_filter_vote_samples(ad_candidate *c, size_t n, double min_share, ad_error *err);

/* Majority vote across m lineages. Group: one prompt. Voters: the sample-0
 * (greedy) candidate of each lineage; a missing lineage counts as dissent. The
 * mode (ties: no mode) is accepted when at least min_agree of the m lineages
 * gave it; every candidate of the prompt (any sample) whose answer equals an
 * accepted mode passes. Requires 1 <= min_agree <= m and every lineage < m. */
int ad_filter_vote_lineages(ad_candidate *c, size_t n, size_t n_lineages, size_t min_agree,
                            ad_error *err);

/* Grouping for the confidence filter's top fraction. */
typedef enum ad_conf_group {
    AD_CONF_GROUP_ALL = 0,    /* the whole array */
    AD_CONF_GROUP_LEVEL = 1,  /* each level */
    AD_CONF_GROUP_PROMPT = 2, /* each prompt: top 1/k of k samples is best-of-k */
} ad_conf_group;

typedef struct ad_conf_params {
    int use_top_fraction;    /* 0: threshold rule; 1: top-fraction rule */
    double min_mean_logprob; /* threshold rule: pass when mean >= this (nats/token) */
    double top_fraction;     /* top rule: in (0, 1]; the ceil(f * g) best of a group of g pass */
    ad_conf_group group;     /* top rule only */
} ad_conf_params;

/* Mean token log-prob of a candidate: logprob_sum / n_tokens; -INFINITY when
 * n_tokens == 0 or the sum is NaN. This function can't fail. */
double ad_candidate_mean_logprob(const ad_candidate *c);

/* Confidence filter. Threshold rule: pass when the mean token log-prob is >=
 * min_mean_logprob. Top rule: within each group, rank by mean log-prob
 * (highest first, ties by array position) and pass the first ceil(f * g)
 * (with 1e-9 slack, so 0.7 of 10 is 7). */
int ad_filter_confidence(ad_candidate *c, size_t n, const ad_conf_params *p, ad_error *err);

/* Verifier filter: pass when correct == 1. A candidate with correct == -1
 * (never verified) is an error; on error nothing is changed. */
int ad_filter_verifier(ad_candidate *c, size_t n, ad_error *err);

/* Judge filter: pass when a learned judge's score (ad_candidate.score, its
 * probability that the answer is right) is >= min_score. A candidate with a
 * NaN score (not scored: the judge had not learned yet, or the output never
 * reached EOS) is not judged: its bits stay clear and it stays kept. A score
 * outside [0, 1] or a min_score outside [0, 1] is an error. */
int ad_filter_judge(ad_candidate *c, size_t n, double min_score, ad_error *err);

/* Sharpen filter (SFT-sharpening, Huang et al. 2024: the model's likelihood
 * as its own verifier, best-of-k by log pi(y|x)). Group: (prompt, lineage),
 * as votes over samples: one model's samples, lineages never pooled. The one
 * candidate with the highest sequence log-likelihood passes and the rest of
 * the group fail: logprob_sum, the log-probability of the whole output (EOS
 * included) as in the paper, not the per-token mean the confidence filter
 * uses. Ties: the lowest sample index. An output that did not reach EOS (or
 * whose sum is NaN) never wins; a group where none reached EOS passes
 * nothing. The same choice as best-of-k evaluation by likelihood
 * (metrics.h's ad_best_of_choose). Fails only when out of memory. */
int ad_filter_sharpen(ad_candidate *c, size_t n, ad_error *err);

/* Removes duplicate labels: among the kept candidates of one prompt with
 * identical completions (the training label is the completion, so different
 * reasoning that reaches the same answer stays), the one with the lowest
 * (lineage, sample) passes and the others fail; candidates not kept pass (they
 * are not duplicates of a label). Run it after every other filter so the kept
 * set holds one copy of each label. */
int ad_filter_unique(ad_candidate *c, size_t n, ad_error *err);

/* Which filters to run and with what parameters. */
typedef struct ad_filter_params {
    int complete;            /* drop outputs that did not reach EOS */
    int length;              /* length filter ...         */
    size_t length_shortfall; /* ... with this d (paper: 2 for addition, 1 for multiplication) */
    int vote_samples;        /* vote over one model's k samples ... */
    double vote_min_share;   /* ... keeping the mode at this share */
    int vote_lineages;       /* vote across lineages ... */
    size_t n_lineages;       /* ... m */
    size_t vote_min_agree;   /* ... t (paper: 4 of 5) */
    int confidence;          /* confidence filter ... */
    ad_conf_params conf;     /* ... with these parameters */
    int verifier;            /* the verifier filter (rejection sampling: STaR / RFT) */
    int unique;              /* one copy of each (prompt, completion) label */
    int judge;               /* the self-taught judge ... */
    double judge_min;        /* ... says yes at this score */
    int sharpen;             /* each model's most likely complete sample per prompt */
} ad_filter_params;

/* Everything off except `complete` and `unique`; the values behind each switch
 * are the reference paper's (d 2, share 0.5, 4 of 5 lineages, threshold -inf,
 * top fraction 1 per prompt). This function can't fail. */
ad_filter_params ad_filter_default_params(void);

/* ---- the registry ----------------------------------------------------------
 *
 * Each filter is one file, src/loop/filter_<name>.c, that defines its public
 * ad_filter_<name>() above and an ad_filter_ops entry; the registry (a table in
 * filters.c) lists the entries in application order. That order is ascending
 * id, except that unique is last: it is the one filter that reads the others'
 * decisions (the kept flags), so it must follow all of them. Every other
 * filter is an independent test, so its place does not change any decision.
 *
 * How to add a filter: append its id before AD_FILTER_COUNT (never renumber:
 * ids are stored); write filter_<name>.c with ad_filter_<name>() (check the
 * parameters it reads, then judge every candidate with filters_internal.h's
 * helpers) and `const ad_filter_ops ad_filter_ops_<name>`; declare the entry in
 * filters_internal.h and list it in filters.c's registry just before unique;
 * add its switch and parameters to ad_filter_params (and their defaults to
 * ad_filter_default_params), its rule to the comments above, and its tests to
 * tests/test_filters.c. Exposing it in the run config is run_config.c's job. */

typedef struct ad_filter_ops {
    ad_filter_id id;     /* its bit in ran / passed */
    const char *name;    /* "complete", "length", ... (stored in figures: never rename) */
    const char *summary; /* one line, for docs and --help */
    /* 1 when this configuration turns the filter on. This function can't fail. */
    int (*enabled)(const ad_filter_params *p);
    /* Checks the parameters it reads in p, then judges every candidate (after
     * ad_filter_begin): the filter's ad_filter_<name>() with p's values. */
    int (*run)(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err);
} ad_filter_ops;

/* The number of registered filters (AD_FILTER_COUNT), and filter i in
 * application order (NULL when i >= the count). These functions can't fail. */
size_t ad_filter_count_registered(void);
const ad_filter_ops *ad_filter_at(size_t i);

/* The filter with this name; NULL when unknown or name is NULL. This function
 * can't fail. */
const ad_filter_ops *ad_filter_find(const char *name);

/* Checks the arguments (p not NULL; c not NULL when n > 0), runs
 * ad_filter_begin, then every registered filter whose enabled() says so, in
 * registry order. On error the candidates may hold partial decisions; run it
 * again after fixing the cause. */
int ad_filter_run(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err);

/* Per-filter tallies over an array: how many candidates each filter judged and
 * passed, and how many are kept overall. */
typedef struct ad_filter_tally {
    size_t judged[AD_FILTER_COUNT];
    size_t passed[AD_FILTER_COUNT];
    size_t kept;
    size_t total;
} ad_filter_tally;

/* Counts ran/passed bits and kept flags. This function can't fail. */
void ad_filter_count(const ad_candidate *c, size_t n, ad_filter_tally *out);

#endif
