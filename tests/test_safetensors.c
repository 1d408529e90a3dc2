/* test_safetensors.c: the safetensors reader and writer: round trips, refusal of
 * every kind of malformed file with a message naming the problem, a fuzz loop
 * over corrupted and truncated files, and an independent check with Python. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "model/safetensors.h"
#include "st_python.h"
#include "util/atomic_file.h"
#include "util/rng.h"

static char tmpdir[256];

static void path_in_tmp(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* A file with tensors of several dtypes, a scalar, an empty tensor, metadata. */
static float f32_data[12];
static int32_t i32_data[5] = {-7, 0, 1, 2147483647, -2147483647 - 1};
static uint8_t u8_data[3] = {1, 2, 255};
static double f64_data[1] = {3.25};
static int64_t i64_data[4] = {5, -6, 7, 2147483647};

static int write_sample(const char *path, ad_error *err) {
    for (int i = 0; i < 12; i++)
        f32_data[i] = (float)i * 0.5f - 1.0f;
    ad_safetensors_entry e[] = {
        {"bytes", AD_DTYPE_U8, 1, {3}, u8_data},
        {"model.weight", AD_DTYPE_F32, 2, {3, 4}, f32_data},
        {"ids", AD_DTYPE_I32, 1, {5}, i32_data},
        {"scalar", AD_DTYPE_F64, 0, {0}, f64_data},
        {"empty", AD_DTYPE_F32, 2, {0, 4}, NULL},
        {"long_ids", AD_DTYPE_I64, 2, {2, 2}, i64_data},
    };
    ad_safetensors_meta meta[] = {{"format", "pt"}, {"note", "quote \" and \\ and \xc3\xa9"}};
    return ad_safetensors_write(path, e, sizeof e / sizeof e[0], meta, 2, err);
}

static void test_round_trip(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "sample.safetensors");
    ad_error err = {{0}};
    CHECK_MSG(write_sample(path, &err) == AD_OK, "%s", err.msg);
    ad_safetensors *f = NULL;
    CHECK_MSG(ad_safetensors_open(&f, path, 0, &err) == AD_OK, "%s", err.msg);
    if (!f) return;
    CHECK(ad_safetensors_count(f) == 6);
    float w[12];
    size_t shape34[2] = {3, 4};
    CHECK(ad_safetensors_read_f32(f, "model.weight", 2, shape34, w, &err) == AD_OK);
    CHECK(memcmp(w, f32_data, sizeof w) == 0);
    int32_t ids[5];
    size_t shape5[1] = {5};
    CHECK(ad_safetensors_read_i32(f, "ids", 1, shape5, ids, &err) == AD_OK);
    CHECK(memcmp(ids, i32_data, sizeof ids) == 0);
    int32_t l[4];
    size_t shape22[2] = {2, 2};
    CHECK_MSG(ad_safetensors_read_i32(f, "long_ids", 2, shape22, l, &err) == AD_OK, "%s", err.msg);
    CHECK(l[0] == 5 && l[1] == -6 && l[2] == 7 && l[3] == 2147483647);
    const ad_safetensors_tensor *t = ad_safetensors_find(f, "bytes");
    CHECK(t && t->dtype == AD_DTYPE_U8 && t->ndim == 1 && t->shape[0] == 3 && t->nbytes == 3 &&
          memcmp(t->data, u8_data, 3) == 0);
    t = ad_safetensors_find(f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 8 && !memcmp(t->data, f64_data, 8));
    t = ad_safetensors_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->numel == 0 && t->nbytes == 0);
    CHECK(ad_safetensors_find(f, "nope") == NULL);
    const char *v = ad_safetensors_metadata(f, "note");
    CHECK(v && !strcmp(v, "quote \" and \\ and \xc3\xa9"));
    CHECK(ad_safetensors_metadata(f, "format") &&
          !strcmp(ad_safetensors_metadata(f, "format"), "pt"));
    CHECK(ad_safetensors_metadata(f, "absent") == NULL);
    /* The writer pads the header to 8 bytes and orders tensors by element size,
     * so every tensor is naturally aligned in the file. */
    size_t prev_es = 8;
    for (size_t i = 0; i < ad_safetensors_count(f); i++) {
        t = ad_safetensors_at(f, i);
        size_t es = ad_dtype_size(t->dtype);
        CHECK(es <= prev_es);
        prev_es = es;
        CHECK(((uintptr_t)t->data - (uintptr_t)ad_safetensors_at(f, 0)->data) % es == 0);
    }
    ad_safetensors_close(f);

    char *buf;
    size_t len;
    CHECK(ad_read_file(path, 1 << 20, &buf, &len, &err) == AD_OK);
    uint64_t n = 0;
    memcpy(&n, buf, 8);
    CHECK(n % 8 == 0 && 8 + n <= len && buf[8] == '{');
    CHECK(buf[8 + n - 1] == ' ' || buf[8 + n - 1] == '}');
    free(buf);
}

