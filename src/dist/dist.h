/* dist.h: the process group a run is spread over (Open MPI), behind a small
 * API so that no other file includes mpi.h.
 *
 * The same binary runs alone or under a launcher (mpirun, srun --mpi=pmix).
 * MPI is initialised only when a launcher set the environment
 * (OMPI_COMM_WORLD_SIZE or PMIX_RANK): a plain `autodidact` never touches MPI
 * (singleton init is slow and can fail in sandboxes), and then rank is 0, size
 * is 1 and every collective below is a local copy or a no-op.
 *
 * Errors: a failing MPI call aborts the whole job (MPI_ERRORS_ARE_FATAL, the
 * default); ad_dist_abort is how a rank that cannot go on stops the others
 * with a message instead of leaving them waiting. A wait that lasts longer
 * than the timeout (ad_dist_set_timeout) stops the job too: the rank prints
 * what it waited for, for how long, and the stage it was in (ad_dist_set_stage),
 * then calls MPI_Abort. Every call below is bounded by it except the "await"
 * ones, whose peer is computing first (a worker waiting for rank 0's next
 * command, rank 0 waiting for a lineage a worker trains): those wait as long
 * as the work takes. Sizes are bytes (size_t);
 * transfers over 1 GiB go in pieces. All ranks are assumed to run the same
 * binary on the same architecture (structs travel as bytes). */
#ifndef AD_DIST_DIST_H
#define AD_DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Joins the process group when launched by mpirun/srun (see above); else does
 * nothing. Call once, first thing in main. On error nothing is initialised. */
int ad_dist_init(int *argc, char ***argv, ad_error *err);

/* Leaves the group (MPI_Finalize) when ad_dist_init joined one. */
void ad_dist_finalize(void);

/* 1 when running under a launcher with MPI initialised. This function can't fail. */
int ad_dist_active(void);

/* This process's rank (0 alone) and the number of ranks (1 alone). */
int ad_dist_rank(void);
int ad_dist_size(void);

/* Prints "autodidact (rank R of N): MSG" to stderr and stops every rank of
 * the job with `code` (MPI_Abort); alone, it returns and the caller exits. */
void ad_dist_abort(const char *msg, int code);

/* Seconds any one wait may last before the job is stopped (0: no limit; the
 * default is AD_DIST_TIMEOUT_DEFAULT). The environment variable
 * AD_DIST_TIMEOUT (seconds), when set to a number >= 0, wins over `seconds`.
 * Returns the timeout in force. This function can't fail. */
#define AD_DIST_TIMEOUT_DEFAULT 600.0
double ad_dist_set_timeout(double seconds);

/* Names what this rank is doing, printf-style (e.g. "round 1 optimize,
 * lineage 0, step 10"), for the timeout's message. This function can't fail
 * (a long name is cut). */
void ad_dist_set_stage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Waits for every rank. */
int ad_dist_barrier(ad_error *err);

/* Broadcasts n bytes of buf from root to every rank. */
int ad_dist_bcast(void *buf, size_t n, int root, ad_error *err);

/* The same, not bounded by the timeout: for a worker waiting while the root
 * computes (rank 0's next command). */
int ad_dist_bcast_await(void *buf, size_t n, int root, ad_error *err);

/* Broadcasts a malloc'd byte string of any length from root: on root *buf and
 * *n are the input; elsewhere *buf receives a malloc'd copy (free it) and *n
 * its length. */
int ad_dist_bcast_bytes(void **buf, size_t *n, int root, ad_error *err);

/* Point to point: n bytes to / from rank `peer` with message tag `tag`. */
int ad_dist_send(const void *buf, size_t n, int peer, int tag, ad_error *err);
int ad_dist_recv(void *buf, size_t n, int peer, int tag, ad_error *err);

/* A length-prefixed byte string to / from a peer; recv mallocs *buf. */
int ad_dist_send_bytes(const void *buf, size_t n, int peer, int tag, ad_error *err);
int ad_dist_recv_bytes(void **buf, size_t *n, int peer, int tag, ad_error *err);

/* The same, not bounded by the timeout where the peer may still be computing:
 * the sender's waits, and the receiver's wait for the length (its wait for
 * the bytes that follow is bounded). */
int ad_dist_send_bytes_await(const void *buf, size_t n, int peer, int tag, ad_error *err);
int ad_dist_recv_bytes_await(void **buf, size_t *n, int peer, int tag, ad_error *err);

/* Gathers n bytes from every rank into all[size * n] at root, in rank order
 * (all is only read at root). */
int ad_dist_gather(const void *mine, void *all, size_t n, int root, ad_error *err);

/* Sums x[n] over the ranks into every rank's x, adding the ranks' arrays in
 * rank order (0 + 1 + 2 ...), so that the bits depend on the ranks' inputs
 * alone, never on the network's reduction tree. scratch: none needed from the
 * caller; on out of memory nothing is changed. */
int ad_dist_allreduce_sum_ordered(float *x, size_t n, ad_error *err);

/* The plain MPI_Allreduce(MPI_SUM) of x[n] floats in place (its order is the
 * library's: for benchmarks, not for bits that must repeat). */
int ad_dist_allreduce_sum(float *x, size_t n, ad_error *err);

/* ---- groups: the ranks that share one lineage's steps (run.shards) ---------- */

typedef struct ad_dist_group ad_dist_group;

/* Splits the job into groups, collectively over every rank: ranks with the
 * same color form one group, ordered by rank. Alone (or color < 0, to stay
 * out) *out is NULL, which the functions below treat as a group of one. */
int ad_dist_group_split(int color, ad_dist_group **out, ad_error *err);
void ad_dist_group_free(ad_dist_group *g);

/* This rank's place in g, and g's size (0 and 1 for NULL). */
int ad_dist_group_rank(const ad_dist_group *g);
int ad_dist_group_size(const ad_dist_group *g);

/* Gathers n bytes from every member into all[size * n] on every member, in
 * group rank order (NULL: a copy of mine). */
int ad_dist_group_allgather(const ad_dist_group *g, const void *mine, void *all, size_t n,
                            ad_error *err);

/* Wall-clock seconds (MPI_Wtime alone: a monotonic clock). */
double ad_dist_time(void);

#endif
