/* checkpoint.h: a model checkpoint is a directory:
 *   model.safetensors     weights, Hugging Face Llama names, [out, in] layout, F32
 *   config.json           Hugging Face LlamaConfig fields + "position_encoding" + "vocab"
 *   optimizer.safetensors AdamW moments ("<param name>.exp_avg" / ".exp_avg_sq"), optional
 *   trainer_state.json    caller-defined JSON (optimizer step, schedule, rng state...), optional
 *
 * Saving writes a complete new directory DIR.tmp.<pid>, fsyncs it, then swaps it
 * in (DIR -> DIR.old, tmp -> DIR, remove DIR.old), so a crash leaves either the
 * old or the new checkpoint whole; loading falls back to DIR.old when DIR is
 * missing after such a crash. Files read from disk are untrusted: every length,
 * offset, shape and dtype is checked, and a bad file is refused with a message
 * naming the file and what is wrong. */
#ifndef AD_MODEL_CHECKPOINT_H
#define AD_MODEL_CHECKPOINT_H

#include "model/model.h"
#include "model/optimizer.h"
#include "model/vocab.h"
#include "util/error.h"

/* Saves model + vocab, and optionally optimizer moments (opt may be NULL) and a
 * trainer-state JSON object text (may be NULL). On error the old checkpoint is
 * untouched. */
int ad_checkpoint_save(const char *dir, const ad_model *m, const ad_vocab *v, const ad_adamw *opt,
                       const char *trainer_state_json, ad_error *err);

/* Loads a checkpoint: creates *m from config.json and model.safetensors, fills
 * *v. When opt is not NULL and optimizer.safetensors exists, allocates and
 * fills opt (opt->cfg is left as the caller set it; opt->step comes from the
 * trainer state's "optimizer_step" key when present; without an
 * optimizer file opt->m and opt->v are NULL and opt->n is 0). When trainer_state_json is
 * not NULL it receives a malloc'd copy of trainer_state.json (or NULL if there
 * is none). On error nothing is allocated and *m is NULL. */
int ad_checkpoint_load(const char *dir, ad_model **m, ad_vocab *v, ad_adamw *opt,
                       char **trainer_state_json, ad_error *err);

/* Removes what an interrupted save left beside a whole DIR: DIR.old and the
 * DIR.tmp.<pid> of processes that no longer run (a save does this too, but a
 * checkpoint may never be saved again after a resume). Only for the writer of
 * DIR. Fails when DIR.old holds a file that is not part of a checkpoint. */
int ad_checkpoint_tidy(const char *dir, ad_error *err);

/* 1 when dir holds a checkpoint (config.json present, or DIR.old recoverable). */
int ad_checkpoint_exists(const char *dir);

/* Low level: writes the model's tensors to a safetensors file atomically. */
int ad_safetensors_save_model(const char *path, const ad_model *m, ad_error *err);
/* Low level: reads a safetensors file into the model's tensors; every tensor
 * of the model must be present with dtype F32 and the exact shape. */
int ad_safetensors_load_model(const char *path, ad_model *m, ad_error *err);

#endif
