/*
 * watch.h - the mailbox watcher: Maildir new/ and cur/ -> parse -> sink, retire on ack
 *
 * Layer: fbl/. One fbl_watch runs in one thread (its loop owns its ZeroMQ
 * socket); several mailboxes share it. The loop lists, reads, sends, takes
 * the acks and retires; it hands each mail it read to a pool of
 * watch.parse_threads threads (parse_pool.h; 0, the default: one per CPU the
 * process may use), which parse it and make its fbl/1 message, and sends
 * those in the order it read the mails. With parse_threads = 1 the loop
 * parses itself, mail by mail, as before the pool.
 *
 * At start and every FBL_WATCH_RESCAN_MS the watcher lists new/ and cur/ of
 * every mailbox; between scans inotify reports deliveries (new/: IN_MOVED_TO,
 * IN_CLOSE_WRITE, IN_CREATE for MTAs that link() from tmp/; cur/: the same;
 * overflow means rescan). Each mail is read (bounded by max_mail_bytes; larger
 * ones are hashed only), parsed (in the pool), and sent as one fbl/1 "mail"
 * message (wire.h). When the sink's ack (sent after COMMIT) arrives, the mail is
 * marked committed in the Maildir's index (maildir.h: FBL_MAILDIR_INDEX_FILE,
 * one write and fsync per burst of acks) and then, if it is in new/, renamed
 * to cur/. A mail not acknowledged within watch.ack_timeout is sent again (to
 * any sink), and each further resend waits twice as long, up to 16 timeouts.
 *
 * Every mail of the Maildir is stored once, wherever it sits. Design: the
 * Maildir's place of a mail is no mark of fbl's (an IMAP server such as
 * Dovecot moves new/ to cur/ as soon as a client selects the folder, and
 * renames mails in cur/ for every flag), so the watcher keeps its own: the
 * index of committed mails, by the unique part of their file names (before
 * ':'), which those renames keep. Not the store's mail ids, as the watcher
 * never talks to PostgreSQL; not a Maildir flag, which fbl would have to set
 * by renaming mails in cur/ under users' feet, and which lives only as long
 * as every client keeps flags it does not know (Dovecot keeps unknown
 * capitals, reads lower-case letters as its keywords). So:
 * - a name in cur/ that the index does not hold is a mail moved out of new/
 *   before it was stored: it is read there (logged once per mailbox; its
 *   "parse" line says in=cur); names the index holds are left alone;
 * - a mail is known by its unique part while queued, settling, in flight or
 *   unretired: one that moves (new/ -> cur/, a flag) is followed to its new
 *   name, never read twice, and its retire finds nothing to rename;
 * - a name in new/ that the index holds (a crash between the mark and the
 *   rename, or another watcher's commit) moves to cur/ without a send;
 * - a Maildir without an index gets one holding cur/'s names: an fbl without
 *   the index moved only stored mails there (fbl_maildir_index_open()).
 * Watchers of one Maildir on one host share the index (flock; each reads
 * what the others appended before it reads a name it does not know).
 *
 * Hostile or broken mailboxes:
 * - Only regular files are read (fbl_mailfile_open_regular()): a symlink is
 *   never followed, a FIFO, socket, device or directory never read. Such a
 *   name is logged once (no contents), counted (fbl_watch_skipped_total),
 *   left where it is, and ignored while the same inode holds it.
 * - A file in new/ is read once its writer is done: renamed or closed there,
 *   linked from tmp/, or settled for FBL_WATCH_SETTLE_MS (maildir_arrival.h).
 * - A stored mail whose rename to cur/ fails (cur/ missing or not a
 *   directory, no permission, no space, a name too long for ":2,S") is not
 *   sent again: it stays known, and only the rename is retried, after 1 s,
 *   2 s, 4 s ... up to 60 s; each failure is logged with the errno text
 *   (rate-limited) and counted (fbl_watch_retire_failures_total,
 *   fbl_watch_mails_retire_pending). With watch.queue_max of them the
 *   watcher reads no more mail until they move.
 *
 * Bounds: at most watch.window mails and watch.window_bytes bytes in flight
 * (read, not acknowledged: a mail counts from its read, while the pool parses
 * it, by its size until its message is made and then by the message's bytes);
 * beyond them the watcher stops reading mail, which
 * is the backpressure that keeps every process's memory bounded while
 * PostgreSQL is slow or down. The queue of names waiting in new/ is the
 * Maildir itself: only names are held, not mail, and at most watch.queue_max
 * of them; the rest of a backlog is listed again when the queue runs low, so
 * a backlog of any size costs the same memory (watch_queue.h). The index's
 * names cost about 100 bytes per mail in cur/ (compaction drops those users
 * deleted).
 *
 * Stop: fbl_daemon_stopping() makes the loop stop reading mail and wait up
 * to @drain_ms for the acks of what is in flight (the mails the pool still
 * parses are sent when parsed); what is still unacknowledged then stays in
 * new/ for the next run. fbl_watch_free() stops and joins the pool's threads.
 */
