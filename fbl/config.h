/*
 * config.h - the fbl.conf INI file (GLib GKeyFile) into immutable options
 *
 * Layer: fbl/. Read once at start-up; the result is not changed afterwards
 * and may be read from every thread. Flags override it (each subcommand
 * applies its own after loading).
 *
 * The keys are a table (config.c): name, type, default, range, unit. An
 * unknown group or key, a value of the wrong type or out of range, or a bad
 * unit is an error naming the file, the line and the key.
 *
 * Syntax: GKeyFile's, plus trailing comments, which GKeyFile lacks and INI
 * users expect: a '#' or ';' after a blank starts a comment that runs to the
 * end of the line, on a key's line and on a [group] line alike (so a value
 * cannot hold a blank followed by '#' or ';'). A line starting with ';' is a
 * comment too. They are cut before GKeyFile reads the file, line for line, so
 * errors keep their line numbers; a line that is none of blank, comment,
 * [group] or key = value is an error naming its line. Groups:
 *   [postgres]        conninfo, unreachable_timeout
 *   [mailbox:NAME]    path, feedback_type, raw          (one per mailbox)
 *   [limits]          max_mail_bytes, max_mime_depth, max_mime_parts,
 *                     max_headers, max_header_bytes, reports_per_reporter_per_hour,
 *                     exempt_reporters
 *   [parse]           trusted_networks, trusted_hosts, authserv_id
 *   [watch]           connect, window, window_bytes, ack_timeout,
 *                     curve_secret_file, curve_server_public_file, allow_plaintext,
 *                     allow_insecure_file_modes
 *   [sink]            bind, batch_max_mails, batch_max_bytes, batch_max_wait,
 *                     retry_max_wait, store_raw, curve_secret_file,
 *                     curve_clients_dir, allow_plaintext, allow_insecure_file_modes
 *   [vendor:NAME]     type, url, token_file, …  (keys: config.c; values: forward_loop.c)
 *   [log]             level, file
 *   [metrics]         listen, watch, sink, forward      (ADDRESS:PORT; empty: off)
 *   [retention]       keep, raw_keep                    (days; fbl prune)
 * Secrets are never values: only *_file keys name them (a password in
 * [postgres] conninfo is refused: libpq's passfile= names a pgpass file). The only
 * environment variable read is FBL_CONFIG (the file when --config is absent).
 */
#ifndef FBL_CONFIG_H
#define FBL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/parse.h"
#include "parsers/report.h"

#define FBL_CONFIG_ERROR (fbl_config_error_quark())
GQuark fbl_config_error_quark(void);

typedef enum {
    FBL_CONFIG_ERROR_FILE = 1, /* permanent: unreadable or not INI */
    FBL_CONFIG_ERROR_KEY,      /* permanent: unknown group or key */
    FBL_CONFIG_ERROR_VALUE,    /* permanent: wrong type, range or unit */
} fbl_config_error;            /* append new codes at the end only */

typedef struct fbl_mailbox_config {
    char *name;
    char *path; /* a Maildir */
    fbl_feedback_type feedback_type;
    bool raw;
    bool from_flag; /* given by --maildir, not by a [mailbox:NAME] group */
} fbl_mailbox_config;

typedef struct fbl_vendor_config {
    char *name;
    GHashTable *keys; /* char * -> char *: the group's keys, checked by the forwarder */
} fbl_vendor_config;

typedef struct fbl_config {
    char *file;  /* the file read, or NULL for built-in defaults */
    char *_text; /* its text, comments cut (line numbers kept); NULL without a file */
    char *pg_conninfo;
    unsigned pg_unreachable_timeout_ms; /* fbl run --once gives up on PostgreSQL after it */
    GPtrArray *mailboxes;               /* fbl_mailbox_config * */
    GPtrArray *vendors;                 /* fbl_vendor_config * */
    /* [limits] and [parse] */
    size_t max_mail_bytes;
    unsigned max_mime_depth, max_mime_parts, max_headers;
    size_t max_header_bytes;
    unsigned reports_per_reporter_per_hour; /* 0: no limit */
    GStrv exempt_reporters;                 /* addresses or domains (*.example.com) */
    GStrv trusted_networks, trusted_hosts;
    char *authserv_id;
    /* [watch] */
    GStrv watch_connect;
    unsigned watch_window;
    size_t watch_window_bytes;
    unsigned watch_queue_max;
    unsigned watch_ack_timeout_ms;
    /* [sink] */
    char *sink_bind;
    unsigned sink_batch_max_mails;
    size_t sink_batch_max_bytes;
    unsigned sink_batch_max_wait_ms;
    unsigned sink_batch_idle_ms;
    unsigned sink_retry_max_wait_ms;
    bool sink_store_raw;
    /* CURVE between watchers and sinks (curve.h); NULL: not set */
    char *watch_curve_secret_file, *watch_curve_server_public_file;
    bool watch_allow_plaintext;
    char *sink_curve_secret_file, *sink_curve_clients_dir;
    bool sink_allow_plaintext;
    /* read the secret key files even when others may read them (secret.h) */
    bool watch_allow_insecure_file_modes, sink_allow_insecure_file_modes;
    /* [log] */
    GLogLevelFlags log_level;
    char *log_file;   /* NULL: stderr */
    char *log_target; /* auto, stderr, file, journal, syslog (log.h); NULL: auto */
    /* [metrics]: ADDRESS:PORT, NULL when off */
    char *metrics_listen, *metrics_watch, *metrics_sink, *metrics_forward;
    /* [retention]: days; 0 = keep */
    unsigned retention_keep_days, retention_raw_keep_days;
} fbl_config;

