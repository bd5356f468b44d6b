/*
 * report_loop.h - the sink's HTML report: [report] html_file rewritten every
 * html_interval, for a web server to serve
 *
 * Layer: fbl/. One thread (beside the sink loop in `fbl sink` and `fbl
 * run`) with one PostgreSQL connection of its own (application_name "fbl
 * sink report"): ingestion never waits for it. Each turn makes the page of
 * `fbl report --format html --since <html_window> --top <html_top>`
 * (fbl/analyst_report.h, the same function, so the same bytes for the same
 * window) for the reports delivered in the html_window before now, until
 * now, and writes it atomically (fbl/blocklist_export.h's writer: a
 * temporary file in the same directory, fsync, mode 0644, rename, the
 * directory fsync'd): a web server serves the old page or the new one,
 * never half of one. The first turn is at start, then one every
 * html_interval after the last one began (a turn longer than the interval
 * is followed at once by the next).
 *
 * Errors: PostgreSQL unreachable or failing, or the file not writable, is a
 * warning on stderr (once per failure streak, and again when the reason
 * changes), retried at the next turn (reconnecting after a database error);
 * the page already there stays. Neither stops the daemon. A notice says when
 * a page is written again after failures.
 *
 * Stopping: a statement running when the daemon is asked to stop is
 * cancelled on the server (PQcancel, sink/report_query.h), so a stop waits
 * at most about FBL_REPORT_QUERY_POLL_MS for it (plus, while PostgreSQL
 * does not answer a new connection, the conninfo's connect_timeout).
 */
#ifndef FBL_REPORT_LOOP_H
#define FBL_REPORT_LOOP_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"

typedef struct fbl_report_loop fbl_report_loop;

/* fbl_report_loop_wanted - @config names [report] html_file */
bool fbl_report_loop_wanted(const fbl_config *config);

/* fbl_report_loop_new - (transfer full) the loop for @config, which outlives it; no I/O */
fbl_report_loop *fbl_report_loop_new(const fbl_config *config);
void fbl_report_loop_free(fbl_report_loop *loop);

/*
 * fbl_report_loop_run - write the page every html_interval until
 * fbl_daemon_stopping()
 *
 * Returns: true (failures are logged and retried, never returned).
 */
bool fbl_report_loop_run(fbl_report_loop *loop, GError **error);

#endif /* FBL_REPORT_LOOP_H */
