/* dist.c: the process group over Open MPI (see dist.h); the only file that
 * includes mpi.h. Not here: what is sent (the run's messages are in
 * src/loop/run_dist.c).
 *
 * Every transfer is a nonblocking MPI call finished by wait_done: with a
 * timeout it polls MPI_Test (spinning for a millisecond, then napping up to
 * 1 ms between tests) until the request completes or the deadline passes, and a
 * request still pending then stops the job (timed_out). The "await" calls
 * wait without a deadline: their peer is computing, not stuck. */
#include "dist/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* transfers go in pieces of at most this many bytes (MPI counts are int) */
#define PIECE ((size_t)1 << 30)

static int joined; /* MPI_Init was called by ad_dist_init */

/* seconds a wait may last (0: no limit), and what the run is doing */
static double timeout_s = AD_DIST_TIMEOUT_DEFAULT;
static char stage[160] = "starting";

/* 1 when a launcher started this process (Open MPI's mpirun, or PMIx: srun). */
static int launched(void) {
    const char *a = getenv("OMPI_COMM_WORLD_SIZE"), *b = getenv("PMIX_RANK");
    return (a && *a) || (b && *b);
}

int ad_dist_init(int *argc, char ***argv, ad_error *err) {
    if (joined || !launched()) return AD_OK;
    int provided = 0;
    /* FUNNELED: only the main thread calls MPI (the kernels' OpenMP threads never do) */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ad_error_set(err, "MPI_Init failed (launched by mpirun/srun: "
                                 "OMPI_COMM_WORLD_SIZE or PMIX_RANK is set)");
    joined = 1;
    return AD_OK;
}

void ad_dist_finalize(void) {
    if (!joined) return;
    MPI_Finalize();
    joined = 0;
}

int ad_dist_active(void) {
    return joined;
}

int ad_dist_rank(void) {
    int r = 0;
    if (joined) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int ad_dist_size(void) {
    int n = 1;
    if (joined) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

void ad_dist_abort(const char *msg, int code) {
    fprintf(stderr, "autodidact (rank %d of %d): %s\n", ad_dist_rank(), ad_dist_size(), msg);
    fflush(stderr);
    if (joined) MPI_Abort(MPI_COMM_WORLD, code);
}

double ad_dist_set_timeout(double seconds) {
    const char *env = getenv("AD_DIST_TIMEOUT");
    char *end = NULL;
    double v = env && *env ? strtod(env, &end) : 0;
    timeout_s = env && *env && end && *end == '\0' && v >= 0 ? v : seconds;
    return timeout_s;
}

void ad_dist_set_stage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stage, sizeof stage, fmt, ap);
    va_end(ap);
    if (n < 0) snprintf(stage, sizeof stage, "?");
}

/* A wait past the deadline: which rank, what it waited for, for how long and
 * in which stage; then the job stops (a pending collective cannot be taken
 * back, so there is no error to return to). */
static void timed_out(const char *what, double waited) {
    char msg[512];
    snprintf(msg, sizeof msg,
             "timed out: %s waited %.1f s (timeout %g s: run.dist_timeout, or the environment's "
             "AD_DIST_TIMEOUT) during %s: another rank stalled or died; stopping every rank",
             what, waited, timeout_s, stage);
    ad_dist_abort(msg, 3);
}

/* Finishes *req: bounded by the timeout when `timed` and one is set, else a
 * plain MPI_Wait. `what` names the operation for the timeout's message. */
static int wait_done(MPI_Request *req, int timed, const char *what) {
    if (!timed || timeout_s <= 0) return MPI_Wait(req, MPI_STATUS_IGNORE);
    double t0 = MPI_Wtime();
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        double waited = MPI_Wtime() - t0;
        if (waited > timeout_s) timed_out(what, waited);
        if (waited < 1e-3) continue; /* the first millisecond: spin, as MPI_Wait does */
        /* then nap a tenth of the wait so far (at most 1 ms): the request is
         * noticed at most ~10% late, and an idle rank leaves its core alone */
        double nap = waited / 10 < 1e-3 ? waited / 10 : 1e-3;
        struct timespec ts = {0, (long)(nap * 1e9)};
        nanosleep(&ts, NULL);
    }
}

int ad_dist_barrier(ad_error *err) {
    if (!joined) return AD_OK;
    MPI_Request req;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &req) != MPI_SUCCESS ||
        wait_done(&req, 1, "MPI_Barrier") != MPI_SUCCESS)
        return ad_error_set(err, "MPI_Barrier failed");
    return AD_OK;
}