/* A header of only "__metadata__" with n keys k000000.. (and `dup` once more). */
static char *metadata_file(size_t n, const char *dup, size_t *len) {
    size_t cap = 64 + 14 * (n + 1);
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t at = 8;
    at += (size_t)snprintf(buf + at, cap - at, "{\"__metadata__\":{");
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s\"k%06zu\":\"v\"", i ? "," : "", i);
    if (dup) at += (size_t)snprintf(buf + at, cap - at, ",\"%s\":\"v\"", dup);
    at += (size_t)snprintf(buf + at, cap - at, "}}");
    while ((at - 8) % 8)
        buf[at++] = ' ';
    uint64_t h = at - 8;
    for (int i = 0; i < 8; i++)
        buf[i] = (char)(h >> (8 * i));
    *len = at;
    return buf;
}

/* "__metadata__": duplicates found by sorting (80,000 keys took seconds with a
 * pairwise scan), and a bound on the key count. */
static void test_metadata_bounds(void) {
    size_t len;
    ad_safetensors *f = NULL;
    ad_error err = {{0}};
    char *buf = metadata_file(60000, NULL, &len);
    CHECK(buf && ad_safetensors_open_memory(&f, buf, len, "m", &err) == AD_OK);
    ad_safetensors_close(f);
    free(buf);
    f = NULL;
    buf = metadata_file(60000, "k031337", &len);
    CHECK(buf && ad_safetensors_open_memory(&f, buf, len, "m", &err) == AD_ERR && !f);
    CHECK_MSG(strstr(err.msg, "the key \"k031337\" appears twice in one object"), "%s", err.msg);
    free(buf);
    buf = metadata_file(AD_SAFETENSORS_MAX_META + 1, NULL, &len);
    CHECK(buf && ad_safetensors_open_memory(&f, buf, len, "m", &err) == AD_ERR && !f);
    CHECK_MSG(strstr(err.msg, "\"__metadata__\" has 65537 keys, more than the 65536 allowed"), "%s",
              err.msg);
    free(buf);
}

static void test_read_errors(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "model.safetensors");
    float w[17 * 32] = {0};
    ad_safetensors_entry e[] = {{"lm_head.weight", AD_DTYPE_F32, 2, {17, 32}, w},
                                {"ids", AD_DTYPE_I32, 1, {5}, i32_data},
                                {"big", AD_DTYPE_I64, 1, {2}, (int64_t[]){1, (int64_t)1 << 40}}};
    ad_error err = {{0}};
    CHECK_MSG(ad_safetensors_write(path, e, 3, NULL, 0, &err) == AD_OK, "%s", err.msg);
    ad_safetensors *f = NULL;
    CHECK(ad_safetensors_open(&f, path, 0, &err) == AD_OK);
    if (!f) return;
    float out[19 * 32];
    size_t want[2] = {19, 32};
    CHECK(ad_safetensors_read_f32(f, "lm_head.weight", 2, want, out, &err) == AD_ERR);
    char expect[700];
    snprintf(expect, sizeof expect,
             "%s: tensor 'lm_head.weight' has shape [17, 32], expected [19, 32]", path);
    CHECK_MSG(!strcmp(err.msg, expect), "got '%s'", err.msg);
    size_t one[1] = {32};
    CHECK(ad_safetensors_read_f32(f, "lm_head.weight", 1, one, out, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "has shape [17, 32], expected [32]"), "%s", err.msg);
    CHECK(ad_safetensors_read_f32(f, "model.norm.weight", 1, one, out, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "tensor 'model.norm.weight' is missing"), "%s", err.msg);
    size_t five[1] = {5};
    CHECK(ad_safetensors_read_f32(f, "ids", 1, five, out, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "has dtype I32, expected F32"), "%s", err.msg);
    int32_t ids[2];
    size_t two[1] = {2};
    CHECK(ad_safetensors_read_i32(f, "big", 1, two, ids, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "does not fit in int32"), "%s", err.msg);
    size_t w2[2] = {17, 32};
    CHECK(ad_safetensors_read_i32(f, "lm_head.weight", 2, w2, ids, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "has dtype F32, expected I32 or I64"), "%s", err.msg);
    ad_safetensors_close(f);

    CHECK(ad_safetensors_open(&f, path, 100, &err) == AD_ERR && f == NULL);
    CHECK_MSG(strstr(err.msg, "more than the limit"), "%s", err.msg);
    path_in_tmp(path, sizeof path, "absent.safetensors");
    CHECK(ad_safetensors_open(&f, path, 0, &err) == AD_ERR && f == NULL);
    CHECK_MSG(strstr(err.msg, "absent.safetensors: cannot open"), "%s", err.msg);
}

