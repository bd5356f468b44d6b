/* wire.c - fbl/1 messages over ZeroMQ (see wire.h) */
#include "fbl/wire.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <jansson.h>
#include <zmq.h>

#include "fbl/mailfile.h"
#include "parsers/report_json.h"

GQuark fbl_wire_error_quark(void)
{
    return g_quark_from_static_string("fbl-wire-error");
}

static GBytes *text_frame(const char *s)
{
    return g_bytes_new(s, strlen(s));
}

static GPtrArray *frames_new(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
}

static GBytes *json_frame(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    GBytes *b = g_bytes_new(text, strlen(text));
    free(text);
    return b;
}

GPtrArray *fbl_wire_encode_mail(const fbl_parse_result *result, const char *mailbox,
                                int64_t received_at, size_t size, GBytes *raw)
{
    GPtrArray *f = frames_new();
    g_ptr_array_add(f, text_frame(FBL_WIRE_VERSION));
    g_ptr_array_add(f, text_frame("mail"));
    g_ptr_array_add(f, text_frame(result->mail_id));
    g_ptr_array_add(f, text_frame(mailbox != NULL ? mailbox : ""));
    g_autofree char *when = g_strdup_printf("%" G_GINT64_FORMAT, (gint64) received_at);
    g_autofree char *bytes = g_strdup_printf("%zu", size);
    g_ptr_array_add(f, text_frame(when));
    g_ptr_array_add(f, text_frame(bytes));
    g_ptr_array_add(f, raw != NULL ? g_bytes_ref(raw) : g_bytes_new(NULL, 0));
    for (guint i = 0; i < result->reports->len; i++)
        g_ptr_array_add(f, json_frame(fbl_report_to_json(g_ptr_array_index(result->reports, i))));
    if (result->reject != NULL)
        g_ptr_array_add(f, json_frame(fbl_reject_to_json(result->reject)));
    return f;
}

/* Frame @i as a NUL-terminated copy, if it is text of at most @max bytes. */
static char *frame_text(GPtrArray *frames, guint i, size_t max)
{
    gsize n = 0;
    const char *d = g_bytes_get_data(g_ptr_array_index(frames, i), &n);
    if (n > max || (n > 0 && memchr(d, '\0', n) != NULL))
        return NULL;
    return g_strndup(d != NULL ? d : "", n);
}

static bool is_hex_id(const char *s)
{
    return s != NULL && strlen(s) == FBL_SHA256_HEX_LEN &&
           strspn(s, "0123456789abcdef") == FBL_SHA256_HEX_LEN;
}

static bool shape_error(GError **error, const char *what)
{
    g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_SHAPE, "malformed message: %s", what);
    return false;
}

static bool check_version(GPtrArray *frames, const char *type, GError **error)
{
    if (frames->len < 2) {
        shape_error(error, "too few frames");
        return false;
    }
    g_autofree char *v = frame_text(frames, 0, 16);
    if (v == NULL || strcmp(v, FBL_WIRE_VERSION) != 0) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_VERSION, "not an %s message",
                    FBL_WIRE_VERSION);
        return false;
    }
    g_autofree char *t = frame_text(frames, 1, 16);
    if (type != NULL && (t == NULL || strcmp(t, type) != 0))
        return shape_error(error, "unexpected message type");
    return true;
}

static bool decimal(GPtrArray *frames, guint i, guint64 *out)
{
    g_autofree char *s = frame_text(frames, i, 20);
    return s != NULL && g_ascii_string_to_unsigned(s, 10, 0, G_MAXINT64, out, NULL);
}

static bool inconsistent(GError **error, const char *what)
{
    g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_INCONSISTENT, "inconsistent message: %s",
                what);
    return false;
}

/* RECEIVED_AT as the documents write it (parsers/parse.c); NULL past year 9999. */
static char *iso_time(int64_t when)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(when);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

/* What every document of a mail must repeat from the message's frames. */
typedef struct doc_context {
    fbl_sink_mail *mail;
    const char *received_at; /* ISO-8601 */
    size_t doc_bytes;        /* of the documents so far */
} doc_context;

static bool same_text(const char *doc_value, const char *frame_value)
{
    /* An empty MAILBOX frame is a null mailbox in the documents. */
    if (doc_value == NULL)
        return *frame_value == '\0';
    return strcmp(doc_value, frame_value) == 0;
}

/*
 * A report must be the next part of this mail, under the id derived from the
 * mail and that part: an id that is not derived could take the place of a
 * report another mail will have (the store is idempotent on report ids).
 */
