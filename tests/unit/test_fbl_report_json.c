/* test_fbl_report_json.c - the report model and its JSON codec (parsers/report_json.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>
#include <jansson.h>

#include "parsers/report.h"
#include "parsers/report_json.h"
#include "tests/unit/harness.h"

#define MAIL_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void add(GPtrArray *list, const char *value)
{
    g_ptr_array_add(list, g_strdup(value));
}

/* A report with every field set to something other than its default. */
static fbl_report *full_report(void)
{
    fbl_report *r = fbl_report_new();
    fbl_report_set_ids(r, MAIL_ID, 3);
    r->received_at = g_strdup("2024-01-10T09:27:54Z");
    r->mailbox = g_strdup("spamalert");
    r->format = FBL_FORMAT_ATTACHMENT;
    r->feedback_type = FBL_FEEDBACK_FRAUD;
    r->reporter.address = g_strdup("fbl@isp.example");
    r->reporter.name = g_strdup("ISP \xc3\x89quipe");
    r->reporter.user_agent = g_strdup("ISPFBL/1.0");
    r->reporter.reporting_mta = g_strdup("mx.isp.example");
    r->reporter.verified = 1;

    fbl_arf *a = fbl_arf_new();
    a->version = g_strdup("1");
    a->feedback_type_raw = g_strdup("phishing");
    a->user_agent = g_strdup("ISPFBL/1.0");
    a->source_ip = g_strdup("203.0.113.50");
    a->original_mail_from = g_strdup("bounce@spam.example");
    add(a->original_rcpt_to, "victim@isp.example");
    add(a->original_rcpt_to, "redacted");
    a->arrival_date = g_strdup("2024-01-10T09:27:50Z");
    a->reporting_mta = g_strdup("mx.isp.example");
    add(a->reported_domain, "spam.example");
    add(a->reported_uri, "http://spam.example/x");
    a->incidents = 7;
    add(a->authentication_results, "mx.isp.example; spf=fail");
    a->original_envelope_id = g_strdup("4T1abc");
    a->redacted_address = true;
    a->auth_failure = g_strdup("dkim");
    a->delivery_result = g_strdup("reject");
    r->arf = a;

    r->source_ip = g_strdup("203.0.113.50");
    r->source_ip_from = g_strdup("arf");
    r->redacted = true;

    fbl_message *m = &r->message;
    m->headers_only = true;
    m->message_id = g_strdup("abc123@spam.example");
    m->date = g_strdup("2024-01-10T09:27:40Z");
    m->from = g_strdup("sales@spam.example");
    m->from_name = g_strdup("Sales \"Team\"");
    m->from_domain = g_strdup("spam.example");
    m->sender = g_strdup("sender@spam.example");
    m->reply_to = g_strdup("reply@spam.example");
    m->return_path = g_strdup("bounce@spam.example");
    add(m->to, "victim@isp.example");
    add(m->to, "other@isp.example");
    m->subject = g_strdup("Cheap \xe2\x82\xac watches\n\ttab");
    fbl_dkim *d = g_new0(fbl_dkim, 1);
    d->d = g_strdup("spam.example");
    d->s = g_strdup("s1");
    g_ptr_array_add(m->dkim, d);
    fbl_dkim *d2 = g_new0(fbl_dkim, 1);
    d2->d = g_strdup("esp.example");
    g_ptr_array_add(m->dkim, d2);
    m->list_unsubscribe = g_strdup("<mailto:u@spam.example>");
    m->x_mailer = g_strdup("Mailer 1.0");
    fbl_hop *h = fbl_hop_new();
    h->from = g_strdup("spam.example");
    h->by = g_strdup("mx.isp.example");
    h->ip = g_strdup("203.0.113.50");
    h->helo = g_strdup("ylmf-pc");
    h->date = g_strdup("2024-01-10T09:27:50Z");
    g_ptr_array_add(m->received, h);
    g_ptr_array_add(m->received, fbl_hop_new()); /* a hop nothing was read from */
    add(m->urls, "http://spam.example/x");
    add(m->url_hosts, "spam.example");
    fbl_attachment *at = g_new0(fbl_attachment, 1);
    at->name = g_strdup("invoice.pdf");
    at->type = g_strdup("application/pdf");
    at->size = 1234;
    fbl_sha256_hex("pdf", 3, at->sha256);
    g_ptr_array_add(m->attachments, at);
    m->fingerprint = g_strdup("00112233445566778899aabbccddeeff");
    m->size = 4096;
    fbl_report_add_warning(r, "arf: %s", "something");
    return r;
}

/* ---- encoding ---------------------------------------------------------- */

static void expect_keys(const char *where, const json_t *obj, const char *const *keys)
{
    if (!json_is_object(obj)) {
        ROW_FAIL("%s: not an object", where);
        return;
    }
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (json_object_get(obj, keys[i]) == NULL)
            ROW_FAIL("%s: key '%s' missing", where, keys[i]);
    }
}

