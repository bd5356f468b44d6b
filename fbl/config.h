/*
 * config.h - fbl.conf: every group and key of the file in one table, read
 * once into an immutable fbl_config
 *
 * Layer: fbl/. The one place that knows the file: libraries get option
 * structs made from it (fbl_config_parse_options(); the forwarder turns a
 * fbl_vendor_config into sink/vendor.h's options), never the file.
 *
 * Keys. One table in config.c holds every key of every group, [mailbox:NAME]
 * and [vendor:NAME] included: group, key, type, default, range, one line of
 * help, and for a vendor key the vendor types it is for (and rspamd's default
 * where it differs). `fbl sink --print-config-table` prints the table;
 * ops_check.py keeps etc/fbl.conf.example and fbl.conf(5) in step with it. A
 * new key is one row there. Groups: [postgres], [limits], [parse], [watch],
 * [sink], [log], [metrics], [retention], [blocklist], [local], [outbound],
 * [report], and any number
 * of [mailbox:NAME]
 * (path, or imap with its login keys) and [vendor:NAME] (type and url
 * required).
 *
 * Values. Each type has one reader (numbers, sizes, durations, days and
 * booleans through fbl/value.h), the same in every group; fbl.conf(5),
 * VALUES, documents them. A value of the wrong type, out of range or with a
 * bad unit, an unknown group or key, a missing required key, a vendor key
 * for the other vendor type, a vendor without anything to send (rspamd with
 * learn = false and no fuzzy_flag), a mailbox with both or neither of path
 * and imap, an IMAP mailbox without user or without exactly one of
 * password_file and oauth2_token_file, an IMAP key in a Maildir mailbox,
 * plain imap:// to a host that is not loopback without starttls, starttls
 * with imaps://, redact without redact_key_file (or the
 * key file without redact), a conninfo holding a password: each is an
 * error "FILE:LINE: [group] key: why" (FBL_CONFIG_ERROR, exit 78) when the
 * file is loaded, in every subcommand. What the values name is checked later,
 * by --check-config and at start-up: the Maildirs and the log file here
 * (fbl_config_check_*), the IMAP mailboxes' secret files (and, on request,
 * their login) in imap_watch.h, the CURVE key files in curve.h, the vendors' secret
 * files, CA bundle and plain-http rule in forward_loop.h. Those name the
 * line too (fbl_config_error_at()).
 *
 * Syntax: GKeyFile's, plus trailing comments, which GKeyFile lacks and INI
 * users expect: a '#' or ';' after a blank starts a comment that runs to the
 * end of the line, on a key's line and on a [group] line alike (so a value
 * cannot hold a blank followed by '#' or ';'). A line starting with ';' is a
 * comment too. They are cut before GKeyFile reads the file, line for line, so
 * errors keep their line numbers; a line that is none of blank, comment,
 * [group] or key = value is an error naming its line.
 *
 * Secrets are never values: only *_file keys name them (a password in
 * [postgres] conninfo is refused: libpq's passfile= names a pgpass file). The
 * only environment variable read is FBL_CONFIG (the file when --config is
 * absent).
 *
 * Ownership and threads: fbl_config_load() returns a config the caller owns
 * and frees with fbl_config_free(); every string and list in it is owned by
 * it, and what the functions below hand out is borrowed from it. A subcommand
 * applies its flags (fbl_config_add_mailbox(), fbl_config_set_conninfo())
 * right after loading, before any thread starts; from then on the config is
 * not changed and every thread may read it. It outlives every loop made from
 * it.
 *
 * Limits: the file is read whole into memory; every value is within its
 * key's range (the table's, 32 bits for counts and durations in
 * milliseconds); the number of mailboxes and vendors is not bounded.
 */
#ifndef FBL_CONFIG_H
#define FBL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/parse.h"
#include "parsers/report.h"
#include "sink/vendor.h"

#define FBL_CONFIG_ERROR (fbl_config_error_quark())
GQuark fbl_config_error_quark(void);

typedef enum {
    FBL_CONFIG_ERROR_FILE = 1, /* permanent: unreadable or not INI */
    FBL_CONFIG_ERROR_KEY,      /* permanent: unknown group or key */
    FBL_CONFIG_ERROR_VALUE,    /* permanent: wrong type, range or unit */
} fbl_config_error;            /* append new codes at the end only */

typedef struct fbl_mailbox_config {
    char *name;
    char *path; /* a Maildir; NULL for an IMAP mailbox (exactly one of path and imap) */
    fbl_feedback_type feedback_type;
    bool raw;
    bool from_flag; /* given by --maildir, not by a [mailbox:NAME] group */
    /* An IMAP folder (fbl/imap.h): imap:// or imaps:// URL; NULL for a Maildir. With it,
     * user and exactly one of password_file and oauth2_token_file. */
    char *imap, *user, *password_file, *oauth2_token_file, *ca_file;
    char *done_folder; /* where a stored mail is moved */
    bool starttls;
    unsigned poll_interval_ms; /* without IDLE */
    bool allow_insecure_file_modes;
} fbl_mailbox_config;