static bool check_report(const doc_context *c, fbl_report *r, GError **error)
{
    if (strcmp(r->mail_id, c->mail->mail_id) != 0)
        return inconsistent(error, "a report of another mail_id");
    if (r->part != c->mail->reports->len)
        return inconsistent(error, "report parts out of order");
    char claimed[FBL_SHA256_HEX_LEN + 1];
    g_strlcpy(claimed, r->id, sizeof claimed);
    fbl_report_set_ids(r, c->mail->mail_id, r->part);
    if (strcmp(claimed, r->id) != 0)
        return inconsistent(error, "a report id not derived from its mail_id and part");
    if (!same_text(r->received_at, c->received_at) || !same_text(r->mailbox, c->mail->mailbox))
        return inconsistent(error, "a report's received_at or mailbox differs from the message's");
    return true;
}

static bool check_reject(const doc_context *c, const fbl_reject *j, GError **error)
{
    if (strcmp(j->mail_id, c->mail->mail_id) != 0)
        return inconsistent(error, "a reject of another mail_id");
    if (j->size != c->mail->size)
        return inconsistent(error, "the reject's size differs from the message's");
    if (!same_text(j->received_at, c->received_at) || !same_text(j->mailbox, c->mail->mailbox))
        return inconsistent(error,
                            "the reject's received_at or mailbox differs from the message's");
    return true;
}

static json_t *load_doc(doc_context *c, GBytes *frame, GError **error)
{
    gsize n = 0;
    const char *d = g_bytes_get_data(frame, &n);
    c->doc_bytes += n;
    if (n > FBL_WIRE_MAX_DOC_BYTES || c->doc_bytes > FBL_WIRE_MAX_DOCS_BYTES) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_TOO_LARGE,
                    "a document of %zu bytes, or %zu bytes of documents (at most %zu, %zu)", n,
                    c->doc_bytes, FBL_WIRE_MAX_DOC_BYTES, FBL_WIRE_MAX_DOCS_BYTES);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = n > 0 ? json_loadb(d, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (doc == NULL)
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_DOC, "document is not JSON: %s",
                    n > 0 ? jerr.text : "empty");
    return doc;
}

/* One document frame into the mail: a report, or its reject. */
static bool take_doc(doc_context *c, GBytes *frame, GError **error)
{
    json_t *doc = load_doc(c, frame, error);
    if (doc == NULL)
        return false;
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    g_autoptr(GError) local = NULL;
    g_autoptr(fbl_report) r = NULL;
    g_autoptr(fbl_reject) j = NULL;
    if (kind != NULL && strcmp(kind, "report") == 0)
        r = fbl_report_from_json(doc, &local);
    else if (kind != NULL && strcmp(kind, "reject") == 0 && c->mail->reject == NULL)
        j = fbl_reject_from_json(doc, &local);
    json_decref(doc);
    if (r == NULL && j == NULL) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_DOC, "bad document: %s",
                    local != NULL ? local->message : "wrong kind, or a second reject");
        return false;
    }
    if (r != NULL && !check_report(c, r, error))
        return false;
    if (j != NULL && !check_reject(c, j, error))
        return false;
    if (r != NULL)
        g_ptr_array_add(c->mail->reports, g_steal_pointer(&r));
    else
        c->mail->reject = g_steal_pointer(&j);
    return true;
}

/* MAIL_ID, MAILBOX, RECEIVED_AT and SIZE into @m. */
static bool take_header(fbl_sink_mail *m, GPtrArray *frames, int64_t now, GError **error)
{
    g_autofree char *id = frame_text(frames, 2, 64);
    guint64 when, size;
    m->mailbox = frame_text(frames, 3, 256);
    if (!is_hex_id(id) || m->mailbox == NULL || !g_utf8_validate(m->mailbox, -1, NULL) ||
        !decimal(frames, 4, &when) || !decimal(frames, 5, &size))
        return shape_error(error, "bad mail header frames");
    if (when > (guint64) (now + FBL_WIRE_MAX_FUTURE_S))
        return shape_error(error, "received_at is more than a day ahead of the sink's clock");
    g_strlcpy(m->mail_id, id, sizeof m->mail_id);
    m->received_at = (int64_t) when;
    m->size = (int64_t) size;
    return true;
}

/*
 * RAW against MAIL_ID and SIZE: what makes a mail the one its id names. A
 * RAW shorter than SIZE is a too_large mail's prefix, which cannot be hashed
 * against MAIL_ID: check_whole() holds it to its reject and its bound.
 */
