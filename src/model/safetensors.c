/* safetensors.c: a validating reader and an atomic writer for safetensors files.
 *
 * The reader holds the whole file in memory and checks every byte of structure
 * before it hands out a tensor: the header length against the file and a cap,
 * UTF-8 and JSON syntax, each entry's dtype, shape and data_offsets, and that
 * the tensors tile the data section exactly. Not for memory-mapping files larger
 * than RAM. */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"
#include "util/json.h"
#include "util/utf8.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

struct ad_safetensors {
    char *path;
    unsigned char *buf; /* the whole file */
    size_t len;
    size_t n;
    ad_safetensors_tensor *tensors; /* sorted by data offset */
    size_t n_meta;
    char **meta; /* [2 * n_meta]: key, value, key, value... */
};

static const struct {
    const char *name;
    size_t size;
} dtype_table[AD_DTYPE_COUNT] = {
    [AD_DTYPE_BOOL] = {"BOOL", 1},       [AD_DTYPE_U8] = {"U8", 1},
    [AD_DTYPE_I8] = {"I8", 1},           [AD_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [AD_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [AD_DTYPE_I16] = {"I16", 2},
    [AD_DTYPE_U16] = {"U16", 2},         [AD_DTYPE_F16] = {"F16", 2},
    [AD_DTYPE_BF16] = {"BF16", 2},       [AD_DTYPE_I32] = {"I32", 4},
    [AD_DTYPE_U32] = {"U32", 4},         [AD_DTYPE_F32] = {"F32", 4},
    [AD_DTYPE_F64] = {"F64", 8},         [AD_DTYPE_I64] = {"I64", 8},
    [AD_DTYPE_U64] = {"U64", 8},
};

size_t ad_dtype_size(ad_dtype dtype) {
    return (unsigned)dtype < AD_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

const char *ad_dtype_name(ad_dtype dtype) {
    return (unsigned)dtype < AD_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

int ad_dtype_parse(const char *name, ad_dtype *out) {
    for (int i = 0; i < AD_DTYPE_COUNT; i++)
        if (!strcmp(name, dtype_table[i].name)) {
            *out = (ad_dtype)i;
            return AD_OK;
        }
    return AD_ERR;
}

/* ---- reader ---------------------------------------------------------------- */

/* JSON numbers are doubles; integers above 2^53 cannot be represented exactly. */
#define MAX_JSON_INT 9007199254740992.0

/* Reads a non-negative integer JSON number exactly into *out. */
static int json_size(const cJSON *item, size_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0 && d <= MAX_JSON_INT) || d != (double)(uint64_t)d) return 0;
    if ((uint64_t)d > SIZE_MAX) return 0;
    *out = (size_t)(uint64_t)d;
    return 1;
}

/* Formats "[a, b, c]" into buf. This function can't fail (it truncates). */
static void format_shape(char *buf, size_t cap, size_t ndim, const size_t *shape) {
    size_t pos = 0;
    pos += (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < ndim && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%zu", i ? ", " : "", shape[i]);
    if (pos < cap) snprintf(buf + pos, cap - pos, "]");
}

/* Parses the "__metadata__" object: string values only, at most
 * AD_SAFETENSORS_MAX_META keys (each once: the strict parser refused
 * duplicate keys). */
static int parse_metadata(ad_safetensors *f, const cJSON *obj, ad_error *err) {
    if (!cJSON_IsObject(obj)) return ad_error_set(err, "\"__metadata__\" is not a JSON object");
    size_t n = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        n++;
    if (n > AD_SAFETENSORS_MAX_META)
        return ad_error_set(err, "\"__metadata__\" has %zu keys, more than the %d allowed", n,
                            AD_SAFETENSORS_MAX_META);
    f->meta = calloc(2 * n + 1, sizeof *f->meta);
    if (!f->meta) return ad_error_set(err, "out of memory reading the metadata");
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return ad_error_set(err, "metadata value for key '%s' is not a string", it->string);
        f->meta[2 * f->n_meta] = strdup(it->string);
        f->meta[2 * f->n_meta + 1] = strdup(it->valuestring);
        f->n_meta++;
        if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1])
            return ad_error_set(err, "out of memory reading the metadata");
    }
    return AD_OK;
}

