/* test_tasks_solvers.c: the tasks checked against independent oracles.
 *
 * Format examples from the reference paper byte for byte; addition and
 * multiplication answers checked by modular arithmetic (a different method
 * from the schoolbook code under test) at every size, and exactly for small
 * operands; maze prompts re-parsed here to check that the graph is a tree
 * with the requested size and a unique shortest path, and that walks that are
 * not shortest are rejected; countdown and subset-sum accept other valid
 * answers and reject invalid ones for the right reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tasks/task.h"

static ad_task *open_task(const char *name, const ad_task_options *opts) {
    ad_task *t = NULL;
    ad_error err;
    if (ad_task_open(name, opts, &t, &err)) fprintf(stderr, "  open %s: %s\n", name, err.msg);
    return t;
}

static int verify_ok(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v) {
    ad_error err;
    if (ad_task_verify(t, prompt, answer, v, &err)) {
        fprintf(stderr, "  verify %s: %s\n", prompt, err.msg);
        return 0;
    }
    return v->correct;
}

static void expect(const char *task, const char *prompt, const char *answer, int correct,
                   const char *reason_part) {
    ad_task *t = open_task(task, NULL);
    ad_verdict v;
    int got = verify_ok(t, prompt, answer, &v);
    CHECK_MSG(got == correct, "%s %s %s: %s", task, prompt, answer, v.reason);
    if (reason_part)
        CHECK_MSG(strstr(v.reason, reason_part) != NULL, "%s %s: reason '%s' lacks '%s'", task,
                  answer, v.reason, reason_part);
    ad_task_free(t);
}

static void expect_bound(const char *task, const char *prompt, size_t bound) {
    ad_task *t = open_task(task, NULL);
    size_t got = 0;
    ad_error err;
    CHECK(ad_task_max_answer_len(t, prompt, &got, &err) == AD_OK);
    CHECK_MSG(got == bound, "%s %s: bound %zu, expected %zu", task, prompt, got, bound);
    ad_task_free(t);
}

/* ---- format examples ----------------------------------------------------------- */

static void test_paper_examples(void) {
    expect("reverse-add", "321+54=", "8610", 1, NULL);
    expect_bound("reverse-add", "321+54=", 4);
    expect("reverse-add", "321+54=", "861", 0, "stops after 3 of 4");
    expect("reverse-add", "321+54=", "8611", 0, "position 4");
    expect("reverse-add", "321+54=", "86100", 0, "extra");
    expect("reverse-add", "321+54=", "86x0", 0, "'x' at position 3");
    expect("forward-add", "1687477129+1095477427=", "2782954556", 1, NULL);
    expect("forward-add", "1687477129+1095477427=", "02782954556", 0, NULL);
    expect("forward-add", "5+5=", "10", 1, NULL);
    expect("copy", "0123=", "0123", 1, NULL);
    expect("reverse", "0123=", "3210", 1, NULL);
    expect("reverse", "0123=", "0123", 0, NULL);
    expect("multiply", "321*54=", "5160+02940=53550", 1, NULL);
    expect_bound("multiply", "321*54=", strlen("5160+02940=53550"));
    const char *mul55 = "691730+0467433(6384833)+00487841(63236281)+000885111(632158921)+"
                        "0000487841=6321967161";
    expect("multiply", "69173*19434=", mul55, 1, NULL);
    expect_bound("multiply", "69173*19434=", strlen(mul55));
    expect("multiply", "69173*19434=", "6321967161", 0, NULL);
    /* The examples of docs/tasks.md. */
    expect("sort", "31,5,207,5=", "5,5,31,207", 1, NULL);
    expect("countdown", "4,6,25:100=", "4*25", 1, NULL);
    expect("countdown", "4,6,25:100=", "25*4", 1, NULL);
    expect("countdown", "4,6,25:100=", "(6-4)*25", 0, "50, not 100");
    expect("subset-sum", "12,5,33,8:45=", "12,33", 1, NULL);
    expect("subset-sum", "12,5,33,8:45=", "33,12", 1, NULL);
    /* A 6-node tree: 7-3-12 is the path, 5 hangs off 3, 40 and 9 off 12. */
    const char *maze = "7>12#3:7,12,5-12:40,3,9-7:3-5:3-40:12-9:12=";
    expect("maze", maze, "7>3>12", 1, NULL);
    expect_bound("maze", maze, 6);
    expect("maze", maze, "7>3>5>3>12", 0, "4 hops, the shortest has 2");
    expect("maze", maze, "7>12", 0, "no edge from 7 to 12");
    expect("maze", maze, "3>12", 0, "starts at 3");
    expect("maze", maze, "7>3", 0, "ends at 3");
    expect("maze", maze, "7>3>13", 0, "13 is not in the maze");
    expect("maze", maze, "7>3>>12", 0, "no node label");
    expect("maze", maze, "7,3,12", 0, "','");
}

