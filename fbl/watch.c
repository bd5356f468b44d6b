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
#include "fbl/metrics.h"
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
/* Files being written in tmp/ remembered at most (more means events were missed). */
#define TMP_FILES_MAX 4096

typedef struct box {
    const fbl_mailbox_config *config;
    int wd;                   /* inotify watch on new/; also names the box in keys */
    int wd_cur;               /* on cur/: mails others moved out of new/; -1 while cur/ is gone */
    int wd_tmp;               /* on tmp/: an MTA's unlink() after its link() into new/ */
    fbl_maildir_index *index; /* the mails the sinks committed */
    bool index_failing;       /* the last write to the index failed (said once) */
    bool told_moved;          /* said once that others move mails out of new/ */
    GHashTable *tmp_files;    /* name in tmp/ -> file_id *: what MTAs are writing */
    GHashTable *tmp_closed;   /* names in tmp/ whose writer closed them (a set) */
} box;

typedef struct queued {
    box *box;
    char *name;    /* file name in new/ or, when in_cur, cur/ */
    bool in_cur;   /* moved out of new/ by another program (an IMAP server) */
    bool complete; /* its writer is done: renamed into place or closed (inotify said so) */
    /* A young file, maybe still being written: what it looked like, since when. */
    bool settling;
    off_t size;
    int64_t mtime_ms;
    int64_t since;
    int64_t due; /* settling: look again; unretired: try the rename again */
    /* Read (empty when committed before this run); stored, not moved to cur/ yet. */
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    unsigned retire_failures;
    char *retire_error; /* the last failure's message */
} queued;

/* A file by its inode: a name in new/ or cur/ that is not a regular file (left alone
 * while it is the same file), or a file an MTA is writing in tmp/. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id;

typedef struct flight {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    GPtrArray *files;  /* queued *: every file with this content */
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
    GPtrArray *boxes;     /* box * */
    GQueue pending;       /* queued *: to read */
    GQueue settling;      /* queued *: young files, read once their writer is done */
    GPtrArray *unretired; /* queued *: acknowledged, the rename to cur/ failed */
    int64_t next_retire;  /* the earliest due of unretired */
    GHashTable *known;    /* "wd/unique" -> queued * (borrowed): pending, settling, in flight
                             or unretired, wherever the file moves; never read again */
    GHashTable *skipped;  /* "wd/new/name", "wd/cur/name" -> file_id *: not regular files */
    GHashTable *flights;  /* mail_id -> flight * */
    size_t flight_bytes;
    int64_t next_scan;
    bool more_in_new; /* names left out of the full queue: list new/ again */
    bool more_in_cur; /* the same in cur/ */
    bool held;        /* reading no mail: too many unretired (held_by_unretired()) */
    /* the rate limit of retire failure lines */
    int64_t retire_log_until;
    unsigned retire_logged;
    unsigned retire_unlogged;
    fbl_watch_stats stats;
};

static void queued_free(queued *q)
{
    g_free(q->name);
    g_free(q->retire_error);
    g_free(q);
}

static void flight_free(flight *f)
{
    for (guint i = 0; i < f->files->len; i++)
        queued_free(g_ptr_array_index(f->files, i));
    g_ptr_array_unref(f->files);
    g_ptr_array_unref(f->frames);
    g_free(f);
}

static const char *subdir(bool in_cur)
{
    return in_cur ? "cur" : "new";
}

/* A mail's key: its box and the unique part of its name, which stays the same when an
 * IMAP server moves it to cur/ and whenever a user's flag renames it there. */
static char *known_key(const box *b, const char *name)
{
    return g_strdup_printf("%d/%.*s", b->wd, (int) fbl_maildir_unique_len(name), name);
}

static char *skipped_key(const box *b, bool in_cur, const char *name)
{
    return g_strdup_printf("%d/%s/%s", b->wd, subdir(in_cur), name);
}

static unsigned queued_names(const fbl_watch *w)
{
    return w->pending.length + w->settling.length;
}

