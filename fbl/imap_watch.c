/* imap_watch.c - one IMAP mailbox -> parse -> sink, moved on ack (see imap_watch.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/imap_watch.h"

#include <errno.h>
#include <string.h>
#include <sysexits.h>

#include <gio/gio.h>
#include <zmq.h>

#include "fbl/curve.h"
#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/mailfile.h"
#include "fbl/metrics.h"
#include "fbl/secret.h"
#include "fbl/wire.h"

/* A pause before retrying a send the socket refused (no sink connected yet). */
#define SEND_RETRY_MS 100
/* The longest a wait for acks sleeps: it looks at the stop flag this often. */
#define POLL_MAX_MS 200
/* An empty folder is waited on this long at most per turn (IDLE ends sooner on mail). */
#define WAIT_MS 5000u

/* One mail of the batch, sent and not yet acknowledged; copies of one content share it. */
typedef struct flight {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    GPtrArray *frames; /* the message, kept to resend */
    int64_t deadline;  /* (re)send at this time */
    unsigned resends;
    bool sent, acked;
} flight;

struct fbl_imap_watch {
    const fbl_config *config;
    const fbl_mailbox_config *box;
    const fbl_parser *parser;
    fbl_imap *imap;
    void *sock;
    fbl_curve *curve;
    uint32_t next_uid;
    fbl_imap_watch_stats stats;
    GThread *thread; /* fbl_imap_watch_start() */
    bool until_idle;
    int status;
};

static void flight_free(flight *f)
{
    g_ptr_array_unref(f->frames);
    g_free(f);
}

/* ---- options and --check-config ------------------------------------------------------- */

static char *group_of(const fbl_mailbox_config *m)
{
    return g_strconcat("mailbox:", m->name, NULL);
}

bool fbl_imap_watch_options(const fbl_config *c, const fbl_mailbox_config *m, fbl_imap_options *out,
                            char **secret, GError **error)
{
    bool oauth = m->oauth2_token_file != NULL;
    const char *key = oauth ? "oauth2_token_file" : "password_file";
    const char *file = oauth ? m->oauth2_token_file : m->password_file;
    g_autoptr(GError) local = NULL;
    *secret = fbl_secret_read_file(file, oauth ? "OAuth2 token" : "IMAP password",
                                   !m->allow_insecure_file_modes, NULL, &local);
    if (*secret == NULL) {
        g_autofree char *group = group_of(m);
        return fbl_config_error_at(c, group, key, error, "%s", local->message);
    }
    fbl_imap_options o = {
        .url = m->imap,
        .user = m->user,
        .password = oauth ? NULL : *secret,
        .oauth2_token = oauth ? *secret : NULL,
        .ca_file = m->ca_file,
        .starttls = m->starttls,
        .done_folder = m->done_folder,
        .poll_interval_ms = m->poll_interval_ms,
        .max_fetch_bytes = c->max_mail_bytes,
        .batch_max_mails = MIN(FBL_IMAP_WATCH_BATCH, c->watch_window),
        .batch_max_bytes = c->watch_window_bytes,
    };
    *out = o;
    return true;
}

static void wipe_secret(char *secret)
{
    if (secret != NULL)
        explicit_bzero(secret, strlen(secret));
    g_free(secret);
}

/* fbl_imap_new() on @m's options: the secret is wiped at once (the client copied it). */
static fbl_imap *imap_for(const fbl_config *c, const fbl_mailbox_config *m, GError **error)
{
    fbl_imap_options o;
    char *secret = NULL;
    if (!fbl_imap_watch_options(c, m, &o, &secret, error))
        return NULL;
    g_autoptr(GError) local = NULL;
    fbl_imap *imap = fbl_imap_new(&o, &local);
    wipe_secret(secret);
    if (imap == NULL) {
        g_autofree char *group = group_of(m);
        (void) fbl_config_error_at(c, group, "imap", error, "%s", local->message);
    }
    return imap;
}

