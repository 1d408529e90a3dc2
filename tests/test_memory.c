/* test_memory.c: ad_memory_keep_freed (util/memory.h): a block of generate's
 * size comes from the heap, not from mmap, and stays there once freed, so the
 * next call reuses its pages instead of faulting in fresh ones. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/memory.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>

#define BLOCK ((size_t)48 << 20) /* a 14M model's packed weights are 56 MB, in blocks of <= 10 MB  \
                                  */

static void test_freed_memory_stays(void) {
    CHECK_MSG(ad_memory_keep_freed() == 0, "glibc refused the settings");
    char *p = malloc(BLOCK);
    CHECK(p != NULL);
    if (!p) return;
    memset(p, 1, BLOCK);
    struct mallinfo2 held = mallinfo2();
    CHECK_MSG(held.hblkhd < BLOCK, "a 48 MB block was mapped (%zu bytes mapped)", held.hblkhd);
    free(p);
    struct mallinfo2 freed = mallinfo2();
    CHECK_MSG(freed.arena >= BLOCK && freed.fordblks >= BLOCK,
              "the freed block left the heap (heap %zu bytes, %zu free)", freed.arena,
              freed.fordblks);
    char *q = malloc(BLOCK);
    CHECK(q != NULL);
    struct mallinfo2 again = mallinfo2();
    CHECK_MSG(again.arena == freed.arena, "the heap grew from %zu to %zu for a block it had",
              freed.arena, again.arena);
    free(q);
}
#else
static void test_freed_memory_stays(void) {
    /* another C library, or AddressSanitizer's allocator: the call reports that
     * it changed nothing */
    CHECK(ad_memory_keep_freed() == -1);
}
#endif

int main(void) {
    RUN(test_freed_memory_stays);
    return test_summary();
}