/* Whether @name is the very file skipped before; a file that replaced it under
 * the same name (another inode) is looked at anew. */
static bool still_skipped(fbl_watch *w, const box *b, bool in_cur, const char *name)
{
    g_autofree char *key = skipped_key(b, in_cur, name);
    const file_id *s = g_hash_table_lookup(w->skipped, key);
    if (s == NULL)
        return false;
    g_autofree char *path = g_build_filename(b->config->path, subdir(in_cur), name, NULL);
    struct stat st;
    if (lstat(path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        return true;
    g_hash_table_remove(w->skipped, key);
    return false;
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

/* @q's file is now @name in new/ or cur/: an IMAP server moved it, or a flag renamed it. */
static void moved(queued *q, bool in_cur, const char *name)
{
    if (q->in_cur == in_cur && strcmp(q->name, name) == 0)
        return;
    g_free(q->name);
    q->name = g_strdup(name);
    if (in_cur && !q->in_cur)
        tell_moved(q->box);
    q->in_cur = in_cur;
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

static bool retire(fbl_watch *w, queued *q);

/* A committed mail still in new/: the rename after its commit did not happen (a
 * crash, or another watcher's rename is on its way). It moves to cur/ unsent. */
static void retire_committed(fbl_watch *w, box *b, const char *name)
{
    queued *q = g_new0(queued, 1);
    q->box = b;
    q->name = g_strdup(name);
    g_hash_table_insert(w->known, known_key(b, name), q);
    fbl_log_event(G_LOG_LEVEL_INFO, NULL, "retire",
                  "mailbox=%s new/%s was committed already: moved to cur/ without a send",
                  b->config->name, name);
    (void) retire(w, q); /* done, or kept in unretired */
}

/*
 * One inotify queue keeps the order of events: a file closed in tmp/ whose
 * name is gone from tmp/ (or is this very inode) by the time its link shows
 * up in new/ is that link (Postfix writes tmp/A, links it as new/B, unlinks
 * tmp/A, often before the watcher has looked at tmp/A at all). Each closed
 * tmp/ file accounts for one link: it is forgotten once matched.
 */
static bool closed_in_tmp_and_gone(box *b, const struct stat *linked)
{
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, b->tmp_closed);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        g_autofree char *path = g_build_filename(b->config->path, "tmp", (const char *) key, NULL);
        struct stat st;
        bool found = lstat(path, &st) == 0;
        bool gone = !found && errno == ENOENT;
        if (gone || (found && st.st_dev == linked->st_dev && st.st_ino == linked->st_ino)) {
            g_hash_table_iter_remove(&it);
            return true;
        }
    }
    return false;
}

/* An MTA that link()s a finished mail from tmp/ into new/ (Postfix virtual and
 * local, qmail, maildrop) raises IN_CREATE only, like a writer in new/ itself;
 * but the inode of a link is one seen in tmp/ a moment before. */
static bool linked_from_tmp(box *b, const char *name)
{
    g_autofree char *path = g_build_filename(b->config->path, "new", name, NULL);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    /* Still linked from tmp/ too: the MTA has not unlinked its tmp/ name yet. */
    if (st.st_nlink >= 2)
        return true;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, b->tmp_files);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const file_id *t = value;
        if (t->dev == st.st_dev && t->ino == st.st_ino)
            return true;
    }
    return closed_in_tmp_and_gone(b, &st);
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
    g_autofree char *key = known_key(b, name);
    queued *known = g_hash_table_lookup(w->known, key);
    if (known != NULL) {
        moved(known, in_cur, name);
        known->complete = known->complete || complete;
        return;
    }
    if (is_committed(b, name)) {
        if (!in_cur)
            retire_committed(w, b, name);
        return;
    }
    if (still_skipped(w, b, in_cur, name))
        return;
    if (queued_names(w) >= w->config->watch_queue_max) {
        /* it stays where it is for a later listing */
        *(in_cur ? &w->more_in_cur : &w->more_in_new) = true;
        return;
    }
    if (in_cur)
        tell_moved(b);
    queued *q = g_new0(queued, 1);
    q->box = b;
    q->name = g_strdup(name);
    q->in_cur = in_cur;
    q->complete = complete || (!in_cur && linked_from_tmp(b, name));
    g_hash_table_insert(w->known, g_steal_pointer(&key), q);
    g_queue_push_tail(&w->pending, q);
}

