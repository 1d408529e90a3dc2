/* vocab.c: building a vocabulary from a task's symbols, and greedy longest-match
 * encoding / decoding of text. Not for storing it: checkpoint.c writes the token
 * list into config.json. */
#include "model/vocab.h"

#include <stdio.h>
#include <string.h>

#include "util/utf8.h"

static const char *const specials[3] = {"<pad>", "<bos>", "<eos>"};

/* Adds one symbol unless it is already present. */
static int add_symbol(ad_vocab *v, const char *sym, size_t index, ad_error *err) {
    size_t len = sym ? strlen(sym) : 0;
    if (len == 0) return ad_error_set(err, "vocabulary: symbol %zu is empty", index);
    if (len > AD_TOKEN_MAX_LEN)
        return ad_error_set(err, "vocabulary: symbol %zu \"%s\" is longer than %d bytes", index,
                            sym, AD_TOKEN_MAX_LEN);
    if (len >= 2 && sym[0] == '<' && sym[len - 1] == '>')
        return ad_error_set(err,
                            "vocabulary: symbol \"%s\" looks like a special token (<...> is "
                            "reserved)",
                            sym);
    if (!ad_utf8_valid(sym, len))
        return ad_error_set(err, "vocabulary: symbol %zu is not valid UTF-8", index);
    if (ad_vocab_find(v, sym) >= 0) return AD_OK;
    if (v->size == AD_VOCAB_MAX)
        return ad_error_set(err, "vocabulary: more than %d tokens", AD_VOCAB_MAX);
    memcpy(v->tokens[v->size], sym, len + 1);
    if (len == 1) v->single_char[(unsigned char)sym[0]] = (int32_t)v->size;
    if (len > v->max_token_len) v->max_token_len = len;
    v->size++;
    return AD_OK;
}

int ad_vocab_build(ad_vocab *v, const char *const *symbols, size_t n, ad_error *err) {
    memset(v, 0, sizeof *v);
    for (int c = 0; c < 256; c++)
        v->single_char[c] = -1;
    for (int i = 0; i < 3; i++)
        strcpy(v->tokens[i], specials[i]);
    v->size = 3;
    for (size_t i = 0; i < n; i++)
        if (add_symbol(v, symbols[i], i, err) != AD_OK) {
            memset(v, 0, sizeof *v);
            return AD_ERR;
        }
    return AD_OK;
}

int ad_vocab_from_chars(ad_vocab *v, const char *chars, ad_error *err) {
    size_t n = strlen(chars);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)chars[i] >= 0x80)
            return ad_error_set(err,
                                "vocabulary: byte 0x%02X at position %zu is not ASCII; build a "
                                "vocabulary of UTF-8 symbols instead",
                                (unsigned char)chars[i], i);
    char one[256][2];
    const char *syms[256];
    /* Distinct bytes in order of first appearance. */
    int seen[256] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)chars[i];
        if (seen[c]++) continue;
        one[c][0] = (char)c;
        one[c][1] = '\0';
        syms[k++] = one[c];
    }
    return ad_vocab_build(v, syms, k, err);
}

/* Longest token matching text at its start; -1 when none. Specials never match. */
static int32_t longest_match(const ad_vocab *v, const char *text, size_t *len) {
    if (v->max_token_len <= 1) {
        *len = 1;
        return v->single_char[(unsigned char)text[0]];
    }
    int32_t best = -1;
    size_t best_len = 0;
    for (size_t id = 3; id < v->size; id++) {
        const char *t = v->tokens[id];
        size_t j = 0;
        while (t[j] && t[j] == text[j])
            j++;
        if (!t[j] && j > best_len) {
            best = (int32_t)id;
            best_len = j;
        }
    }
    *len = best_len;
    return best;
}

int ad_vocab_encode(const ad_vocab *v, const char *text, int32_t *ids, size_t cap, size_t *n,
                    ad_error *err) {
    *n = 0;
    size_t i = 0, count = 0;
    while (text[i]) {
        size_t len;
        int32_t id = longest_match(v, text + i, &len);
        if (id < 0) {
            unsigned char c = (unsigned char)text[i];
            if (c >= 0x20 && c < 0x7F)
                return ad_error_set(err,
                                    "character '%c' at position %zu of \"%.60s\" is not in the "
                                    "vocabulary",
                                    c, i, text);
            return ad_error_set(err,
                                "byte 0x%02X at position %zu of \"%.60s\" is not in the vocabulary",
                                c, i, text);
        }
        if (count == cap)
            return ad_error_set(err, "text \"%.60s\" needs more than %zu tokens", text, cap);
        ids[count++] = id;
        i += len;
    }
    *n = count;
    return AD_OK;
}

int ad_vocab_decode(const ad_vocab *v, const int32_t *ids, size_t n, char *out, size_t cap,
                    ad_error *err) {
    if (cap == 0) return ad_error_set(err, "decode: output buffer has no room");
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= v->size) {
            out[0] = '\0';
            return ad_error_set(err,
                                "decode: token id %d at position %zu is outside the "
                                "vocabulary of %zu tokens",
                                (int)ids[i], i, v->size);
        }
        if (ids[i] < 3) continue;
        size_t len = strlen(v->tokens[ids[i]]);
        if (pos + len >= cap) {
            out[0] = '\0';
            return ad_error_set(err, "decode: output buffer of %zu bytes is too small", cap);
        }
        memcpy(out + pos, v->tokens[ids[i]], len);
        pos += len;
    }
    out[pos] = '\0';
    return AD_OK;
}

int32_t ad_vocab_find(const ad_vocab *v, const char *token) {
    for (size_t id = 0; id < v->size; id++)
        if (!strcmp(v->tokens[id], token)) return (int32_t)id;
    return -1;
}
