/* atomic_file.h: files that appear whole or not at all.
 *
 * A writer opens PATH.tmp.<pid>, the caller writes through the FILE*, and
 * commit fsyncs the file, renames it over PATH and fsyncs the directory, so a
 * crash at any moment leaves either the old file or the new one. abort removes
 * the temporary file; a commit also removes the temporaries that killed
 * writers left beside PATH. Used for checkpoints, configs, datasets and results. */
#ifndef AD_UTIL_ATOMIC_FILE_H
#define AD_UTIL_ATOMIC_FILE_H

#include <stdio.h>

#include "util/error.h"

typedef struct ad_atomic_file {
    FILE *fp;
    char path[4096];
    char tmp_path[4200];
} ad_atomic_file;

/* Opens a temporary file beside path. On error nothing is created. */
int ad_atomic_open(ad_atomic_file *f, const char *path, ad_error *err);

/* Flushes, fsyncs, renames over the final path and fsyncs the directory.
 * On error the temporary file is removed and the old file (if any) is intact. */
int ad_atomic_commit(ad_atomic_file *f, ad_error *err);

/* 1 when name is base.tmp.<pid> (an atomic write's temporary) and that
 * process is this one or no longer runs: a leftover of a killed writer that
 * is safe to remove. This function can't fail. */
int ad_tmp_is_stale(const char *name, const char *base);

/* Closes and removes the temporary file. This function can't fail. */
void ad_atomic_abort(ad_atomic_file *f);

/* Writes len bytes to path atomically. */
int ad_atomic_write(const char *path, const void *data, size_t len, ad_error *err);

/* fsyncs a directory so that renames and creations inside it are durable. */
int ad_fsync_dir(const char *dir, ad_error *err);

/* Creates a directory and its parents (mkdir -p); existing ones are fine. */
int ad_mkdir_p(const char *path, ad_error *err);

/* Reads a whole file into a malloc'd buffer (NUL-terminated; *len excludes the
 * NUL). Files larger than max_len are refused. On error *out is NULL. */
int ad_read_file(const char *path, size_t max_len, char **out, size_t *len, ad_error *err);
/* Reads only the first n bytes of a regular file (a header) and its size; a
 * file shorter than n is an error. *out is NUL-terminated; free it. */
int ad_read_file_head(const char *path, size_t n, char **out, size_t *file_size, ad_error *err);

#endif
