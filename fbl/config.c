/* config.c - fbl.conf, table-driven (see config.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "fbl/log.h"
#include "fbl/metrics.h"
#include "parsers/ip.h"

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
    T_PATH,   /* a string naming a file or directory */
    T_LISTEN, /* ADDRESS:PORT, numeric */
    T_DAYS,   /* a number of days: 180d, 26w or 180 */
    T_NETS,   /* a list of networks: 192.0.2.0/24, 2001:db8::/32, 198.51.100.7 */
} key_type;

/* The unit of each type, as fbl.conf.example and fbl.conf(5) name it. */
static const char *const type_names[] = {
    [T_STRING] = "string",  [T_STRV] = "list",    [T_UINT] = "number",    [T_BYTES] = "size",
    [T_MS] = "duration",    [T_BOOL] = "boolean", [T_LOGLEVEL] = "level", [T_PATH] = "path",
    [T_LISTEN] = "address", [T_DAYS] = "days",    [T_NETS] = "list",
};

typedef struct key_def {
    const char *group;
    const char *key;
    key_type type;
    size_t offset;    /* into fbl_config */
    const char *def;  /* default, as written in the file */
    guint64 min, max; /* for T_UINT, T_BYTES, T_MS, after units */
    const char *help;
} key_def;

#define OFF(f) offsetof(fbl_config, f)
#define MIB    (1024ull * 1024ull)
#define GIB    (1024ull * MIB)

