/* watch.c - Maildir watcher (see watch.h) */
#define G_LOG_DOMAIN "fbl-watch"
#include "fbl/watch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <zmq.h>

#include "fbl/curve.h"
#include "fbl/daemon.h"
#include "fbl/log.h"
#include "fbl/mailfile.h"
#include "fbl/maildir.h"
#include "fbl/maildir_arrival.h"
#include "fbl/metrics.h"
#include "fbl/parse_pool.h"
#include "fbl/watch_queue.h"
#include "fbl/wire.h"

/* A pause before retrying a send the socket refused (no sink connected yet). */
#define SEND_RETRY_MS 500
/* The longest the loop sleeps: it looks at the stop flag this often. */
#define POLL_MAX_MS 200
/* A rename to cur/ that failed is tried again after 1 s, 2 s, 4 s ... up to 60 s. */
#define RETIRE_RETRY_MIN_MS 1000
#define RETIRE_RETRY_MAX_MS 60000
/* Failed renames are logged at most RETIRE_LOG_BURST times per RETIRE_LOG_WINDOW_MS:
 * a missing cur/ fails every mail, and the log must stay readable. */
#define RETIRE_LOG_BURST     5
#define RETIRE_LOG_WINDOW_MS 60000
/* The end of a run names at most this many mails left in new/ unretired. */
#define UNRETIRED_NAMES_MAX 100
/* new/: IN_CREATE for MTAs that link() the mail from tmp/ (Postfix local and
 * virtual, qmail, maildrop), which raises neither of the other two. cur/: the
 * same, for mails others move or save there. tmp/: the files MTAs write. */
#define WATCH_NEW_EVENTS (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_ONLYDIR)
#define WATCH_CUR_EVENTS WATCH_NEW_EVENTS
#define WATCH_TMP_EVENTS (IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR)

typedef struct fbl_watch_box {
    const fbl_mailbox_config *config;
    int wd;     /* inotify watch on new/; also names the box in keys */
    int wd_cur; /* on cur/: mails others moved out of new/; -1 while cur/ is gone */
    int wd_tmp; /* on tmp/: an MTA's unlink() after its link() into new/ */
    fbl_maildir_arrival *arrival; /* what MTAs write in tmp/: links into new/ */
    fbl_maildir_index *index;     /* the mails the sinks committed */
    bool index_failing;           /* the last write to the index failed (said once) */
    bool told_moved;              /* said once that others move mails out of new/ */
} box;

/* A mail from its read to its ack: first in the parse pool (frames NULL), then sent. */
typedef struct flight {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    GPtrArray *files;  /* fbl_watch_file *: every file with this content */
    GPtrArray *frames; /* the message, kept to resend; NULL while it is parsed */
    size_t bytes;      /* of the frames; while it is parsed, of the mail read */
    int64_t deadline;  /* (re)send at this time; INT64_MAX while it is parsed */
    bool sent;
    unsigned resends;
} flight;

struct fbl_watch {
    const fbl_config *config;
    fbl_parse_pool *pool; /* the mails read and not yet sent: parsed there, in order */
    void *sock;
    fbl_curve *curve; /* CURVE keys and the handshake monitor, when encrypted */
    int ino;
    GPtrArray *boxes;       /* box * */
    fbl_watch_queue *queue; /* the files known by name; the names waiting to be read */
    GPtrArray *unretired;   /* fbl_watch_file *: acknowledged, the rename to cur/ failed */
    int64_t next_retire;    /* the earliest due of unretired */
    GHashTable *flights;    /* mail_id -> flight * */
    size_t flight_bytes;
    int64_t next_scan;
    bool held; /* reading no mail: too many unretired (held_by_unretired()) */
    /* the rate limit of retire failure lines */
    int64_t retire_log_until;
    unsigned retire_logged;
    unsigned retire_unlogged;
    fbl_watch_stats stats;
};

static void flight_free(flight *f)
{
    for (guint i = 0; i < f->files->len; i++)
        fbl_watch_file_free(g_ptr_array_index(f->files, i));
    g_ptr_array_unref(f->files);
    if (f->frames != NULL)
        g_ptr_array_unref(f->frames);
    g_free(f);
}

static const char *subdir(bool in_cur)
{
    return in_cur ? "cur" : "new";
}

