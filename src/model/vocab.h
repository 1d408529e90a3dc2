/* vocab.h: the token vocabulary: special tokens plus the symbols a task uses.
 *
 * Ids 0, 1, 2 are "<pad>", "<bos>", "<eos>"; the rest are the task's symbols in
 * a fixed order. A symbol is usually one character, but may be a short string
 * (the maze task's node labels "1".."99" are one token each). Encoding is
 * greedy longest-match from left to right; a text that cannot be covered is an
 * error naming the offending character and its position. The vocabulary is
 * stored in a checkpoint's config.json as the list of token strings by id. */
#ifndef AD_MODEL_VOCAB_H
#define AD_MODEL_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define AD_TOK_PAD 0
#define AD_TOK_BOS 1
#define AD_TOK_EOS 2
#define AD_VOCAB_MAX 1024
#define AD_TOKEN_MAX_LEN 15

typedef struct ad_vocab {
    size_t size;                                     /* including the 3 specials */
    char tokens[AD_VOCAB_MAX][AD_TOKEN_MAX_LEN + 1]; /* NUL-terminated token strings by id */
    size_t max_token_len;                            /* longest non-special token, in bytes */
    int32_t single_char[256];                        /* id of each 1-byte token, -1 if none */
} ad_vocab;

/* Builds a vocabulary from n symbol strings (duplicates are removed, order kept).
 * Fails on empty, oversized or special-looking ("<...>") symbols. */
int ad_vocab_build(ad_vocab *v, const char *const *symbols, size_t n, ad_error *err);

/* Builds a vocabulary with one token per distinct byte of `chars` (ASCII only:
 * multi-byte UTF-8 symbols go through ad_vocab_build). */
int ad_vocab_from_chars(ad_vocab *v, const char *chars, ad_error *err);

/* Encodes text into ids (no BOS/EOS added). Writes at most cap ids; *n gets the
 * count. Fails on an uncovered character or when cap is too small. */
int ad_vocab_encode(const ad_vocab *v, const char *text, int32_t *ids, size_t cap, size_t *n,
                    ad_error *err);

/* Decodes ids into text, skipping specials; out has room for cap bytes (NUL
 * included). Fails when out is too small or an id is out of range. */
int ad_vocab_decode(const ad_vocab *v, const int32_t *ids, size_t n, char *out, size_t cap,
                    ad_error *err);

/* Id of a token string, or -1. */
int32_t ad_vocab_find(const ad_vocab *v, const char *token);

#endif