static const char *const top_keys[] = {
    "v",       "kind",          "id",       "mail_id", "part",      "received_at",    "mailbox",
    "format",  "feedback_type", "reporter", "arf",     "source_ip", "source_ip_from", "redacted",
    "message", "warnings",      NULL};
static const char *const reporter_keys[] = {"address",       "name",     "user_agent",
                                            "reporting_mta", "verified", NULL};
static const char *const arf_keys[] = {"version",
                                       "feedback_type_raw",
                                       "source_ip",
                                       "original_mail_from",
                                       "original_rcpt_to",
                                       "arrival_date",
                                       "reported_domain",
                                       "reported_uri",
                                       "incidents",
                                       "authentication_results",
                                       "original_envelope_id",
                                       NULL};
static const char *const message_keys[] = {
    "headers_only", "message_id",       "date",        "from",     "from_domain",
    "sender",       "reply_to",         "return_path", "to",       "subject",
    "dkim",         "list_unsubscribe", "x_mailer",    "received", "urls",
    "url_hosts",    "attachments",      "fingerprint", "size",     NULL};
static const char *const hop_keys[] = {"from", "by", "ip", "helo", "date", NULL};
static const char *const dkim_keys[] = {"d", "s", NULL};
static const char *const attachment_keys[] = {"name", "type", "size", "sha256", NULL};
static const char *const reject_keys[] = {"v",      "kind",   "mail_id", "received_at", "mailbox",
                                          "reason", "detail", "size",    NULL};

static void test_encode_full(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = full_report();
    json_t *doc = fbl_report_to_json(r);
    expect_keys("report", doc, top_keys);
    expect_keys("reporter", json_object_get(doc, "reporter"), reporter_keys);
    expect_keys("arf", json_object_get(doc, "arf"), arf_keys);
    const json_t *m = json_object_get(doc, "message");
    expect_keys("message", m, message_keys);
    expect_keys("hop", json_array_get(json_object_get(m, "received"), 0), hop_keys);
    expect_keys("dkim", json_array_get(json_object_get(m, "dkim"), 0), dkim_keys);
    expect_keys("attachment", json_array_get(json_object_get(m, "attachments"), 0),
                attachment_keys);

    assert_int_equal(json_integer_value(json_object_get(doc, "v")), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "report");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), r->id);
    assert_string_equal(json_string_value(json_object_get(doc, "mail_id")), MAIL_ID);
    assert_int_equal(json_integer_value(json_object_get(doc, "part")), 3);
    assert_string_equal(json_string_value(json_object_get(doc, "format")), "attachment");
    assert_string_equal(json_string_value(json_object_get(doc, "feedback_type")), "fraud");
    assert_true(json_is_true(json_object_get(json_object_get(doc, "reporter"), "verified")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "arf"), "incidents")),
                     7);
    assert_int_equal(json_integer_value(json_object_get(m, "size")), 4096);
    assert_string_equal(json_string_value(json_object_get(m, "subject")),
                        "Cheap \xe2\x82\xac watches\n\ttab");
    /* the second dkim signature has no selector: null, not "" */
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(m, "dkim"), 1), "s")));
    json_decref(doc);
    fbl_test_rows_done();
}