/* Said once per mailbox: the mails are then read in cur/, which used to be silent loss. */
static void tell_moved(box *b)
{
    if (b->told_moved)
        return;
    b->told_moved = true;
    g_message("mailbox=%s another program moves mails from new/ to cur/ before fbl stored them "
              "(an IMAP server, for a client that opened the folder?): fbl reads them in cur/",
              b->config->name);
}

/* Trouble with a box's index is said once, and again when it is over: a broken
 * disk would fail every mail. Nothing is lost meanwhile (the names are held). */
static void index_result(box *b, const char *what, const GError *error)
{
    if (error == NULL) {
        if (b->index_failing)
            g_message("mailbox=%s %s works again", b->config->name, FBL_MAILDIR_INDEX_FILE);
        b->index_failing = false;
        return;
    }
    if (!b->index_failing)
        g_warning("mailbox=%s %s: %s (mails committed meanwhile may be read again after a "
                  "restart; said once until it works again)",
                  b->config->name, what, error->message);
    b->index_failing = true;
}

/* Whether the sinks committed the mail named @name; another watcher of the same
 * Maildir may have done so a moment ago, so its index is read again first. */
static bool is_committed(box *b, const char *name)
{
    if (fbl_maildir_index_has(b->index, name))
        return true;
    g_autoptr(GError) error = NULL;
    bool ok = fbl_maildir_index_refresh(b->index, &error);
    index_result(b, "cannot read the index", ok ? NULL : error);
    return fbl_maildir_index_has(b->index, name);
}

static bool retire(fbl_watch *w, fbl_watch_file *q);

/* A committed mail still in new/: the rename after its commit did not happen (a
 * crash, or another watcher's rename is on its way). It moves to cur/ unsent. */
static void retire_committed(fbl_watch *w, box *b, const char *name)
{
    fbl_watch_file *q = fbl_watch_queue_track(w->queue, b, b->wd, name);
    fbl_log_event(G_LOG_LEVEL_INFO, NULL, "retire",
                  "mailbox=%s new/%s was committed already: moved to cur/ without a send",
                  b->config->name, name);
    (void) retire(w, q); /* done, or kept in unretired */
}

/*
 * A name in new/ or cur/ (@in_cur), from a listing or an inotify event.
 * @complete: the event says its writer is done (IN_MOVED_TO, IN_CLOSE_WRITE).
 * It may come for a name already queued by IN_CREATE or a listing, or for a
 * mail that moved (new/ -> cur/, a flag): that mail is followed, not read
 * twice. A committed mail is never read again.
 */
static void enqueue(fbl_watch *w, box *b, bool in_cur, const char *name, bool complete)
{
    if (name[0] == '.')
        return;
    fbl_watch_file *known = fbl_watch_queue_lookup(w->queue, b->wd, name);
    if (known != NULL) {
        if (fbl_watch_queue_follow(known, in_cur, name))
            tell_moved(b);
        known->complete = known->complete || complete;
        return;
    }
    if (is_committed(b, name)) {
        if (!in_cur)
            retire_committed(w, b, name);
        return;
    }
    if (fbl_watch_queue_is_skipped(w->queue, b->wd, b->config->path, in_cur, name))
        return;
    fbl_watch_file *q = fbl_watch_queue_add(w->queue, b, b->wd, in_cur, name);
    if (q == NULL)
        return; /* the queue is full: a later listing finds it */
    if (in_cur)
        tell_moved(b);
    q->complete = complete || (!in_cur && fbl_maildir_arrival_is_linked(b->arrival, name));
}

static bool not_committed(const char *name, void *data)
{
    return !fbl_maildir_index_has(data, name);
}

/* Queue what @b's new/ (or cur/) holds; in cur/, only what the index does not know. */
static void scan_dir(fbl_watch *w, box *b, bool in_cur)
{
    g_autoptr(GError) error = NULL;
    guint total = 0;
    g_autoptr(GPtrArray) names = fbl_maildir_list(
        b->config->path, subdir(in_cur), in_cur ? not_committed : NULL, b->index, &total, &error);
    if (names == NULL) {
        g_warning("mailbox=%s cannot list %s/: %s", b->config->name, subdir(in_cur),
                  error->message);
        return;
    }
    if (in_cur)
        fbl_maildir_index_note_cur(b->index, total);
    fbl_watch_queue_prune_skipped(w->queue, b->wd, in_cur, names);
    for (guint j = 0; j < names->len; j++)
        enqueue(w, b, in_cur, g_ptr_array_index(names, j), false);
}

