/* cli_util.h: small helpers shared by the subcommands: strict number parsing
 * with messages naming the flag, help detection, error printing. */
#ifndef AD_CLI_CLI_UTIL_H
#define AD_CLI_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Each parser accepts the whole string or prints "autodidact CMD: --flag: bad value 'x'"
 * and returns -1. */
int cli_parse_size(const char *cmd, const char *flag, const char *s, size_t *out);
int cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out);
/* A real number checked exactly as the run config checks `key` (its parser and
 * range, docs/config.md): --lr as base.lr, so "inf", "-1" or "1e39" is refused
 * here as it would be in an INI file. */
int cli_parse_float(const char *cmd, const char *flag, const char *s, const char *key, float *out);
/* The same for a double: a double key's value exactly as given. */
int cli_parse_double(const char *cmd, const char *flag, const char *s, const char *key,
                     double *out);
/* "A-B" or "A" into [lo, hi]. */
int cli_parse_range(const char *cmd, const char *flag, const char *s, size_t *lo, size_t *hi);

/* --precision of a decoding command: "fp32" (*bf16 = 0) or "bf16" (1), which
 * needs a CPU with AVX512-BF16 (refused here otherwise, with the reason). */
int cli_parse_decode_precision(const char *cmd, const char *s, int *bf16);

/* 1 when argv holds --help or -h. */
int cli_wants_help(int argc, char **argv);

/* Prints "autodidact CMD: message" to stderr; returns 1 (the exit status). */
int cli_fail(const char *cmd, const ad_error *err);

/* Under mpirun (more than one rank): prints "autodidact (rank R of N): CMD:
 * MSG; stopping every rank" and stops the job (the other ranks may be waiting
 * on this one); alone: cli_fail. Returns 1 when it returns. */
int cli_fail_ranks(const char *cmd, const ad_error *err);

/* Sets OpenMP/OpenBLAS threads from --threads (0 = leave the defaults). */
void cli_set_threads(size_t n);

#endif
