/* watch.c - Maildir watcher (see watch.h) */
#define G_LOG_DOMAIN "fbl-watch"
#include "fbl/watch.h"

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <gio/gio.h>
#include <zmq.h>

#include "fbl/curve.h"
#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/mailfile.h"
#include "fbl/maildir.h"
#include "fbl/metrics.h"
#include "fbl/wire.h"

/* A pause before retrying a send the socket refused (no sink connected yet). */
#define SEND_RETRY_MS 500
/* The longest the loop sleeps: it looks at the stop flag this often. */
#define POLL_MAX_MS 200

typedef struct box {
    const fbl_mailbox_config *config;
    int wd; /* inotify watch on new/ */
} box;

typedef struct queued {
    box *box;
    char *name; /* file name in new/ */
} queued;

typedef struct flight {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    GPtrArray *files;  /* queued *: every file in new/ with this content */
    GPtrArray *frames; /* the message, kept to resend */
    size_t bytes;
    int64_t deadline; /* (re)send at this time */
    bool sent;
    unsigned resends;
} flight;

struct fbl_watch {
    const fbl_config *config;
    const fbl_parser *parser;
    void *sock;
    fbl_curve *curve; /* CURVE keys and the handshake monitor, when encrypted */
    int ino;
    GPtrArray *boxes;    /* box * */
    GQueue pending;      /* queued * */
    GHashTable *known;   /* "wd/name" of files pending or in flight */
    GHashTable *flights; /* mail_id -> flight * */
    size_t flight_bytes;
    int64_t next_scan;
    bool more_in_new; /* names left out of the full queue: list new/ again */
    fbl_watch_stats stats;
};

static void queued_free(queued *q)
{
    g_free(q->name);
    g_free(q);
}

static void flight_free(flight *f)
{
    g_ptr_array_unref(f->files);
    g_ptr_array_unref(f->frames);
    g_free(f);
}

static char *known_key(const box *b, const char *name)
{
    return g_strdup_printf("%d/%s", b->wd, name);
}

static void enqueue(fbl_watch *w, box *b, const char *name)
{
    if (name[0] == '.')
        return;
    if (g_queue_get_length(&w->pending) >= w->config->watch_queue_max) {
        w->more_in_new = true; /* it stays in new/ for a later listing */
        return;
    }
    char *key = known_key(b, name);
    if (g_hash_table_contains(w->known, key)) {
        g_free(key);
        return;
    }
    g_hash_table_add(w->known, key);
    queued *q = g_new(queued, 1);
    q->box = b;
    q->name = g_strdup(name);
    g_queue_push_tail(&w->pending, q);
}

static void forget(fbl_watch *w, const queued *q)
{
    g_autofree char *key = known_key(q->box, q->name);
    g_hash_table_remove(w->known, key);
}

static void scan_all(fbl_watch *w)
{
    w->more_in_new = false;
    for (guint i = 0; i < w->boxes->len; i++) {
        box *b = g_ptr_array_index(w->boxes, i);
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) names = fbl_maildir_list_new(b->config->path, &error);
        if (names == NULL) {
            g_warning("mailbox=%s cannot list new/: %s", b->config->name, error->message);
            continue;
        }
        for (guint j = 0; j < names->len; j++)
            enqueue(w, b, g_ptr_array_index(names, j));
    }
    w->next_scan = fbl_now_ms() + FBL_WATCH_RESCAN_MS;
}

static bool send_flight(fbl_watch *w, flight *f)
{
    int64_t now = fbl_now_ms();
    if (!fbl_wire_send(w->sock, f->frames, ZMQ_DONTWAIT)) {
        /* No sink reachable (or its queue is full): try again shortly. */
        f->deadline = now + SEND_RETRY_MS;
        return false;
    }
    if (f->sent) {
        w->stats.resends++;
        fbl_metrics_watch_resend();
        f->resends++;
        fbl_log_event(G_LOG_LEVEL_MESSAGE, f->mail_id, "resend", "no ack within %ums (resend %u)",
                      w->config->watch_ack_timeout_ms, f->resends);
    }
    f->sent = true;
    /* Each resend waits twice as long, up to 16 timeouts: a sink that is down or
     * backing off does not get the same window again and again. */
    f->deadline = now + (int64_t) w->config->watch_ack_timeout_ms * (1 << MIN(f->resends, 4u));
    return true;
}