#ifndef FBL_WATCH_H
#define FBL_WATCH_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"
#include "parsers/parse.h"

#define FBL_WATCH_RESCAN_MS 60000
/* A young file's writer is deemed done after this long without a change. */
#define FBL_WATCH_SETTLE_MS 1000

typedef struct fbl_watch fbl_watch;

typedef struct fbl_watch_stats {
    guint64 mails_sent; /* first sends */
    guint64 resends;
    guint64 acked;
    guint64 reports;
    guint64 rejects;
    unsigned in_flight;
    guint64 bytes_in_flight;
    guint64 skipped;         /* names in new/ or cur/ that were not regular files */
    guint64 retire_failures; /* failed renames to cur/, retries included */
    unsigned retire_pending; /* stored mails still in new/: the rename failed */
} fbl_watch_stats;

/*
 * fbl_watch_new - open the mailboxes and connect to the sinks
 *
 * @config: (transfer none) must outlive the watcher; its Maildir mailboxes are
 *   watched (an IMAP one, imap = URL, is imap_watch.h's; with only those, this
 *   loop watches nothing and ends with --once at once)
 * @zmq_context: (transfer none) a zmq context
 * @endpoints: NULL-terminated sink endpoints to connect to
 * @parser: (transfer none) must outlive the watcher; its parse threads share it
 * Returns: (transfer full) or NULL with a G_FILE_ERROR (a mailbox) or
 *   G_IO_ERROR (ZeroMQ, the pool's eventfd) error.
 */
fbl_watch *fbl_watch_new(const fbl_config *config, const fbl_parser *parser, void *zmq_context,
                         const char *const *endpoints, GError **error);
void fbl_watch_free(fbl_watch *w);

/*
 * fbl_watch_run - the loop, until fbl_daemon_stopping() (then drain for up
 * to @drain_ms) or, with @until_idle, until new/ is empty, cur/ holds no mail
 * the index does not know, and nothing is in flight (for `fbl run --once`
 * and tests; mails that settle are waited for, mails whose rename to cur/
 * keeps failing are not)
 *
 * Returns: false with an error only when the watcher cannot go on (its socket
 * or inotify failed); a bad mail is never an error here. Mails stored but
 * not moved to cur/ are named in the log at the end (fbl_watch_unretired()).
 */
bool fbl_watch_run(fbl_watch *w, unsigned drain_ms, bool until_idle, GError **error);

void fbl_watch_get_stats(const fbl_watch *w, fbl_watch_stats *out);

/*
 * fbl_watch_unretired - mails stored by a sink whose rename to cur/ failed
 * and still fails: they stay in new/ (only a later run sends them again).
 * After fbl_watch_run() with @until_idle, non-zero means `--once` did not
 * finish its work.
 */
unsigned fbl_watch_unretired(const fbl_watch *w);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_watch, fbl_watch_free)

#endif /* FBL_WATCH_H */
