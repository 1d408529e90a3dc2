/* fuzz_common.h: what every libFuzzer harness in fuzz/ shares.
 *
 * Most loaders take a path, not a buffer: the harness writes the input to a
 * file in a private temporary directory (in /dev/shm when it can; made once
 * per process, removed at exit) and calls the real loader, so the fuzzed path
 * is the one users hit.
 * Not for the library: fuzz/ is built only by `make fuzz`. */
#ifndef AD_FUZZ_COMMON_H
#define AD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The process's temporary directory; aborts when it cannot be made (a broken
 * harness must not look like a clean run). */
const char *fuzz_dir(void);

/* Writes data (n bytes) to fuzz_dir()/name and returns the full path (a
 * static buffer, valid until the next call). Aborts on failure. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t n);

/* A malloc'd NUL-terminated copy of data; aborts when out of memory. */
char *fuzz_cstr(const uint8_t *data, size_t n);

/* Aborts with a message (a finding, or a broken harness). */
void fuzz_fail(const char *what, const char *detail) __attribute__((noreturn));

#endif
