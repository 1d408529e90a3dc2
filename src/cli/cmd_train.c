/* cmd_train.c: `autodidact train`: supervised training of a fresh model on a
 * task's labelled problems, resumable, with a progress line and a final
 * accuracy table. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "loop/complete.h"
#include "loop/evaluate.h"
#include "loop/run.h"
#include "loop/train_driver.h"
#include "model/checkpoint.h"
#include "model/kernels.h"
#include "model/trainer.h"
#include "util/atomic_file.h"
#include "util/progress.h"

static const char *usage_text =
    "usage: autodidact train --task NAME --levels A-B --steps N --out DIR [options]\n\n"
    "Trains a fresh transformer on labelled problems of a task, at levels drawn uniformly\n"
    "from --levels, freshly generated every step from --seed. Checkpoints go to DIR (every\n"
    "--save-every steps and at the end); when DIR already holds a checkpoint, training\n"
    "resumes from it and ends bit-identical to an uninterrupted run.\n\n"
    "options:\n"
    "  --task NAME          a built-in task (see `autodidact tasks list`) or file:PATH\n"
    "  --levels LIST        training levels, e.g. 1-8 or 1-5x1-5 (required)\n"
    "  --steps N            optimizer steps (required)\n"
    "  --out DIR            checkpoint directory (required)\n"
    "  --layers N           transformer blocks (default 3)\n"
    "  --heads N            attention heads (default 4)\n"
    "  --dim N              d_model (default 128)\n"
    "  --ffn N              SwiGLU hidden size (default 4*dim)\n"
    "  --pos none|rope      position encoding (default none)\n"
    "  --rope-theta X       RoPE base (default 10000)\n"
    "  --tie                tie the LM head to the embedding\n"
    "  --max-len N          longest sequence in tokens (default: enough for 2x the top level)\n"
    "  --batch N            sequences per micro-batch (default 64)\n"
    "  --accum N            micro-batches per step (default 1)\n"
    "  --shards S           cut each step's batch into S slices whose gradients are summed\n"
    "                       in slice order (default 1); the bits depend on S, not on\n"
    "                       the ranks: under mpirun with N ranks (N dividing S) each\n"
    "                       rank computes S/N slices, and rank 0 alone writes DIR\n"
    "  --precision P        fp32 (default) or bf16: training's matrix products on bf16\n"
    "                       operands with fp32 sums (CPUs with AVX512-BF16; about twice the\n"
    "                       product rate); weights and optimizer stay fp32\n"
    "  --no-pack            one sequence per padded row (default: several short sequences\n"
    "                       share a row, each attending only to itself; same loss to rounding)\n"
    "  --lr X               peak learning rate (default 1e-3)\n"
    "  --warmup N           warmup steps (default 10% of --steps)\n"
    "  --decay N            cosine decay steps at the end (default 20% of --steps)\n"
    "  --weight-decay X     AdamW decoupled weight decay (default 0.01)\n"
    "  --independent-lengths  draw operand lengths independently (addition tasks)\n"
    "  --equal-length-share X  with --independent-lengths: the share of problems (0-1)\n"
    "                       whose operands both have the level's length anyway (default 0)\n"
    "  --save-every N       checkpoint period in steps (default 500)\n"
    "  --eval-n N           held-out problems per level for the final table (default 128;\n"
    "                       0 skips it)\n"
    "  --seed S             seed for weights and data (default 1)\n"
    "  --threads N          compute threads (default: all cores)\n";

typedef struct train_args {
    const char *task, *levels, *out, *pos, *precision;
    size_t steps, layers, heads, dim, ffn, max_len, batch, accum, warmup, decay, save_every;
    size_t eval_n, threads, shards;
    float lr, weight_decay, rope_theta;
    double equal_share;
    int tie, independent, warmup_set, decay_set, no_pack;
    uint64_t seed;
} train_args;

static int parse_args(int argc, char **argv, train_args *a) {
    static const struct option opts[] = {{"task", 1, 0, 't'},
                                         {"levels", 1, 0, 'l'},
                                         {"steps", 1, 0, 's'},
                                         {"out", 1, 0, 'o'},
                                         {"layers", 1, 0, 'L'},
                                         {"heads", 1, 0, 'H'},
                                         {"dim", 1, 0, 'd'},
                                         {"ffn", 1, 0, 'f'},
                                         {"pos", 1, 0, 'p'},
                                         {"rope-theta", 1, 0, 'r'},
                                         {"tie", 0, 0, 'y'},
                                         {"max-len", 1, 0, 'm'},
                                         {"batch", 1, 0, 'b'},
                                         {"accum", 1, 0, 'a'},
                                         {"lr", 1, 0, 'R'},
                                         {"warmup", 1, 0, 'w'},
                                         {"decay", 1, 0, 'D'},
                                         {"weight-decay", 1, 0, 'W'},
                                         {"independent-lengths", 0, 0, 'i'},
                                         {"equal-length-share", 1, 0, 'q'},
                                         {"save-every", 1, 0, 'S'},
                                         {"eval-n", 1, 0, 'e'},
                                         {"seed", 1, 0, 'x'},
                                         {"threads", 1, 0, 'T'},
                                         {"no-pack", 0, 0, 'P'},
                                         {"shards", 1, 0, 'g'},
                                         {"precision", 1, 0, 'F'},
                                         {0, 0, 0, 0}};
    ad_model_config mc = ad_model_default_config(); /* the model defaults live there */
    *a = (train_args){.pos = mc.pos == AD_POS_ROPE ? "rope" : "none",
                      .precision = "fp32",
                      .layers = mc.n_layers,
                      .heads = mc.n_heads,
                      .dim = mc.d_model,
                      .tie = mc.tie_embeddings,
                      .rope_theta = mc.rope_theta,
                      .batch = 64,
                      .accum = 1,
                      .shards = 1,
                      .save_every = 500,
                      .eval_n = 128,
                      .lr = 1e-3f,
                      .weight_decay = 0.01f,
                      .seed = 1};
    int c, bad = 0;
    const char *C = "train";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            a->task = optarg;
            break;
        case 'l':
            a->levels = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'p':
            a->pos = optarg;
            break;
        case 'y':
            a->tie = 1;
            break;
        case 'P':
            a->no_pack = 1;
            break;
        case 'F':
            a->precision = optarg;
            break;
        case 'i':
            a->independent = 1;
            break;
        case 's':
            bad |= cli_parse_size(C, "--steps", optarg, &a->steps);
            break;
        case 'L':
            bad |= cli_parse_size(C, "--layers", optarg, &a->layers);
            break;
        case 'H':
            bad |= cli_parse_size(C, "--heads", optarg, &a->heads);
            break;
        case 'd':
            bad |= cli_parse_size(C, "--dim", optarg, &a->dim);
            break;
        case 'f':
            bad |= cli_parse_size(C, "--ffn", optarg, &a->ffn);
            break;
        case 'r':
            bad |= cli_parse_float(C, "--rope-theta", optarg, "model.rope_theta", &a->rope_theta);
            break;
        case 'm':
            bad |= cli_parse_size(C, "--max-len", optarg, &a->max_len);
            break;
        case 'b':
            bad |= cli_parse_size(C, "--batch", optarg, &a->batch);
            break;
        case 'a':
            bad |= cli_parse_size(C, "--accum", optarg, &a->accum);
            break;
        case 'R':
            bad |= cli_parse_float(C, "--lr", optarg, "base.lr", &a->lr);
            break;
        case 'w':
            bad |= cli_parse_size(C, "--warmup", optarg, &a->warmup);
            a->warmup_set = 1;
            break;
        case 'D':
            bad |= cli_parse_size(C, "--decay", optarg, &a->decay);
            a->decay_set = 1;
            break;
        case 'W':
            bad |= cli_parse_float(C, "--weight-decay", optarg, "optim.weight_decay",
                                   &a->weight_decay);
            break;
        case 'q':
            bad |= cli_parse_double(C, "--equal-length-share", optarg, "task.equal_length_share",
                                    &a->equal_share);
            break;
        case 'S':
            bad |= cli_parse_size(C, "--save-every", optarg, &a->save_every);
            break;
        case 'e':
            bad |= cli_parse_size(C, "--eval-n", optarg, &a->eval_n);
            break;
        case 'x':
            bad |= cli_parse_u64(C, "--seed", optarg, &a->seed);
            break;
        case 'T':
            bad |= cli_parse_size(C, "--threads", optarg, &a->threads);
            break;
        case 'g':
            bad |= cli_parse_size(C, "--shards", optarg, &a->shards);
            break;
        default:
            bad = 1;
        }
    }
    if (bad) return -1;
    if (optind != argc || !a->task || !a->levels || !a->out || !a->steps) {
        fprintf(stderr, "autodidact train: --task, --levels, --steps and --out are required\n%s",
                usage_text);
        return -1;
    }
    if (strcmp(a->pos, "none") && strcmp(a->pos, "rope")) {
        fprintf(stderr, "autodidact train: --pos: bad value '%s' (none or rope)\n", a->pos);
        return -1;
    }
    if (strcmp(a->precision, "fp32") && strcmp(a->precision, "bf16")) {
        fprintf(stderr, "autodidact train: --precision: bad value '%s' (fp32 or bf16)\n",
                a->precision);
        return -1;
    }
    if (a->shards == 0 || a->shards > a->batch * a->accum) {
        fprintf(stderr, "autodidact train: --shards: %zu is not in 1..%zu (--batch x --accum)\n",
                a->shards, a->batch * a->accum);
        return -1;
    }
    size_t ranks = (size_t)ad_dist_size();
    if (a->shards % ranks) {
        if (ad_dist_rank() == 0)
            fprintf(stderr,
                    "autodidact train: %zu ranks cannot share --shards %zu: under mpirun the "
                    "ranks split each step's slices, so their number must divide --shards "
                    "(e.g. --shards %zu)\n",
                    ranks, a->shards, ranks);
        return -1;
    }
    if (a->save_every == 0) {
        /* the period of a modulo: 0 has no meaning (run.save_every's range starts at 1 too) */
        fprintf(stderr, "autodidact train: --save-every: bad value '0' (at least 1)\n");
        return -1;
    }
    if (!a->ffn) a->ffn = 4 * a->dim;
    if (!a->warmup_set) a->warmup = a->steps / 10;
    if (!a->decay_set) a->decay = a->steps / 5;
    if (a->warmup + a->decay > a->steps) {
        fprintf(stderr, "autodidact train: --warmup + --decay exceed --steps\n");
        return -1;
    }
    return 0;
}