/* Every contract key is there for an empty report; unknowns are null or []. */
static void test_encode_unknowns(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = fbl_report_new();
    fbl_report_set_ids(r, MAIL_ID, 0);
    r->arf = fbl_arf_new();
    g_ptr_array_add(r->message.received, fbl_hop_new());
    json_t *doc = fbl_report_to_json(r);
    expect_keys("report", doc, top_keys);
    expect_keys("reporter", json_object_get(doc, "reporter"), reporter_keys);
    expect_keys("arf", json_object_get(doc, "arf"), arf_keys);
    expect_keys("message", json_object_get(doc, "message"), message_keys);

    static const struct {
        const char *object; /* "" for the top level */
        const char *key;
        const char *want; /* "null", "[]" or "false" */
    } rows[] = {
        {"", "received_at", "null"},
        {"", "mailbox", "null"},
        {"", "source_ip", "null"},
        {"", "source_ip_from", "null"},
        {"", "warnings", "[]"},
        {"", "redacted", "false"},
        {"reporter", "address", "null"},
        {"reporter", "name", "null"},
        {"reporter", "user_agent", "null"},
        {"reporter", "reporting_mta", "null"},
        {"reporter", "verified", "null"},
        {"arf", "version", "null"},
        {"arf", "feedback_type_raw", "null"},
        {"arf", "source_ip", "null"},
        {"arf", "original_mail_from", "null"},
        {"arf", "original_rcpt_to", "[]"},
        {"arf", "arrival_date", "null"},
        {"arf", "reported_domain", "[]"},
        {"arf", "reported_uri", "[]"},
        {"arf", "incidents", "null"},
        {"arf", "authentication_results", "[]"},
        {"arf", "original_envelope_id", "null"},
        {"message", "headers_only", "false"},
        {"message", "message_id", "null"},
        {"message", "date", "null"},
        {"message", "from", "null"},
        {"message", "from_domain", "null"},
        {"message", "sender", "null"},
        {"message", "reply_to", "null"},
        {"message", "return_path", "null"},
        {"message", "to", "[]"},
        {"message", "subject", "null"},
        {"message", "dkim", "[]"},
        {"message", "list_unsubscribe", "null"},
        {"message", "x_mailer", "null"},
        {"message", "urls", "[]"},
        {"message", "url_hosts", "[]"},
        {"message", "attachments", "[]"},
        {"message", "fingerprint", "null"},
        {"message", "size", "null"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const json_t *o = *rows[i].object ? json_object_get(doc, rows[i].object) : doc;
        const json_t *v = json_object_get(o, rows[i].key);
        g_autofree char *got = v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        if (got == NULL || strcmp(got, rows[i].want) != 0)
            ROW_FAIL("%s.%s: want %s, got %s", rows[i].object, rows[i].key, rows[i].want,
                     got ? got : "(missing)");
    }
    /* a hop with nothing known: every key null */
    const json_t *hop =
        json_array_get(json_object_get(json_object_get(doc, "message"), "received"), 0);
    for (size_t i = 0; hop_keys[i] != NULL; i++) {
        if (!json_is_null(json_object_get(hop, hop_keys[i])))
            ROW_FAIL("hop.%s: want null", hop_keys[i]);
    }
    json_decref(doc);

    /* no ARF fields at all: "arf": null */
    g_autoptr(fbl_report) plain = fbl_report_new();
    fbl_report_set_ids(plain, MAIL_ID, 0);
    doc = fbl_report_to_json(plain);
    assert_true(json_is_null(json_object_get(doc, "arf")));
    json_decref(doc);
    fbl_test_rows_done();
}

/* An attachment whose digest is unknown says null, not "". */
static void test_encode_attachment_unknowns(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = fbl_report_new();
    fbl_report_set_ids(r, MAIL_ID, 0);
    g_ptr_array_add(r->message.attachments, g_new0(fbl_attachment, 1));
    json_t *doc = fbl_report_to_json(r);
    const json_t *at =
        json_array_get(json_object_get(json_object_get(doc, "message"), "attachments"), 0);
    expect_keys("attachment", at, attachment_keys);
    assert_true(json_is_null(json_object_get(at, "name")));
    assert_true(json_is_null(json_object_get(at, "type")));
    assert_true(json_is_null(json_object_get(at, "sha256")));
    json_decref(doc);
    fbl_test_rows_done();
}

/* Bytes that are not UTF-8 never make the encoder fail or write invalid JSON. */
static void test_encode_invalid_utf8(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = fbl_report_new();
    fbl_report_set_ids(r, MAIL_ID, 0);
    r->message.subject = g_strdup("bad \xff\xfe end");
    g_ptr_array_add(r->message.to, g_strdup("\xc3\x28@example.com"));
    json_t *doc = fbl_report_to_json(r);
    const json_t *m = json_object_get(doc, "message");
    const char *subject = json_string_value(json_object_get(m, "subject"));
    assert_non_null(subject);
    assert_true(g_utf8_validate(subject, -1, NULL));
    assert_true(g_str_has_prefix(subject, "bad "));
    assert_true(g_str_has_suffix(subject, " end"));
    assert_true(json_is_string(json_array_get(json_object_get(m, "to"), 0)));
    json_decref(doc);
    fbl_test_rows_done();
}

/* ---- round trip -------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = full_report();
    json_t *doc = fbl_report_to_json(r);
    /* through text, as the wire carries it */
    char *text = json_dumps(doc, JSON_COMPACT);
    json_error_t jerr;
    json_t *parsed = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(parsed);

    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_report) back = fbl_report_from_json(parsed, &error);
    assert_null(error);
    assert_non_null(back);
    json_t *again = fbl_report_to_json(back);
    if (!json_equal(doc, again)) {
        char *a = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
        char *b = json_dumps(again, JSON_INDENT(1) | JSON_SORT_KEYS);
        print_error("before:\n%s\nafter:\n%s\n", a, b);
        free(a);
        free(b);
        fail_msg("round trip changed the document");
    }
    /* a few fields straight from the struct */
    assert_string_equal(back->id, r->id);
    assert_int_equal(back->part, 3);
    assert_int_equal(back->format, FBL_FORMAT_ATTACHMENT);
    assert_int_equal(back->reporter.verified, 1);
    assert_non_null(back->arf);
    assert_int_equal(back->arf->incidents, 7);
    assert_true(back->arf->redacted_address);
    assert_string_equal(back->message.subject, r->message.subject);
    assert_int_equal(back->message.received->len, 2);
    fbl_attachment *at = g_ptr_array_index(back->message.attachments, 0);
    assert_string_equal(at->sha256,
                        ((fbl_attachment *) g_ptr_array_index(r->message.attachments, 0))->sha256);
    json_decref(again);
    json_decref(parsed);
    json_decref(doc);

    /* and the empty report: unknowns stay unknown */
    g_autoptr(fbl_report) empty = fbl_report_new();
    fbl_report_set_ids(empty, MAIL_ID, 0);
    doc = fbl_report_to_json(empty);
    g_autoptr(fbl_report) empty_back = fbl_report_from_json(doc, NULL);
    assert_non_null(empty_back);
    again = fbl_report_to_json(empty_back);
    assert_true(json_equal(doc, again));
    assert_int_equal(empty_back->reporter.verified, -1);
    assert_int_equal(empty_back->message.size, -1);
    assert_null(empty_back->arf);
    json_decref(again);
    json_decref(doc);
    fbl_test_rows_done();
}

