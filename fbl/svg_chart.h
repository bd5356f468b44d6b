/*
 * svg_chart.h - charts as inline SVG, for `fbl report --format html`
 *
 * Layer: fbl/. Pure; appends to a GString, no state, thread-safe.
 *
 * Three kinds: horizontal bars (a top-N table: one bar per row, a part of
 * it overlaid, a note beside it), stacked columns over time (reports per
 * hour by feedback type) and spans on a time axis (campaigns, first to last
 * report). Every chart has a <title> and a <desc> (role="img"), a title and
 * subtitle (the time range) drawn in it, labelled axes with units, and a
 * legend when it has more than one series. Colours are CSS classes (s0..s3,
 * axis, grid, ...) the page defines, for a light and a dark scheme and for
 * print; the SVG scales to its container (viewBox, width 100%).
 *
 * Elements a test may count: each bar or column segment is a <rect
 * class="bar sK" data-series="K"> (K the series), drawn only for a value
 * above 0, except a bar's series 0 which is drawn for every row (its width
 * may be 0); each span is a <rect class="bar s0" data-series="0">.
 *
 * Every text (labels, notes, titles) is escaped here (fbl/markup.h); labels
 * are cut to FBL_SVG_MAX_LABEL characters. Bounds: at most FBL_SVG_MAX_ITEMS
 * bars, columns or spans are drawn (the caller bounds its rows: --top).
 */
#ifndef FBL_SVG_CHART_H
#define FBL_SVG_CHART_H

#include <glib.h>

#define FBL_SVG_MAX_SERIES 4
#define FBL_SVG_MAX_LABEL  40
#define FBL_SVG_MAX_ITEMS  1000

/* What every chart carries. Strings are borrowed and escaped when drawn. */
typedef struct fbl_svg_frame {
    const char *id;       /* unique in the page, [a-z0-9_-] only (not escaped) */
    const char *title;    /* "Top source IPs" */
    const char *subtitle; /* the time range: "2026-01-15 10:00 to 2026-01-16 10:00 UTC" */
    const char *desc;     /* the chart in words, for screen readers */
    const char *x_axis;   /* the horizontal axis with its unit: "reports (count)" */
    const char *y_axis;   /* the vertical axis with its unit */
    const char *series[FBL_SVG_MAX_SERIES]; /* legend names; NULL ends */
} fbl_svg_frame;

/* One bar: @value long, the first @part of it in series 1 (0: none). */
typedef struct fbl_svg_bar {
    const char *label; /* (nullable) left of the bar; NULL shows "-" */
    gint64 value;
    gint64 part;
    const char *note; /* (nullable) right of the bar: "12 reports, 3 reporters" */
} fbl_svg_bar;

/* One column of stacked series: series k of @values from the bottom. */
typedef struct fbl_svg_column {
    const char *label; /* the tick under it: "10:00" */
    gint64 values[FBL_SVG_MAX_SERIES];
} fbl_svg_column;

/* One span on a time axis, from @start to @end (Unix seconds). */
typedef struct fbl_svg_span {
    const char *label;
    gint64 start, end;
    const char *note; /* (nullable) right of the span */
} fbl_svg_span;

/* fbl_svg_bars - horizontal bars, one per item, in the order given */
void fbl_svg_bars(GString *out, const fbl_svg_frame *frame, const fbl_svg_bar *bars, guint n);

/* fbl_svg_columns - stacked columns of @n_series series, left to right */
void fbl_svg_columns(GString *out, const fbl_svg_frame *frame, const fbl_svg_column *columns,
                     guint n, guint n_series);

/*
 * fbl_svg_spans - spans on the time axis [@axis_start, @axis_end) (Unix
 * seconds, UTC ticks); a span is clipped to the axis
 */
void fbl_svg_spans(GString *out, const fbl_svg_frame *frame, gint64 axis_start, gint64 axis_end,
                   const fbl_svg_span *spans, guint n);

#endif /* FBL_SVG_CHART_H */
