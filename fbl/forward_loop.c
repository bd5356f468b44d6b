/*
 * forward_loop.c - the vendor feed uploader (see forward_loop.h): one thread
 * per [vendor:NAME], each with its own PostgreSQL connection (sink/outbox.h)
 * and its own libcurl multi handle (sink/vendor.h).
 *
 * A thread's turn: claim the vendor's due pending rows (a transaction, rows
 * locked FOR UPDATE SKIP LOCKED), deliver them, mark each row and commit.
 * Between turns it waits for the sink's NOTIFY fbl_outbox (or IDLE_POLL_MS,
 * for rows whose retry time comes), or for the pause the vendor asked for
 * (Retry-After, or backoff after failures). Ingestion never waits for it: the
 * sink only inserts outbox rows.
 *
 * [vendor:NAME] keys (config.c checks the names, this file the values):
 *   type            http-json | rspamd                              (required)
 *   url             http-json: the batch endpoint; rspamd: the controller's
 *                   base URL, e.g. http://127.0.0.1:11334          (required)
 *   token_file      http-json: file holding the bearer token (optional)
 *   password_file   rspamd: file holding the controller password (optional)
 *   ca_file         CA bundle to verify the vendor's TLS certificate with
 *                   (default: the system's); verification is always on
 *   batch_size      http-json: reports per request (100); rspamd: reports per
 *                   transaction (32), one request each          [1, 10000]
 *   parallel        requests in flight (4)                        [1, 64]
 *   batch_bytes     raw mail read per transaction, at most (32MiB), when the
 *                   vendor gets the reported message            [1MiB, 1GiB]
 *   timeout         one request, connection included (10s)       [100ms, 10m]
 *   max_attempts    failed attempts before a report is dead-lettered (10)
 *                                                                 [1, 1000]
 *   retry_max_wait  the longest wait between retries (10m)         [1s, 24h]
 *   redact          fields replaced by keyed pseudonyms (sink/redact.h):
 *                   reporter, recipients, reporter.address, … (none)
 *   redact_key_file file holding the HMAC key, 16 bytes or more (required
 *                   with redact)
 *   include_raw     http-json: add the reported message, base64 (false)
 *   allow_plain_http  let token_file or password_file go to a non-loopback
 *                   host over plain http:// (false: refused at start-up)
 *   allow_insecure_file_modes  read this vendor's secret files even when
 *                   other users may read them (false: refused; secret.h)
 *   learn           rspamd: /learnspam and /learnham (true)
 *   fuzzy_flag      rspamd: also /fuzzyadd spam with this flag (0: no)
 *   fuzzy_weight    rspamd: its weight (1)
 * Secrets are read once at start-up, before any thread runs.
 *
 * A vendor's answer may echo what we sent, recipients and all: logged above
 * debug it goes through fbl_redact_mask_addresses(); the whole answer is
 * logged at debug and kept in the outbox row's last_error, which only the
 * database's owner and fbl_writer can read (never fbl_analyst).
 *
 * A report's fate: delivered -> sent; a failed attempt (5xx, timeout, no
 * connection) -> retried after 1 s, 2 s, 4 s … (capped at retry_max_wait,
 * with jitter; a 503's Retry-After wins), and dead-lettered at max_attempts;
 * 429 -> retried after its Retry-After, not counted as an attempt; refused
 * (400/413/422 after narrowing the batch down, other 4xx) -> dead-lettered
 * with the vendor's answer in last_error; 401/403 -> the vendor's thread
 * stops sending and says so at level error every 5 minutes, its reports stay
 * pending (fix the secret and restart). `fbl forward --retry-dead` makes dead
 * letters pending again.
 */
#define G_LOG_DOMAIN "fbl-forward"
#include "fbl/forward_loop.h"

#include <string.h>
#include <sysexits.h>

#include <curl/curl.h>
#include <gio/gio.h>

#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/metrics.h"
#include "fbl/secret.h"
#include "fbl/timearg.h"
#include "sink/outbox.h"
#include "sink/redact.h"
#include "sink/vendor.h"

#define IDLE_POLL_MS        500
#define PAUSE_STEP_MS       200
#define ROW_RETRY_FIRST_MS  1000
#define PG_RETRY_INITIAL_MS 250
#define PG_RETRY_MAX_MS     30000
#define AUTH_REMIND_MS      ((int64_t) 5 * 60 * 1000)
#define GAUGES_EVERY_MS     10000
#define MIB                 (1024ull * 1024ull)

#ifndef FBL_VERSION
#define FBL_VERSION "dev"
#endif

/* ---- configuration ------------------------------------------------------------ */

/* One vendor's settings, owned. */
typedef struct vendor_conf {
    char *name;
    fbl_vendor_type type;
    char *url, *ca_file, *secret;
    unsigned batch_size, parallel, max_attempts, timeout_ms, retry_max_ms;
    size_t batch_bytes;
    bool include_raw, learn;
    unsigned fuzzy_flag, fuzzy_weight;
    fbl_redact *redact;
} vendor_conf;

