/* atomic_file.c: temporary file + fsync + rename, and small file helpers. */
#include "util/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ad_fsync_dir(const char *dir, ad_error *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return ad_error_set(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return ad_error_set(err, "%s: fsync failed: %s", dir, strerror(errno));
    return AD_OK;
}

int ad_tmp_is_stale(const char *name, const char *base) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5)) return 0;
    const char *digits = name + bl + 5;
    if (!*digits || strspn(digits, "0123456789") != strlen(digits)) return 0;
    long pid = strtol(digits, NULL, 10);
    return pid == (long)getpid() || (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

/* Removes PATH.tmp.<pid> files of processes that no longer run (killed in
 * the middle of a write, before their rename), once PATH is whole again. */
static void remove_stale_tmps(const char *path) {
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    DIR *d = opendir(dirname(dir));
    if (!d) return;
    const char *b = basename(base);
    struct dirent *e;
    while ((e = readdir(d)))
        if (ad_tmp_is_stale(e->d_name, b)) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

int ad_atomic_open(ad_atomic_file *f, const char *path, ad_error *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) return ad_error_set(err, "%s: path too long", path);
    strcpy(f->path, path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) return ad_error_set(err, "%s: cannot create: %s", f->tmp_path, strerror(errno));
    return AD_OK;
}

int ad_atomic_commit(ad_atomic_file *f, ad_error *err) {
    if (!f->fp) return ad_error_set(err, "%s: file is not open", f->path);
    int bad = ferror(f->fp) != 0;
    bad |= fflush(f->fp) != 0;
    bad |= fsync(fileno(f->fp)) != 0;
    int saved = errno;
    bad |= fclose(f->fp) != 0;
    f->fp = NULL;
    if (bad) {
        unlink(f->tmp_path);
        return ad_error_set(err, "%s: write failed: %s", f->path, strerror(saved ? saved : EIO));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        saved = errno;
        unlink(f->tmp_path);
        return ad_error_set(err, "%s: rename failed: %s", f->path, strerror(saved));
    }
    remove_stale_tmps(f->path);
    char dir[sizeof f->path];
    strcpy(dir, f->path);
    return ad_fsync_dir(dirname(dir), err);
}

void ad_atomic_abort(ad_atomic_file *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) unlink(f->tmp_path);
}

int ad_atomic_write(const char *path, const void *data, size_t len, ad_error *err) {
    ad_atomic_file f;
    if (ad_atomic_open(&f, path, err) != AD_OK) return AD_ERR;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        ad_atomic_abort(&f);
        return ad_error_set(err, "%s: write failed: %s", path, strerror(errno));
    }
    return ad_atomic_commit(&f, err);
}

int ad_mkdir_p(const char *path, ad_error *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return ad_error_set(err, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return ad_error_set(err, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ad_error_set(err, "%s: not a directory", path);
    return AD_OK;
}

/* Opens a regular file for reading; refuses FIFOs, devices and directories. */
static int open_regular(const char *path, FILE **fp, struct stat *st, ad_error *err) {
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer forever;
     * this way the type check below refuses it at once */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ad_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return ad_error_set(err, "%s: not a regular file", path);
    }
    int flags = fcntl(fd, F_GETFL);
    *fp = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? NULL : fdopen(fd, "rb");
    if (!*fp) {
        close(fd);
        return ad_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    }
    return AD_OK;
}

/* Reads the first n bytes of fp into a new NUL-terminated buffer; closes fp. */
static int read_prefix(FILE *fp, const char *path, size_t n, char **out, ad_error *err) {
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return ad_error_set(err, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(buf);
        return ad_error_set(err, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    return AD_OK;
}

int ad_read_file(const char *path, size_t max_len, char **out, size_t *len, ad_error *err) {
    *out = NULL;
    FILE *fp;
    struct stat st;
    if (open_regular(path, &fp, &st, err) != AD_OK) return AD_ERR;
    if ((size_t)st.st_size > max_len) {
        fclose(fp);
        return ad_error_set(err, "%s: file is %lld bytes, more than the limit of %zu", path,
                            (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    if (read_prefix(fp, path, n, out, err) != AD_OK) return AD_ERR;
    if (len) *len = n;
    return AD_OK;
}

int ad_read_file_head(const char *path, size_t n, char **out, size_t *file_size, ad_error *err) {
    *out = NULL;
    FILE *fp;
    struct stat st;
    if (open_regular(path, &fp, &st, err) != AD_OK) return AD_ERR;
    *file_size = (size_t)st.st_size;
    if (*file_size < n) {
        fclose(fp);
        return ad_error_set(err, "%s: file is %zu bytes, too short for %zu", path, *file_size, n);
    }
    return read_prefix(fp, path, n, out, err);
}
