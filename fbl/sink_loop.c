/* sink_loop.c - batches to PostgreSQL, acks after commit (see sink_loop.h) */
#define G_LOG_DOMAIN "fbl-sink"
#include "fbl/sink_loop.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <zmq.h>

#include "fbl/curve.h"
#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/metrics.h"
#include "fbl/wire.h"
#include "sink/batch.h"
#include "sink/pg.h"

#define POLL_MAX_MS      200
#define RETRY_INITIAL_MS 250
#define SINK_RCVHWM      64
/* A hostile or broken peer can send refusals by the thousand: one line at once,
 * then one per interval that counts the rest. */
#define REFUSAL_LOG_INTERVAL_MS ((int64_t) 60 * 1000)

struct fbl_sink_loop {
    const fbl_config *config;
    void *sock;
    fbl_curve *curve; /* CURVE: the ZAP handler and the handshake monitor */
    fbl_pg *pg;
    const char **vendors;
    bool migrated;
    fbl_batch *batch;
    GHashTable *routes; /* mail_id -> GPtrArray of GBytes routing ids */
    int64_t batch_started;
    int64_t last_arrival; /* when the batch last grew */
    unsigned backoff_ms;
    int64_t retry_at;
    bool pg_down_logged;
    fbl_wire_bounds bounds; /* of one message, its routing id included */
    int64_t refusal_log_at; /* no refusal line before this time */
    guint64 refusals_unlogged;
    guint64 batches; /* committed: numbers the batches in the log lines */
};

static void reset_batch(fbl_sink_loop *s)
{
    g_clear_pointer(&s->batch, fbl_batch_free);
    s->batch = fbl_batch_new();
    g_hash_table_remove_all(s->routes);
}

static bool batch_full(const fbl_sink_loop *s)
{
    return fbl_batch_mails(s->batch) >= s->config->sink_batch_max_mails ||
           fbl_batch_bytes(s->batch) >= s->config->sink_batch_max_bytes;
}

static void pg_failed(fbl_sink_loop *s, const char *what, const GError *error)
{
    s->backoff_ms =
        fbl_backoff_next(s->backoff_ms, RETRY_INITIAL_MS, s->config->sink_retry_max_wait_ms);
    s->retry_at = fbl_now_ms() + s->backoff_ms;
    fbl_metrics_pg_error("sink", fbl_pg_error_is_transient(error));
    if (fbl_pg_error_is_transient(error))
        g_warning("%s failed (retry in %ums): %s", what, s->backoff_ms, error->message);
    else
        g_critical("%s failed permanently (retry in %ums): %s", what, s->backoff_ms,
                   error->message);
}

/* Reports stored before the hourly rollups (schema 012) are read one by one by the analyst
 * functions until `fbl migrate` rolls them up: say so once, at start. */
static void say_rollups_pending(fbl_sink_loop *s)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *since = NULL;
    bool pending = false;
    if (!fbl_pg_rollup_pending(s->pg, &pending, &since, &error))
        g_debug("could not read the rollups' state: %s", error->message);
    else if (pending)
        g_message("the hourly rollups begin at %s: run fbl migrate to roll up the reports stored "
                  "before (the analyst functions are right meanwhile, but slower)",
                  since);
}

/* Connected and migrated; false while PostgreSQL is unreachable (retry later). */
static bool ensure_pg(fbl_sink_loop *s)
{
    g_autoptr(GError) error = NULL;
    if (s->pg == NULL) {
        fbl_pg_options o = {.conninfo = s->config->pg_conninfo,
                            .vendors = s->vendors,
                            .store_raw = s->config->sink_store_raw,
                            .set_reporter_limit = true,
                            .reports_per_reporter_per_hour =
                                s->config->reports_per_reporter_per_hour};
        s->pg = fbl_pg_new(&o, &error);
        if (s->pg == NULL) {
            pg_failed(s, "connecting to PostgreSQL", error);
            return false;
        }
    }
    if (!s->migrated) {
        unsigned applied = 0;
        if (!fbl_pg_migrate(s->pg, &applied, &error)) {
            pg_failed(s, "applying migrations", error);
            return false;
        }
        if (applied > 0)
            g_message("applied %u migration(s)", applied);
        s->migrated = true;
        say_rollups_pending(s);
    }
    return true;
}

static void send_acks(fbl_sink_loop *s)
{
    for (guint i = 0; i < fbl_batch_mails(s->batch); i++) {
        const fbl_sink_mail *m = fbl_batch_get(s->batch, i);
        GPtrArray *routes = g_hash_table_lookup(s->routes, m->mail_id);
        fbl_log_event(G_LOG_LEVEL_INFO, m->mail_id, "stored",
                      "batch=%" G_GUINT64_FORMAT " reports=%u", s->batches + 1, m->reports->len);
        for (guint j = 0; routes != NULL && j < routes->len; j++) {
            g_autoptr(GPtrArray) ack = fbl_wire_encode_ack(m->mail_id);
            g_ptr_array_insert(ack, 0, g_bytes_ref(g_ptr_array_index(routes, j)));
            /* A watcher that went away resends after its restart: nothing to do. */
            (void) fbl_wire_send(s->sock, ack, ZMQ_DONTWAIT);
        }
    }
}