static void vendor_conf_clear(vendor_conf *c)
{
    g_free(c->name);
    g_free(c->url);
    g_free(c->ca_file);
    if (c->secret != NULL)
        explicit_bzero(c->secret, strlen(c->secret));
    g_free(c->secret);
    fbl_redact_free(c->redact);
}

typedef struct reader {
    const fbl_config *config;
    const fbl_vendor_config *v;
    GError **error;
} reader;

static bool bad(const reader *r, const char *key, const char *why)
{
    g_autofree char *group = g_strdup_printf("vendor:%s", r->v->name);
    return fbl_config_error_at(r->config, group, key, r->error, "%s", why);
}

static const char *get(const reader *r, const char *key)
{
    const char *s = g_hash_table_lookup(r->v->keys, key);
    return s != NULL && *s != '\0' ? s : NULL;
}

/* "123" followed by one of @units (suffix, factor); "" is the first unit's factor when listed. */
typedef struct unit {
    const char *suffix;
    guint64 factor;
} unit;

static bool get_number(const reader *r, const char *key, const char *def, const unit *units,
                       size_t n_units, guint64 min, guint64 max, guint64 *out)
{
    const char *v = get(r, key);
    g_autofree char *s = g_strstrip(g_strdup(v != NULL ? v : def));
    char *end = NULL;
    guint64 n = g_ascii_strtoull(s, &end, 10);
    if (end == s || *s == '-')
        return bad(r, key, "expected a number");
    while (*end == ' ')
        end++;
    bool found = false;
    for (size_t i = 0; i < n_units && !found; i++) {
        if (g_ascii_strcasecmp(end, units[i].suffix) == 0) {
            if (n > G_MAXUINT64 / units[i].factor)
                return bad(r, key, "out of range");
            n *= units[i].factor;
            found = true;
        }
    }
    if (!found)
        return bad(r, key, n_units > 1 ? "bad unit" : "expected a whole number");
    if (n < min || n > max) {
        g_autofree char *why = g_strdup_printf("%s is out of range", s);
        return bad(r, key, why);
    }
    *out = n;
    return true;
}

static bool get_uint(const reader *r, const char *key, const char *def, guint64 min, guint64 max,
                     unsigned *out)
{
    static const unit plain[] = {{"", 1}};
    guint64 n = 0;
    if (!get_number(r, key, def, plain, G_N_ELEMENTS(plain), min, max, &n))
        return false;
    *out = (unsigned) n;
    return true;
}

static bool get_ms(const reader *r, const char *key, const char *def, guint64 min, guint64 max,
                   unsigned *out)
{
    static const unit ms[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1}};
    guint64 n = 0;
    if (!get_number(r, key, def, ms, G_N_ELEMENTS(ms), min, max, &n))
        return false;
    *out = (unsigned) n;
    return true;
}

static bool get_bytes(const reader *r, const char *key, const char *def, guint64 min, guint64 max,
                      size_t *out)
{
    static const unit bytes[] = {{"KiB", 1024}, {"MiB", MIB}, {"GiB", 1024 * MIB},
                                 {"K", 1024},   {"M", MIB},   {"G", 1024 * MIB},
                                 {"B", 1},      {"", 1}};
    guint64 n = 0;
    if (!get_number(r, key, def, bytes, G_N_ELEMENTS(bytes), min, max, &n))
        return false;
    *out = (size_t) n;
    return true;
}

static bool get_bool(const reader *r, const char *key, bool def, bool *out)
{
    const char *v = get(r, key);
    g_autofree char *s = v != NULL ? g_strstrip(g_strdup(v)) : NULL;
    if (s == NULL)
        *out = def;
    else if (g_ascii_strcasecmp(s, "true") == 0 || g_ascii_strcasecmp(s, "yes") == 0)
        *out = true;
    else if (g_ascii_strcasecmp(s, "false") == 0 || g_ascii_strcasecmp(s, "no") == 0)
        *out = false;
    else
        return bad(r, key, "expected true or false");
    return true;
}

/*
 * The secret in the file @key names (secret.h: refused when other users may
 * read it, unless allow_insecure_file_modes = true); NULL when @key is unset.
 */
static bool read_secret(const reader *r, const char *key, const char *what, char **out, size_t *len)
{
    *out = NULL;
    const char *path = get(r, key);
    if (path == NULL)
        return true;
    bool loose = false;
    if (!get_bool(r, "allow_insecure_file_modes", false, &loose))
        return false;
    g_autofree char *p = g_strstrip(g_strdup(path));
    g_autoptr(GError) local = NULL;
    *out = fbl_secret_read_file(p, what, !loose, len, &local);
    if (*out == NULL)
        return bad(r, key, local->message);
    if (loose)
        g_info("vendor=%s %s: mode not checked (allow_insecure_file_modes)", r->v->name, key);
    return true;
}

