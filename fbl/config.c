/*
 * config.c - fbl.conf, table-driven (see config.h): the key table, one
 * setter, printer and cleaner per value type, the loader of fixed and named
 * groups, --print-config and --print-config-table, and the checks of what
 * the values name (Maildirs, log file).
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>

#include "fbl/log.h"
#include "fbl/metrics.h"
#include "fbl/value.h"
#include "parsers/ip.h"
#include "parsers/outbound.h"
#include "sink/pgconn.h"

GQuark fbl_config_error_quark(void)
{
    return g_quark_from_static_string("fbl-config-error");
}

typedef enum {
    T_STRING,
    T_STRV,
    T_UINT,
    T_BYTES,
    T_MS,
    T_BOOL,
    T_LOGLEVEL,
    T_PATH,        /* a string naming a file or directory */
    T_LISTEN,      /* ADDRESS:PORT, numeric */
    T_DAYS,        /* a number of days: 180d, 26w or 180 */
    T_NETS,        /* a list of networks: 192.0.2.0/24, 2001:db8::/32, 198.51.100.7 */
    T_FEEDBACK,    /* a feedback type: abuse, not-spam, … (parsers/report.h) */
    T_VENDOR_TYPE, /* http-json or rspamd (sink/vendor.h) */
    T_URL,         /* an http:// or https:// URL naming a host */
    T_IMAP_URL,    /* an imap:// or imaps:// URL naming a host */
    T_PERCENT,     /* a percentage: 0.3% (kept in parts per million) */
} key_type;

/* The vendor types a [vendor:NAME] key is for. */
typedef enum {
    FOR_ALL = 0,
    FOR_HTTP_JSON,
    FOR_RSPAMD,
} vendor_scope;

typedef struct key_def {
    const char *group; /* [group]; "mailbox:NAME", "vendor:NAME" stand for every such group */
    const char *key;
    size_t offset;    /* into fbl_config; into fbl_mailbox_config or fbl_vendor_config */
    const char *def;  /* default, as written in the file; NULL: required */
    guint64 min, max; /* for T_UINT, T_BYTES, T_MS, T_DAYS, after units */
    const char *help;
    const char *rspamd_def; /* [vendor:NAME]: type rspamd's default, when it differs */
    key_type type;
    vendor_scope scope; /* [vendor:NAME]: the type the key is for */
} key_def;

#define MIB     (1024ull * 1024ull)
#define GIB     (1024ull * MIB)
#define MAILBOX "mailbox:NAME"
#define VENDOR  "vendor:NAME"

/* A row of a fixed group, of [mailbox:NAME], of [vendor:NAME]. */
#define FIXED(group_, key_, type_, field, def_, min_, max_, help_)                                 \
    {                                                                                              \
        .group = (group_), .key = (key_), .type = (type_), .offset = offsetof(fbl_config, field),  \
        .def = (def_), .min = (min_), .max = (max_), .help = (help_)                               \
    }
#define BOX(key_, type_, field, def_, help_)                                                       \
    {                                                                                              \
        .group = MAILBOX, .key = (key_), .type = (type_),                                          \
        .offset = offsetof(fbl_mailbox_config, field), .def = (def_), .help = (help_)              \
    }
#define BOX_N(key_, type_, field, def_, min_, max_, help_)                                         \
    {                                                                                              \
        .group = MAILBOX, .key = (key_), .type = (type_),                                          \
        .offset = offsetof(fbl_mailbox_config, field), .def = (def_), .min = (min_),               \
        .max = (max_), .help = (help_)                                                             \
    }
#define VEND(key_, type_, field, def_, min_, max_, scope_, rspamd_def_, help_)                     \
    {                                                                                              \
        .group = VENDOR, .key = (key_), .type = (type_),                                           \
        .offset = offsetof(fbl_vendor_config, field), .def = (def_), .min = (min_), .max = (max_), \
        .help = (help_), .scope = (scope_), .rspamd_def = (rspamd_def_)                            \
    }

/*
 * Every key of every group, in the order --print-config prints them.
 * etc/fbl.conf.example and fbl.conf(5) list the same keys; ops_check.py
 * keeps them in step.
 */