/* Default max_len: room for problems at twice the top training level (clipped
 * to the task's range), so the model can later be asked past its training. */
static int default_max_len(const ad_task *t, const ad_level_list *levels, uint64_t seed,
                           size_t *out, ad_error *err) {
    ad_level top = levels->v[0], hi = ad_task_level_max(t);
    for (size_t i = 1; i < levels->n; i++)
        if (ad_level_cmp(levels->v[i], top) > 0) top = levels->v[i];
    top.a = 2 * top.a > hi.a ? hi.a : 2 * top.a;
    if (ad_level_is_pair(top)) top.b = 2 * top.b > hi.b ? hi.b : 2 * top.b;
    if (ad_task_sequence_bound(t, top, 16, seed, out, err) != AD_OK) return AD_ERR;
    if (*out < 64) *out = 64;
    return AD_OK;
}

/* The data settings stored with the checkpoint; resuming with others is an error. */
static cJSON *train_settings(const train_args *a) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "task", a->task);
    cJSON_AddStringToObject(d, "levels", a->levels);
    cJSON_AddNumberToObject(d, "seed", (double)a->seed);
    cJSON_AddNumberToObject(d, "steps", (double)a->steps);
    cJSON_AddNumberToObject(d, "batch", (double)a->batch);
    cJSON_AddNumberToObject(d, "accum", (double)a->accum);
    cJSON_AddBoolToObject(d, "independent_lengths", a->independent);
    if (a->equal_share > 0) /* (absent for 0: checkpoints from before the flag resume) */
        cJSON_AddNumberToObject(d, "equal_length_share", a->equal_share);
    if (a->shards > 1) /* (absent for 1: checkpoints from before --shards resume) */
        cJSON_AddNumberToObject(d, "shards", (double)a->shards);
    if (strcmp(a->precision, "fp32")) /* (absent for fp32, as above) */
        cJSON_AddStringToObject(d, "precision", a->precision);
    return d;
}

