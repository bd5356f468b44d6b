/*
 * forward_loop.c - the vendor feed uploader (see forward_loop.h): one thread
 * per [vendor:NAME], each with its own PostgreSQL connection (sink/outbox.h)
 * and its own libcurl multi handle (sink/vendor.h).
 *
 * A thread's turn: lease the vendor's due pending rows (sink/outbox.h: a
 * short statement, no transaction left open), deliver them, mark each row.
 * Between turns it waits for the sink's NOTIFY fbl_outbox (or IDLE_POLL_MS,
 * for rows whose retry time comes), or for the pause the vendor asked for
 * (Retry-After, or backoff after failures). Ingestion never waits for it: the
 * sink only inserts outbox rows.
 *
 * [vendor:NAME] keys, their defaults per type and their values are config.c's
 * (the key table; fbl.conf(5)). This file reads what they name, once at
 * start-up, before any thread runs: the token or password file and the
 * redaction key (secret.h), the CA bundle; and it refuses a secret that would
 * go over plain http:// to another host (allow_plain_http).
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

#include <curl/curl.h>
#include <gio/gio.h>

#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/metrics.h"
#include "fbl/secret.h"
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
#define LEASE_MARGIN_MS     10000

#ifndef FBL_VERSION
#define FBL_VERSION "dev"
#endif

/* ---- what a vendor's keys name (config.c checked the values) ------------------ */

/* Read at start-up, owned; the secret is wiped when freed. */
typedef struct vendor_files {
    char *secret;       /* the token (http-json) or password (rspamd); NULL: none */
    fbl_redact *redact; /* NULL: no redaction */
} vendor_files;

