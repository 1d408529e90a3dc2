/* config.h: typed configuration from INI files (parsed by inih) and
 * `section.key=value` overrides, written back as INI for a run's snapshot.
 *
 * A program describes its settings once, in a registration table: for each
 * key its name ("model.layers"), type, the field of the program's own config
 * struct that holds it (offsetof), a default written as it would be in a
 * file, and a one-line doc. This module fills the struct from the defaults,
 * then from a file, then from overrides, and refuses anything it cannot
 * place: an unknown key, a key set twice in one file, a value of the wrong
 * type or out of range. Every error names the source and line, the key and the
 * value:  "run.ini:12: model.layers = 'abc': not an integer".
 *
 * File syntax (docs/config.md): `[section]` lines, `key = value` lines,
 * comments on their own line starting with ';' or '#', or after a value
 * starting with " ;". Indentation is ignored and there are no multi-line
 * values. A key before any section may be written with its full dotted name.
 *
 * Not here: the keys themselves (the loop registers them) or where the
 * snapshot goes (the run directory). */
#ifndef AD_UTIL_CONFIG_H
#define AD_UTIL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/level.h"

/* Longest value text accepted anywhere, so every value fits one INI line. */
#define AD_CONFIG_VALUE_MAX 160
/* Longest key name ("section.key"). */
#define AD_CONFIG_NAME_MAX 64
/* Largest config file read. */
#define AD_CONFIG_FILE_MAX (1u << 20)

typedef enum ad_config_type {
    AD_CONFIG_INT,      /* int64_t; decimal, optional sign */
    AD_CONFIG_SIZE,     /* size_t; decimal, no sign */
    AD_CONFIG_U64,      /* uint64_t (seeds); decimal, no sign */
    AD_CONFIG_DOUBLE,   /* double; finite */
    AD_CONFIG_FLOAT,    /* float; finite */
    AD_CONFIG_BOOL,     /* int 0/1; true/false, yes/no, on/off, 1/0 (any case) */
    AD_CONFIG_STRING,   /* char *, owned by the struct (ad_config_free frees it) */
    AD_CONFIG_ENUM,     /* int: index into choices; the names are matched in any case */
    AD_CONFIG_LEVELS,   /* ad_level_list, e.g. "1-8" */
    AD_CONFIG_SCHEDULE, /* ad_level_schedule, e.g. "pairs(6-10)" */
} ad_config_type;

typedef struct ad_config_key {
    const char *name; /* "section.key" or "key": [a-z0-9_], at most one '.' */
    ad_config_type type;
    size_t offset;              /* offsetof(your struct, field) */
    const char *def;            /* default, written as in a file */
    const char *doc;            /* one line, at most 120 characters */
    const char *const *choices; /* AD_CONFIG_ENUM: NULL-terminated names */
    int has_range;              /* numeric types: enforce min <= value <= max */
    double min, max;
} ad_config_key;

typedef struct ad_config_schema {
    const ad_config_key *keys;
    size_t n_keys;
} ad_config_schema;

/* Checks a registration table: valid and distinct names, known types, enum
 * choices present, docs short, every default parses and is in range. */
int ad_config_schema_check(const ad_config_schema *s, ad_error *err);

/* Finds a key by its full name; NULL when unknown. This function can't fail. */
const ad_config_key *ad_config_find(const ad_config_schema *s, const char *name);

/* Checks the schema and sets every registered field of cfg to its default.
 * The fields are overwritten without being freed: call it on a zeroed struct
 * (or after ad_config_free). On error cfg may be partly filled and must still
 * be passed to ad_config_free. */
int ad_config_defaults(const ad_config_schema *s, void *cfg, ad_error *err);

/* Sets one key from text; `where` prefixes messages ("run.ini:12",
 * "--set"). On error the field is unchanged. */
int ad_config_set_value(const ad_config_schema *s, void *cfg, const char *name, const char *value,
                        const char *where, ad_error *err);

/* Applies an override "section.key=value" (blanks around name and value are
 * ignored), as given to --set. On error the field is unchanged. */
int ad_config_set(const ad_config_schema *s, void *cfg, const char *assignment, ad_error *err);

/* Reads INI text; `source` names it in messages (a path). Keys not in the text
 * keep their current values. Stops at the first error; on error the fields
 * set before it keep their new values (discard cfg or reload). */
int ad_config_load_string(const ad_config_schema *s, void *cfg, const char *text,
                          const char *source, ad_error *err);

/* ad_config_load_string on a file's contents (at most AD_CONFIG_FILE_MAX bytes). */
int ad_config_load_file(const ad_config_schema *s, void *cfg, const char *path, ad_error *err);

/* Writes one key's value as text (what the file would hold) into buf; returns
 * AD_ERR when it does not fit in cap bytes. */
int ad_config_format_value(const ad_config_key *k, const void *cfg, char *buf, size_t cap,
                           ad_error *err);

/* The whole config as INI text (malloc'd; the caller frees): every key,
 * grouped by section in registration order, each after a "; doc" comment.
 * Loading it over the defaults gives back the same values. */
int ad_config_dump(const ad_config_schema *s, const void *cfg, char **out, ad_error *err);

/* ad_config_dump written atomically to path. */
int ad_config_save(const ad_config_schema *s, const void *cfg, const char *path, ad_error *err);

/* A Markdown table of the keys (key, type, default, meaning) for docs/config.md;
 * malloc'd. */
int ad_config_doc_table(const ad_config_schema *s, char **out, ad_error *err);

/* Frees the strings, level lists and schedules held by cfg's registered
 * fields and zeroes them. This function can't fail. */
void ad_config_free(const ad_config_schema *s, void *cfg);

#endif