/* A square 1-2-4 / 1-3-4: two shortest paths, both accepted. */
static void test_maze_alternate_shortest(void) {
    const char *sq = "1>4#1:2,3-2:1,4-3:1,4-4:2,3=";
    expect("maze", sq, "1>2>4", 1, NULL);
    expect("maze", sq, "1>3>4", 1, NULL);
    expect("maze", sq, "1>2>4>3>4", 0, "hops");
}

/* Reverse-add's generated problems match the paper's format: operands whose
 * most significant digit (the last) is 1-9, and 3n+5 tokens with BOS/EOS. */
static void test_generated_formats(void) {
    ad_task *t = open_task("reverse-add", NULL);
    ad_problem p = {0};
    ad_error err;
    ad_rng rng;
    ad_rng_seed(&rng, 5);
    for (int n = 1; n <= 40; n++) {
        CHECK(ad_task_generate(t, ad_level_int(n), &rng, &p, &err) == AD_OK);
        const char *s = p.prompt.s;
        CHECK(p.prompt.len + p.answer.len + 2 == (size_t)(3 * n + 5));
        CHECK(s[n] == '+' && s[2 * n + 1] == '=' && s[n - 1] != '0' && s[2 * n] != '0');
    }
    ad_task_free(t);
    /* No operand starts with a zero: forward-add's first digits, multiply's last. */
    const char *others[] = {"forward-add", "multiply"};
    for (int k = 0; k < 2; k++) {
        t = open_task(others[k], NULL);
        for (int i = 0; i < 200; i++) {
            int la = 1 + i % 7, lb = 1 + i % 5;
            ad_level lv = k ? ad_level_pair(la, lb) : ad_level_int(la);
            if (!k) lb = la;
            CHECK(ad_task_generate(t, lv, &rng, &p, &err) == AD_OK);
            const char *s = p.prompt.s;
            CHECK(s[la] == (k ? '*' : '+') && s[la + lb + 1] == '=');
            if (k)
                CHECK(s[la - 1] != '0' && s[la + lb] != '0');
            else
                CHECK(s[0] != '0' && s[la + 1] != '0');
        }
        ad_task_free(t);
    }
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.independent_lengths = 1;
    t = open_task("reverse-add", &opts);
    int seen_short = 0, seen_long = 0, seen_unequal = 0;
    for (int i = 0; i < 400; i++) {
        CHECK(ad_task_generate(t, ad_level_int(16), &rng, &p, &err) == AD_OK);
        size_t la = strcspn(p.prompt.s, "+"), lb = p.prompt.len - la - 2;
        CHECK(la >= 1 && la <= 16 && lb >= 1 && lb <= 16);
        CHECK(p.answer.len == (la > lb ? la : lb) + 1);
        seen_short |= la == 1 || lb == 1;
        seen_long |= la == 16 || lb == 16;
        seen_unequal |= la != lb;
        ad_verdict v;
        CHECK(verify_ok(t, p.prompt.s, p.answer.s, &v));
    }
    CHECK(seen_short && seen_long && seen_unequal);
    ad_problem_free(&p);
    ad_task_free(t);
}

