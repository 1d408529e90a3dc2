/* test_vocab.c: vocabulary building, greedy longest-match encoding, decoding,
 * and the errors for uncovered text and bad symbols. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "model/vocab.h"

static void test_chars_round_trip(void) {
    ad_vocab v;
    ad_error err = {{0}};
    CHECK(ad_vocab_from_chars(&v, "0123456789+=0+ ", &err) == AD_OK);
    CHECK(v.size == 3 + 13);
    CHECK(!strcmp(v.tokens[AD_TOK_PAD], "<pad>") && !strcmp(v.tokens[AD_TOK_BOS], "<bos>") &&
          !strcmp(v.tokens[AD_TOK_EOS], "<eos>"));
    CHECK(!strcmp(v.tokens[3], "0") && !strcmp(v.tokens[13], "+") && !strcmp(v.tokens[15], " "));
    CHECK(v.max_token_len == 1);
    CHECK(v.single_char['5'] == 8 && v.single_char['x'] == -1);
    CHECK(ad_vocab_find(&v, "=") == 14 && ad_vocab_find(&v, "<eos>") == AD_TOK_EOS);
    CHECK(ad_vocab_find(&v, "x") == -1);
    const char *text = "12+ 345=357";
    int32_t ids[64];
    size_t n;
    CHECK(ad_vocab_encode(&v, text, ids, 64, &n, &err) == AD_OK);
    CHECK(n == strlen(text));
    CHECK(ids[0] == 4 && ids[2] == 13 && ids[3] == 15);
    /* Specials are skipped when decoding. */
    int32_t with_specials[70] = {AD_TOK_BOS};
    memcpy(with_specials + 1, ids, n * sizeof *ids);
    with_specials[n + 1] = AD_TOK_EOS;
    with_specials[n + 2] = AD_TOK_PAD;
    char out[64];
    CHECK(ad_vocab_decode(&v, with_specials, n + 3, out, sizeof out, &err) == AD_OK);
    CHECK_MSG(!strcmp(out, text), "decoded '%s'", out);
    CHECK(ad_vocab_encode(&v, "", ids, 0, &n, &err) == AD_OK && n == 0);
}

static void test_longest_match(void) {
    /* Maze-style node labels "1".."99" are single tokens; greedy longest match. */
    const char *syms[110];
    char labels[99][12];
    size_t k = 0;
    for (int i = 1; i <= 99; i++) {
        snprintf(labels[i - 1], sizeof labels[0], "%d", i);
        syms[k++] = labels[i - 1];
    }
    syms[k++] = " ";
    syms[k++] = ">";
    syms[k++] = "0";
    syms[k++] = "->";
    ad_vocab v;
    ad_error err = {{0}};
    CHECK_MSG(ad_vocab_build(&v, syms, k, &err) == AD_OK, "%s", err.msg);
    CHECK(v.size == 3 + 103 && v.max_token_len == 2);
    int32_t ids[16];
    size_t n;
    CHECK(ad_vocab_encode(&v, "12 3->45>", ids, 16, &n, &err) == AD_OK);
    CHECK(n == 6);
    const char *want[6] = {"12", " ", "3", "->", "45", ">"};
    for (size_t i = 0; i < n && i < 6; i++)
        CHECK_MSG(!strcmp(v.tokens[ids[i]], want[i]), "token %zu is '%s'", i, v.tokens[ids[i]]);
    CHECK(ad_vocab_encode(&v, "1200", ids, 16, &n, &err) == AD_OK);
    CHECK(n == 3 && !strcmp(v.tokens[ids[0]], "12") && !strcmp(v.tokens[ids[1]], "0") &&
          !strcmp(v.tokens[ids[2]], "0"));
    char out[32];
    CHECK(ad_vocab_decode(&v, ids, n, out, sizeof out, &err) == AD_OK && !strcmp(out, "1200"));
    /* A UTF-8 multi-byte symbol is one token. */
    const char *utf[] = {"\xc3\xa9", "a"};
    CHECK(ad_vocab_build(&v, utf, 2, &err) == AD_OK);
    CHECK(ad_vocab_encode(&v,
                          "a\xc3\xa9"
                          "a",
                          ids, 16, &n, &err) == AD_OK &&
          n == 3 && ids[1] == 3);
}