static bool take_raw(fbl_sink_mail *m, GBytes *raw, size_t max_mail_bytes, GError **error)
{
    gsize n = g_bytes_get_size(raw);
    if (n > max_mail_bytes) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_TOO_LARGE,
                    "a raw mail of %zu bytes, over limits.max_mail_bytes (%zu)", n, max_mail_bytes);
        return false;
    }
    if ((guint64) m->size < n)
        return inconsistent(error, "RAW is longer than SIZE");
    if ((guint64) m->size == n) {
        char sum[FBL_SHA256_HEX_LEN + 1];
        fbl_sha256_hex(n > 0 ? g_bytes_get_data(raw, NULL) : "", n, sum);
        if (strcmp(sum, m->mail_id) != 0) {
            g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_MAIL_ID,
                        "mail_id is not the SHA-256 of the raw mail (which is %.12s...)", sum);
            return false;
        }
    }
    if (n > 0)
        m->raw = g_bytes_ref(raw);
    return true;
}

/* Reports or exactly one reject; RAW shorter than SIZE exactly for a too_large
 * reject, and then no longer than what a watcher keeps of one. */
static bool check_whole(const fbl_sink_mail *m, GError **error)
{
    if ((m->reports->len > 0) == (m->reject != NULL))
        return shape_error(error, "a mail carries reports or one reject");
    bool too_large = m->reject != NULL && m->reject->reason == FBL_REJECT_TOO_LARGE;
    gsize n = m->raw != NULL ? g_bytes_get_size(m->raw) : 0;
    if (too_large != (n < (guint64) m->size))
        return inconsistent(error, "RAW is shorter than SIZE exactly when the mail is a "
                                   "too_large reject");
    if (too_large && n > FBL_MAILFILE_PREFIX_MAX) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_TOO_LARGE,
                    "a too_large mail's prefix of %zu bytes, over %zu", n, FBL_MAILFILE_PREFIX_MAX);
        return false;
    }
    return true;
}

fbl_sink_mail *fbl_wire_decode_mail(GPtrArray *frames, size_t max_mail_bytes, int64_t now,
                                    GError **error)
{
    if (!check_version(frames, "mail", error))
        return NULL;
    if (frames->len <= FBL_WIRE_HEADER_FRAMES ||
        frames->len > FBL_WIRE_HEADER_FRAMES + FBL_WIRE_MAX_DOCS) {
        shape_error(error, "wrong number of frames for a mail");
        return NULL;
    }
    g_autoptr(fbl_sink_mail) m = fbl_sink_mail_new();
    if (!take_header(m, frames, now, error) ||
        !take_raw(m, g_ptr_array_index(frames, 6), max_mail_bytes, error))
        return NULL;
    g_autofree char *received_at = iso_time(m->received_at);
    if (received_at == NULL) {
        shape_error(error, "received_at is out of range");
        return NULL;
    }
    doc_context c = {.mail = m, .received_at = received_at};
    for (guint i = FBL_WIRE_HEADER_FRAMES; i < frames->len; i++) {
        if (!take_doc(&c, g_ptr_array_index(frames, i), error))
            return NULL;
    }
    if (!check_whole(m, error))
        return NULL;
    return g_steal_pointer(&m);
}

bool fbl_wire_peek_mail_id(GPtrArray *frames, guint first, char mail_id[FBL_SHA256_HEX_LEN + 1])
{
    if (frames->len <= first + 2)
        return false;
    g_autofree char *id = frame_text(frames, first + 2, 64);
    if (!is_hex_id(id))
        return false;
    g_strlcpy(mail_id, id, FBL_SHA256_HEX_LEN + 1);
    return true;
}

GPtrArray *fbl_wire_encode_ack(const char *mail_id)
{
    GPtrArray *f = frames_new();
    g_ptr_array_add(f, text_frame(FBL_WIRE_VERSION));
    g_ptr_array_add(f, text_frame("ack"));
    g_ptr_array_add(f, text_frame(mail_id));
    return f;
}

GPtrArray *fbl_wire_encode_bad(const char *mail_id, const char *reason)
{
    GPtrArray *f = frames_new();
    g_ptr_array_add(f, text_frame(FBL_WIRE_VERSION));
    g_ptr_array_add(f, text_frame("bad"));
    g_ptr_array_add(f, text_frame(mail_id != NULL ? mail_id : ""));
    g_ptr_array_add(f, text_frame(reason));
    return f;
}