/* equal_length_share: that share of independent-length problems keep both
 * operands at the level's length (1 keeps all of them); 0 draws the same
 * problems as the option unset, and so does any share without independent
 * lengths; a share outside 0-1 is refused when the task opens. */
static void test_equal_length_share(void) {
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.independent_lengths = 1;
    ad_task *plain = open_task("forward-add", &opts);
    opts.equal_length_share = 0;
    ad_task *zero = open_task("forward-add", &opts);
    opts.equal_length_share = 1;
    ad_task *all = open_task("forward-add", &opts);
    opts.equal_length_share = 0.25;
    ad_task *quarter = open_task("reverse-add", &opts);
    ad_problem p = {0}, q = {0};
    ad_error err;
    ad_rng r1, r2, r3;
    ad_rng_seed(&r1, 9);
    ad_rng_seed(&r2, 9);
    ad_rng_seed(&r3, 10);
    for (int i = 0; i < 200; i++) {
        CHECK(ad_task_generate(plain, ad_level_int(6), &r1, &p, &err) == AD_OK);
        CHECK(ad_task_generate(zero, ad_level_int(6), &r2, &q, &err) == AD_OK);
        CHECK(strcmp(p.prompt.s, q.prompt.s) == 0);
        CHECK(ad_task_generate(all, ad_level_int(1 + i % 9), &r3, &p, &err) == AD_OK);
        CHECK(p.prompt.len == 2 * (size_t)(1 + i % 9) + 2 && p.prompt.s[1 + i % 9] == '+');
    }
    /* 4,000 problems at 8 digits: 0.25 + 0.75 / 64 = 0.262 of them have
     * equal 8-digit operands; 5 standard deviations is 0.035 */
    int top = 0;
    for (int i = 0; i < 4000; i++) {
        CHECK(ad_task_generate(quarter, ad_level_int(8), &r3, &p, &err) == AD_OK);
        top += p.prompt.len == 18 && p.prompt.s[8] == '+';
    }
    CHECK_MSG(top > 0.227 * 4000 && top < 0.297 * 4000, "%d of 4000 at full length", top);
    ad_problem_free(&p);
    ad_problem_free(&q);
    ad_task_free(plain);
    ad_task_free(zero);
    ad_task_free(all);
    ad_task_free(quarter);
    ad_task *t = NULL;
    opts.equal_length_share = 1.5;
    CHECK(ad_task_open("forward-add", &opts, &t, &err) != AD_OK && !t);
    CHECK(strstr(err.msg, "equal_length_share 1.5 is not in 0-1") != NULL);
    /* without independent lengths every problem is full length: nothing drawn */
    opts.equal_length_share = 0.5;
    opts.independent_lengths = 0;
    ad_task *both = open_task("forward-add", &opts);
    opts.equal_length_share = 0;
    ad_task *none = open_task("forward-add", &opts);
    for (int i = 0; i < 50; i++) {
        CHECK(ad_task_generate(both, ad_level_int(7), &r1, &p, &err) == AD_OK);
        CHECK(ad_task_generate(none, ad_level_int(7), &r2, &q, &err) == AD_OK);
        CHECK(strcmp(p.prompt.s, q.prompt.s) == 0 && p.prompt.len == 16);
    }
    ad_problem_free(&p);
    ad_problem_free(&q);
    ad_task_free(both);
    ad_task_free(none);
}

/* ---- arithmetic oracles ---------------------------------------------------------- */

static const uint64_t primes[] = {1000000007ull, 998244353ull, 2305843009213693951ull};
#define N_PRIMES 3

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m) {
    return (uint64_t)((unsigned __int128)a * b % m);
}

/* Value mod m of n digits, most significant first (step +1) or last (-1). */
static uint64_t digits_mod(const char *s, size_t n, int reversed, uint64_t m) {
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        char c = reversed ? s[n - 1 - i] : s[i];
        x = (mulmod(x, 10, m) + (uint64_t)(c - '0')) % m;
    }
    return x;
}

