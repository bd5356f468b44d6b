/* svg_chart.c - charts as inline SVG (see svg_chart.h) */
#include "fbl/svg_chart.h"

#include "fbl/markup.h"
#include "fbl/report_format.h"

/* The drawing, in viewBox units (about pixels at 1280 px). */
#define WIDTH       1200
#define TOP         58 /* below the title and subtitle */
#define LEGEND_H    22 /* the legend's line, when there is one */
#define AXIS_H      52 /* the value axis: ticks and its title */
#define ROW_H       24 /* a bar's row */
#define BAR_H       16
#define LABEL_W     280 /* bars: labels right-aligned before this */
#define PLOT_W      540 /* bars: the longest bar */
#define NOTE_CHARS  56  /* notes: characters at most (they end at the right edge) */
#define NOTE_X      (LABEL_W + PLOT_W + 12)
#define COL_LEFT    80 /* columns: the value axis' labels before this */
#define COL_PLOT_W  (WIDTH - COL_LEFT - 20)
#define COL_PLOT_H  260
#define TICKS       5  /* value axis ticks at most */
#define TIME_TICKS  6  /* time axis ticks */
#define MAX_X_TICKS 12 /* column labels at most */

static void text(GString *out, const char *cls, int x, int y, const char *anchor, const char *s,
                 guint max_chars)
{
    g_string_append_printf(out, "<text class=\"%s\" x=\"%d\" y=\"%d\" text-anchor=\"%s\">", cls, x,
                           y, anchor);
    fbl_markup_append_escaped(out, s, max_chars);
    g_string_append(out, "</text>\n");
}

static guint series_count(const fbl_svg_frame *f)
{
    guint n = 0;
    while (n < FBL_SVG_MAX_SERIES && f->series[n] != NULL)
        n++;
    return n;
}

/* The legend's height: none for one series. */
static int legend_h(const fbl_svg_frame *f)
{
    return series_count(f) > 1 ? LEGEND_H : 0;
}

static void open_svg(GString *out, const fbl_svg_frame *f, int height)
{
    g_string_append_printf(out,
                           "<svg class=\"chart\" id=\"%s\" "
                           "role=\"img\" aria-labelledby=\"%s-t %s-d\" viewBox=\"0 0 %d %d\" "
                           "width=\"100%%\" preserveAspectRatio=\"xMinYMin meet\">\n"
                           "<title id=\"%s-t\">",
                           f->id, f->id, f->id, WIDTH, height, f->id);
    fbl_markup_append_escaped(out, f->title, 0);
    g_string_append(out, ", ");
    fbl_markup_append_escaped(out, f->subtitle, 0);
    g_string_append_printf(out, "</title>\n<desc id=\"%s-d\">", f->id);
    fbl_markup_append_escaped(out, f->desc, 0);
    g_string_append(out, "</desc>\n");
    text(out, "title", 0, 20, "start", f->title, 0);
    text(out, "sub", 0, 42, "start", f->subtitle, 0);
    guint n = series_count(f);
    for (guint k = 0; n > 1 && k < n; k++) {
        int x = (int) k * 220;
        g_string_append_printf(out,
                               "<rect class=\"key s%u\" x=\"%d\" y=\"%d\" width=\"14\" "
                               "height=\"14\"/>\n",
                               k, x, TOP - 4);
        text(out, "lbl", x + 20, TOP + 8, "start", f->series[k], 30);
    }
}

/* The step of a value axis up to @max: 1, 2 or 5 times a power of ten. */
static gint64 nice_step(gint64 max)
{
    gint64 raw = (max + TICKS - 1) / TICKS, mag = 1;
    while (mag * 10 <= raw)
        mag *= 10;
    static const int steps[] = {1, 2, 5, 10};
    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        if (steps[i] * mag >= raw)
            return MAX(steps[i] * mag, 1);
    }
    return mag * 10;
}

/* The axis' end: @max rounded up to a whole step (at least one step). */
static gint64 axis_max(gint64 max, gint64 step)
{
    gint64 top = (max + step - 1) / step * step;
    return MAX(top, step);
}

static int scale(gint64 v, gint64 max, int length)
{
    return max > 0 ? (int) ((double) v / (double) max * length + 0.5) : 0;
}

/* A <rect> of the data, with its value and a tooltip. */
static void bar_rect(GString *out, guint series, int x, int y, int w, int h, gint64 v,
                     const char *what)
{
    g_autofree char *count = fbl_report_format_int(v);
    g_string_append_printf(out,
                           "<rect class=\"bar s%u\" data-series=\"%u\" data-v=\"%" G_GINT64_FORMAT
                           "\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"><title>",
                           series, series, v, x, y, w, h);
    fbl_markup_append_escaped(out, what, FBL_SVG_MAX_LABEL);
    g_string_append_printf(out, ": %s</title></rect>\n", count);
}

