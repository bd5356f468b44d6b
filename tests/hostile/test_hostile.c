/*
 * test_hostile.c - hostile mail: every case ends as a report (with warnings)
 * or a reject with its reason, without a crash, under the default limits.
 *
 * The mails are built here, in memory: 1,000-deep multipart nesting, 100,000
 * parts, a 1 MiB header line, message/rfc822 nested in itself, NUL bytes,
 * invalid UTF-8 and unknown charsets, and a 10 MiB base64 attachment (over
 * and just under the size limit). The suite runs under ASan+UBSan in CI; the
 * time and memory each case takes are measured by bench/hostile, not here
 * (timing has no place in a test on shared machines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "parsers/parse.h"
#include "parsers/report.h"
#include "tests/hostile/hostile.h"

static fbl_parser *parser;

static int setup(void **state)
{
    (void) state;
    fbl_parsers_init();
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    parser = fbl_parser_new(&o, NULL);
    return parser == NULL;
}

static int teardown(void **state)
{
    (void) state;
    fbl_parser_free(parser);
    fbl_parsers_shutdown();
    return 0;
}

static fbl_parse_result *parse(GString *mail)
{
    fbl_mail_meta meta = {.mailbox = "spamalert", .received_at = 1767225600};
    fbl_parse_result *res = fbl_parser_parse(parser, mail->str, mail->len, &meta);
    assert_non_null(res);
    /* Every result is reports or exactly one reject, never both or neither. */
    assert_true((res->reports->len > 0) != (res->reject != NULL));
    return res;
}

static void assert_reject(fbl_parse_result *res, fbl_reject_reason reason)
{
    assert_non_null(res->reject);
    assert_string_equal(fbl_reject_reason_to_string(res->reject->reason),
                        fbl_reject_reason_to_string(reason));
    assert_non_null(res->reject->detail);
}

static void test_deep_nesting(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_deep_nesting(1000);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_TOO_DEEP);
}

static void test_many_parts(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_many_parts(100000);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_TOO_MANY_PARTS);
}

/* Under the boundary-line pre-scan but over max_mime_parts: caught on the tree. */
static void test_parts_just_over_limit(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_many_parts(FBL_DEFAULT_MAX_MIME_PARTS + 5);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_TOO_MANY_PARTS);
}

static void test_long_header_line(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_long_header((size_t) 1024 * 1024);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_HEADER_TOO_LONG);
}

static void test_many_headers(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_many_headers(FBL_DEFAULT_MAX_HEADERS + 1);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_TOO_MANY_HEADERS);
}

/*
 * A message/rfc822 whose content is the same mail again, 200 times over,
 * every level reusing the outer boundary: over the depth limit.
 */
static void test_self_containing_message(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_self_containing(200);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_TOO_DEEP);
}

/* Nested within the limits, the innermost spam is the one reported. */
static void test_self_containing_shallow(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_self_containing(3);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_true(res->reports->len >= 1);
    const fbl_report *r = g_ptr_array_index(res->reports, 0);
    assert_string_equal(fbl_format_to_string(r->format), "attachment");
}

/* One boundary at every level: the levels run into each other; still an answer. */
static void test_self_containing_same_boundary(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_self_containing_same_boundary(200);
    g_autoptr(fbl_parse_result) res = parse(mail);
    if (res->reject != NULL)
        assert_non_null(res->reject->detail);
    else
        assert_string_equal(((fbl_report *) g_ptr_array_index(res->reports, 0))->mail_id,
                            res->mail_id);
}

static void test_nul_bytes(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_nul_bytes();
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = g_ptr_array_index(res->reports, 0);
    assert_string_equal(fbl_format_to_string(r->format), "arf");
    assert_string_equal(r->source_ip, "192.0.2.77");
    /* Whatever came through is valid UTF-8 without NULs. */
    assert_true(r->message.subject == NULL || g_utf8_validate(r->message.subject, -1, NULL));
}

/* Fuzzer finding: unterminated encoded words make GMime's decoder quadratic. */
static void test_unterminated_encoded_words(void **state)
{
    (void) state;
    g_autoptr(GString) mail = g_string_new("From: a@example.net\nTo: b@example.com\nSubject: ");
    while (mail->len < (size_t) 120 * 1024)
        g_string_append(mail, "=?utf-8?q?x ");
    g_string_append(mail, "\nContent-Type: text/plain\n\nbody\n");
    g_autoptr(fbl_parse_result) res = parse(mail);
    /* A subject just under max_header_bytes: decoded in bounded time, or refused. */
    if (res->reject != NULL)
        assert_non_null(res->reject->detail);
}

/* Fuzzer finding: a TNEF container that is not TNEF never reaches libytnef. */
static void test_broken_tnef(void **state)
{
    (void) state;
    g_autoptr(GString) mail = g_string_new(
        "From: a@example.net\nTo: spamalert@example.com\nSubject: FW: x\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee\n"
        "--b\nContent-Type: application/ms-tnef; name=winmail.dat\n"
        "Content-Transfer-Encoding: base64\n\neJ8+IhI0AQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA\n--b--\n");
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_non_null(res->reject);
}

static void test_bad_charsets(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_bad_charsets();
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = g_ptr_array_index(res->reports, 0);
    assert_non_null(r->message.subject);
    assert_true(g_utf8_validate(r->message.subject, -1, NULL));
    assert_true(g_utf8_validate(r->message.from_name ? r->message.from_name : "", -1, NULL));
    /* The body could only be guessed at: a warning says so. */
    bool warned = false;
    for (guint i = 0; i < r->warnings->len; i++)
        warned = warned || strstr(g_ptr_array_index(r->warnings, i), "charset") != NULL;
    assert_true(warned);
    /* The links in the undecodable body are still found. */
    assert_true(r->message.urls->len >= 1);
}

static void test_huge_attachment_over_limit(void **state)
{
    (void) state;
    g_autoptr(GString) mail = fbl_hostile_base64_attachment((size_t) 10 * 1024 * 1024);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_reject(res, FBL_REJECT_TOO_LARGE);
    assert_int_equal(res->reject->size, (int64_t) mail->len);
}

static void test_big_attachment_under_limit(void **state)
{
    (void) state;
    /* 7 MiB of binary is about 9.5 MiB of base64: just under the 10 MiB limit. */
    g_autoptr(GString) mail = fbl_hostile_base64_attachment((size_t) 7 * 1024 * 1024);
    assert_true(mail->len < FBL_DEFAULT_MAX_MAIL_BYTES);
    g_autoptr(fbl_parse_result) res = parse(mail);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = g_ptr_array_index(res->reports, 0);
    assert_int_equal(r->message.attachments->len, 1);
    const fbl_attachment *a = g_ptr_array_index(r->message.attachments, 0);
    assert_int_equal(a->size, 7 * 1024 * 1024);
    g_autofree char *expect = fbl_hostile_attachment_sha256((size_t) 7 * 1024 * 1024);
    assert_string_equal(a->sha256, expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_many_parts),
        cmocka_unit_test(test_parts_just_over_limit),
        cmocka_unit_test(test_long_header_line),
        cmocka_unit_test(test_many_headers),
        cmocka_unit_test(test_self_containing_message),
        cmocka_unit_test(test_self_containing_shallow),
        cmocka_unit_test(test_self_containing_same_boundary),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_bad_charsets),
        cmocka_unit_test(test_unterminated_encoded_words),
        cmocka_unit_test(test_broken_tnef),
        cmocka_unit_test(test_huge_attachment_over_limit),
        cmocka_unit_test(test_big_attachment_under_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