static uint64_t pow10mod(size_t e, uint64_t m) {
    uint64_t x = 1;
    for (size_t i = 0; i < e; i++)
        x = mulmod(x, 10, m);
    return x;
}

static void test_addition_oracle(void) {
    const char *names[] = {"reverse-add", "forward-add"};
    ad_rng rng;
    ad_rng_seed(&rng, 99);
    for (int k = 0; k < 2; k++) {
        ad_task *t = open_task(names[k], NULL);
        int rev = k == 0;
        ad_problem p = {0};
        ad_error err;
        for (int i = 0; i < 600; i++) {
            int n = i < 300 ? 1 + i % 18 : (int)ad_rng_range(&rng, 19, 1000);
            CHECK(ad_task_generate(t, ad_level_int(n), &rng, &p, &err) == AD_OK);
            const char *a = p.prompt.s, *b = a + n + 1, *s = p.answer.s;
            if (rev) CHECK(p.answer.len == (size_t)n + 1);
            if (!rev)
                CHECK(s[0] != '0' && (p.answer.len == (size_t)n || p.answer.len == (size_t)n + 1));
            for (int j = 0; j < N_PRIMES; j++) {
                uint64_t m = primes[j];
                uint64_t sum = (digits_mod(a, n, rev, m) + digits_mod(b, n, rev, m)) % m;
                CHECK_MSG(digits_mod(s, p.answer.len, rev, m) == sum, "%s %s -> %s", names[k],
                          p.prompt.s, s);
            }
            if (n <= 18) { /* exactly, with machine integers */
                uint64_t x = digits_mod(a, n, rev, UINT64_MAX),
                         y = digits_mod(b, n, rev, UINT64_MAX);
                char want[64];
                snprintf(want, sizeof want, "%llu", (unsigned long long)(x + y));
                if (rev) {
                    size_t w = strlen(want);
                    char r[64];
                    for (size_t q = 0; q < w; q++)
                        r[q] = want[w - 1 - q];
                    for (size_t q = w; q < (size_t)n + 1; q++)
                        r[q] = '0';
                    r[n + 1] = '\0';
                    CHECK_MSG(!strcmp(r, s), "%s -> %s, want %s", p.prompt.s, s, r);
                } else {
                    CHECK_MSG(!strcmp(want, s), "%s -> %s, want %s", p.prompt.s, s, want);
                }
            }
        }
        ad_problem_free(&p);
        ad_task_free(t);
    }
}

/* Checks one multiply answer segment by segment, modulo m. */
static void check_multiply(const char *prompt, const char *answer, uint64_t m) {
    size_t la = strcspn(prompt, "*"), lb = strlen(prompt) - la - 2;
    const char *a = prompt, *b = prompt + la + 1, *p = answer;
    uint64_t av = digits_mod(a, la, 1, m), running = 0;
    for (size_t i = 0; i < lb; i++) {
        if (i > 0) CHECK(*p++ == '+');
        size_t w = i + la + 1;
        CHECK_MSG(strspn(p, "0123456789") >= w, "%s: partial %zu", prompt, i);
        uint64_t part = mulmod(mulmod((uint64_t)(b[i] - '0'), av, m), pow10mod(i, m), m);
        CHECK_MSG(digits_mod(p, w, 1, m) == part, "%s: partial product %zu", prompt, i);
        running = (running + part) % m;
        p += w;
        if (i >= 1 && i + 1 < lb) {
            CHECK(*p++ == '(');
            CHECK(strspn(p, "0123456789") == w);
            CHECK_MSG(digits_mod(p, w, 1, m) == running, "%s: running sum %zu", prompt, i);
            p += w;
            CHECK(*p++ == ')');
        } else {
            CHECK(*p != '(');
        }
    }
    CHECK(*p++ == '=');
    CHECK(strlen(p) == la + lb && strspn(p, "0123456789") == la + lb);
    CHECK(digits_mod(p, la + lb, 1, m) == mulmod(av, digits_mod(b, lb, 1, m), m));
}