static bool flush(fbl_sink_loop *s)
{
    int64_t t0 = fbl_now_ms();
    g_autoptr(GError) error = NULL;
    if (!fbl_pg_write_batch(s->pg, s->batch, &error)) {
        pg_failed(s, "writing a batch", error);
        return false;
    }
    send_acks(s);
    guint mails = fbl_batch_mails(s->batch), reports = fbl_batch_reports(s->batch);
    s->batches++;
    fbl_metrics_sink_batch(mails, reports, fbl_batch_bytes(s->batch),
                           (double) (fbl_now_ms() - t0) / 1000.0);
    const fbl_sink_mail *first = fbl_batch_get(s->batch, 0);
    fbl_log_event(G_LOG_LEVEL_INFO, first->mail_id, "pg_commit",
                  "batch=%" G_GUINT64_FORMAT " mails=%u reports=%u bytes=%zu ms=%" G_GINT64_FORMAT,
                  s->batches, mails, reports, fbl_batch_bytes(s->batch), fbl_now_ms() - t0);
    if (s->backoff_ms > 0)
        g_message("PostgreSQL writes work again");
    s->backoff_ms = 0;
    reset_batch(s);
    return true;
}

static void reply_bad(fbl_sink_loop *s, GBytes *route, const char *mail_id, const char *reason)
{
    g_autoptr(GPtrArray) bad = fbl_wire_encode_bad(mail_id, reason);
    g_ptr_array_insert(bad, 0, g_bytes_ref(route));
    (void) fbl_wire_send(s->sock, bad, ZMQ_DONTWAIT);
}

/* The line for refusals that were counted but not logged, once the interval is over. */
static void log_unlogged_refusals(fbl_sink_loop *s, int64_t now)
{
    if (s->refusals_unlogged == 0 || now < s->refusal_log_at)
        return;
    g_warning("%" G_GUINT64_FORMAT " more message(s) refused in the last %ds "
              "(fbl_sink_refused_messages_total counts them by reason)",
              s->refusals_unlogged, (int) (REFUSAL_LOG_INTERVAL_MS / 1000));
    s->refusals_unlogged = 0;
    s->refusal_log_at = now + REFUSAL_LOG_INTERVAL_MS;
}

/*
 * refuse - a message that breaks the wire contract (wire.h): counted, logged
 * (rate-limited), answered with "bad", never stored. Its watcher, if it is
 * one, keeps the mail and resends it; a hostile peer gets nothing more.
 */
static void refuse(fbl_sink_loop *s, GBytes *route, const char *mail_id, const GError *error)
{
    const char *reason =
        error->domain == FBL_WIRE_ERROR ? fbl_wire_error_reason(error->code) : "other";
    fbl_metrics_sink_refused(reason);
    int64_t now = fbl_now_ms();
    if (now < s->refusal_log_at) {
        s->refusals_unlogged++;
    } else {
        fbl_log_event(G_LOG_LEVEL_WARNING, mail_id, "refused",
                      "a peer's message was refused, not stored (reason=%s): %s", reason,
                      error->message);
        s->refusal_log_at = now + REFUSAL_LOG_INTERVAL_MS;
    }
    if (route != NULL)
        reply_bad(s, route, mail_id, error->message);
}

static void take_message(fbl_sink_loop *s, GPtrArray *frames)
{
    if (frames->len < 2)
        return;
    GBytes *route = g_bytes_ref(g_ptr_array_index(frames, 0));
    g_ptr_array_remove_index(frames, 0);
    g_autoptr(GError) error = NULL;
    fbl_sink_mail *m = fbl_wire_decode_mail(frames, s->config->max_mail_bytes,
                                            g_get_real_time() / G_USEC_PER_SEC, &error);
    if (m == NULL) {
        char claimed[FBL_SHA256_HEX_LEN + 1];
        bool known = fbl_wire_peek_mail_id(frames, 0, claimed);
        refuse(s, route, known ? claimed : NULL, error);
        g_bytes_unref(route);
        return;
    }
    GPtrArray *routes = g_hash_table_lookup(s->routes, m->mail_id);
    if (routes != NULL) { /* already in this batch: ack it once more, store it once */
        g_ptr_array_add(routes, route);
        fbl_sink_mail_free(m);
        return;
    }
    routes = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
    g_ptr_array_add(routes, route);
    g_hash_table_insert(s->routes, g_strdup(m->mail_id), routes);
    s->last_arrival = fbl_now_ms();
    if (fbl_batch_mails(s->batch) == 0)
        s->batch_started = s->last_arrival;
    fbl_log_event(G_LOG_LEVEL_DEBUG, m->mail_id, "batch", "reports=%u", m->reports->len);
    fbl_batch_add(s->batch, m);
}