static const key_def keys[] = {
    FIXED("postgres", "conninfo", T_STRING, pg_conninfo, "dbname=fbl", 0, 0,
          "libpq connection string or URI"),
    FIXED("postgres", "unreachable_timeout", T_MS, pg_unreachable_timeout_ms, "60s", 0, 3600000,
          "fbl run --once gives up (exit 69) when PostgreSQL stays unreachable this long"),
    FIXED("limits", "max_mail_bytes", T_BYTES, max_mail_bytes, "10MiB", 1024, GIB,
          "larger mails are rejected as too_large, unparsed"),
    FIXED("limits", "max_mime_depth", T_UINT, max_mime_depth, "32", 1, 1000, "MIME nesting"),
    FIXED("limits", "max_mime_parts", T_UINT, max_mime_parts, "1000", 1, 1000000,
          "MIME entities per mail"),
    FIXED("limits", "max_headers", T_UINT, max_headers, "10000", 1, 10000000,
          "header fields per mail"),
    FIXED("limits", "max_header_bytes", T_BYTES, max_header_bytes, "128KiB", 256, 64 * MIB,
          "one header field"),
    FIXED("limits", "reports_per_reporter_per_hour", T_UINT, reports_per_reporter_per_hour, "1000",
          0, 1000000,
          "more from one reporter within an hour are stored flagged, not forwarded; 0: off"),
    FIXED("limits", "exempt_reporters", T_STRV, exempt_reporters, "", 0, 0,
          "reporter addresses or domains (*.example.com) never limited, unless found unverified"),
    FIXED("parse", "trusted_networks", T_NETS, trusted_networks, "", 0, 0,
          "our relays' networks, skipped when looking for the source IP"),
    FIXED("parse", "trusted_hosts", T_STRV, trusted_hosts, "", 0, 0,
          "domains whose hosts hand mail among themselves (e.g. prod.outlook.com)"),
    FIXED("parse", "authserv_id", T_STRING, authserv_id, "", 0, 0,
          "our MTA's Authentication-Results id; sets reporter.verified"),
    FIXED("watch", "connect", T_STRV, watch_connect, "ipc:///run/fbl/sink.sock", 0, 0,
          "sink endpoints the watcher sends to"),
    FIXED("watch", "window", T_UINT, watch_window, "128", 1, 100000,
          "mails sent and not yet acknowledged, at most"),
    FIXED("watch", "window_bytes", T_BYTES, watch_window_bytes, "8MiB", 1024, 64 * GIB,
          "bytes of mail sent and not yet acknowledged, at most"),
    FIXED("watch", "queue_max", T_UINT, watch_queue_max, "8192", 1, 10000000,
          "names from new/ held in memory, at most; a larger backlog is listed again"),
    FIXED("watch", "ack_timeout", T_MS, watch_ack_timeout_ms, "30s", 100, 3600000,
          "resend a mail not acknowledged within this time"),
    FIXED("watch", "parse_threads", T_UINT, watch_parse_threads, "0", 0, 1024,
          "threads that parse mail; 0: one per CPU; 1: the watcher's own thread"),
    FIXED("watch", "curve_secret_file", T_PATH, watch_curve_secret_file, "", 0, 0,
          "the watcher's CURVE secret key (fbl keygen); turns encryption on"),
    FIXED("watch", "curve_server_public_file", T_PATH, watch_curve_server_public_file, "", 0, 0,
          "the sinks' CURVE public key"),
    FIXED("watch", "allow_plaintext", T_BOOL, watch_allow_plaintext, "false", 0, 0,
          "let tcp:// endpoints carry mail without CURVE"),
    FIXED("watch", "allow_insecure_file_modes", T_BOOL, watch_allow_insecure_file_modes, "false", 0,
          0, "read curve_secret_file even when other users may read it"),
    FIXED("sink", "bind", T_STRING, sink_bind, "ipc:///run/fbl/sink.sock", 0, 0,
          "endpoint the sink listens on"),
    FIXED("sink", "batch_max_mails", T_UINT, sink_batch_max_mails, "50", 1, 100000,
          "mails per transaction, at most"),
    FIXED("sink", "batch_max_bytes", T_BYTES, sink_batch_max_bytes, "32MiB", 1024, 16 * GIB,
          "bytes per transaction, at most"),
    FIXED("sink", "batch_max_wait", T_MS, sink_batch_max_wait_ms, "200ms", 1, 600000,
          "commit a batch at the latest this long after its first mail"),
    FIXED("sink", "batch_idle", T_MS, sink_batch_idle_ms, "2ms", 1, 600000,
          "commit a batch sooner, once no mail has arrived for this long"),
    FIXED("sink", "retry_max_wait", T_MS, sink_retry_max_wait_ms, "30s", 100, 3600000,
          "longest pause between retries while PostgreSQL is down"),
    FIXED("sink", "store_raw", T_BOOL, sink_store_raw, "true", 0, 0,
          "keep raw mail bytes in PostgreSQL (needed by fbl reparse)"),
    FIXED("sink", "curve_secret_file", T_PATH, sink_curve_secret_file, "", 0, 0,
          "the sink's CURVE secret key (fbl keygen); turns encryption on"),
    FIXED("sink", "curve_clients_dir", T_PATH, sink_curve_clients_dir, "", 0, 0,
          "directory of the public key files of the watchers allowed in"),
    FIXED("sink", "allow_plaintext", T_BOOL, sink_allow_plaintext, "false", 0, 0,
          "let a tcp:// bind take mail without CURVE"),
    FIXED("sink", "allow_insecure_file_modes", T_BOOL, sink_allow_insecure_file_modes, "false", 0,
          0, "read curve_secret_file even when other users may read it"),
    FIXED("log", "level", T_LOGLEVEL, log_level, "notice", 0, 0,
          "debug, info, notice, warning or error"),
    FIXED("log", "file", T_PATH, log_file, "", 0, 0,
          "append to this file instead of stderr; SIGHUP reopens it"),
    FIXED("log", "target", T_STRING, log_target, "auto", 0, 0,
          "stderr, file, journal (native fields) or syslog; auto: file when file is set, else "
          "stderr"),
    FIXED("metrics", "listen", T_LISTEN, metrics_listen, "", 0, 0,
          "Prometheus endpoint of fbl run, and of the daemons without their own key; empty: off"),
    FIXED("metrics", "watch", T_LISTEN, metrics_watch, "", 0, 0,
          "Prometheus endpoint of fbl watch"),
    FIXED("metrics", "sink", T_LISTEN, metrics_sink, "", 0, 0, "Prometheus endpoint of fbl sink"),
    FIXED("metrics", "forward", T_LISTEN, metrics_forward, "", 0, 0,
          "Prometheus endpoint of fbl forward"),
    FIXED("retention", "keep", T_DAYS, retention_keep_days, "0", 0, 36500,
          "fbl prune drops the months that ended longer ago than this; 0: keep everything"),
    FIXED("retention", "raw_keep", T_DAYS, retention_raw_keep_days, "0", 0, 36500,
          "fbl prune clears raw mail older than this; 0: keep it while its month is kept"),
    FIXED("blocklist", "window", T_DAYS, blocklist_window_days, "7d", 1, 365,
          "complaints delivered within this many days count (fbl export --since)"),
    FIXED("blocklist", "min_reporters", T_UINT, blocklist_min_reporters, "3", 1, 1000000,
          "listed from this score on: distinct reporters, weighted (fbl export --min-reporters)"),
    FIXED("blocklist", "verified_weight", T_UINT, blocklist_verified_weight, "2", 1, 1000,
          "what a reporter our MTA verified counts for; others count 1"),
    FIXED("blocklist", "not_spam_weight", T_UINT, blocklist_not_spam_weight, "1", 0, 1000,
          "subtracted for each distinct reporter of a not-spam report about the same entry"),
    FIXED("blocklist", "delist_after", T_DAYS, blocklist_delist_after_days, "3d", 1, 365,
          "an entry is delisted this long after its last complaint"),
    FIXED("blocklist", "allowlist_file", T_PATH, blocklist_allowlist_file, "", 0, 0,
          "never listed: one network (CIDR), address or domain (and its subdomains) a line"),
    FIXED("blocklist", "list_provider_relays", T_BOOL, blocklist_list_provider_relays, "false", 0,
          0, "also list the big mailbox providers' published networks and their domains"),
    FIXED("blocklist", "org", T_STRING, blocklist_org, "", 0, 0,
          "who lists, in the answer text (required for the rbldnsd and postfix formats)"),
    FIXED("blocklist", "url", T_STRING, blocklist_url, "", 0, 0,
          "where listed parties read more: the answer text names URL/ENTRY (required as org)"),
    FIXED("blocklist", "nameservers", T_STRV, blocklist_nameservers, "", 0, 0,
          "rbldnsd: the zone's $NS names; the first is the $SOA origin (empty: localhost)"),
    FIXED("blocklist", "hostmaster", T_STRING, blocklist_hostmaster, "hostmaster", 0, 0,
          "rbldnsd: the $SOA contact, relative to the zone unless it ends with a dot"),
    FIXED("blocklist", "ttl", T_MS, blocklist_ttl_ms, "5m", 1000, 86400000,
          "rbldnsd: $TTL of the answers"),
    FIXED("blocklist", "export_interval", T_MS, blocklist_export_interval_ms, "1m", 1000, 86400000,
          "the sink re-exports when the listed set changed, at most this often"),
    FIXED("blocklist", "export_ips_rbldnsd", T_PATH, blocklist_ips_rbldnsd, "", 0, 0,
          "the sink keeps this ip4trie dataset (and FILE.ip6, ip6trie) up to date; empty: no"),
    FIXED("blocklist", "export_domains_rbldnsd", T_PATH, blocklist_domains_rbldnsd, "", 0, 0,
          "the sink keeps this dnset dataset up to date; empty: no"),
    FIXED("blocklist", "export_ips_rspamd", T_PATH, blocklist_ips_rspamd, "", 0, 0,
          "the sink keeps this rspamd radix map up to date; empty: no"),
    FIXED("blocklist", "export_domains_rspamd", T_PATH, blocklist_domains_rspamd, "", 0, 0,
          "the sink keeps this rspamd domain map up to date; empty: no"),
    FIXED("blocklist", "export_ips_postfix", T_PATH, blocklist_ips_postfix, "", 0, 0,
          "the sink keeps this Postfix cidr: table up to date; empty: no"),
    FIXED("blocklist", "export_domains_postfix", T_PATH, blocklist_domains_postfix, "", 0, 0,
          "the sink keeps this Postfix access table source up to date (postmap it); empty: no"),
    FIXED("local", "networks", T_NETS, local_networks, "", 0, 0,
          "networks our users send from: a report about mail from one is outbound"),
    FIXED("local", "domains", T_STRV, local_domains, "", 0, 0,
          "our domains (and their subdomains): a report about mail From or DKIM-signed by one "
          "is outbound"),
    FIXED("outbound", "window", T_DAYS, outbound_window_days, "1d", 1, 365,
          "complaints and sent volumes of this many days make an account's rate and state"),
    FIXED("outbound", "warn_rate", T_PERCENT, outbound_warn_rate_ppm, "0.1%", 1, 1000000,
          "an account with sent volumes is in state warn from this complaint rate on"),
    FIXED("outbound", "act_rate", T_PERCENT, outbound_act_rate_ppm, "0.3%", 1, 1000000,
          "an account with sent volumes is locked (state act) from this complaint rate on"),
    FIXED("outbound", "min_complaints", T_UINT, outbound_min_complaints, "3", 1, 1000000,
          "an account without sent volumes is locked from this many complaints on (1 warns)"),
    FIXED("outbound", "lock_text", T_STRING, outbound_lock_text,
          "CHTR 301: account locked after spam complaints; contact the abuse desk", 0, 0,
          "what Postfix answers a locked account, after REJECT 5.7.1 (fbl export accounts)"),
    FIXED("report", "html_file", T_PATH, report_html_file, "", 0, 0,
          "the sink rewrites this HTML page (fbl report --format html) every html_interval; "
          "empty: no"),
    FIXED("report", "html_interval", T_MS, report_html_interval_ms, "5m", 1000, 86400000,
          "how often the sink rewrites html_file"),
    FIXED("report", "html_window", T_MS, report_html_window_ms, "24h", 60000, 2678400000u,
          "the page shows the reports delivered within this long before it is made"),
    FIXED("report", "html_top", T_UINT, report_html_top, "10", 0, 100000,
          "rows of each top table (fbl report --top); 0: all"),

    BOX("path", T_PATH, path, "", "the Maildir; a mailbox has either path or imap"),
    BOX("feedback_type", T_FEEDBACK, feedback_type, "abuse",
        "when a mail does not say: abuse, fraud, virus, other, not-spam, opt-out, auth-failure"),
    BOX("raw", T_BOOL, raw, "false", "every mail is the spam itself, not a report"),
    BOX("imap", T_IMAP_URL, imap, "",
        "an IMAP folder instead of a Maildir: imaps://HOST[:PORT]/FOLDER, or imap:// with "
        "starttls"),
    BOX("user", T_STRING, user, "", "imap: the login name; required with imap"),
    BOX("password_file", T_PATH, password_file, "",
        "imap: the file holding the password; or oauth2_token_file"),
    BOX("oauth2_token_file", T_PATH, oauth2_token_file, "",
        "imap: the file holding an OAuth2 access token (XOAUTH2); or password_file"),
    BOX("ca_file", T_PATH, ca_file, "",
        "imap: CA bundle to verify the server's certificate with; empty: the system's"),
    BOX("starttls", T_BOOL, starttls, "false",
        "imap: imap:// upgraded with STARTTLS before the login (required off loopback)"),
    BOX("done_folder", T_STRING, done_folder, "fbl/done",
        "imap: the folder a mail is moved to once stored; created if missing"),
    BOX_N("poll_interval", T_MS, poll_interval_ms, "60s", 1000, 3600000,
          "imap: how often to look for new mail when the server has no IDLE"),
    BOX("allow_insecure_file_modes", T_BOOL, allow_insecure_file_modes, "false",
        "imap: read password_file or oauth2_token_file even when other users may read them"),

    VEND("type", T_VENDOR_TYPE, type, NULL, 0, 0, FOR_ALL, NULL,
         "http-json (a JSON batch API) or rspamd (its controller's learn endpoints); required"),
    VEND("url", T_URL, url, NULL, 0, 0, FOR_ALL, NULL,
         "http-json: the batch endpoint; rspamd: the controller's base URL; required"),
    VEND("token_file", T_PATH, token_file, "", 0, 0, FOR_HTTP_JSON, NULL,
         "http-json: the file holding the bearer token"),
    VEND("password_file", T_PATH, password_file, "", 0, 0, FOR_RSPAMD, NULL,
         "rspamd: the file holding the controller password"),
    VEND("ca_file", T_PATH, ca_file, "", 0, 0, FOR_ALL, NULL,
         "CA bundle to verify the vendor's TLS certificate with; empty: the system's"),
    VEND("batch_size", T_UINT, batch_size, "100", 1, 10000, FOR_ALL, "32",
         "http-json: reports per request; rspamd: reports per transaction (default 32)"),
    VEND("batch_bytes", T_BYTES, batch_bytes, "32MiB", MIB, GIB, FOR_ALL, NULL,
         "raw mail read per transaction, at most, when the vendor gets the message"),
    VEND("parallel", T_UINT, parallel, "4", 1, 64, FOR_ALL, NULL, "requests in flight"),
    VEND("timeout", T_MS, timeout_ms, "10s", 100, 600000, FOR_ALL, NULL,
         "one request, connection included"),
    VEND("max_attempts", T_UINT, max_attempts, "10", 1, 1000, FOR_ALL, NULL,
         "failed attempts before a report is dead-lettered"),
    VEND("retry_max_wait", T_MS, retry_max_wait_ms, "10m", 1000, 86400000, FOR_ALL, NULL,
         "the longest wait between retries"),
    VEND("redact", T_STRV, redact, "", 0, 0, FOR_ALL, NULL,
         "fields replaced by keyed pseudonyms before sending (reporter, recipients, ...)"),
    VEND("redact_key_file", T_PATH, redact_key_file, "", 0, 0, FOR_ALL, NULL,
         "the file holding the pseudonyms' HMAC key, 16 bytes or more; required with redact"),
    VEND("include_raw", T_BOOL, include_raw, "false", 0, 0, FOR_HTTP_JSON, NULL,
         "http-json: add the reported message, base64"),
    VEND("learn", T_BOOL, learn, "true", 0, 0, FOR_RSPAMD, NULL,
         "rspamd: /learnspam and /learnham"),
    VEND("fuzzy_flag", T_UINT, fuzzy_flag, "0", 0, G_MAXINT32, FOR_RSPAMD, NULL,
         "rspamd: also /fuzzyadd spam with this flag; 0: no"),
    VEND("fuzzy_weight", T_UINT, fuzzy_weight, "1", 1, G_MAXINT32, FOR_RSPAMD, NULL,
         "rspamd: the fuzzy hashes' weight"),
    VEND("allow_plain_http", T_BOOL, allow_plain_http, "false", 0, 0, FOR_ALL, NULL,
         "send token_file or password_file over plain http:// to a host other than loopback"),
    VEND("allow_insecure_file_modes", T_BOOL, allow_insecure_file_modes, "false", 0, 0, FOR_ALL,
         NULL, "read this vendor's secret files even when other users may read them"),
};