static int bcast(void *buf, size_t n, int root, int timed, ad_error *err) {
    if (!joined) return AD_OK;
    char what[96];
    snprintf(what, sizeof what, "MPI_Bcast of %zu bytes from rank %d", n, root);
    for (size_t off = 0; off < n; off += PIECE) {
        size_t k = n - off < PIECE ? n - off : PIECE;
        MPI_Request req;
        if (MPI_Ibcast((char *)buf + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD, &req) !=
                MPI_SUCCESS ||
            wait_done(&req, timed, what) != MPI_SUCCESS)
            return ad_error_set(err, "%s failed", what);
    }
    return AD_OK;
}

int ad_dist_bcast(void *buf, size_t n, int root, ad_error *err) {
    return bcast(buf, n, root, 1, err);
}

int ad_dist_bcast_await(void *buf, size_t n, int root, ad_error *err) {
    return bcast(buf, n, root, 0, err);
}

int ad_dist_bcast_bytes(void **buf, size_t *n, int root, ad_error *err) {
    if (!joined) return AD_OK;
    uint64_t len = *n;
    if (ad_dist_bcast(&len, sizeof len, root, err) != AD_OK) return AD_ERR;
    if (ad_dist_rank() != root) {
        *buf = malloc(len ? len : 1);
        if (!*buf) return ad_error_set(err, "out of memory (%llu bytes)", (unsigned long long)len);
        *n = len;
    }
    return ad_dist_bcast(*buf, len, root, err);
}

static int dist_send(const void *buf, size_t n, int peer, int tag, int timed, ad_error *err) {
    char what[96];
    snprintf(what, sizeof what, "MPI_Send of %zu bytes to rank %d", n, peer);
    for (size_t off = 0; off < n; off += PIECE) {
        size_t k = n - off < PIECE ? n - off : PIECE;
        MPI_Request req;
        if (MPI_Isend((const char *)buf + off, (int)k, MPI_BYTE, peer, tag, MPI_COMM_WORLD, &req) !=
                MPI_SUCCESS ||
            wait_done(&req, timed, what) != MPI_SUCCESS)
            return ad_error_set(err, "%s failed", what);
    }
    return AD_OK;
}

static int dist_recv(void *buf, size_t n, int peer, int tag, int timed, ad_error *err) {
    char what[96];
    snprintf(what, sizeof what, "MPI_Recv of %zu bytes from rank %d", n, peer);
    for (size_t off = 0; off < n; off += PIECE) {
        size_t k = n - off < PIECE ? n - off : PIECE;
        MPI_Request req;
        if (MPI_Irecv((char *)buf + off, (int)k, MPI_BYTE, peer, tag, MPI_COMM_WORLD, &req) !=
                MPI_SUCCESS ||
            wait_done(&req, timed, what) != MPI_SUCCESS)
            return ad_error_set(err, "%s failed", what);
    }
    return AD_OK;
}

int ad_dist_send(const void *buf, size_t n, int peer, int tag, ad_error *err) {
    return dist_send(buf, n, peer, tag, 1, err);
}

int ad_dist_recv(void *buf, size_t n, int peer, int tag, ad_error *err) {
    return dist_recv(buf, n, peer, tag, 1, err);
}

/* The length goes first, then the bytes. With `await` the peer may still be
 * computing: the sender's waits are untimed (the 8-byte length leaves at once,
 * but a large message waits until the receiver asks for it), and so is the
 * receiver's wait for the length; the bytes follow it at once, so the
 * receiver's wait for them is timed. */
static int send_bytes(const void *buf, size_t n, int peer, int tag, int await, ad_error *err) {
    uint64_t len = n;
    if (dist_send(&len, sizeof len, peer, tag, !await, err) != AD_OK) return AD_ERR;
    return dist_send(buf, n, peer, tag, !await, err);
}

static int recv_bytes(void **buf, size_t *n, int peer, int tag, int await, ad_error *err) {
    uint64_t len = 0;
    *buf = NULL;
    if (dist_recv(&len, sizeof len, peer, tag, !await, err) != AD_OK) return AD_ERR;
    *buf = malloc(len ? len : 1);
    if (!*buf) return ad_error_set(err, "out of memory (%llu bytes)", (unsigned long long)len);
    *n = len;
    if (dist_recv(*buf, len, peer, tag, 1, err) == AD_OK) return AD_OK;
    free(*buf);
    *buf = NULL;
    return AD_ERR;
}

int ad_dist_send_bytes(const void *buf, size_t n, int peer, int tag, ad_error *err) {
    return send_bytes(buf, n, peer, tag, 0, err);
}

int ad_dist_recv_bytes(void **buf, size_t *n, int peer, int tag, ad_error *err) {
    return recv_bytes(buf, n, peer, tag, 0, err);
}

int ad_dist_send_bytes_await(const void *buf, size_t n, int peer, int tag, ad_error *err) {
    return send_bytes(buf, n, peer, tag, 1, err);
}