/* Done with @q's file (retired, gone, or to be looked at by the next listing). */
static void drop(fbl_watch *w, queued *q)
{
    g_autofree char *key = known_key(q->box, q->name);
    g_hash_table_remove(w->known, key);
    queued_free(q);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Forget the skipped files of @b that are no longer in its @in_cur dir (@names, sorted). */
static void prune_skipped(fbl_watch *w, const box *b, bool in_cur, const GPtrArray *names)
{
    g_autofree char *prefix = g_strdup_printf("%d/%s/", b->wd, subdir(in_cur));
    size_t prefix_len = strlen(prefix);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, w->skipped);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_str_has_prefix(key, prefix))
            continue;
        const char *name = (const char *) key + prefix_len;
        /* (an empty array may have no pdata at all: bsearch() wants one) */
        if (names->len == 0 ||
            bsearch(&name, names->pdata, names->len, sizeof(gpointer), compare_names) == NULL)
            g_hash_table_iter_remove(&it);
    }
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
    prune_skipped(w, b, in_cur, names);
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
    w->more_in_new = w->more_in_new && !in_new;
    w->more_in_cur = w->more_in_cur && !in_cur;
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
static void skip(fbl_watch *w, queued *q, const struct stat *st)
{
    const char *kind = fbl_mailfile_kind(st->st_mode);
    g_warning("mailbox=%s %s/%s is a %s, not a mail file: skipped, left in place and ignored "
              "while it stays",
              q->box->config->name, subdir(q->in_cur), q->name, kind);
    w->stats.skipped++;
    fbl_metrics_watch_skipped(q->box->config->name, kind);
    file_id *s = g_new(file_id, 1);
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    g_hash_table_insert(w->skipped, skipped_key(q->box, q->in_cur, q->name), s);
    drop(w, q);
}

static void not_opened(fbl_watch *w, queued *q, const struct stat *st, const GError *error)
{
    if (g_error_matches(error, FBL_MAILFILE_ERROR, FBL_MAILFILE_ERROR_NOT_REGULAR)) {
        skip(w, q, st);
        return;
    }
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_warning("mailbox=%s cannot read a mail: %s", q->box->config->name, error->message);
    /* Gone (moved: the event of its new name queues it again; or deleted), or
     * unreadable: the next listing looks again. */
    drop(w, q);
}

/*
 * Whether @q's writer is done with it. A mail renamed into new/ (the Maildir
 * contract) or closed after writing is; so is one older than
 * FBL_WATCH_SETTLE_MS. A younger one may be written in place by an MTA that
 * skips tmp/ (read now, it would be stored truncated), or linked from tmp/
 * (Postfix, qmail, maildrop: no close event on new/): it is read once its
 * size and mtime are that old or have not changed for that long (a clock
 * skewed into the future must not hold it forever); a file whose inode
 * changed after its last write (ctime past mtime: linked from tmp/) at once.
 * Else note when to look again (@q->due).
 */
/*
 * The inode changed after its last write (link(), rename(), unlink() of the
 * tmp/ name): a write sets mtime and ctime to the same instant, so a file
 * still being written in place has them equal. MTAs link only finished files.
 */
static bool changed_after_last_write(const struct stat *st)
{
    return st->st_size > 0 &&
           (st->st_ctim.tv_sec > st->st_mtim.tv_sec || (st->st_ctim.tv_sec == st->st_mtim.tv_sec &&
                                                        st->st_ctim.tv_nsec > st->st_mtim.tv_nsec));
}