/* The horizontal value axis under a plot of @w at @x0: gridlines, ticks, title. */
static void value_axis_x(GString *out, const fbl_svg_frame *f, int x0, int w, int y0, int y1,
                         gint64 max, gint64 step)
{
    for (gint64 v = 0; v <= max; v += step) {
        int x = x0 + scale(v, max, w);
        g_autofree char *label = fbl_report_format_int(v);
        g_string_append_printf(
            out, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", x, y0, x, y1);
        text(out, "tick", x, y1 + 16, "middle", label, 0);
    }
    g_string_append_printf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
                           x0, y1, x0 + w, y1);
    text(out, "axt", x0 + w / 2, y1 + 40, "middle", f->x_axis, 0);
}

static gint64 bars_max(const fbl_svg_bar *bars, guint n)
{
    gint64 max = 0;
    for (guint i = 0; i < n; i++)
        max = MAX(max, bars[i].value);
    return max;
}

void fbl_svg_bars(GString *out, const fbl_svg_frame *frame, const fbl_svg_bar *bars, guint n)
{
    n = MIN(n, FBL_SVG_MAX_ITEMS);
    int top = TOP + legend_h(frame) + 8, plot_h = MAX((int) n, 1) * ROW_H;
    open_svg(out, frame, top + plot_h + AXIS_H);
    gint64 step = nice_step(bars_max(bars, n)), max = axis_max(bars_max(bars, n), step);
    value_axis_x(out, frame, LABEL_W, PLOT_W, top, top + plot_h, max, step);
    text(out, "axt", LABEL_W - 8, top - 6, "end", frame->y_axis, 0);
    if (n == 0)
        text(out, "lbl", LABEL_W + 8, top + 16, "start", "no data in this window", 0);
    for (guint i = 0; i < n; i++) {
        const fbl_svg_bar *b = &bars[i];
        int y = top + (int) i * ROW_H + (ROW_H - BAR_H) / 2;
        const char *label = b->label != NULL ? b->label : "-";
        text(out, "lbl", LABEL_W - 8, y + BAR_H - 3, "end", label, FBL_SVG_MAX_LABEL);
        bar_rect(out, 0, LABEL_W, y, scale(b->value, max, PLOT_W), BAR_H, b->value, label);
        if (b->part > 0)
            bar_rect(out, 1, LABEL_W, y, scale(MIN(b->part, b->value), max, PLOT_W), BAR_H, b->part,
                     label);
        if (b->note != NULL)
            text(out, "note", NOTE_X, y + BAR_H - 3, "start", b->note, NOTE_CHARS);
    }
    g_string_append(out, "</svg>\n");
}

static gint64 columns_max(const fbl_svg_column *columns, guint n, guint n_series)
{
    gint64 max = 0;
    for (guint i = 0; i < n; i++) {
        gint64 sum = 0;
        for (guint k = 0; k < n_series; k++)
            sum += columns[i].values[k];
        max = MAX(max, sum);
    }
    return max;
}

/* The vertical value axis left of the columns: gridlines, ticks, title. */
static void value_axis_y(GString *out, const fbl_svg_frame *f, int y0, gint64 max, gint64 step)
{
    for (gint64 v = 0; v <= max; v += step) {
        int y = y0 + COL_PLOT_H - scale(v, max, COL_PLOT_H);
        g_autofree char *label = fbl_report_format_int(v);
        g_string_append_printf(out,
                               "<line class=\"grid\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
                               COL_LEFT, y, COL_LEFT + COL_PLOT_W, y);
        text(out, "tick", COL_LEFT - 6, y + 4, "end", label, 0);
    }
    g_string_append_printf(out,
                           "<text class=\"axt\" text-anchor=\"middle\" "
                           "transform=\"translate(16 %d) rotate(-90)\">",
                           y0 + COL_PLOT_H / 2);
    fbl_markup_append_escaped(out, f->y_axis, 0);
    g_string_append(out, "</text>\n");
}

static void column(GString *out, const fbl_svg_column *c, guint n_series, int x, int w, int base,
                   gint64 max)
{
    gint64 below = 0;
    for (guint k = 0; k < n_series; k++) {
        gint64 v = c->values[k];
        if (v <= 0)
            continue;
        int y_low = base - scale(below, max, COL_PLOT_H);
        int y_high = base - scale(below + v, max, COL_PLOT_H);
        bar_rect(out, k, x, y_high, w, MAX(y_low - y_high, 1), v, c->label);
        below += v;
    }
}