/* Loopback (localhost, 127.0.0.0/8, ::1): a plain connection that stays on the host. */
static bool host_is_loopback(const char *url)
{
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    const char *host = uri != NULL ? g_uri_get_host(uri) : NULL;
    if (host == NULL || *host == '\0')
        return false;
    if (g_ascii_strcasecmp(host, "localhost") == 0)
        return true;
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
    return addr != NULL && g_inet_address_get_is_loopback(addr);
}

/*
 * A token or password over plain http:// to another host is readable (and
 * reusable) by anyone on the path: refused unless allow_plain_http = true.
 */
static bool check_transport(const reader *r, const vendor_conf *c)
{
    bool plain_ok = false;
    if (!get_bool(r, "allow_plain_http", false, &plain_ok))
        return false;
    if (c->secret == NULL || plain_ok || !g_str_has_prefix(c->url, "http://") ||
        host_is_loopback(c->url))
        return true;
    bool rspamd = c->type == FBL_VENDOR_RSPAMD;
    g_autofree char *why = g_strdup_printf(
        "%s is plain http to another host: the %s of %s would cross the network in clear; use "
        "https://, or set allow_plain_http = true",
        c->url, rspamd ? "password" : "bearer token", rspamd ? "password_file" : "token_file");
    return bad(r, "url", why);
}

static bool read_type(const reader *r, vendor_conf *c)
{
    const char *type = get(r, "type");
    g_autofree char *t = type != NULL ? g_strstrip(g_strdup(type)) : NULL;
    if (t == NULL)
        return bad(r, "type", "required: http-json or rspamd");
    if (!fbl_vendor_type_from_string(t, &c->type))
        return bad(r, "type", "expected http-json or rspamd");
    const char *url = get(r, "url");
    if (url == NULL)
        return bad(r, "url", "required");
    c->url = g_strstrip(g_strdup(url));
    if (!g_str_has_prefix(c->url, "http://") && !g_str_has_prefix(c->url, "https://"))
        return bad(r, "url", "expected an http:// or https:// URL");
    bool http = c->type == FBL_VENDOR_HTTP_JSON;
    static const char *const http_only[] = {"token_file", "include_raw"};
    static const char *const rspamd_only[] = {"password_file", "learn", "fuzzy_flag",
                                              "fuzzy_weight"};
    for (size_t i = 0; http && i < G_N_ELEMENTS(rspamd_only); i++) {
        if (get(r, rspamd_only[i]) != NULL)
            return bad(r, rspamd_only[i], "only for type rspamd");
    }
    for (size_t i = 0; !http && i < G_N_ELEMENTS(http_only); i++) {
        if (get(r, http_only[i]) != NULL)
            return bad(r, http_only[i], "only for type http-json");
    }
    return read_secret(r, http ? "token_file" : "password_file", http ? "token" : "password",
                       &c->secret, NULL) &&
           check_transport(r, c);
}

static bool read_redact(const reader *r, vendor_conf *c)
{
    const char *list = get(r, "redact");
    g_auto(GStrv) parts = g_strsplit_set(list != NULL ? list : "", ", \t", -1);
    g_autoptr(GPtrArray) fields = g_ptr_array_new();
    for (size_t i = 0; parts[i] != NULL; i++) {
        if (*parts[i] != '\0')
            g_ptr_array_add(fields, parts[i]);
    }
    if (fields->len == 0) {
        if (get(r, "redact_key_file") != NULL)
            return bad(r, "redact_key_file", "set, but redact lists no field");
        return true;
    }
    g_ptr_array_add(fields, NULL);
    g_autofree char *key = NULL;
    size_t key_len = 0;
    if (!read_secret(r, "redact_key_file", "redaction key", &key, &key_len))
        return false;
    if (key == NULL)
        return bad(r, "redact_key_file", "required with redact");
    g_autoptr(GError) local = NULL;
    c->redact = fbl_redact_new((const char *const *) fields->pdata, key, key_len, &local);
    explicit_bzero(key, key_len);
    if (c->redact == NULL)
        return bad(r, local->code == FBL_REDACT_ERROR_KEY ? "redact_key_file" : "redact",
                   local->message);
    return true;
}