bool fbl_imap_watch_check(const fbl_config *c, const fbl_mailbox_config *m, bool login,
                          GError **error)
{
    g_autoptr(fbl_imap) imap = imap_for(c, m, error);
    if (imap == NULL)
        return false;
    g_autoptr(GError) local = NULL;
    if (!login || fbl_imap_connect(imap, &local) ||
        g_error_matches(local, FBL_IMAP_ERROR, FBL_IMAP_ERROR_UIDVALIDITY_CHANGED))
        return true;
    g_autofree char *group = group_of(m);
    return fbl_config_error_at(c, group, "imap", error, "%s: %s", m->imap, local->message);
}

/* ---- sending a batch and waiting for its acks ---------------------------------------- */

/*
 * The stop function handed to fbl/imap.h's waits (IDLE, polling, the pauses
 * between reconnections), which call it every FBL_IMAP_STOP_CHECK_MS: each
 * call is also this thread's turn for the systemd watchdog.
 */
static bool stopping_alive(void)
{
    fbl_daemon_alive(FBL_DAEMON_LOOP_IMAP);
    return fbl_daemon_stopping();
}

static bool send_flight(fbl_imap_watch *iw, flight *f)
{
    int64_t now = fbl_now_ms();
    if (!fbl_wire_send(iw->sock, f->frames, ZMQ_DONTWAIT)) {
        f->deadline = now + SEND_RETRY_MS; /* no sink reachable yet */
        return false;
    }
    if (f->sent) {
        f->resends++;
        fbl_metrics_watch_resend();
        fbl_log_event(G_LOG_LEVEL_MESSAGE, f->mail_id, "resend", "no ack within %ums (resend %u)",
                      iw->config->watch_ack_timeout_ms, f->resends);
    }
    f->sent = true;
    /* As watch.c: each resend waits twice as long, up to 16 timeouts. */
    f->deadline = now + (int64_t) iw->config->watch_ack_timeout_ms * (1 << MIN(f->resends, 4u));
    return true;
}

/* @mail as the Maildir watcher reads a file: whole, or a too_large prefix. */
static void as_mailfile(const fbl_imap_mail *mail, fbl_mailfile *out)
{
    gsize n = 0;
    const guint8 *bytes = g_bytes_get_data(mail->bytes, &n);
    memset(out, 0, sizeof *out);
    out->data = g_byte_array_sized_new((guint) n);
    g_byte_array_append(out->data, bytes, (guint) n);
    /* A prefix is shorter than RFC822.SIZE (fbl/1 holds it to that); a whole mail is its bytes. */
    out->too_large = mail->truncated && n < mail->size;
    fbl_sha256_hex(bytes, n, out->mail_id);
    out->size = out->too_large ? (size_t) mail->size : n;
    out->delivered = mail->internaldate;
}

/* Parse @mail and send it, unless a mail of the same content in this batch is in @flights. */
static void send_mail(fbl_imap_watch *iw, const fbl_imap_mail *mail, GHashTable *flights)
{
    fbl_mailfile file;
    as_mailfile(mail, &file);
    if (g_hash_table_contains(flights, file.mail_id)) {
        fbl_mailfile_clear(&file);
        return;
    }
    fbl_mail_meta meta = {
        .mailbox = iw->box->name,
        .default_feedback_type = iw->box->feedback_type,
        .received_at = file.delivered,
        .raw = iw->box->raw,
    };
    g_autoptr(fbl_parse_result) res = fbl_mailfile_parse(iw->parser, &file, &meta);
    g_autoptr(GBytes) raw = g_byte_array_free_to_bytes(file.data);
    file.data = NULL;
    flight *f = g_new0(flight, 1);
    g_strlcpy(f->mail_id, res->mail_id, sizeof f->mail_id);
    f->frames = fbl_wire_encode_mail(res, meta.mailbox, meta.received_at, file.size, raw);
    g_hash_table_insert(flights, f->mail_id, f);
    iw->stats.fetched++;
    fbl_metrics_imap_fetched(meta.mailbox);
    fbl_metrics_watch_mail(meta.mailbox, res);
    if (res->reject != NULL)
        fbl_log_event(G_LOG_LEVEL_INFO, f->mail_id, "parse", "mailbox=%s uid=%u reject=%s size=%zu",
                      meta.mailbox, mail->uid, fbl_reject_reason_to_string(res->reject->reason),
                      file.size);
    else
        fbl_log_event(G_LOG_LEVEL_INFO, f->mail_id, "parse",
                      "mailbox=%s uid=%u reports=%u size=%zu", meta.mailbox, mail->uid,
                      res->reports->len, file.size);
    (void) send_flight(iw, f);
}