static void test_multiply_oracle(void) {
    ad_task *t = open_task("multiply", NULL);
    ad_problem p = {0};
    ad_error err;
    ad_rng rng;
    ad_rng_seed(&rng, 3);
    for (int i = 0; i < 400; i++) {
        int la = (int)ad_rng_range(&rng, 1, i < 200 ? 9 : 40);
        int lb = (int)ad_rng_range(&rng, 1, i < 200 ? 9 : 40);
        CHECK(ad_task_generate(t, ad_level_pair(la, lb), &rng, &p, &err) == AD_OK);
        for (int j = 0; j < N_PRIMES; j++)
            check_multiply(p.prompt.s, p.answer.s, primes[j]);
        if (la <= 9 && lb <= 9) { /* the product exactly */
            uint64_t x = digits_mod(p.prompt.s, la, 1, UINT64_MAX);
            uint64_t y = digits_mod(p.prompt.s + la + 1, lb, 1, UINT64_MAX);
            const char *prod = strchr(p.answer.s, '=') + 1;
            CHECK(digits_mod(prod, la + lb, 1, UINT64_MAX) == x * y);
        }
    }
    ad_problem_free(&p);
    ad_task_free(t);
}

/* ---- maze ---------------------------------------------------------------------------- */

typedef struct graph {
    int n, label[100], index[100], deg[100], adj[100][100], start, end;
} graph;

/* Parses a maze prompt here, independently of the task's parser. */
static int parse_graph(const char *prompt, graph *g) {
    memset(g, 0, sizeof *g);
    memset(g->index, -1, sizeof g->index);
    int s, e, used;
    if (sscanf(prompt, "%d>%d#%n", &s, &e, &used) != 2) return 0;
    const char *p = prompt + used;
    while (*p && *p != '=') {
        int u, k;
        if (sscanf(p, "%d:%n", &u, &k) != 1 || u < 1 || u > 99 || g->index[u] >= 0) return 0;
        g->index[u] = g->n;
        g->label[g->n++] = u;
        p += k;
        while (*p >= '0' && *p <= '9') {
            int v = (int)strtol(p, (char **)&p, 10);
            g->adj[g->n - 1][g->deg[g->n - 1]++] = v; /* labels for now */
            if (*p == ',') p++;
        }
        if (*p == '-') p++;
    }
    for (int i = 0; i < g->n; i++)
        for (int j = 0; j < g->deg[i]; j++) {
            int v = g->adj[i][j];
            if (v < 1 || v > 99 || g->index[v] < 0) return 0;
            g->adj[i][j] = g->index[v];
        }
    if (s < 1 || s > 99 || e < 1 || e > 99 || g->index[s] < 0 || g->index[e] < 0) return 0;
    g->start = g->index[s];
    g->end = g->index[e];
    return *p == '=' && p[1] == '\0';
}