static bool read_vendor(const fbl_config *config, const fbl_vendor_config *v, vendor_conf *c,
                        GError **error)
{
    reader r = {config, v, error};
    c->name = g_strdup(v->name);
    if (!read_type(&r, c))
        return false;
    bool http = c->type == FBL_VENDOR_HTTP_JSON;
    const char *ca = get(&r, "ca_file");
    if (ca != NULL) {
        c->ca_file = g_strstrip(g_strdup(ca));
        if (!g_file_test(c->ca_file, G_FILE_TEST_IS_REGULAR))
            return bad(&r, "ca_file", "no such file");
    }
    return get_uint(&r, "batch_size", http ? "100" : "32", 1, 10000, &c->batch_size) &&
           get_uint(&r, "parallel", "4", 1, 64, &c->parallel) &&
           get_bytes(&r, "batch_bytes", "32MiB", MIB, 1024 * MIB, &c->batch_bytes) &&
           get_ms(&r, "timeout", "10s", 100, 600000, &c->timeout_ms) &&
           get_uint(&r, "max_attempts", "10", 1, 1000, &c->max_attempts) &&
           get_ms(&r, "retry_max_wait", "10m", 1000, 86400000, &c->retry_max_ms) &&
           get_bool(&r, "include_raw", false, &c->include_raw) &&
           get_bool(&r, "learn", true, &c->learn) &&
           get_uint(&r, "fuzzy_flag", "0", 0, G_MAXINT32, &c->fuzzy_flag) &&
           get_uint(&r, "fuzzy_weight", "1", 1, G_MAXINT32, &c->fuzzy_weight) &&
           read_redact(&r, c) &&
           (http || c->learn || c->fuzzy_flag > 0 ||
            bad(&r, "learn", "false and no fuzzy_flag: nothing would be sent"));
}

/* ---- the loop ------------------------------------------------------------------- */

typedef struct worker {
    const fbl_config *config;
    vendor_conf conf;
    fbl_vendor *vendor;
    fbl_outbox *ob;
    GThread *thread;
    int64_t pause_until;
    unsigned pg_backoff_ms;
    char *stopped; /* why the vendor was stopped (credentials refused), or NULL */
    int64_t remind_at;
    int64_t gauges_at;
    guint64 sent, retried, dead, batches;
} worker;

struct fbl_forward_loop {
    GPtrArray *workers; /* worker * */
};

static void worker_free(worker *w)
{
    fbl_vendor_free(w->vendor);
    fbl_outbox_free(w->ob);
    vendor_conf_clear(&w->conf);
    g_free(w->stopped);
    g_free(w);
}

static bool stopping(void)
{
    return fbl_daemon_stopping();
}

static void count_response(const char *vendor, long http_status)
{
    fbl_metrics_vendor_response(vendor, (int) http_status);
}

fbl_forward_loop *fbl_forward_loop_new(const fbl_config *config, GError **error)
{
    if (config->vendors->len == 0) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_KEY,
                    "%s: no [vendor:NAME] to forward to",
                    config->file != NULL ? config->file : "(defaults)");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE, "curl_global_init failed");
        return NULL;
    }
    fbl_forward_loop *loop = g_new0(fbl_forward_loop, 1);
    loop->workers = g_ptr_array_new_with_free_func((GDestroyNotify) worker_free);
    for (guint i = 0; i < config->vendors->len; i++) {
        worker *w = g_new0(worker, 1);
        w->config = config;
        g_ptr_array_add(loop->workers, w);
        if (!read_vendor(config, g_ptr_array_index(config->vendors, i), &w->conf, error)) {
            fbl_forward_loop_free(loop);
            return NULL;
        }
        const vendor_conf *c = &w->conf;
        fbl_vendor_options o = {
            .name = c->name,
            .type = c->type,
            .url = c->url,
            .secret = c->secret,
            .ca_file = c->ca_file,
            .user_agent = "fbl/" FBL_VERSION,
            .batch_size = c->type == FBL_VENDOR_HTTP_JSON ? c->batch_size : 1,
            .parallel = c->parallel,
            .timeout_ms = c->timeout_ms,
            .retry_max_ms = c->retry_max_ms,
            .include_raw = c->include_raw,
            .learn = c->learn,
            .fuzzy_flag = c->fuzzy_flag,
            .fuzzy_weight = c->fuzzy_weight,
            .redact = c->redact,
            .cancelled = stopping,
            .on_response = count_response,
        };
        g_autoptr(GError) local = NULL;
        w->vendor = fbl_vendor_new(&o, &local);
        if (w->vendor == NULL) {
            g_set_error(error, FBL_CONFIG_ERROR, FBL_CONFIG_ERROR_VALUE, "[vendor:%s] %s", c->name,
                        local->message);
            fbl_forward_loop_free(loop);
            return NULL;
        }
    }
    return loop;
}

void fbl_forward_loop_free(fbl_forward_loop *loop)
{
    if (loop == NULL)
        return;
    g_ptr_array_unref(loop->workers);
    g_free(loop);
    curl_global_cleanup();
}

/* Sleep up to @ms, in steps, until a stop is asked for. */
static void nap(unsigned ms)
{
    int64_t until = fbl_now_ms() + ms;
    while (!fbl_daemon_stopping() && fbl_now_ms() < until)
        g_usleep((gulong) MIN((int64_t) PAUSE_STEP_MS, until - fbl_now_ms()) * 1000);
}

