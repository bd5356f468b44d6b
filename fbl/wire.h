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
 *          bytes (only their prefix when it was over the size limit); one DOC
 *          per report, or one reject document (report_json.h), JSON.
 *   ack    sink -> watcher:   "fbl/1" "ack" MAIL_ID
 *   bad    sink -> watcher:   "fbl/1" "bad" MAIL_ID-or-empty REASON
 *          (the message was refused: it does not decode, breaks a bound below
 *          or does not hold together; the watcher logs it loudly and keeps
 *          the mail for a later resend - a bug, never data loss)
 * A ROUTER prepends the peer's routing id; fbl_wire_* take and give the
 * frames without it, except fbl_wire_recv_bounded(), which counts it.
 *
 * The contract a "mail" message must keep (fbl_wire_decode_mail() checks it,
 * because a sink cannot tell a buggy or hostile peer from a good one):
 *   - RAW is the whole mail: MAIL_ID is its SHA-256 and SIZE its length; RAW
 *     is at most the sink's limits.max_mail_bytes (so every watcher's limit
 *     must not be above the sink's);
 *   - except for a mail over the watcher's limit: RAW is a prefix of it (its
 *     header block and the start of its body, fbl/mailfile.h), at most
 *     FBL_MAILFILE_PREFIX_MAX bytes and shorter than SIZE, its real length;
 *     RAW may be empty (watchers before the prefix sent none). The message
 *     carries exactly one reject, reason too_large, of that size; any other
 *     message with a RAW shorter than SIZE is refused. Its MAIL_ID cannot
 *     be checked, as its whole bytes never travel; such a mail yields no
 *     report, so nothing of it is forwarded. XXX: a peer can still store a
 *     too_large reject, with a prefix of its choosing, under a (MAIL_ID,
 *     RECEIVED_AT) that a real mail will have, and that mail then adds
 *     nothing (the store is idempotent on that pair);
 *   - reports carry parts 0, 1, 2 ... in order, each with the id derived from
 *     MAIL_ID and its part (fbl_report_set_ids()); every document repeats the
 *     message's MAIL_ID, MAILBOX (null for an empty one) and RECEIVED_AT (as
 *     ISO-8601); a reject repeats SIZE;
 *   - RECEIVED_AT is at most FBL_WIRE_MAX_FUTURE_S ahead of the sink's clock
 *     (each month seen makes partitions in PostgreSQL).
 * What cannot be checked without parsing RAW again is trusted: that the
 * documents are what the parsers make of it.
 *
 * Bounds on a message, enforced while it is received (fbl_wire_recv_bounded):
 * at most FBL_WIRE_HEADER_FRAMES + FBL_WIRE_MAX_DOCS frames; at most
 * fbl_wire_max_message() bytes - RAW (limits.max_mail_bytes), the documents
 * (FBL_WIRE_MAX_DOCS_BYTES in all, FBL_WIRE_MAX_DOC_BYTES each) and the small
 * header frames; and one frame at most fbl_wire_max_frame() bytes, which the
 * sink's socket enforces (ZMQ_MAXMSGSIZE: libzmq disconnects a peer that
 * announces a larger frame, before reading it).
 * XXX: libzmq hands a multipart message over only once it is complete, so the
 * frames of a message are in libzmq's queue before the sink can count them:
 * ZMQ_MAXMSGSIZE bounds each, but nothing in libzmq 4.3 bounds how many there
 * are (ZMQ_RCVHWM counts whole messages). A peer that may connect at all (a
 * CURVE key in curve_clients_dir, or access to the ipc:// socket) can thus
 * still make a sink's libzmq hold the message it is sending, whatever its
 * length, and up to ZMQ_RCVHWM whole messages behind it while the sink is not
 * reading (PostgreSQL down); the sink then drops each as it reads it. Let in
 * only the watchers you run.
 */
#ifndef FBL_WIRE_H
#define FBL_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "parsers/report.h"
#include "sink/batch.h"

#define FBL_WIRE_VERSION          "fbl/1"
#define FBL_WIRE_HEADER_FRAMES    7 /* "fbl/1" "mail" MAIL_ID MAILBOX RECEIVED_AT SIZE RAW */
#define FBL_WIRE_MAX_DOCS         10000
#define FBL_WIRE_MAX_DOC_BYTES    ((size_t) 4 * 1024 * 1024)
#define FBL_WIRE_MAX_DOCS_BYTES   ((size_t) 64 * 1024 * 1024) /* all the documents of one mail */
#define FBL_WIRE_MAX_HEADER_BYTES 4096 /* the six small frames before RAW, together */
#define FBL_WIRE_MAX_ROUTE_BYTES  256  /* a ROUTER's routing id (libzmq: at most 255) */
#define FBL_WIRE_MAX_FUTURE_S     ((int64_t) 24 * 3600)

#define FBL_WIRE_ERROR (fbl_wire_error_quark())
GQuark fbl_wire_error_quark(void);

typedef enum {
    FBL_WIRE_ERROR_VERSION = 1,     /* permanent: not "fbl/1" */
    FBL_WIRE_ERROR_SHAPE,           /* permanent: wrong frame count or frame content */
    FBL_WIRE_ERROR_DOC,             /* permanent: a document does not decode */
    FBL_WIRE_ERROR_TOO_MANY_FRAMES, /* permanent: over the frames of a message; dropped */
    FBL_WIRE_ERROR_TOO_LARGE,       /* permanent: over the bytes of a message or its parts */
    FBL_WIRE_ERROR_MAIL_ID,         /* permanent: MAIL_ID is not the SHA-256 of RAW */
    FBL_WIRE_ERROR_INCONSISTENT,    /* permanent: frames and documents disagree */
} fbl_wire_error;                   /* append new codes at the end only */
#define FBL_WIRE_ERROR_LAST FBL_WIRE_ERROR_INCONSISTENT

/*
 * fbl_wire_error_reason - a short name for @code, for logs and metric labels:
 * "version", "shape", "doc", "too_many_frames", "too_large", "mail_id",
 * "inconsistent"; "other" for anything else
 */
const char *fbl_wire_error_reason(int code);

/* The most a received message may hold (fbl_wire_recv_bounded()). */
typedef struct fbl_wire_bounds {
    guint max_frames;  /* frames, a routing id included */
    guint64 max_bytes; /* bytes of all the frames */
} fbl_wire_bounds;

/*
 * fbl_wire_mail_bounds - the bounds of a "mail" message under a mail limit of
 * @max_mail_bytes, plus @routing_frames routing ids (1 on a ROUTER)
 */
fbl_wire_bounds fbl_wire_mail_bounds(size_t max_mail_bytes, guint routing_frames);

/*
 * fbl_wire_encode_mail - the frames of one "mail" message
 *
 * @raw: (nullable) the mail bytes, or a too_large mail's prefix; NULL: none
 * Returns: (transfer full) GBytes * frames, in order.
 */
GPtrArray *fbl_wire_encode_mail(const fbl_parse_result *result, const char *mailbox,
                                int64_t received_at, size_t size, GBytes *raw);

/*
 * fbl_wire_decode_mail - a "mail" message back into an fbl_sink_mail, once it
 * is seen to keep the contract above
 *
 * @frames: (transfer none) GBytes * frames without a routing id
 * @max_mail_bytes: the sink's limits.max_mail_bytes; RAW may not be longer
 * @now: the sink's clock, seconds since the epoch (RECEIVED_AT's bound)
 * Returns: (transfer full) or NULL with FBL_WIRE_ERROR: _VERSION, _SHAPE,
 *   _DOC, _TOO_LARGE, _MAIL_ID or _INCONSISTENT.
 */
fbl_sink_mail *fbl_wire_decode_mail(GPtrArray *frames, size_t max_mail_bytes, int64_t now,
                                    GError **error);

/*
 * fbl_wire_peek_mail_id - the MAIL_ID a "mail" message claims, if it is 64
 * hex digits (for the "bad" answer and the log line of a refused message)
 *
 * @first: the index of the "fbl/1" frame (1 after a routing id)
 * Returns: true with @mail_id filled, else false.
 */
bool fbl_wire_peek_mail_id(GPtrArray *frames, guint first, char mail_id[FBL_SHA256_HEX_LEN + 1]);

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

/*
 * fbl_wire_max_message - the bytes of a whole "mail" message under a mail
 * limit of @max_mail_bytes (a watcher's ZMQ_MAXMSGSIZE for the sink's replies)
 */
int64_t fbl_wire_max_message(size_t max_mail_bytes);

/*
 * fbl_wire_max_frame - the largest frame of a "mail" message under a mail
 * limit of @max_mail_bytes (RAW, or one document): the sink's ZMQ_MAXMSGSIZE
 */
int64_t fbl_wire_max_frame(size_t max_mail_bytes);

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

/*
 * fbl_wire_recv_bounded - receive one whole message from @socket, frame by
 * frame, keeping at most @bounds of it
 *
 * A message over @bounds is read to its end and its frames are dropped as
 * they come (only the first is kept, for @head): the caller never holds more
 * than @bounds of a message (libzmq held it whole before, see above).
 *
 * @head: (out) (optional) (transfer full) the first frame of a refused
 *   message (a ROUTER's routing id, to answer it); NULL otherwise
 * Returns: (transfer full) the GBytes frames; or NULL with G_IO_ERROR
 *   (G_IO_ERROR_WOULD_BLOCK: ZMQ_DONTWAIT and nothing there; others from
 *   errno, e.g. EINTR, ETERM); or NULL with FBL_WIRE_ERROR_TOO_MANY_FRAMES or
 *   FBL_WIRE_ERROR_TOO_LARGE when the message was refused and dropped.
 */
GPtrArray *fbl_wire_recv_bounded(void *socket, int flags, const fbl_wire_bounds *bounds,
                                 GBytes **head, GError **error);

#endif /* FBL_WIRE_H */
