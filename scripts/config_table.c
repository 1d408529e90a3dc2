/* config_table.c: prints the run keys' table of docs/config.md from the
 * registration table in src/loop/run_config.c. `make docs` splices it into
 * docs/config.md (scripts/config_table.sh); tests/test_run_config.c checks
 * that every registered key has a row. */
#include <stdio.h>
#include <stdlib.h>

#include "loop/run_config.h"
#include "util/config.h"

int main(void) {
    char *table = NULL;
    ad_error err = {{0}};
    if (ad_config_doc_table(ad_run_config_schema(), &table, &err) != AD_OK) {
        fprintf(stderr, "config_table: %s\n", err.msg);
        return 1;
    }
    fputs(table, stdout);
    free(table);
    return 0;
}
