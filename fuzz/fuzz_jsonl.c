/* fuzz_jsonl.c: JSONL lines as `tasks verify` and `score` read them from
 * stdin: each line's {"prompt", "answer"} is verified by every built-in task
 * (whose verifiers parse the prompt: a crafted prompt must give an error or a
 * verdict, never a crash), sized, and encoded with each task's vocabulary as
 * a training or scoring example. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/trainer.h"
#include "model/vocab.h"
#include "tasks/task.h"

#define MAX_TASKS 16

static ad_task *tasks[MAX_TASKS];
static ad_vocab vocabs[MAX_TASKS];
static size_t n_tasks;

static void open_tasks(void) {
    ad_error err = {{0}};
    for (size_t i = 0; i < ad_task_builtin_count() && n_tasks < MAX_TASKS; i++) {
        size_t n;
        if (ad_task_open(ad_task_builtin_name(i), NULL, &tasks[n_tasks], &err) != AD_OK)
            fuzz_fail("cannot open a built-in task", err.msg);
        const char *const *tokens = ad_task_tokens(tasks[n_tasks], &n);
        if (ad_vocab_build(&vocabs[n_tasks], tokens, n, &err) != AD_OK)
            fuzz_fail("cannot build a task's vocabulary", err.msg);
        n_tasks++;
    }
}

/* One line: every task verifies, sizes and encodes it. */
static void use_line(const char *line, size_t len) {
    cJSON *o = cJSON_ParseWithLength(line, len);
    const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "prompt"));
    const char *answer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "answer"));
    if (!answer) answer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "completion"));
    for (size_t i = 0; prompt && answer && i < n_tasks; i++) {
        ad_error err = {{0}};
        ad_verdict v;
        size_t budget;
        if (ad_task_verify(tasks[i], prompt, answer, &v, &err) == AD_OK &&
            !(v.score >= 0 && v.score <= 1 && v.reason[0]))
            fuzz_fail("a verdict out of range", ad_task_name(tasks[i]));
        (void)ad_task_max_answer_len(tasks[i], prompt, &budget, &err);
        ad_example ex = {0};
        if (ad_example_encode(&ex, &vocabs[i], prompt, answer, 4096, &err) == AD_OK)
            ad_example_free(&ex);
    }
    cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_tasks) open_tasks();
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        use_line(p, n);
        p += n + 1;
    }
    return 0;
}
