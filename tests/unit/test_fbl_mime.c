/* test_fbl_mime.c - RFC 2047 run repair and header decoding (parsers/mime.h) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "parsers/mime.h"
#include "parsers/parse.h"

static int setup(void **state)
{
    (void) state;
    fbl_parsers_init();
    return 0;
}

static int teardown(void **state)
{
    (void) state;
    fbl_parsers_shutdown();
    return 0;
}

static const struct {
    const char *raw;
    const char *decoded; /* what the Subject decodes to */
} rows[] = {
    /* Python's email package writes long subjects like this: padding inside the run. */
    {"=?utf-8?B?YWJjZA==?= =?utf-8?B?ZWZn?=", "abcdefg"},
    {"=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=", "éé"},
    /* A multi-byte character split across two words. */
    {"=?utf-8?B?4oI=?=\r\n =?utf-8?B?rA==?=", "€"},
    /* Runs without inner padding, other charsets, Q words: left to GMime as they are. */
    {"=?utf-8?B?YWJj?= =?utf-8?B?ZGVm?=", "abcdef"},
    {"=?iso-8859-1?B?6Q==?= =?utf-8?B?w6k=?=", "éé"},
    {"=?utf-8?Q?caf=C3=A9?= ok", "café ok"},
    {"plain text", "plain text"},
    {"=?utf-8?B?broken", "=?utf-8?B?broken"},
    {"", ""},
};

static GMimeMessage *message_with_subject(const char *subject)
{
    g_autofree char *text = g_strdup_printf("From: a@example.com\nSubject: %s\n\nbody\n", subject);
    g_autoptr(GMimeStream) s = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    g_autoptr(GMimeParser) p = g_mime_parser_new_with_stream(s);
    return g_mime_parser_construct_message(p, NULL);
}

static void test_subject_decoding(void **state)
{
    (void) state;
    unsigned failures = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GMimeMessage) m = message_with_subject(rows[i].raw);
        assert_non_null(m);
        g_autofree char *got = fbl_mime_header_text(GMIME_OBJECT(m), "Subject");
        if (got == NULL || strcmp(got, rows[i].decoded) != 0) {
            print_error("row %zu [%s]: expected [%s], got [%s]\n", i, rows[i].raw, rows[i].decoded,
                        got ? got : "(null)");
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_join_leaves_other_text(void **state)
{
    (void) state;
    g_autofree char *a = fbl_rfc2047_join("x =?utf-8?B?YWJjZA==?= =?utf-8?B?ZWZn?= y");
    assert_string_equal(a, "x =?utf-8?B?YWJjZGVmZw==?= y");
    g_autofree char *b = fbl_rfc2047_join("=?utf-8?B?YWJj?= =?utf-8?B?ZGVm?=");
    assert_string_equal(b, "=?utf-8?B?YWJj?= =?utf-8?B?ZGVm?=");
}

static void test_repeated_from(void **state)
{
    (void) state;
    const char *text = "From: 18 2021 <>\nFrom: =?utf-8?B?w6k=?= =?utf-8?B?w6k=?= <a@example.com>\n"
                       "Subject: x\n\nbody\n";
    g_autoptr(GMimeStream) s = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    g_autoptr(GMimeParser) p = g_mime_parser_new_with_stream(s);
    g_autoptr(GMimeMessage) m = g_mime_parser_construct_message(p, NULL);
    InternetAddressList *list = fbl_mime_header_addresses(GMIME_OBJECT(m), "From");
    assert_non_null(list);
    bool found = false;
    for (int i = 0; i < internet_address_list_length(list); i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia) &&
            strcmp(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)),
                   "a@example.com") == 0) {
            assert_string_equal(internet_address_get_name(ia), "éé");
            found = true;
        }
    }
    g_object_unref(list);
    assert_true(found);
}

