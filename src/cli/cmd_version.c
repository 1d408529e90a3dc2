/* cmd_version.c: `autodidact version`. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

#define AD_VERSION "0.1.0"

int cmd_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: autodidact version\n\nPrints the version.\n");
        return 0;
    }
    printf("autodidact %s\n", AD_VERSION);
    return 0;
}