/* Parses one tensor entry; t->data is set later from offsets begin/end. */
static int parse_tensor(ad_safetensors_tensor *t, const cJSON *obj, size_t *begin, size_t *end,
                        ad_error *err) {
    const char *name = t->name;
    if (!cJSON_IsObject(obj)) return ad_error_set(err, "tensor '%s': entry is not an object", name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!cJSON_IsString(dt)) return ad_error_set(err, "tensor '%s': missing \"dtype\"", name);
    if (ad_dtype_parse(dt->valuestring, &t->dtype) != AD_OK)
        return ad_error_set(err, "tensor '%s': unknown dtype \"%.40s\"", name, dt->valuestring);
    if (!cJSON_IsArray(shape))
        return ad_error_set(err, "tensor '%s': missing or invalid \"shape\"", name);
    t->ndim = 0;
    t->numel = 1;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (t->ndim == AD_SAFETENSORS_MAX_DIMS)
            return ad_error_set(err, "tensor '%s': more than %d dimensions", name,
                                AD_SAFETENSORS_MAX_DIMS);
        size_t v;
        if (!json_size(d, &v))
            return ad_error_set(err, "tensor '%s': shape entries must be non-negative integers",
                                name);
        if (v && t->numel > SIZE_MAX / v)
            return ad_error_set(err, "tensor '%s': shape product overflows", name);
        t->shape[t->ndim++] = v;
        t->numel *= v;
    }
    size_t es = ad_dtype_size(t->dtype);
    if (t->numel > SIZE_MAX / es)
        return ad_error_set(err, "tensor '%s': byte size overflows", name);
    t->nbytes = t->numel * es;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_size(offs->child, begin) ||
        !json_size(offs->child->next, end))
        return ad_error_set(err, "tensor '%s': \"data_offsets\" must be two non-negative integers",
                            name);
    if (*end < *begin)
        return ad_error_set(err, "tensor '%s': data_offsets [%zu, %zu] end before they begin", name,
                            *begin, *end);
    if (*end - *begin != t->nbytes) {
        char s[200];
        format_shape(s, sizeof s, t->ndim, t->shape);
        return ad_error_set(err,
                            "tensor '%s': dtype %s and shape %s need %zu bytes but data_offsets "
                            "[%zu, %zu] span %zu",
                            name, ad_dtype_name(t->dtype), s, t->nbytes, *begin, *end,
                            *end - *begin);
    }
    return AD_OK;
}

typedef struct span {
    size_t begin, end, index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Checks that the spans tile [0, data_len) exactly, then orders f->tensors by
 * offset and points their data into the buffer. */
static int place_tensors(ad_safetensors *f, span *sp, const unsigned char *data, size_t data_len,
                         ad_error *err) {
    for (size_t i = 0; i < f->n; i++)
        if (sp[i].end > data_len)
            return ad_error_set(err,
                                "tensor '%s': data_offsets [%zu, %zu] reach past the end of the "
                                "data section (%zu bytes; file truncated?)",
                                f->tensors[sp[i].index].name, sp[i].begin, sp[i].end, data_len);
    qsort(sp, f->n, sizeof *sp, span_cmp);
    size_t expect = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (sp[i].begin < expect)
            return ad_error_set(err, "tensors '%s' and '%s' overlap in the data section",
                                f->tensors[sp[i - 1].index].name, f->tensors[sp[i].index].name);
        if (sp[i].begin > expect)
            return ad_error_set(err, "gap of %zu bytes in the data section before tensor '%s'",
                                sp[i].begin - expect, f->tensors[sp[i].index].name);
        expect = sp[i].end;
    }
    if (expect != data_len)
        return ad_error_set(err, "%zu bytes after the last tensor are not covered by the header",
                            data_len - expect);
    ad_safetensors_tensor *sorted = malloc((f->n ? f->n : 1) * sizeof *sorted);
    if (!sorted) return ad_error_set(err, "out of memory");
    for (size_t i = 0; i < f->n; i++) {
        sorted[i] = f->tensors[sp[i].index];
        sorted[i].data = data + sp[i].begin;
    }
    free(f->tensors);
    f->tensors = sorted;
    return AD_OK;
}

