/*
 * watch.h - the mailbox watcher: Maildir new/ -> parse -> sink, retire on ack
 *
 * Layer: fbl/. One fbl_watch runs in one thread (its loop owns its ZeroMQ
 * socket); several mailboxes share it.
 *
 * At start and every FBL_WATCH_RESCAN_MS the watcher lists new/ of every
 * mailbox; between scans inotify (IN_MOVED_TO, IN_CLOSE_WRITE, overflow
 * means rescan) reports deliveries. Each mail is read (bounded by
 * max_mail_bytes; larger ones are hashed only), parsed, and sent as one
 * fbl/1 "mail" message (wire.h). It stays in new/ until the sink's ack
 * (sent after COMMIT) arrives; then it is renamed to cur/. A mail not
 * acknowledged within watch.ack_timeout is sent again (to any sink), and
 * each further resend waits twice as long, up to 16 timeouts.
 *
 * Bounds: at most watch.window mails and watch.window_bytes bytes in flight
 * (sent, not acknowledged); beyond them the watcher stops reading mail, which
 * is the backpressure that keeps every process's memory bounded while
 * PostgreSQL is slow or down. The queue of names waiting in new/ is the
 * Maildir itself: only names are held, not mail, and at most watch.queue_max
 * of them; the rest of a backlog is listed again when the queue runs low, so
 * a backlog of any size costs the same memory.
 *
 * Stop: fbl_daemon_stopping() makes the loop stop reading mail and wait up
 * to @drain_ms for the acks of what is in flight; what is still unacknowledged
 * then stays in new/ for the next run.
 */
#ifndef FBL_WATCH_H
#define FBL_WATCH_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"
#include "parsers/parse.h"

#define FBL_WATCH_RESCAN_MS 60000

typedef struct fbl_watch fbl_watch;

typedef struct fbl_watch_stats {
    guint64 mails_sent; /* first sends */
    guint64 resends;
    guint64 acked;
    guint64 reports;
    guint64 rejects;
    unsigned in_flight;
    guint64 bytes_in_flight;
} fbl_watch_stats;

/*
 * fbl_watch_new - open the mailboxes and connect to the sinks
 *
 * @config: (transfer none) must outlive the watcher; its mailboxes are watched
 * @zmq_context: (transfer none) a zmq context
 * @endpoints: NULL-terminated sink endpoints to connect to
 * Returns: (transfer full) or NULL with a G_FILE_ERROR (a mailbox) or
 *   G_IO_ERROR (ZeroMQ) error.
 */
fbl_watch *fbl_watch_new(const fbl_config *config, const fbl_parser *parser, void *zmq_context,
                         const char *const *endpoints, GError **error);
void fbl_watch_free(fbl_watch *watch);

/*
 * fbl_watch_run - the loop, until fbl_daemon_stopping() (then drain for up
 * to @drain_ms) or, with @until_idle, until new/ is empty and nothing is in
 * flight (for `fbl run --once` and tests)
 *
 * Returns: false with an error only when the watcher cannot go on (its socket
 * or inotify failed); a bad mail is never an error here.
 */
bool fbl_watch_run(fbl_watch *watch, unsigned drain_ms, bool until_idle, GError **error);

void fbl_watch_get_stats(const fbl_watch *watch, fbl_watch_stats *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_watch, fbl_watch_free)

#endif /* FBL_WATCH_H */