/* Checks tree shape and the unique shortest path; returns the path string. */
static void check_maze(const char *prompt, const char *answer, int hops, int nodes) {
    graph g;
    CHECK_MSG(parse_graph(prompt, &g), "%s", prompt);
    CHECK(g.n == nodes);
    int edges = 0;
    for (int i = 0; i < g.n; i++) {
        edges += g.deg[i];
        for (int j = 0; j < g.deg[i]; j++) { /* symmetric, no self loops or repeats */
            int v = g.adj[i][j], back = 0;
            CHECK(v != i);
            for (int k = 0; k < g.deg[v]; k++)
                back += g.adj[v][k] == i;
            CHECK(back == 1);
        }
    }
    CHECK(edges == 2 * (g.n - 1));
    int dist[100], paths[100], prev[100], queue[100], head = 0, tail = 0;
    for (int i = 0; i < g.n; i++)
        dist[i] = -1, paths[i] = 0;
    dist[g.start] = 0;
    paths[g.start] = 1;
    queue[tail++] = g.start;
    while (head < tail) {
        int u = queue[head++];
        for (int j = 0; j < g.deg[u]; j++) {
            int v = g.adj[u][j];
            if (dist[v] < 0) dist[v] = dist[u] + 1, prev[v] = u, queue[tail++] = v;
            if (dist[v] == dist[u] + 1) paths[v] += paths[u];
        }
    }
    CHECK(tail == g.n); /* connected, so with n-1 edges a tree */
    CHECK(dist[g.end] == hops && paths[g.end] == 1);
    char want[512] = "", part[8];
    for (int v = g.end;; v = prev[v]) { /* build the path backwards */
        snprintf(part, sizeof part, v == g.end ? "%d" : "%d>", g.label[v]);
        memmove(want + strlen(part), want, strlen(want) + 1);
        memcpy(want, part, strlen(part));
        if (v == g.start) break;
    }
    CHECK_MSG(!strcmp(want, answer), "%s vs %s", want, answer);
}

static void test_maze_oracle(void) {
    const char *names[] = {"maze", "maze-nodes"};
    ad_rng rng;
    ad_rng_seed(&rng, 17);
    for (int k = 0; k < 2; k++) {
        ad_task *t = open_task(names[k], NULL);
        ad_problem p = {0};
        ad_error err;
        ad_level lo = ad_task_level_min(t), hi = ad_task_level_max(t);
        for (int i = 0; i < 300; i++) {
            int lv = i < 2 ? (i ? hi.a : lo.a) : (int)ad_rng_range(&rng, lo.a, hi.a);
            CHECK(ad_task_generate(t, ad_level_int(lv), &rng, &p, &err) == AD_OK);
            int hops = k ? 9 : lv;
            int nodes = k ? lv : (lv <= 29 ? 30 : (2 * lv - 28 > 99 ? 99 : 2 * lv - 28));
            check_maze(p.prompt.s, p.answer.s, hops, nodes);
            /* A walk that detours is no answer: "...>x>E" becomes "...>x>E>x>E". */
            const char *last = strrchr(p.answer.s, '>'), *x = last;
            while (x > p.answer.s && x[-1] != '>')
                x--;
            char walk[1024];
            snprintf(walk, sizeof walk, "%s>%.*s%s", p.answer.s, (int)(last - x), x, last);
            ad_verdict v;
            CHECK_MSG(!verify_ok(t, p.prompt.s, walk, &v) && strstr(v.reason, "hops"), "%s: %s",
                      walk, v.reason);
        }
        ad_problem_free(&p);
        ad_task_free(t);
    }
}

/* ---- countdown ------------------------------------------------------------------------- */

/* A random expression over a random subset of nums (each once), built with
 * exact integer steps; writes text and value, returns 0 when it went out of
 * range. */
static int random_expression(ad_rng *rng, const long long *nums, int n, char *text, size_t cap,
                             long long *value) {
    long long vals[16] = {0};
    char texts[16][256];
    int k = (int)ad_rng_range(rng, 1, n), idx[16];
    for (int i = 0; i < n; i++)
        idx[i] = i;
    ad_rng_shuffle(rng, idx, (size_t)n, sizeof idx[0]);
    for (int i = 0; i < k; i++) {
        vals[i] = nums[idx[i]];
        snprintf(texts[i], sizeof texts[i], "%lld", nums[idx[i]]);
    }
    for (int live = k; live > 1; live--) {
        int i = (int)ad_rng_below(rng, (uint64_t)live),
            j = (int)ad_rng_below(rng, (uint64_t)live - 1);
        if (j >= i) j++;
        const char *ops = "+-*/";
        char op = ops[ad_rng_below(rng, 4)];
        long long x = vals[i], y = vals[j], r;
        if (op == '/' && (y == 0 || x % y != 0)) op = '+';
        r = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
        if (r > 1000000000LL || r < -1000000000LL) return 0;
        char t[256];
        if (snprintf(t, sizeof t, "(%s)%c(%s)", texts[i], op, texts[j]) >= (int)sizeof t) return 0;
        vals[i] = r;
        strcpy(texts[i], t);
        if (j != live - 1) { /* move the last item into the freed slot */
            vals[j] = vals[live - 1];
            strcpy(texts[j], texts[live - 1]);
        }
    }
    *value = vals[0];
    return snprintf(text, cap, "%s", texts[0]) < (int)cap;
}