static void vendor_files_clear(vendor_files *f)
{
    if (f->secret != NULL)
        explicit_bzero(f->secret, strlen(f->secret));
    g_free(f->secret);
    fbl_redact_free(f->redact);
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

/*
 * The secret in the file @path, which @key names (secret.h: refused when other
 * users may read it, unless allow_insecure_file_modes = true); NULL when unset.
 */
static bool read_secret(const reader *r, const char *key, const char *path, const char *what,
                        char **out, size_t *len)
{
    *out = NULL;
    if (path == NULL)
        return true;
    bool loose = r->v->allow_insecure_file_modes;
    g_autoptr(GError) local = NULL;
    *out = fbl_secret_read_file(path, what, !loose, len, &local);
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
static bool check_transport(const reader *r, const char *secret)
{
    const fbl_vendor_config *v = r->v;
    if (secret == NULL || v->allow_plain_http || !g_str_has_prefix(v->url, "http://") ||
        host_is_loopback(v->url))
        return true;
    bool rspamd = v->type == FBL_VENDOR_RSPAMD;
    g_autofree char *why = g_strdup_printf(
        "%s is plain http to another host: the %s of %s would cross the network in clear; use "
        "https://, or set allow_plain_http = true",
        v->url, rspamd ? "password" : "bearer token", rspamd ? "password_file" : "token_file");
    return bad(r, "url", why);
}

/* The redaction of the fields redact lists (config.c: redact_key_file goes with them). */
static bool read_redact(const reader *r, fbl_redact **out)
{
    if (r->v->redact[0] == NULL)
        return true;
    g_autofree char *key = NULL;
    size_t key_len = 0;
    if (!read_secret(r, "redact_key_file", r->v->redact_key_file, "redaction key", &key, &key_len))
        return false;
    if (key == NULL) /* config.c refuses redact without redact_key_file */
        return bad(r, "redact_key_file", "required with redact");
    g_autoptr(GError) local = NULL;
    *out = fbl_redact_new((const char *const *) r->v->redact, key, key_len, &local);
    explicit_bzero(key, key_len);
    if (*out == NULL)
        return bad(r, local->code == FBL_REDACT_ERROR_KEY ? "redact_key_file" : "redact",
                   local->message);
    return true;
}

/* The files @v names: its secret, its CA bundle, its redaction key. */
static bool read_vendor_files(const fbl_config *config, const fbl_vendor_config *v,
                              vendor_files *out, GError **error)
{
    reader r = {config, v, error};
    bool http = v->type == FBL_VENDOR_HTTP_JSON;
    if (!read_secret(&r, http ? "token_file" : "password_file",
                     http ? v->token_file : v->password_file, http ? "token" : "password",
                     &out->secret, NULL) ||
        !check_transport(&r, out->secret))
        return false;
    if (v->ca_file != NULL && !g_file_test(v->ca_file, G_FILE_TEST_IS_REGULAR))
        return bad(&r, "ca_file", "no such file");
    return read_redact(&r, &out->redact);
}

/* ---- the loop ------------------------------------------------------------------- */

typedef struct worker {
    const fbl_config *config;
    const fbl_vendor_config *conf; /* the config's */
    vendor_files files;
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
    vendor_files_clear(&w->files);
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
        w->conf = g_ptr_array_index(config->vendors, i);
        g_ptr_array_add(loop->workers, w);
        if (!read_vendor_files(config, w->conf, &w->files, error)) {
            fbl_forward_loop_free(loop);
            return NULL;
        }
        const fbl_vendor_config *c = w->conf;
        fbl_vendor_options o = {
            .name = c->name,
            .type = c->type,
            .url = c->url,
            .secret = w->files.secret,
            .ca_file = c->ca_file,
            .user_agent = "fbl/" FBL_VERSION,
            .batch_size = c->type == FBL_VENDOR_HTTP_JSON ? c->batch_size : 1,
            .parallel = c->parallel,
            .timeout_ms = c->timeout_ms,
            .retry_max_ms = c->retry_max_wait_ms,
            .include_raw = c->include_raw,
            .learn = c->learn,
            .fuzzy_flag = c->fuzzy_flag,
            .fuzzy_weight = c->fuzzy_weight,
            .redact = w->files.redact,
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
    fbl_metrics_pg_error("forward", fbl_pg_error_is_transient(error));
    /* A schema not there yet is waited for too: in `fbl run` the sink is migrating it. */
    if (fbl_pg_error_is_transient(error) ||
        g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_SCHEMA))
        g_warning("vendor=%s %s failed (retry in %ums): %s", w->conf->name, what, w->pg_backoff_ms,
                  error->message);
    else
        g_critical("vendor=%s %s failed (retry in %ums): %s", w->conf->name, what, w->pg_backoff_ms,
                   error->message);
}

/* The wait before a row's next attempt after @attempts failed ones: 1 s, 2 s, 4 s … */
static unsigned row_retry_ms(const worker *w, unsigned attempts)
{
    guint64 ms = ROW_RETRY_FIRST_MS;
    for (unsigned i = 1; i < attempts && ms < w->conf->retry_max_wait_ms; i++)
        ms *= 2;
    ms = MIN(ms, (guint64) w->conf->retry_max_wait_ms);
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
                  w->conf->name, row->report_id, what, masked);
    fbl_log_event(G_LOG_LEVEL_DEBUG, row->mail_id, "vendor_dead",
                  "vendor=%s report=%.12s answer: %s", w->conf->name, row->report_id, row->error);
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
        if (row->attempts + 1 >= w->conf->max_attempts) {
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
    g_debug("vendor=%s credentials refused: %s", w->conf->name, why);
    g_free(w->stopped);
    w->stopped = fbl_redact_mask_addresses(why);
    w->remind_at = fbl_now_ms() + AUTH_REMIND_MS;
    g_critical("vendor=%s STOPPED: the vendor refused our credentials (%s); nothing more is "
               "sent to it and its reports stay pending. Check its %s and restart fbl.",
               w->conf->name, w->stopped,
               w->conf->type == FBL_VENDOR_RSPAMD ? "password_file" : "token_file");
}

/*
 * How long a claim's rows are this worker's (sink/outbox.h): longer than
 * their send can take - the requests it may need (http-json: `parallel`
 * batches, then about log2(batch_size) rounds of halves after a refusal;
 * rspamd: up to two a report), `parallel` at a time, each up to the timeout
 * - and a margin for the marking after it.
 */
static unsigned lease_ms(const worker *w)
{
    guint64 requests =
        w->conf->type == FBL_VENDOR_HTTP_JSON ? w->conf->parallel : 2ull * w->conf->batch_size;
    guint64 rounds = (requests + w->conf->parallel - 1) / w->conf->parallel + 1 +
                     g_bit_storage(w->conf->batch_size);
    return (unsigned) MIN(rounds * w->conf->timeout_ms + LEASE_MARGIN_MS, (guint64) G_MAXUINT);
}

/* One claim, delivery and marking; false when there was nothing to do. */
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
    unsigned max_rows = w->conf->type == FBL_VENDOR_HTTP_JSON
                            ? w->conf->batch_size * w->conf->parallel
                            : w->conf->batch_size;
    g_autoptr(GPtrArray) rows = NULL;
    int64_t t0 = fbl_now_ms();
    if (!fbl_outbox_claim(w->ob, w->conf->name, max_rows, w->conf->batch_bytes, with_mail,
                          lease_ms(w), &rows, &error)) {
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
    if (!fbl_outbox_finish(w->ob, w->conf->name, rows, &error)) {
        /* Delivered, not marked: sent again once the lease runs out (at-least-once). */
        pg_failed(w, "marking outbox rows", error);
        return false;
    }
    w->batches++;
    if (w->sent > sent)
        fbl_metrics_vendor_sent(w->conf->name, (unsigned) (w->sent - sent));
    /* rid: the first row's mail (fbl(1)), report: that row's report. */
    const fbl_outbox_row *first = g_ptr_array_index(rows, 0);
    fbl_log_event(G_LOG_LEVEL_INFO, first->mail_id, "vendor_send",
                  "vendor=%s report=%.12s rows=%u sent=%" G_GUINT64_FORMAT
                  " retry=%" G_GUINT64_FORMAT " dead=%" G_GUINT64_FORMAT " ms=%" G_GINT64_FORMAT,
                  w->conf->name, first->report_id, rows->len, w->sent - sent, w->retried - retried,
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
        g_warning("vendor=%s pausing %ums: %s", w->conf->name, pause, masked);
    }
    return true;
}

/* The outbox gauges of the metrics endpoint. */
static void publish_gauges(worker *w)
{
    guint64 pending = 0, dead = 0;
    double lag = 0;
    g_autoptr(GError) error = NULL;
    if (fbl_outbox_gauges(w->ob, w->conf->name, &pending, &dead, &lag, &error))
        fbl_metrics_outbox(w->conf->name, pending, dead, lag);
    else
        g_debug("vendor=%s outbox gauges: %s", w->conf->name, error->message);
}

static gpointer worker_main(gpointer data)
{
    worker *w = data;
    g_message("forwarding vendor=%s type=%s url=%s", w->conf->name,
              w->conf->type == FBL_VENDOR_RSPAMD ? "rspamd" : "http-json", w->conf->url);
    while (!fbl_daemon_stopping()) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_FORWARD); /* for the systemd watchdog */
        int64_t now = fbl_now_ms();
        if (w->stopped != NULL) {
            if (now >= w->remind_at) {
                w->remind_at = now + AUTH_REMIND_MS;
                g_critical("vendor=%s is STOPPED since the vendor refused our credentials (%s); "
                           "restart fbl once fixed",
                           w->conf->name, w->stopped);
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
              w->conf->name, w->batches, w->sent, w->retried, w->dead);
    return NULL;
}

bool fbl_forward_loop_run(fbl_forward_loop *loop, GError **error)
{
    (void) error; /* vendor and database trouble is waited out, never fatal */
    for (guint i = 0; i < loop->workers->len; i++) {
        worker *w = g_ptr_array_index(loop->workers, i);
        g_autofree char *name = g_strdup_printf("fwd-%s", w->conf->name);
        w->thread = g_thread_new(name, worker_main, w);
    }
    for (guint i = 0; i < loop->workers->len; i++) {
        worker *w = g_ptr_array_index(loop->workers, i);
        g_thread_join(w->thread);
        w->thread = NULL;
    }
    return true;
}
