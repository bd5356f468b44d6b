/*
 * sink_loop.h - the sink: watchers' mails -> batches -> PostgreSQL -> acks
 *
 * Layer: fbl/. One fbl_sink_loop runs in one thread; it owns its ROUTER
 * socket and its PostgreSQL connection.
 *
 * Mails are batched until sink.batch_max_mails, sink.batch_max_bytes or
 * sink.batch_max_wait after the batch's first mail, then written in one
 * transaction (sink/pg.h); only after COMMIT are the acks sent, to every
 * watcher that sent the mail (a resend may reach a sink twice). A mail
 * already in the batch is not added again.
 *
 * PostgreSQL down or slow: the batch is kept and retried with capped
 * exponential backoff and jitter (sink.retry_max_wait); meanwhile the loop
 * takes no new mail, so watchers' windows fill and they stop reading - memory
 * stays at one batch here plus each watcher's window. Migrations are applied
 * at start (retried the same way while PostgreSQL is unreachable).
 *
 * Peers are not trusted: every message is received within the bounds of
 * wire.h (frames, bytes; an over-long one is dropped as it is read, never held
 * whole here) and must keep the wire contract (MAIL_ID the SHA-256 of RAW,
 * documents that agree with the message, ...). A message that does not is
 * refused: answered "bad", counted in fbl_sink_refused_messages_total{reason},
 * logged at most once a minute (REFUSAL_LOG_INTERVAL_MS; the line after
 * counts what was not logged), and never stored.
 *
 * Stop: fbl_daemon_stopping() makes the loop write what it holds (one try)
 * and return; unacknowledged mails are resent by their watchers later.
 */
#ifndef FBL_SINK_LOOP_H
#define FBL_SINK_LOOP_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"

typedef struct fbl_sink_loop fbl_sink_loop;

/*
 * fbl_sink_loop_new - bind @endpoint; PostgreSQL is connected in the loop
 *
 * @config: (transfer none) must outlive the loop
 * Returns: (transfer full) or NULL with a G_IO_ERROR.
 */
fbl_sink_loop *fbl_sink_loop_new(const fbl_config *config, void *zmq_context, const char *endpoint,
                                 GError **error);
void fbl_sink_loop_free(fbl_sink_loop *loop);

/* fbl_sink_loop_run - until fbl_daemon_stopping(); false only on a socket failure */
bool fbl_sink_loop_run(fbl_sink_loop *loop, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_sink_loop, fbl_sink_loop_free)

#endif /* FBL_SINK_LOOP_H */