static fbl_mail_meta meta_for(const box *b, int64_t delivered)
{
    fbl_mail_meta meta = {
        .mailbox = b->config->name,
        .default_feedback_type = b->config->feedback_type,
        .received_at = delivered,
        .raw = b->config->raw,
    };
    return meta;
}

/* Read, parse and send one queued mail (or join it to a flight of the same content). */
static void take(fbl_watch *w, queued *q)
{
    g_autofree char *path = g_build_filename(q->box->config->path, "new", q->name, NULL);
    fbl_mailfile mail;
    g_autoptr(GError) error = NULL;
    if (!fbl_mailfile_read(path, w->config->max_mail_bytes, &mail, &error)) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            g_warning("mailbox=%s cannot read a mail: %s", q->box->config->name, error->message);
        forget(w, q); /* gone, or unreadable: the next scan looks again */
        queued_free(q);
        return;
    }
    flight *same = g_hash_table_lookup(w->flights, mail.mail_id);
    if (same != NULL) {
        g_ptr_array_add(same->files, q); /* a second copy of one mail: retire both */
        fbl_mailfile_clear(&mail);
        return;
    }
    fbl_mail_meta meta = meta_for(q->box, mail.delivered);
    g_autoptr(fbl_parse_result) res = fbl_mailfile_parse(w->parser, &mail, &meta);
    GBytes *raw = mail.data != NULL ? g_byte_array_free_to_bytes(mail.data) : NULL;
    mail.data = NULL;

    flight *f = g_new0(flight, 1);
    g_strlcpy(f->mail_id, res->mail_id, sizeof f->mail_id);
    f->files = g_ptr_array_new_with_free_func((GDestroyNotify) queued_free);
    g_ptr_array_add(f->files, q);
    f->frames = fbl_wire_encode_mail(res, meta.mailbox, meta.received_at, mail.size, raw);
    for (guint i = 0; i < f->frames->len; i++)
        f->bytes += g_bytes_get_size(g_ptr_array_index(f->frames, i));
    if (raw != NULL)
        g_bytes_unref(raw);
    g_hash_table_insert(w->flights, f->mail_id, f);
    w->flight_bytes += f->bytes;
    w->stats.mails_sent++;
    w->stats.reports += res->reports->len;
    w->stats.rejects += res->reject != NULL;
    fbl_metrics_watch_mail(meta.mailbox, res);
    if (res->reject != NULL)
        fbl_log_event(G_LOG_LEVEL_INFO, f->mail_id, "parse", "mailbox=%s reject=%s size=%zu",
                      meta.mailbox, fbl_reject_reason_to_string(res->reject->reason), mail.size);
    else
        fbl_log_event(G_LOG_LEVEL_INFO, f->mail_id, "parse", "mailbox=%s reports=%u size=%zu",
                      meta.mailbox, res->reports->len, mail.size);
    (void) send_flight(w, f);
}

static void fill_window(fbl_watch *w)
{
    if (w->more_in_new && g_queue_get_length(&w->pending) <= w->config->watch_queue_max / 2)
        scan_all(w);
    while (!g_queue_is_empty(&w->pending) &&
           g_hash_table_size(w->flights) < w->config->watch_window &&
           w->flight_bytes < w->config->watch_window_bytes)
        take(w, g_queue_pop_head(&w->pending));
}