/* Read the sinks' replies; returns how many flights they acknowledged. */
static unsigned read_replies(fbl_imap_watch *iw, GHashTable *flights)
{
    unsigned acked = 0;
    for (;;) {
        g_autoptr(GPtrArray) frames = fbl_wire_recv(iw->sock, ZMQ_DONTWAIT);
        if (frames == NULL)
            return acked;
        bool is_ack = false;
        char mail_id[FBL_SHA256_HEX_LEN + 1];
        g_autofree char *reason = NULL;
        g_autoptr(GError) error = NULL;
        if (!fbl_wire_decode_reply(frames, &is_ack, mail_id, &reason, &error)) {
            g_warning("a sink sent an unreadable reply: %s", error->message);
            continue;
        }
        if (!is_ack) { /* a bug in a peer: the mail is resent after the timeout */
            g_critical("rid=%.12s the sink could not read our message: %s", mail_id,
                       reason != NULL ? reason : "?");
            continue;
        }
        flight *f = g_hash_table_lookup(flights, mail_id);
        if (f != NULL && !f->acked) { /* else a late ack of an earlier batch's resend */
            f->acked = true;
            acked++;
            fbl_metrics_watch_acked();
        }
    }
}

/* Send what is due (refused sends, resends); returns the next deadline. */
static int64_t send_due(fbl_imap_watch *iw, GHashTable *flights)
{
    int64_t now = fbl_now_ms(), next = now + POLL_MAX_MS;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, flights);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        flight *f = value;
        if (f->acked)
            continue;
        if (f->deadline <= now)
            (void) send_flight(iw, f);
        next = MIN(next, f->deadline);
    }
    return next;
}

/*
 * Until every flight is acknowledged. Returns 0 when they are; -1 after a
 * stop (watch.ack_timeout given to the acks first) or a failed poll.
 */
static int await_acks(fbl_imap_watch *iw, GHashTable *flights)
{
    unsigned left = g_hash_table_size(flights);
    int64_t drain_until = 0;
    while (left > 0) {
        int64_t now = fbl_now_ms();
        if (stopping_alive() && drain_until == 0)
            drain_until = now + iw->config->watch_ack_timeout_ms;
        if (drain_until != 0 && now >= drain_until)
            return -1;
        int64_t wake = send_due(iw, flights);
        zmq_pollitem_t item = {iw->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long) CLAMP(wake - now, 0, POLL_MAX_MS)) < 0 && errno != EINTR) {
            g_critical("mailbox=%s zmq_poll: %s", iw->box->name, zmq_strerror(errno));
            return -1;
        }
        if (item.revents & ZMQ_POLLIN)
            left -= read_replies(iw, flights);
    }
    return 0;
}

/*
 * take_batch - send @batch, wait for every ack, move the batch to done_folder
 *
 * Returns: 1 done; 0 stopped before every ack came (the mails stay in the
 *   folder); -1 with @error from the move.
 */
static int take_batch(fbl_imap_watch *iw, const GPtrArray *batch, GError **error)
{
    g_autoptr(GHashTable) flights =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) flight_free);
    g_autofree uint32_t *uids = g_new(uint32_t, batch->len);
    for (guint i = 0; i < batch->len; i++) {
        const fbl_imap_mail *mail = g_ptr_array_index(batch, i);
        uids[i] = mail->uid;
        send_mail(iw, mail, flights);
    }
    if (await_acks(iw, flights) != 0)
        return 0;
    if (!fbl_imap_move_done(iw->imap, uids, batch->len, error))
        return -1;
    iw->stats.moved += batch->len;
    fbl_metrics_imap_moved(iw->box->name, batch->len);
    iw->next_uid = uids[batch->len - 1] + 1;
    return 1;
}