static void test_reject_round_trip(void **state)
{
    (void) state;
    for (int reason = FBL_REJECT_TOO_LARGE; reason <= FBL_REJECT_DMARC_AGGREGATE; reason++) {
        g_autoptr(fbl_reject) j = fbl_reject_new((fbl_reject_reason) reason, "one line");
        g_strlcpy(j->mail_id, MAIL_ID, sizeof j->mail_id);
        j->received_at = g_strdup("2024-01-10T09:27:54Z");
        j->mailbox = g_strdup("spamalert");
        j->size = (int64_t) reason * 100;
        json_t *doc = fbl_reject_to_json(j);
        expect_keys("reject", doc, reject_keys);
        assert_string_equal(json_string_value(json_object_get(doc, "kind")), "reject");
        assert_string_equal(json_string_value(json_object_get(doc, "reason")),
                            fbl_reject_reason_to_string((fbl_reject_reason) reason));
        g_autoptr(GError) error = NULL;
        g_autoptr(fbl_reject) back = fbl_reject_from_json(doc, &error);
        assert_null(error);
        assert_non_null(back);
        assert_int_equal(back->reason, reason);
        assert_int_equal(back->size, reason * 100);
        json_t *again = fbl_reject_to_json(back);
        assert_true(json_equal(doc, again));
        json_decref(again);
        json_decref(doc);
    }
    /* unknown size and detail: null */
    g_autoptr(fbl_reject) j = fbl_reject_new(FBL_REJECT_EMPTY, NULL);
    g_strlcpy(j->mail_id, MAIL_ID, sizeof j->mail_id);
    json_t *doc = fbl_reject_to_json(j);
    expect_keys("reject", doc, reject_keys);
    assert_true(json_is_null(json_object_get(doc, "size")));
    assert_true(json_is_null(json_object_get(doc, "detail")));
    assert_true(json_is_null(json_object_get(doc, "received_at")));
    assert_true(json_is_null(json_object_get(doc, "mailbox")));
    json_decref(doc);
    fbl_test_rows_done();
}

/* ---- decoding errors --------------------------------------------------- */

