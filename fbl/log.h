/*
 * log.h - the one log writer: key=value lines on stderr, for journald and people
 *
 * Layer: fbl/. Installed once at start-up with g_log_set_writer_func(); the
 * libraries log through g_log with their own domains and never print.
 * Thread-safe: each event is formatted into one buffer and written with a
 * single write(2).
 *
 * With [log] file, lines are appended to that file instead; SIGHUP reopens it.
 *
 * Line shape:  level=warning domain=fbl-pg msg="connection lost" rid=3f2a…
 * Structured fields other than MESSAGE, GLIB_DOMAIN and PRIORITY are
 * appended as key=value. Events below the configured level are dropped
 * before they are formatted.
 */
#ifndef FBL_LOG_H
#define FBL_LOG_H

#include <stdbool.h>

#include <glib.h>

/*
 * fbl_log_init - install the writer
 *
 * @level: the least severe level written (G_LOG_LEVEL_MESSAGE writes
 *   message, warning, critical and error; G_LOG_LEVEL_DEBUG writes all)
 */
void fbl_log_init(GLogLevelFlags level);

/*
 * fbl_log_open_file - write to @path (appending; created with mode 0640)
 * instead of stderr, from now on
 *
 * Returns: true, or false with a G_FILE_ERROR (the writer keeps stderr).
 */
bool fbl_log_open_file(const char *path, GError **error);

/*
 * fbl_log_reopen - open the log file again by its name (after logrotate
 * renamed it: SIGHUP); lines written meanwhile go to the old file or the
 * new one, never lost. Not async-signal-safe: daemon.c calls it from a thread.
 *
 * Returns: true when a file was reopened; false when logging to stderr, or
 *   when the file cannot be opened (logged; the old one stays).
 */
bool fbl_log_reopen(void);

/* fbl_log_level_to_string - the name fbl_log_level_from_string() takes */
const char *fbl_log_level_to_string(GLogLevelFlags level);

/* fbl_log_level_from_string - "debug", "info", "notice"/"message", "warning", "error" */
bool fbl_log_level_from_string(const char *name, GLogLevelFlags *level);

/*
 * fbl_log_event - one event about a mail: "rid=<12 hex> stage=<stage> msg=…"
 *
 * @rid: (nullable) the mail_id (or report id); its first 12 digits are shown
 * @stage: parse, send, ack, retire, pg_commit, …
 */
void fbl_log_event(GLogLevelFlags level, const char *rid, const char *stage, const char *format,
                   ...) G_GNUC_PRINTF(4, 5);

#endif /* FBL_LOG_H */
