/* commands.h: one entry point per subcommand; each takes argv with argv[0] the
 * subcommand's name and returns the process exit status. */
#ifndef AD_CLI_COMMANDS_H
#define AD_CLI_COMMANDS_H

#include <stddef.h>

int cmd_version(int argc, char **argv);

/* Re-executes the binary once with a bounded OpenMP spin (wait_policy.c),
 * unless the user set the OpenMP wait policy; returns only when it does not. */
void cli_bound_openmp_spinning(char **argv);

/* The OpenMP wait setting in force, in words, into buf[cap]; returns buf. */
const char *cli_openmp_wait(char *buf, size_t cap);
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