static void pg_failed(worker *w, const char *what, const GError *error)
{
    w->pg_backoff_ms = fbl_backoff_next(w->pg_backoff_ms, PG_RETRY_INITIAL_MS, PG_RETRY_MAX_MS);
    w->pause_until = fbl_now_ms() + w->pg_backoff_ms;
    fbl_metrics_pg_error("forward", fbl_outbox_error_is_transient(error));
    /* A schema not there yet is waited for too: in `fbl run` the sink is migrating it. */
    if (fbl_outbox_error_is_transient(error) ||
        g_error_matches(error, FBL_OUTBOX_ERROR, FBL_OUTBOX_ERROR_SCHEMA))
        g_warning("vendor=%s %s failed (retry in %ums): %s", w->conf.name, what, w->pg_backoff_ms,
                  error->message);
    else
        g_critical("vendor=%s %s failed (retry in %ums): %s", w->conf.name, what, w->pg_backoff_ms,
                   error->message);
}

/* The wait before a row's next attempt after @attempts failed ones: 1 s, 2 s, 4 s … */
static unsigned row_retry_ms(const worker *w, unsigned attempts)
{
    guint64 ms = ROW_RETRY_FIRST_MS;
    for (unsigned i = 1; i < attempts && ms < w->conf.retry_max_ms; i++)
        ms *= 2;
    ms = MIN(ms, (guint64) w->conf.retry_max_ms);
    return (unsigned) (ms - (guint64) g_random_int_range(0, (gint32) (ms / 5) + 1));
}

/*
 * A dead letter, logged: the answer with its addresses masked at warning, whole
 * at debug (the row's last_error keeps it whole too). rid is the mail's id, as
 * on every other line about that mail (fbl(1)); report= names which of its
 * reports (a mail may hold several).
 */
static void log_dead(const worker *w, const fbl_outbox_row *row, const char *what)
{
    g_autofree char *masked = fbl_redact_mask_addresses(row->error);
    fbl_log_event(G_LOG_LEVEL_WARNING, row->mail_id, "vendor_dead", "vendor=%s report=%.12s %s%s",
                  w->conf.name, row->report_id, what, masked);
    fbl_log_event(G_LOG_LEVEL_DEBUG, row->mail_id, "vendor_dead",
                  "vendor=%s report=%.12s answer: %s", w->conf.name, row->report_id, row->error);
}

/* What a delivery outcome does to the row. */
static void decide(worker *w, fbl_outbox_row *row, const fbl_vendor_item *it)
{
    g_clear_pointer(&row->error, g_free);
    unsigned pause = fbl_vendor_get_pause_ms(w->vendor);
    switch (it->outcome) {
    case FBL_VENDOR_SENT:
        row->action = FBL_OUTBOX_SENT;
        row->error = g_strdup(it->answer);
        w->sent++;
        return;
    case FBL_VENDOR_UNSENT:
        row->action = it->retry_after_ms > 0 ? FBL_OUTBOX_WAIT : FBL_OUTBOX_KEEP;
        row->delay_ms = it->retry_after_ms;
        return;
    case FBL_VENDOR_THROTTLED:
        row->action = FBL_OUTBOX_WAIT;
        row->delay_ms = it->retry_after_ms > 0 ? it->retry_after_ms : MAX(pause, 1000u);
        row->error = g_strdup(it->answer);
        return;
    case FBL_VENDOR_RETRY:
        if (row->attempts + 1 >= w->conf.max_attempts) {
            row->action = FBL_OUTBOX_DEAD;
            row->error = g_strdup_printf("gave up after %u attempt%s: %s", row->attempts + 1,
                                         row->attempts > 0 ? "s" : "",
                                         it->answer != NULL ? it->answer : "failed");
            w->dead++;
            log_dead(w, row, "");
            return;
        }
        row->action = FBL_OUTBOX_RETRY;
        row->delay_ms =
            it->retry_after_ms > 0 ? it->retry_after_ms : row_retry_ms(w, row->attempts + 1);
        row->error = g_strdup(it->answer);
        w->retried++;
        return;
    case FBL_VENDOR_REFUSED:
        row->action = FBL_OUTBOX_DEAD;
        row->error = g_strdup(it->answer != NULL ? it->answer : "refused");
        w->dead++;
        log_dead(w, row, "refused: ");
        return;
    }
    row->action = FBL_OUTBOX_KEEP;
}