/* The table's rows of @group ("postgres", MAILBOX, VENDOR): the first and how many. */
static const key_def *group_rows(const char *group, size_t *n)
{
    size_t first = 0;
    while (first < G_N_ELEMENTS(keys) && strcmp(keys[first].group, group) != 0)
        first++;
    size_t end = first;
    while (end < G_N_ELEMENTS(keys) && strcmp(keys[end].group, group) == 0)
        end++;
    *n = end - first;
    return *n > 0 ? &keys[first] : NULL;
}

static const key_def *find_key(const char *group, const char *key)
{
    size_t n = 0;
    const key_def *rows = group_rows(group, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].key, key) == 0)
            return &rows[i];
    }
    return NULL;
}

static bool for_type(const key_def *k, fbl_vendor_type type)
{
    switch (k->scope) {
    case FOR_HTTP_JSON:
        return type == FBL_VENDOR_HTTP_JSON;
    case FOR_RSPAMD:
        return type == FBL_VENDOR_RSPAMD;
    case FOR_ALL:
        break;
    }
    return true;
}

static const char *vendor_type_name(fbl_vendor_type type)
{
    return type == FBL_VENDOR_RSPAMD ? "rspamd" : "http-json";
}

/* @k's default for vendors of @type (NULL: required); for other groups, its default. */
static const char *default_for(const key_def *k, fbl_vendor_type type)
{
    return type == FBL_VENDOR_RSPAMD && k->rspamd_def != NULL ? k->rspamd_def : k->def;
}
/* ---- the file's text -------------------------------------------------------------- */

/* Where a trailing comment starts: the first '#' or ';' after a blank; or NULL. */
static char *comment_start(char *s)
{
    for (char *p = s + 1; *p != '\0'; p++) {
        if ((*p == '#' || *p == ';') && (p[-1] == ' ' || p[-1] == '\t'))
            return p;
    }
    return NULL;
}

/*
 * strip_line - cut @line's comment in place; NULL, or why the line is none of
 * blank, comment, [group] or key = value
 *
 * @grouped: (inout) a [group] line came before
 */
