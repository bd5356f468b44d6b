/* test_wire.c - the fbl/1 contract the sink enforces (fbl/wire.h): one row per broken rule */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <gio/gio.h>
#include <zmq.h>

#include "fbl/mailfile.h"
#include "fbl/metrics.h"
#include "fbl/wire.h"

#define WHEN   G_GINT64_CONSTANT(1767225600) /* 2026-01-01T00:00:00Z */
#define NOW    (WHEN + 3600)
#define LIMIT  ((size_t) 2 * 1024 * 1024) /* above FBL_MAILFILE_PREFIX_MAX, as the default */
#define RAW    "From: spammer@example.org\r\nSubject: cheap\r\n\r\nbuy now\r\n"
#define OTHER  "0000000000000000000000000000000000000000000000000000000000000000"
#define BIGGER (LIMIT + 1)

/* A mail as a watcher encodes it: @reports reports of RAW, or one reject when 0. */
typedef struct mail {
    fbl_parse_result *result;
    GBytes *raw;
    size_t size;
    int64_t when;
} mail;

static fbl_report *report_of(const char *mail_id, unsigned part)
{
    fbl_report *r = fbl_report_new();
    fbl_report_set_ids(r, mail_id, part);
    r->received_at = g_strdup("2026-01-01T00:00:00Z");
    r->mailbox = g_strdup("spamalert");
    return r;
}

static void mail_init(mail *m, unsigned reports)
{
    char id[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(RAW, strlen(RAW), id);
    m->result = fbl_parse_result_new(id);
    m->raw = g_bytes_new_static(RAW, strlen(RAW));
    m->size = strlen(RAW);
    m->when = WHEN;
    for (unsigned i = 0; i < reports; i++)
        g_ptr_array_add(m->result->reports, report_of(id, i));
    if (reports == 0) {
        m->result->reject = fbl_reject_new(FBL_REJECT_NOT_A_REPORT, "no report");
        g_strlcpy(m->result->reject->mail_id, id, sizeof m->result->reject->mail_id);
        m->result->reject->received_at = g_strdup("2026-01-01T00:00:00Z");
        m->result->reject->mailbox = g_strdup("spamalert");
        m->result->reject->size = (int64_t) m->size;
    }
}

/* A mail over the watcher's limit (from a watcher that kept no prefix): no raw, one too_large
 * reject of its real size. */
static void too_large_init(mail *m)
{
    mail_init(m, 0);
    m->result->reject->reason = FBL_REJECT_TOO_LARGE;
    m->result->reject->size = (int64_t) 20 * 1024 * 1024;
    m->size = (size_t) 20 * 1024 * 1024;
    g_clear_pointer(&m->raw, g_bytes_unref);
}

static void mail_clear(mail *m)
{
    fbl_parse_result_free(m->result);
    if (m->raw != NULL)
        g_bytes_unref(m->raw);
}

static fbl_report *first(mail *m)
{
    return g_ptr_array_index(m->result->reports, 0);
}

static void replace_frame(GPtrArray *frames, guint i, const void *data, size_t size)
{
    g_bytes_unref(g_ptr_array_index(frames, i));
    g_ptr_array_index(frames, i) = g_bytes_new(data, size);
}

/* Frame @i becomes @size zero bytes. */
static void zero_frame(GPtrArray *frames, guint i, size_t size)
{
    g_bytes_unref(g_ptr_array_index(frames, i));
    g_ptr_array_index(frames, i) = g_bytes_new_take(g_malloc0(size), size);
}

/* ---- the rows: each breaks the documents (before encoding) or the frames ---- */

static void keep(mail *m, GPtrArray *f)
{
    (void) m, (void) f;
}

static void invented_mail_id(mail *m, GPtrArray *f)
{
    (void) f;
    g_strlcpy(m->result->mail_id, OTHER, sizeof m->result->mail_id);
    fbl_report_set_ids(first(m), OTHER, 0);
}

static void other_raw(mail *m, GPtrArray *f)
{
    (void) m;
    g_autofree char *other = g_strdup(RAW);
    other[strlen(other) - 3] = 'W'; /* "buy noW": same size, other bytes */
    replace_frame(f, 6, other, strlen(other));
}

static void size_off(mail *m, GPtrArray *f)
{
    (void) m;
    replace_frame(f, 5, "3", 1);
}

static void report_id_not_derived(mail *m, GPtrArray *f)
{
    (void) f;
    g_strlcpy(first(m)->id, OTHER, sizeof first(m)->id);
}

static void doc_of_other_mail(mail *m, GPtrArray *f)
{
    (void) f;
    fbl_report_set_ids(first(m), OTHER, 0);
}

static void parts_out_of_order(mail *m, GPtrArray *f)
{
    (void) f;
    fbl_report_set_ids(g_ptr_array_index(m->result->reports, 1), m->result->mail_id, 0);
}

static void doc_received_at(mail *m, GPtrArray *f)
{
    (void) f;
    g_free(first(m)->received_at);
    first(m)->received_at = g_strdup("2026-01-01T00:00:01Z");
}

static void doc_mailbox(mail *m, GPtrArray *f)
{
    (void) f;
    g_free(first(m)->mailbox);
    first(m)->mailbox = NULL;
}

static void far_future(mail *m, GPtrArray *f)
{
    (void) m;
    g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT, NOW + (gint64) 2 * 86400);
    replace_frame(f, 4, t, strlen(t));
}

