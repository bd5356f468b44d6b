/*
 * wire_peer.c - a hostile fbl/1 peer for the sink tests (sink_peers.py)
 *
 *   wire_peer flood ENDPOINT FRAMES FRAME_BYTES MESSAGES SECONDS burst|paced
 *       a DEALER sends MESSAGES messages of FRAMES frames ("fbl/1" "mail" and
 *       FRAMES - 2 frames of FRAME_BYTES bytes each), all at once (burst) or
 *       each after the answer to the one before (paced), then waits up to
 *       SECONDS for answers; prints "sent=N bad=B"
 *   wire_peer forge ENDPOINT CASE MAILFILE RECEIVED_AT MAILBOX
 *       parses MAILFILE as a watcher does, encodes its "mail" message, breaks
 *       it as CASE says (valid: not at all), sends it and waits 10 s for the
 *       answer; prints "case=CASE mail_id=ID report_id=ID received_at=T
 *       reply=ack|bad|none reason=TEXT"
 *
 * A real ZeroMQ peer over the sink's real endpoint: what the sink does with
 * its messages is what it would do with a broken or compromised watcher's.
 * The frames of a flood all point to one buffer (zmq_msg_init_data, no copy),
 * so the peer stays small whatever it sends.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <zmq.h>

#include "fbl/wire.h"
#include "parsers/parse.h"
#include "parsers/report.h"

#define REPLY_WAIT_MS 10000

static void *peer_socket(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, sndtimeo = 30000;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        (void) fprintf(stderr, "wire_peer: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        exit(1);
    }
    return s;
}

/* One answer, if it comes within @ms: "ack" or "bad" (@reason set), or NULL. */
static const char *await_reply(void *s, int ms, char **reason, char *mail_id)
{
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, ms) <= 0)
        return NULL;
    g_autoptr(GPtrArray) frames = fbl_wire_recv(s, ZMQ_DONTWAIT);
    bool is_ack = false;
    g_autoptr(GError) error = NULL;
    if (frames == NULL || !fbl_wire_decode_reply(frames, &is_ack, mail_id, reason, &error))
        return "unreadable";
    return is_ack ? "ack" : "bad";
}

static bool send_frame(void *s, void *data, size_t size, bool more)
{
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, data, size, NULL, NULL) != 0)
        return false;
    if (zmq_msg_send(&msg, s, more ? ZMQ_SNDMORE : 0) >= 0)
        return true;
    zmq_msg_close(&msg);
    return false;
}

/* Wait up to @seconds for answers, at most @want of them; the number of "bad" ones. */
static guint64 count_bad(void *s, guint64 seconds, guint64 want)
{
    guint64 got = 0, bad = 0;
    gint64 end = g_get_monotonic_time() + (gint64) seconds * G_USEC_PER_SEC;
    for (gint64 now = g_get_monotonic_time(); now < end && got < want;
         now = g_get_monotonic_time()) {
        g_autofree char *reason = NULL;
        char mail_id[FBL_SHA256_HEX_LEN + 1];
        const char *r = await_reply(s, (int) ((end - now) / 1000) + 1, &reason, mail_id);
        if (r == NULL)
            break;
        got++;
        bad += strcmp(r, "bad") == 0;
    }
    return bad;
}

static bool send_message(void *s, guint64 frames, char *big, guint64 frame_bytes)
{
    static char version[] = FBL_WIRE_VERSION, type[] = "mail";
    bool ok =
        send_frame(s, version, strlen(version), true) && send_frame(s, type, strlen(type), true);
    for (guint64 f = 2; ok && f < frames; f++)
        ok = send_frame(s, big, frame_bytes, f + 1 < frames);
    return ok;
}

