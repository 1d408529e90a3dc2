/* task_maze.c: shortest path on a random tree ("maze"), after the reference
 * paper.
 *
 * A path of h hops joins the start S to the end E; the other nodes are
 * attached by loop-erased random walks (Wilson's algorithm on the complete
 * graph), so the graph is a tree and the S-E path is unique. Nodes carry
 * distinct random labels 1-99, each one token. Prompt: "S>E#" then every
 * node's adjacency list "node:nb1,nb2,..." (node order and neighbour order
 * shuffled) joined by '-', then '='. Answer: the path "S>n1>...>E".
 *
 *   maze        level = hops; 30 nodes up to 29 hops (the paper's setting),
 *               then 2*hops - 28 nodes, at most 99
 *   maze-nodes  level = node count, at 9 hops (the paper's other knob)
 *
 * The verifier accepts any shortest S-E path along the prompt's edges. */
#include <string.h>

#include "tasks/task_impl.h"

#define MAZE_MAX_NODES 99
#define MAZE_PAPER_NODES 30
#define MAZE_PAPER_HOPS 9

static const char *const maze_tokens[] = {
    "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30",
    "31", "32", "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45",
    "46", "47", "48", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60",
    "61", "62", "63", "64", "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75",
    "76", "77", "78", "79", "80", "81", "82", "83", "84", "85", "86", "87", "88", "89", "90",
    "91", "92", "93", "94", "95", "96", "97", "98", "99", ">",  "#",  ":",  ",",  "-",  "="};

/* A maze as parsed from a prompt (or built by the generator): nodes by index,
 * their labels, and each node's neighbour list in prompt order. */
typedef struct maze {
    int n;
    int label[MAZE_MAX_NODES];
    int index[MAZE_MAX_NODES + 1]; /* label -> node index, -1 when absent */
    int deg[MAZE_MAX_NODES];
    unsigned char adj[MAZE_MAX_NODES][MAZE_MAX_NODES];
    int start, end;
} maze;

static size_t label_len(int label) {
    return label >= 10 ? 2 : 1;
}

/* ---- generation ------------------------------------------------------------ */

static int nodes_for_hops(int hops) {
    if (hops <= MAZE_PAPER_NODES - 1) return MAZE_PAPER_NODES;
    int n = 2 * hops - (MAZE_PAPER_NODES - 2);
    return n > MAZE_MAX_NODES ? MAZE_MAX_NODES : n;
}

static void add_edge(maze *m, int u, int v) {
    m->adj[u][m->deg[u]++] = (unsigned char)v;
    m->adj[v][m->deg[v]++] = (unsigned char)u;
}

/* Builds the tree: path 0-1-...-hops, then Wilson's loop-erased random walks
 * attach every other node. Labels are a random draw of n distinct 1..99. */
static void build_tree(maze *m, int n, int hops, ad_rng *rng) {
    int labels[MAZE_MAX_NODES], next[MAZE_MAX_NODES];
    unsigned char in_tree[MAZE_MAX_NODES] = {0};
    memset(m, 0, sizeof *m);
    m->n = n;
    for (int i = 0; i < MAZE_MAX_NODES; i++)
        labels[i] = i + 1;
    for (int i = 0; i < n; i++) { /* partial Fisher-Yates */
        int j = i + (int)ad_rng_below(rng, (uint64_t)(MAZE_MAX_NODES - i));
        int tmp = labels[i];
        labels[i] = labels[j];
        labels[j] = tmp;
        m->label[i] = labels[i];
    }
    for (int i = 0; i <= hops; i++)
        in_tree[i] = 1;
    for (int i = 0; i < hops; i++)
        add_edge(m, i, i + 1);
    for (int u = hops + 1; u < n; u++) {
        /* Walk until the tree is hit; overwriting next[] erases the loops. */
        for (int cur = u; !in_tree[cur];) {
            int r = (int)ad_rng_below(rng, (uint64_t)(n - 1));
            next[cur] = r >= cur ? r + 1 : r;
            cur = next[cur];
        }
        for (int cur = u; !in_tree[cur]; cur = next[cur]) {
            in_tree[cur] = 1;
            add_edge(m, cur, next[cur]);
        }
    }
    m->start = 0;
    m->end = hops;
}

static int put_label(ad_text *t, int label, ad_error *err) {
    return ad_text_put_uint(t, (uint64_t)label, err);
}