/* Reads the tensor entries of the parsed header (root object). */
static int parse_entries(ad_safetensors *f, const cJSON *root, size_t data_len, ad_error *err) {
    size_t n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        n += strcmp(it->string, "__metadata__") != 0;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    span *sp = calloc(n ? n : 1, sizeof *sp);
    int rc = AD_ERR;
    if (!f->tensors || !sp) {
        ad_error_set(err, "out of memory reading the header");
        goto done;
    }
    /* names are unique: the strict parser refused a key given twice */
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (parse_metadata(f, it, err) != AD_OK) goto done;
            continue;
        }
        ad_safetensors_tensor *t = &f->tensors[f->n];
        t->name = strdup(it->string);
        if (!t->name) {
            ad_error_set(err, "out of memory reading the header");
            goto done;
        }
        sp[f->n].index = f->n;
        f->n++;
        if (parse_tensor(t, it, &sp[f->n - 1].begin, &sp[f->n - 1].end, err) != AD_OK) goto done;
    }
    rc = place_tensors(f, sp, f->buf + (f->len - data_len), data_len, err);
done:
    free(sp);
    return rc;
}

/* Validates f->buf / f->len; messages are not yet prefixed with the path. */
static int parse_file(ad_safetensors *f, ad_error *err) {
    if (f->len < 8)
        return ad_error_set(err, "file is %zu bytes, too short for the 8-byte header length",
                            f->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->buf[i];
    if (hlen > AD_SAFETENSORS_MAX_HEADER)
        return ad_error_set(err, "header length %llu exceeds the limit of %zu bytes",
                            (unsigned long long)hlen, AD_SAFETENSORS_MAX_HEADER);
    if (hlen > f->len - 8)
        return ad_error_set(err,
                            "header length %llu is larger than the rest of the file (%zu bytes)",
                            (unsigned long long)hlen, f->len - 8);
    const char *hdr = (const char *)f->buf + 8;
    if (hlen < 2 || hdr[0] != '{')
        return ad_error_set(err, "header does not start with a JSON object '{'");
    if (!ad_utf8_valid(hdr, (size_t)hlen)) return ad_error_set(err, "header is not valid UTF-8");
    cJSON *root = ad_json_parse_strict(hdr, (size_t)hlen, err);
    if (!root) return ad_error_prefix(err, "header of %llu bytes: ", (unsigned long long)hlen);
    int rc = cJSON_IsObject(root) ? parse_entries(f, root, f->len - 8 - (size_t)hlen, err)
                                  : ad_error_set(err, "header is not a JSON object");
    cJSON_Delete(root);
    return rc;
}

/* Sums the element counts the parsed header's tensors declare (each checked against
 * its data_offsets); metadata is skipped. */
static int header_numel(const cJSON *root, size_t *total, ad_error *err) {
    *total = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) continue;
        ad_safetensors_tensor t = {.name = it->string};
        size_t begin, end;
        if (parse_tensor(&t, it, &begin, &end, err) != AD_OK) return AD_ERR;
        if (t.numel > SIZE_MAX - *total) return ad_error_set(err, "tensor sizes overflow");
        *total += t.numel;
    }
    return AD_OK;
}