static void raw_over_limit(mail *m, GPtrArray *f)
{
    (void) m;
    zero_frame(f, 6, BIGGER);
}

static void no_raw_but_reports(mail *m, GPtrArray *f)
{
    (void) m;
    replace_frame(f, 6, "", 0);
}

static void reject_size_off(mail *m, GPtrArray *f)
{
    (void) f;
    m->result->reject->size = 12;
}

static void two_rejects(mail *m, GPtrArray *f)
{
    (void) m;
    g_ptr_array_add(f, g_bytes_ref(g_ptr_array_index(f, 7)));
}

static void not_json(mail *m, GPtrArray *f)
{
    (void) m;
    replace_frame(f, 7, "{\"kind\":", 8);
}

/* What a watcher keeps of a too_large mail: the start of it. */
static void prefix_raw(mail *m, GPtrArray *f)
{
    (void) m;
    replace_frame(f, 6, RAW, strlen(RAW) - 4);
}

static void prefix_over_bound(mail *m, GPtrArray *f)
{
    (void) m;
    zero_frame(f, 6, FBL_MAILFILE_PREFIX_MAX + 1);
}

static void prefix_at_bound(mail *m, GPtrArray *f)
{
    (void) m;
    zero_frame(f, 6, FBL_MAILFILE_PREFIX_MAX);
}

/* A too_large reject that carries the whole mail, of its real size. */
static void too_large_whole(mail *m, GPtrArray *f)
{
    (void) f;
    m->raw = g_bytes_new_static(RAW, strlen(RAW));
    m->size = strlen(RAW);
    m->result->reject->size = (int64_t) m->size;
}

static void doc_too_big(mail *m, GPtrArray *f)
{
    (void) m;
    zero_frame(f, 7, FBL_WIRE_MAX_DOC_BYTES + 1);
}

typedef struct row {
    const char *name;
    void (*before)(mail *m, GPtrArray *f); /* on the result, frames NULL */
    void (*after)(mail *m, GPtrArray *f);  /* on the frames */
    int reports;                           /* -1: a too_large mail */
    int want;                              /* 0: decodes; else the FBL_WIRE_ERROR code */
} row;

static const row rows[] = {
    {"valid, one report", keep, keep, 1, 0},
    {"valid, two reports", keep, keep, 2, 0},
    {"valid reject", keep, keep, 0, 0},
    {"valid too_large, no raw", keep, keep, -1, 0},
    {"mail_id of no raw", invented_mail_id, keep, 1, FBL_WIRE_ERROR_MAIL_ID},
    {"other raw under the id", keep, other_raw, 1, FBL_WIRE_ERROR_MAIL_ID},
    {"SIZE not the raw's", keep, size_off, 1, FBL_WIRE_ERROR_INCONSISTENT},
    {"report id not derived", report_id_not_derived, keep, 1, FBL_WIRE_ERROR_INCONSISTENT},
    {"report of another mail", doc_of_other_mail, keep, 1, FBL_WIRE_ERROR_INCONSISTENT},
    {"parts out of order", parts_out_of_order, keep, 2, FBL_WIRE_ERROR_INCONSISTENT},
    {"received_at differs", doc_received_at, keep, 1, FBL_WIRE_ERROR_INCONSISTENT},
    {"mailbox differs", doc_mailbox, keep, 1, FBL_WIRE_ERROR_INCONSISTENT},
    {"received_at two days ahead", keep, far_future, 1, FBL_WIRE_ERROR_SHAPE},
    {"raw over the sink's limit", keep, raw_over_limit, 1, FBL_WIRE_ERROR_TOO_LARGE},
    {"no raw, yet reports", keep, no_raw_but_reports, 1, FBL_WIRE_ERROR_INCONSISTENT},
    {"too_large of another size", reject_size_off, keep, -1, FBL_WIRE_ERROR_INCONSISTENT},
    {"two rejects", keep, two_rejects, 0, FBL_WIRE_ERROR_DOC},
    {"a document not JSON", keep, not_json, 1, FBL_WIRE_ERROR_DOC},
    {"a document over its bound", keep, doc_too_big, 1, FBL_WIRE_ERROR_TOO_LARGE},
    {"valid too_large with its prefix", keep, prefix_raw, -1, 0},
    {"too_large, a prefix at the bound", keep, prefix_at_bound, -1, 0},
    {"too_large, a prefix over the bound", keep, prefix_over_bound, -1, FBL_WIRE_ERROR_TOO_LARGE},
    {"too_large with the whole raw", too_large_whole, keep, -1, FBL_WIRE_ERROR_INCONSISTENT},
    {"reject with a prefix only", keep, prefix_raw, 0, FBL_WIRE_ERROR_INCONSISTENT},
    {"reports with a prefix only", keep, prefix_raw, 1, FBL_WIRE_ERROR_INCONSISTENT},
};