/* Watch cur/ again once it is back (it was removed, or a file took its place). */
static void rewatch_cur(fbl_watch *w, box *b)
{
    if (b->wd_cur >= 0)
        return;
    g_autofree char *dir = g_build_filename(b->config->path, "cur", NULL);
    b->wd_cur = inotify_add_watch(w->ino, dir, WATCH_CUR_EVENTS);
}

static void compact_if_due(box *b)
{
    if (!fbl_maildir_index_compact_due(b->index))
        return;
    g_autoptr(GError) error = NULL;
    bool ok = fbl_maildir_index_compact(b->index, &error);
    index_result(b, "cannot compact the index", ok ? NULL : error);
    if (ok)
        g_info("mailbox=%s %s compacted: %u names", b->config->name, FBL_MAILDIR_INDEX_FILE,
               fbl_maildir_index_size(b->index));
}

/* List new/ and cur/ (with @in_new, @in_cur) of every box. new/ goes first: a mail
 * moved from new/ to cur/ meanwhile is then found in cur/. */
static void scan(fbl_watch *w, bool in_new, bool in_cur)
{
    fbl_watch_queue_listed(w->queue, in_new, in_cur);
    for (guint i = 0; i < w->boxes->len; i++) {
        box *b = g_ptr_array_index(w->boxes, i);
        if (in_new)
            scan_dir(w, b, false);
        if (in_cur) {
            rewatch_cur(w, b);
            scan_dir(w, b, true);
        }
        compact_if_due(b);
    }
}