/* Every fixed key. fbl.conf.example lists the same keys; a test keeps them in step. */
static const key_def keys[] = {
    {"postgres", "conninfo", T_STRING, OFF(pg_conninfo), "dbname=fbl", 0, 0,
     "libpq connection string or URI"},
    {"postgres", "unreachable_timeout", T_MS, OFF(pg_unreachable_timeout_ms), "60s", 0, 3600000,
     "fbl run --once gives up (exit 69) when PostgreSQL stays unreachable this long"},
    {"limits", "max_mail_bytes", T_BYTES, OFF(max_mail_bytes), "10MiB", 1024, GIB,
     "larger mails are rejected as too_large, unparsed"},
    {"limits", "max_mime_depth", T_UINT, OFF(max_mime_depth), "32", 1, 1000, "MIME nesting"},
    {"limits", "max_mime_parts", T_UINT, OFF(max_mime_parts), "1000", 1, 1000000,
     "MIME entities per mail"},
    {"limits", "max_headers", T_UINT, OFF(max_headers), "10000", 1, 10000000,
     "header fields per mail"},
    {"limits", "max_header_bytes", T_BYTES, OFF(max_header_bytes), "128KiB", 256, 64 * MIB,
     "one header field"},
    {"limits", "reports_per_reporter_per_hour", T_UINT, OFF(reports_per_reporter_per_hour), "1000",
     0, 1000000, "more from one reporter within an hour are stored flagged, not forwarded; 0: off"},
    {"limits", "exempt_reporters", T_STRV, OFF(exempt_reporters), "", 0, 0,
     "reporter addresses or domains (*.example.com) never limited, unless found unverified"},
    {"parse", "trusted_networks", T_NETS, OFF(trusted_networks), "", 0, 0,
     "our relays' networks, skipped when looking for the source IP"},
    {"parse", "trusted_hosts", T_STRV, OFF(trusted_hosts), "", 0, 0,
     "domains whose hosts hand mail among themselves (e.g. prod.outlook.com)"},
    {"parse", "authserv_id", T_STRING, OFF(authserv_id), "", 0, 0,
     "our MTA's Authentication-Results id; sets reporter.verified"},
    {"watch", "connect", T_STRV, OFF(watch_connect), "ipc:///run/fbl/sink.sock", 0, 0,
     "sink endpoints the watcher sends to"},
    {"watch", "window", T_UINT, OFF(watch_window), "128", 1, 100000,
     "mails sent and not yet acknowledged, at most"},
    {"watch", "window_bytes", T_BYTES, OFF(watch_window_bytes), "8MiB", 1024, 64 * GIB,
     "bytes of mail sent and not yet acknowledged, at most"},
    {"watch", "queue_max", T_UINT, OFF(watch_queue_max), "8192", 1, 10000000,
     "names from new/ held in memory, at most; a larger backlog is listed again"},
    {"watch", "ack_timeout", T_MS, OFF(watch_ack_timeout_ms), "30s", 100, 3600000,
     "resend a mail not acknowledged within this time"},
    {"watch", "curve_secret_file", T_PATH, OFF(watch_curve_secret_file), "", 0, 0,
     "the watcher's CURVE secret key (fbl keygen); turns encryption on"},
    {"watch", "curve_server_public_file", T_PATH, OFF(watch_curve_server_public_file), "", 0, 0,
     "the sinks' CURVE public key"},
    {"watch", "allow_plaintext", T_BOOL, OFF(watch_allow_plaintext), "false", 0, 0,
     "let tcp:// endpoints carry mail without CURVE"},
    {"watch", "allow_insecure_file_modes", T_BOOL, OFF(watch_allow_insecure_file_modes), "false", 0,
     0, "read curve_secret_file even when other users may read it"},
    {"sink", "bind", T_STRING, OFF(sink_bind), "ipc:///run/fbl/sink.sock", 0, 0,
     "endpoint the sink listens on"},
    {"sink", "batch_max_mails", T_UINT, OFF(sink_batch_max_mails), "50", 1, 100000,
     "mails per transaction, at most"},
    {"sink", "batch_max_bytes", T_BYTES, OFF(sink_batch_max_bytes), "32MiB", 1024, 16 * GIB,
     "bytes per transaction, at most"},
    {"sink", "batch_max_wait", T_MS, OFF(sink_batch_max_wait_ms), "200ms", 1, 600000,
     "commit a batch at the latest this long after its first mail"},
    {"sink", "batch_idle", T_MS, OFF(sink_batch_idle_ms), "2ms", 1, 600000,
     "commit a batch sooner, once no mail has arrived for this long"},
    {"sink", "retry_max_wait", T_MS, OFF(sink_retry_max_wait_ms), "30s", 100, 3600000,
     "longest pause between retries while PostgreSQL is down"},
    {"sink", "store_raw", T_BOOL, OFF(sink_store_raw), "true", 0, 0,
     "keep raw mail bytes in PostgreSQL (needed by fbl reparse)"},
    {"sink", "curve_secret_file", T_PATH, OFF(sink_curve_secret_file), "", 0, 0,
     "the sink's CURVE secret key (fbl keygen); turns encryption on"},
    {"sink", "curve_clients_dir", T_PATH, OFF(sink_curve_clients_dir), "", 0, 0,
     "directory of the public key files of the watchers allowed in"},
    {"sink", "allow_plaintext", T_BOOL, OFF(sink_allow_plaintext), "false", 0, 0,
     "let a tcp:// bind take mail without CURVE"},
    {"sink", "allow_insecure_file_modes", T_BOOL, OFF(sink_allow_insecure_file_modes), "false", 0,
     0, "read curve_secret_file even when other users may read it"},
    {"log", "level", T_LOGLEVEL, OFF(log_level), "notice", 0, 0,
     "debug, info, notice, warning or error"},
    {"log", "file", T_PATH, OFF(log_file), "", 0, 0,
     "append to this file instead of stderr; SIGHUP reopens it"},
    {"log", "target", T_STRING, OFF(log_target), "auto", 0, 0,
     "stderr, file, journal (native fields) or syslog; auto: file when file is set, else stderr"},
    {"metrics", "listen", T_LISTEN, OFF(metrics_listen), "", 0, 0,
     "Prometheus endpoint of fbl run, and of the daemons without their own key; empty: off"},
    {"metrics", "watch", T_LISTEN, OFF(metrics_watch), "", 0, 0,
     "Prometheus endpoint of fbl watch"},
    {"metrics", "sink", T_LISTEN, OFF(metrics_sink), "", 0, 0, "Prometheus endpoint of fbl sink"},
    {"metrics", "forward", T_LISTEN, OFF(metrics_forward), "", 0, 0,
     "Prometheus endpoint of fbl forward"},
    {"retention", "keep", T_DAYS, OFF(retention_keep_days), "0", 0, 36500,
     "fbl prune drops the months that ended longer ago than this; 0: keep everything"},
    {"retention", "raw_keep", T_DAYS, OFF(retention_raw_keep_days), "0", 0, 36500,
     "fbl prune clears raw mail older than this; 0: keep it while its month is kept"},
};

