/* report_svg.c: SVG primitives for the report: a chart frame with ticks and
 * axis labels, lines with markers and tooltips, a legend, and the palettes
 * (Okabe-Ito for series, a viridis-like sequential scale for the heatmap;
 * both readable by colour-blind readers, and the sequential one in grey).
 *
 * No xmlns attribute is written: inline SVG in HTML needs none, and the page
 * holds no URL at all. Coordinates are written with one decimal. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Margins around the plot area, in pixels: room for tick numbers (left,
 * bottom), axis labels and the title. */
#define MARGIN_LEFT 62.0
#define MARGIN_RIGHT 14.0
#define MARGIN_TOP 26.0
#define MARGIN_BOTTOM 42.0

const char *rp_color(size_t i) {
    /* Okabe-Ito, ordered for contrast on white; yellow last */
    static const char *const c[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return c[i % 8];
}

const char *rp_dash(size_t i) {
    static const char *const d[] = {"", "6 3", "2 2", "8 3 2 3"};
    return d[i % 4];
}

void rp_heat_color(double v, char out[8]) {
    /* viridis at five stops; lightness rises monotonically, so it survives
     * greyscale printing */
    static const double stops[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (isnan(v)) {
        snprintf(out, 8, "#eeeeee");
        return;
    }
    double t = v < 0 ? 0 : v > 1 ? 1 : v;
    double pos = t * 4;
    int i = pos >= 4 ? 3 : (int)pos;
    double f = pos - i;
    int rgb[3];
    for (int k = 0; k < 3; k++)
        rgb[k] = (int)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0] & 0xff, rgb[1] & 0xff, rgb[2] & 0xff);
}

int rp_heat_dark(double v) {
    return !isnan(v) && v < 0.6;
}

rp_chart rp_chart_make(double w, double h, const char *title, const char *xlabel,
                       const char *ylabel) {
    rp_chart c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1, .w = w, .h = h};
    c.title = title;
    c.xlabel = xlabel;
    c.ylabel = ylabel;
    return c;
}

void rp_range_add(double *lo, double *hi, double v) {
    if (isnan(v) || isinf(v)) return;
    if (isnan(*lo) || v < *lo) *lo = v;
    if (isnan(*hi) || v > *hi) *hi = v;
}

void rp_range_fix(double *lo, double *hi, int log_scale) {
    if (isnan(*lo) || isnan(*hi)) *lo = log_scale ? 0.1 : 0, *hi = 1;
    if (log_scale && *lo <= 0) *lo = *hi > 0 ? *hi / 1000 : 1e-6;
    if (log_scale && *hi <= *lo) *hi = *lo * 10;
    if (*hi <= *lo) {
        double pad = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= pad;
        *hi += pad;
    }
}

static double scale_y(const rp_chart *c, double y) {
    return c->y_log ? log10(y) : y;
}

double rp_px(const rp_chart *c, double x) {
    return MARGIN_LEFT + (x - c->x0) / (c->x1 - c->x0) * (c->w - MARGIN_LEFT - MARGIN_RIGHT);
}

double rp_py(const rp_chart *c, double y) {
    double lo = scale_y(c, c->y0), hi = scale_y(c, c->y1);
    return c->h - MARGIN_BOTTOM -
           (scale_y(c, y) - lo) / (hi - lo) * (c->h - MARGIN_TOP - MARGIN_BOTTOM);
}

/* A tick number: plain digits from 0.001 to 999999, else 1e-05 style. */
static void tick_text(rp_buf *b, double v) {
    double a = fabs(v);
    if (a == 0 || (a >= 1e-3 && a < 1e6))
        rp_printf(b, "%.6g", v);
    else
        rp_printf(b, "%.0e", v);
}

/* A step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
static double nice_step(double range, double target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

static void x_ticks(rp_buf *b, const rp_chart *c) {
    double step = nice_step(c->x1 - c->x0, 6);
    if (c->x_integer && step < 1) step = 1;
    double bottom = c->h - MARGIN_BOTTOM;
    for (double x = ceil(c->x0 / step) * step; x <= c->x1 + step * 1e-9; x += step) {
        double px = rp_px(c, x);
        rp_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px,
                  MARGIN_TOP, px, bottom);
        rp_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px,
                  bottom + 14);
        tick_text(b, fabs(x) < step * 1e-9 ? 0.0 : x);
        rp_printf(b, "</text>");
    }
}

static void y_tick(rp_buf *b, const rp_chart *c, double y) {
    double py = rp_py(c, y);
    rp_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
              MARGIN_LEFT, py, c->w - MARGIN_RIGHT, py);
    rp_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", MARGIN_LEFT - 4,
              py + 4);
    tick_text(b, y);
    rp_printf(b, "</text>");
}

static void y_ticks(rp_buf *b, const rp_chart *c) {
    if (c->y_log) {
        double k0 = ceil(log10(c->y0)), k1 = floor(log10(c->y1));
        if (k1 < k0) { /* less than a decade: the ends */
            y_tick(b, c, c->y0);
            y_tick(b, c, c->y1);
        }
        for (double k = k0; k <= k1; k++)
            y_tick(b, c, pow(10, k));
        return;
    }
    double step = nice_step(c->y1 - c->y0, 5);
    for (double y = ceil(c->y0 / step) * step; y <= c->y1 + step * 1e-9; y += step)
        y_tick(b, c, fabs(y) < step * 1e-9 ? 0.0 : y);
}