static void scan_all(fbl_watch *w)
{
    scan(w, true, true);
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

/* close() of a mail file only read from: a failure loses nothing, but is not hidden. */
static void close_mail(int fd, const char *path)
{
    if (close(fd) != 0)
        g_debug("close %s: %s", path, g_strerror(errno));
}

/* Not a regular file: say so once, count it, remember it by name and inode, and
 * leave it where it is (not ours to delete). Its contents are never read. */
static void skip(fbl_watch *w, fbl_watch_file *q, const struct stat *st)
{
    const char *kind = fbl_mailfile_kind(st->st_mode);
    g_warning("mailbox=%s %s/%s is a %s, not a mail file: skipped, left in place and ignored "
              "while it stays",
              q->box->config->name, subdir(q->in_cur), q->name, kind);
    w->stats.skipped++;
    fbl_metrics_watch_skipped(q->box->config->name, kind);
    fbl_watch_queue_skip(w->queue, q, st);
}

static void not_opened(fbl_watch *w, fbl_watch_file *q, const struct stat *st, const GError *error)
{
    if (g_error_matches(error, FBL_MAILFILE_ERROR, FBL_MAILFILE_ERROR_NOT_REGULAR)) {
        skip(w, q, st);
        return;
    }
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_warning("mailbox=%s cannot read a mail: %s", q->box->config->name, error->message);
    /* Gone (moved: the event of its new name queues it again; or deleted), or
     * unreadable: the next listing looks again. */
    fbl_watch_queue_forget(w->queue, q);
}

/* @q: where the mail was read; "in=cur" marks a mail another program moved out of new/. */
static void log_parsed(const fbl_parse_result *res, const char *mail_id, const fbl_watch_file *q,
                       size_t size)
{
    const char *mailbox = q->box->config->name, *in = q->in_cur ? " in=cur" : "";
    if (res->reject != NULL)
        fbl_log_event(G_LOG_LEVEL_INFO, mail_id, "parse", "mailbox=%s reject=%s size=%zu%s",
                      mailbox, fbl_reject_reason_to_string(res->reject->reason), size, in);
    else
        fbl_log_event(G_LOG_LEVEL_INFO, mail_id, "parse", "mailbox=%s reports=%u size=%zu%s",
                      mailbox, res->reports->len, size, in);
}

/* Hand @mail, read from @q's file, to the parse pool (or join it to a flight of the
 * same content). It is in the window from now on: counted by its bytes read until
 * its message is made (sent_parsed()). */
static void dispatch(fbl_watch *w, fbl_watch_file *q, fbl_mailfile *mail)
{
    g_strlcpy(q->mail_id, mail->mail_id, sizeof q->mail_id);
    flight *same = g_hash_table_lookup(w->flights, mail->mail_id);
    if (same != NULL) {
        g_ptr_array_add(same->files, q); /* a second copy of one mail: retire both */
        fbl_mailfile_clear(mail);
        return;
    }
    flight *f = g_new0(flight, 1);
    g_strlcpy(f->mail_id, mail->mail_id, sizeof f->mail_id);
    f->files = g_ptr_array_new();
    g_ptr_array_add(f->files, q);
    f->bytes = mail->data != NULL ? mail->data->len : 0;
    f->deadline = INT64_MAX;
    g_hash_table_insert(w->flights, f->mail_id, f);
    w->flight_bytes += f->bytes;
    fbl_mail_meta meta = meta_for(q->box, mail->delivered);
    fbl_parse_pool_push(w->pool, fbl_parse_job_new(mail, &meta));
}

/* A parsed mail: its flight takes the message, counts it, logs it, and sends it. */
static void send_parsed(fbl_watch *w, fbl_parse_job *job)
{
    flight *f = g_hash_table_lookup(w->flights, job->mail.mail_id);
    /* Only an ack ends a flight, and take_acked() leaves those not sent yet. */
    g_assert(f != NULL && f->frames == NULL);
    f->frames = g_steal_pointer(&job->frames);
    w->flight_bytes = w->flight_bytes - f->bytes + job->bytes;
    f->bytes = job->bytes;
    const fbl_parse_result *res = job->result;
    w->stats.mails_sent++;
    w->stats.reports += res->reports->len;
    w->stats.rejects += res->reject != NULL;
    fbl_metrics_watch_mail(job->meta.mailbox, res);
    log_parsed(res, f->mail_id, g_ptr_array_index(f->files, 0), job->mail.size);
    (void) send_flight(w, f);
}

/* Send what the parse pool has finished, in the order the mails were read. */
static void send_finished(fbl_watch *w)
{
    fbl_parse_job *job;
    while ((job = fbl_parse_pool_pop(w->pool)) != NULL) {
        send_parsed(w, job);
        fbl_parse_job_free(job);
    }
}

/* Read one queued mail and hand it to the parse pool; a young one waits in settling, a file
 * that is not regular is skipped. */
static void take(fbl_watch *w, fbl_watch_file *q)
{
    g_autofree char *path =
        g_build_filename(q->box->config->path, subdir(q->in_cur), q->name, NULL);
    struct stat st;
    g_autoptr(GError) error = NULL;
    int fd = fbl_mailfile_open_regular(path, &st, &error);
    if (fd < 0) {
        not_opened(w, q, &st, error);
        return;
    }
    /* renamed into new/, closed, or linked from tmp/; else it may still be written */
    if (!fbl_maildir_arrival_is_settled(&q->settle, q->complete, &st, FBL_WATCH_SETTLE_MS,
                                        &q->due)) {
        close_mail(fd, path);
        fbl_watch_queue_wait(w->queue, q);
        return;
    }
    fbl_mailfile mail;
    bool ok = fbl_mailfile_read_fd(fd, path, &st, w->config->max_mail_bytes, &mail, &error);
    close_mail(fd, path);
    if (!ok) {
        g_warning("mailbox=%s cannot read a mail: %s", q->box->config->name, error->message);
        fbl_watch_queue_forget(w->queue, q); /* the next scan looks again */
        return;
    }
    dispatch(w, q, &mail);
}

/* Too many mails are stored but not in cur/: store no more until they are (each
 * one costs memory for the process's life, and is sent again after a restart). */
static bool held_by_unretired(const fbl_watch *w)
{
    return w->unretired->len >= w->config->watch_queue_max;
}

/* Say when the watcher stops reading mail for that, and when it goes on. */
static void log_held(fbl_watch *w)
{
    bool held = held_by_unretired(w);
    if (held && !w->held)
        g_warning("%u stored mails could not be moved to cur/ (watch.queue_max): reading no "
                  "more mail until they are",
                  w->unretired->len);
    else if (!held && w->held)
        g_message("stored mails move to cur/ again: reading mail again");
    w->held = held;
}

static void fill_window(fbl_watch *w)
{
    log_held(w);
    bool in_new = false, in_cur = false;
    if (fbl_watch_queue_wants_listing(w->queue, &in_new, &in_cur))
        scan(w, in_new, in_cur);
    while (fbl_watch_queue_has_pending(w->queue) &&
           g_hash_table_size(w->flights) < w->config->watch_window &&
           w->flight_bytes < w->config->watch_window_bytes && !held_by_unretired(w)) {
        take(w, fbl_watch_queue_pop(w->queue));
        /* One parse thread: parsed just now, sent at once (read, parse, send, mail by
         * mail); with workers, what they finished meanwhile. */
        send_finished(w);
    }
}

/* A metric label for why a rename to cur/ failed: the errno's name. */
static const char *retire_reason(const GError *error)
{
    static const struct {
        GFileError code;
        const char *name;
    } names[] = {
        {G_FILE_ERROR_NOENT, "enoent"}, {G_FILE_ERROR_NOTDIR, "enotdir"},
        {G_FILE_ERROR_ACCES, "eacces"}, {G_FILE_ERROR_PERM, "eperm"},
        {G_FILE_ERROR_NOSPC, "enospc"}, {G_FILE_ERROR_ROFS, "erofs"},
        {G_FILE_ERROR_IO, "eio"},       {G_FILE_ERROR_NAMETOOLONG, "enametoolong"},
        {G_FILE_ERROR_EXIST, "eexist"}, {G_FILE_ERROR_ISDIR, "eisdir"},
    };
    for (size_t i = 0; error->domain == G_FILE_ERROR && i < G_N_ELEMENTS(names); i++) {
        if (error->code == (int) names[i].code)
            return names[i].name;
    }
    return "other";
}

/* One line per failed rename, at most RETIRE_LOG_BURST per window; the lines left
 * out are counted in the first line of the next window. */
static void log_retire_failure(fbl_watch *w, const fbl_watch_file *q, int64_t retry_ms)
{
    int64_t now = fbl_now_ms();
    if (now >= w->retire_log_until) {
        if (w->retire_unlogged > 0)
            g_warning("%u more failure(s) to move stored mails to cur/ were not logged",
                      w->retire_unlogged);
        w->retire_log_until = now + RETIRE_LOG_WINDOW_MS;
        w->retire_logged = 0;
        w->retire_unlogged = 0;
    }
    if (w->retire_logged >= RETIRE_LOG_BURST) {
        w->retire_unlogged++;
        return;
    }
    w->retire_logged++;
    fbl_log_event(G_LOG_LEVEL_WARNING, q->mail_id, "retire",
                  "mailbox=%s stored, but %s (failure %u; it stays in new/, not sent again; "
                  "next try in %" G_GINT64_FORMAT " s; %u mail(s) await cur/)",
                  q->box->config->name, q->retire_error, q->retire_failures, retry_ms / 1000,
                  w->unretired->len);
}

/*
 * Move @q's file to cur/. Returns: true when done (@q is freed; the caller
 * takes it out of unretired), false when the rename failed: counted, logged
 * (rate-limited), @q in unretired with @q->due set for the next try.
 */
static bool retire(fbl_watch *w, fbl_watch_file *q)
{
    g_autoptr(GError) error = NULL;
    /* A mail in cur/ (an IMAP server moved it) stays as it is: its line in the index
     * was all it needed; fbl never renames a mail in cur/, where users flag it. */
    if (q->in_cur || fbl_maildir_retire(q->box->config->path, q->name, &error)) {
        if (q->retire_failures > 0)
            fbl_log_event(G_LOG_LEVEL_MESSAGE, q->mail_id, "retire",
                          "mailbox=%s new/%s moved to cur/ after %u failure(s)",
                          q->box->config->name, q->name, q->retire_failures);
        fbl_watch_queue_forget(w->queue, q);
        return true;
    }
    q->retire_failures++;
    g_free(q->retire_error);
    q->retire_error = g_strdup(error->message);
    int64_t retry_ms =
        MIN((int64_t) RETIRE_RETRY_MIN_MS << MIN(q->retire_failures - 1, 6u), RETIRE_RETRY_MAX_MS);
    q->due = fbl_now_ms() + retry_ms;
    if (q->retire_failures == 1)
        g_ptr_array_add(w->unretired, q);
    w->next_retire = MIN(w->next_retire, q->due);
    w->stats.retire_failures++;
    fbl_metrics_watch_retire_failure(q->box->config->name, retire_reason(error));
    log_retire_failure(w, q, retry_ms);
    return false;
}

/* Try again the renames whose time has come (all of them with @all); returns the next due. */
static int64_t retire_due(fbl_watch *w, bool all)
{
    int64_t now = fbl_now_ms();
    if (!all && now < w->next_retire)
        return w->next_retire;
    int64_t next = INT64_MAX;
    for (guint i = w->unretired->len; i-- > 0;) {
        fbl_watch_file *q = g_ptr_array_index(w->unretired, i);
        if ((all || q->due <= now) && retire(w, q))
            g_ptr_array_remove_index_fast(w->unretired, i);
        else
            next = MIN(next, q->due);
    }
    w->next_retire = next;
    return next;
}

/* An ack: the flight leaves the window; its files are retired with the others of
 * the same burst of acks (commit_acked()). */
static void take_acked(fbl_watch *w, const char *mail_id, GPtrArray *acked)
{
    flight *f = g_hash_table_lookup(w->flights, mail_id);
    if (f == NULL || f->frames == NULL)
        return; /* acked twice (a resend went to two sinks), from an earlier run, or for
                 * a mail of the same content not sent yet by this one */
    g_hash_table_steal(w->flights, mail_id);
    w->flight_bytes -= f->bytes;
    w->stats.acked++;
    fbl_metrics_watch_acked();
    g_ptr_array_add(acked, f);
}

/* Mark the files of @b among the @acked flights committed: one write and fsync. */
static void mark_committed(box *b, const GPtrArray *acked)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    for (guint i = 0; i < acked->len; i++) {
        const flight *f = g_ptr_array_index(acked, i);
        for (guint j = 0; j < f->files->len; j++) {
            const fbl_watch_file *q = g_ptr_array_index(f->files, j);
            if (q->box == b)
                g_ptr_array_add(names, q->name);
        }
    }
    if (names->len == 0)
        return;
    g_autoptr(GError) error = NULL;
    bool ok =
        fbl_maildir_index_add(b->index, (const char *const *) names->pdata, names->len, &error);
    index_result(b, "cannot write the index", ok ? NULL : error);
    compact_if_due(b);
}