static const char *const mailbox_keys[] = {"path", "feedback_type", "raw"};

/*
 * [vendor:NAME]: the forwarder checks the values (fbl/forward_loop.c documents
 * them); this table only names the keys and the defaults --print-config shows,
 * per type. NULL: the key is not for that type (the forwarder refuses it);
 * "": no default (unset unless given).
 */
static const struct vendor_doc {
    const char *key;
    const char *http;   /* type = http-json */
    const char *rspamd; /* type = rspamd */
} vendor_docs[] = {
    {"type", "", ""},
    {"url", "", ""},
    {"token_file", "", NULL},
    {"password_file", NULL, ""},
    {"ca_file", "", ""},
    {"batch_size", "100", "32"},
    {"batch_bytes", "32MiB", "32MiB"},
    {"parallel", "4", "4"},
    {"timeout", "10s", "10s"},
    {"max_attempts", "10", "10"},
    {"retry_max_wait", "10m", "10m"},
    {"redact", "", ""},
    {"redact_key_file", "", ""},
    {"include_raw", "false", NULL},
    {"learn", NULL, "true"},
    {"fuzzy_flag", NULL, "0"},
    {"fuzzy_weight", NULL, "1"},
    {"allow_plain_http", "false", "false"},
    {"allow_insecure_file_modes", "false", "false"},
};

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

/* Set @error: "FILE:LINE: [group] key: why". */
static bool fail(GError **error, fbl_config_error code, const fbl_config *c, const char *group,
                 const char *key, const char *why)
{
    unsigned line = find_line(c->_text, group, key);
    g_set_error(error, FBL_CONFIG_ERROR, code, "%s:%u: [%s]%s%s: %s",
                c->file != NULL ? c->file : "(defaults)", line, group, key ? " " : "",
                key ? key : "", why);
    return false;
}

/* ---- values ----------------------------------------------------------------------- */

/* "10MiB", "64 KiB", "1G", "4096" -> bytes */
static bool parse_bytes(const char *v, guint64 *out)
{
    static const struct {
        const char *suffix;
        guint64 mult;
    } units[] = {{"KiB", 1024}, {"MiB", MIB}, {"GiB", GIB}, {"K", 1024},
                 {"M", MIB},    {"G", GIB},   {"B", 1},     {"", 1}};
    char *end = NULL;
    guint64 n = g_ascii_strtoull(v, &end, 10);
    if (end == v)
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
        if (g_ascii_strcasecmp(end, units[i].suffix) == 0) {
            if (n > G_MAXUINT64 / units[i].mult)
                return false;
            *out = n * units[i].mult;
            return true;
        }
    }
    return false;
}

/* "180d", "26w", "180" (days) -> days */
static bool parse_days(const char *v, guint64 *out)
{
    char *end = NULL;
    guint64 n = g_ascii_strtoull(v, &end, 10);
    if (end == v || n > G_MAXUINT32)
        return false;
    if (strcmp(end, "w") == 0)
        n *= 7;
    else if (strcmp(end, "d") != 0 && *end != '\0')
        return false;
    *out = n;
    return true;
}

/* "200ms", "30s", "5m", "1h", "500" (ms) -> milliseconds */
static bool parse_ms(const char *v, guint64 *out)
{
    static const struct {
        const char *suffix;
        guint64 mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1}};
    char *end = NULL;
    guint64 n = g_ascii_strtoull(v, &end, 10);
    if (end == v)
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (n > G_MAXUINT64 / units[i].mult)
                return false;
            *out = n * units[i].mult;
            return true;
        }
    }
    return false;
}

static bool parse_uint(const char *v, guint64 *out)
{
    return g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT64, out, NULL);
}

/* true/yes, false/no (any case) */
static bool parse_bool(const char *v, bool *out)
{
    if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "yes") == 0)
        *out = true;
    else if (g_ascii_strcasecmp(v, "false") == 0 || g_ascii_strcasecmp(v, "no") == 0)
        *out = false;
    else
        return false;
    return true;
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

