/* st_python.h: runs tests/safetensors_check.py (an independent, standard-library
 * Python reader of the safetensors format) on a file, for the tests that write
 * safetensors files. Header-only because only tests/test_*.c are compiled. */
#ifndef AD_TESTS_ST_PYTHON_H
#define AD_TESTS_ST_PYTHON_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ST_PYTHON "/usr/bin/python3"
#define ST_PYTHON_ABSENT 2

/* Runs the checker on path; its output goes to out (NUL-terminated). Returns 0
 * when the file passes, ST_PYTHON_ABSENT when /usr/bin/python3 is missing, 1 on
 * any failure (including a missing checker script). */
static int st_python_check(const char *path, char *out, size_t cap) {
    out[0] = '\0';
    if (access(ST_PYTHON, X_OK) != 0) return ST_PYTHON_ABSENT;
    /* The script sits beside this header; __FILE__ is e.g. "tests/st_python.h". */
    char script[1024];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (size_t)(slash ? slash + 1 - script : 0),
             "safetensors_check.py");
    if (access(script, R_OK) != 0) {
        snprintf(out, cap, "checker script %s not found", script);
        return 1;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' 2>&1", ST_PYTHON, script, path);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(out, cap, "cannot run %s", ST_PYTHON);
        return 1;
    }
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return status == 0 ? 0 : 1;
}

#endif