/*
 * fbl_config_load - read @path, or FBL_CONFIG, or nothing (defaults only)
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR naming file, line, key.
 */
fbl_config *fbl_config_load(const char *path, GError **error);
void fbl_config_free(fbl_config *config);

/* fbl_config_parse_options - fill parse options from @config (borrows its strings) */
void fbl_config_parse_options(const fbl_config *config, fbl_parse_options *out);

/*
 * fbl_config_add_mailbox - add a mailbox given by flag ("--maildir PATH"):
 * named after the directory, feedback_type abuse.
 */
void fbl_config_add_mailbox(fbl_config *config, const char *path);

/* fbl_config_mailbox_meta - the parse defaults of the mailbox called @name, or NULL */
const fbl_mailbox_config *fbl_config_find_mailbox(const fbl_config *config, const char *name);

/*
 * fbl_config_print - every key with its effective value, "# default" (a
 * trailing comment) after the ones left at their default (--print-config).
 * The output loads as a configuration file and means the same. Every group
 * is there: [mailbox:NAME] and [vendor:NAME] as configured, with the keys
 * left unset commented out beside their defaults, or as a commented-out
 * example when none is configured.
 *
 * @command: the subcommand, for the heading ("fbl run")
 */
void fbl_config_print(const fbl_config *config, const char *command, GString *out);

/*
 * fbl_config_print_table - the key table, one key a line, tab-separated:
 * group, key, unit (string, list, number, size, duration, boolean, level,
 * path, address; "vendor" for keys the forwarder checks), default, range,
 * help. [mailbox:NAME] and [vendor:NAME] keys come last. For the test that
 * keeps etc/fbl.conf.example and fbl.conf(5) in step with the code.
 */
void fbl_config_print_table(GString *out);

/*
 * fbl_config_error_at - set an FBL_CONFIG_ERROR_VALUE that names the file,
 * the line of @key in [@group] (0 when it is not in the file) and the key,
 * for values checked after loading (key files, endpoints)
 *
 * Returns: false, always.
 */
bool fbl_config_error_at(const fbl_config *config, const char *group, const char *key,
                         GError **error, const char *format, ...) G_GNUC_PRINTF(5, 6);

/*
 * fbl_config_check_conninfo - @conninfo parses and holds no password
 * (secrets come from files: passfile=)
 *
 * Returns: true, or false with FBL_CONFIG_ERROR_VALUE.
 */
bool fbl_config_check_conninfo(const char *conninfo, GError **error);

/*
 * fbl_config_set_conninfo - --db CONNINFO: check it as [postgres] conninfo is
 * checked (it parses, it holds no password), then put it in its place
 *
 * Returns: true, or false with FBL_CONFIG_ERROR_VALUE ("--db: ...").
 */
bool fbl_config_set_conninfo(fbl_config *config, const char *conninfo, GError **error);

/*
 * fbl_config_check_mailboxes - every mailbox is a Maildir this process can
 * use: new/ and cur/ directories it may read, write and search (the watcher
 * renames each stored mail from one to the other), and a tmp/ directory
 * (the MTA's). No file is opened or created.
 *
 * Returns: true, or false with FBL_CONFIG_ERROR_VALUE naming the file and the
 *   line of [mailbox:NAME] path (or the --maildir flag) and what is wrong.
 */
bool fbl_config_check_mailboxes(const fbl_config *config, GError **error);

/*
 * fbl_config_check_log_file - [log] file, when set, can be appended to (or
 * created in its directory) by this process; nothing is created
 *
 * Returns: true, or false with FBL_CONFIG_ERROR_VALUE naming file and line.
 */
bool fbl_config_check_log_file(const fbl_config *config, GError **error);

/* fbl_config_vendor_names - (transfer container) NULL-terminated vendor names */
const char **fbl_config_vendor_names(const fbl_config *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_config, fbl_config_free)

#endif /* FBL_CONFIG_H */