static char *state_json(const ad_trainer *tr, const train_args *a) {
    char *base = ad_trainer_state_json(tr);
    cJSON *o = cJSON_Parse(base);
    free(base);
    if (!o) return NULL;
    cJSON_AddItemToObject(o, "train", train_settings(a));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int check_resume_matches(const char *json, const train_args *a, ad_error *err) {
    cJSON *o = cJSON_Parse(json), *mine = train_settings(a);
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(o, "train");
    int rc = AD_OK;
    if (!cJSON_IsObject(got)) {
        rc = ad_error_set(err, "%s: the checkpoint was not written by `train`", a->out);
    } else if (!cJSON_Compare(got, mine, 1)) {
        char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(mine);
        rc = ad_error_set(err,
                          "%s holds a run with other settings %s; this command asks for %s "
                          "(use another --out, or the same flags to resume)",
                          a->out, g ? g : "?", w ? w : "?");
        free(g);
        free(w);
    }
    cJSON_Delete(o);
    cJSON_Delete(mine);
    return rc;
}

typedef struct session {
    ad_dist_group *group; /* every rank, under mpirun (NULL alone) */
    ad_task *task;
    ad_level_list levels;
    ad_vocab *vocab;
    ad_model *m;
    ad_trainer tr;
    int tr_ready;
} session;

static void session_free(session *s) {
    ad_dist_group_free(s->group);
    if (s->tr_ready) ad_trainer_free(&s->tr);
    ad_model_free(s->m);
    free(s->vocab);
    ad_level_list_free(&s->levels);
    ad_task_free(s->task);
}

static int session_open(session *s, const train_args *a, ad_error *err) {
    ad_task_options to;
    ad_task_default_options(&to);
    to.independent_lengths = a->independent;
    to.equal_length_share = a->equal_share;
    if (ad_task_open(a->task, &to, &s->task, err) != AD_OK) return AD_ERR;
    if (ad_level_list_parse(a->levels, &s->levels, err) != AD_OK)
        return ad_error_prefix(err, "--levels: ");
    if (s->levels.n == 0) return ad_error_set(err, "--levels: no levels in '%s'", a->levels);
    for (size_t i = 0; i < s->levels.n; i++)
        if (ad_task_level_check(s->task, s->levels.v[i], err) != AD_OK)
            return ad_error_prefix(err, "--levels: ");
    s->vocab = malloc(sizeof *s->vocab);
    if (!s->vocab) return ad_error_set(err, "out of memory");
    ad_train_config tc = ad_train_default_config(a->steps);
    tc.batch_size = a->batch;
    tc.pack = !a->no_pack;
    tc.bf16 = !strcmp(a->precision, "bf16");
    tc.grad_accum = a->accum;
    tc.schedule.peak_lr = a->lr;
    tc.schedule.warmup_steps = a->warmup;
    tc.schedule.decay_steps = a->decay;
    tc.adamw.weight_decay = a->weight_decay;
    if (ad_checkpoint_exists(a->out)) {
        ad_adamw opt = {.cfg = tc.adamw};
        char *json = NULL;
        if (ad_checkpoint_load(a->out, &s->m, s->vocab, &opt, &json, err) != AD_OK) return AD_ERR;
        int rc = json ? check_resume_matches(json, a, err)
                      : ad_error_set(err, "%s: checkpoint has no trainer state", a->out);
        if (rc == AD_OK && !opt.m) rc = ad_error_set(err, "%s: no optimizer state", a->out);
        if (rc == AD_OK) rc = ad_trainer_init(&s->tr, s->m, &tc, err);
        if (rc == AD_OK) s->tr_ready = 1;
        if (rc == AD_OK) rc = ad_trainer_adopt_optimizer(&s->tr, &opt, err);
        if (rc == AD_OK) rc = ad_trainer_state_parse(&s->tr, json, err);
        ad_adamw_free(&opt);
        free(json);
        return rc;
    }
    if (ad_vocab_for_task(s->vocab, s->task, err) != AD_OK) return AD_ERR;
    ad_model_config mc = ad_model_default_config();
    mc.n_layers = a->layers;
    mc.n_heads = a->heads;
    mc.d_model = a->dim;
    mc.d_ff = a->ffn;
    mc.vocab_size = s->vocab->size;
    mc.pos = strcmp(a->pos, "rope") ? AD_POS_NONE : AD_POS_ROPE;
    mc.rope_theta = a->rope_theta;
    mc.tie_embeddings = a->tie;
    mc.seed = a->seed;
    mc.max_seq_len = a->max_len;
    if (!mc.max_seq_len && default_max_len(s->task, &s->levels, a->seed, &mc.max_seq_len, err))
        return AD_ERR;
    if (ad_model_create(&s->m, &mc, err) != AD_OK) return AD_ERR;
    if (ad_trainer_init(&s->tr, s->m, &tc, err) != AD_OK) return AD_ERR;
    s->tr_ready = 1;
    return AD_OK;
}

/* The batch source: example i of optimizer step `step` comes from the stream
 * ad_seed(seed, 0, 0, TRAIN, step, i), so any step can be regenerated after a
 * resume. */
typedef struct train_source {
    session *s;
    const train_args *a;
    ad_example *ex;
    size_t n, made;
    ad_problem scratch;
} train_source;

static int train_fill(void *vctx, size_t step, ad_objective_batch *out, ad_error *err) {
    train_source *src = vctx;
    session *s = src->s;
    for (src->made = 0; src->made < src->n; src->made++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(src->a->seed, 0, 0, AD_SEED_TRAIN, step, src->made));
        ad_level lv = s->levels.v[ad_rng_below(&rng, s->levels.n)];
        if (ad_labelled_example(s->task, s->vocab, s->m->cfg.max_seq_len, lv, &rng, &src->scratch,
                                &src->ex[src->made], err) != AD_OK)
            return AD_ERR;
    }
    *out = (ad_objective_batch){.kind = AD_BATCH_SEQUENCES, .seqs = src->ex, .n = src->n};
    return AD_OK;
}

