/*
 * log.h - the one log writer: key=value lines for people, fields for journald
 *
 * Layer: fbl/. Installed once at start-up with g_log_set_writer_func(); the
 * libraries log through g_log with their own domains and never print.
 * Thread-safe: each event is formatted into one buffer and written with a
 * single write(2) (or one sd_journal_sendv(), one syslog()).
 *
 * Where lines go ([log] target):
 *   stderr   key=value lines on standard error
 *   file     appended to [log] file; SIGHUP reopens it (logrotate)
 *   journal  systemd-journald's native protocol (sd_journal_sendv): MESSAGE is
 *            the line, with PRIORITY, SYSLOG_IDENTIFIER=fbl, FBL_ROLE,
 *            FBL_RID, FBL_STAGE, GLIB_DOMAIN and the caller's CODE_* fields,
 *            so `journalctl FBL_RID=3f2a9c01d7e4` follows one mail
 *   syslog   syslog(3), ident "fbl", facility daemon, with the pid; the
 *            message starts with role=
 *   auto     file when [log] file is set, else stderr (the default)
 *
 * Line shape:
 *   ts=2026-11-29T15:30:59.123Z role=sink pid=4242 rid=3f2a9c01d7e4 stage=pg_commit
 *     level=info domain=fbl-sink msg="batch=17 mails=50 …"
 * ts (UTC, milliseconds), role (the subcommand: watch, sink, forward, run, …)
 * and pid lead every line of a file, so several daemons can share one, and
 * every stderr line, except when stderr is journald's own stream
 * ($JOURNAL_STREAM names its device and inode, as systemd sets it for a unit
 * with StandardError=journal): journald records the time, the pid and the
 * unit itself, so those lines start at rid= as they always did. rid is the
 * first 12 hex digits of the mail's SHA-256 (fbl(1)); a longer id given as
 * RID is cut to that. Structured fields other than MESSAGE, GLIB_DOMAIN,
 * PRIORITY and CODE_* are appended as key=value. Events below the
 * configured level are dropped before they are formatted.
 */
#ifndef FBL_LOG_H
#define FBL_LOG_H

#include <stdbool.h>

#include <glib.h>

#define FBL_LOG_ERROR (fbl_log_error_quark())
GQuark fbl_log_error_quark(void);

typedef enum {
    FBL_LOG_ERROR_TARGET = 1, /* permanent: an unknown target, or file without a path */
} fbl_log_error;              /* append new codes at the end only */

typedef enum {
    FBL_LOG_TARGET_AUTO = 0,
    FBL_LOG_TARGET_STDERR,
    FBL_LOG_TARGET_FILE,
    FBL_LOG_TARGET_JOURNAL,
    FBL_LOG_TARGET_SYSLOG,
} fbl_log_target;

/*
 * fbl_log_init - install the writer
 *
 * @level: the least severe level written (G_LOG_LEVEL_MESSAGE writes
 *   message, warning, critical and error; G_LOG_LEVEL_DEBUG writes all)
 */
void fbl_log_init(GLogLevelFlags level);

/*
 * fbl_log_check_target - is [log] target = @target usable with [log] file =
 * @file? "auto", "stderr", "file", "journal", "syslog"; file needs a path,
 * and a path needs target file (or auto)
 *
 * @target: (nullable) NULL or "": auto
 * @file: (nullable)
 * Returns: true, or false with FBL_LOG_ERROR_TARGET saying why.
 */
bool fbl_log_check_target(const char *target, const char *file, GError **error);

/*
 * fbl_log_setup - where the lines of this process go, and its role (the
 * name in role= and FBL_ROLE); call before fbl_log_init(), before any thread
 * logs
 *
 * @role: (nullable) NULL: the program name GLib knows (the subcommand)
 * @target, @file: as fbl_log_check_target() takes them
 * Returns: true, or false with FBL_LOG_ERROR_TARGET, or a G_FILE_ERROR when
 *   the file cannot be opened (the writer keeps stderr).
 */
bool fbl_log_setup(const char *role, const char *target, const char *file, GError **error);

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
 * Returns: true when a file was reopened; false when logging elsewhere, or
 *   when the file cannot be opened (logged; the old one stays).
 */
bool fbl_log_reopen(void);

/* fbl_log_level_to_string - the name fbl_log_level_from_string() takes */
const char *fbl_log_level_to_string(GLogLevelFlags level);

/* fbl_log_level_from_string - "debug", "info", "notice"/"message", "warning", "error" */
bool fbl_log_level_from_string(const char *name, GLogLevelFlags *level);

/*
 * fbl_log_event - one event about a mail: "rid=<12 hex> stage=<stage> msg=…",
 * logged under the caller's G_LOG_DOMAIN (domain=fbl-sink, …), like the
 * module's other lines
 *
 * @rid: (nullable) the mail_id; its first 12 digits are shown
 * @stage: parse, send, ack, retire, pg_commit, …
 */
/* NOLINTNEXTLINE(readability-identifier-naming): called like a function, as g_info() is */
#define fbl_log_event(level, rid, stage, ...)                                                      \
    fbl_log_event_in(G_LOG_DOMAIN, (level), (rid), (stage), __VA_ARGS__)

/*
 * fbl_log_event_in - fbl_log_event() under @domain
 *
 * @domain: (nullable) NULL (a file that defines no G_LOG_DOMAIN): "fbl"
 */
void fbl_log_event_in(const char *domain, GLogLevelFlags level, const char *rid, const char *stage,
                      const char *format, ...) G_GNUC_PRINTF(5, 6);

/*
 * fbl_log_format - (transfer full) the line @fields make at @level, as the
 * writer would write it to a file (@prefixed: with ts, role and pid) or to
 * journald (not), without the newline; for tests
 */
char *fbl_log_format(GLogLevelFlags level, const GLogField *fields, gsize n_fields, bool prefixed);

/*
 * fbl_log_stderr_is_journal - does $JOURNAL_STREAM name the device and inode
 * of standard error (systemd connected it to journald)?
 */
bool fbl_log_stderr_is_journal(void);

#endif /* FBL_LOG_H */