/* Deliver the claimed rows and decide what becomes of each. */
static void deliver(worker *w, GPtrArray *rows)
{
    fbl_vendor_item *items = g_new0(fbl_vendor_item, rows->len);
    g_autoptr(GPtrArray) sendable = g_ptr_array_new();
    for (guint i = 0; i < rows->len; i++) {
        fbl_outbox_row *row = g_ptr_array_index(rows, i);
        if (row->doc == NULL) {
            row->action = FBL_OUTBOX_DEAD;
            row->error = g_strdup("the report is no longer stored");
            continue;
        }
        fbl_vendor_item *it = &items[sendable->len];
        it->id = row->report_id;
        it->doc = row->doc;
        if (row->mail != NULL)
            it->mail = g_bytes_get_data(row->mail, &it->mail_len);
        g_ptr_array_add(sendable, row);
    }
    if (sendable->len > 0)
        fbl_vendor_send(w->vendor, items, sendable->len);
    for (guint i = 0; i < sendable->len; i++) {
        decide(w, g_ptr_array_index(sendable, i), &items[i]);
        fbl_vendor_item_clear(&items[i]);
    }
    g_free(items);
}

/* The vendor refused our credentials: stop it, loudly (its answer masked, as in log_dead). */
static void stop_vendor(worker *w, const char *why)
{
    g_debug("vendor=%s credentials refused: %s", w->conf.name, why);
    g_free(w->stopped);
    w->stopped = fbl_redact_mask_addresses(why);
    w->remind_at = fbl_now_ms() + AUTH_REMIND_MS;
    g_critical("vendor=%s STOPPED: the vendor refused our credentials (%s); nothing more is "
               "sent to it and its reports stay pending. Check its %s and restart fbl.",
               w->conf.name, w->stopped,
               w->conf.type == FBL_VENDOR_RSPAMD ? "password_file" : "token_file");
}

/* One claim, delivery and commit; false when there was nothing to do. */
static bool turn(worker *w)
{
    g_autoptr(GError) error = NULL;
    if (w->ob == NULL) {
        w->ob = fbl_outbox_new(w->config->pg_conninfo, &error);
        if (w->ob == NULL) {
            pg_failed(w, "connecting to PostgreSQL", error);
            return false;
        }
    }
    bool with_mail = fbl_vendor_wants_mail(w->vendor);
    unsigned max_rows = w->conf.type == FBL_VENDOR_HTTP_JSON ? w->conf.batch_size * w->conf.parallel
                                                             : w->conf.batch_size;
    g_autoptr(GPtrArray) rows = NULL;
    int64_t t0 = fbl_now_ms();
    if (!fbl_outbox_claim(w->ob, w->conf.name, max_rows, w->conf.batch_bytes, with_mail, &rows,
                          &error)) {
        pg_failed(w, "claiming outbox rows", error);
        return false;
    }
    w->pg_backoff_ms = 0;
    if (rows->len == 0)
        return false;
    guint64 sent = w->sent, retried = w->retried, dead = w->dead;
    deliver(w, rows);
    const char *auth = fbl_vendor_auth_failure(w->vendor);
    if (auth != NULL)
        stop_vendor(w, auth);
    if (!fbl_outbox_finish(w->ob, w->conf.name, rows, &error)) {
        /* Delivered, not marked: sent again after the retry (at-least-once). */
        pg_failed(w, "marking outbox rows", error);
        return false;
    }
    w->batches++;
    if (w->sent > sent)
        fbl_metrics_vendor_sent(w->conf.name, (unsigned) (w->sent - sent));
    /* rid: the first row's mail (fbl(1)), report: that row's report. */
    const fbl_outbox_row *first = g_ptr_array_index(rows, 0);
    fbl_log_event(G_LOG_LEVEL_INFO, first->mail_id, "vendor_send",
                  "vendor=%s report=%.12s rows=%u sent=%" G_GUINT64_FORMAT
                  " retry=%" G_GUINT64_FORMAT " dead=%" G_GUINT64_FORMAT " ms=%" G_GINT64_FORMAT,
                  w->conf.name, first->report_id, rows->len, w->sent - sent, w->retried - retried,
                  w->dead - dead, fbl_now_ms() - t0);
    unsigned pause = fbl_vendor_get_pause_ms(w->vendor);
    if (pause > 0) {
        w->pause_until = fbl_now_ms() + pause;
        const fbl_outbox_row *bad_row = NULL;
        for (guint i = 0; i < rows->len && bad_row == NULL; i++) {
            const fbl_outbox_row *r = g_ptr_array_index(rows, i);
            if (r->action != FBL_OUTBOX_SENT && r->error != NULL)
                bad_row = r;
        }
        g_autofree char *masked =
            fbl_redact_mask_addresses(bad_row != NULL ? bad_row->error : "vendor trouble");
        g_warning("vendor=%s pausing %ums: %s", w->conf.name, pause, masked);
    }
    return true;
}

/* The outbox gauges of the metrics endpoint. */
static void publish_gauges(worker *w)
{
    guint64 pending = 0, dead = 0;
    double lag = 0;
    g_autoptr(GError) error = NULL;
    if (fbl_outbox_gauges(w->ob, w->conf.name, &pending, &dead, &lag, &error))
        fbl_metrics_outbox(w->conf.name, pending, dead, lag);
    else
        g_debug("vendor=%s outbox gauges: %s", w->conf.name, error->message);
}