typedef struct fbl_vendor_config {
    char *name;
    fbl_vendor_type type;
    char *url; /* http:// or https://, naming a host */
    /* files; NULL: not set (token_file is http-json's, password_file rspamd's) */
    char *token_file, *password_file, *ca_file, *redact_key_file;
    unsigned batch_size; /* http-json: reports per request; rspamd: per transaction */
    unsigned parallel, max_attempts;
    size_t batch_bytes;
    unsigned timeout_ms, retry_max_wait_ms;
    GStrv redact;                      /* fields to pseudonymize (sink/redact.h); empty: none */
    bool include_raw;                  /* http-json only */
    bool learn;                        /* rspamd only */
    unsigned fuzzy_flag, fuzzy_weight; /* rspamd only; fuzzy_flag 0: none */
    bool allow_plain_http, allow_insecure_file_modes;
} fbl_vendor_config;

typedef struct fbl_config {
    char *file;  /* the file read, or NULL for built-in defaults */
    char *_text; /* its text, comments cut (line numbers kept); NULL without a file */
    char *pg_conninfo;
    unsigned pg_unreachable_timeout_ms; /* fbl run --once gives up on PostgreSQL after it */
    /* [blocklist] export_interval: here, in what would be padding */
    unsigned blocklist_export_interval_ms;
    GPtrArray *mailboxes; /* fbl_mailbox_config * */
    GPtrArray *vendors;   /* fbl_vendor_config * */
    /* [limits] and [parse] */
    size_t max_mail_bytes;
    unsigned max_mime_depth, max_mime_parts, max_headers;
    /* [report] html_top: here, in what would be padding */
    unsigned report_html_top;
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
    unsigned watch_parse_threads; /* 0: g_get_num_processors() */
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
    /* [blocklist] list_provider_relays: here, in what would be padding */
    bool blocklist_list_provider_relays;
    /* [log] */
    GLogLevelFlags log_level;
    char *log_file;   /* NULL: stderr */
    char *log_target; /* auto, stderr, file, journal, syslog (log.h); NULL: auto */
    /* [metrics]: ADDRESS:PORT, NULL when off */
    char *metrics_listen, *metrics_watch, *metrics_sink, *metrics_forward;
    /* [retention]: days; 0 = keep */
    unsigned retention_keep_days, retention_raw_keep_days;
    /* [local] (parsers/outbound.h): what is ours */
    GStrv local_networks, local_domains;
    /* [outbound] (schema/011_outbound.sql): an account's state, the lock answer */
    unsigned outbound_window_days, outbound_warn_rate_ppm, outbound_act_rate_ppm;
    unsigned outbound_min_complaints;
    char *outbound_lock_text;
    /* [blocklist] (fbl/blocklist.h): the listing policy, the answer text, the re-export */
    unsigned blocklist_window_days, blocklist_delist_after_days;
    unsigned blocklist_min_reporters, blocklist_verified_weight, blocklist_not_spam_weight;
    unsigned blocklist_ttl_ms;
    char *blocklist_allowlist_file;      /* NULL: none */
    char *blocklist_org, *blocklist_url; /* NULL: not set */
    GStrv blocklist_nameservers;
    char *blocklist_hostmaster;
    /* the sink's re-export: files, NULL when not wanted */
    char *blocklist_ips_rbldnsd, *blocklist_domains_rbldnsd;
    char *blocklist_ips_rspamd, *blocklist_domains_rspamd;
    char *blocklist_ips_postfix, *blocklist_domains_postfix;
    /* [report]: the sink's HTML page (fbl/report_loop.h); html_file NULL: not written */
    char *report_html_file;
    unsigned report_html_interval_ms, report_html_window_ms;
} fbl_config;

/*
 * fbl_config_load - read @path, or FBL_CONFIG, or nothing (defaults only),
 * checking every value (see Values above)
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

/* fbl_config_find_mailbox - the mailbox called @name, or NULL */
const fbl_mailbox_config *fbl_config_find_mailbox(const fbl_config *config, const char *name);

/* fbl_config_find_vendor - the [vendor:@name], or NULL */
const fbl_vendor_config *fbl_config_find_vendor(const fbl_config *config, const char *name);

/*
 * fbl_config_print - every key of every group with its effective value,
 * "# default" (a trailing comment) after the ones left at their default
 * (--print-config). The output loads as a configuration file and means the
 * same. [mailbox:NAME] and [vendor:NAME] groups are there as configured, each
 * with every key of the table (a vendor's defaults are those of its type; a
 * key of the other vendor type is commented out), or as a commented-out
 * example with every key when none is configured.
 *
 * @command: the subcommand, for the heading ("fbl run")
 */
void fbl_config_print(const fbl_config *config, const char *command, GString *out);

/*
 * fbl_config_print_table - the key table, one key a line, tab-separated:
 * group, key, unit (string, list, number, size, duration, days, boolean,
 * level, path, address), default, range ("MIN..MAX" for the units with one),
 * help. [mailbox:NAME] and [vendor:NAME] keys come last; a vendor key's
 * default is http-json's. For the test that keeps etc/fbl.conf.example and
 * fbl.conf(5) in step with the code.
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
 * fbl_config_check_mailboxes - every Maildir mailbox is a Maildir this process can
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