/* Builds a file image: length prefix (hlen, or strlen(header) when hlen is
 * UINT64_MAX), the header text, then data_len bytes of data. */
static unsigned char *image(const char *header, uint64_t hlen, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    if (hlen == UINT64_MAX) hlen = h;
    *len = 8 + h + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        b[8 + h + i] = (unsigned char)i;
    return b;
}

/* Opens an image and checks it is refused with a message containing `want`. */
static void expect_refused(const char *what, const char *header, uint64_t hlen, size_t data_len,
                           const char *want) {
    size_t len;
    unsigned char *b = image(header, hlen, data_len, &len);
    ad_safetensors *f = (ad_safetensors *)1;
    ad_error err = {{0}};
    int rc = ad_safetensors_open_memory(&f, b, len, "bad.safetensors", &err);
    CHECK_MSG(rc == AD_ERR && f == NULL, "%s was accepted", what);
    CHECK_MSG(strstr(err.msg, "bad.safetensors: ") == err.msg && strstr(err.msg, want),
              "%s: message '%s' lacks '%s'", what, err.msg, want);
    if (rc == AD_OK) ad_safetensors_close(f);
    free(b);
}

static void test_refusals(void) {
    const char *ok1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    /* Sanity: the well-formed version of the images below is accepted. */
    size_t len;
    unsigned char *b = image(ok1, UINT64_MAX, 8, &len);
    ad_safetensors *f = NULL;
    ad_error err = {{0}};
    CHECK_MSG(ad_safetensors_open_memory(&f, b, len, "good", &err) == AD_OK, "%s", err.msg);
    ad_safetensors_close(f);
    free(b);

    ad_safetensors *g = (ad_safetensors *)1;
    CHECK(ad_safetensors_open_memory(&g, "", 0, "bad.safetensors", &err) == AD_ERR && !g);
    CHECK_MSG(strstr(err.msg, "bad.safetensors: file is 0 bytes, too short"), "%s", err.msg);
    CHECK(ad_safetensors_open_memory(&g, "\x10\0\0\0\0", 5, "bad.safetensors", &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "file is 5 bytes, too short"), "%s", err.msg);

    expect_refused("header longer than file", ok1, 1000, 8, "larger than the rest of the file");
    expect_refused("oversized header", ok1, (uint64_t)1 << 40, 8, "exceeds the limit");
    expect_refused("huge header length", ok1, UINT64_MAX - 1, 8, "exceeds the limit");
    expect_refused("empty header", "", 0, 8, "does not start with a JSON object");
    expect_refused("array header", "[1, 2]", UINT64_MAX, 0, "does not start with a JSON object");
    expect_refused("invalid JSON", "{\"a\":{\"dtype\":\"F32\",", UINT64_MAX, 8, "not valid JSON");
    expect_refused("trailing garbage", "{} x", UINT64_MAX, 0, "characters after the JSON value");
    expect_refused("invalid UTF-8", "{\"\xff\":1}", UINT64_MAX, 0, "not valid UTF-8");
    expect_refused("entry not an object", "{\"a\":3}", UINT64_MAX, 0, "not an object");
    expect_refused("missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", UINT64_MAX, 8,
                   "missing \"dtype\"");
    expect_refused("unknown dtype",
                   "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", UINT64_MAX,
                   8, "tensor 'a': unknown dtype \"F33\"");
    expect_refused("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}",
                   UINT64_MAX, 8, "invalid \"shape\"");
    expect_refused("negative shape",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", UINT64_MAX,
                   8, "non-negative integers");
    expect_refused("fractional shape",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,6]}}", UINT64_MAX,
                   6, "non-negative integers");
    expect_refused("string shape",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
                   UINT64_MAX, 8, "non-negative integers");
    expect_refused("overflowing shape",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                   "\"data_offsets\":[0,8]}}",
                   UINT64_MAX, 8, "overflows");
    expect_refused(
        "too many dims",
        "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
        UINT64_MAX, 1, "more than 8 dimensions");
    expect_refused("shape/offset mismatch",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", UINT64_MAX,
                   8, "dtype F32 and shape [3] need 12 bytes but data_offsets [0, 8] span 8");
    expect_refused("one offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}",
                   UINT64_MAX, 8, "must be two non-negative integers");
    expect_refused("reversed offsets",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", UINT64_MAX,
                   8, "end before they begin");
    expect_refused("offsets out of bounds",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[100,108]}}",
                   UINT64_MAX, 8, "reach past the end of the data section");
    expect_refused("truncated data", ok1, UINT64_MAX, 7, "reach past the end of the data section");
    expect_refused("overlapping tensors",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   UINT64_MAX, 12, "tensors 'a' and 'b' overlap");
    expect_refused("gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   UINT64_MAX, 12, "gap of 4 bytes");
    expect_refused("uncovered tail", ok1, UINT64_MAX, 12, "4 bytes after the last tensor");
    expect_refused("duplicate tensor",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   UINT64_MAX, 8, "the key \"a\" appears twice in one object");
    expect_refused("metadata not object", "{\"__metadata__\":[1]}", UINT64_MAX, 0,
                   "\"__metadata__\" is not a JSON object");
    expect_refused("metadata non-string", "{\"__metadata__\":{\"k\":1}}", UINT64_MAX, 0,
                   "metadata value for key 'k' is not a string");
}