/* ADDRESS:PORT, or empty (off). */
static bool set_listen(fbl_config *c, const key_def *k, const char *v, char **slot, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (*v != '\0' && !fbl_metrics_parse_listen(v, NULL, &local))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, k->group, k->key, local->message);
    g_free(*slot);
    *slot = *v != '\0' ? g_strdup(v) : NULL;
    return true;
}

/* A list; for T_NETS, each an address or network the parser will take (parsers/ip.h). */
static bool set_list(fbl_config *c, const key_def *k, const char *v, GStrv *slot, GError **error)
{
    g_auto(GStrv) list = split_list(v);
    if (k->type == T_NETS) {
        g_autoptr(GError) local = NULL;
        g_autoptr(fbl_netset) set = fbl_netset_new((const char *const *) list, &local);
        if (set == NULL)
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, k->group, k->key, local->message);
    }
    g_strfreev(*slot);
    *slot = g_steal_pointer(&list);
    return true;
}

/* The number types: how each is read and what the error says it expected. */
static const struct number_type {
    bool (*parse)(const char *v, guint64 *out);
    const char *expected;
} number_types[] = {
    [T_UINT] = {parse_uint, "expected a whole number"},
    [T_BYTES] = {parse_bytes, "expected a size: a number with B, KiB, MiB or GiB"},
    [T_MS] = {parse_ms, "expected a duration: a number with ms, s, m or h"},
    [T_DAYS] = {parse_days, "expected a number of days: 180d, 26w or 180"},
};

static bool set_number(fbl_config *c, const key_def *k, const char *v, void *slot, GError **error)
{
    guint64 n = 0;
    if (!number_types[k->type].parse(v, &n))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, k->group, k->key,
                    number_types[k->type].expected);
    if (n < k->min || n > k->max) {
        g_autofree char *why = g_strdup_printf(
            "%s is out of range [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]", v, k->min, k->max);
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, k->group, k->key, why);
    }
    if (k->type == T_BYTES)
        *(size_t *) slot = (size_t) n;
    else
        *(unsigned *) slot = (unsigned) n;
    return true;
}

/* Set key @k of @c from its text @v (trimmed); false with @error naming file and line. */
static bool set_value(fbl_config *c, const key_def *k, const char *v, GError **error)
{
    void *slot = (char *) c + k->offset;
    switch (k->type) {
    case T_LISTEN:
        return set_listen(c, k, v, slot, error);
    case T_STRING:
    case T_PATH:
        g_free(*(char **) slot);
        *(char **) slot = *v != '\0' ? g_strdup(v) : NULL;
        return true;
    case T_STRV:
    case T_NETS:
        return set_list(c, k, v, slot, error);
    case T_BOOL:
        return parse_bool(v, slot) ||
               fail(error, FBL_CONFIG_ERROR_VALUE, c, k->group, k->key, "expected true or false");
    case T_LOGLEVEL:
        return fbl_log_level_from_string(v, slot) ||
               fail(error, FBL_CONFIG_ERROR_VALUE, c, k->group, k->key,
                    "expected debug, info, notice, warning or error");
    case T_UINT:
    case T_BYTES:
    case T_MS:
    case T_DAYS:
        return set_number(c, k, v, slot, error);
    }
    g_assert_not_reached();
}

/* ---- the config ------------------------------------------------------------------- */

static void mailbox_free(fbl_mailbox_config *m)
{
    g_free(m->name);
    g_free(m->path);
    g_free(m);
}

static void vendor_free(fbl_vendor_config *v)
{
    g_free(v->name);
    g_hash_table_unref(v->keys);
    g_free(v);
}

static fbl_config *config_new(void)
{
    fbl_config *c = g_new0(fbl_config, 1);
    c->mailboxes = g_ptr_array_new_with_free_func((GDestroyNotify) mailbox_free);
    c->vendors = g_ptr_array_new_with_free_func((GDestroyNotify) vendor_free);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        gboolean ok = set_value(c, &keys[i], keys[i].def, NULL);
        g_assert(ok); /* the table's defaults are valid */
    }
    return c;
}