/* Take what has arrived, up to a full batch; over-long messages are dropped as they come. */
static void read_messages(fbl_sink_loop *s)
{
    while (!batch_full(s)) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) head = NULL;
        g_autoptr(GPtrArray) frames =
            fbl_wire_recv_bounded(s->sock, ZMQ_DONTWAIT, &s->bounds, &head, &error);
        if (frames != NULL) {
            take_message(s, frames);
            continue;
        }
        if (error->domain != FBL_WIRE_ERROR)
            return; /* nothing more now (EAGAIN), or a signal */
        refuse(s, head, NULL, error);
    }
}

static bool wait_for(fbl_sink_loop *s, long timeout_ms, bool readable_wanted, GError **error)
{
    zmq_pollitem_t item = {s->sock, 0, readable_wanted ? ZMQ_POLLIN : 0, 0};
    if (zmq_poll(&item, 1, CLAMP(timeout_ms, 0, POLL_MAX_MS)) < 0 && errno != EINTR) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "zmq_poll: %s",
                    zmq_strerror(errno));
        return false;
    }
    return true;
}

/*
 * When the batch must be committed: full, or its first mail has waited
 * batch_max_wait, or nothing has arrived for batch_idle. The last one is what
 * keeps latency low: watchers stop sending once their window is in flight,
 * so a batch that is not full by then will not fill before the acks go out.
 */
static int64_t batch_due_at(const fbl_sink_loop *s)
{
    if (batch_full(s))
        return 0;
    return MIN(s->batch_started + s->config->sink_batch_max_wait_ms,
               s->last_arrival + s->config->sink_batch_idle_ms);
}

/* One turn of the loop; false when it must end (stopped, or a socket failure). */
static bool turn(fbl_sink_loop *s, bool *done, GError **error)
{
    int64_t now = fbl_now_ms();
    bool stopping = fbl_daemon_stopping();
    bool has_batch = fbl_batch_mails(s->batch) > 0;
    if (now < s->retry_at && !stopping) /* backing off: take nothing new */
        return wait_for(s, (long) (s->retry_at - now), false, error);
    if (!ensure_pg(s)) {
        *done = stopping;
        return true;
    }
    bool due = has_batch && (stopping || now >= batch_due_at(s));
    if (due && !flush(s) && stopping) {
        g_message("stopping with %u mail(s) not stored; their watchers will resend them",
                  fbl_batch_mails(s->batch));
        *done = true;
        return true;
    }
    if (stopping && fbl_batch_mails(s->batch) == 0) {
        *done = true;
        return true;
    }
    log_unlogged_refusals(s, fbl_now_ms());
    if (fbl_now_ms() < s->retry_at)
        return true;
    long timeout = fbl_batch_mails(s->batch) > 0 ? (long) (batch_due_at(s) - now) : POLL_MAX_MS;
    if (!wait_for(s, timeout, !batch_full(s), error))
        return false;
    read_messages(s);
    return true;
}

bool fbl_sink_loop_run(fbl_sink_loop *s, GError **error)
{
    bool done = false;
    while (!done) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_SINK);
        if (!turn(s, &done, error))
            return false;
        if (fbl_daemon_stopping() && s->pg == NULL)
            break; /* never reached PostgreSQL: nothing held, nothing to flush */
    }
    return true;
}

fbl_sink_loop *fbl_sink_loop_new(const fbl_config *config, void *zmq_context, const char *endpoint,
                                 GError **error)
{
    g_autoptr(fbl_sink_loop) s = g_new0(fbl_sink_loop, 1);
    s->config = config;
    s->vendors = fbl_config_vendor_names(config);
    s->routes =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
    reset_batch(s);
    s->sock = zmq_socket(zmq_context, ZMQ_ROUTER);
    if (s->sock == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    /* A small queue per watcher: while the sink backs off, watchers' sends are
     * refused rather than piled up here (they keep the mail and retry). No
     * frame may be larger than a raw mail or a document: libzmq drops a peer
     * that announces one before it allocates it (wire.h says what stays). */
    int linger = 0, hwm = SINK_RCVHWM;
    int64_t max = fbl_wire_max_frame(config->max_mail_bytes);
    s->bounds = fbl_wire_mail_bounds(config->max_mail_bytes, 1);
    if (zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "zmq_setsockopt: %s",
                    zmq_strerror(errno));
        return NULL;
    }
    s->curve = fbl_curve_server_new(config, zmq_context, s->sock, endpoint, error);
    if (s->curve == NULL)
        return NULL;
    if (zmq_bind(s->sock, endpoint) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "bind %s: %s", endpoint,
                    zmq_strerror(errno));
        return NULL;
    }
    return g_steal_pointer(&s);
}

void fbl_sink_loop_free(fbl_sink_loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->sock != NULL)
        zmq_close(loop->sock);
    fbl_curve_free(loop->curve);
    fbl_pg_free(loop->pg);
    fbl_batch_free(loop->batch);
    g_hash_table_unref(loop->routes);
    g_free(loop->vendors);
    g_free(loop);
}