void fbl_svg_columns(GString *out, const fbl_svg_frame *frame, const fbl_svg_column *columns,
                     guint n, guint n_series)
{
    n = MIN(n, FBL_SVG_MAX_ITEMS);
    n_series = MIN(n_series, FBL_SVG_MAX_SERIES);
    int top = TOP + legend_h(frame) + 12, base = top + COL_PLOT_H;
    open_svg(out, frame, base + AXIS_H);
    gint64 step = nice_step(columns_max(columns, n, n_series));
    gint64 max = axis_max(columns_max(columns, n, n_series), step);
    value_axis_y(out, frame, top, max, step);
    double slot = n > 0 ? (double) COL_PLOT_W / n : COL_PLOT_W;
    int w = MAX((int) (slot * 0.8), 1);
    guint every = (n + MAX_X_TICKS - 1) / MAX_X_TICKS;
    for (guint i = 0; i < n; i++) {
        int x = COL_LEFT + (int) (slot * i + slot * 0.1);
        column(out, &columns[i], n_series, x, w, base, max);
        if (i % MAX(every, 1) == 0)
            text(out, "tick", x + w / 2, base + 16, "middle", columns[i].label, 16);
    }
    if (n == 0)
        text(out, "lbl", COL_LEFT + 8, base - 8, "start", "no data in this window", 0);
    g_string_append_printf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
                           COL_LEFT, base, COL_LEFT + COL_PLOT_W, base);
    text(out, "axt", COL_LEFT + COL_PLOT_W / 2, base + 40, "middle", frame->x_axis, 0);
    g_string_append(out, "</svg>\n");
}

/* The time axis of spans: TIME_TICKS ticks in UTC, then its title. */
static void time_axis(GString *out, const fbl_svg_frame *f, int y0, int y1, gint64 a, gint64 b)
{
    for (int i = 0; i <= TIME_TICKS; i++) {
        gint64 t = a + (b - a) * i / TIME_TICKS;
        int x = LABEL_W + scale(t - a, b - a, PLOT_W);
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
        g_autofree char *label = dt != NULL ? g_date_time_format(dt, "%m-%d %H:%M") : NULL;
        g_string_append_printf(
            out, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", x, y0, x, y1);
        text(out, "tick", x, y1 + 16, "middle", label, 0);
    }
    g_string_append_printf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
                           LABEL_W, y1, LABEL_W + PLOT_W, y1);
    text(out, "axt", LABEL_W + PLOT_W / 2, y1 + 40, "middle", f->x_axis, 0);
}

void fbl_svg_spans(GString *out, const fbl_svg_frame *frame, gint64 axis_start, gint64 axis_end,
                   const fbl_svg_span *spans, guint n)
{
    n = MIN(n, FBL_SVG_MAX_ITEMS);
    axis_end = MAX(axis_end, axis_start + 1);
    int top = TOP + legend_h(frame) + 8, plot_h = MAX((int) n, 1) * ROW_H;
    open_svg(out, frame, top + plot_h + AXIS_H);
    time_axis(out, frame, top, top + plot_h, axis_start, axis_end);
    text(out, "axt", LABEL_W - 8, top - 6, "end", frame->y_axis, 0);
    if (n == 0)
        text(out, "lbl", LABEL_W + 8, top + 16, "start", "no data in this window", 0);
    gint64 len = axis_end - axis_start;
    for (guint i = 0; i < n; i++) {
        const fbl_svg_span *s = &spans[i];
        gint64 a = CLAMP(s->start, axis_start, axis_end) - axis_start;
        gint64 b = CLAMP(s->end, axis_start, axis_end) - axis_start;
        int y = top + (int) i * ROW_H + (ROW_H - BAR_H) / 2;
        int x = LABEL_W + scale(a, len, PLOT_W);
        /* A campaign of one report is a moment: keep it visible. */
        int w = MAX(scale(b, len, PLOT_W) - scale(a, len, PLOT_W), 3);
        const char *label = s->label != NULL ? s->label : "-";
        text(out, "lbl", LABEL_W - 8, y + BAR_H - 3, "end", label, FBL_SVG_MAX_LABEL);
        g_string_append_printf(out,
                               "<rect class=\"bar s0\" data-series=\"0\" x=\"%d\" y=\"%d\" "
                               "width=\"%d\" height=\"%d\"><title>",
                               x, y, w, BAR_H);
        fbl_markup_append_escaped(out, label, FBL_SVG_MAX_LABEL);
        g_string_append(out, "</title></rect>\n");
        if (s->note != NULL)
            text(out, "note", NOTE_X, y + BAR_H - 3, "start", s->note, NOTE_CHARS);
    }
    g_string_append(out, "</svg>\n");
}
