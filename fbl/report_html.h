/*
 * report_html.h - `fbl report --format html`: one self-contained HTML page
 *
 * Layer: fbl/. Pure; appends to a GString, no I/O, thread-safe.
 *
 * Takes the same lines fbl/cmd_report.c gives the text, CSV and JSON formats
 * (sink/report_query.h: rows, "others", "total"), section by section, so
 * every format shows the same numbers. Each section becomes a heading, the
 * charts this module knows for its name (fbl/svg_chart.h; a section it does
 * not know gets none) and a table of every line. The page has no script, no
 * network reference (a Content-Security-Policy of default-src 'none' says
 * so to the browser too), CSS inline with a light and a dark scheme and a
 * print style.
 *
 * For scripts and tests: <html> carries data-since, data-until (ISO-8601
 * UTC), data-period and data-until-now as the JSON format's keys; the summary
 * is <dl data-section="summary"> with <dd data-col data-v>; every other
 * section is <table data-section="NAME">, each <th data-col data-kind>, each
 * line <tr data-kind="row|others|total"> (data-rank, or data-rows: how many
 * rows the line sums), each cell <td data-col data-v> with the database's
 * value unchanged (no data-v: SQL NULL).
 *
 * Everything from the database is escaped (fbl/markup.h) in HTML and SVG.
 * Bounds: the rows the caller gives (--top); chart labels cut to
 * FBL_SVG_MAX_LABEL characters, table cells to FBL_REPORT_HTML_MAX_CELL.
 */
#ifndef FBL_REPORT_HTML_H
#define FBL_REPORT_HTML_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/report_format.h"
#include "sink/report_query.h"

#define FBL_REPORT_HTML_MAX_CELL 200

typedef struct fbl_report_html_column {
    const char *name;     /* the JSON key */
    const char *title;    /* the header */
    fbl_report_kind kind; /* how its cells read */
    bool sum;             /* "others" and "total" lines carry it */
} fbl_report_html_column;

/* One table of the report, as the other formats see it. */
typedef struct fbl_report_html_section {
    const char *name;  /* the JSON key: "top_source_ips" */
    const char *title; /* the heading */
    const char *unit;  /* what a row is, plural: "IPs" (NULL for the summary) */
    const fbl_report_html_column *columns;
    guint n_columns;
} fbl_report_html_section;

/* The report's window. */
typedef struct fbl_report_html_window {
    gint64 since, until; /* Unix seconds; @until is "now" when @until_now */
    bool until_now;
    const char *period; /* "hour" or "day": the step of the time series */
} fbl_report_html_window;

/* fbl_report_html_begin - the page's head, style and heading */
void fbl_report_html_begin(GString *out, const fbl_report_html_window *window);

/*
 * fbl_report_html_add - one section: the summary ("summary": its first
 * row as figures) or a table with its charts
 *
 * @rows: the lines of sink/report_query.h: kind, rank or count, then
 *   @section's columns in order
 */
void fbl_report_html_add(GString *out, const fbl_report_html_window *window,
                         const fbl_report_html_section *section, const fbl_report_rows *rows);

/* fbl_report_html_end - close the page */
void fbl_report_html_end(GString *out);

#endif /* FBL_REPORT_HTML_H */
