/* fuzz_common.c: temporary files and failure reporting for the harnesses. */
#include "fuzz_common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path[512];

void fuzz_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Removes the directory's files (one level: harnesses write no subfolders
 * except the checkpoint one, which is emptied too), then the directory. */
static void remove_tree(const char *d) {
    DIR *h = opendir(d);
    if (!h) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(h))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        if (unlink(p) != 0) remove_tree(p);
    }
    closedir(h);
    rmdir(d);
}

static void cleanup(void) {
    if (dir[0]) remove_tree(dir);
}

const char *fuzz_dir(void) {
    if (dir[0]) return dir;
    /* Memory, not disk: on a disk-backed /tmp each input's write waits for
     * block I/O and the harness runs ten times slower. */
    const char *base = getenv("TMPDIR");
    if (!access("/dev/shm", W_OK)) base = "/dev/shm";
    snprintf(dir, sizeof dir, "%.40s/adfuzz.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) fuzz_fail("cannot make a temporary directory", dir);
    atexit(cleanup);
    return dir;
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t n) {
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) fuzz_fail("cannot write", path);
    return path;
}

char *fuzz_cstr(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) fuzz_fail("out of memory", NULL);
    if (n) memcpy(s, data, n);
    s[n] = '\0';
    return s;
}