/* Retire every file of @f: those in new/ move to cur/. */
static void retire_flight(fbl_watch *w, flight *f)
{
    /* A file that cannot be retired is stored all the same: it stays known, so no
     * listing sends it again, and only its rename is retried (unretired). */
    unsigned files = f->files->len, retired = 0;
    for (guint i = 0; i < files; i++)
        retired += retire(w, g_ptr_array_index(f->files, i));
    g_ptr_array_set_size(f->files, 0); /* each one freed or kept in unretired */
    fbl_log_event(G_LOG_LEVEL_INFO, f->mail_id, "ack",
                  "committed; retired %u of %u file(s) to cur/", retired, files);
}

/* The sinks committed the @acked mails: mark them in their mailboxes' indexes first,
 * then move those in new/ to cur/. A crash between the two leaves a committed mail
 * in new/, which the next run moves unsent; the other order would leave one in cur/
 * that the index does not know, and the next run would read it again. */
static void commit_acked(fbl_watch *w, const GPtrArray *acked)
{
    if (acked->len == 0)
        return;
    for (guint i = 0; i < w->boxes->len; i++)
        mark_committed(g_ptr_array_index(w->boxes, i), acked);
    for (guint i = 0; i < acked->len; i++)
        retire_flight(w, g_ptr_array_index(acked, i));
}