void rp_chart_begin(rp_buf *b, const rp_chart *c, const char *css_class) {
    rp_printf(b,
              "<svg class=\"%s\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
              "role=\"img\" aria-label=\"",
              css_class, c->w, c->h, c->w, c->h);
    rp_esc(b, c->title);
    rp_printf(b, "\"><text class=\"title\" x=\"%.1f\" y=\"16\">", MARGIN_LEFT);
    rp_esc(b, c->title);
    rp_printf(b,
              "</text><rect class=\"plot\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
              MARGIN_LEFT, MARGIN_TOP, c->w - MARGIN_LEFT - MARGIN_RIGHT,
              c->h - MARGIN_TOP - MARGIN_BOTTOM);
    x_ticks(b, c);
    y_ticks(b, c);
    rp_printf(b, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
              (MARGIN_LEFT + c->w - MARGIN_RIGHT) / 2, c->h - 6);
    rp_esc(b, c->xlabel);
    double mid = (MARGIN_TOP + c->h - MARGIN_BOTTOM) / 2;
    rp_printf(b,
              "</text><text class=\"axis\" x=\"14\" y=\"%.1f\" text-anchor=\"middle\" "
              "transform=\"rotate(-90 14 %.1f)\">",
              mid, mid);
    rp_esc(b, c->ylabel);
    rp_printf(b, "</text>");
}

void rp_chart_end(rp_buf *b) {
    rp_printf(b, "</svg>");
}

/* The y a point is drawn at: clamped to the chart (a log axis cannot show
 * zero or less). */
static double clamp_y(const rp_chart *c, double y) {
    if (y < c->y0) return c->y0;
    if (y > c->y1) return c->y1;
    return y;
}

static void markers_at(rp_buf *b, const rp_chart *c, const double *xs, const double *ys, size_t n,
                       const char *color, const char *label) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(ys[i]) || isnan(xs[i])) continue;
        rp_printf(b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>",
                  rp_px(c, xs[i]), rp_py(c, clamp_y(c, ys[i])), color);
        rp_esc(b, label);
        rp_printf(b, ": %.4g at %.4g</title></circle>", ys[i], xs[i]);
    }
}

void rp_line(rp_buf *b, const rp_chart *c, const double *xs, const double *ys, size_t n,
             const char *color, const char *dash, int markers, const char *label) {
    rp_printf(b, "<g class=\"series\" data-series=\"");
    rp_esc(b, label);
    rp_printf(b, "\">");
    for (size_t i = 0; i < n;) {
        while (i < n && (isnan(ys[i]) || isnan(xs[i])))
            i++;
        size_t j = i;
        while (j < n && !isnan(ys[j]) && !isnan(xs[j]))
            j++;
        if (j - i >= 2) {
            rp_printf(b,
                      "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s%s%s points=\"",
                      color, dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
            for (size_t k = i; k < j; k++)
                rp_printf(b, "%s%.1f,%.1f", k > i ? " " : "", rp_px(c, xs[k]),
                          rp_py(c, clamp_y(c, ys[k])));
            rp_printf(b, "\"/>");
        }
        i = j;
    }
    if (markers) markers_at(b, c, xs, ys, n, color, label);
    rp_printf(b, "</g>");
}

void rp_legend(rp_buf *b, const char *const *labels, const char *const *colors,
               const char *const *dashes, size_t n) {
    rp_printf(b, "<div class=\"legend\">");
    for (size_t i = 0; i < n; i++) {
        rp_printf(b,
                  "<span class=\"key\"><svg width=\"26\" height=\"10\" aria-hidden=\"true\">"
                  "<line x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" stroke=\"%s\" stroke-width=\"2.5\"",
                  colors[i]);
        if (dashes && dashes[i][0]) rp_printf(b, " stroke-dasharray=\"%s\"", dashes[i]);
        rp_printf(b, "/></svg>");
        rp_esc(b, labels[i]);
        rp_printf(b, "</span>");
    }
    rp_printf(b, "</div>");
}
