/* main.c: the autodidact command: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "dist/dist.h"
#include "util/memory.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "start a self-improvement run from a config file"},
    {"resume", cmd_resume, "continue an interrupted run"},
    {"status", cmd_status, "the rounds and the accuracy grid of a run"},
    {"eval", cmd_eval, "held-out accuracy per level of a checkpoint"},
    {"export", cmd_export, "a round's candidates and decisions as JSONL"},
    {"report", cmd_report, "a run (or several) as one self-contained HTML page"},
    {"train", cmd_train, "train a fresh model on a task's labelled problems"},
    {"sample", cmd_sample, "decode completions of a prompt from a checkpoint"},
    {"score", cmd_score, "teacher-forced log-probabilities of JSONL pairs"},
    {"tasks", cmd_tasks, "list, sample and verify task problems"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: autodidact COMMAND [ARGS...]\n\n"
                 "autodidact trains a small transformer from scratch and lets it teach itself\n"
                 "harder problems, round after round.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'autodidact COMMAND --help' for a command's options.\n");
}

/* Under mpirun (more than one rank) only run, resume, eval and train are
 * spread over the ranks; every other command would do the same work once per
 * rank. */
static int distributed(const char *name) {
    return !strcmp(name, "run") || !strcmp(name, "resume") || !strcmp(name, "eval") ||
           !strcmp(name, "train");
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        if (ad_dist_size() > 1 && !distributed(argv[1])) {
            if (ad_dist_rank() == 0)
                fprintf(stderr,
                        "autodidact %s: runs in one process; under mpirun only run, "
                        "resume, eval and train are spread over ranks (start it without "
                        "mpirun)\n",
                        argv[1]);
            return 2;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "autodidact: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* MPI is joined only when a launcher started us (dist.h): alone, nothing changes. */
int main(int argc, char **argv) {
    cli_bound_openmp_spinning(argv); /* first: it may re-execute the binary */
    ad_memory_keep_freed();          /* before any thread: see util/memory.c */
    ad_error err = {{0}};
    if (ad_dist_init(&argc, &argv, &err) != AD_OK) {
        fprintf(stderr, "autodidact: %s\n", err.msg);
        return 1;
    }
    int rc = dispatch(argc, argv);
    ad_dist_finalize();
    return rc;
}
