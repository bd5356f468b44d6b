/*
 * test_vendor.c - the vendor feed's pure parts, no service needed: keyed
 * pseudonyms and scrubbing (sink/redact.h), the reported message found in a
 * report mail (fbl_vendor_reported_message), option checks (sink/vendor.h).
 * The feed's integration tests are tests/integration/vendor_*.py.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <glib.h>
#include <jansson.h>

#include "parsers/parse.h"
#include "sink/redact.h"
#include "sink/vendor.h"

#define KEY "0123456789abcdef-unit-test-key"

static fbl_redact *new_redact(const char *const *fields)
{
    g_autoptr(GError) error = NULL;
    fbl_redact *r = fbl_redact_new(fields, KEY, strlen(KEY), &error);
    assert_non_null(r);
    return r;
}

static void test_pseudonym(void **state)
{
    (void) state;
    const char *fields[] = {"reporter", NULL};
    g_autoptr(fbl_redact) r = new_redact(fields);
    g_autofree char *a = fbl_redact_pseudonym(r, "Alice@Example.NET");
    g_autofree char *b = fbl_redact_pseudonym(r, "alice@example.net");
    g_autofree char *c = fbl_redact_pseudonym(r, "bob@example.net");
    g_autofree char *name = fbl_redact_pseudonym(r, "Alice Liddell");
    assert_string_equal(a, b); /* case does not make another reporter */
    assert_string_not_equal(a, c);
    assert_true(g_str_has_suffix(a, "@redacted.invalid"));
    assert_int_equal(strlen(a), 32 + strlen("@redacted.invalid"));
    assert_int_equal(strlen(name), 32);
    assert_null(strstr(a, "alice"));
    /* Another key, other pseudonyms. */
    g_autoptr(GError) error = NULL;
    const char *other = "another-key-of-sixteen-bytes";
    g_autoptr(fbl_redact) r2 = fbl_redact_new(fields, other, strlen(other), &error);
    g_autofree char *d = fbl_redact_pseudonym(r2, "alice@example.net");
    assert_string_not_equal(a, d);
}

static void test_new_refuses(void **state)
{
    (void) state;
    static const struct {
        const char *fields[3];
        const char *key;
        int code;
    } rows[] = {
        {{"shoe_size", NULL, NULL}, KEY, FBL_REDACT_ERROR_FIELD},
        {{"reporter", "message.body", NULL}, KEY, FBL_REDACT_ERROR_FIELD},
        {{"reporter", NULL, NULL}, "short", FBL_REDACT_ERROR_KEY},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GError) error = NULL;
        fbl_redact *r = fbl_redact_new(rows[i].fields, rows[i].key, strlen(rows[i].key), &error);
        assert_null(r);
        assert_true(g_error_matches(error, FBL_REDACT_ERROR, rows[i].code));
    }
    /* Groups expand, duplicates collapse. */
    const char *fields[] = {"recipients", "message.to", "mailbox", NULL};
    g_autoptr(fbl_redact) r = new_redact(fields);
    const char *const *got = fbl_redact_fields(r);
    assert_string_equal(got[0], "arf.original_rcpt_to");
    assert_string_equal(got[1], "message.to");
    assert_string_equal(got[2], "mailbox");
    assert_null(got[3]);
}

static const char doc_text[] =
    "{\"v\":1,\"id\":\"aa\",\"mail_id\":\"bb\",\"mailbox\":\"spamalert\","
    "\"reporter\":{\"address\":\"carol@isp.example\",\"name\":\"Carol Jones\"},"
    "\"arf\":{\"original_rcpt_to\":[\"dave@customer.example\",\"Eve@Customer.Example\"]},"
    "\"message\":{\"to\":[\"dave@customer.example\"],\"subject\":\"Hi DAVE@customer.example\","
    "\"from\":\"spam@spammer.example\"},"
    "\"warnings\":[\"Original-Rcpt-To eve@customer.example repeated\"]}";

static void test_redact_doc(void **state)
{
    (void) state;
    const char *fields[] = {"reporter", "recipients", NULL};
    g_autoptr(fbl_redact) r = new_redact(fields);
    json_error_t jerr;
    json_t *doc = json_loads(doc_text, 0, &jerr);
    assert_non_null(doc);
    g_autoptr(fbl_redact_pairs) pairs = fbl_redact_doc(r, doc);
    char *out = json_dumps(doc, JSON_COMPACT);
    /* No clear value anywhere, in any case. */
    g_autofree char *lower = g_ascii_strdown(out, -1);
    const char *clear[] = {"carol@isp.example", "carol jones", "dave@customer.example",
                           "eve@customer.example"};
    for (size_t i = 0; i < G_N_ELEMENTS(clear); i++)
        assert_null(strstr(lower, clear[i]));
    /* Pseudonyms where the values were, the rest as it was. */
    g_autofree char *dave = fbl_redact_pseudonym(r, "dave@customer.example");
    json_t *msg = json_object_get(doc, "message");
    assert_string_equal(json_string_value(json_array_get(json_object_get(msg, "to"), 0)), dave);
    g_autofree char *subject = g_strdup_printf("Hi %s", dave);
    assert_string_equal(json_string_value(json_object_get(msg, "subject")), subject);
    assert_string_equal(json_string_value(json_object_get(msg, "from")), "spam@spammer.example");
    assert_string_equal(json_string_value(json_object_get(doc, "mailbox")), "spamalert");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "aa");
    assert_int_equal(json_array_size(json_object_get(doc, "pseudonymized")),
                     5); /* reporter.via too */
    /* The reported message's bytes: every clear value replaced. */
    const char mail[] = "To: Dave <DAVE@customer.example>\r\nCc: eve@customer.example\r\n\r\n"
                        "Dear dave@customer.example, from Carol Jones.\r\n";
    g_autoptr(GBytes) scrubbed = fbl_redact_bytes(pairs, mail, strlen(mail));
    gsize len = 0;
    const char *data = g_bytes_get_data(scrubbed, &len);
    g_autofree char *text = g_ascii_strdown(data, (gssize) len);
    for (size_t i = 0; i < G_N_ELEMENTS(clear); i++)
        assert_null(strstr(text, clear[i]));
    /* The display name of a redacted address is a pseudonym too. */
    g_autofree char *dave_name = fbl_redact_pseudonym(r, "Dave");
    g_autofree char *to = g_strdup_printf("To: %s <", dave_name);
    assert_non_null(strstr(data, to));
    /* Nothing to replace: the same bytes. */
    g_autoptr(GBytes) same = fbl_redact_bytes(pairs, "nothing here", 12);
    assert_int_equal(g_bytes_get_size(same), 12);
    free(out);
    json_decref(doc);
}