void fbl_config_free(fbl_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        void *slot = (char *) c + keys[i].offset;
        if (keys[i].type == T_STRING || keys[i].type == T_PATH || keys[i].type == T_LISTEN)
            g_free(*(char **) slot);
        else if (keys[i].type == T_STRV || keys[i].type == T_NETS)
            g_strfreev(*(GStrv *) slot);
    }
    g_ptr_array_unref(c->mailboxes);
    g_ptr_array_unref(c->vendors);
    g_free(c->file);
    g_free(c->_text);
    g_free(c);
}

static const key_def *find_key(const char *group, const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (strcmp(keys[i].group, group) == 0 && strcmp(keys[i].key, key) == 0)
            return &keys[i];
    }
    return NULL;
}

static bool known_group(const char *group)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (strcmp(keys[i].group, group) == 0)
            return true;
    }
    return false;
}

bool fbl_config_check_conninfo(const char *conninfo, GError **error)
{
    if (conninfo == NULL)
        return true;
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (opts == NULL) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE, "%s",
                    why != NULL ? g_strchomp(why) : "not a libpq connection string");
        PQfreemem(why);
        return false;
    }
    bool has_password = false;
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        has_password = has_password || (strcmp(o->keyword, "password") == 0 && o->val != NULL);
    PQconninfoFree(opts);
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

/* Every key of @group is one of @known (@n names). */
static bool check_keys(fbl_config *c, GKeyFile *kf, const char *group, const char *const *known,
                       size_t n, GError **error)
{
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(ks[i], known[j]) == 0;
        if (!found)
            return fail(error, FBL_CONFIG_ERROR_KEY, c, group, ks[i], "unknown key");
    }
    return true;
}

/* The trimmed value of @key in @group, or NULL when it is not there. */
static char *get_trimmed(GKeyFile *kf, const char *group, const char *key)
{
    char *v = g_key_file_get_string(kf, group, key, NULL);
    return v != NULL ? g_strstrip(v) : NULL;
}

static bool load_mailbox(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    const char *name = group + strlen("mailbox:");
    if (*name == '\0')
        return fail(error, FBL_CONFIG_ERROR_KEY, c, group, NULL, "a mailbox needs a name");
    if (!check_keys(c, kf, group, mailbox_keys, G_N_ELEMENTS(mailbox_keys), error))
        return false;
    fbl_mailbox_config *m = g_new0(fbl_mailbox_config, 1);
    m->name = g_strdup(name);
    g_ptr_array_add(c->mailboxes, m);
    m->path = get_trimmed(kf, group, "path");
    if (m->path == NULL || *m->path == '\0')
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "path", "required");
    g_autofree char *ft = get_trimmed(kf, group, "feedback_type");
    m->feedback_type = FBL_FEEDBACK_ABUSE;
    if (ft != NULL && !fbl_feedback_type_from_string(ft, &m->feedback_type))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "feedback_type",
                    "expected abuse, fraud, virus, other, not-spam, opt-out or auth-failure");
    g_autofree char *raw = get_trimmed(kf, group, "raw");
    if (raw != NULL && !parse_bool(raw, &m->raw))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "raw", "expected true or false");
    return true;
}

/*
 * An http(s) URL must parse and name a host, here where the error can name
 * the file and the line; the forwarder judges the rest (the scheme, plain
 * http with a secret).
 */
static bool check_vendor_url(fbl_config *c, const char *group, const char *url, GError **error)
{
    if (url == NULL || (!g_str_has_prefix(url, "http://") && !g_str_has_prefix(url, "https://")))
        return true;
    /* GUri takes "https://exa mple.net/"; libcurl would refuse it at the first request. */
    for (const char *p = url; *p != '\0'; p++) {
        if ((unsigned char) *p <= ' ' || *p == 0x7f)
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "url",
                        "holds a blank or a control character (a blank is %20 in a URL)");
    }
    g_autoptr(GError) local = NULL;
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, &local);
    if (uri == NULL)
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "url", local->message);
    const char *host = g_uri_get_host(uri);
    if (host == NULL || *host == '\0')
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, "url", "the URL names no host");
    return true;
}