bool fbl_wire_decode_reply(GPtrArray *frames, bool *is_ack, char mail_id[FBL_SHA256_HEX_LEN + 1],
                           char **reason, GError **error)
{
    if (reason != NULL)
        *reason = NULL;
    if (!check_version(frames, NULL, error))
        return false;
    g_autofree char *type = frame_text(frames, 1, 16);
    g_autofree char *id = frames->len > 2 ? frame_text(frames, 2, 64) : NULL;
    if (type != NULL && strcmp(type, "ack") == 0 && frames->len == 3 && is_hex_id(id)) {
        *is_ack = true;
        g_strlcpy(mail_id, id, FBL_SHA256_HEX_LEN + 1);
        return true;
    }
    if (type != NULL && strcmp(type, "bad") == 0 && frames->len == 4 && id != NULL &&
        (*id == '\0' || is_hex_id(id))) {
        *is_ack = false;
        g_strlcpy(mail_id, id, FBL_SHA256_HEX_LEN + 1);
        if (reason != NULL)
            *reason = frame_text(frames, 3, 1024);
        return true;
    }
    return shape_error(error, "not an ack or bad reply");
}

int64_t fbl_wire_max_message(size_t max_mail_bytes)
{
    return (int64_t) (max_mail_bytes + FBL_WIRE_MAX_DOCS_BYTES + FBL_WIRE_MAX_HEADER_BYTES);
}

int64_t fbl_wire_max_frame(size_t max_mail_bytes)
{
    return (int64_t) MAX(max_mail_bytes, FBL_WIRE_MAX_DOC_BYTES);
}

fbl_wire_bounds fbl_wire_mail_bounds(size_t max_mail_bytes, guint routing_frames)
{
    fbl_wire_bounds b = {
        .max_frames = routing_frames + FBL_WIRE_HEADER_FRAMES + FBL_WIRE_MAX_DOCS,
        .max_bytes = (guint64) fbl_wire_max_message(max_mail_bytes) +
                     (guint64) routing_frames * FBL_WIRE_MAX_ROUTE_BYTES,
    };
    return b;
}

const char *fbl_wire_error_reason(int code)
{
    static const char *const names[] = {
        [FBL_WIRE_ERROR_VERSION] = "version",
        [FBL_WIRE_ERROR_SHAPE] = "shape",
        [FBL_WIRE_ERROR_DOC] = "doc",
        [FBL_WIRE_ERROR_TOO_MANY_FRAMES] = "too_many_frames",
        [FBL_WIRE_ERROR_TOO_LARGE] = "too_large",
        [FBL_WIRE_ERROR_MAIL_ID] = "mail_id",
        [FBL_WIRE_ERROR_INCONSISTENT] = "inconsistent",
    };
    if (code <= 0 || code > FBL_WIRE_ERROR_LAST)
        return "other";
    return names[code];
}

/*
 * Frames from this size up cross ZeroMQ without a copy: the message borrows
 * the frame's bytes and holds a reference until ZeroMQ is done with them (in
 * `fbl run` the sink thread reads the watcher's own buffer). Below it,
 * ZeroMQ's copy is cheaper than the bookkeeping. A large mail otherwise
 * lived in memory three times while in flight (the watcher's frame kept for
 * a resend, ZeroMQ's copy, the receiver's).
 */
#define ZERO_COPY_MIN ((size_t) 64 * 1024)

/* ZeroMQ is done with a borrowed frame (called from whichever thread closes the message). */
static void release_frame(void *data, void *hint)
{
    (void) data;
    g_bytes_unref(hint);
}

/* Send one frame; a large one borrowed, not copied. */
static bool send_frame(void *socket, GBytes *frame, int flags)
{
    gsize n = 0;
    const void *d = g_bytes_get_data(frame, &n);
    if (n < ZERO_COPY_MIN)
        return zmq_send(socket, n > 0 ? d : "", n, flags) >= 0;
    zmq_msg_t msg;
    /* ZeroMQ only reads the data: the cast drops a const it does not honour. */
    if (zmq_msg_init_data(&msg, (void *) d, n, release_frame, g_bytes_ref(frame)) != 0) {
        g_bytes_unref(frame);
        return false;
    }
    if (zmq_msg_send(&msg, socket, flags) >= 0)
        return true;
    int e = errno;
    zmq_msg_close(&msg); /* releases the reference */
    errno = e;
    return false;
}