int ad_safetensors_header_numel(const char *path, size_t *numel, ad_error *err) {
    char *head = NULL;
    size_t size;
    if (ad_read_file_head(path, 8, &head, &size, err) != AD_OK) return AD_ERR;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (unsigned char)head[i];
    free(head);
    if (hlen > AD_SAFETENSORS_MAX_HEADER || hlen > size - 8)
        return ad_error_set(err, "%s: header length %llu is out of bounds", path,
                            (unsigned long long)hlen);
    if (ad_read_file_head(path, 8 + (size_t)hlen, &head, &size, err) != AD_OK) return AD_ERR;
    cJSON *root = ad_json_parse_strict(head + 8, (size_t)hlen, err);
    int rc = !root                   ? AD_ERR
             : !cJSON_IsObject(root) ? ad_error_set(err, "header is not a JSON object")
                                     : header_numel(root, numel, err);
    cJSON_Delete(root);
    free(head);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "%s: ", path);
}

void ad_safetensors_close(ad_safetensors *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++)
        free((char *)f->tensors[i].name);
    for (size_t i = 0; i < 2 * f->n_meta; i++)
        free(f->meta[i]);
    free(f->meta);
    free(f->tensors);
    free(f->buf);
    free(f->path);
    free(f);
}

/* Takes ownership of buf; validates it into *out. */
static int open_buffer(ad_safetensors **out, unsigned char *buf, size_t len, const char *label,
                       ad_error *err) {
    *out = NULL;
    ad_safetensors *f = calloc(1, sizeof *f);
    if (!f) {
        free(buf);
        return ad_error_set(err, "%s: out of memory", label);
    }
    f->buf = buf;
    f->len = len;
    f->path = strdup(label);
    if (!f->path || parse_file(f, err) != AD_OK) {
        if (!f->path) ad_error_set(err, "out of memory");
        ad_error_prefix(err, "%s: ", label);
        ad_safetensors_close(f);
        return AD_ERR;
    }
    *out = f;
    return AD_OK;
}

int ad_safetensors_open(ad_safetensors **out, const char *path, size_t max_file_bytes,
                        ad_error *err) {
    *out = NULL;
    char *buf;
    size_t len;
    if (ad_read_file(path, max_file_bytes ? max_file_bytes : SIZE_MAX - 1, &buf, &len, err) !=
        AD_OK)
        return AD_ERR;
    return open_buffer(out, (unsigned char *)buf, len, path, err);
}

int ad_safetensors_open_memory(ad_safetensors **out, const void *buf, size_t len, const char *label,
                               ad_error *err) {
    *out = NULL;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) return ad_error_set(err, "%s: out of memory copying %zu bytes", label, len);
    if (len) memcpy(copy, buf, len);
    return open_buffer(out, copy, len, label, err);
}

const char *ad_safetensors_path(const ad_safetensors *f) {
    return f->path;
}

size_t ad_safetensors_count(const ad_safetensors *f) {
    return f->n;
}

const ad_safetensors_tensor *ad_safetensors_at(const ad_safetensors *f, size_t i) {
    return i < f->n ? &f->tensors[i] : NULL;
}