static void train_release(void *vctx) {
    train_source *src = vctx;
    for (size_t i = 0; i < src->made; i++)
        ad_example_free(&src->ex[i]);
    src->made = 0;
}

typedef struct save_ctx {
    session *s;
    const train_args *a;
} save_ctx;

/* Rank 0 is the only writer (the others hold the same bits). */
static int save(session *s, const train_args *a, ad_error *err) {
    if (ad_dist_rank() != 0) return AD_OK;
    char *json = state_json(&s->tr, a);
    if (!json) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_save(a->out, s->m, s->vocab, &s->tr.opt, json, err);
    free(json);
    return rc;
}

static int save_partial(void *vctx, ad_trainer *tr, ad_error *err) {
    save_ctx *c = vctx;
    (void)tr; /* it is c->s->tr */
    return save(c->s, c->a, err);
}

/* The SFT session of the shared training driver, then the final checkpoint. */
static int train_loop(session *s, const train_args *a, ad_error *err) {
    train_source src = {.s = s, .a = a, .n = a->batch * a->accum};
    save_ctx sc = {s, a};
    src.ex = calloc(src.n, sizeof *src.ex);
    if (!src.ex) return ad_error_set(err, "out of memory");
    ad_train_session ts = ad_train_session_default(ad_objective_find("sft"));
    ts.save_every = a->save_every;
    ts.save = save_partial;
    ts.save_ctx = &sc;
    ts.kill_stage = "train";
    ts.params.shards = a->shards;
    ts.params.shard_group = s->group;
    ad_batch_source bs = {train_fill, train_release, &src};
    ad_train_result res;
    int rc = ad_train_session_run(&ts, &s->tr, &bs, &res, err);
    if (rc == AD_OK && res.steps) rc = save(s, a, err);
    ad_problem_free(&src.scratch);
    free(src.ex);
    return rc;
}