/* ---- the reported message ---------------------------------------------------- */

static const char two_attachments[] =
    "From: Subscriber <sub@isp.example>\n"
    "To: spamalert@abuse.example\n"
    "Subject: FW: spam\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"
    "\n"
    "--outer\n"
    "Content-Type: text/plain\n"
    "\n"
    "Two spams attached.\n"
    "--outer\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: a@spammer.example\n"
    "Subject: first spam\n"
    "Message-ID: <one@spammer.example>\n"
    "\n"
    "Body one.\n"
    "--outer\n"
    "Content-Type: application/octet-stream; name=\"second.eml\"\n"
    "Content-Disposition: attachment; filename=\"second.eml\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "RnJvbTogYkBzcGFtbWVyLmV4YW1wbGUKU3ViamVjdDogc2Vjb25kIHNwYW0KCkJvZHkgdHdvLgo=\n"
    "--outer--\n";

static const char forwarded_arf[] =
    "From: Colleague <col@abuse.example>\n"
    "Subject: FW: report\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"fw\"\n"
    "\n"
    "--fw\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: fbl@feedback.example\n"
    "Subject: report\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\n"
    "\n"
    "--arf\n"
    "Content-Type: message/feedback-report\n"
    "\n"
    "Feedback-Type: abuse\n"
    "--arf\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: c@spammer.example\n"
    "Subject: the inner spam\n"
    "\n"
    "Body three.\n"
    "--arf--\n"
    "--fw--\n";

static const char wrapped_raw[] = "From: trap@network.example\n"
                                  "Subject: wrapped\n"
                                  "MIME-Version: 1.0\n"
                                  "Content-Type: message/rfc822\n"
                                  "\n"
                                  "From: d@spammer.example\n"
                                  "Subject: raw spam\n"
                                  "\n"
                                  "Body four.\n";

static void test_reported_message(void **state)
{
    (void) state;
    static const struct {
        const char *mail;
        const char *format;
        unsigned part;
        const char *has;   /* the message found holds this */
        const char *lacks; /* and not this */
    } rows[] = {
        {two_attachments, "attachment", 0, "first spam", "Two spams"},
        {two_attachments, "attachment", 1, "second spam", "first spam"},
        {two_attachments, "attachment", 7, "first spam", "Two spams"}, /* off: the first */
        {forwarded_arf, "arf", 0, "the inner spam", "Feedback-Type"},
        {wrapped_raw, "raw", 0, "raw spam", "trap@network"},
        {"From: x@y.example\nSubject: inline\n\nPasted spam.\n", "inline", 0, "Pasted spam", NULL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GBytes) msg = fbl_vendor_reported_message(rows[i].mail, strlen(rows[i].mail),
                                                            rows[i].format, rows[i].part);
        gsize len = 0;
        const char *data = g_bytes_get_data(msg, &len);
        g_autofree char *text = g_strndup(data, len);
        if (strstr(text, rows[i].has) == NULL ||
            (rows[i].lacks != NULL && strstr(text, rows[i].lacks) != NULL))
            fail_msg("row %zu: got:\n%s", i, text);
    }
}

static void test_vendor_options(void **state)
{
    (void) state;
    fbl_vendor_type t;
    assert_true(fbl_vendor_type_from_string("http-json", &t) && t == FBL_VENDOR_HTTP_JSON);
    assert_true(fbl_vendor_type_from_string("rspamd", &t) && t == FBL_VENDOR_RSPAMD);
    assert_false(fbl_vendor_type_from_string("smtp", &t));
    fbl_vendor_options o = {.name = "v",
                            .type = FBL_VENDOR_HTTP_JSON,
                            .url = "ftp://x/",
                            .batch_size = 1,
                            .parallel = 1,
                            .timeout_ms = 1000};
    g_autoptr(GError) error = NULL;
    assert_null(fbl_vendor_new(&o, &error));
    assert_true(g_error_matches(error, FBL_VENDOR_ERROR, FBL_VENDOR_ERROR_OPTION));
    g_clear_error(&error);
    o.url = "http://127.0.0.1:9/";
    g_autoptr(fbl_vendor) v = fbl_vendor_new(&o, &error);
    assert_non_null(v);
    assert_false(fbl_vendor_wants_mail(v));
    assert_int_equal(fbl_vendor_get_pause_ms(v), 0);
    assert_null(fbl_vendor_auth_failure(v));
}

static int setup(void **state)
{
    (void) state;
    fbl_parsers_init();
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    fbl_parsers_shutdown();
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pseudonym),      cmocka_unit_test(test_new_refuses),
        cmocka_unit_test(test_redact_doc),     cmocka_unit_test(test_reported_message),
        cmocka_unit_test(test_vendor_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