static int flood(void *ctx, char **argv)
{
    const char *endpoint = argv[0];
    guint64 frames = g_ascii_strtoull(argv[1], NULL, 10);
    guint64 frame_bytes = g_ascii_strtoull(argv[2], NULL, 10);
    guint64 messages = g_ascii_strtoull(argv[3], NULL, 10);
    guint64 seconds = g_ascii_strtoull(argv[4], NULL, 10);
    bool paced = strcmp(argv[5], "paced") == 0;
    if (frames < 3) {
        (void) fprintf(stderr, "wire_peer: FRAMES must be 3 or more\n");
        return 64;
    }
    void *s = peer_socket(ctx, endpoint);
    char *big = g_malloc0(frame_bytes > 0 ? frame_bytes : 1);
    guint64 sent = 0, bad = 0;
    for (; sent < messages && send_message(s, frames, big, frame_bytes); sent++) {
        if (paced)
            bad += count_bad(s, seconds, 1);
    }
    if (!paced)
        bad = count_bad(s, seconds, sent);
    (void) printf("sent=%" G_GUINT64_FORMAT " bad=%" G_GUINT64_FORMAT "\n", sent, bad);
    zmq_close(s);
    g_free(big);
    return 0;
}

/* ---- forge ----------------------------------------------------------------- */

typedef struct forged {
    fbl_parse_result *result;
    GBytes *raw;
    size_t size;
    int64_t received_at;
    const char *mailbox;
    char mail_id[FBL_SHA256_HEX_LEN + 1];   /* what the message claims */
    char report_id[FBL_SHA256_HEX_LEN + 1]; /* its first report's id, or "" */
} forged;

static fbl_report *first_report(forged *f)
{
    if (f->result->reports->len == 0) {
        (void) fprintf(stderr, "wire_peer: this case needs a mail that yields a report\n");
        exit(64);
    }
    return g_ptr_array_index(f->result->reports, 0);
}

/* Every document under @mail_id, with the ids derived from it: only RAW disagrees. */
static void rename_mail(forged *f, const char *mail_id)
{
    g_strlcpy(f->result->mail_id, mail_id, sizeof f->result->mail_id);
    for (guint i = 0; i < f->result->reports->len; i++) {
        fbl_report *r = g_ptr_array_index(f->result->reports, i);
        fbl_report_set_ids(r, mail_id, r->part);
    }
    if (f->result->reject != NULL)
        g_strlcpy(f->result->reject->mail_id, mail_id, sizeof f->result->reject->mail_id);
}

