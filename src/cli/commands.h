/* commands.h: one entry point per subcommand; each takes argv with argv[0] the
 * subcommand's name and returns the process exit status. */
#ifndef AD_CLI_COMMANDS_H
#define AD_CLI_COMMANDS_H

int cmd_version(int argc, char **argv);
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
