/* fuzz_config_json.c: a checkpoint's config.json (the model's dimensions and
 * vocabulary) read through the real loader, from a file. */
#include "fuzz_common.h"
#include "model/checkpoint_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ad_vocab v; /* 16 KB: not on the stack */
    ad_model_config cfg;
    ad_error err = {{0}};
    const char *path = fuzz_write("config.json", data, size);
    (void)ad_ckpt_config_read(path, &cfg, &v, &err);
    return 0;
}