/* Each row patches a valid report document at a dotted path and expects the error. */
static const struct {
    const char *path;  /* "a.b" or "a.b.0.c"; "" replaces the whole document */
    const char *value; /* JSON text; NULL deletes the key */
    int code;
    const char *message_has; /* a substring of the error message, or NULL */
} bad_report_rows[] = {
    {"v", "2", FBL_REPORT_JSON_ERROR_VERSION, NULL},
    {"v", "0", FBL_REPORT_JSON_ERROR_VERSION, NULL},
    {"v", "\"1\"", FBL_REPORT_JSON_ERROR_VERSION, NULL},
    {"v", "1.0", FBL_REPORT_JSON_ERROR_VERSION, NULL},
    {"v", NULL, FBL_REPORT_JSON_ERROR_VERSION, NULL},
    {"kind", "\"reject\"", FBL_REPORT_JSON_ERROR_FIELD, "kind"},
    {"kind", "\"Report\"", FBL_REPORT_JSON_ERROR_FIELD, "kind"},
    {"kind", NULL, FBL_REPORT_JSON_ERROR_FIELD, "kind"},
    {"id", "\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"",
     FBL_REPORT_JSON_ERROR_FIELD, "id"},
    {"id", "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\"",
     FBL_REPORT_JSON_ERROR_FIELD, "id"},
    {"id", "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\"",
     FBL_REPORT_JSON_ERROR_FIELD, "id"},
    {"id", "\"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
     FBL_REPORT_JSON_ERROR_FIELD, "id"},
    {"id", "null", FBL_REPORT_JSON_ERROR_FIELD, "id"},
    {"id", NULL, FBL_REPORT_JSON_ERROR_FIELD, "id"},
    {"mail_id", "\"xyz\"", FBL_REPORT_JSON_ERROR_FIELD, "mail_id"},
    {"mail_id", "42", FBL_REPORT_JSON_ERROR_FIELD, "mail_id"},
    {"part", "-1", FBL_REPORT_JSON_ERROR_FIELD, "part"},
    {"part", "\"0\"", FBL_REPORT_JSON_ERROR_FIELD, "part"},
    {"part", "1.5", FBL_REPORT_JSON_ERROR_FIELD, "part"},
    {"part", "4294967296", FBL_REPORT_JSON_ERROR_FIELD, "part"},
    {"part", NULL, FBL_REPORT_JSON_ERROR_FIELD, "part"},
    {"received_at", "12", FBL_REPORT_JSON_ERROR_FIELD, "received_at"},
    {"mailbox", "[]", FBL_REPORT_JSON_ERROR_FIELD, "mailbox"},
    {"format", "\"pdf\"", FBL_REPORT_JSON_ERROR_FIELD, "format"},
    {"format", "\"ARF\"", FBL_REPORT_JSON_ERROR_FIELD, "format"},
    {"format", "null", FBL_REPORT_JSON_ERROR_FIELD, "format"},
    {"feedback_type", "\"spam\"", FBL_REPORT_JSON_ERROR_FIELD, "feedback_type"},
    {"feedback_type", "3", FBL_REPORT_JSON_ERROR_FIELD, "feedback_type"},
    {"reporter", "\"x\"", FBL_REPORT_JSON_ERROR_FIELD, "reporter"},
    {"reporter.verified", "\"yes\"", FBL_REPORT_JSON_ERROR_FIELD, "reporter.verified"},
    {"reporter.verified", "1", FBL_REPORT_JSON_ERROR_FIELD, "reporter.verified"},
    {"reporter.address", "true", FBL_REPORT_JSON_ERROR_FIELD, "reporter.address"},
    {"arf", "[]", FBL_REPORT_JSON_ERROR_FIELD, "arf"},
    {"arf.original_rcpt_to", "[1]", FBL_REPORT_JSON_ERROR_FIELD, "arf.original_rcpt_to"},
    {"arf.original_rcpt_to", "\"a@b\"", FBL_REPORT_JSON_ERROR_FIELD, "arf.original_rcpt_to"},
    {"arf.incidents", "-1", FBL_REPORT_JSON_ERROR_FIELD, "arf.incidents"},
    {"arf.incidents", "\"3\"", FBL_REPORT_JSON_ERROR_FIELD, "arf.incidents"},
    {"arf.redacted_address", "\"true\"", FBL_REPORT_JSON_ERROR_FIELD, "arf.redacted_address"},
    {"source_ip", "{}", FBL_REPORT_JSON_ERROR_FIELD, "source_ip"},
    {"redacted", "\"true\"", FBL_REPORT_JSON_ERROR_FIELD, "redacted"},
    {"redacted", "0", FBL_REPORT_JSON_ERROR_FIELD, "redacted"},
    {"message", "[]", FBL_REPORT_JSON_ERROR_FIELD, "message"},
    {"message.headers_only", "\"no\"", FBL_REPORT_JSON_ERROR_FIELD, "message.headers_only"},
    {"message.to", "[null]", FBL_REPORT_JSON_ERROR_FIELD, "message.to"},
    {"message.subject", "[\"a\"]", FBL_REPORT_JSON_ERROR_FIELD, "message.subject"},
    {"message.size", "\"10\"", FBL_REPORT_JSON_ERROR_FIELD, "message.size"},
    {"message.size", "-5", FBL_REPORT_JSON_ERROR_FIELD, "message.size"},
    {"message.dkim", "{}", FBL_REPORT_JSON_ERROR_FIELD, "message.dkim"},
    {"message.dkim.0", "\"spam.example\"", FBL_REPORT_JSON_ERROR_FIELD, "message.dkim"},
    {"message.dkim.0.d", "5", FBL_REPORT_JSON_ERROR_FIELD, "dkim.d"},
    {"message.received", "\"hop\"", FBL_REPORT_JSON_ERROR_FIELD, "message.received"},
    {"message.received.0", "[]", FBL_REPORT_JSON_ERROR_FIELD, "message.received"},
    {"message.received.0.ip", "5", FBL_REPORT_JSON_ERROR_FIELD, "received.ip"},
    {"message.attachments.0.size", "-1", FBL_REPORT_JSON_ERROR_FIELD, "attachments.size"},
    {"message.attachments.0.sha256", "1", FBL_REPORT_JSON_ERROR_FIELD, "attachments.sha256"},
    {"message.attachments.0.sha256", "\"abc\"", FBL_REPORT_JSON_ERROR_FIELD, "attachments.sha256"},
    {"message.attachments.0.sha256",
     "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad00\"",
     FBL_REPORT_JSON_ERROR_FIELD, "attachments.sha256"},
    {"message.urls", "[{}]", FBL_REPORT_JSON_ERROR_FIELD, "message.urls"},
    {"warnings", "\"x\"", FBL_REPORT_JSON_ERROR_FIELD, "warnings"},
    {"", "[]", FBL_REPORT_JSON_ERROR_SYNTAX, NULL},
    {"", "\"report\"", FBL_REPORT_JSON_ERROR_SYNTAX, NULL},
    {"", "null", FBL_REPORT_JSON_ERROR_SYNTAX, NULL},
};