static void on_ack(fbl_watch *w, const char *mail_id)
{
    flight *f = g_hash_table_lookup(w->flights, mail_id);
    if (f == NULL)
        return; /* acked twice (a resend went to two sinks), or from an earlier run */
    for (guint i = 0; i < f->files->len; i++) {
        const queued *q = g_ptr_array_index(f->files, i);
        g_autoptr(GError) error = NULL;
        if (!fbl_maildir_retire(q->box->config->path, q->name, &error))
            g_warning("rid=%.12s mailbox=%s %s", mail_id, q->box->config->name, error->message);
        forget(w, q);
    }
    fbl_log_event(G_LOG_LEVEL_INFO, mail_id, "ack", "committed; retired %u file(s) to cur/",
                  f->files->len);
    w->stats.acked++;
    fbl_metrics_watch_acked();
    w->flight_bytes -= f->bytes;
    g_hash_table_remove(w->flights, mail_id);
}

static void read_replies(fbl_watch *w)
{
    for (;;) {
        g_autoptr(GPtrArray) frames = fbl_wire_recv(w->sock, ZMQ_DONTWAIT);
        if (frames == NULL)
            return;
        bool is_ack = false;
        char mail_id[FBL_SHA256_HEX_LEN + 1];
        g_autofree char *reason = NULL;
        g_autoptr(GError) error = NULL;
        if (!fbl_wire_decode_reply(frames, &is_ack, mail_id, &reason, &error))
            g_warning("a sink sent an unreadable reply: %s", error->message);
        else if (is_ack)
            on_ack(w, mail_id);
        else /* a bug in a peer: keep the mail, it is resent after the timeout */
            g_critical("rid=%.12s the sink could not read our message: %s", mail_id,
                       reason != NULL ? reason : "?");
    }
}

static void read_inotify(fbl_watch *w)
{
    char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->ino, buf, sizeof buf);
        if (n <= 0)
            return; /* EAGAIN: all read */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *) p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                w->next_scan = 0; /* events were lost: list new/ again */
                continue;
            }
            for (guint i = 0; ev->len > 0 && i < w->boxes->len; i++) {
                box *b = g_ptr_array_index(w->boxes, i);
                if (b->wd == ev->wd)
                    enqueue(w, b, ev->name);
            }
        }
    }
}

/* Send what is due: first sends the socket refused, and resends past their time. */
static int64_t send_due(fbl_watch *w)
{
    int64_t now = fbl_now_ms(), next = now + POLL_MAX_MS;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, w->flights);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        flight *f = value;
        if (f->deadline <= now)
            (void) send_flight(w, f);
        next = MIN(next, f->deadline);
    }
    return next;
}

static bool poll_once(fbl_watch *w, int64_t wake, GError **error)
{
    int64_t now = fbl_now_ms();
    long timeout = (long) CLAMP(MIN(wake, w->next_scan) - now, 0, POLL_MAX_MS);
    zmq_pollitem_t items[] = {
        {w->sock, 0, ZMQ_POLLIN, 0},
        {NULL, w->ino, ZMQ_POLLIN, 0},
    };
    if (zmq_poll(items, 2, timeout) < 0) {
        if (errno == EINTR)
            return true;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "zmq_poll: %s",
                    zmq_strerror(errno));
        return false;
    }
    if (items[0].revents & ZMQ_POLLIN)
        read_replies(w);
    if (items[1].revents & ZMQ_POLLIN)
        read_inotify(w);
    return true;
}

bool fbl_watch_run(fbl_watch *w, unsigned drain_ms, bool until_idle, GError **error)
{
    scan_all(w);
    int64_t drain_until = 0;
    for (;;) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_WATCH);
        fbl_metrics_watch_window(g_hash_table_size(w->flights), w->flight_bytes,
                                 g_queue_get_length(&w->pending));
        bool stopping = fbl_daemon_stopping();
        if (stopping && drain_until == 0) {
            drain_until = fbl_now_ms() + drain_ms;
            g_message("stopping: waiting up to %ums for %u mail(s) in flight", drain_ms,
                      g_hash_table_size(w->flights));
        }
        if (stopping && (g_hash_table_size(w->flights) == 0 || fbl_now_ms() >= drain_until))
            break;
        if (!stopping)
            fill_window(w);
        if (until_idle && g_queue_is_empty(&w->pending) && g_hash_table_size(w->flights) == 0) {
            scan_all(w); /* anything delivered meanwhile? */
            if (g_queue_is_empty(&w->pending))
                break;
        }
        int64_t wake = send_due(w);
        if (!poll_once(w, wake, error))
            return false;
        if (fbl_now_ms() >= w->next_scan)
            scan_all(w);
    }
    if (g_hash_table_size(w->flights) > 0)
        g_message("stopped with %u mail(s) unacknowledged; they stay in new/ for the next run",
                  g_hash_table_size(w->flights));
    return true;
}