static const char *strip_line(char *line, bool *grouped)
{
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '#' || *s == ';' || *s == '\r') {
        *line = '\0'; /* GKeyFile takes no ';' comment line */
        return NULL;
    }
    char *comment = comment_start(s);
    if (comment != NULL)
        *comment = '\0';
    g_strchomp(s);
    if (*s == '[') {
        const char *end = strchr(s, ']');
        *grouped = true;
        if (end == NULL)
            return "a [group] line without its ']'";
        /* GKeyFile would ignore what follows the ']' without a word. */
        return end[1] == '\0' ? NULL : "text after ']' (a comment needs a blank before its '#')";
    }
    if (strchr(s, '=') == NULL)
        return "expected a [group], a key = value line or a # comment";
    return *grouped ? NULL : "a key before the first [group]";
}

/*
 * strip_comments - @text with every comment cut, line for line (GKeyFile
 * knows only whole-line '#' comments; a trailing one became part of the
 * value, e.g. a list of networks "192.0.2.0/24, #, our, relays:")
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR_FILE naming @path
 *   and the line.
 */
static char *strip_comments(const char *path, const char *text, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    bool grouped = false;
    for (unsigned i = 0; lines[i] != NULL; i++) {
        const char *why = strip_line(lines[i], &grouped);
        if (why != NULL) {
            g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_FILE, "%s:%u: %s", path, i + 1,
                        why);
            return NULL;
        }
    }
    return g_strjoinv("\n", lines);
}

/* The line of "[group]" and, when @key is set, of "key =" inside it; 0 if unknown. */
static unsigned find_line(const char *text, const char *group, const char *key)
{
    if (text == NULL)
        return 0;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autofree char *want = g_strdup_printf("[%s]", group);
    bool in_group = false;
    for (unsigned i = 0; lines[i] != NULL; i++) {
        const char *l = g_strstrip(lines[i]);
        if (l[0] == '[') {
            in_group = strcmp(l, want) == 0;
            if (in_group && key == NULL)
                return i + 1;
            continue;
        }
        if (!in_group || key == NULL || !g_str_has_prefix(l, key))
            continue;
        const char *rest = l + strlen(key);
        while (*rest == ' ' || *rest == '\t')
            rest++;
        if (*rest == '=')
            return i + 1;
    }
    return 0;
}

/*
 * Set @error: "FILE:LINE: [group] key: why", LINE the key's, or its group's
 * when the key is not in the file (a required key left out).
 *
 * @c: (nullable) NULL for the table's defaults
 */
static bool fail(GError **error, fbl_config_error code, const fbl_config *c, const char *group,
                 const char *key, const char *why)
{
    const char *text = c != NULL ? c->_text : NULL;
    unsigned line = find_line(text, group, key);
    if (line == 0 && key != NULL)
        line = find_line(text, group, NULL);
    g_set_error(error, FBL_CONFIG_ERROR, code, "%s:%u: [%s]%s%s: %s",
                c != NULL && c->file != NULL ? c->file : "(defaults)", line, group, key ? " " : "",
                key ? key : "", why);
    return false;
}

/* ---- values: one setter, printer and cleaner per type ------------------------------- */

/* Where a value goes, and what an error about it names. */
typedef struct slot_ref {
    const fbl_config *c; /* the file and its text, for the line */
    const char *group;   /* as in the file: "vendor:acme" */
    const key_def *k;
    void *slot;
} slot_ref;

static bool bad_value(const slot_ref *r, const char *why, GError **error)
{
    return fail(error, FBL_CONFIG_ERROR_VALUE, r->c, r->group, r->k->key, why);
}

/* Text; "" leaves it unset (NULL), which a required key may not be. */
static bool set_string(const slot_ref *r, const char *v, GError **error)
{
    if (*v == '\0' && r->k->def == NULL)
        return bad_value(r, "required", error);
    char **slot = r->slot;
    g_free(*slot);
    *slot = *v != '\0' ? g_strdup(v) : NULL;
    return true;
}

/* ADDRESS:PORT, or empty (off). */
static bool set_listen(const slot_ref *r, const char *v, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (*v != '\0' && !fbl_metrics_parse_listen(v, NULL, &local))
        return bad_value(r, local->message, error);
    return set_string(r, v, error);
}

/* Words separated by commas or blanks; the empty ones dropped. */
static GStrv split_list(const char *v)
{
    g_auto(GStrv) parts = g_strsplit_set(v, ", \t", -1);
    GPtrArray *a = g_ptr_array_new();
    for (size_t i = 0; parts[i] != NULL; i++) {
        if (*parts[i] != '\0')
            g_ptr_array_add(a, g_strdup(parts[i]));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv) g_ptr_array_free(a, FALSE);
}

/* A list; for T_NETS, each an address or network the parser will take (parsers/ip.h). */
static bool set_list(const slot_ref *r, const char *v, GError **error)
{
    g_auto(GStrv) list = split_list(v);
    if (r->k->type == T_NETS) {
        g_autoptr(GError) local = NULL;
        g_autoptr(fbl_netset) set = fbl_netset_new((const char *const *) list, &local);
        if (set == NULL)
            return bad_value(r, local->message, error);
    }
    GStrv *slot = r->slot;
    g_strfreev(*slot);
    *slot = g_steal_pointer(&list);
    return true;
}

/* The number types: their parser (fbl/value.h) and what an error says it expected. */
static const struct number_type {
    fbl_value_status (*parse)(const char *v, guint64 *out);
    const char *expected;
} number_types[] = {
    [T_UINT] = {fbl_value_parse_number, "expected a whole number"},
    [T_BYTES] = {fbl_value_parse_size, "expected a size: a number with B, KiB, MiB or GiB"},
    [T_MS] = {fbl_value_parse_duration, "expected a duration: a number with ms, s, m or h"},
    [T_DAYS] = {fbl_value_parse_days, "expected a number of days: 180d, 26w or 180"},
    [T_PERCENT] = {fbl_value_parse_percent, "expected a percentage: 0.3% (at most 4 decimals)"},
};

static void print_percent(GString *out, const void *slot);

static bool set_number(const slot_ref *r, const char *v, GError **error)
{
    const key_def *k = r->k;
    guint64 n = 0;
    fbl_value_status st = number_types[k->type].parse(v, &n);
    if (st == FBL_VALUE_NOT_A_NUMBER)
        return bad_value(r, number_types[k->type].expected, error);
    if (st == FBL_VALUE_BAD_UNIT) {
        /* The forwarder said "bad unit" of [vendor:NAME] values before they joined the
         * table, and tests/integration/vendor_feed.py still matches those words. */
        bool vendor = strcmp(k->group, VENDOR) == 0;
        g_autofree char *why =
            g_strdup_printf("%s%s", vendor ? "bad unit: " : "", number_types[k->type].expected);
        return bad_value(r, why, error);
    }
    if (k->type == T_PERCENT && (st == FBL_VALUE_TOO_LARGE || n < k->min || n > k->max)) {
        GString *lo = g_string_new(NULL), *hi = g_string_new(NULL);
        unsigned min = (unsigned) k->min, max = (unsigned) k->max;
        print_percent(lo, &min);
        print_percent(hi, &max);
        g_autofree char *why = g_strdup_printf("%s is out of range [%s, %s]", v, lo->str, hi->str);
        g_string_free(lo, TRUE);
        g_string_free(hi, TRUE);
        return bad_value(r, why, error);
    }
    if (st == FBL_VALUE_TOO_LARGE || n < k->min || n > k->max) {
        g_autofree char *why = g_strdup_printf(
            "%s is out of range [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]", v, k->min, k->max);
        return bad_value(r, why, error);
    }
    if (k->type == T_BYTES)
        *(size_t *) r->slot = (size_t) n;
    else
        *(unsigned *) r->slot = (unsigned) n;
    return true;
}

static bool set_bool(const slot_ref *r, const char *v, GError **error)
{
    return fbl_value_parse_bool(v, r->slot) ||
           bad_value(r, "expected true or false (or yes, no, on, off, 1, 0)", error);
}

