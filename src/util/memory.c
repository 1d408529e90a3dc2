/* memory.c: keep freed memory for reuse.
 *
 * Why: every generate call builds a KV decoder (caches, activations, the
 * weights packed for its products: 80 MB at 14M parameters) and frees it at the
 * end. glibc serves blocks of that size with mmap and gives them back with
 * munmap, or trims its heap once the top is free, so the next call touches
 * fresh pages and takes a page fault for each 4 KiB. On a virtual machine a
 * fault costs the host too (about 13 us per 4 KiB page on the 2-core AMD guests
 * here): keeping the memory gave 0.5M generation 2.4x its tokens/s and 14M
 * generation 1.9x (bench/RESULTS.md). Reused memory costs a memset where
 * calloc needs zeros; a fault costs that and a trip through the kernel. The
 * price is resident memory that stays at the process's high-water mark. */
#include "util/memory.h"

#include <stdlib.h> /* first: it defines __GLIBC__ where glibc is the C library */

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define KEEP_BYTES (1 << 30)

static int g_kept;

int ad_memory_keep_freed(void) {
#if defined(__GLIBC__)
    if (!mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) return -1;
    if (!mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)) return -1;
    g_kept = 1;
    return 0;
#else
    return -1;
#endif
}

int ad_memory_keeps_freed(void) {
    return g_kept;
}
