/*
 * wire.h - the versioned ZeroMQ messages between watchers and sinks
 *
 * Layer: fbl/. Encoding and decoding only; sockets belong to the callers.
 * Thread-safe (no state).
 *
 * Pattern: each watcher has a DEALER connected to one or more sinks' ROUTER
 * sockets (round-robin across sinks); the sink answers on the same route.
 * ZeroMQ is not storage: a mail counts as delivered only when its ack
 * arrives, which the sink sends after its PostgreSQL COMMIT. A watcher
 * resends what stays unacknowledged; the store is idempotent on mail_id, so
 * a resend adds nothing and is acknowledged again.
 *
 * Frames (version 1; the first frame of every message is "fbl/1"):
 *   mail   watcher -> sink: "fbl/1" "mail" MAIL_ID MAILBOX RECEIVED_AT SIZE RAW DOC...
 *          MAIL_ID 64 hex digits; RECEIVED_AT and SIZE decimal; RAW the mail's
 *          bytes (empty when it was over the size limit); one DOC per report,
 *          or one reject document (report_json.h), JSON.
 *   ack    sink -> watcher:   "fbl/1" "ack" MAIL_ID
 *   bad    sink -> watcher:   "fbl/1" "bad" MAIL_ID-or-empty REASON
 *          (the message could not be decoded; the watcher logs it loudly and
 *          keeps the mail for a later resend - a bug, never data loss)
 * A ROUTER prepends the peer's routing id; fbl_wire_* take and give the
 * frames without it.
 *
 * Bounds: decoding refuses more than FBL_WIRE_MAX_DOCS documents and any
 * document over FBL_WIRE_MAX_DOC_BYTES; the sockets cap whole messages with
 * ZMQ_MAXMSGSIZE (fbl_wire_max_message()).
 */
#ifndef FBL_WIRE_H
#define FBL_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "parsers/report.h"
#include "sink/batch.h"

#define FBL_WIRE_VERSION       "fbl/1"
#define FBL_WIRE_MAX_DOCS      10000
#define FBL_WIRE_MAX_DOC_BYTES (4 * 1024 * 1024)

#define FBL_WIRE_ERROR (fbl_wire_error_quark())
GQuark fbl_wire_error_quark(void);

typedef enum {
    FBL_WIRE_ERROR_VERSION = 1, /* permanent: not "fbl/1" */
    FBL_WIRE_ERROR_SHAPE,       /* permanent: wrong frame count or frame content */
    FBL_WIRE_ERROR_DOC,         /* permanent: a document does not decode */
} fbl_wire_error;               /* append new codes at the end only */

/*
 * fbl_wire_encode_mail - the frames of one "mail" message
 *
 * @raw: (nullable) the mail bytes; NULL when over the size limit
 * Returns: (transfer full) GBytes * frames, in order.
 */
GPtrArray *fbl_wire_encode_mail(const fbl_parse_result *result, const char *mailbox,
                                int64_t received_at, size_t size, GBytes *raw);

/*
 * fbl_wire_decode_mail - a "mail" message back into an fbl_sink_mail
 *
 * @frames: (transfer none) GBytes * frames without a routing id
 * Returns: (transfer full) or NULL with FBL_WIRE_ERROR.
 */
fbl_sink_mail *fbl_wire_decode_mail(GPtrArray *frames, GError **error);

/* fbl_wire_encode_ack - (transfer full) the frames of an "ack" for @mail_id */
GPtrArray *fbl_wire_encode_ack(const char *mail_id);

/* fbl_wire_encode_bad - (transfer full) the frames of a "bad" answer */
GPtrArray *fbl_wire_encode_bad(const char *mail_id, const char *reason);

/*
 * fbl_wire_decode_reply - an "ack" or "bad" message
 *
 * @mail_id: (out) 64 hex digits + NUL ("" for a bad message without id)
 * @reason: (out) (optional) (transfer full) the reason of a "bad", else NULL
 * Returns: true with @is_ack set, or false with FBL_WIRE_ERROR.
 */
bool fbl_wire_decode_reply(GPtrArray *frames, bool *is_ack, char mail_id[FBL_SHA256_HEX_LEN + 1],
                           char **reason, GError **error);

/* fbl_wire_max_message - the ZMQ_MAXMSGSIZE for a mail limit of @max_mail_bytes */
int64_t fbl_wire_max_message(size_t max_mail_bytes);

/*
 * fbl_wire_send - send @frames on @socket (a zmq socket); blocking unless
 * @flags has ZMQ_DONTWAIT. Returns false with errno set (EAGAIN: would block).
 */
bool fbl_wire_send(void *socket, GPtrArray *frames, int flags);

/*
 * fbl_wire_recv - receive one whole message from @socket
 *
 * Returns: (transfer full) the GBytes frames, or NULL with errno set
 *   (EAGAIN when ZMQ_DONTWAIT and nothing is there, EINTR on a signal).
 */
GPtrArray *fbl_wire_recv(void *socket, int flags);

#endif /* FBL_WIRE_H */