static bool set_level(const slot_ref *r, const char *v, GError **error)
{
    return fbl_log_level_from_string(v, r->slot) ||
           bad_value(r, "expected debug, info, notice, warning or error", error);
}

static bool set_feedback(const slot_ref *r, const char *v, GError **error)
{
    return fbl_feedback_type_from_string(v, r->slot) ||
           bad_value(r, "expected abuse, fraud, virus, other, not-spam, opt-out or auth-failure",
                     error);
}

static bool set_vendor_type(const slot_ref *r, const char *v, GError **error)
{
    if (*v == '\0')
        return bad_value(r, "required: http-json or rspamd", error);
    return fbl_vendor_type_from_string(v, r->slot) ||
           bad_value(r, "expected http-json or rspamd", error);
}

/*
 * @v as a URL of scheme @scheme or @scheme_s (its TLS form) that parses and
 * names a host, here where the error can name the file and the line
 * (@expected: the error when the scheme is neither).
 * Returns: (transfer full) the parsed URL, or NULL with the error set.
 */
static GUri *parse_url(const slot_ref *r, const char *v, const char *scheme, const char *scheme_s,
                       const char *expected, GError **error)
{
    if (!g_str_has_prefix(v, scheme) && !g_str_has_prefix(v, scheme_s)) {
        (void) bad_value(r, expected, error);
        return NULL;
    }
    /* GUri takes "https://exa mple.net/"; libcurl and libetpan would not. */
    for (const char *p = v; *p != '\0'; p++) {
        if ((unsigned char) *p <= ' ' || *p == 0x7f) {
            (void) bad_value(r, "holds a blank or a control character (a blank is %20 in a URL)",
                             error);
            return NULL;
        }
    }
    g_autoptr(GError) local = NULL;
    g_autoptr(GUri) uri = g_uri_parse(v, G_URI_FLAGS_NONE, &local);
    if (uri == NULL) {
        (void) bad_value(r, local->message, error);
        return NULL;
    }
    const char *host = g_uri_get_host(uri);
    if (host == NULL || *host == '\0') {
        (void) bad_value(r, "the URL names no host", error);
        return NULL;
    }
    return g_steal_pointer(&uri);
}

/*
 * An http(s) URL that parses and names a host (libcurl would only refuse it
 * at the first request); the forwarder judges plain http with a secret.
 */
static bool set_url(const slot_ref *r, const char *v, GError **error)
{
    if (*v == '\0')
        return bad_value(r, "required", error);
    g_autoptr(GUri) uri =
        parse_url(r, v, "http://", "https://", "expected an http:// or https:// URL", error);
    return uri != NULL && set_string(r, v, error);
}

/*
 * An imap:// or imaps:// URL naming a host; the rest (plain imap:// off
 * loopback, starttls) is judged with the keys that go with it
 * (check_imap_mailbox), the folder name by fbl_imap_new().
 */
static bool set_imap_url(const slot_ref *r, const char *v, GError **error)
{
    if (*v == '\0')
        return set_string(r, v, error);
    g_autoptr(GUri) uri =
        parse_url(r, v, "imap://", "imaps://", "expected an imap:// or imaps:// URL", error);
    if (uri == NULL)
        return false;
    if (g_uri_get_userinfo(uri) != NULL)
        return bad_value(r, "holds a user or password: use user and password_file", error);
    return set_string(r, v, error);
}

/* Text as GKeyFile reads it back: a '\' starts an escape. */
static void print_text(GString *out, const char *s)
{
    for (const char *p = s != NULL ? s : ""; *p != '\0'; p++) {
        if (*p == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *p);
    }
}

static void print_string(GString *out, const void *slot)
{
    print_text(out, *(char *const *) slot);
}

static void print_list(GString *out, const void *slot)
{
    const GStrv v = *(const GStrv *) slot;
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        g_string_append(out, i > 0 ? ", " : "");
        print_text(out, v[i]);
    }
}

static void print_uint(GString *out, const void *slot)
{
    g_string_append_printf(out, "%u", *(const unsigned *) slot);
}

struct unit_name {
    const char *suffix;
    guint64 mult;
};

/* @n in the largest of @units that states it exactly, else in @smallest. */
static void print_in_units(GString *out, guint64 n, const struct unit_name *units, size_t n_units,
                           const char *smallest)
{
    for (size_t i = 0; n > 0 && i < n_units; i++) {
        if (n % units[i].mult == 0) {
            g_string_append_printf(out, "%" G_GUINT64_FORMAT "%s", n / units[i].mult,
                                   units[i].suffix);
            return;
        }
    }
    g_string_append_printf(out, "%" G_GUINT64_FORMAT "%s", n, smallest);
}

/* 10MiB, 128KiB, 1000B */
static void print_size(GString *out, const void *slot)
{
    static const struct unit_name units[] = {{"GiB", GIB}, {"MiB", MIB}, {"KiB", 1024}};
    print_in_units(out, *(const size_t *) slot, units, G_N_ELEMENTS(units), "B");
}

/* 1h, 10m, 30s, 200ms */
static void print_duration(GString *out, const void *slot)
{
    static const struct unit_name units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
    print_in_units(out, *(const unsigned *) slot, units, G_N_ELEMENTS(units), "ms");
}

static void print_days(GString *out, const void *slot)
{
    g_string_append_printf(out, "%ud", *(const unsigned *) slot);
}

/* 0.3%, 1%, 0.0125% (parts per million as a percentage) */
static void print_percent(GString *out, const void *slot)
{
    unsigned ppm = *(const unsigned *) slot;
    g_autofree char *frac = g_strdup_printf("%04u", ppm % 10000);
    size_t n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    g_string_append_printf(out, "%u%s%s%%", ppm / 10000, n > 0 ? "." : "", frac);
}

static void print_bool(GString *out, const void *slot)
{
    g_string_append(out, *(const bool *) slot ? "true" : "false");
}

static void print_level(GString *out, const void *slot)
{
    g_string_append(out, fbl_log_level_to_string(*(const GLogLevelFlags *) slot));
}

static void print_feedback(GString *out, const void *slot)
{
    g_string_append(out, fbl_feedback_type_to_string(*(const fbl_feedback_type *) slot));
}

static void print_vendor_type(GString *out, const void *slot)
{
    g_string_append(out, vendor_type_name(*(const fbl_vendor_type *) slot));
}

static void clear_string(void *slot)
{
    g_clear_pointer((char **) slot, g_free);
}

static void clear_list(void *slot)
{
    g_clear_pointer((GStrv *) slot, g_strfreev);
}

/* Each type: its unit as fbl.conf.example and fbl.conf(5) name it, and how it is handled. */
static const struct type_def {
    const char *unit;
    bool (*set)(const slot_ref *r, const char *v, GError **error);
    void (*print)(GString *out, const void *slot);
    void (*clear)(void *slot); /* NULL: nothing to free */
} types[] = {
    [T_STRING] = {"string", set_string, print_string, clear_string},
    [T_STRV] = {"list", set_list, print_list, clear_list},
    [T_UINT] = {"number", set_number, print_uint, NULL},
    [T_BYTES] = {"size", set_number, print_size, NULL},
    [T_MS] = {"duration", set_number, print_duration, NULL},
    [T_BOOL] = {"boolean", set_bool, print_bool, NULL},
    [T_LOGLEVEL] = {"level", set_level, print_level, NULL},
    [T_PATH] = {"path", set_string, print_string, clear_string},
    [T_LISTEN] = {"address", set_listen, print_string, clear_string},
    [T_DAYS] = {"days", set_number, print_days, NULL},
    [T_NETS] = {"list", set_list, print_list, clear_list},
    [T_FEEDBACK] = {"string", set_feedback, print_feedback, NULL},
    [T_VENDOR_TYPE] = {"string", set_vendor_type, print_vendor_type, NULL},
    [T_URL] = {"string", set_url, print_string, clear_string},
    [T_IMAP_URL] = {"string", set_imap_url, print_string, clear_string},
    [T_PERCENT] = {"percent", set_number, print_percent, NULL},
};