bool fbl_wire_send(void *socket, GPtrArray *frames, int flags)
{
    for (guint i = 0; i < frames->len; i++) {
        int more = i + 1 < frames->len ? ZMQ_SNDMORE : 0;
        /* A send that fails part-way leaves nothing queued only for the first
         * frame - later frames of a multipart never block. */
        if (!send_frame(socket, g_ptr_array_index(frames, i), flags | more))
            return false;
    }
    return true;
}

/* A received large frame kept as it is: its zmq_msg_t closed with the GBytes. */
static void close_msg(gpointer msg)
{
    zmq_msg_close(msg);
    g_free(msg);
}

/* The bytes of @msg, which this takes over (the caller must not close it). */
static GBytes *frame_bytes(zmq_msg_t *msg)
{
    size_t n = zmq_msg_size(msg);
    if (n < ZERO_COPY_MIN) {
        GBytes *b = g_bytes_new(zmq_msg_data(msg), n);
        zmq_msg_close(msg);
        return b;
    }
    zmq_msg_t *kept = g_new(zmq_msg_t, 1);
    zmq_msg_init(kept);
    zmq_msg_move(kept, msg); /* leaves @msg empty: closing it frees nothing */
    zmq_msg_close(msg);
    return g_bytes_new_with_free_func(zmq_msg_data(kept), n, close_msg, kept);
}

/* The next frame into @msg (initialized here; the caller closes it); false with errno. */
static bool recv_frame(void *socket, int flags, zmq_msg_t *msg)
{
    if (zmq_msg_init(msg) != 0)
        return false;
    if (zmq_msg_recv(msg, socket, flags) >= 0)
        return true;
    int e = errno;
    zmq_msg_close(msg);
    errno = e;
    return false;
}

GPtrArray *fbl_wire_recv(void *socket, int flags)
{
    GPtrArray *f = frames_new();
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        if (!recv_frame(socket, f->len == 0 ? flags : 0, &msg)) {
            int e = errno;
            g_ptr_array_unref(f);
            errno = e;
            return NULL;
        }
        more = zmq_msg_more(&msg);
        g_ptr_array_add(f, frame_bytes(&msg));
    }
    return f;
}

/* Where a message being received stands against its bounds. */
typedef struct recv_state {
    guint frames;
    guint64 bytes;
    int over; /* 0, or the FBL_WIRE_ERROR code of the first bound crossed */
} recv_state;

/* Count one more frame of @size bytes; true while the message is within @b. */
static bool within(recv_state *st, const fbl_wire_bounds *b, size_t size)
{
    st->frames++;
    st->bytes += size;
    if (st->over == 0 && st->frames > b->max_frames)
        st->over = FBL_WIRE_ERROR_TOO_MANY_FRAMES;
    else if (st->over == 0 && st->bytes > b->max_bytes)
        st->over = FBL_WIRE_ERROR_TOO_LARGE;
    return st->over == 0;
}

static void set_recv_error(GError **error, int e)
{
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "zmq_msg_recv: %s", zmq_strerror(e));
}

GPtrArray *fbl_wire_recv_bounded(void *socket, int flags, const fbl_wire_bounds *bounds,
                                 GBytes **head, GError **error)
{
    if (head != NULL)
        *head = NULL;
    g_autoptr(GPtrArray) f = frames_new();
    recv_state st = {0};
    bool more = true;
    while (more) {
        zmq_msg_t msg;
        if (!recv_frame(socket, st.frames == 0 ? flags : 0, &msg)) {
            set_recv_error(error, errno);
            return NULL;
        }
        more = zmq_msg_more(&msg);
        /* Past a bound, keep the first frame only: the rest goes as it comes. */
        if (within(&st, bounds, zmq_msg_size(&msg)) || f->len == 0) {
            g_ptr_array_add(f, frame_bytes(&msg));
            continue;
        }
        if (f->len > 1)
            g_ptr_array_set_size(f, 1);
        zmq_msg_close(&msg);
    }
    if (st.over == 0)
        return g_steal_pointer(&f);
    g_set_error(error, FBL_WIRE_ERROR, st.over,
                "a message of %u frames and %" G_GUINT64_FORMAT
                " bytes, over the bounds (%u frames, %" G_GUINT64_FORMAT " bytes); dropped",
                st.frames, st.bytes, bounds->max_frames, bounds->max_bytes);
    if (head != NULL)
        *head = g_bytes_ref(g_ptr_array_index(f, 0));
    return NULL;
}