/* Set (or delete) the value at @path inside @doc; returns the new root. */
static json_t *patch(json_t *doc, const char *path, const char *value)
{
    json_t *v = NULL;
    if (value != NULL) {
        json_error_t jerr;
        v = json_loads(value, JSON_DECODE_ANY, &jerr);
        assert_non_null(v);
    }
    if (*path == '\0') {
        json_decref(doc);
        return v;
    }
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    json_t *at = doc;
    for (size_t i = 0; parts[i + 1] != NULL; i++) {
        at = json_is_array(at) ? json_array_get(at, g_ascii_strtoull(parts[i], NULL, 10))
                               : json_object_get(at, parts[i]);
        assert_non_null(at);
    }
    const char *last = parts[g_strv_length(parts) - 1];
    if (json_is_array(at)) {
        size_t idx = g_ascii_strtoull(last, NULL, 10);
        if (v == NULL)
            json_array_remove(at, idx);
        else
            json_array_set_new(at, idx, v);
    } else if (v == NULL) {
        json_object_del(at, last);
    } else {
        json_object_set_new(at, last, v);
    }
    return doc;
}

static void test_decode_errors(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = full_report();
    for (size_t i = 0; i < G_N_ELEMENTS(bad_report_rows); i++) {
        json_t *doc =
            patch(fbl_report_to_json(r), bad_report_rows[i].path, bad_report_rows[i].value);
        g_autoptr(GError) error = NULL;
        fbl_report *back = fbl_report_from_json(doc, &error);
        const char *v = bad_report_rows[i].value ? bad_report_rows[i].value : "(deleted)";
        if (back != NULL) {
            ROW_FAIL("row %s=%s: accepted", bad_report_rows[i].path, v);
            fbl_report_free(back);
        } else if (error == NULL) {
            ROW_FAIL("row %s=%s: NULL without an error", bad_report_rows[i].path, v);
        } else if (!g_error_matches(error, FBL_REPORT_JSON_ERROR, bad_report_rows[i].code)) {
            ROW_FAIL("row %s=%s: error code %d (%s), want %d", bad_report_rows[i].path, v,
                     error->code, error->message, bad_report_rows[i].code);
        } else if (bad_report_rows[i].message_has != NULL &&
                   strstr(error->message, bad_report_rows[i].message_has) == NULL) {
            ROW_FAIL("row %s=%s: message '%s' does not name '%s'", bad_report_rows[i].path, v,
                     error->message, bad_report_rows[i].message_has);
        }
        /* NULL error pointer: still NULL, no crash */
        if (doc != NULL) {
            fbl_report *quiet = fbl_report_from_json(doc, NULL);
            if (quiet != NULL) {
                ROW_FAIL("row %s=%s: accepted without error pointer", bad_report_rows[i].path, v);
                fbl_report_free(quiet);
            }
        }
        json_decref(doc);
    }
    fbl_test_rows_done();
}

/* Optional parts may be absent or null; the decoder fills in unknowns. */
static void test_decode_lenient_absence(void **state)
{
    (void) state;
    static const char *const optional[] = {
        "received_at",     "mailbox",       "reporter",          "arf",          "source_ip",
        "source_ip_from",  "redacted",      "message",           "warnings",     "message.received",
        "message.subject", "arf.incidents", "reporter.verified", "message.size",
    };
    g_autoptr(fbl_report) r = full_report();
    for (size_t i = 0; i < G_N_ELEMENTS(optional); i++) {
        for (int as_null = 0; as_null < 2; as_null++) {
            json_t *doc = patch(fbl_report_to_json(r), optional[i], as_null ? "null" : NULL);
            g_autoptr(GError) error = NULL;
            g_autoptr(fbl_report) back = fbl_report_from_json(doc, &error);
            if (back == NULL)
                ROW_FAIL("%s %s: refused: %s", optional[i], as_null ? "null" : "absent",
                         error ? error->message : "?");
            json_decref(doc);
        }
    }
    fbl_test_rows_done();
}

