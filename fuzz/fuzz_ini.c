/* fuzz_ini.c: a run's config.ini through the real loader (file, defaults,
 * cross-key checks), then the round trip the run directory relies on: dump,
 * reload the dump, dump again; the two dumps must be identical. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "loop/run_config.h"
#include "util/config.h"

/* Loads path into cfg and dumps it; AD_ERR when the loader refuses it. */
static int load_and_dump(const char *path, ad_run_config *cfg, char **dump) {
    ad_error err = {{0}};
    *dump = NULL;
    int rc = ad_run_config_load(cfg, path, NULL, 0, &err);
    if (rc == AD_OK && ad_config_dump(ad_run_config_schema(), cfg, dump, &err) != AD_OK)
        fuzz_fail("a loaded config cannot be dumped", err.msg);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ad_run_config a, b;
    char *first, *second;
    int rc = load_and_dump(fuzz_write("config.ini", data, size), &a, &first);
    ad_run_config_free(&a);
    if (rc != AD_OK) return 0;
    if (load_and_dump(fuzz_write("dump.ini", (const uint8_t *)first, strlen(first)), &b, &second) !=
        AD_OK)
        fuzz_fail("the dump of an accepted config is refused", first);
    if (strcmp(first, second) != 0) fuzz_fail("dump, reload, dump differs", first);
    ad_run_config_free(&b);
    free(first);
    free(second);
    return 0;
}