int ad_dist_recv_bytes_await(void **buf, size_t *n, int peer, int tag, ad_error *err) {
    return recv_bytes(buf, n, peer, tag, 1, err);
}

int ad_dist_gather(const void *mine, void *all, size_t n, int root, ad_error *err) {
    if (!joined) {
        memcpy(all, mine, n);
        return AD_OK;
    }
    if (n > INT_MAX) return ad_error_set(err, "gather of %zu bytes per rank: too large", n);
    char what[96];
    snprintf(what, sizeof what, "MPI_Gather of %zu bytes per rank to rank %d", n, root);
    MPI_Request req;
    if (MPI_Igather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &req) !=
            MPI_SUCCESS ||
        wait_done(&req, 1, what) != MPI_SUCCESS)
        return ad_error_set(err, "%s failed", what);
    return AD_OK;
}

/* Every rank's x is gathered at every rank (MPI_Allgather) and summed there
 * in rank order: the same additions in the same order everywhere. It moves
 * size times the data of a reduce-scatter, which is the price of bits that do
 * not depend on the library's reduction tree. */
int ad_dist_allreduce_sum_ordered(float *x, size_t n, ad_error *err) {
    int size = ad_dist_size();
    if (size == 1 || n == 0) return AD_OK;
    if (n > INT_MAX / sizeof(float))
        return ad_error_set(err, "allreduce of %zu floats: too large", n);
    float *all = malloc((size_t)size * n * sizeof *all);
    if (!all) return ad_error_set(err, "out of memory (allreduce of %zu floats)", n);
    MPI_Request req;
    if (MPI_Iallgather(x, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, MPI_COMM_WORLD, &req) !=
            MPI_SUCCESS ||
        wait_done(&req, 1, "MPI_Allgather (ordered allreduce)") != MPI_SUCCESS) {
        free(all);
        return ad_error_set(err, "MPI_Allgather of %zu floats failed", n);
    }
    memcpy(x, all, n * sizeof *x);
    for (int r = 1; r < size; r++) {
        const float *y = all + (size_t)r * n;
        for (size_t i = 0; i < n; i++)
            x[i] += y[i];
    }
    free(all);
    return AD_OK;
}

int ad_dist_allreduce_sum(float *x, size_t n, ad_error *err) {
    if (!joined || n == 0) return AD_OK;
    if (n > INT_MAX) return ad_error_set(err, "allreduce of %zu floats: too large", n);
    MPI_Request req;
    if (MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req) !=
            MPI_SUCCESS ||
        wait_done(&req, 1, "MPI_Allreduce") != MPI_SUCCESS)
        return ad_error_set(err, "MPI_Allreduce of %zu floats failed", n);
    return AD_OK;
}

struct ad_dist_group {
    MPI_Comm comm;
    int rank, size;
};

int ad_dist_group_split(int color, ad_dist_group **out, ad_error *err) {
    *out = NULL;
    if (!joined) return AD_OK;
    MPI_Comm comm;
    if (MPI_Comm_split(MPI_COMM_WORLD, color < 0 ? MPI_UNDEFINED : color, ad_dist_rank(), &comm) !=
        MPI_SUCCESS)
        return ad_error_set(err, "MPI_Comm_split failed");
    if (comm == MPI_COMM_NULL) return AD_OK;
    ad_dist_group *g = calloc(1, sizeof *g);
    if (!g) {
        MPI_Comm_free(&comm);
        return ad_error_set(err, "out of memory");
    }
    g->comm = comm;
    MPI_Comm_rank(comm, &g->rank);
    MPI_Comm_size(comm, &g->size);
    *out = g;
    return AD_OK;
}

void ad_dist_group_free(ad_dist_group *g) {
    if (!g) return;
    if (joined) MPI_Comm_free(&g->comm);
    free(g);
}

int ad_dist_group_rank(const ad_dist_group *g) {
    return g ? g->rank : 0;
}

int ad_dist_group_size(const ad_dist_group *g) {
    return g ? g->size : 1;
}

int ad_dist_group_allgather(const ad_dist_group *g, const void *mine, void *all, size_t n,
                            ad_error *err) {
    if (!g) {
        memcpy(all, mine, n);
        return AD_OK;
    }
    if (n > INT_MAX) return ad_error_set(err, "allgather of %zu bytes per rank: too large", n);
    char what[96];
    snprintf(what, sizeof what, "MPI_Allgather of %zu bytes per rank in a group of %d", n, g->size);
    MPI_Request req;
    if (MPI_Iallgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, g->comm, &req) !=
            MPI_SUCCESS ||
        wait_done(&req, 1, what) != MPI_SUCCESS)
        return ad_error_set(err, "%s failed", what);
    return AD_OK;
}

double ad_dist_time(void) {
    if (joined) return MPI_Wtime();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
