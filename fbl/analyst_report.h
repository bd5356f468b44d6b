/*
 * analyst_report.h - the analysts' headline tables for a window, made into
 * one document: text, CSV, JSON or the HTML page
 *
 * Layer: fbl/. What `fbl report` prints and what the sink's report thread
 * writes ([report] html_file, fbl/report_loop.h) is made here, by one
 * function, so the two are the same bytes for the same window, --top and
 * configuration. Reads only the analyst functions of
 * schema/005_analyst.sql (fbl.summary, fbl.top_source_ips(since, lim,
 * until), ...), so the rights of fbl_analyst are enough. One statement per
 * table on the caller's connection (sink/report_query.h): the first @top
 * rows, then an "others" and a "total" line.
 *
 * Formats: text (aligned tables with totals, for a terminal: numbers with
 * thousands separators, control characters of hostile subjects replaced),
 * csv (one block per table, blank line between, data rows only, RFC 4180
 * quoting, LF line ends), json (one document, typed values, "others" and
 * "total") and html (one self-contained page with charts:
 * fbl/report_html.h, given the same lines). With [local] set, an outbound
 * section (accounts by name when the role may read them, else
 * pseudonymised, and our sending IPs).
 *
 * Threads: no state of its own; one call at a time per connection (the
 * connection's rule). Bounds: @top rows per top table (at most
 * FBL_ANALYST_REPORT_MAX_TOP); the tables that list every row (mailboxes
 * and feedback types, the time series, vendors, reject reasons) are short
 * by nature.
 */
#ifndef FBL_ANALYST_REPORT_H
#define FBL_ANALYST_REPORT_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"
#include "sink/report_query.h"

/* Rows of a top table at most, and `fbl report --top`'s default. */
#define FBL_ANALYST_REPORT_MAX_TOP     100000
#define FBL_ANALYST_REPORT_DEFAULT_TOP 10

typedef enum {
    FBL_ANALYST_REPORT_TEXT = 0,
    FBL_ANALYST_REPORT_CSV,
    FBL_ANALYST_REPORT_JSON,
    FBL_ANALYST_REPORT_HTML,
} fbl_analyst_report_format;

/* fbl_analyst_report_format_from_string - "text", "csv", "json" or "html" */
bool fbl_analyst_report_format_from_string(const char *name, fbl_analyst_report_format *out);

/* The window of a report: reports delivered in [since, until). */
typedef struct fbl_analyst_report_window {
    gint64 since, until; /* Unix seconds, @until after @since */
    /* @until is "now": the queries run on past it (no end), and the
     * documents say "until now"; the shown window and the per-hour or
     * per-day step still come from @since and @until. */
    bool until_now;
    guint top; /* rows of each top table (0: all), at most FBL_ANALYST_REPORT_MAX_TOP */
} fbl_analyst_report_window;

/*
 * fbl_analyst_report_make - run every table's query for @window and append
 * the whole document in @format to @out
 *
 * @config: (nullable) [local] (the outbound section, when it says what is
 *   ours) and [outbound]'s thresholds; NULL: no outbound section
 * Returns: true; or false with FBL_PG_ERROR (sink/pgconn.h), its message
 *   prefixed with the table's name ("top_source_ips: ..."), and @out holding
 *   a part of the document (throw it away).
 */
bool fbl_analyst_report_make(fbl_report_query *db, const fbl_config *config,
                             fbl_analyst_report_format format,
                             const fbl_analyst_report_window *window, GString *out, GError **error);

#endif /* FBL_ANALYST_REPORT_H */