static bool open_boxes(fbl_watch *w, GError **error)
{
    for (guint i = 0; i < w->config->mailboxes->len; i++) {
        const fbl_mailbox_config *mc = g_ptr_array_index(w->config->mailboxes, i);
        if (!fbl_maildir_check(mc->path, false, error))
            return false;
        g_autofree char *new_dir = g_build_filename(mc->path, "new", NULL);
        int wd = inotify_add_watch(w->ino, new_dir, IN_MOVED_TO | IN_CLOSE_WRITE);
        if (wd < 0) {
            int e = errno;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "inotify on %s: %s",
                        new_dir, g_strerror(e));
            return false;
        }
        box *b = g_new0(box, 1);
        b->config = mc;
        b->wd = wd;
        g_ptr_array_add(w->boxes, b);
    }
    return true;
}

static bool open_socket(fbl_watch *w, void *ctx, const char *const *endpoints, GError **error)
{
    w->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (w->sock == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "zmq_socket: %s", zmq_strerror(errno));
        return false;
    }
    int linger = 0, hwm = (int) MAX(w->config->watch_window, 16);
    int64_t max = fbl_wire_max_message(w->config->max_mail_bytes);
    if (zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(w->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(w->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "zmq_setsockopt: %s",
                    zmq_strerror(errno));
        return false;
    }
    w->curve = fbl_curve_client_new(w->config, ctx, w->sock, endpoints, error);
    if (w->curve == NULL)
        return false;
    for (size_t i = 0; endpoints != NULL && endpoints[i] != NULL; i++) {
        if (zmq_connect(w->sock, endpoints[i]) != 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "connect %s: %s",
                        endpoints[i], zmq_strerror(errno));
            return false;
        }
    }
    return true;
}

fbl_watch *fbl_watch_new(const fbl_config *config, const fbl_parser *parser, void *zmq_context,
                         const char *const *endpoints, GError **error)
{
    g_autoptr(fbl_watch) w = g_new0(fbl_watch, 1);
    w->config = config;
    w->parser = parser;
    w->boxes = g_ptr_array_new_with_free_func(g_free);
    g_queue_init(&w->pending);
    w->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w->flights = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) flight_free);
    w->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ino < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "inotify_init1: %s",
                    g_strerror(e));
        return NULL;
    }
    if (config->mailboxes->len == 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "no mailbox to watch: give --maildir or [mailbox:NAME] sections");
        return NULL;
    }
    if (!open_boxes(w, error) || !open_socket(w, zmq_context, endpoints, error))
        return NULL;
    return g_steal_pointer(&w);
}

void fbl_watch_free(fbl_watch *w)
{
    if (w == NULL)
        return;
    if (w->sock != NULL)
        zmq_close(w->sock);
    fbl_curve_free(w->curve);
    if (w->ino >= 0)
        close(w->ino);
    g_queue_clear_full(&w->pending, (GDestroyNotify) queued_free);
    g_hash_table_unref(w->known);
    g_hash_table_unref(w->flights);
    g_ptr_array_unref(w->boxes);
    g_free(w);
}

void fbl_watch_get_stats(const fbl_watch *w, fbl_watch_stats *out)
{
    *out = w->stats;
    out->in_flight = g_hash_table_size(w->flights);
    out->bytes_in_flight = w->flight_bytes;
}