static bool settled(queued *q, const struct stat *st)
{
    if (q->complete || changed_after_last_write(st))
        return true;
    int64_t mtime_ms = (int64_t) st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
    int64_t age = g_get_real_time() / 1000 - mtime_ms;
    if (age >= FBL_WATCH_SETTLE_MS)
        return true;
    int64_t now = fbl_now_ms();
    if (!q->settling || q->size != st->st_size || q->mtime_ms != mtime_ms) {
        q->settling = true;
        q->size = st->st_size;
        q->mtime_ms = mtime_ms;
        q->since = now;
    } else if (now - q->since >= FBL_WATCH_SETTLE_MS) {
        return true;
    }
    q->due = now + MAX(FBL_WATCH_SETTLE_MS - MAX(age, now - q->since), 10);
    return false;
}

/* @q: where the mail was read; "in=cur" marks a mail another program moved out of new/. */
static void log_parsed(const fbl_parse_result *res, const char *mail_id, const queued *q,
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

/* Parse @mail, read from @q's file, and send it (or join it to a flight of the same content). */
static void send_mail(fbl_watch *w, queued *q, fbl_mailfile *mail)
{
    g_strlcpy(q->mail_id, mail->mail_id, sizeof q->mail_id);
    flight *same = g_hash_table_lookup(w->flights, mail->mail_id);
    if (same != NULL) {
        g_ptr_array_add(same->files, q); /* a second copy of one mail: retire both */
        fbl_mailfile_clear(mail);
        return;
    }
    fbl_mail_meta meta = meta_for(q->box, mail->delivered);
    g_autoptr(fbl_parse_result) res = fbl_mailfile_parse(w->parser, mail, &meta);
    GBytes *raw = mail->data != NULL ? g_byte_array_free_to_bytes(mail->data) : NULL;
    mail->data = NULL;

    flight *f = g_new0(flight, 1);
    g_strlcpy(f->mail_id, res->mail_id, sizeof f->mail_id);
    f->files = g_ptr_array_new();
    g_ptr_array_add(f->files, q);
    f->frames = fbl_wire_encode_mail(res, meta.mailbox, meta.received_at, mail->size, raw);
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
    log_parsed(res, f->mail_id, q, mail->size);
    (void) send_flight(w, f);
}

/* Read, parse and send one queued mail; a young one waits in settling, a file
 * that is not regular is skipped. */
static void take(fbl_watch *w, queued *q)
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
    if (!settled(q, &st)) {
        close_mail(fd, path);
        g_queue_push_tail(&w->settling, q);
        return;
    }
    fbl_mailfile mail;
    bool ok = fbl_mailfile_read_fd(fd, path, &st, w->config->max_mail_bytes, &mail, &error);
    close_mail(fd, path);
    if (!ok) {
        g_warning("mailbox=%s cannot read a mail: %s", q->box->config->name, error->message);
        drop(w, q); /* the next scan looks again */
        return;
    }
    send_mail(w, q, &mail);
}

/* Settling files whose writer is done, or whose time to look again has come, go
 * back to the head of the queue. */
static void settle_due(fbl_watch *w)
{
    int64_t now = fbl_now_ms();
    for (GList *l = w->settling.head, *next; l != NULL; l = next) {
        next = l->next;
        queued *q = l->data;
        if (q->complete || q->due <= now) {
            g_queue_delete_link(&w->settling, l);
            g_queue_push_head(&w->pending, q);
        }
    }
}