/* Break the parse result before it is encoded; false for an unknown case. */
static bool break_documents(forged *f, const char *name)
{
    char other[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(name, strlen(name), other);
    if (strcmp(name, "mail_id") == 0) { /* a mail nobody sent */
        rename_mail(f, other);
    } else if (strcmp(name, "report_id") == 0) { /* an id another mail's report will have */
        g_strlcpy(first_report(f)->id, other, sizeof first_report(f)->id);
    } else if (strcmp(name, "part") == 0) {
        fbl_report_set_ids(first_report(f), f->result->mail_id, 7);
    } else if (strcmp(name, "doc_mail_id") == 0) {
        fbl_report_set_ids(first_report(f), other, 0);
    } else if (strcmp(name, "received_at") == 0) {
        g_free(first_report(f)->received_at);
        first_report(f)->received_at = g_strdup("2001-01-01T00:00:00Z");
    } else if (strcmp(name, "mailbox") == 0) {
        g_free(first_report(f)->mailbox);
        first_report(f)->mailbox = g_strdup("somebody-else");
    } else if (strcmp(name, "too_large_reports") == 0) { /* no RAW, yet reports */
        (void) first_report(f);
        g_clear_pointer(&f->raw, g_bytes_unref);
    } else if (strcmp(name, "valid") != 0 && strcmp(name, "raw") != 0 &&
               strcmp(name, "size") != 0 && strcmp(name, "future") != 0) {
        return false;
    }
    g_strlcpy(f->mail_id, f->result->mail_id, sizeof f->mail_id);
    if (f->result->reports->len > 0)
        g_strlcpy(f->report_id, first_report(f)->id, sizeof f->report_id);
    return true;
}

/* Break the frames after encoding: RAW and SIZE. */
static void break_frames(GPtrArray *frames, const char *name, const forged *f)
{
    if (strcmp(name, "raw") == 0) { /* other bytes under the mail's id */
        GBytes *old = g_ptr_array_index(frames, 6);
        gsize n = 0;
        guint8 *copy = g_memdup2(g_bytes_get_data(old, &n), g_bytes_get_size(old));
        copy[n / 2] ^= 0x20;
        g_ptr_array_index(frames, 6) = g_bytes_new_take(copy, n);
        g_bytes_unref(old);
    } else if (strcmp(name, "size") == 0) {
        g_autofree char *size = g_strdup_printf("%zu", f->size + 1);
        g_bytes_unref(g_ptr_array_index(frames, 5));
        g_ptr_array_index(frames, 5) = g_bytes_new(size, strlen(size));
    }
}

static int forge(void *ctx, char **argv)
{
    const char *endpoint = argv[0], *name = argv[1], *path = argv[2];
    forged f = {.received_at = (int64_t) g_ascii_strtoll(argv[3], NULL, 10), .mailbox = argv[4]};
    if (strcmp(name, "future") == 0)
        f.received_at = g_get_real_time() / G_USEC_PER_SEC + (gint64) 30 * 86400;
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &data, &len, &error)) {
        (void) fprintf(stderr, "wire_peer: %s\n", error->message);
        return 66;
    }
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    fbl_parser *parser = fbl_parser_new(&o, &error);
    fbl_mail_meta meta = {.mailbox = f.mailbox, .received_at = f.received_at};
    f.result = fbl_parser_parse(parser, data, len, &meta);
    f.raw = g_bytes_new(data, len);
    f.size = len;
    if (!break_documents(&f, name)) {
        (void) fprintf(stderr, "wire_peer: unknown case '%s'\n", name);
        return 64;
    }
    GPtrArray *frames = fbl_wire_encode_mail(f.result, f.mailbox, f.received_at, f.size, f.raw);
    break_frames(frames, name, &f);
    void *s = peer_socket(ctx, endpoint);
    if (!fbl_wire_send(s, frames, 0)) {
        (void) fprintf(stderr, "wire_peer: send: %s\n", zmq_strerror(zmq_errno()));
        return 69;
    }
    g_autofree char *reason = NULL;
    char mail_id[FBL_SHA256_HEX_LEN + 1] = "";
    const char *reply = await_reply(s, REPLY_WAIT_MS, &reason, mail_id);
    (void) printf("case=%s mail_id=%s report_id=%s received_at=%" G_GINT64_FORMAT
                  " reply=%s reason=%s\n",
                  name, f.mail_id, *f.report_id != '\0' ? f.report_id : "-", (gint64) f.received_at,
                  reply != NULL ? reply : "none", reason != NULL ? reason : "-");
    zmq_close(s);
    g_ptr_array_unref(frames);
    if (f.raw != NULL)
        g_bytes_unref(f.raw);
    fbl_parse_result_free(f.result);
    fbl_parser_free(parser);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "flood") == 0) {
        void *ctx = zmq_ctx_new();
        int rc = flood(ctx, argv + 2);
        zmq_ctx_term(ctx);
        return rc;
    }
    if (argc == 7 && strcmp(argv[1], "forge") == 0) {
        fbl_parsers_init();
        void *ctx = zmq_ctx_new();
        int rc = forge(ctx, argv + 2);
        zmq_ctx_term(ctx);
        fbl_parsers_shutdown();
        return rc;
    }
    (void) fprintf(stderr, "usage: wire_peer flood ENDPOINT FRAMES FRAME_BYTES MESSAGES SECONDS "
                           "burst|paced\n"
                           "       wire_peer forge ENDPOINT CASE MAILFILE RECEIVED_AT MAILBOX\n");
    return 64;
}