static void test_decode_contract(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        mail m;
        if (rows[i].reports < 0)
            too_large_init(&m);
        else
            mail_init(&m, (unsigned) rows[i].reports);
        rows[i].before(&m, NULL);
        g_autoptr(GPtrArray) frames =
            fbl_wire_encode_mail(m.result, "spamalert", m.when, m.size, m.raw);
        rows[i].after(&m, frames);
        g_autoptr(GError) error = NULL;
        g_autoptr(fbl_sink_mail) got = fbl_wire_decode_mail(frames, LIMIT, NOW, &error);
        if (rows[i].want == 0 && got == NULL)
            fail_msg("%s: refused: %s", rows[i].name, error->message);
        if (rows[i].want != 0 && !g_error_matches(error, FBL_WIRE_ERROR, rows[i].want))
            fail_msg("%s: want %s, got %s", rows[i].name, fbl_wire_error_reason(rows[i].want),
                     error != NULL ? error->message : "a mail");
        if (got != NULL) { /* the sink keeps RAW as it came: a prefix too */
            assert_int_equal(got->reports->len, MAX(rows[i].reports, 0));
            gsize sent = g_bytes_get_size(g_ptr_array_index(frames, 6));
            assert_int_equal(got->raw != NULL ? g_bytes_get_size(got->raw) : 0, sent);
        }
        mail_clear(&m);
    }
}

/* ---- receiving frame by frame ------------------------------------------------ */

/* Two PAIR sockets over inproc: @out sends, @in receives. */
typedef struct {
    void *ctx, *in, *out;
} socket_pair;

static socket_pair pair_open(const char *endpoint)
{
    socket_pair p = {.ctx = zmq_ctx_new()};
    p.in = zmq_socket(p.ctx, ZMQ_PAIR);
    p.out = zmq_socket(p.ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(p.in, endpoint), 0);
    assert_int_equal(zmq_connect(p.out, endpoint), 0);
    return p;
}

static void pair_close(socket_pair *p)
{
    zmq_close(p->in);
    zmq_close(p->out);
    zmq_ctx_term(p->ctx);
}

