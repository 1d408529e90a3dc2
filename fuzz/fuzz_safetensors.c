/* fuzz_safetensors.c: the safetensors reader (header JSON, offsets, shapes,
 * metadata) on arbitrary bytes, then every accessor on what it accepts.
 * Run with -max_len of a few MB: the header cap is 100 MB, and quadratic work
 * in the header only shows on large inputs. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ad_safetensors *f = NULL;
    ad_error err = {{0}};
    if (ad_safetensors_open_memory(&f, data, size, "fuzz.safetensors", &err) != AD_OK) {
        if (f) fuzz_fail("open failed but returned a file", err.msg);
        return 0;
    }
    size_t n = ad_safetensors_count(f);
    for (size_t i = 0; i < n; i++) {
        const ad_safetensors_tensor *t = ad_safetensors_at(f, i);
        if (ad_safetensors_find(f, t->name) == NULL) fuzz_fail("tensor not found by name", t->name);
        if (t->dtype != AD_DTYPE_F32 && t->dtype != AD_DTYPE_I32 && t->dtype != AD_DTYPE_I64)
            continue;
        /* Copy it out as the checkpoint loader would (bounded: 4 MB). */
        if (t->nbytes > ((size_t)4 << 20)) continue;
        void *out = malloc(t->numel * 4 + 1);
        if (!out) continue;
        int rc = t->dtype == AD_DTYPE_F32
                     ? ad_safetensors_read_f32(f, t->name, t->ndim, t->shape, out, &err)
                     : ad_safetensors_read_i32(f, t->name, t->ndim, t->shape, out, &err);
        (void)rc; /* an I64 value outside int32 is a legitimate refusal */
        free(out);
    }
    (void)ad_safetensors_metadata(f, "format");
    ad_safetensors_close(f);
    return 0;
}