/* Writes the prompt with node order and neighbour order shuffled. */
static int write_prompt(maze *m, ad_rng *rng, ad_text *t, ad_error *err) {
    int order[MAZE_MAX_NODES];
    for (int i = 0; i < m->n; i++)
        order[i] = i;
    ad_rng_shuffle(rng, order, (size_t)m->n, sizeof order[0]);
    ad_text_clear(t);
    if (put_label(t, m->label[m->start], err) || ad_text_putc(t, '>', err) ||
        put_label(t, m->label[m->end], err) || ad_text_putc(t, '#', err))
        return AD_ERR;
    for (int k = 0; k < m->n; k++) {
        int u = order[k];
        ad_rng_shuffle(rng, m->adj[u], (size_t)m->deg[u], 1);
        if ((k > 0 && ad_text_putc(t, '-', err)) || put_label(t, m->label[u], err) ||
            ad_text_putc(t, ':', err))
            return AD_ERR;
        for (int j = 0; j < m->deg[u]; j++)
            if ((j > 0 && ad_text_putc(t, ',', err)) || put_label(t, m->label[m->adj[u][j]], err))
                return AD_ERR;
    }
    return ad_text_putc(t, '=', err);
}

static int maze_generate_tree(int nodes, int hops, ad_rng *rng, ad_problem *out, ad_error *err) {
    maze m;
    build_tree(&m, nodes, hops, rng);
    if (write_prompt(&m, rng, &out->prompt, err)) return AD_ERR;
    ad_text_clear(&out->answer);
    for (int i = 0; i <= hops; i++)
        if ((i > 0 && ad_text_putc(&out->answer, '>', err)) ||
            put_label(&out->answer, m.label[i], err))
            return AD_ERR;
    return AD_OK;
}

static int maze_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                         ad_error *err) {
    return maze_generate_tree(nodes_for_hops(lv.a), lv.a, rng, out, err);
}

static int maze_nodes_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                               ad_error *err) {
    return maze_generate_tree(lv.a, MAZE_PAPER_HOPS, rng, out, err);
}

/* ---- parsing ------------------------------------------------------------- */

/* Reads a label 1..99 (no leading zero) at *s; 0 when there is none. */
static int scan_label(const char **s) {
    const char *p = *s;
    size_t n = ad_span_digits(p);
    if (n == 0 || n > 2 || p[0] == '0') return 0;
    *s = p + n;
    return n == 1 ? p[0] - '0' : (p[0] - '0') * 10 + (p[1] - '0');
}

/* Index of a label, adding the node when new; -1 when the maze is full. */
static int node_of(maze *m, int label) {
    if (m->index[label] < 0) {
        if (m->n == MAZE_MAX_NODES) return -1;
        m->label[m->n] = label;
        m->index[label] = m->n++;
    }
    return m->index[label];
}

/* Parses "S>E#" + "u:v,w-..." + "="; every node named must have its own list,
 * exactly once. Returns 0 when the prompt is not of that form. */
static int parse_maze(const char *prompt, maze *m) {
    unsigned char listed[MAZE_MAX_NODES] = {0};
    const char *p = prompt;
    memset(m, 0, sizeof *m);
    memset(m->index, -1, sizeof m->index);
    int s = scan_label(&p);
    if (!s || *p++ != '>') return 0;
    int e = scan_label(&p);
    if (!e || *p++ != '#') return 0;
    m->start = node_of(m, s);
    m->end = node_of(m, e);
    for (;;) { /* one "node:nb,nb,..." list per iteration */
        int u = scan_label(&p), ui = u ? node_of(m, u) : -1;
        if (ui < 0 || listed[ui] || *p++ != ':') return 0;
        listed[ui] = 1;
        for (;;) {
            int v = scan_label(&p), vi = v ? node_of(m, v) : -1;
            if (vi < 0 || m->deg[ui] == MAZE_MAX_NODES) return 0;
            m->adj[ui][m->deg[ui]++] = (unsigned char)vi;
            if (*p != ',') break;
            p++;
        }
        if (*p != '-') break;
        p++;
    }
    if (*p != '=' || p[1] != '\0') return 0;
    for (int i = 0; i < m->n; i++)
        if (!listed[i]) return 0;
    return 1;
}

#define MAZE_FORM "S>E#NODE:NB,NB-NODE:NB=  (labels 1-99)"

/* Hop distance from start to every node (-1: unreachable), and for each node
 * the longest byte length of a shortest path string from S to it. */
