/* checkpoint_internal.h: declarations shared by the files that implement
 * checkpoint.h (checkpoint.c: directories and the atomic swap;
 * checkpoint_config.c: config.json; checkpoint_tensors.c: weights and moments).
 * Not a public header. */
#ifndef AD_MODEL_CHECKPOINT_INTERNAL_H
#define AD_MODEL_CHECKPOINT_INTERNAL_H

#include "model/checkpoint.h"

/* Largest config.json / trainer_state.json accepted, in bytes. */
#define AD_CKPT_MAX_JSON ((size_t)64 << 20)

/* Writes config.json (Hugging Face LlamaConfig fields, "position_encoding",
 * "seed", "vocab") atomically. Fails when the vocabulary size differs from
 * cfg->vocab_size or a float is not finite. */
int ad_ckpt_config_write(const char *path, const ad_model_config *cfg, const ad_vocab *v,
                         ad_error *err);

/* Reads and checks config.json into cfg and v. Messages name the path and key.
 * On error cfg and v are unspecified. */
int ad_ckpt_config_read(const char *path, ad_model_config *cfg, ad_vocab *v, ad_error *err);

/* Writes the AdamW moments as "<name>.exp_avg" / "<name>.exp_avg_sq" with the
 * step in the metadata, atomically. */
int ad_ckpt_moments_save(const char *path, const ad_model *m, const ad_adamw *opt, ad_error *err);

/* Reads the moments into opt->m / opt->v (already allocated for m) and the step
 * from the metadata into *step. On error opt is unchanged. */
int ad_ckpt_moments_load(const char *path, const ad_model *m, ad_adamw *opt, uint64_t *step,
                         ad_error *err);

#endif