static void test_countdown(void) {
    ad_task *t = open_task("countdown", NULL);
    ad_problem p = {0};
    ad_error err;
    ad_rng rng;
    ad_rng_seed(&rng, 23);
    int alternates = 0;
    for (int i = 0; i < 500; i++) {
        int n = (int)ad_rng_range(&rng, 2, 12);
        CHECK(ad_task_generate(t, ad_level_int(n), &rng, &p, &err) == AD_OK);
        long long nums[16];
        char *list = strdup(p.prompt.s);
        *strchr(list, ':') = '\0';
        int count = 0;
        for (const char *q = list; q; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL)
            nums[count++] = atoll(q);
        CHECK(count == n);
        char ans[600], prompt[600];
        ad_verdict v;
        /* Redundant parentheses change nothing. */
        snprintf(ans, sizeof ans, "(%s)", p.answer.s);
        CHECK_MSG(verify_ok(t, p.prompt.s, ans, &v), "%s: %s", ans, v.reason);
        /* Any other expression over the same numbers, posed with its own value. */
        long long value;
        if (random_expression(&rng, nums, n, ans, sizeof ans, &value) && value >= 0) {
            snprintf(prompt, sizeof prompt, "%s:%lld=", list, value);
            CHECK_MSG(verify_ok(t, prompt, ans, &v), "%s -> %s: %s", prompt, ans, v.reason);
            alternates++;
        }
        /* Wrong arithmetic: the same expression for another target. */
        long long target = atoll(strchr(p.prompt.s, ':') + 1);
        snprintf(prompt, sizeof prompt, "%s:%lld=", list, target + 1);
        CHECK(!verify_ok(t, prompt, p.answer.s, &v) && strstr(v.reason, "not"));
        /* A number used more often than given: every given number is already used. */
        snprintf(ans, sizeof ans, "%s+%lld-%lld", p.answer.s, nums[0], nums[0]);
        CHECK_MSG(!verify_ok(t, p.prompt.s, ans, &v) && strstr(v.reason, "more often"), "%s",
                  v.reason);
        /* A number not in the list (all given numbers are 1-99). */
        snprintf(ans, sizeof ans, "%s*100/100", p.answer.s);
        CHECK(!verify_ok(t, p.prompt.s, ans, &v) && strstr(v.reason, "not one of"));
        free(list);
    }
    CHECK(alternates > 300);
    ad_problem_free(&p);
    ad_task_free(t);
    expect("countdown", "1,3,4,6:24=", "6/(1-3/4)", 1, NULL); /* needs exact fractions */
    expect("countdown", "5,5,3:1=", "3/(5-5)", 0, "division by zero");
    expect("countdown", "5,3:2=", "5-3", 1, NULL);
    expect("countdown", "5,3:2=", "-3+5", 0, "expected a number");
    expect("countdown", "5,3:2=", "(5-3", 0, "missing ')'");
    expect("countdown", "5,3:2=", "5-3)", 0, "unexpected character");
    expect("countdown", "5,3:2=", "05-3", 0, "leading zero");
    expect("countdown", "5,3:2=", "5 - 3", 0, "alphabet");
    expect("countdown", "5,3:2=", "", 0, "empty");
    /* Bounded: huge products, deep nesting and long texts are rejected, not crashes. */
    char big[8192] = "", prompt[512] = "";
    for (int i = 0; i < 30; i++) {
        strcat(prompt, i ? ",99" : "99");
        strcat(big, i ? "*99" : "99");
    }
    strcat(prompt, ":1=");
    expect("countdown", prompt, big, 0, "exceeds");
    memset(big, '(', 100);
    strcpy(big + 100, "99");
    memset(big + 102, ')', 100);
    big[202] = '\0';
    expect("countdown", prompt, big, 0, "deeper");
    memset(big, '(', 3000);
    strcpy(big + 3000, "99");
    memset(big + 3002, ')', 3000);
    big[6002] = '\0';
    expect("countdown", prompt, big, 0, "longer");
}