static void shortest_paths(const maze *m, int *dist, size_t *bytes) {
    int queue[MAZE_MAX_NODES], head = 0, tail = 0;
    for (int i = 0; i < m->n; i++)
        dist[i] = -1, bytes[i] = 0;
    dist[m->start] = 0;
    bytes[m->start] = label_len(m->label[m->start]);
    queue[tail++] = m->start;
    while (head < tail) {
        int u = queue[head++];
        for (int j = 0; j < m->deg[u]; j++) {
            int v = m->adj[u][j];
            if (dist[v] < 0) {
                dist[v] = dist[u] + 1;
                queue[tail++] = v;
            }
            size_t b = bytes[u] + 1 + label_len(m->label[v]);
            if (dist[v] == dist[u] + 1 && b > bytes[v]) bytes[v] = b;
        }
    }
}

static int parse_solvable(const ad_task *t, const char *prompt, maze *m, int *dist, size_t *bytes,
                          ad_error *err) {
    if (!parse_maze(prompt, m)) return ad_prompt_error(err, t->name, prompt, MAZE_FORM);
    shortest_paths(m, dist, bytes);
    if (dist[m->end] < 0) {
        char q[80];
        return ad_error_set(err, "%s: prompt '%s': %d cannot be reached from %d", t->name,
                            ad_quote(prompt, q, sizeof q), m->label[m->end], m->label[m->start]);
    }
    return AD_OK;
}

/* ---- verification -------------------------------------------------------- */

static int has_edge(const maze *m, int u, int v) {
    for (int j = 0; j < m->deg[u]; j++)
        if (m->adj[u][j] == v) return 1;
    return 0;
}

static int maze_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                       ad_error *err) {
    maze m;
    int dist[MAZE_MAX_NODES];
    size_t bytes[MAZE_MAX_NODES];
    if (parse_solvable(t, prompt, &m, dist, &bytes[0], err)) return AD_ERR;
    if (!*answer) return ad_verdict_fail(v, "empty answer");
    if (ad_verdict_foreign_char(v, answer, "0123456789>")) return AD_OK;
    const char *p = answer;
    int prev = -1, hops = -1;
    for (;;) {
        const char *at = p;
        int label = scan_label(&p);
        if (!label || (*p != '>' && *p != '\0'))
            return ad_verdict_fail(v, "no node label at position %zu", (size_t)(at - answer) + 1);
        int u = m.index[label];
        if (u < 0) return ad_verdict_fail(v, "node %d is not in the maze", label);
        if (prev < 0 && u != m.start)
            return ad_verdict_fail(v, "path starts at %d, not at %d", label, m.label[m.start]);
        if (prev >= 0 && !has_edge(&m, prev, u))
            return ad_verdict_fail(v, "no edge from %d to %d", m.label[prev], label);
        prev = u;
        hops++;
        if (*p == '\0') break;
        p++;
    }
    if (prev != m.end)
        return ad_verdict_fail(v, "path ends at %d, not at %d", m.label[prev], m.label[m.end]);
    if (hops != dist[m.end])
        return ad_verdict_fail(v, "path has %d hops, the shortest has %d", hops, dist[m.end]);
    return ad_verdict_pass(v);
}

/* The byte length of the longest shortest S-E path string (in a tree, the
 * unique path): computed from the prompt's graph alone. */
static int maze_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    maze m;
    int dist[MAZE_MAX_NODES];
    size_t bytes[MAZE_MAX_NODES];
    if (parse_solvable(t, prompt, &m, dist, bytes, err)) return AD_ERR;
    *out = bytes[m.end];
    return AD_OK;
}

const ad_task_ops ad_task_maze_ops = {
    .name = "maze",
    .description = "shortest path between two nodes of a random tree (30 nodes up to 29 hops)",
    .knob = "hops",
    .min = {1, AD_LEVEL_SCALAR},
    .max = {MAZE_MAX_NODES - 1, AD_LEVEL_SCALAR},
    .tokens = maze_tokens,
    .n_tokens = sizeof maze_tokens / sizeof maze_tokens[0],
    .generate = maze_generate,
    .verify = maze_verify,
    .max_answer_len = maze_max_len,
};

const ad_task_ops ad_task_maze_nodes_ops = {
    .name = "maze-nodes",
    .description = "shortest path of 9 hops in a random tree",
    .knob = "nodes",
    .min = {MAZE_PAPER_HOPS + 1, AD_LEVEL_SCALAR},
    .max = {MAZE_MAX_NODES, AD_LEVEL_SCALAR},
    .tokens = maze_tokens,
    .n_tokens = sizeof maze_tokens / sizeof maze_tokens[0],
    .generate = maze_nodes_generate,
    .verify = maze_verify,
    .max_answer_len = maze_max_len,
};
