/* judge.h: the self-taught judge (V-STaR / Self-Taught Evaluator analogue): a
 * second small transformer of the run, trained by the same engine to read a
 * prompt and a candidate answer and say whether the answer is right.
 *
 * Its sequences are the task's, with one verdict token after EOS:
 *
 *     BOS prompt completion EOS verdict        verdict: AD_JUDGE_YES or AD_JUDGE_NO
 *
 * and its only training target is the verdict (loss_from = the verdict's
 * position), so it is trained by the SFT objective unchanged. Its vocabulary
 * is the task's plus the two verdict tokens (refused when the task already
 * uses either). Its score of an answer is
 *
 *     P(yes) = p(YES) / (p(YES) + p(NO))      at the position after EOS,
 *
 * the two-way softmax of the verdict logits, in [0, 1].
 *
 * Where its labels come from (the run's filters, or the checker when a run may
 * use it), when it trains and how it is used (a filter and a pair rule) is the
 * run's business (run_judge.c); this module is the model side only. */
#ifndef AD_LOOP_JUDGE_H
#define AD_LOOP_JUDGE_H

#include <stddef.h>

#include "model/model.h"
#include "model/trainer.h"
#include "model/vocab.h"
#include "util/error.h"

#define AD_JUDGE_YES "\xE2\x9C\x93" /* U+2713 CHECK MARK */
#define AD_JUDGE_NO "\xE2\x9C\x97"  /* U+2717 BALLOT X */

/* The judge's vocabulary: the task vocabulary's symbols, then YES and NO.
 * Fails when the task uses either verdict symbol. */
int ad_judge_vocab(ad_vocab *judge, const ad_vocab *task, ad_error *err);

/* Loads a judge checkpoint (a run's DIR/ckpt/judge/rNNNN) for scoring: its
 * model (weights only) and vocabulary, which must be exactly the judge
 * vocabulary of `task` (same symbols, same ids), else the error names the
 * first difference. The model's context is widened to at least min_seq_len
 * (the judge has no learned positions, so a longer context is well defined).
 * On error *m is NULL. */
int ad_judge_load(const char *dir, const ad_vocab *task, size_t min_seq_len, ad_model **m,
                  ad_vocab *judge, ad_error *err);

/* Encodes one training example: BOS prompt completion EOS verdict (verdict
 * 1: YES, 0: NO), with the loss on the verdict alone. Fails like
 * ad_example_encode (a character outside the vocabulary, longer than max_len). */
int ad_judge_example(ad_example *ex, const ad_vocab *judge, const char *prompt,
                     const char *completion, int verdict, size_t max_len, ad_error *err);

/* Scores n answers: p_yes[i] = P(yes) of (prompts[i], completions[i]), by
 * teacher-forced scoring of both verdicts, in one batch; a NULL completion (an
 * answer that never reached EOS) is not scored and gets NaN. On error p_yes
 * is undefined. */
int ad_judge_score(ad_model *m, const ad_vocab *judge, const char *const *prompts,
                   const char *const *completions, size_t n, double *p_yes, ad_error *err);

#endif