static void read_replies(fbl_watch *w)
{
    g_autoptr(GPtrArray) acked = g_ptr_array_new_with_free_func((GDestroyNotify) flight_free);
    for (;;) {
        g_autoptr(GPtrArray) frames = fbl_wire_recv(w->sock, ZMQ_DONTWAIT);
        if (frames == NULL)
            break;
        bool is_ack = false;
        char mail_id[FBL_SHA256_HEX_LEN + 1];
        g_autofree char *reason = NULL;
        g_autoptr(GError) error = NULL;
        if (!fbl_wire_decode_reply(frames, &is_ack, mail_id, &reason, &error))
            g_warning("a sink sent an unreadable reply: %s", error->message);
        else if (is_ack)
            take_acked(w, mail_id, acked);
        else /* a bug in a peer: keep the mail, it is resent after the timeout */
            g_critical("rid=%.12s the sink could not read our message: %s", mail_id,
                       reason != NULL ? reason : "?");
    }
    commit_acked(w, acked);
}

/* One event on a watched directory of @b. */
static void on_event(fbl_watch *w, box *b, const struct inotify_event *ev)
{
    if (ev->wd == b->wd_cur && (ev->mask & IN_IGNORED)) {
        b->wd_cur = -1; /* cur/ is gone: the rescans watch it again once it is back */
        return;
    }
    if (ev->len == 0)
        return;
    if (ev->wd == b->wd_tmp) {
        fbl_maildir_arrival_tmp_event(b->arrival, ev->mask, ev->name);
        return;
    }
    /* IN_CREATE alone is a link() from tmp/ or a file still being
     * written; IN_MOVED_TO and IN_CLOSE_WRITE say the writer is done. */
    bool complete = (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) != 0;
    enqueue(w, b, ev->wd == b->wd_cur, ev->name, complete);
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
                w->next_scan = 0; /* events were lost: list new/ and cur/ again */
                continue;
            }
            for (guint i = 0; i < w->boxes->len; i++) {
                box *b = g_ptr_array_index(w->boxes, i);
                if (b->wd == ev->wd || b->wd_cur == ev->wd || b->wd_tmp == ev->wd)
                    on_event(w, b, ev);
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
    int parsed_fd = fbl_parse_pool_fd(w->pool);
    zmq_pollitem_t items[] = {
        {w->sock, 0, ZMQ_POLLIN, 0},
        {NULL, w->ino, ZMQ_POLLIN, 0},
        {NULL, parsed_fd, ZMQ_POLLIN, 0},
    };
    if (zmq_poll(items, parsed_fd >= 0 ? 3 : 2, timeout) < 0) {
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
    if (items[2].revents & ZMQ_POLLIN)
        send_finished(w);
    return true;
}

static bool nothing_queued(const fbl_watch *w)
{
    return fbl_watch_queue_names(w->queue) == 0 && g_hash_table_size(w->flights) == 0;
}

/* --once: done when nothing waits, settles or flies and new/ holds nothing new,
 * or when unretired mails hold the watcher (it would wait for them forever). */
static bool idle(fbl_watch *w)
{
    if (held_by_unretired(w))
        return true;
    if (!nothing_queued(w))
        return false;
    scan_all(w); /* anything delivered meanwhile? */
    return nothing_queued(w);
}

/* The end of a run: one last try of the failed renames, then name what stays in new/. */
static void report_unfinished(fbl_watch *w)
{
    if (g_hash_table_size(w->flights) > 0)
        g_message("stopped with %u mail(s) unacknowledged; they stay in new/ for the next run",
                  g_hash_table_size(w->flights));
    if (w->unretired->len == 0)
        return;
    (void) retire_due(w, true);
    for (guint i = 0; i < w->unretired->len && i < UNRETIRED_NAMES_MAX; i++) {
        const fbl_watch_file *q = g_ptr_array_index(w->unretired, i);
        fbl_log_event(G_LOG_LEVEL_WARNING, q->mail_id, "retire",
                      "mailbox=%s new/%s is stored but could not be moved to cur/ after %u "
                      "attempt(s): %s",
                      q->box->config->name, q->name, q->retire_failures, q->retire_error);
    }
    if (w->unretired->len > UNRETIRED_NAMES_MAX)
        g_warning("and %u more mail(s) stored but not moved to cur/",
                  w->unretired->len - UNRETIRED_NAMES_MAX);
}

static void publish_gauges(const fbl_watch *w)
{
    fbl_metrics_watch_window(g_hash_table_size(w->flights), w->flight_bytes,
                             fbl_watch_queue_names(w->queue));
    fbl_metrics_watch_retire_pending(w->unretired->len);
}

bool fbl_watch_run(fbl_watch *w, unsigned drain_ms, bool until_idle, GError **error)
{
    scan_all(w);
    int64_t drain_until = 0;
    for (;;) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_WATCH);
        publish_gauges(w);
        bool stopping = fbl_daemon_stopping();
        if (stopping && drain_until == 0) {
            drain_until = fbl_now_ms() + drain_ms;
            g_message("stopping: waiting up to %ums for %u mail(s) in flight", drain_ms,
                      g_hash_table_size(w->flights));
        }
        if (stopping && (g_hash_table_size(w->flights) == 0 || fbl_now_ms() >= drain_until))
            break;
        fbl_watch_queue_settle_due(w->queue, fbl_now_ms());
        if (!stopping)
            fill_window(w);
        if (until_idle && idle(w))
            break;
        int64_t wake =
            MIN(send_due(w), MIN(fbl_watch_queue_settle_wake(w->queue), retire_due(w, false)));
        if (!poll_once(w, wake, error))
            return false;
        if (fbl_now_ms() >= w->next_scan)
            scan_all(w);
    }
    report_unfinished(w);
    publish_gauges(w);
    return true;
}

