/* config.c - fbl.conf, table-driven (see config.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/config.h"

#include <stdarg.h>
#include <string.h>

#include <libpq-fe.h>

#include "fbl/log.h"
#include "fbl/metrics.h"

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
} key_type;

/* The unit of each type, as fbl.conf.example and fbl.conf(5) name it. */
static const char *const type_names[] = {
    [T_STRING] = "string",  [T_STRV] = "list",    [T_UINT] = "number",    [T_BYTES] = "size",
    [T_MS] = "duration",    [T_BOOL] = "boolean", [T_LOGLEVEL] = "level", [T_PATH] = "path",
    [T_LISTEN] = "address", [T_DAYS] = "days",
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

/* Every fixed key. fbl.conf.example lists the same keys; a test keeps them in step. */
static const key_def keys[] = {
    {"postgres", "conninfo", T_STRING, OFF(pg_conninfo), "dbname=fbl", 0, 0,
     "libpq connection string or URI"},
    {"limits", "max_mail_bytes", T_BYTES, OFF(max_mail_bytes), "10MiB", 1024, 1024 * MIB,
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
    {"parse", "trusted_networks", T_STRV, OFF(trusted_networks), "", 0, 0,
     "our relays' networks, skipped when looking for the source IP"},
    {"parse", "trusted_hosts", T_STRV, OFF(trusted_hosts), "", 0, 0,
     "domains whose hosts hand mail among themselves (e.g. prod.outlook.com)"},
    {"parse", "authserv_id", T_STRING, OFF(authserv_id), "", 0, 0,
     "our MTA's Authentication-Results id; sets reporter.verified"},
    {"watch", "connect", T_STRV, OFF(watch_connect), "ipc:///run/fbl/sink.sock", 0, 0,
     "sink endpoints the watcher sends to"},
    {"watch", "window", T_UINT, OFF(watch_window), "128", 1, 100000,
     "mails sent and not yet acknowledged, at most"},
    {"watch", "window_bytes", T_BYTES, OFF(watch_window_bytes), "8MiB", 1024, 64 * 1024 * MIB,
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
    {"sink", "batch_max_bytes", T_BYTES, OFF(sink_batch_max_bytes), "32MiB", 1024, 16 * 1024 * MIB,
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
/* [vendor:NAME]: the forwarder checks the values (fbl/forward_loop.c documents them). */
static const char *const vendor_keys[] = {"type",
                                          "url",
                                          "token_file",
                                          "password_file",
                                          "ca_file",
                                          "batch_size",
                                          "batch_bytes",
                                          "parallel",
                                          "timeout",
                                          "max_attempts",
                                          "retry_max_wait",
                                          "redact",
                                          "redact_key_file",
                                          "include_raw",
                                          "learn",
                                          "fuzzy_flag",
                                          "fuzzy_weight",
                                          "allow_plain_http",
                                          "allow_insecure_file_modes"};

/* The line of "[group]" and, when @key is set, of "key =" inside it; 0 if unknown. */
static unsigned find_line(const char *text, const char *group, const char *key)
{
    if (text == NULL)
        return 0;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    bool in_group = false;
    for (unsigned i = 0; lines[i] != NULL; i++) {
        char *l = g_strstrip(lines[i]);
        if (l[0] == '[') {
            g_autofree char *want = g_strdup_printf("[%s]", group);
            in_group = strcmp(l, want) == 0;
            if (in_group && key == NULL)
                return i + 1;
        } else if (in_group && key != NULL && g_str_has_prefix(l, key)) {
            const char *rest = l + strlen(key);
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (*rest == '=')
                return i + 1;
        }
    }
    return 0;
}

static bool fail(GError **error, fbl_config_error code, const fbl_config *c, const char *text,
                 const char *group, const char *key, const char *why)
{
    unsigned line = find_line(text, group, key);
    g_set_error(error, FBL_CONFIG_ERROR, code, "%s:%u: [%s]%s%s: %s",
                c->file != NULL ? c->file : "(defaults)", line, group, key ? " " : "",
                key ? key : "", why);
    return false;
}

/* "10MiB", "64 KiB", "1G", "4096" -> bytes */
static bool parse_bytes(const char *v, guint64 *out)
{
    static const struct {
        const char *suffix;
        guint64 mult;
    } units[] = {{"KiB", 1024}, {"MiB", MIB}, {"GiB", 1024 * MIB},
                 {"K", 1024},   {"M", MIB},   {"G", 1024 * MIB},
                 {"B", 1},      {"", 1}};
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

/* ADDRESS:PORT, or empty (off). */
static bool check_listen(const fbl_config *c, const key_def *k, const char *v, GError **error,
                         const char *text)
{
    g_autoptr(GError) local = NULL;
    if (*v == '\0' || fbl_metrics_parse_listen(v, NULL, &local))
        return true;
    return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key, local->message);
}

static bool set_value(fbl_config *c, const key_def *k, const char *v, GError **error,
                      const char *text)
{
    void *slot = (char *) c + k->offset;
    guint64 n = 0;
    switch (k->type) {
    case T_LISTEN:
        if (!check_listen(c, k, v, error, text))
            return false;
        /* fall through */
    case T_STRING:
    case T_PATH:
        g_free(*(char **) slot);
        *(char **) slot = *v != '\0' ? g_strdup(v) : NULL;
        return true;
    case T_STRV: {
        g_strfreev(*(GStrv *) slot);
        g_auto(GStrv) parts = g_strsplit_set(v, ", \t", -1);
        GPtrArray *a = g_ptr_array_new();
        for (size_t i = 0; parts[i] != NULL; i++) {
            if (*parts[i] != '\0')
                g_ptr_array_add(a, g_strdup(parts[i]));
        }
        g_ptr_array_add(a, NULL);
        *(GStrv *) slot = (GStrv) g_ptr_array_free(a, FALSE);
        return true;
    }
    case T_BOOL:
        if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "yes") == 0)
            *(bool *) slot = true;
        else if (g_ascii_strcasecmp(v, "false") == 0 || g_ascii_strcasecmp(v, "no") == 0)
            *(bool *) slot = false;
        else
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key,
                        "expected true or false");
        return true;
    case T_LOGLEVEL:
        if (!fbl_log_level_from_string(v, (GLogLevelFlags *) slot))
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key,
                        "expected debug, info, notice, warning or error");
        return true;
    case T_UINT:
        if (!g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT64, &n, NULL))
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key,
                        "expected a whole number");
        break;
    case T_BYTES:
        if (!parse_bytes(v, &n))
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key,
                        "expected a size: a number with B, KiB, MiB or GiB");
        break;
    case T_MS:
        if (!parse_ms(v, &n))
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key,
                        "expected a duration: a number with ms, s, m or h");
        break;
    case T_DAYS:
        if (!parse_days(v, &n))
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key,
                        "expected a number of days: 180d, 26w or 180");
        break;
    }
    if (n < k->min || n > k->max) {
        g_autofree char *why = g_strdup_printf(
            "%s is out of range [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]", v, k->min, k->max);
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, k->group, k->key, why);
    }
    if (k->type == T_BYTES)
        *(size_t *) slot = (size_t) n;
    else
        *(unsigned *) slot = (unsigned) n;
    return true;
}

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
        gboolean ok = set_value(c, &keys[i], keys[i].def, NULL, NULL);
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
        else if (keys[i].type == T_STRV)
            g_strfreev(*(GStrv *) slot);
    }
    g_ptr_array_unref(c->mailboxes);
    g_ptr_array_unref(c->vendors);
    g_free(c->file);
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

