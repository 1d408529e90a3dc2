/* cli_util.c: strict flag parsing and error printing for the subcommands. */
#include "cli/cli_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/run_config.h"
#include "model/kernels.h"
#include "util/config.h"

static int bad(const char *cmd, const char *flag, const char *s, const char *what) {
    fprintf(stderr, "autodidact %s: %s: bad value '%s' (%s)\n", cmd, flag, s ? s : "", what);
    return -1;
}

int cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return bad(cmd, flag, s, "expected a non-negative integer");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return bad(cmd, flag, s, "expected a non-negative integer");
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_size(const char *cmd, const char *flag, const char *s, size_t *out) {
    uint64_t v;
    if (cli_parse_u64(cmd, flag, s, &v)) return -1;
    *out = (size_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *flag, const char *s, const char *key,
                     double *out) {
    const ad_config_schema *schema = ad_run_config_schema();
    const ad_config_key *k = ad_config_find(schema, key);
    if (!k || (k->type != AD_CONFIG_FLOAT && k->type != AD_CONFIG_DOUBLE))
        return bad(cmd, flag, s, "no such real-valued config key to check it against");
    /* the config's own parser and range: one field set in a scratch config */
    ad_run_config *tmp = calloc(1, sizeof *tmp);
    ad_error err = {{0}};
    if (!tmp) return bad(cmd, flag, s, "out of memory");
    int rc = ad_config_set_value(schema, tmp, key, s ? s : "", flag, &err);
    if (rc == AD_OK) {
        const unsigned char *f = (const unsigned char *)tmp + k->offset;
        float fv = 0;
        if (k->type == AD_CONFIG_FLOAT)
            memcpy(&fv, f, sizeof fv), *out = fv;
        else
            memcpy(out, f, sizeof *out);
    }
    free(tmp);
    if (rc == AD_OK) return 0;
    fprintf(stderr, "autodidact %s: %s (checked as the config key)\n", cmd, err.msg);
    return -1;
}

int cli_parse_float(const char *cmd, const char *flag, const char *s, const char *key, float *out) {
    double v;
    if (cli_parse_double(cmd, flag, s, key, &v)) return -1;
    *out = (float)v;
    return 0;
}

int cli_parse_range(const char *cmd, const char *flag, const char *s, size_t *lo, size_t *hi) {
    char buf[64];
    if (!s || strlen(s) >= sizeof buf) return bad(cmd, flag, s, "expected A-B or A");
    strcpy(buf, s);
    char *dash = strchr(buf, '-');
    if (dash) *dash = '\0';
    if (cli_parse_size(cmd, flag, buf, lo)) return -1;
    if (cli_parse_size(cmd, flag, dash ? dash + 1 : buf, hi)) return -1;
    if (*lo > *hi) return bad(cmd, flag, s, "the range is empty");
    return 0;
}

int cli_parse_decode_precision(const char *cmd, const char *s, int *bf16) {
    if (strcmp(s, "fp32") && strcmp(s, "bf16")) return bad(cmd, "--precision", s, "fp32 or bf16");
    *bf16 = !strcmp(s, "bf16");
    if (*bf16 && !ad_kernels_have_bf16()) {
        fprintf(stderr,
                "autodidact %s: --precision bf16 needs a CPU with AVX512-BF16 (this one's "
                "kernels: %s)\n",
                cmd, ad_kernels_isa());
        return -1;
    }
    return 0;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int cli_fail(const char *cmd, const ad_error *err) {
    fprintf(stderr, "autodidact %s: %s\n", cmd, err->msg);
    return 1;
}

int cli_fail_ranks(const char *cmd, const ad_error *err) {
    if (ad_dist_size() == 1) return cli_fail(cmd, err);
    char msg[1100];
    snprintf(msg, sizeof msg, "%s: %s; stopping every rank", cmd, err->msg);
    ad_dist_abort(msg, 1);
    return 1;
}

void cli_set_threads(size_t n) {
    if (n) ad_kernels_set_threads((int)n);
}