static void box_free(box *b)
{
    fbl_maildir_index_free(b->index);
    fbl_maildir_arrival_free(b->arrival);
    g_free(b);
}

static int watch_dir(fbl_watch *w, const char *maildir, const char *sub, uint32_t mask,
                     GError **error)
{
    g_autofree char *dir = g_build_filename(maildir, sub, NULL);
    int wd = inotify_add_watch(w->ino, dir, mask);
    if (wd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "inotify on %s: %s", dir,
                    g_strerror(e));
    }
    return wd;
}

/* The index of @b's Maildir; its making from cur/ is said once, here. */
static bool open_index(box *b, GError **error)
{
    int adopted = -1;
    b->index = fbl_maildir_index_open(b->config->path, &adopted, error);
    if (b->index == NULL) {
        g_prefix_error(error, "mailbox=%s: the index of committed mails in the Maildir's root: ",
                       b->config->name);
        return false;
    }
    if (adopted > 0)
        g_message("mailbox=%s %s/%s made: the %d mail(s) in cur/ are taken as stored by an "
                  "earlier fbl and not read (to have them read, stop fbl, make that file empty "
                  "and start it)",
                  b->config->name, b->config->path, FBL_MAILDIR_INDEX_FILE, adopted);
    else if (adopted == 0)
        g_info("mailbox=%s %s/%s made", b->config->name, b->config->path, FBL_MAILDIR_INDEX_FILE);
    return true;
}