/* Accuracy on the training levels and, for one-integer levels, on the next
 * four beyond the top: the first look at length generalisation. */
static int final_table(session *s, const train_args *a, ad_error *err) {
    if (!a->eval_n) return AD_OK;
    ad_level lv[40];
    size_t n = 0, stride = s->levels.n > 16 ? (s->levels.n + 15) / 16 : 1;
    ad_level top = s->levels.v[0], hi = ad_task_level_max(s->task);
    for (size_t i = 0; i < s->levels.n; i++) {
        if (i % stride == 0 && n < 20) lv[n++] = s->levels.v[i];
        if (ad_level_cmp(s->levels.v[i], top) > 0) top = s->levels.v[i];
    }
    for (int k = 1; !ad_level_is_pair(top) && k <= 4 && top.a + k <= hi.a; k++)
        lv[n++] = ad_level_int(top.a + k);
    ad_level_accuracy acc[40];
    if (ad_evaluate_levels_spread(s->m, s->vocab, s->task, lv, n, a->eval_n, a->seed, acc, err))
        return AD_ERR;
    if (ad_dist_rank() != 0) return AD_OK;
    printf("level  accuracy  (greedy, %zu held-out problems per level)\n", a->eval_n);
    for (size_t i = 0; i < n; i++) {
        char buf[AD_LEVEL_TEXT_MAX];
        printf("%5s  %7.1f%%\n", ad_level_format(lv[i], buf, sizeof buf), 100 * acc[i].accuracy);
    }
    return AD_OK;
}