static bool load_mailbox(fbl_config *c, GKeyFile *kf, const char *group, const char *text,
                         GError **error)
{
    const char *name = group + strlen("mailbox:");
    if (*name == '\0')
        return fail(error, FBL_CONFIG_ERROR_KEY, c, text, group, NULL, "a mailbox needs a name");
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++) {
        bool known = false;
        for (size_t j = 0; j < G_N_ELEMENTS(mailbox_keys); j++)
            known = known || strcmp(ks[i], mailbox_keys[j]) == 0;
        if (!known)
            return fail(error, FBL_CONFIG_ERROR_KEY, c, text, group, ks[i], "unknown key");
    }
    fbl_mailbox_config *m = g_new0(fbl_mailbox_config, 1);
    m->name = g_strdup(name);
    g_ptr_array_add(c->mailboxes, m);
    m->path = g_key_file_get_string(kf, group, "path", NULL);
    if (m->path == NULL || *m->path == '\0')
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, group, "path", "required");
    g_autofree char *ft = g_key_file_get_string(kf, group, "feedback_type", NULL);
    m->feedback_type = FBL_FEEDBACK_ABUSE;
    if (ft != NULL && !fbl_feedback_type_from_string(g_strstrip(ft), &m->feedback_type))
        return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, group, "feedback_type",
                    "expected abuse, fraud, virus, other, not-spam, opt-out or auth-failure");
    g_autofree char *raw = g_key_file_get_string(kf, group, "raw", NULL);
    if (raw != NULL) {
        g_strstrip(raw);
        if (strcmp(raw, "true") != 0 && strcmp(raw, "false") != 0)
            return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, group, "raw",
                        "expected true or false");
        m->raw = strcmp(raw, "true") == 0;
    }
    return true;
}

static bool load_vendor(fbl_config *c, GKeyFile *kf, const char *group, const char *text,
                        GError **error)
{
    if (group[strlen("vendor:")] == '\0')
        return fail(error, FBL_CONFIG_ERROR_KEY, c, text, group, NULL, "a vendor needs a name");
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++) {
        bool known = false;
        for (size_t j = 0; j < G_N_ELEMENTS(vendor_keys); j++)
            known = known || strcmp(ks[i], vendor_keys[j]) == 0;
        if (!known)
            return fail(error, FBL_CONFIG_ERROR_KEY, c, text, group, ks[i], "unknown key");
    }
    fbl_vendor_config *v = g_new0(fbl_vendor_config, 1);
    v->name = g_strdup(group + strlen("vendor:"));
    v->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++)
        g_hash_table_insert(v->keys, g_strdup(ks[i]),
                            g_key_file_get_string(kf, group, ks[i], NULL));
    g_ptr_array_add(c->vendors, v);
    return true;
}