static void send_frames(void *s, guint n, size_t size)
{
    g_autofree char *data = g_malloc0(size > 0 ? size : 1);
    for (guint i = 0; i < n; i++)
        assert_true(zmq_send(s, data, size, i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

static void test_recv_bounded(void **state)
{
    (void) state;
    socket_pair p = pair_open("inproc://test-wire");
    void *in = p.in, *out = p.out;
    fbl_wire_bounds b = {.max_frames = 10, .max_bytes = 1000};
    send_frames(out, 11, 1);   /* one frame too many */
    send_frames(out, 3, 400);  /* 200 bytes too many */
    send_frames(out, 10, 100); /* just within both */
    static const struct {
        int want;
        guint frames;
    } expect[] = {{FBL_WIRE_ERROR_TOO_MANY_FRAMES, 0}, {FBL_WIRE_ERROR_TOO_LARGE, 0}, {0, 10}};
    for (size_t i = 0; i < G_N_ELEMENTS(expect); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) head = NULL;
        g_autoptr(GPtrArray) f = fbl_wire_recv_bounded(in, 0, &b, &head, &error);
        if (expect[i].want != 0) {
            assert_null(f);
            assert_true(g_error_matches(error, FBL_WIRE_ERROR, expect[i].want));
            assert_non_null(head); /* the first frame, to answer the peer */
            continue;
        }
        assert_non_null(f); /* the stream is in step again after a dropped message */
        assert_int_equal(f->len, expect[i].frames);
        assert_null(head);
    }
    g_autoptr(GError) error = NULL;
    assert_null(fbl_wire_recv_bounded(in, ZMQ_DONTWAIT, &b, NULL, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
    pair_close(&p);
}

/* Frames of every size arrive whole and unchanged, the large ones lent rather
 * than copied (the sender's reference dropped before they are read). */
static void test_send_recv_round_trip(void **state)
{
    (void) state;
    socket_pair p = pair_open("inproc://test-wire-trip");
    void *in = p.in, *out = p.out;
    static const gsize sizes[] = {0, 1, (gsize) 64 * 1024 - 1, (gsize) 64 * 1024,
                                  (gsize) 3 * 1024 * 1024 + 7};
    g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        guint8 *data = g_malloc(sizes[i] > 0 ? sizes[i] : 1);
        for (gsize j = 0; j < sizes[i]; j++)
            data[j] = (guint8) (j * 31 + i);
        g_ptr_array_add(sent, g_bytes_new_take(data, sizes[i]));
    }
    {
        g_autoptr(GPtrArray) frames =
            g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        for (guint i = 0; i < sent->len; i++)
            g_ptr_array_add(frames, g_bytes_ref(g_ptr_array_index(sent, i)));
        assert_true(fbl_wire_send(out, frames, 0));
    }
    g_autoptr(GPtrArray) copies = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
    for (guint i = 0; i < sent->len; i++) /* what the receiver compares with */
        g_ptr_array_add(copies, g_bytes_new(g_bytes_get_data(g_ptr_array_index(sent, i), NULL),
                                            g_bytes_get_size(g_ptr_array_index(sent, i))));
    g_ptr_array_set_size(sent, 0); /* the sender lets go before the receiver reads */
    g_autoptr(GPtrArray) got = fbl_wire_recv(in, 0);
    assert_non_null(got);
    assert_int_equal(got->len, copies->len);
    for (guint i = 0; i < got->len; i++)
        assert_true(g_bytes_equal(g_ptr_array_index(got, i), g_ptr_array_index(copies, i)));
    pair_close(&p);
}

static void test_bounds_follow_the_mail_limit(void **state)
{
    (void) state;
    size_t ten = (size_t) 10 * 1024 * 1024;
    fbl_wire_bounds b = fbl_wire_mail_bounds(ten, 1);
    assert_int_equal(b.max_frames, 1 + FBL_WIRE_HEADER_FRAMES + FBL_WIRE_MAX_DOCS);
    assert_int_equal(b.max_bytes, ten + FBL_WIRE_MAX_DOCS_BYTES + FBL_WIRE_MAX_HEADER_BYTES +
                                      FBL_WIRE_MAX_ROUTE_BYTES);
    assert_int_equal(fbl_wire_max_frame(ten), ten);
    assert_int_equal(fbl_wire_max_frame(1024), FBL_WIRE_MAX_DOC_BYTES);
}

static void test_refusals_are_counted_by_reason(void **state)
{
    (void) state;
    g_autofree char *before = fbl_metrics_render();
    assert_non_null(strstr(before, "\nfbl_sink_refused_messages_total{reason=\"mail_id\"} 0\n"));
    fbl_metrics_sink_refused(fbl_wire_error_reason(FBL_WIRE_ERROR_MAIL_ID));
    fbl_metrics_sink_refused(fbl_wire_error_reason(FBL_WIRE_ERROR_TOO_MANY_FRAMES));
    g_autofree char *after = fbl_metrics_render();
    assert_non_null(strstr(after, "\nfbl_sink_refused_messages_total{reason=\"mail_id\"} 1\n"));
    assert_non_null(
        strstr(after, "\nfbl_sink_refused_messages_total{reason=\"too_many_frames\"} 1\n"));
    assert_non_null(strstr(after, "\nfbl_sink_bad_messages_total 2\n"));
    assert_string_equal(fbl_wire_error_reason(99), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_contract),
        cmocka_unit_test(test_recv_bounded),
        cmocka_unit_test(test_send_recv_round_trip),
        cmocka_unit_test(test_bounds_follow_the_mail_limit),
        cmocka_unit_test(test_refusals_are_counted_by_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