/* The next time a settling file is to be looked at. */
static int64_t settle_wake(const fbl_watch *w)
{
    int64_t next = INT64_MAX;
    for (const GList *l = w->settling.head; l != NULL; l = l->next)
        next = MIN(next, ((const queued *) l->data)->due);
    return next;
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
    if ((w->more_in_new || w->more_in_cur) && queued_names(w) <= w->config->watch_queue_max / 2)
        scan(w, w->more_in_new, w->more_in_cur);
    while (!g_queue_is_empty(&w->pending) &&
           g_hash_table_size(w->flights) < w->config->watch_window &&
           w->flight_bytes < w->config->watch_window_bytes && !held_by_unretired(w))
        take(w, g_queue_pop_head(&w->pending));
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
static void log_retire_failure(fbl_watch *w, const queued *q, int64_t retry_ms)
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
static bool retire(fbl_watch *w, queued *q)
{
    g_autoptr(GError) error = NULL;
    /* A mail in cur/ (an IMAP server moved it) stays as it is: its line in the index
     * was all it needed; fbl never renames a mail in cur/, where users flag it. */
    if (q->in_cur || fbl_maildir_retire(q->box->config->path, q->name, &error)) {
        if (q->retire_failures > 0)
            fbl_log_event(G_LOG_LEVEL_MESSAGE, q->mail_id, "retire",
                          "mailbox=%s new/%s moved to cur/ after %u failure(s)",
                          q->box->config->name, q->name, q->retire_failures);
        drop(w, q);
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
        queued *q = g_ptr_array_index(w->unretired, i);
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
    if (f == NULL)
        return; /* acked twice (a resend went to two sinks), or from an earlier run */
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
            const queued *q = g_ptr_array_index(f->files, j);
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

/* tmp/: remember the inode of each file an MTA starts writing there, until it
 * leaves (renamed into new/, or unlinked after a link() into new/). */
static void on_tmp_event(box *b, const struct inotify_event *ev)
{
    if (ev->mask & IN_CLOSE_WRITE) {
        if (g_hash_table_size(b->tmp_closed) >= TMP_FILES_MAX)
            g_hash_table_remove_all(b->tmp_closed); /* events were missed: start again */
        g_hash_table_add(b->tmp_closed, g_strdup(ev->name));
        return;
    }
    if (!(ev->mask & IN_CREATE)) {
        g_hash_table_remove(b->tmp_files, ev->name);
        g_hash_table_remove(b->tmp_closed, ev->name);
        return;
    }
    g_autofree char *path = g_build_filename(b->config->path, "tmp", ev->name, NULL);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return; /* gone already: that mail settles instead */
    if (g_hash_table_size(b->tmp_files) >= TMP_FILES_MAX)
        g_hash_table_remove_all(b->tmp_files); /* events were missed: start again */
    file_id *id = g_new(file_id, 1);
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    g_hash_table_insert(b->tmp_files, g_strdup(ev->name), id);
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
        on_tmp_event(b, ev);
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

static bool nothing_queued(const fbl_watch *w)
{
    return queued_names(w) == 0 && g_hash_table_size(w->flights) == 0;
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
        const queued *q = g_ptr_array_index(w->unretired, i);
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
    fbl_metrics_watch_window(g_hash_table_size(w->flights), w->flight_bytes, queued_names(w));
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
        settle_due(w);
        if (!stopping)
            fill_window(w);
        if (until_idle && idle(w))
            break;
        int64_t wake = MIN(send_due(w), MIN(settle_wake(w), retire_due(w, false)));
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
    if (b->tmp_files != NULL)
        g_hash_table_unref(b->tmp_files);
    if (b->tmp_closed != NULL)
        g_hash_table_unref(b->tmp_closed);
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
        box *b = g_new0(box, 1);
        b->config = g_ptr_array_index(w->config->mailboxes, i);
        b->wd = b->wd_cur = b->wd_tmp = -1;
        b->tmp_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        b->tmp_closed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
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
    w->parser = parser;
    w->boxes = g_ptr_array_new_with_free_func((GDestroyNotify) box_free);
    g_queue_init(&w->pending);
    g_queue_init(&w->settling);
    w->unretired = g_ptr_array_new();
    w->next_retire = INT64_MAX;
    w->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    w->skipped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
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
    if (w->ino >= 0 && close(w->ino) != 0)
        g_debug("close inotify: %s", g_strerror(errno));
    g_queue_clear_full(&w->pending, (GDestroyNotify) queued_free);
    g_queue_clear_full(&w->settling, (GDestroyNotify) queued_free);
    for (guint i = 0; i < w->unretired->len; i++)
        queued_free(g_ptr_array_index(w->unretired, i));
    g_ptr_array_unref(w->unretired);
    g_hash_table_unref(w->known);
    g_hash_table_unref(w->skipped);
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