/* Under mpirun every rank must start from the same step of the same DIR (on a
 * shared file system): rank 0's step is compared with each rank's. */
static int same_start(const session *s, const train_args *a, ad_error *err) {
    uint64_t step = s->tr.sched_step;
    if (ad_dist_bcast(&step, sizeof step, 0, err) != AD_OK) return AD_ERR;
    if (step == s->tr.sched_step) return AD_OK;
    return ad_error_set(err,
                        "%s: rank 0 resumes at step %llu, this rank at step %zu: every rank "
                        "must see the same DIR (a shared file system; check with `mpirun -np "
                        "N ls -l %s`)",
                        a->out, (unsigned long long)step, s->tr.sched_step, a->out);
}

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    train_args a;
    if (parse_args(argc, argv, &a)) return 2;
    cli_set_threads(a.threads);
    ad_error err = {{0}};
    session s = {0};
    char parent[4096];
    if ((size_t)snprintf(parent, sizeof parent, "%s", a.out) >= sizeof parent)
        return fprintf(stderr, "autodidact train: --out: path too long (%zu bytes)\n",
                       strlen(a.out)),
               2;
    char *slash = strrchr(parent, '/');
    int rc = AD_OK;
    if (slash && slash != parent && ad_dist_rank() == 0) {
        *slash = '\0';
        rc = ad_mkdir_p(parent, &err);
    }
    if (rc == AD_OK) rc = ad_dist_group_split(0, &s.group, &err);
    if (rc == AD_OK) rc = session_open(&s, &a, &err);
    if (rc == AD_OK) rc = same_start(&s, &a, &err);
    if (rc == AD_OK && ad_dist_rank() == 0)
        fprintf(stderr,
                "autodidact train: %s levels %s, %zu parameters (%zu layers, d %zu), "
                "%zu threads (%s), step %zu of %zu, %zu shard(s) over %d rank(s)\n",
                a.task, a.levels, s.m->n_params, s.m->cfg.n_layers, s.m->cfg.d_model,
                (size_t)ad_kernels_get_threads(), ad_kernels_isa(), s.tr.sched_step, a.steps,
                a.shards, ad_dist_size());
    if (rc == AD_OK) rc = train_loop(&s, &a, &err);
    if (rc == AD_OK) rc = final_table(&s, &a, &err);
    session_free(&s);
    return rc == AD_OK ? 0 : cli_fail_ranks("train", &err);
}
