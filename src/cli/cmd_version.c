/* cmd_version.c: `autodidact version [--verbose]`. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "model/kernels.h"
#include "util/memory.h"

#define AD_VERSION "0.1.0"

int cmd_version(int argc, char **argv) {
    int verbose = argc > 1 && (!strcmp(argv[1], "--verbose") || !strcmp(argv[1], "-v"));
    if (argc > 1 && !verbose) {
        int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr,
                "usage: autodidact version [--verbose]\n\nPrints the version; with --verbose, "
                "also the kernels in use, the\nthread count, the OpenMP wait setting, whether "
                "bf16 training and decoding\nare available and what becomes of freed memory.\n");
        return help ? 0 : 2;
    }
    printf("autodidact %s\n", AD_VERSION);
    if (verbose) {
        char buf[160];
        printf("kernels: %s, %d threads\nopenmp wait: %s\n", ad_kernels_isa(),
               ad_kernels_get_threads(), cli_openmp_wait(buf, sizeof buf));
        const char *bf16 = ad_kernels_have_bf16() ? "available (AVX512-BF16)"
                                                  : "not available (needs AVX512-BF16)";
        printf("bf16 training (run.precision = bf16): %s\n", bf16);
        printf("bf16 decoding (run.decode_precision = bf16, eval/sample --precision bf16): %s\n",
               bf16);
        printf("freed memory: %s\n", ad_memory_keeps_freed()
                                         ? "kept for reuse (glibc thresholds at 1 GiB)"
                                         : "returned to the system (C library default)");
    }
    return 0;
}
