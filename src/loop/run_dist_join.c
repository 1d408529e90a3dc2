/* run_dist_join.c: how the ranks of an MPI job join one run (ad_run_join):
 * rank 0 creates or opens the run, refuses rank counts the work cannot use,
 * and writes a token file into the run directory; every other rank must read
 * that token at the same path (a shared file system) and opens the run as a
 * worker; the first rank that cannot stops the start with a message naming it
 * and its host. Not here: what the ranks do once joined (run_dist.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "loop/run_internal.h"
#include "util/atomic_file.h"

/* What rank 0 tells the others once it has created or opened the run. */
typedef struct dist_hello {
    int32_t ok;
    char dir[AD_RUN_DIR_MAX];
    char token[64]; /* the content of DIR/dist-check */
    uint64_t identity, config_hash;
} dist_hello;

/* Each rank's answer: whether it sees the run, and why not. */
typedef struct dist_answer {
    int32_t ok;
    char host[64];
    char msg[512];
} dist_answer;

/* Refuses more ranks than the work can use: up to one rank per lineage, or a
 * whole number G of ranks per lineage that divides run.shards (each step's
 * slices split evenly over the G ranks). */
int run_dist_ranks_check(const ad_run_config *c, size_t n, ad_error *err) {
    size_t L = c->lineages, S = c->shards;
    if (n <= L) return AD_OK;
    if (n % L == 0 && S % (n / L) == 0) return AD_OK;
    return ad_error_set(err,
                        "%zu ranks cannot share %zu lineage(s) x %zu shard(s) (run.lineages x "
                        "run.shards): start at most %zu (whole lineages per rank), or %zu x G "
                        "with G dividing %zu (G ranks per lineage split its shards), so at "
                        "most %zu ranks can be used",
                        n, L, S, L, L, S, L * S);
}

/* Rank 0: refuses ranks the work cannot use, then writes the token file. */
static int hello_make(ad_run *run, dist_hello *h, ad_error *err) {
    if (run_dist_ranks_check(&run->cfg, (size_t)ad_dist_size(), err) != AD_OK) return AD_ERR;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(h->token, sizeof h->token, "%016llx-%ld-%ld\n", (unsigned long long)run->identity,
             (long)getpid(), (long)ts.tv_nsec);
    snprintf(h->dir, sizeof h->dir, "%s", run->dir);
    h->identity = run->identity;
    h->config_hash = run->config_hash;
    char path[AD_RUN_PATH_MAX];
    snprintf(path, sizeof path, "%s/dist-check", run->dir);
    return ad_atomic_write(path, h->token, strlen(h->token), err);
}

/* A worker: checks the token rank 0 wrote, then opens the run as a worker. */
static int hello_check(const dist_hello *h, ad_run **run, ad_error *err) {
    char path[AD_RUN_PATH_MAX], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/dist-check", h->dir);
    int rc = ad_read_file(path, 4096, &text, &len, err);
    if (rc == AD_OK && (len != strlen(h->token) || memcmp(text, h->token, len) != 0))
        rc = ad_error_set(err, "%s holds another job's token", path);
    free(text);
    if (rc != AD_OK)
        return ad_error_prefix(err,
                               "the run directory is not visible here as rank 0 wrote it (every "
                               "rank must see it at the same path, on a shared file system; "
                               "check with `mpirun -np N ls -l %s`): ",
                               h->dir);
    if (run_open_worker(run, h->dir, err) != AD_OK) return AD_ERR;
    if ((*run)->config_hash != h->config_hash)
        return ad_error_set(err, "%s/config.ini differs from rank 0's", h->dir);
    (*run)->identity = h->identity;
    return AD_OK;
}

/* Rank 0: every rank's answer; the first failure becomes the error. */
static int answers_check(const dist_answer *a, size_t n, ad_error *err) {
    for (size_t r = 0; r < n; r++)
        if (!a[r].ok) return ad_error_set(err, "rank %zu (host %s): %s", r, a[r].host, a[r].msg);
    return AD_OK;
}

/* Every rank: ranks per lineage, and the group of ranks sharing a lineage
 * (collective; only with more ranks than lineages). */
static int join_groups(ad_run *run, ad_error *err) {
    size_t n = (size_t)ad_dist_size(), L = run->cfg.lineages;
    run->lineage_ranks = n > L ? n / L : 1;
    if (run->lineage_ranks == 1) return AD_OK;
    int color = (int)((size_t)ad_dist_rank() / run->lineage_ranks);
    return ad_dist_group_split(color, &run->group, err);
}

int ad_run_join(ad_run **run, int status, ad_error *err) {
    if (ad_dist_size() == 1) return status;
    int rank = ad_dist_rank();
    size_t n = (size_t)ad_dist_size();
    dist_hello h = {0};
    if (rank == 0) h.ok = status == AD_OK && hello_make(*run, &h, err) == AD_OK;
    if (ad_dist_bcast(&h, sizeof h, 0, err) != AD_OK) return AD_ERR;
    if (!h.ok) return rank == 0 ? AD_ERR : ad_error_set(err, "rank 0 could not start the run");
    dist_answer mine = {.ok = 1}, *all = rank == 0 ? calloc(n, sizeof *all) : NULL;
    gethostname(mine.host, sizeof mine.host - 1);
    ad_error why = {{0}};
    if (rank != 0 && hello_check(&h, run, &why) != AD_OK) {
        mine.ok = 0;
        snprintf(mine.msg, sizeof mine.msg, "%.500s", why.msg);
    }
    int32_t ok = 1;
    int rc = ad_dist_gather(&mine, all, sizeof mine, 0, err);
    if (rank == 0) ok = rc == AD_OK && all && answers_check(all, n, err) == AD_OK;
    free(all);
    if (ad_dist_bcast(&ok, sizeof ok, 0, err) != AD_OK) return AD_ERR;
    if (rank == 0) {
        char path[AD_RUN_PATH_MAX];
        snprintf(path, sizeof path, "%s/dist-check", h.dir);
        unlink(path);
        if (ok && n <= (*run)->cfg.lineages)
            run_log(*run, "spread over %zu ranks: lineage l trains on rank l %% %zu", n, n);
        else if (ok)
            run_log(*run,
                    "spread over %zu ranks: lineage l on ranks l*%zu .. l*%zu+%zu, which "
                    "split each step's %zu shards",
                    n, n / (*run)->cfg.lineages, n / (*run)->cfg.lineages,
                    n / (*run)->cfg.lineages - 1, (*run)->cfg.shards);
    }
    if (ok) return join_groups(*run, err);
    if (rank != 0) {
        ad_run_free(*run);
        *run = NULL;
        return ad_error_set(err, "%s", mine.ok ? "another rank cannot see the run" : why.msg);
    }
    return AD_ERR;
}