/* Set key @k of the struct at @base from its text @v (trimmed), as [@group] says it. */
static bool set_value(const fbl_config *c, const char *group, const key_def *k, void *base,
                      const char *v, GError **error)
{
    slot_ref r = {c, group, k, (char *) base + k->offset};
    return types[k->type].set(&r, v, error);
}

static void print_value(const key_def *k, const void *base, GString *out)
{
    types[k->type].print(out, (const char *) base + k->offset);
}

/* Set every key of @group in the struct at @base to its default (for @type's vendors). */
static void set_defaults(const char *group, void *base, fbl_vendor_type type)
{
    size_t n = 0;
    const key_def *rows = group_rows(group, &n);
    for (size_t i = 0; i < n; i++) {
        const char *def = default_for(&rows[i], type);
        if (def == NULL)
            continue; /* required: no default */
        gboolean ok = set_value(NULL, group, &rows[i], base, def, NULL);
        g_assert(ok); /* the table's defaults are valid */
    }
}

/* Free what the keys of @group own in the struct at @base. */
static void clear_values(const char *group, void *base)
{
    size_t n = 0;
    const key_def *rows = group_rows(group, &n);
    for (size_t i = 0; i < n; i++) {
        if (types[rows[i].type].clear != NULL)
            types[rows[i].type].clear((char *) base + rows[i].offset);
    }
}
/* ---- the config ------------------------------------------------------------------- */

static bool is_named(const char *group)
{
    return strcmp(group, MAILBOX) == 0 || strcmp(group, VENDOR) == 0;
}

static void mailbox_free(fbl_mailbox_config *m)
{
    clear_values(MAILBOX, m);
    g_free(m->name);
    g_free(m);
}

static void vendor_free(fbl_vendor_config *v)
{
    clear_values(VENDOR, v);
    g_free(v->name);
    g_free(v);
}

static fbl_config *config_new(void)
{
    fbl_config *c = g_new0(fbl_config, 1);
    c->mailboxes = g_ptr_array_new_with_free_func((GDestroyNotify) mailbox_free);
    c->vendors = g_ptr_array_new_with_free_func((GDestroyNotify) vendor_free);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (is_named(keys[i].group))
            continue;
        gboolean ok = set_value(NULL, keys[i].group, &keys[i], c, keys[i].def, NULL);
        g_assert(ok); /* the table's defaults are valid */
    }
    return c;
}

void fbl_config_free(fbl_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (!is_named(keys[i].group) && types[keys[i].type].clear != NULL)
            types[keys[i].type].clear((char *) c + keys[i].offset);
    }
    g_ptr_array_unref(c->mailboxes);
    g_ptr_array_unref(c->vendors);
    g_free(c->file);
    g_free(c->_text);
    g_free(c);
}

bool fbl_config_check_conninfo(const char *conninfo, GError **error)
{
    if (conninfo == NULL)
        return true;
    bool has_password = false;
    g_autoptr(GError) local = NULL;
    if (!fbl_pg_check_conninfo(conninfo, &has_password, &local)) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE, "%s", local->message);
        return false;
    }
    if (has_password) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE,
                    "holds a password: secrets come from files only; name a pgpass file with "
                    "passfile=FILE instead");
        return false;
    }
    return true;
}

bool fbl_config_set_conninfo(fbl_config *c, const char *conninfo, GError **error)
{
    if (!fbl_config_check_conninfo(conninfo, error)) {
        g_prefix_error(error, "--db: ");
        return false;
    }
    g_free(c->pg_conninfo);
    c->pg_conninfo = g_strdup(conninfo);
    return true;
}

/* Every key of [@group] is a key of @table_group (the group itself, MAILBOX or VENDOR). */
static bool check_keys(const fbl_config *c, GKeyFile *kf, const char *group,
                       const char *table_group, GError **error)
{
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++) {
        if (find_key(table_group, ks[i]) == NULL)
            return fail(error, FBL_CONFIG_ERROR_KEY, c, group, ks[i], "unknown key");
    }
    return true;
}

/* Set @k in the struct at @base from [@group], when the file has the key. */
static bool set_from_file(const fbl_config *c, GKeyFile *kf, const char *group, const key_def *k,
                          void *base, GError **error)
{
    if (!g_key_file_has_key(kf, group, k->key, NULL))
        return true;
    g_autofree char *v = g_key_file_get_string(kf, group, k->key, NULL);
    if (v == NULL) /* GKeyFile refused its escapes */
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, k->key,
                    "unreadable value (a '\\' starts an escape: \\\\ \\s \\t \\n \\r)");
    return set_value(c, group, k, base, g_strstrip(v), error);
}

/*
 * Every key of @table_group that [@group] holds, into the struct at @base
 * (its defaults set before); a required key left out, or a key for the other
 * vendor type (@type), is an error.
 */
static bool set_keys(const fbl_config *c, GKeyFile *kf, const char *group, const char *table_group,
                     void *base, fbl_vendor_type type, GError **error)
{
    size_t n = 0;
    const key_def *rows = group_rows(table_group, &n);
    for (size_t i = 0; i < n; i++) {
        const key_def *k = &rows[i];
        bool present = g_key_file_has_key(kf, group, k->key, NULL);
        if (present && !for_type(k, type)) {
            g_autofree char *why = g_strdup_printf("only for type %s",
                                                   k->scope == FOR_RSPAMD ? "rspamd" : "http-json");
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, k->key, why);
        }
        if (!present && default_for(k, type) == NULL)
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, k->key, "required");
        if (!set_from_file(c, kf, group, k, base, error))
            return false;
    }
    return true;
}

/* [postgres], [limits], …: every key in the file is one of the table's. */
static bool load_fixed(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    size_t n = 0;
    if (group_rows(group, &n) == NULL)
        return fail(error, FBL_CONFIG_ERROR_KEY, c, group, NULL, "unknown group");
    return check_keys(c, kf, group, group, error) &&
           set_keys(c, kf, group, group, c, FBL_VENDOR_HTTP_JSON, error);
}

/* The host of the URL @url (checked when set) is loopback: localhost or a loopback literal. */
static bool url_to_loopback(const char *url)
{
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    const char *host = uri != NULL ? g_uri_get_host(uri) : NULL;
    if (host == NULL)
        return false;
    if (g_ascii_strcasecmp(host, "localhost") == 0)
        return true;
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
    return addr != NULL && g_inet_address_get_is_loopback(addr);
}

/* The keys an IMAP mailbox needs together, and its transport rule (fbl/imap.h, TLS). */
static bool check_imap_mailbox(const fbl_config *c, const char *group, const fbl_mailbox_config *m,
                               GError **error)
{
    if (m->user == NULL)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "user", "required with imap");
    if ((m->password_file == NULL) == (m->oauth2_token_file == NULL))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group,
                    m->password_file != NULL ? "oauth2_token_file" : "imap",
                    "an IMAP mailbox takes exactly one of password_file and oauth2_token_file");
    bool implicit_tls = g_str_has_prefix(m->imap, "imaps://");
    if (implicit_tls && m->starttls)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "starttls",
                    "only with imap://: imaps:// is TLS from the start");
    if (!implicit_tls && !m->starttls && !url_to_loopback(m->imap))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "imap",
                    "plain imap:// to a host that is not loopback would send the password in "
                    "clear: use imaps://, or starttls = true");
    return true;
}

/* What no single key of [@group] can say: path or imap, and the keys that go with imap. */
static bool check_mailbox(const fbl_config *c, const char *group, const fbl_mailbox_config *m,
                          GError **error)
{
    if (m->path == NULL && m->imap == NULL)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "path",
                    "required: a Maildir path, or an imap URL");
    if (m->path != NULL && m->imap != NULL)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "imap",
                    "a mailbox has either path or imap, not both");
    return m->imap == NULL || check_imap_mailbox(c, group, m, error);
}