static bool open_box(fbl_watch *w, box *b, GError **error)
{
    const char *path = b->config->path;
    if (!fbl_maildir_check(path, false, error) || !open_index(b, error))
        return false;
    b->wd = watch_dir(w, path, "new", WATCH_NEW_EVENTS, error);
    b->wd_cur = b->wd < 0 ? -1 : watch_dir(w, path, "cur", WATCH_CUR_EVENTS, error);
    b->wd_tmp = b->wd_cur < 0 ? -1 : watch_dir(w, path, "tmp", WATCH_TMP_EVENTS, error);
    return b->wd_tmp >= 0;
}

static bool open_boxes(fbl_watch *w, GError **error)
{
    for (guint i = 0; i < w->config->mailboxes->len; i++) {
        const fbl_mailbox_config *m = g_ptr_array_index(w->config->mailboxes, i);
        if (m->path == NULL)
            continue; /* an IMAP mailbox: imap_watch.h, in a thread of its own */
        box *b = g_new0(box, 1);
        b->config = m;
        b->wd = b->wd_cur = b->wd_tmp = -1;
        b->arrival = fbl_maildir_arrival_new(b->config->path);
        g_ptr_array_add(w->boxes, b);
        if (!open_box(w, b, error))
            return false;
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
    w->boxes = g_ptr_array_new_with_free_func((GDestroyNotify) box_free);
    w->queue = fbl_watch_queue_new(config->watch_queue_max);
    w->unretired = g_ptr_array_new();
    w->next_retire = INT64_MAX;
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
    unsigned threads = config->watch_parse_threads > 0 ? config->watch_parse_threads
                                                       : (unsigned) g_get_num_processors();
    w->pool = fbl_parse_pool_new(parser, threads, error);
    if (w->pool == NULL)
        return NULL;
    return g_steal_pointer(&w);
}

void fbl_watch_free(fbl_watch *w)
{
    if (w == NULL)
        return;
    fbl_parse_pool_free(w->pool); /* joins the workers */
    if (w->sock != NULL)
        zmq_close(w->sock);
    fbl_curve_free(w->curve);
    if (w->ino >= 0 && close(w->ino) != 0)
        g_debug("close inotify: %s", g_strerror(errno));
    fbl_watch_queue_free(w->queue);
    for (guint i = 0; i < w->unretired->len; i++)
        fbl_watch_file_free(g_ptr_array_index(w->unretired, i));
    g_ptr_array_unref(w->unretired);
    g_hash_table_unref(w->flights);
    g_ptr_array_unref(w->boxes);
    g_free(w);
}

void fbl_watch_get_stats(const fbl_watch *w, fbl_watch_stats *out)
{
    *out = w->stats;
    out->in_flight = g_hash_table_size(w->flights);
    out->bytes_in_flight = w->flight_bytes;
    out->retire_pending = w->unretired->len;
}

unsigned fbl_watch_unretired(const fbl_watch *w)
{
    return w->unretired->len;
}
