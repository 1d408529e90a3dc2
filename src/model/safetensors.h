/* safetensors.h: reading and writing the safetensors file format.
 *
 * A safetensors file is: an 8-byte little-endian u64 N; N bytes of JSON header
 *   {"name": {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}     (metadata optional, strings only)
 * then the raw little-endian tensor data, offsets relative to the data section.
 * See docs/checkpoint.md for the rules this reader enforces.
 *
 * The reader treats the file as untrusted: the header length is checked against
 * the file size and a cap, the JSON must parse, every dtype must be known, each
 * tensor's byte length must equal shape product * dtype size (no overflow), and
 * the tensors must tile the data section exactly (no gaps, no overlaps, nothing
 * left over), as the format requires. A bad file is refused with a message that
 * names the file and the problem.
 *
 * The writer lays tensors out in order of decreasing element size (so every
 * tensor is naturally aligned) and pads the header with spaces to a multiple of
 * 8 bytes; files are written atomically (util/atomic_file.h).
 *
 * What this module is not: it knows nothing of models or tensor names; see
 * checkpoint.h for the model's files. It assumes a little-endian host. */
#ifndef AD_MODEL_SAFETENSORS_H
#define AD_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef enum ad_dtype {
    AD_DTYPE_BOOL,
    AD_DTYPE_U8,
    AD_DTYPE_I8,
    AD_DTYPE_F8_E5M2,
    AD_DTYPE_F8_E4M3,
    AD_DTYPE_I16,
    AD_DTYPE_U16,
    AD_DTYPE_F16,
    AD_DTYPE_BF16,
    AD_DTYPE_I32,
    AD_DTYPE_U32,
    AD_DTYPE_F32,
    AD_DTYPE_F64,
    AD_DTYPE_I64,
    AD_DTYPE_U64,
    AD_DTYPE_COUNT
} ad_dtype;

#define AD_SAFETENSORS_MAX_DIMS 8
/* Largest header accepted (as in the reference implementation). */
#define AD_SAFETENSORS_MAX_HEADER ((size_t)100 * 1000 * 1000)
/* Most "__metadata__" keys a file may hold (ours write a handful). */
#define AD_SAFETENSORS_MAX_META 65536

/* Size in bytes of one element of dtype; 0 for an invalid dtype. */
size_t ad_dtype_size(ad_dtype dtype);
/* The dtype's name in the format ("F32"); "?" for an invalid dtype. */
const char *ad_dtype_name(ad_dtype dtype);
/* Parses a dtype name; returns AD_OK or AD_ERR (no message) when unknown. */
int ad_dtype_parse(const char *name, ad_dtype *out);

/* One tensor of an opened file. `data` points into the file's buffer and may be
 * unaligned for the dtype (copy it out with ad_safetensors_read_*). */
typedef struct ad_safetensors_tensor {
    const char *name;
    ad_dtype dtype;
    size_t ndim; /* 0 for a scalar */
    size_t shape[AD_SAFETENSORS_MAX_DIMS];
    size_t numel;  /* product of shape (1 for a scalar) */
    size_t nbytes; /* numel * dtype size */
    const void *data;
} ad_safetensors_tensor;

typedef struct ad_safetensors ad_safetensors; /* an opened, validated file */

/* Reads only the header of the file at path: *numel is the total element count its
 * tensors declare (whether the file really holds them is ad_safetensors_open's
 * check). Lets a caller check a file against what it expects before allocating. */
int ad_safetensors_header_numel(const char *path, size_t *numel, ad_error *err);

/* Reads and validates a whole file (at most max_file_bytes; 0 means no limit
 * beyond memory). On error *out is NULL and err names the file and the problem. */
int ad_safetensors_open(ad_safetensors **out, const char *path, size_t max_file_bytes,
                        ad_error *err);

/* Validates a file image already in memory; `label` names it in messages. The
 * buffer is copied, so the caller keeps ownership of buf. On error *out is NULL. */
int ad_safetensors_open_memory(ad_safetensors **out, const void *buf, size_t len, const char *label,
                               ad_error *err);

/* Frees an opened file; NULL is fine. */
void ad_safetensors_close(ad_safetensors *f);

/* The path (or label) the file was opened with. */
const char *ad_safetensors_path(const ad_safetensors *f);

/* Number of tensors and the i-th one, in order of their data offsets. */
size_t ad_safetensors_count(const ad_safetensors *f);
const ad_safetensors_tensor *ad_safetensors_at(const ad_safetensors *f, size_t i);

/* The tensor with this name, or NULL. */
const ad_safetensors_tensor *ad_safetensors_find(const ad_safetensors *f, const char *name);

/* The value of a "__metadata__" key, or NULL. */
const char *ad_safetensors_metadata(const ad_safetensors *f, const char *key);

/* Returns tensor `name` after checking that it exists with this dtype and
 * exactly this shape (ndim dims); NULL with a message naming the file, tensor,
 * and what differs otherwise. */
const ad_safetensors_tensor *ad_safetensors_expect(const ad_safetensors *f, const char *name,
                                                   ad_dtype dtype, size_t ndim, const size_t *shape,
                                                   ad_error *err);

/* Copies tensor `name` into out (numel floats) after checking that it exists,
 * has dtype F32 and exactly the expected shape (ndim dims). Errors read like
 * "model.safetensors: tensor 'lm_head.weight' has shape [17, 32], expected
 * [19, 32]". On error out is unchanged. */
int ad_safetensors_read_f32(const ad_safetensors *f, const char *name, size_t ndim,
                            const size_t *shape, float *out, ad_error *err);

/* Like read_f32 for integers: accepts dtype I32, or I64 when every value fits
 * in an int32 (PyTorch's default integer type is int64). On error out may have
 * been partly written. */
int ad_safetensors_read_i32(const ad_safetensors *f, const char *name, size_t ndim,
                            const size_t *shape, int32_t *out, ad_error *err);

/* One tensor to write: data holds numel * dtype size bytes, little-endian. */
typedef struct ad_safetensors_entry {
    const char *name;
    ad_dtype dtype;
    size_t ndim;
    size_t shape[AD_SAFETENSORS_MAX_DIMS];
    const void *data;
} ad_safetensors_entry;

/* One "__metadata__" key/value pair. */
typedef struct ad_safetensors_meta {
    const char *key;
    const char *value;
} ad_safetensors_meta;

/* Writes n tensors (and n_meta metadata pairs; meta may be NULL) to path
 * atomically. Fails on duplicate or empty names, the reserved name
 * "__metadata__", invalid dtypes or sizes that overflow; on error the old file
 * (if any) is untouched. */
int ad_safetensors_write(const char *path, const ad_safetensors_entry *entries, size_t n,
                         const ad_safetensors_meta *meta, size_t n_meta, ad_error *err);

#endif