const ad_safetensors_tensor *ad_safetensors_find(const ad_safetensors *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *ad_safetensors_metadata(const ad_safetensors *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

/* Finds `name` and checks its shape; the dtype is checked by the caller. */
static const ad_safetensors_tensor *find_shaped(const ad_safetensors *f, const char *name,
                                                size_t ndim, const size_t *shape, ad_error *err) {
    const ad_safetensors_tensor *t = ad_safetensors_find(f, name);
    if (!t) {
        ad_error_set(err, "%s: tensor '%s' is missing", f->path, name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (size_t i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char got[200], want[200];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        ad_error_set(err, "%s: tensor '%s' has shape %s, expected %s", f->path, name, got, want);
        return NULL;
    }
    return t;
}

const ad_safetensors_tensor *ad_safetensors_expect(const ad_safetensors *f, const char *name,
                                                   ad_dtype dtype, size_t ndim, const size_t *shape,
                                                   ad_error *err) {
    const ad_safetensors_tensor *t = find_shaped(f, name, ndim, shape, err);
    if (t && t->dtype != dtype) {
        ad_error_set(err, "%s: tensor '%s' has dtype %s, expected %s", f->path, name,
                     ad_dtype_name(t->dtype), ad_dtype_name(dtype));
        return NULL;
    }
    return t;
}

int ad_safetensors_read_f32(const ad_safetensors *f, const char *name, size_t ndim,
                            const size_t *shape, float *out, ad_error *err) {
    const ad_safetensors_tensor *t = ad_safetensors_expect(f, name, AD_DTYPE_F32, ndim, shape, err);
    if (!t) return AD_ERR;
    if (t->nbytes) memcpy(out, t->data, t->nbytes);
    return AD_OK;
}

int ad_safetensors_read_i32(const ad_safetensors *f, const char *name, size_t ndim,
                            const size_t *shape, int32_t *out, ad_error *err) {
    const ad_safetensors_tensor *t = find_shaped(f, name, ndim, shape, err);
    if (!t) return AD_ERR;
    if (t->dtype == AD_DTYPE_I32) {
        if (t->nbytes) memcpy(out, t->data, t->nbytes);
        return AD_OK;
    }
    if (t->dtype != AD_DTYPE_I64)
        return ad_error_set(err, "%s: tensor '%s' has dtype %s, expected I32 or I64", f->path, name,
                            ad_dtype_name(t->dtype));
    const unsigned char *p = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        int64_t v;
        memcpy(&v, p + 8 * i, 8);
        if (v < INT32_MIN || v > INT32_MAX)
            return ad_error_set(err, "%s: tensor '%s' element %zu = %lld does not fit in int32",
                                f->path, name, i, (long long)v);
        out[i] = (int32_t)v;
    }
    return AD_OK;
}

/* ---- writer ---------------------------------------------------------------- */

/* Checks one entry and computes its byte size. */
static int entry_bytes(const ad_safetensors_entry *e, size_t *nbytes, ad_error *err) {
    if (!e->name || !e->name[0] || !strcmp(e->name, "__metadata__"))
        return ad_error_set(err, "invalid tensor name '%s'", e->name ? e->name : "(null)");
    size_t es = ad_dtype_size(e->dtype);
    if (!es) return ad_error_set(err, "tensor '%s': invalid dtype %d", e->name, (int)e->dtype);
    if (e->ndim > AD_SAFETENSORS_MAX_DIMS)
        return ad_error_set(err, "tensor '%s': %zu dimensions (at most %d)", e->name, e->ndim,
                            AD_SAFETENSORS_MAX_DIMS);
    size_t n = es;
    for (size_t i = 0; i < e->ndim; i++) {
        if ((double)e->shape[i] > MAX_JSON_INT || (e->shape[i] && n > SIZE_MAX / e->shape[i]))
            return ad_error_set(err, "tensor '%s': size overflows", e->name);
        n *= e->shape[i];
    }
    if (n && !e->data) return ad_error_set(err, "tensor '%s': no data", e->name);
    *nbytes = n;
    return AD_OK;
}

static cJSON *json_uint(size_t v) {
    char s[32];
    snprintf(s, sizeof s, "%zu", v);
    return cJSON_CreateRaw(s);
}

/* Builds the header JSON for entries in the order `order`; NULL on failure. */
static char *build_header(const ad_safetensors_entry *e, const size_t *order, const size_t *nbytes,
                          size_t n, const ad_safetensors_meta *meta, size_t n_meta) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (size_t i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[i].key, meta[i].value) != NULL;
    }
    size_t off = 0;
    for (size_t k = 0; ok && k < n; k++) {
        const ad_safetensors_entry *t = &e[order[k]];
        cJSON *obj = cJSON_AddObjectToObject(root, t->name);
        ok = obj && cJSON_AddStringToObject(obj, "dtype", ad_dtype_name(t->dtype));
        cJSON *shape = ok ? cJSON_AddArrayToObject(obj, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(obj, "data_offsets") : NULL;
        ok = offs != NULL;
        for (size_t i = 0; ok && i < t->ndim; i++)
            ok = cJSON_AddItemToArray(shape, json_uint(t->shape[i]));
        ok = ok && cJSON_AddItemToArray(offs, json_uint(off));
        off += nbytes[order[k]];
        ok = ok && cJSON_AddItemToArray(offs, json_uint(off));
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

/* Checks names for emptiness and duplicates, metadata keys for duplicates. */
static int check_names(const ad_safetensors_entry *e, size_t n, const ad_safetensors_meta *meta,
                       size_t n_meta, ad_error *err) {
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return ad_error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = e[i].name;
    int rc = AD_OK, oom0;
    const char *dup0 = ad_json_duplicate_key(names, n, &oom0);
    if (oom0) rc = ad_error_set(err, "out of memory");
    if (dup0) rc = ad_error_set(err, "tensor name '%s' given twice", dup0);
    free(names);
    if (rc == AD_OK && n_meta > AD_SAFETENSORS_MAX_META)
        rc = ad_error_set(err, "%zu metadata keys, more than the %d allowed", n_meta,
                          AD_SAFETENSORS_MAX_META);
    const char **keys = rc == AD_OK ? malloc((n_meta ? n_meta : 1) * sizeof *keys) : NULL;
    if (rc == AD_OK && !keys) rc = ad_error_set(err, "out of memory");
    for (size_t i = 0; i < n_meta && rc == AD_OK; i++) {
        if (!meta[i].key || !meta[i].value)
            rc = ad_error_set(err, "metadata entry %zu has no key or value", i);
        keys[i] = meta[i].key;
    }
    int oom = 0;
    const char *dup = rc == AD_OK ? ad_json_duplicate_key(keys, n_meta, &oom) : NULL;
    if (rc == AD_OK && oom) rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK && dup) rc = ad_error_set(err, "metadata key '%s' given twice", dup);
    free(keys);
    return rc;
}

/* Writes the 8-byte length, the padded header and the data in `order`. */
static int write_all(const char *path, const char *hdr, const ad_safetensors_entry *e,
                     const size_t *order, const size_t *nbytes, size_t n, ad_error *err) {
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    if (padded > AD_SAFETENSORS_MAX_HEADER)
        return ad_error_set(err, "%s: header of %zu bytes exceeds the limit", path, padded);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    ad_atomic_file af;
    if (ad_atomic_open(&af, path, err) != AD_OK) return AD_ERR;
    int ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(hdr, 1, hlen, af.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++)
        ok = fputc(' ', af.fp) != EOF;
    for (size_t k = 0; ok && k < n; k++)
        ok = !nbytes[order[k]] ||
             fwrite(e[order[k]].data, 1, nbytes[order[k]], af.fp) == nbytes[order[k]];
    if (!ok) {
        ad_atomic_abort(&af);
        return ad_error_set(err, "%s: write failed", path);
    }
    return ad_atomic_commit(&af, err);
}

int ad_safetensors_write(const char *path, const ad_safetensors_entry *entries, size_t n,
                         const ad_safetensors_meta *meta, size_t n_meta, ad_error *err) {
    size_t *nbytes = calloc(n ? n : 1, sizeof *nbytes);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    int rc = AD_ERR;
    char *hdr = NULL;
    if (!nbytes || !order) {
        ad_error_set(err, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (entry_bytes(&entries[i], &nbytes[i], err) != AD_OK) goto fail;
    if (check_names(entries, n, meta, n_meta, err) != AD_OK) goto fail;
    /* Stable order by decreasing element size keeps every tensor aligned. */
    size_t k = 0;
    for (size_t es = 8; es >= 1; es /= 2)
        for (size_t i = 0; i < n; i++)
            if (ad_dtype_size(entries[i].dtype) == es) order[k++] = i;
    hdr = build_header(entries, order, nbytes, n, meta, n_meta);
    if (!hdr) {
        ad_error_set(err, "%s: out of memory building the header", path);
        goto done;
    }
    rc = write_all(path, hdr, entries, order, nbytes, n, err);
    goto done;
fail:
    ad_error_prefix(err, "%s: ", path);
done:
    free(hdr);
    free(nbytes);
    free(order);
    return rc;
}