static void test_writer_refusals(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "w.safetensors");
    float x[2] = {1, 2};
    ad_error err = {{0}};
    ad_safetensors_entry dup[] = {{"a", AD_DTYPE_F32, 1, {2}, x}, {"a", AD_DTYPE_F32, 1, {1}, x}};
    CHECK(ad_safetensors_write(path, dup, 2, NULL, 0, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "tensor name 'a' given twice"), "%s", err.msg);
    ad_safetensors_entry reserved[] = {{"__metadata__", AD_DTYPE_F32, 1, {2}, x}};
    CHECK(ad_safetensors_write(path, reserved, 1, NULL, 0, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "invalid tensor name"), "%s", err.msg);
    ad_safetensors_entry bad_dtype[] = {{"a", (ad_dtype)99, 1, {2}, x}};
    CHECK(ad_safetensors_write(path, bad_dtype, 1, NULL, 0, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "invalid dtype"), "%s", err.msg);
    ad_safetensors_entry no_data[] = {{"a", AD_DTYPE_F32, 1, {2}, NULL}};
    CHECK(ad_safetensors_write(path, no_data, 1, NULL, 0, &err) == AD_ERR);
    ad_safetensors_meta meta[] = {{"k", "1"}, {"k", "2"}};
    ad_safetensors_entry one[] = {{"a", AD_DTYPE_F32, 1, {2}, x}};
    CHECK(ad_safetensors_write(path, one, 1, meta, 2, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "metadata key 'k' given twice"), "%s", err.msg);
    CHECK(access(path, F_OK) != 0); /* nothing was written */
    /* An empty file (no tensors) is valid. */
    CHECK(ad_safetensors_write(path, NULL, 0, NULL, 0, &err) == AD_OK);
    ad_safetensors *f = NULL;
    CHECK_MSG(ad_safetensors_open(&f, path, 0, &err) == AD_OK, "%s", err.msg);
    CHECK(f && ad_safetensors_count(f) == 0);
    ad_safetensors_close(f);
}

/* Opens a possibly corrupt image; if accepted, touches every tensor's bytes so
 * that ASan would see any out-of-bounds view. Returns 1 when accepted. */
