/* memory.h: how the process's allocator treats freed memory. */
#ifndef AD_UTIL_MEMORY_H
#define AD_UTIL_MEMORY_H

/* Keeps freed memory in the process for reuse instead of handing it back to
 * the kernel (glibc: allocations up to 1 GiB come from the heap, and the heap
 * is not trimmed until 1 GiB of it is free). Call once, first thing in main,
 * before any thread starts. Returns 0, or -1 when the C library refused (the
 * process then runs as before, only slower). */
int ad_memory_keep_freed(void);

/* 1 when ad_memory_keep_freed has succeeded in this process, else 0. */
int ad_memory_keeps_freed(void);

#endif