static bool load_vendor(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    if (group[strlen("vendor:")] == '\0')
        return fail(error, FBL_CONFIG_ERROR_KEY, c, group, NULL, "a vendor needs a name");
    const char *names[G_N_ELEMENTS(vendor_docs)];
    for (size_t i = 0; i < G_N_ELEMENTS(vendor_docs); i++)
        names[i] = vendor_docs[i].key;
    if (!check_keys(c, kf, group, names, G_N_ELEMENTS(names), error))
        return false;
    fbl_vendor_config *v = g_new0(fbl_vendor_config, 1);
    v->name = g_strdup(group + strlen("vendor:"));
    v->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_ptr_array_add(c->vendors, v);
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++)
        g_hash_table_insert(v->keys, g_strdup(ks[i]), get_trimmed(kf, group, ks[i]));
    return check_vendor_url(c, group, g_hash_table_lookup(v->keys, "url"), error);
}

static bool load_group(fbl_config *c, GKeyFile *kf, const char *group, GError **error)
{
    if (g_str_has_prefix(group, "mailbox:"))
        return load_mailbox(c, kf, group, error);
    if (g_str_has_prefix(group, "vendor:"))
        return load_vendor(c, kf, group, error);
    if (!known_group(group))
        return fail(error, FBL_CONFIG_ERROR_KEY, c, group, NULL, "unknown group");
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++) {
        const key_def *k = find_key(group, ks[i]);
        if (k == NULL)
            return fail(error, FBL_CONFIG_ERROR_KEY, c, group, ks[i], "unknown key");
        g_autofree char *v = get_trimmed(kf, group, ks[i]);
        if (v == NULL) /* GKeyFile refused its escapes */
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, group, ks[i],
                        "unreadable value (a '\\' starts an escape: \\\\ \\s \\t \\n \\r)");
        if (!set_value(c, k, v, error))
            return false;
    }
    return true;
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
}

void fbl_config_add_mailbox(fbl_config *c, const char *path)
{
    fbl_mailbox_config *m = g_new0(fbl_mailbox_config, 1);
    g_autofree char *trimmed = g_strdup(path);
    size_t n = strlen(trimmed);
    while (n > 1 && trimmed[n - 1] == '/')
        trimmed[--n] = '\0';
    m->name = g_path_get_basename(trimmed);
    m->path = g_strdup(path);
    m->feedback_type = FBL_FEEDBACK_ABUSE;
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
        if (!check_maildir(c, g_ptr_array_index(c->mailboxes, i), error))
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

/* @n in the largest unit that states it exactly: 10MiB, 128KiB, 1000B. */
static void print_bytes(GString *out, guint64 n)
{
    static const struct {
        const char *suffix;
        guint64 mult;
    } units[] = {{"GiB", GIB}, {"MiB", MIB}, {"KiB", 1024}};
    for (size_t i = 0; n > 0 && i < G_N_ELEMENTS(units); i++) {
        if (n % units[i].mult == 0) {
            g_string_append_printf(out, "%" G_GUINT64_FORMAT "%s", n / units[i].mult,
                                   units[i].suffix);
            return;
        }
    }
    g_string_append_printf(out, "%" G_GUINT64_FORMAT "B", n);
}

/* @ms likewise: 1h, 10m, 30s, 200ms. */
static void print_ms(GString *out, guint64 ms)
{
    static const struct {
        const char *suffix;
        guint64 mult;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; ms > 0 && i < G_N_ELEMENTS(units); i++) {
        if (ms % units[i].mult == 0) {
            g_string_append_printf(out, "%" G_GUINT64_FORMAT "%s", ms / units[i].mult,
                                   units[i].suffix);
            return;
        }
    }
    g_string_append_printf(out, "%" G_GUINT64_FORMAT "ms", ms);
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

static void print_value(const fbl_config *c, const key_def *k, GString *out)
{
    const void *slot = (const char *) c + k->offset;
    switch (k->type) {
    case T_STRING:
    case T_PATH:
    case T_LISTEN:
        print_text(out, *(char *const *) slot);
        break;
    case T_STRV:
    case T_NETS: {
        const GStrv v = *(const GStrv *) slot;
        for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
            g_string_append(out, i > 0 ? ", " : "");
            print_text(out, v[i]);
        }
        break;
    }
    case T_BOOL:
        g_string_append(out, *(const bool *) slot ? "true" : "false");
        break;
    case T_LOGLEVEL:
        g_string_append(out, fbl_log_level_to_string(*(const GLogLevelFlags *) slot));
        break;
    case T_UINT:
        g_string_append_printf(out, "%u", *(const unsigned *) slot);
        break;
    case T_BYTES:
        print_bytes(out, *(const size_t *) slot);
        break;
    case T_MS:
        print_ms(out, *(const unsigned *) slot);
        break;
    case T_DAYS:
        g_string_append_printf(out, "%ud", *(const unsigned *) slot);
        break;
    }
}

/* "key = value", and "  # default" when it is the default's text. */
static void print_line(GString *out, const char *key, const char *value, const char *def)
{
    g_string_append_printf(out, "%s = %s%s\n", key, value,
                           def != NULL && strcmp(value, def) == 0 ? "  # default" : "");
}

static void print_fixed(const fbl_config *c, GString *out)
{
    g_autoptr(fbl_config) defaults = config_new();
    const char *group = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const key_def *k = &keys[i];
        if (group == NULL || strcmp(group, k->group) != 0) {
            g_string_append_printf(out, "\n[%s]\n", k->group);
            group = k->group;
        }
        g_autoptr(GString) now = g_string_new(NULL);
        g_autoptr(GString) def = g_string_new(NULL);
        print_value(c, k, now);
        print_value(defaults, k, def);
        print_line(out, k->key, now->str, def->str);
    }
}