static int open_and_touch(const unsigned char *b, size_t len) {
    ad_safetensors *f = NULL;
    ad_error err = {{0}};
    if (ad_safetensors_open_memory(&f, b, len, "fuzz", &err) != AD_OK) {
        CHECK(f == NULL && strncmp(err.msg, "fuzz: ", 6) == 0 && strlen(err.msg) > 6);
        return 0;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < ad_safetensors_count(f); i++) {
        const ad_safetensors_tensor *t = ad_safetensors_at(f, i);
        for (size_t j = 0; j < t->nbytes; j++)
            sum += ((const unsigned char *)t->data)[j];
    }
    ad_safetensors_close(f);
    return 1 + (int)(sum & 0);
}

static void test_fuzz(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "fuzz.safetensors");
    ad_error err = {{0}};
    CHECK(write_sample(path, &err) == AD_OK);
    char *buf;
    size_t len;
    CHECK(ad_read_file(path, 1 << 20, &buf, &len, &err) == AD_OK);
    if (!buf) return;
    unsigned char *copy = malloc(len);
    /* Every truncation is refused (the data section must be covered exactly). */
    size_t accepted = 0;
    for (size_t cut = 0; cut < len; cut++)
        accepted += open_and_touch((unsigned char *)buf, cut);
    CHECK(accepted == 0);
    CHECK(open_and_touch((unsigned char *)buf, len) == 1);
    /* Random byte flips: must never crash; flips in the data section are fine. */
    ad_rng rng;
    ad_rng_seed(&rng, 42);
    int iters = test_quick() ? 10000 : 50000, n_ok = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(copy, buf, len);
        int flips = 1 + (int)ad_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = ad_rng_below(&rng, len);
            int mode = (int)ad_rng_below(&rng, 3);
            if (mode == 0)
                copy[pos] ^= (unsigned char)(1u << ad_rng_below(&rng, 8));
            else if (mode == 1)
                copy[pos] = (unsigned char)ad_rng_below(&rng, 256);
            else
                copy[pos] = "{}[]\",:0123456789-. e"[ad_rng_below(&rng, 21)];
        }
        size_t n = ad_rng_below(&rng, 8) == 0 ? ad_rng_below(&rng, len + 1) : len;
        n_ok += open_and_touch(copy, n);
    }
    CHECK(n_ok > 0 && n_ok < iters / 2); /* both paths exercised, mostly refusals */
    free(copy);
    free(buf);
}

static void test_python_reader(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "py.safetensors");
    ad_error err = {{0}};
    CHECK(write_sample(path, &err) == AD_OK);
    char out[4096];
    int rc = st_python_check(path, out, sizeof out);
    if (rc == ST_PYTHON_ABSENT) {
        fprintf(stderr, "  note: /usr/bin/python3 absent, Python reader check skipped\n");
        return;
    }
    CHECK_MSG(rc == 0, "python check failed: %s", out);
    /* Python's per-tensor byte checksums must match ours. */
    ad_safetensors *f = NULL;
    CHECK(ad_safetensors_open(&f, path, 0, &err) == AD_OK);
    if (!f) return;
    for (size_t i = 0; i < ad_safetensors_count(f); i++) {
        const ad_safetensors_tensor *t = ad_safetensors_at(f, i);
        uint32_t sum = 0;
        for (size_t j = 0; j < t->nbytes; j++)
            sum += ((const unsigned char *)t->data)[j];
        char line[256];
        snprintf(line, sizeof line, "%s %s ", t->name, ad_dtype_name(t->dtype));
        const char *p = strstr(out, line);
        CHECK_MSG(p != NULL, "python did not list %s", t->name);
        if (!p) continue;
        p = strchr(p + strlen(line), ' ');
        CHECK(p && strtoul(p + 1, NULL, 10) == sum);
    }
    CHECK(strstr(out, "ok 6") != NULL);
    ad_safetensors_close(f);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ad_test_safetensors.%ld", (long)getpid());
    ad_error err;
    if (ad_mkdir_p(tmpdir, &err) != AD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    RUN(test_round_trip);
    RUN(test_read_errors);
    RUN(test_metadata_bounds);
    RUN(test_refusals);
    RUN(test_writer_refusals);
    RUN(test_fuzz);
    RUN(test_python_reader);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