static const struct {
    const char *path;
    const char *value;
    int code;
} bad_reject_rows[] = {
    {"v", "2", FBL_REPORT_JSON_ERROR_VERSION},
    {"kind", "\"report\"", FBL_REPORT_JSON_ERROR_FIELD},
    {"mail_id", "\"ABC\"", FBL_REPORT_JSON_ERROR_FIELD},
    {"mail_id", NULL, FBL_REPORT_JSON_ERROR_FIELD},
    {"reason", "\"nope\"", FBL_REPORT_JSON_ERROR_FIELD},
    {"reason", "\"too-large\"", FBL_REPORT_JSON_ERROR_FIELD},
    {"reason", NULL, FBL_REPORT_JSON_ERROR_FIELD},
    {"size", "-1", FBL_REPORT_JSON_ERROR_FIELD},
    {"size", "\"12\"", FBL_REPORT_JSON_ERROR_FIELD},
    {"detail", "7", FBL_REPORT_JSON_ERROR_FIELD},
    {"", "{}", FBL_REPORT_JSON_ERROR_VERSION},
    {"", "[1]", FBL_REPORT_JSON_ERROR_SYNTAX},
};

static void test_decode_reject_errors(void **state)
{
    (void) state;
    g_autoptr(fbl_reject) j = fbl_reject_new(FBL_REJECT_TOO_LARGE, "big");
    g_strlcpy(j->mail_id, MAIL_ID, sizeof j->mail_id);
    j->size = 12;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_reject_rows); i++) {
        json_t *doc =
            patch(fbl_reject_to_json(j), bad_reject_rows[i].path, bad_reject_rows[i].value);
        g_autoptr(GError) error = NULL;
        fbl_reject *back = fbl_reject_from_json(doc, &error);
        const char *v = bad_reject_rows[i].value ? bad_reject_rows[i].value : "(deleted)";
        if (back != NULL) {
            ROW_FAIL("reject row %s=%s: accepted", bad_reject_rows[i].path, v);
            fbl_reject_free(back);
        } else if (!g_error_matches(error, FBL_REPORT_JSON_ERROR, bad_reject_rows[i].code)) {
            ROW_FAIL("reject row %s=%s: wrong error %s", bad_reject_rows[i].path, v,
                     error ? error->message : "NULL");
        }
        json_decref(doc);
    }
    /* a report is not a reject and the other way round */
    g_autoptr(fbl_report) r = full_report();
    json_t *doc = fbl_report_to_json(r);
    assert_null(fbl_reject_from_json(doc, NULL));
    json_decref(doc);
    doc = fbl_reject_to_json(j);
    assert_null(fbl_report_from_json(doc, NULL));
    json_decref(doc);
    fbl_test_rows_done();
}

/* ---- fbl_parse_result_to_lines ----------------------------------------- */

static void test_lines(void **state)
{
    (void) state;
    g_autoptr(fbl_parse_result) res = fbl_parse_result_new(MAIL_ID);
    for (unsigned part = 0; part < 3; part++) {
        fbl_report *r = fbl_report_new();
        fbl_report_set_ids(r, MAIL_ID, part);
        r->message.subject = g_strdup("line\nbreak inside");
        g_ptr_array_add(res->reports, r);
    }
    g_autofree char *compact = fbl_parse_result_to_lines(res, false);
    assert_true(g_str_has_suffix(compact, "\n"));
    g_auto(GStrv) lines = g_strsplit(compact, "\n", -1);
    assert_int_equal(g_strv_length(lines), 4); /* three documents and "" after the last \n */
    assert_string_equal(lines[3], "");
    for (unsigned i = 0; i < 3; i++) {
        json_error_t jerr;
        json_t *doc = json_loads(lines[i], 0, &jerr);
        assert_non_null(doc);
        assert_int_equal(json_integer_value(json_object_get(doc, "part")), i);
        assert_string_equal(json_string_value(json_object_get(doc, "kind")), "report");
        json_decref(doc);
    }

    g_autofree char *pretty = fbl_parse_result_to_lines(res, true);
    assert_true(g_str_has_suffix(pretty, "}\n"));
    assert_true(strlen(pretty) > strlen(compact));
    assert_non_null(strstr(pretty, "\n  \"v\": 1"));
    /* three documents one after the other */
    const char *p = pretty;
    for (unsigned i = 0; i < 3; i++) {
        json_error_t jerr;
        json_t *doc = json_loads(p, JSON_DISABLE_EOF_CHECK, &jerr);
        assert_non_null(doc);
        assert_int_equal(json_integer_value(json_object_get(doc, "part")), i);
        json_decref(doc);
        p += jerr.position;
        while (*p == '\n')
            p++;
    }
    assert_string_equal(p, "");

    /* a reject: one line */
    g_autoptr(fbl_parse_result) rej = fbl_parse_result_new(MAIL_ID);
    rej->reject = fbl_reject_new(FBL_REJECT_NOT_A_REPORT, "no report");
    g_strlcpy(rej->reject->mail_id, MAIL_ID, sizeof rej->reject->mail_id);
    g_autofree char *one = fbl_parse_result_to_lines(rej, false);
    assert_non_null(strchr(one, '\n'));
    assert_string_equal(strchr(one, '\n'), "\n");
    json_error_t jerr;
    json_t *doc = json_loads(one, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "reject");
    assert_string_equal(json_string_value(json_object_get(doc, "reason")), "not_a_report");
    json_decref(doc);

    /* nothing: no lines */
    g_autoptr(fbl_parse_result) none = fbl_parse_result_new(MAIL_ID);
    g_autofree char *empty = fbl_parse_result_to_lines(none, false);
    assert_string_equal(empty, "");
    fbl_test_rows_done();
}