static gpointer worker_main(gpointer data)
{
    worker *w = data;
    g_message("forwarding vendor=%s type=%s url=%s", w->conf.name,
              w->conf.type == FBL_VENDOR_RSPAMD ? "rspamd" : "http-json", w->conf.url);
    while (!fbl_daemon_stopping()) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_FORWARD); /* for the systemd watchdog */
        int64_t now = fbl_now_ms();
        if (w->stopped != NULL) {
            if (now >= w->remind_at) {
                w->remind_at = now + AUTH_REMIND_MS;
                g_critical("vendor=%s is STOPPED since the vendor refused our credentials (%s); "
                           "restart fbl once fixed",
                           w->conf.name, w->stopped);
            }
            nap(1000);
            continue;
        }
        if (now < w->pause_until) {
            nap((unsigned) MIN(w->pause_until - now, (int64_t) PAUSE_STEP_MS));
            continue;
        }
        if (w->ob != NULL && now >= w->gauges_at) {
            w->gauges_at = now + GAUGES_EVERY_MS;
            publish_gauges(w);
        }
        if (!turn(w) && w->ob != NULL && fbl_now_ms() >= w->pause_until)
            (void) fbl_outbox_wait(w->ob, IDLE_POLL_MS);
    }
    g_message("vendor=%s done: batches=%" G_GUINT64_FORMAT " sent=%" G_GUINT64_FORMAT
              " retried=%" G_GUINT64_FORMAT " dead=%" G_GUINT64_FORMAT,
              w->conf.name, w->batches, w->sent, w->retried, w->dead);
    return NULL;
}

bool fbl_forward_loop_run(fbl_forward_loop *loop, GError **error)
{
    (void) error; /* vendor and database trouble is waited out, never fatal */
    for (guint i = 0; i < loop->workers->len; i++) {
        worker *w = g_ptr_array_index(loop->workers, i);
        g_autofree char *name = g_strdup_printf("fwd-%s", w->conf.name);
        w->thread = g_thread_new(name, worker_main, w);
    }
    for (guint i = 0; i < loop->workers->len; i++) {
        worker *w = g_ptr_array_index(loop->workers, i);
        g_thread_join(w->thread);
        w->thread = NULL;
    }
    return true;
}

/* ---- --status and --retry-dead ------------------------------------------------------ */

static fbl_outbox *connect_for_cli(const fbl_config *config, FILE *out, int *status)
{
    g_autoptr(GError) error = NULL;
    fbl_outbox *ob = fbl_outbox_new(config->pg_conninfo, &error);
    if (ob == NULL) {
        (void) fprintf(out, "fbl forward: %s\n", error->message);
        *status = EX_UNAVAILABLE;
    }
    return ob;
}

static int cli_error(const GError *error, FILE *out)
{
    (void) fprintf(out, "fbl forward: %s\n", error->message);
    if (error->code == FBL_OUTBOX_ERROR_SCHEMA)
        return EX_CONFIG;
    return fbl_outbox_error_is_transient(error) ? EX_UNAVAILABLE : EX_SOFTWARE;
}

static bool configured(const fbl_config *config, const char *name)
{
    for (guint i = 0; i < config->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(config->vendors, i);
        if (strcmp(v->name, name) == 0)
            return true;
    }
    return false;
}

int fbl_forward_status(const fbl_config *config, FILE *out)
{
    int status = EX_OK;
    g_autoptr(fbl_outbox) ob = connect_for_cli(config, out, &status);
    if (ob == NULL)
        return status;
    g_autoptr(GPtrArray) stats = NULL;
    g_autoptr(GError) error = NULL;
    if (!fbl_outbox_status(ob, &stats, &error))
        return cli_error(error, out);
    /* Configured vendors without rows yet show zeros. */
    for (guint i = 0; i < config->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(config->vendors, i);
        bool seen = false;
        for (guint j = 0; j < stats->len && !seen; j++)
            seen = strcmp(((fbl_outbox_stats *) g_ptr_array_index(stats, j))->vendor, v->name) == 0;
        if (!seen) {
            fbl_outbox_stats *s = g_new0(fbl_outbox_stats, 1);
            s->vendor = g_strdup(v->name);
            g_ptr_array_add(stats, s);
        }
    }
    (void) fprintf(out, "%-16s %10s %10s %12s %8s %8s %9s %10s  %s\n", "vendor", "pending", "due",
                   "sent", "dead", "limited", "duplicate", "lag", "last sent");
    for (guint i = 0; i < stats->len; i++) {
        const fbl_outbox_stats *s = g_ptr_array_index(stats, i);
        (void) fprintf(out,
                       "%-16s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT
                       " %8" G_GUINT64_FORMAT " %8" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT
                       " %9.1fs  %s%s\n",
                       s->vendor, s->pending, s->due, s->sent, s->dead, s->limited, s->duplicate,
                       s->lag_s, s->last_sent_at != NULL ? s->last_sent_at : "-",
                       configured(config, s->vendor) ? "" : "  (not configured)");
        /* Printed like a log line: masked; the row keeps the whole answer. */
        g_autofree char *dead =
            s->last_dead != NULL ? fbl_redact_mask_addresses(s->last_dead) : NULL;
        if (dead != NULL)
            (void) fprintf(out, "  newest dead letter: %s\n", dead);
    }
    return EX_OK;
}