/* ---- subset-sum ------------------------------------------------------------------------- */

static void test_subset_sum(void) {
    ad_task *t = open_task("subset-sum", NULL);
    ad_problem p = {0};
    ad_error err;
    ad_rng rng;
    ad_rng_seed(&rng, 29);
    long long total_valid = 0;
    for (int i = 0; i < 300; i++) {
        int n = (int)ad_rng_range(&rng, 2, 14);
        CHECK(ad_task_generate(t, ad_level_int(n), &rng, &p, &err) == AD_OK);
        long long nums[16], target = atoll(strchr(p.prompt.s, ':') + 1);
        char *list = strdup(p.prompt.s);
        *strchr(list, ':') = '\0';
        int count = 0;
        for (const char *q = list; q; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL)
            nums[count++] = atoll(q);
        CHECK(count == n);
        /* Every subset, in a shuffled order: accepted exactly when it sums to target. */
        for (uint32_t mask = 1; mask < (1u << n); mask++) {
            int idx[16], k = 0;
            long long sum = 0;
            for (int j = 0; j < n; j++)
                if (mask >> j & 1) idx[k++] = j, sum += nums[j];
            if (sum != target && ad_rng_below(&rng, 16)) continue; /* sample the wrong ones */
            ad_rng_shuffle(&rng, idx, (size_t)k, sizeof idx[0]);
            char ans[256] = "";
            for (int j = 0; j < k; j++)
                snprintf(ans + strlen(ans), sizeof ans - strlen(ans), j ? ",%lld" : "%lld",
                         nums[idx[j]]);
            ad_verdict v;
            CHECK_MSG(verify_ok(t, p.prompt.s, ans, &v) == (sum == target), "%s -> %s: %s",
                      p.prompt.s, ans, v.reason);
            total_valid += sum == target;
        }
        ad_verdict v;
        char ans[512];
        snprintf(ans, sizeof ans, "%s,%lld", p.answer.s, 100LL); /* not in the list */
        CHECK(!verify_ok(t, p.prompt.s, ans, &v) &&
              (strstr(v.reason, "not one of") || strstr(v.reason, "more numbers than")));
        free(list);
    }
    CHECK(total_valid > 300);
    ad_problem_free(&p);
    ad_task_free(t);
    expect("subset-sum", "5,7,12:12=", "12", 1, NULL);
    expect("subset-sum", "5,7,12:12=", "5,7", 1, NULL);
    expect("subset-sum", "5,7,12:10=", "5,5", 0, "more often");
    expect("subset-sum", "5,5,12:10=", "5,5", 1, NULL);
    expect("subset-sum", "5,7,12:12=", "5,,7", 0, "not a list");
    expect("subset-sum", "5,7,12:12=", "5,7,", 0, "not a list");
    expect("subset-sum", "5,7,12:24=", "5,7,12,0", 0, "more numbers");
    expect("subset-sum", "5,7,12:12=", "", 0, "empty");
    expect("subset-sum", "5,7,12:12=", "5+7", 0, "alphabet");
}

int main(void) {
    RUN(test_paper_examples);
    RUN(test_maze_alternate_shortest);
    RUN(test_generated_formats);
    RUN(test_equal_length_share);
    RUN(test_addition_oracle);
    RUN(test_multiply_oracle);
    RUN(test_maze_oracle);
    RUN(test_countdown);
    RUN(test_subset_sum);
    return test_summary();
}
