/* task_subset_sum.c: choose some of the given numbers so that they sum to the
 * target.
 *
 * Prompt: the numbers (1-99) joined by ',', then ':' and the target, then '='.
 * Answer: a non-empty selection of the numbers (each at most as often as it is
 * given), in any order, joined by ','. "12,5,33,8:45=" -> "12,33" or "33,12"
 * (or "12,5,8,..." when that also sums to 45). The generator plants a random
 * non-empty subset (each number in it with probability 1/2) and poses its sum;
 * the reference answer lists the planted subset in prompt order. The level is
 * how many numbers. */
#include <string.h>

#include "tasks/task_impl.h"

#define SUBSET_MIN 2
#define SUBSET_MAX 64
#define SUBSET_MAX_NUMBER 99
#define SUBSET_VERIFY_MAX_NUMBERS 1000

static const char *const subset_tokens[] = {"0", "1", "2", "3", "4", "5", "6",
                                            "7", "8", "9", ",", ":", "="};

static int subset_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                           ad_error *err) {
    size_t n = (size_t)lv.a;
    uint64_t numbers[SUBSET_MAX];
    unsigned char chosen[SUBSET_MAX];
    size_t n_chosen;
    for (size_t i = 0; i < n; i++)
        numbers[i] = 1 + ad_rng_below(rng, SUBSET_MAX_NUMBER);
    do {
        n_chosen = 0;
        for (size_t i = 0; i < n; i++)
            n_chosen += chosen[i] = (unsigned char)(ad_rng_u64(rng) >> 63);
    } while (n_chosen == 0);
    uint64_t target = 0;
    ad_text_clear(&out->prompt);
    ad_text_clear(&out->answer);
    for (size_t i = 0, k = 0; i < n; i++) {
        if ((i > 0 && ad_text_putc(&out->prompt, ',', err)) ||
            ad_text_put_uint(&out->prompt, numbers[i], err))
            return AD_ERR;
        if (!chosen[i]) continue;
        target += numbers[i];
        if ((k++ > 0 && ad_text_putc(&out->answer, ',', err)) ||
            ad_text_put_uint(&out->answer, numbers[i], err))
            return AD_ERR;
    }
    if (ad_text_putc(&out->prompt, ':', err) || ad_text_put_uint(&out->prompt, target, err) ||
        ad_text_putc(&out->prompt, '=', err))
        return AD_ERR;
    return AD_OK;
}

/* Parses "N,N,...:T=" into numbers (count *n) and the target. */
static int scan_prompt(const char *prompt, uint64_t *numbers, size_t *n, uint64_t *target,
                       ad_error *err) {
    const char *p = prompt;
    if (!ad_scan_number_list(&p, ':', numbers, SUBSET_VERIFY_MAX_NUMBERS, n) ||
        !ad_scan_uint(&p, target) || p[0] != '=' || p[1] != '\0')
        return ad_prompt_error(err, "subset-sum", prompt, "N,N,...,N:TARGET=  (at most 1000 N)");
    return AD_OK;
}

/* Checks the picked numbers (k of them) against the given ones and the target. */
static int check_selection(ad_verdict *v, const uint64_t *numbers, size_t n, const uint64_t *picked,
                           size_t k, uint64_t target) {
    unsigned char used[SUBSET_VERIFY_MAX_NUMBERS] = {0};
    uint64_t sum = 0;
    for (size_t j = 0; j < k; j++) {
        size_t i, seen = 0;
        for (i = 0; i < n; i++) {
            if (numbers[i] != picked[j]) continue;
            seen = 1;
            if (!used[i]) break;
        }
        if (i == n)
            return ad_verdict_fail(v,
                                   seen ? "%llu is used more often than it is given"
                                        : "%llu is not one of the given numbers",
                                   (unsigned long long)picked[j]);
        used[i] = 1;
        sum += picked[j];
    }
    if (sum != target)
        return ad_verdict_fail(v, "the numbers sum to %llu, not %llu", (unsigned long long)sum,
                               (unsigned long long)target);
    return ad_verdict_pass(v);
}

static int subset_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                         ad_error *err) {
    uint64_t numbers[SUBSET_VERIFY_MAX_NUMBERS], picked[SUBSET_VERIFY_MAX_NUMBERS], target;
    size_t n, k;
    if (scan_prompt(prompt, numbers, &n, &target, err)) return AD_ERR;
    if (!*answer) return ad_verdict_fail(v, "empty answer");
    if (ad_verdict_foreign_char(v, answer, "0123456789,")) return AD_OK;
    size_t commas = 0;
    for (const char *p = answer; *p; p++)
        commas += *p == ',';
    if (commas >= n) return ad_verdict_fail(v, "more numbers than the %zu given", n);
    const char *p = answer;
    if (!ad_scan_number_list(&p, '\0', picked, n, &k))
        return ad_verdict_fail(v, "not a list of numbers separated by ','");
    return check_selection(v, numbers, n, picked, k, target);
}

/* At most every number: the prompt's list before the ':'. */
static int subset_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    uint64_t numbers[SUBSET_VERIFY_MAX_NUMBERS], target;
    size_t n;
    if (scan_prompt(prompt, numbers, &n, &target, err)) return AD_ERR;
    *out = (size_t)(strchr(prompt, ':') - prompt);
    return AD_OK;
}

const ad_task_ops ad_task_subset_sum_ops = {
    .name = "subset-sum",
    .description = "pick some of the numbers so that they sum to the target",
    .knob = "numbers",
    .min = {SUBSET_MIN, AD_LEVEL_SCALAR},
    .max = {SUBSET_MAX, AD_LEVEL_SCALAR},
    .tokens = subset_tokens,
    .n_tokens = sizeof subset_tokens / sizeof subset_tokens[0],
    .generate = subset_generate,
    .verify = subset_verify,
    .max_answer_len = subset_max_len,
};