/* ---- the model (report.h) ---------------------------------------------- */

static void test_enum_names(void **state)
{
    (void) state;
    static const char *const formats[] = {"arf",  "attachment", "inline", "jmrp",
                                          "xarf", "spamcop",    "raw"};
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        fbl_format f;
        assert_true(fbl_format_from_string(formats[i], &f));
        assert_string_equal(fbl_format_to_string(f), formats[i]);
    }
    static const char *const types[] = {"abuse",    "fraud",   "virus",       "other",
                                        "not-spam", "opt-out", "auth-failure"};
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        fbl_feedback_type t;
        assert_true(fbl_feedback_type_from_string(types[i], &t));
        assert_string_equal(fbl_feedback_type_to_string(t), types[i]);
    }
    static const char *const reasons[] = {
        "too_large",       "not_a_report", "malformed_mime", "no_original_message",
        "empty",           "too_deep",     "too_many_parts", "too_many_headers",
        "header_too_long", "bounce",       "auto_reply",     "dmarc_aggregate"};
    for (size_t i = 0; i < G_N_ELEMENTS(reasons); i++) {
        fbl_reject_reason r;
        assert_true(fbl_reject_reason_from_string(reasons[i], &r));
        assert_int_equal(r, i); /* append-only: the numbers are stored */
        assert_string_equal(fbl_reject_reason_to_string(r), reasons[i]);
    }
    fbl_format f = FBL_FORMAT_RAW;
    assert_false(fbl_format_from_string("ARF", &f));
    assert_false(fbl_format_from_string(NULL, &f));
    assert_int_equal(f, FBL_FORMAT_RAW);
    fbl_feedback_type t;
    assert_false(fbl_feedback_type_from_string("spam", &t));
    fbl_reject_reason rr;
    assert_false(fbl_reject_reason_from_string("", &rr));
    fbl_test_rows_done();
}

static void test_ids(void **state)
{
    (void) state;
    g_autoptr(fbl_report) a = fbl_report_new();
    g_autoptr(fbl_report) b = fbl_report_new();
    g_autoptr(fbl_report) c = fbl_report_new();
    fbl_report_set_ids(a, MAIL_ID, 0);
    fbl_report_set_ids(b, MAIL_ID, 0);
    fbl_report_set_ids(c, MAIL_ID, 1);
    assert_string_equal(a->id, b->id);
    assert_string_not_equal(a->id, c->id);
    assert_string_equal(a->mail_id, MAIL_ID);
    assert_int_equal(c->part, 1);
    g_autofree char *want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, MAIL_ID "/1", -1);
    assert_string_equal(c->id, want);

    char hex[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fbl_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fbl_test_rows_done();
}

static void test_warnings(void **state)
{
    (void) state;
    g_autoptr(fbl_report) r = fbl_report_new();
    fbl_report_add_warning(r, "arf: %d unreadable", 2);
    fbl_report_add_warning(r, "arf: %d unreadable", 2);
    fbl_report_add_warning(r, "bad %s", "\xff\xfe");
    assert_int_equal(r->warnings->len, 2);
    assert_string_equal(g_ptr_array_index(r->warnings, 0), "arf: 2 unreadable");
    assert_true(g_utf8_validate(g_ptr_array_index(r->warnings, 1), -1, NULL));

    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);
    assert_true(fbl_strv_add_unique(list, "a"));
    assert_false(fbl_strv_add_unique(list, "a"));
    assert_true(fbl_strv_add_unique(list, "A"));
    assert_int_equal(list->len, 2);
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_full),
        cmocka_unit_test(test_encode_unknowns),
        cmocka_unit_test(test_encode_attachment_unknowns),
        cmocka_unit_test(test_encode_invalid_utf8),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_reject_round_trip),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_lenient_absence),
        cmocka_unit_test(test_decode_reject_errors),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
