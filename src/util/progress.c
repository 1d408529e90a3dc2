/* progress.c: live progress line on a tty, periodic log lines otherwise. */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double ad_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ad_progress_begin(ad_progress *p, const char *label, size_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "it");
    p->total = total;
    p->t_start = ad_now();
    p->t_last_draw = 0;
    p->log_every_s = 10.0;
    p->is_tty = isatty(fileno(stderr));
    const char *q = getenv("AD_QUIET");
    p->quiet = q && q[0] && strcmp(q, "0") != 0;
}

static void format_eta(char *buf, size_t n, double seconds) {
    if (seconds < 0 || seconds > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", s / 60, s % 60);
}

static void draw(ad_progress *p, size_t done, double rate_units, const char *extra, int final) {
    double elapsed = ad_now() - p->t_start;
    double amount = rate_units > 0 ? rate_units : (double)done;
    double rate = elapsed > 0 ? amount / elapsed : 0;
    double frac = p->total ? (double)done / (double)p->total : 0;
    char eta[32];
    format_eta(eta, sizeof eta, final ? elapsed : (frac > 0 ? elapsed * (1 - frac) / frac : -1));
    fprintf(stderr, "%s%s %zu/%zu  %.1f %s/s  %s %s  %s%s", p->is_tty ? "\r\033[K" : "", p->label,
            done, p->total, rate, p->unit, final ? "took" : "ETA", eta, extra ? extra : "",
            p->is_tty && !final ? "" : "\n");
    fflush(stderr);
    p->drawn = 1;
}

void ad_progress_update(ad_progress *p, size_t done, double rate_units, const char *extra) {
    if (p->quiet) return;
    double now = ad_now();
    double every = p->is_tty ? 0.2 : p->log_every_s;
    if (now - p->t_last_draw < every) return;
    p->t_last_draw = now;
    draw(p, done, rate_units, extra, 0);
}

void ad_progress_end(ad_progress *p, double rate_units, const char *extra) {
    if (p->quiet) return;
    draw(p, p->total, rate_units, extra, 1);
}