static bool load_group(fbl_config *c, GKeyFile *kf, const char *group, const char *text,
                       GError **error)
{
    if (g_str_has_prefix(group, "mailbox:"))
        return load_mailbox(c, kf, group, text, error);
    if (g_str_has_prefix(group, "vendor:"))
        return load_vendor(c, kf, group, text, error);
    if (!known_group(group))
        return fail(error, FBL_CONFIG_ERROR_KEY, c, text, group, NULL, "unknown group");
    g_auto(GStrv) ks = g_key_file_get_keys(kf, group, NULL, NULL);
    for (size_t i = 0; ks != NULL && ks[i] != NULL; i++) {
        const key_def *k = find_key(group, ks[i]);
        if (k == NULL)
            return fail(error, FBL_CONFIG_ERROR_KEY, c, text, group, ks[i], "unknown key");
        g_autofree char *v = g_key_file_get_string(kf, group, ks[i], NULL);
        if (v == NULL || !set_value(c, k, g_strstrip(v), error, text))
            return v == NULL ? fail(error, FBL_CONFIG_ERROR_VALUE, c, text, group, ks[i],
                                    "unreadable value")
                             : false;
    }
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
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(path, &text, NULL, &local)) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_FILE, "%s", local->message);
        return NULL;
    }
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, text, (gsize) -1, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_FILE, "%s: %s", path, local->message);
        return NULL;
    }
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (size_t i = 0; groups[i] != NULL; i++) {
        if (!load_group(c, kf, groups[i], text, error))
            return NULL;
    }
    g_autoptr(GError) bad = NULL;
    if (!fbl_config_check_conninfo(c->pg_conninfo, &bad)) {
        fail(error, FBL_CONFIG_ERROR_VALUE, c, text, "postgres", "conninfo", bad->message);
        return NULL;
    }
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

static void print_value(const fbl_config *c, const key_def *k, GString *out)
{
    const void *slot = (const char *) c + k->offset;
    switch (k->type) {
    case T_STRING:
    case T_PATH:
    case T_LISTEN:
        g_string_append(out, *(char *const *) slot ? *(char *const *) slot : "");
        break;
    case T_STRV: {
        const GStrv v = *(const GStrv *) slot;
        for (size_t i = 0; v != NULL && v[i] != NULL; i++)
            g_string_append_printf(out, "%s%s", i ? ", " : "", v[i]);
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
        g_string_append_printf(out, "%zuB", *(const size_t *) slot);
        break;
    case T_MS:
        g_string_append_printf(out, "%ums", *(const unsigned *) slot);
        break;
    case T_DAYS:
        g_string_append_printf(out, "%ud", *(const unsigned *) slot);
        break;
    }
}

void fbl_config_print(const fbl_config *c, GString *out)
{
    g_autoptr(fbl_config) defaults = config_new();
    const char *group = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const key_def *k = &keys[i];
        if (group == NULL || strcmp(group, k->group) != 0) {
            g_string_append_printf(out, "%s[%s]\n", group ? "\n" : "", k->group);
            group = k->group;
        }
        GString *now = g_string_new(NULL), *def = g_string_new(NULL);
        print_value(c, k, now);
        print_value(defaults, k, def);
        g_string_append_printf(out, "%s = %s%s\n", k->key, now->str,
                               strcmp(now->str, def->str) == 0 ? "  # default" : "");
        g_string_free(now, TRUE);
        g_string_free(def, TRUE);
    }
    for (guint i = 0; i < c->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(c->mailboxes, i);
        g_string_append_printf(out, "\n[mailbox:%s]\npath = %s\nfeedback_type = %s\nraw = %s\n",
                               m->name, m->path, fbl_feedback_type_to_string(m->feedback_type),
                               m->raw ? "true" : "false");
    }
    for (guint i = 0; i < c->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(c->vendors, i);
        g_string_append_printf(out, "\n[vendor:%s]\n", v->name);
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, v->keys);
        while (g_hash_table_iter_next(&it, &key, &value))
            g_string_append_printf(out, "%s = %s\n", (char *) key, (char *) value);
    }
}

const char **fbl_config_vendor_names(const fbl_config *c)
{
    const char **names = g_new0(const char *, c->vendors->len + 1);
    for (guint i = 0; i < c->vendors->len; i++)
        names[i] = ((const fbl_vendor_config *) g_ptr_array_index(c->vendors, i))->name;
    return names;
}

bool fbl_config_error_at(const fbl_config *c, const char *group, const char *key, GError **error,
                         const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *why = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_autofree char *text = NULL;
    if (c->file != NULL && !g_file_get_contents(c->file, &text, NULL, NULL))
        text = NULL;
    return fail(error, FBL_CONFIG_ERROR_VALUE, c, text, group, key, why);
}

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
    for (size_t i = 0; i < G_N_ELEMENTS(vendor_keys); i++)
        print_row(out, "vendor:NAME", vendor_keys[i], "vendor", "", "",
                  "checked by the forwarder (see fbl.conf(5))");
}