/*
 * Attachment names of the reported spam, split the ways mail clients split
 * them: several RFC 2047 words (quoted or not, folded), RFC 2231 continuations
 * with and without charset, and a Content-Type name= only. Each is read whole.
 */
static const struct {
    const char *header; /* the attachment part's headers */
    const char *name;   /* the name the report must carry */
} attachment_rows[] = {
    {"Content-Type: application/pdf\n"
     "Content-Disposition: attachment;\n"
     " filename=\"=?UTF-8?Q?Rechnung_M=C3=A4rz?= =?UTF-8?Q?_2026_Nr=2E_4711.pdf?=\"\n",
     "Rechnung März 2026 Nr. 4711.pdf"},
    {"Content-Type: application/pdf\n"
     "Content-Disposition: attachment; filename=\n"
     " =?ISO-8859-1?Q?Pr=E9avis_de?=\n =?ISO-8859-1?Q?_coupure.pdf?=\n",
     "Préavis de coupure.pdf"},
    {"Content-Type: application/zip\n"
     "Content-Disposition: attachment;\n"
     " filename*0*=UTF-8''Factura%20de%20;\n filename*1*=marzo%20%C3%BAltima;\n"
     " filename*2=\".zip\"\n",
     "Factura de marzo última.zip"},
    {"Content-Type: application/msword\n"
     "Content-Disposition: attachment;\n"
     " filename*0=\"very_long_invoice_name_that_a_client_\";\n"
     " filename*1=\"split_in_two.doc\"\n",
     "very_long_invoice_name_that_a_client_split_in_two.doc"},
    {"Content-Type: application/octet-stream;\n"
     " name=\"=?UTF-8?B?0KHRh9C10YI=?= =?UTF-8?B?LmV4ZQ==?=\"\n",
     "Счет.exe"},
};

static void test_attachment_names(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_parser) p = fbl_parser_new(&o, &error);
    assert_non_null(p);
    fbl_mail_meta meta = {0};
    for (size_t i = 0; i < G_N_ELEMENTS(attachment_rows); i++) {
        g_autofree char *mail = g_strdup_printf(
            "From: Feedback Loop <fbl@isp.example.net>\n"
            "To: spamalert@abuse.example.net\n"
            "Subject: Abuse report\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"r\"\n"
            "\n--r\nContent-Type: text/plain\n\nA report.\n"
            "--r\nContent-Type: message/feedback-report\n\n"
            "Feedback-Type: abuse\nUser-Agent: t/1\nVersion: 1\nSource-IP: 192.0.2.7\n\n"
            "--r\nContent-Type: message/rfc822\n\n"
            "From: Deals <deals@spammer.example.com>\n"
            "To: victim@customer.example.net\n"
            "Subject: your invoice\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"m\"\n"
            "\n--m\nContent-Type: text/plain\n\nSee the attachment.\n"
            "--m\n%s\nUEsDBAoAAAAAAA==\n--m--\n--r--\n",
            attachment_rows[i].header);
        g_autoptr(fbl_parse_result) res = fbl_parser_parse(p, mail, strlen(mail), &meta);
        assert_non_null(res);
        if (res->reports->len != 1)
            fail_msg("row %zu: %u reports (reject: %s)", i, res->reports->len,
                     res->reject != NULL ? res->reject->detail : "none");
        const fbl_report *r = g_ptr_array_index(res->reports, 0);
        GPtrArray *att = r->message.attachments;
        if (att == NULL || att->len != 1)
            fail_msg("row %zu: %u attachments", i, att != NULL ? att->len : 0);
        const fbl_attachment *a = g_ptr_array_index(att, 0);
        if (g_strcmp0(a->name, attachment_rows[i].name) != 0)
            fail_msg("row %zu: name \"%s\", expected \"%s\"", i, a->name ? a->name : "(null)",
                     attachment_rows[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_decoding),
        cmocka_unit_test(test_join_leaves_other_text),
        cmocka_unit_test(test_repeated_from),
        cmocka_unit_test(test_attachment_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