static void test_encode_errors(void) {
    ad_vocab v;
    ad_error err = {{0}};
    CHECK(ad_vocab_from_chars(&v, "0123456789+=", &err) == AD_OK);
    int32_t ids[8];
    size_t n = 99;
    CHECK(ad_vocab_encode(&v, "12+x4", ids, 8, &n, &err) == AD_ERR && n == 0);
    CHECK_MSG(!strcmp(err.msg, "character 'x' at position 3 of \"12+x4\" is not in the vocabulary"),
              "%s", err.msg);
    CHECK(ad_vocab_encode(&v, "1\n", ids, 8, &n, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "byte 0x0A at position 1"), "%s", err.msg);
    CHECK(ad_vocab_encode(&v, "123456789", ids, 8, &n, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "needs more than 8 tokens"), "%s", err.msg);
    /* Special token text is not matched as a special. */
    CHECK(ad_vocab_encode(&v, "<bos>", ids, 8, &n, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "character '<' at position 0"), "%s", err.msg);
    char out[4];
    int32_t bad[2] = {3, 15};
    CHECK(ad_vocab_decode(&v, bad, 2, out, sizeof out, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "token id 15 at position 1 is outside"), "%s", err.msg);
    int32_t neg[1] = {-1};
    CHECK(ad_vocab_decode(&v, neg, 1, out, sizeof out, &err) == AD_ERR);
    int32_t many[4] = {3, 4, 5, 6};
    CHECK(ad_vocab_decode(&v, many, 4, out, sizeof out, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "too small"), "%s", err.msg);
    CHECK(ad_vocab_decode(&v, many, 3, out, sizeof out, &err) == AD_OK && !strcmp(out, "012"));
}

static void test_build_errors(void) {
    ad_vocab v;
    ad_error err = {{0}};
    const char *empty[] = {"a", ""};
    CHECK(ad_vocab_build(&v, empty, 2, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "symbol 1 is empty"), "%s", err.msg);
    const char *null_sym[] = {NULL};
    CHECK(ad_vocab_build(&v, null_sym, 1, &err) == AD_ERR);
    const char *longs[] = {"0123456789abcdef"};
    CHECK(ad_vocab_build(&v, longs, 1, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "longer than 15 bytes"), "%s", err.msg);
    const char *special[] = {"<sep>"};
    CHECK(ad_vocab_build(&v, special, 1, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "looks like a special token"), "%s", err.msg);
    const char *angles[] = {"<", ">", "<="};
    CHECK(ad_vocab_build(&v, angles, 3, &err) == AD_OK && v.size == 6);
    const char *bad_utf8[] = {"\xc3"};
    CHECK(ad_vocab_build(&v, bad_utf8, 1, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "not valid UTF-8"), "%s", err.msg);
    CHECK(ad_vocab_from_chars(&v, "ab\xc3\xa9", &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "byte 0xC3 at position 2 is not ASCII"), "%s", err.msg);
    /* Too many tokens. */
    static char names[AD_VOCAB_MAX][16];
    static const char *syms[AD_VOCAB_MAX];
    for (int i = 0; i < AD_VOCAB_MAX; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        syms[i] = names[i];
    }
    CHECK(ad_vocab_build(&v, syms, AD_VOCAB_MAX - 3, &err) == AD_OK && v.size == AD_VOCAB_MAX);
    CHECK(ad_vocab_build(&v, syms, AD_VOCAB_MAX - 2, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "more than 1024 tokens"), "%s", err.msg);
}

int main(void) {
    RUN(test_chars_round_trip);
    RUN(test_longest_match);
    RUN(test_encode_errors);
    RUN(test_build_errors);
    return test_summary();
}