static void print_mailboxes(const fbl_config *c, GString *out)
{
    if (c->mailboxes->len == 0)
        g_string_append(out, "\n# No mailbox is configured. One group per Maildir:\n"
                             "#[mailbox:NAME]\n"
                             "#path =   # required\n"
                             "#feedback_type = abuse  # default\n"
                             "#raw = false  # default\n");
    for (guint i = 0; i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        g_autoptr(GString) path = g_string_new(NULL);
        print_text(path, m->path);
        g_string_append_printf(out, "\n[mailbox:%s]\n", m->name);
        print_line(out, "path", path->str, NULL);
        print_line(out, "feedback_type", fbl_feedback_type_to_string(m->feedback_type), "abuse");
        print_line(out, "raw", m->raw ? "true" : "false", "false");
    }
}

/* The default of vendor key @d for @type: NULL when the key is not for that type, "" when it
 * has none; for another type, the default of the type that has one. */
static const char *vendor_default(const struct vendor_doc *d, const char *type)
{
    if (g_strcmp0(type, "http-json") == 0)
        return d->http;
    if (g_strcmp0(type, "rspamd") == 0)
        return d->rspamd;
    return d->http != NULL ? d->http : d->rspamd;
}

/* "#key = default  # what it is", commented out: what the key would be, not what it is. */
static void print_commented(GString *out, const struct vendor_doc *d, const char *def,
                            const char *note)
{
    bool required = strcmp(d->key, "type") == 0 || strcmp(d->key, "url") == 0;
    const char *what = *def != '\0' ? "default" : required ? "required" : NULL;
    g_string_append_printf(out, "#%s =%s%s", d->key, *def != '\0' ? " " : "", def);
    if (what != NULL || *note != '\0')
        g_string_append_printf(out, "  # %s%s%s", what != NULL ? what : "",
                               what != NULL && *note != '\0' ? "; " : "", note);
    g_string_append_c(out, '\n');
}

/* A vendor key left unset: its default when it has one for @type, else commented out. */
static void print_vendor_unset(GString *out, const struct vendor_doc *d, const char *type)
{
    bool known = g_strcmp0(type, "http-json") == 0 || g_strcmp0(type, "rspamd") == 0;
    const char *def = vendor_default(d, type);
    if (def == NULL)
        g_string_append_printf(out, "#%s =   # only for type %s\n", d->key,
                               d->http != NULL ? "http-json" : "rspamd");
    else if (*def == '\0' || !known)
        print_commented(out, d, def, "");
    else
        print_line(out, d->key, def, def);
}