int fbl_forward_retry_dead(const fbl_config *config, const char *vendor, FILE *out)
{
    int status = EX_OK;
    g_autoptr(fbl_outbox) ob = connect_for_cli(config, out, &status);
    if (ob == NULL)
        return status;
    const char *one[] = {vendor, NULL};
    guint64 count = 0;
    g_autoptr(GError) error = NULL;
    if (!fbl_outbox_retry_dead(ob, vendor != NULL ? one : NULL, &count, &error))
        return cli_error(error, out);
    (void) fprintf(out,
                   "fbl forward: %" G_GUINT64_FORMAT " dead letter%s of %s made pending again\n",
                   count, count == 1 ? "" : "s", vendor != NULL ? vendor : "every vendor");
    return EX_OK;
}

/* ---- --backfill ------------------------------------------------------------------------ */

#define BACKFILL_STEP_REPORTS 5000
#define BACKFILL_PROGRESS_MS  2000

/* --since and --until as Unix seconds; false (and said on @out) when one is wrong. */
static bool backfill_range(const char *since, const char *until, gint64 *from, gint64 *to,
                           FILE *out)
{
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    *to = 0;
    if (since == NULL) {
        (void) fprintf(out, "fbl forward: --backfill needs --since T (the first delivery time "
                            "to give the vendor)\n");
        return false;
    }
    if (!fbl_time_arg_parse(since, now, from)) {
        (void) fprintf(out,
                       "fbl forward: --since %s: not a time (epoch seconds, ISO-8601 or "
                       "an age such as 7d)\n",
                       since);
        return false;
    }
    if (until != NULL && (!fbl_time_arg_parse(until, now, to) || *to <= *from)) {
        (void) fprintf(out, "fbl forward: --until %s: not a time after --since\n", until);
        return false;
    }
    return true;
}

static void backfill_line(FILE *out, const char *vendor, const fbl_outbox_backfill *st,
                          const char *what)
{
    (void) fprintf(
        out,
        "fbl forward: backfill %s%s: %" G_GUINT64_FORMAT " reports, %" G_GUINT64_FORMAT
        " rows added (%" G_GUINT64_FORMAT " pending, %" G_GUINT64_FORMAT
        " limited, %" G_GUINT64_FORMAT " duplicate), %" G_GUINT64_FORMAT " already there%s%s\n",
        vendor, what, st->reports, st->added, st->added - st->limited - st->duplicate, st->limited,
        st->duplicate, st->existing, st->after_at != NULL && !st->done ? "; up to " : "",
        st->after_at != NULL && !st->done ? st->after_at : "");
    (void) fflush(out);
}

int fbl_forward_backfill(const fbl_config *config, const char *vendor, const char *since,
                         const char *until, FILE *out)
{
    if (vendor == NULL || !configured(config, vendor)) {
        (void) fprintf(out,
                       "fbl forward: --backfill needs --vendor NAME, a configured "
                       "[vendor:NAME]%s%s\n",
                       vendor != NULL ? "; not configured: " : "", vendor != NULL ? vendor : "");
        return EX_USAGE;
    }
    gint64 from = 0, to = 0;
    if (!backfill_range(since, until, &from, &to, out))
        return EX_USAGE;
    int status = EX_OK;
    g_autoptr(fbl_outbox) ob = connect_for_cli(config, out, &status);
    if (ob == NULL)
        return status;
    fbl_outbox_backfill st = {0};
    int64_t next_line = fbl_now_ms() + BACKFILL_PROGRESS_MS;
    while (!st.done && status == EX_OK) {
        g_autoptr(GError) error = NULL;
        if (!fbl_outbox_backfill_step(ob, vendor, from, to, BACKFILL_STEP_REPORTS, &st, &error)) {
            status = cli_error(error, out);
        } else if (!st.done && fbl_now_ms() >= next_line) {
            backfill_line(out, vendor, &st, " (going on)");
            next_line = fbl_now_ms() + BACKFILL_PROGRESS_MS;
        }
    }
    backfill_line(out, vendor, &st, status == EX_OK ? " done" : " stopped");
    fbl_outbox_backfill_clear(&st);
    return status;
}