static bool load_mailbox(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    const char *name = group + strlen("mailbox:");
    if (*name == '\0')
        return fail(error, FBL_CONFIG_ERROR_KEY, c, group, NULL, "a mailbox needs a name");
    if (!check_keys(c, kf, group, MAILBOX, error))
        return false;
    fbl_mailbox_config *m = g_new0(fbl_mailbox_config, 1);
    m->name = g_strdup(name);
    g_ptr_array_add(c->mailboxes, m);
    set_defaults(MAILBOX, m, FBL_VENDOR_HTTP_JSON);
    return set_keys(c, kf, group, MAILBOX, m, FBL_VENDOR_HTTP_JSON, error) &&
           check_mailbox(c, group, m, error);
}

/* What no single key can say: the keys of [@group] that go together. */
static bool check_vendor(const fbl_config *c, const char *group, const fbl_vendor_config *v,
                         GError **error)
{
    bool redacting = v->redact[0] != NULL;
    if (redacting && v->redact_key_file == NULL)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "redact_key_file",
                    "required with redact");
    if (!redacting && v->redact_key_file != NULL)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "redact_key_file",
                    "set, but redact lists no field");
    if (v->type == FBL_VENDOR_RSPAMD && !v->learn && v->fuzzy_flag == 0)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "learn",
                    "false and no fuzzy_flag: nothing would be sent");
    return true;
}

/* [vendor:NAME]: its type first, which decides the other keys' defaults. */
static bool load_vendor(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    const char *name = group + strlen("vendor:");
    if (*name == '\0')
        return fail(error, FBL_CONFIG_ERROR_KEY, c, group, NULL, "a vendor needs a name");
    if (!check_keys(c, kf, group, VENDOR, error))
        return false;
    fbl_vendor_config *v = g_new0(fbl_vendor_config, 1);
    v->name = g_strdup(name);
    g_ptr_array_add(c->vendors, v);
    if (!g_key_file_has_key(kf, group, "type", NULL))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "type",
                    "required: http-json or rspamd");
    if (!set_from_file(c, kf, group, find_key(VENDOR, "type"), v, error))
        return false;
    set_defaults(VENDOR, v, v->type);
    return set_keys(c, kf, group, VENDOR, v, v->type, error) && check_vendor(c, group, v, error);
}

static bool load_group(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    if (g_str_has_prefix(group, "mailbox:"))
        return load_mailbox(c, kf, group, error);
    if (g_str_has_prefix(group, "vendor:"))
        return load_vendor(c, kf, group, error);
    return load_fixed(c, kf, group, error);
}

/* The sink's rbldnsd and Postfix files say "Listed by ORG ..., see URL/...": both needed. */
static bool check_blocklist(const fbl_config *c, GError **error)
{
    const char *needs = c->blocklist_ips_rbldnsd       ? "export_ips_rbldnsd"
                        : c->blocklist_domains_rbldnsd ? "export_domains_rbldnsd"
                        : c->blocklist_ips_postfix     ? "export_ips_postfix"
                        : c->blocklist_domains_postfix ? "export_domains_postfix"
                                                       : NULL;
    if (needs == NULL || (c->blocklist_org != NULL && c->blocklist_url != NULL))
        return true;
    g_autofree char *why = g_strdup_printf("required with %s (the answers name who lists and "
                                           "where to read more)",
                                           needs);
    return fail(error, FBL_CONFIG_ERROR_VALUE, c, "blocklist",
                c->blocklist_org == NULL ? "org" : "url", why);
}

/*
 * [local] domains: names the parser can match (parsers/outbound.h); [outbound]
 * lock_text: one line of a Postfix access table.
 */
static bool check_local(const fbl_config *c, GError **error)
{
    for (const char *p = c->outbound_lock_text; p != NULL && *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, "outbound", "lock_text",
                        "a control character cannot be in a Postfix access table's answer");
    }
    g_autoptr(GError) bad = NULL;
    g_autoptr(fbl_outbound_scope) s =
        fbl_outbound_scope_new(NULL, (const char *const *) c->local_domains, &bad);
    if (bad == NULL)
        return true;
    return fail(error, FBL_CONFIG_ERROR_VALUE, c, "local", "domains", bad->message);
}

/* Read and parse @c->file into @c. */
static bool load_file(fbl_config *c, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(c->file, &text, NULL, &local)) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_FILE, "%s", local->message);
        return false;
    }
    c->_text = strip_comments(c->file, text, error);
    if (c->_text == NULL)
        return false;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, c->_text, (gsize) -1, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_FILE, "%s: %s", c->file,
                    local->message);
        return false;
    }
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (size_t i = 0; groups[i] != NULL; i++) {
        if (!load_group(c, kf, groups[i], error))
            return false;
    }
    if (!check_blocklist(c, error) || !check_local(c, error))
        return false;
    g_autoptr(GError) bad = NULL;
    if (!fbl_config_check_conninfo(c->pg_conninfo, &bad))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, "postgres", "conninfo", bad->message);
    return true;
}

fbl_config *fbl_config_load(const char *path, GError **error)
{
    g_autoptr(fbl_config) c = config_new();
    if (path == NULL)
        path = g_getenv("FBL_CONFIG");
    if (path == NULL || *path == '\0')
        return g_steal_pointer(&c);
    c->file = g_strdup(path);
    if (!load_file(c, error))
        return NULL;
    return g_steal_pointer(&c);
}

void fbl_config_parse_options(const fbl_config *c, fbl_parse_options *o)
{
    fbl_parse_options_init(o);
    o->max_mail_bytes = c->max_mail_bytes;
    o->max_mime_depth = c->max_mime_depth;
    o->max_mime_parts = c->max_mime_parts;
    o->max_headers = c->max_headers;
    o->max_header_bytes = c->max_header_bytes;
    o->trusted_networks = (const char *const *) c->trusted_networks;
    o->trusted_hosts = (const char *const *) c->trusted_hosts;
    o->authserv_id = c->authserv_id;
    o->local_networks = (const char *const *) c->local_networks;
    o->local_domains = (const char *const *) c->local_domains;
}

void fbl_config_add_mailbox(fbl_config *c, const char *path)
{
    fbl_mailbox_config *m = g_new0(fbl_mailbox_config, 1);
    set_defaults(MAILBOX, m, FBL_VENDOR_HTTP_JSON);
    g_autofree char *trimmed = g_strdup(path);
    size_t n = strlen(trimmed);
    while (n > 1 && trimmed[n - 1] == '/')
        trimmed[--n] = '\0';
    m->name = g_path_get_basename(trimmed);
    m->path = g_strdup(path);
    m->from_flag = true;
    g_ptr_array_add(c->mailboxes, m);
}

