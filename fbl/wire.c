/* wire.c - fbl/1 messages over ZeroMQ (see wire.h) */
#include "fbl/wire.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>
#include <zmq.h>

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

/* One document frame into the mail: a report, or its reject. */
static bool take_doc(fbl_sink_mail *m, GBytes *frame, GError **error)
{
    gsize n = 0;
    const char *d = g_bytes_get_data(frame, &n);
    if (n == 0 || n > FBL_WIRE_MAX_DOC_BYTES) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_DOC, "document of %zu bytes", n);
        return false;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(d, n, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_DOC, "document is not JSON: %s",
                    jerr.text);
        return false;
    }
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    g_autoptr(GError) local = NULL;
    bool ok = false;
    if (kind != NULL && strcmp(kind, "report") == 0) {
        fbl_report *r = fbl_report_from_json(doc, &local);
        if (r != NULL && strcmp(r->mail_id, m->mail_id) == 0) {
            g_ptr_array_add(m->reports, r);
            ok = true;
        } else {
            fbl_report_free(r);
        }
    } else if (kind != NULL && strcmp(kind, "reject") == 0 && m->reject == NULL) {
        m->reject = fbl_reject_from_json(doc, &local);
        ok = m->reject != NULL && strcmp(m->reject->mail_id, m->mail_id) == 0;
    }
    json_decref(doc);
    if (!ok)
        g_set_error(error, FBL_WIRE_ERROR, FBL_WIRE_ERROR_DOC, "bad document: %s",
                    local != NULL ? local->message : "wrong kind or mail_id");
    return ok;
}

fbl_sink_mail *fbl_wire_decode_mail(GPtrArray *frames, GError **error)
{
    if (!check_version(frames, "mail", error))
        return NULL;
    if (frames->len < 8 || frames->len > 7 + FBL_WIRE_MAX_DOCS) {
        shape_error(error, "wrong number of frames for a mail");
        return NULL;
    }
    g_autoptr(fbl_sink_mail) m = fbl_sink_mail_new();
    g_autofree char *id = frame_text(frames, 2, 64);
    guint64 when, size;
    m->mailbox = frame_text(frames, 3, 256);
    if (!is_hex_id(id) || m->mailbox == NULL || !g_utf8_validate(m->mailbox, -1, NULL) ||
        !decimal(frames, 4, &when) || !decimal(frames, 5, &size)) {
        shape_error(error, "bad mail header frames");
        return NULL;
    }
    g_strlcpy(m->mail_id, id, sizeof m->mail_id);
    m->received_at = (int64_t) when;
    m->size = (int64_t) size;
    GBytes *raw = g_ptr_array_index(frames, 6);
    if (g_bytes_get_size(raw) > 0)
        m->raw = g_bytes_ref(raw);
    for (guint i = 7; i < frames->len; i++) {
        if (!take_doc(m, g_ptr_array_index(frames, i), error))
            return NULL;
    }
    /* Reports or exactly one reject: what a parse result always is. */
    if ((m->reports->len > 0) == (m->reject != NULL)) {
        shape_error(error, "a mail carries reports or one reject");
        return NULL;
    }
    return g_steal_pointer(&m);
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
    /* The raw mail, plus its documents: those are bounded too, and small. */
    return (int64_t) max_mail_bytes + 64 * 1024 * 1024;
}

bool fbl_wire_send(void *socket, GPtrArray *frames, int flags)
{
    for (guint i = 0; i < frames->len; i++) {
        gsize n = 0;
        const void *d = g_bytes_get_data(g_ptr_array_index(frames, i), &n);
        int more = i + 1 < frames->len ? ZMQ_SNDMORE : 0;
        /* zmq copies the data; a send that fails part-way leaves nothing queued
         * only for the first frame - later frames of a multipart never block. */
        if (zmq_send(socket, n > 0 ? d : "", n, flags | more) < 0)
            return false;
    }
    return true;
}

GPtrArray *fbl_wire_recv(void *socket, int flags)
{
    GPtrArray *f = frames_new();
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        if (zmq_msg_init(&msg) != 0 || zmq_msg_recv(&msg, socket, f->len == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(&msg);
            g_ptr_array_unref(f);
            errno = e;
            return NULL;
        }
        g_ptr_array_add(f, g_bytes_new(zmq_msg_data(&msg), zmq_msg_size(&msg)));
        more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
    }
    return f;
}