/* ---- the loop ------------------------------------------------------------------------ */

/* The metric label of an IMAP error. */
static const char *error_kind(const GError *error)
{
    if (error->domain != FBL_IMAP_ERROR)
        return "other";
    switch ((fbl_imap_error) error->code) {
    case FBL_IMAP_ERROR_AUTH:
        return "auth";
    case FBL_IMAP_ERROR_TLS:
        return "tls";
    case FBL_IMAP_ERROR_NO_FOLDER:
        return "no_folder";
    case FBL_IMAP_ERROR_CONNECT:
        return "connect";
    case FBL_IMAP_ERROR_PROTOCOL:
        return "protocol";
    case FBL_IMAP_ERROR_UIDVALIDITY_CHANGED:
        return "uidvalidity_changed";
    case FBL_IMAP_ERROR_INVALID:
        return "invalid";
    }
    return "other";
}

/* A permanent error: said once, with the code the process ends with. */
static int fatal(const fbl_imap_watch *iw, const GError *error)
{
    int status = fbl_imap_error_exit_status(error);
    const char *hint = g_error_matches(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_AUTH)
                           ? " (check user and password_file or oauth2_token_file)"
                       : g_error_matches(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_TLS)
                           ? " (check ca_file and the URL's host name)"
                           : "";
    g_critical("mailbox=%s %s: %s%s; stopping (exit %d)", iw->box->name, iw->box->imap,
               error->message, hint, status);
    return status;
}

/*
 * After @error (from a connect, fetch, wait or move): reconnect while it is
 * transient, and read the folder again from UID 1 (the server kept the mails
 * not moved). Returns 0 to go on, or the exit status of a permanent error; a
 * stop while reconnecting is 0 too.
 */
static int recover(fbl_imap_watch *iw, GError *error)
{
    g_autoptr(GError) err = error;
    for (;;) {
        iw->stats.errors++;
        fbl_metrics_imap_error(iw->box->name, error_kind(err));
        iw->next_uid = 1;
        bool renumbered = g_error_matches(err, FBL_IMAP_ERROR, FBL_IMAP_ERROR_UIDVALIDITY_CHANGED);
        fbl_metrics_imap_connected(iw->box->name, renumbered);
        if (renumbered) {
            g_message("mailbox=%s the folder's UIDVALIDITY changed: reading it from UID 1",
                      iw->box->name);
            return 0; /* connected, the new value recorded */
        }
        if (!fbl_imap_error_is_transient(err))
            return fatal(iw, err);
        g_warning("mailbox=%s %s; reconnecting", iw->box->name, err->message);
        g_clear_error(&err);
        if (fbl_imap_reconnect(iw->imap, stopping_alive, &err)) {
            fbl_metrics_imap_connected(iw->box->name, true);
            return 0;
        }
        if (fbl_daemon_stopping())
            return 0;
    }
}

/* One turn: a batch, or a wait on an empty folder. Returns 1 go on, 0 done, -1 error. */
static int turn(fbl_imap_watch *iw, bool until_idle, GError **error)
{
    g_autoptr(GPtrArray) batch = fbl_imap_next_batch(iw->imap, iw->next_uid, error);
    if (batch == NULL)
        return -1;
    fbl_metrics_imap_woke(iw->box->name);
    if (batch->len > 0)
        return take_batch(iw, batch, error) < 0 ? -1 : 1;
    if (until_idle)
        return 0;
    return fbl_imap_wait(iw->imap, WAIT_MS, stopping_alive, error) ? 1 : -1;
}

