/* verdict.h: the outcome of checking one answer: correct or not, a score and why.
 *
 * Shared by the built-in verifiers (task.h) and the sandboxed external verifier
 * pool (sandbox.h). Not for errors of the system itself: a verifier that cannot
 * run at all is an AD_ERR with an ad_error, a wrong or unreadable answer is a
 * verdict. */
#ifndef AD_TASKS_VERDICT_H
#define AD_TASKS_VERDICT_H

#define AD_VERDICT_REASON_MAX 200

typedef struct ad_verdict {
    int correct;                        /* 1 when the answer is right */
    double score;                       /* in [0, 1]; built-in tasks give 1 or 0 */
    char reason[AD_VERDICT_REASON_MAX]; /* "correct", or what is wrong (never empty) */
} ad_verdict;

/* Marks v correct with score 1 and reason "correct"; returns AD_OK. Can't fail. */
int ad_verdict_pass(ad_verdict *v);

/* Marks v incorrect with score 0 and a formatted reason; returns AD_OK (a wrong
 * answer is not an error). This function can't fail. */
int ad_verdict_fail(ad_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