/* No vendor configured: a commented-out group with every key. */
static void print_vendor_example(GString *out)
{
    g_string_append(out, "\n# No vendor is configured. One group per vendor; its keys, with "
                         "the defaults\n# of type http-json (rspamd's where they differ):\n"
                         "#[vendor:NAME]\n");
    for (size_t i = 0; i < G_N_ELEMENTS(vendor_docs); i++) {
        const struct vendor_doc *d = &vendor_docs[i];
        g_autofree char *note = NULL;
        if (d->http == NULL)
            note = g_strdup("rspamd only");
        else if (d->rspamd == NULL)
            note = g_strdup("http-json only");
        else if (strcmp(d->http, d->rspamd) != 0)
            note = g_strdup_printf("rspamd: %s", d->rspamd);
        print_commented(out, d, d->http != NULL ? d->http : d->rspamd, note != NULL ? note : "");
    }
}

static void print_vendors(const fbl_config *c, GString *out)
{
    if (c->vendors->len == 0)
        print_vendor_example(out);
    for (guint i = 0; i < c->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(c->vendors, i);
        const char *type = g_hash_table_lookup(v->keys, "type");
        g_string_append_printf(out, "\n[vendor:%s]\n", v->name);
        for (size_t j = 0; j < G_N_ELEMENTS(vendor_docs); j++) {
            const char *value = g_hash_table_lookup(v->keys, vendor_docs[j].key);
            if (value == NULL) {
                print_vendor_unset(out, &vendor_docs[j], type);
                continue;
            }
            g_autoptr(GString) text = g_string_new(NULL);
            print_text(text, value);
            print_line(out, vendor_docs[j].key, text->str, vendor_default(&vendor_docs[j], type));
        }
    }
}

void fbl_config_print(const fbl_config *c, const char *command, GString *out)
{
    g_string_append_printf(out,
                           "# The configuration fbl %s runs with (%s), flags included.\n"
                           "# \"# default\" marks a value left at its default. This loads as "
                           "a configuration file.\n",
                           command, c->file != NULL ? c->file : "no file: built-in defaults");
    print_fixed(c, out);
    print_mailboxes(c, out);
    print_vendors(c, out);
}

/* ---- --print-config-table --------------------------------------------------------- */

/* What the table of fixed keys says about the keys of [mailbox:NAME]. */
static const struct {
    const char *key;
    key_type type;
    const char *def;
    const char *help;
} mailbox_docs[] = {
    {"path", T_PATH, "", "the Maildir (required)"},
    {"feedback_type", T_STRING, "abuse",
     "when a mail does not say: abuse, fraud, virus, other, not-spam, opt-out, auth-failure"},
    {"raw", T_BOOL, "false", "every mail is the spam itself, not a report"},
};

static void print_row(GString *out, const char *group, const char *key, const char *type,
                      const char *def, const char *range, const char *help)
{
    g_string_append_printf(out, "%s\t%s\t%s\t%s\t%s\t%s\n", group, key, type, def, range, help);
}

void fbl_config_print_table(GString *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const key_def *k = &keys[i];
        g_autofree char *range = NULL;
        if (k->type == T_UINT || k->type == T_BYTES || k->type == T_MS || k->type == T_DAYS)
            range = g_strdup_printf("%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT, k->min, k->max);
        print_row(out, k->group, k->key, type_names[k->type], k->def, range ? range : "", k->help);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(mailbox_keys); i++) {
        size_t d = 0;
        while (d < G_N_ELEMENTS(mailbox_docs) && strcmp(mailbox_docs[d].key, mailbox_keys[i]) != 0)
            d++;
        if (d == G_N_ELEMENTS(mailbox_docs))
            print_row(out, "mailbox:NAME", mailbox_keys[i], "?", "", "", "undocumented");
        else
            print_row(out, "mailbox:NAME", mailbox_keys[i], type_names[mailbox_docs[d].type],
                      mailbox_docs[d].def, "", mailbox_docs[d].help);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(vendor_docs); i++)
        print_row(out, "vendor:NAME", vendor_docs[i].key, "vendor", "", "",
                  "checked by the forwarder (see fbl.conf(5))");
}