int fbl_imap_watch_run(fbl_imap_watch *iw, bool until_idle)
{
    GError *error = NULL;
    int status = fbl_imap_connect(iw->imap, &error) ? 0 : recover(iw, error);
    fbl_metrics_imap_connected(iw->box->name, fbl_imap_is_connected(iw->imap));
    if (status == 0 && !fbl_daemon_stopping())
        g_message("mailbox=%s %s: connected (IDLE %s, MOVE %s)", iw->box->name, iw->box->imap,
                  fbl_imap_has_idle(iw->imap) ? "yes" : "no",
                  fbl_imap_has_move(iw->imap) ? "yes" : "no");
    while (status == 0 && !stopping_alive()) {
        error = NULL;
        int r = turn(iw, until_idle, &error);
        if (r == 0)
            break;
        if (r < 0)
            status = recover(iw, error);
    }
    g_message("mailbox=%s imap done: fetched=%" G_GUINT64_FORMAT " moved=%" G_GUINT64_FORMAT
              " errors=%" G_GUINT64_FORMAT,
              iw->box->name, iw->stats.fetched, iw->stats.moved, iw->stats.errors);
    return status;
}

/* ---- making and freeing -------------------------------------------------------------- */

static bool open_socket(fbl_imap_watch *iw, void *ctx, const char *const *endpoints, GError **error)
{
    iw->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (iw->sock == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "zmq_socket: %s", zmq_strerror(errno));
        return false;
    }
    int linger = 0, hwm = (int) MAX(iw->config->watch_window, 16);
    int64_t max = fbl_wire_max_message(iw->config->max_mail_bytes);
    if (zmq_setsockopt(iw->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(iw->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(iw->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "zmq_setsockopt: %s",
                    zmq_strerror(errno));
        return false;
    }
    iw->curve = fbl_curve_client_new(iw->config, ctx, iw->sock, endpoints, error);
    if (iw->curve == NULL)
        return false;
    for (size_t i = 0; endpoints != NULL && endpoints[i] != NULL; i++) {
        if (zmq_connect(iw->sock, endpoints[i]) != 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "connect %s: %s",
                        endpoints[i], zmq_strerror(errno));
            return false;
        }
    }
    return true;
}

fbl_imap_watch *fbl_imap_watch_new(const fbl_config *config, const fbl_mailbox_config *m,
                                   const fbl_parser *parser, void *zmq_context,
                                   const char *const *endpoints, GError **error)
{
    g_autoptr(fbl_imap_watch) iw = g_new0(fbl_imap_watch, 1);
    iw->config = config;
    iw->box = m;
    iw->parser = parser;
    iw->next_uid = 1;
    iw->imap = imap_for(config, m, error);
    if (iw->imap == NULL || !open_socket(iw, zmq_context, endpoints, error))
        return NULL;
    return g_steal_pointer(&iw);
}

void fbl_imap_watch_free(fbl_imap_watch *iw)
{
    if (iw == NULL)
        return;
    if (iw->sock != NULL)
        zmq_close(iw->sock);
    fbl_curve_free(iw->curve);
    fbl_imap_free(iw->imap);
    g_free(iw);
}

static gpointer thread_main(gpointer data)
{
    fbl_imap_watch *iw = data;
    /* Watched from the start: a first connection that hangs is a stuck thread too. */
    fbl_daemon_alive(FBL_DAEMON_LOOP_IMAP);
    iw->status = fbl_imap_watch_run(iw, iw->until_idle);
    if (iw->status != 0)
        fbl_daemon_request_stop(); /* the process ends with this mailbox's status */
    return NULL;
}

void fbl_imap_watch_start(fbl_imap_watch *iw, bool until_idle)
{
    iw->until_idle = until_idle;
    g_autofree char *name = g_strdup_printf("fbl-imap-%.6s", iw->box->name);
    iw->thread = g_thread_new(name, thread_main, iw);
}

int fbl_imap_watch_join(fbl_imap_watch *iw)
{
    if (iw->thread != NULL)
        g_thread_join(g_steal_pointer(&iw->thread));
    return iw->status;
}

void fbl_imap_watch_get_stats(const fbl_imap_watch *iw, fbl_imap_watch_stats *out)
{
    *out = iw->stats;
}
