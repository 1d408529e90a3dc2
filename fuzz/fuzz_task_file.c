/* fuzz_task_file.c: a file task ("file:PATH", JSONL problems) opened through
 * the real loader, then used as a run uses it: every level's problems drawn,
 * verified against their own answers, and sized. No external verifier (no
 * processes are started). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "tasks/task.h"
#include "util/rng.h"

/* Draws a few problems of level lv and checks each against its answer. */
static void use_level(const ad_task *t, ad_level lv, ad_rng *rng) {
    ad_error err = {{0}};
    for (int i = 0; i < 4; i++) {
        ad_problem p = {0};
        if (ad_task_generate(t, lv, rng, &p, &err) != AD_OK) {
            ad_problem_free(&p);
            return;
        }
        ad_verdict v;
        size_t budget;
        if (p.has_answer && ad_task_verify(t, p.prompt.s, p.answer.s, &v, &err) == AD_OK &&
            !v.correct)
            fuzz_fail("a file problem's own answer is wrong", p.prompt.s);
        (void)ad_task_max_answer_len(t, p.prompt.s, &budget, &err);
        ad_problem_free(&p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char name[600];
    snprintf(name, sizeof name, "file:%s", fuzz_write("task.jsonl", data, size));
    ad_task *t = NULL;
    ad_error err = {{0}};
    if (ad_task_open(name, NULL, &t, &err) != AD_OK) {
        if (t) fuzz_fail("open failed but returned a task", err.msg);
        return 0;
    }
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    ad_level lo = ad_task_level_min(t), hi = ad_task_level_max(t);
    use_level(t, lo, &rng);
    use_level(t, hi, &rng);
    size_t n_tokens;
    (void)ad_task_tokens(t, &n_tokens);
    ad_task_free(t);
    return 0;
}