const fbl_mailbox_config *fbl_config_find_mailbox(const fbl_config *c, const char *name)
{
    for (guint i = 0; name != NULL && i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        if (strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

const fbl_vendor_config *fbl_config_find_vendor(const fbl_config *c, const char *name)
{
    for (guint i = 0; name != NULL && i < c->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(c->vendors, i);
        if (strcmp(v->name, name) == 0)
            return v;
    }
    return NULL;
}

/* ---- checks beyond the file (--check-config, start-up) ------------------------------ */

/* What keeps this process from using directory @dir (@rw: read, write, search); NULL: nothing. */
static char *dir_problem(const char *dir, bool rw)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return g_strdup(g_strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return g_strdup("not a directory");
    if (rw && access(dir, R_OK | W_OK | X_OK) != 0)
        return g_strdup_printf("uid %u may not read and write it (%s)", (unsigned) geteuid(),
                               g_strerror(errno));
    return NULL;
}

static bool check_maildir(const fbl_config *c, const fbl_mailbox_config *m, GError **error)
{
    /* "" is the Maildir's root, where the watcher keeps .fbl-committed: looked at
     * last, so a Maildir that is not there is named by its new/. */
    static const char *const subdirs[] = {"new", "cur", "tmp", ""};
    for (size_t i = 0; i < G_N_ELEMENTS(subdirs); i++) {
        g_autofree char *dir = g_build_filename(m->path, subdirs[i], NULL);
        /* tmp/ is the MTA's: the watcher only reads new/ and renames into cur/. */
        g_autofree char *why = dir_problem(dir, strcmp(subdirs[i], "tmp") != 0);
        if (why == NULL)
            continue;
        if (m->from_flag) {
            g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE,
                        "--maildir %s: not a usable Maildir: %s/: %s", m->path,
                        *subdirs[i] != '\0' ? subdirs[i] : ".", why);
            return false;
        }
        g_autofree char *group = g_strconcat("mailbox:", m->name, NULL);
        return fbl_config_error_at(c, group, "path", error, "%s is not a usable Maildir: %s/: %s",
                                   m->path, *subdirs[i] != '\0' ? subdirs[i] : ".", why);
    }
    return true;
}

bool fbl_config_check_mailboxes(const fbl_config *c, GError **error)
{
    for (guint i = 0; i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        if (m->path != NULL && !check_maildir(c, m, error))
            return false;
    }
    return true;
}

bool fbl_config_check_log_file(const fbl_config *c, GError **error)
{
    if (c->log_file == NULL)
        return true;
    if (access(c->log_file, F_OK) == 0) {
        if (access(c->log_file, W_OK) == 0)
            return true;
        return fbl_config_error_at(c, "log", "file", error, "%s: cannot append to it: %s",
                                   c->log_file, g_strerror(errno));
    }
    g_autofree char *dir = g_path_get_dirname(c->log_file);
    if (access(dir, W_OK | X_OK) == 0)
        return true;
    return fbl_config_error_at(c, "log", "file", error, "%s: cannot create it in %s: %s",
                               c->log_file, dir, g_strerror(errno));
}

bool fbl_config_error_at(const fbl_config *c, const char *group, const char *key, GError **error,
                         const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *why = g_strdup_vprintf(format, ap);
    va_end(ap);
    return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, key, why);
}

const char **fbl_config_vendor_names(const fbl_config *c)
{
    const char **names = g_new0(const char *, c->vendors->len + 1);
    for (guint i = 0; i < c->vendors->len; i++)
        names[i] = ((const fbl_vendor_config *) g_ptr_array_index(c->vendors, i))->name;
    return names;
}

/* ---- --print-config --------------------------------------------------------------- */

/*
 * @k's default for vendors of @type as --print-config writes values ("60s"
 * is "1m"), or NULL when the key is required.
 */
static char *default_text(const key_def *k, fbl_vendor_type type)
{
    const char *def = default_for(k, type);
    if (def == NULL)
        return NULL;
    /* Room for the one value, whichever struct the row is of. */
    g_autofree char *scratch = g_malloc0(
        MAX(sizeof(fbl_config), MAX(sizeof(fbl_mailbox_config), sizeof(fbl_vendor_config))));
    gboolean ok = set_value(NULL, k->group, k, scratch, def, NULL);
    g_assert(ok); /* the table's defaults are valid */
    GString *out = g_string_new(NULL);
    print_value(k, scratch, out);
    if (types[k->type].clear != NULL)
        types[k->type].clear(scratch + k->offset);
    return g_string_free(out, FALSE);
}

/* "key = value", and "  # default" when it is the default's text. */
static void print_line(GString *out, const char *key, const char *value, const char *def)
{
    g_string_append_printf(out, "%s = %s%s\n", key, value,
                           def != NULL && strcmp(value, def) == 0 ? "  # default" : "");
}

/*
 * [@group] with every key of @table_group from the struct at @base; a
 * vendor key that is not for @type commented out (the loader refuses it).
 */
static void print_group(GString *out, const char *group, const char *table_group, const void *base,
                        fbl_vendor_type type)
{
    g_string_append_printf(out, "\n[%s]\n", group);
    size_t n = 0;
    const key_def *rows = group_rows(table_group, &n);
    for (size_t i = 0; i < n; i++) {
        const key_def *k = &rows[i];
        if (!for_type(k, type)) {
            g_string_append_printf(out, "#%s =   # only for type %s\n", k->key,
                                   k->scope == FOR_RSPAMD ? "rspamd" : "http-json");
            continue;
        }
        g_autoptr(GString) now = g_string_new(NULL);
        print_value(k, base, now);
        g_autofree char *def = default_text(k, type);
        print_line(out, k->key, now->str, def);
    }
}

/* What the commented-out example says of @k beside its default: "default; rspamd: 32". */
static char *example_note(const key_def *k, const char *def)
{
    const char *what = def == NULL ? "required" : *def != '\0' ? "default" : NULL;
    g_autofree char *scope = NULL;
    if (k->scope != FOR_ALL)
        scope = g_strdup_printf("%s only", k->scope == FOR_RSPAMD ? "rspamd" : "http-json");
    else if (k->rspamd_def != NULL)
        scope = g_strdup_printf("rspamd: %s", k->rspamd_def);
    if (what == NULL && scope == NULL)
        return NULL;
    return g_strdup_printf("%s%s%s", what != NULL ? what : "",
                           what != NULL && scope != NULL ? "; " : "", scope != NULL ? scope : "");
}

/*
 * No [mailbox:NAME] or [vendor:NAME] is configured: a commented-out group
 * with every key of @table_group and its default (a vendor key's for the
 * type it is for, http-json's when both).
 */
static void print_example(GString *out, const char *table_group, const char *intro)
{
    g_string_append_printf(out, "\n%s#[%s]\n", intro, table_group);
    size_t n = 0;
    const key_def *rows = group_rows(table_group, &n);
    for (size_t i = 0; i < n; i++) {
        const key_def *k = &rows[i];
        g_autofree char *def =
            default_text(k, k->scope == FOR_RSPAMD ? FBL_VENDOR_RSPAMD : FBL_VENDOR_HTTP_JSON);
        g_autofree char *note = example_note(k, def);
        g_string_append_printf(out, "#%s =%s%s", k->key, def != NULL && *def != '\0' ? " " : "",
                               def != NULL ? def : "");
        if (note != NULL)
            g_string_append_printf(out, "  # %s", note);
        g_string_append_c(out, '\n');
    }
}

void fbl_config_print(const fbl_config *c, const char *command, GString *out)
{
    g_string_append_printf(out,
                           "# The configuration fbl %s runs with (%s), flags included.\n"
                           "# \"# default\" marks a value left at its default. This loads as "
                           "a configuration file.\n",
                           command, c->file != NULL ? c->file : "no file: built-in defaults");
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (!is_named(keys[i].group) && (i == 0 || strcmp(keys[i - 1].group, keys[i].group) != 0))
            print_group(out, keys[i].group, keys[i].group, c, FBL_VENDOR_HTTP_JSON);
    }
    if (c->mailboxes->len == 0)
        print_example(out, MAILBOX, "# No mailbox is configured. One group per Maildir:\n");
    for (guint i = 0; i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        g_autofree char *group = g_strconcat("mailbox:", m->name, NULL);
        print_group(out, group, MAILBOX, m, FBL_VENDOR_HTTP_JSON);
    }
    if (c->vendors->len == 0)
        print_example(out, VENDOR,
                      "# No vendor is configured. One group per vendor; its keys, with the "
                      "defaults\n# of type http-json (rspamd's where they differ):\n");
    for (guint i = 0; i < c->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(c->vendors, i);
        g_autofree char *group = g_strconcat("vendor:", v->name, NULL);
        print_group(out, group, VENDOR, v, v->type);
    }
}

/* ---- --print-config-table --------------------------------------------------------- */

void fbl_config_print_table(GString *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const key_def *k = &keys[i];
        g_autofree char *range = NULL;
        if (types[k->type].set == set_number)
            range = g_strdup_printf("%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT, k->min, k->max);
        g_string_append_printf(out, "%s\t%s\t%s\t%s\t%s\t%s\n", k->group, k->key,
                               types[k->type].unit, k->def != NULL ? k->def : "",
                               range != NULL ? range : "", k->help);
    }
}
