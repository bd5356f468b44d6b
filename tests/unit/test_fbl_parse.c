/* test_fbl_parse.c - one raw mail in, reports or a reject out (parsers/parse.h, mime.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "parsers/parse.h"
#include "parsers/report.h"
#include "tests/unit/harness.h"

/* 2024-01-10T09:27:54Z */
#define RECEIVED_AT 1704878874

static const fbl_mail_meta default_meta = {
    .mailbox = "spamalert",
    .default_feedback_type = FBL_FEEDBACK_ABUSE,
    .received_at = RECEIVED_AT,
};

static fbl_parser *parser_with(const fbl_parse_options *o)
{
    g_autoptr(GError) error = NULL;
    fbl_parser *p = fbl_parser_new(o, &error);
    if (p == NULL)
        fail_msg("fbl_parser_new: %s", error ? error->message : "?");
    return p;
}

static fbl_parser *default_parser(void)
{
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    return parser_with(&o);
}

static fbl_parse_result *parse_str(const fbl_parser *p, const char *mail, const fbl_mail_meta *m)
{
    fbl_parse_result *res = fbl_parser_parse(p, mail, strlen(mail), m);
    assert_non_null(res);
    /* exactly one of them */
    if ((res->reject != NULL) == (res->reports->len > 0))
        fail_msg("result has %u reports and %s reject", res->reports->len,
                 res->reject ? "a" : "no");
    return res;
}

static const fbl_report *report_at(const fbl_parse_result *res, guint i)
{
    if (i >= res->reports->len)
        fail_msg("want report %u, have %u%s%s", i, res->reports->len,
                 res->reject ? ", reject " : "",
                 res->reject ? fbl_reject_reason_to_string(res->reject->reason) : "");
    return g_ptr_array_index(res->reports, i);
}

static void expect_reject(const char *row, const fbl_parse_result *res, fbl_reject_reason reason)
{
    if (res->reject == NULL) {
        ROW_FAIL("row '%s': want reject %s, got %u report(s)", row,
                 fbl_reject_reason_to_string(reason), res->reports->len);
        return;
    }
    if (res->reject->reason != reason)
        ROW_FAIL("row '%s': want reject %s, got %s (%s)", row, fbl_reject_reason_to_string(reason),
                 fbl_reject_reason_to_string(res->reject->reason),
                 res->reject->detail ? res->reject->detail : "");
}

/* ---- sample mails ------------------------------------------------------ */

#define SPAM_HEADERS                                                                               \
    "Received: from spam.example (spam.example [203.0.113.77])\n"                                  \
    "\tby mx.isp.example (Postfix) with ESMTP id 4T1; Wed, 10 Jan 2024 09:27:50 +0000\n"           \
    "From: Spammer <Sales@Spam.Example>\n"                                                         \
    "To: Victim <victim@isp.example>\n"                                                            \
    "Subject: Cheap watches\n"                                                                     \
    "Date: Wed, 10 Jan 2024 09:27:49 +0000\n"                                                      \
    "Message-ID: <abc123@spam.example>\n"

#define SPAM_BODY "Buy now at http://www.spam.example/offer\n"

#define SPAM SPAM_HEADERS "\n" SPAM_BODY

#define ARF_TOP                                                                                    \
    "From: FBL <fbl@isp.example>\n"                                                                \
    "To: abuse@example.net\n"                                                                      \
    "Subject: FW: spam report\n"                                                                   \
    "Date: Wed, 10 Jan 2024 09:30:00 +0000\n"                                                      \
    "Message-ID: <report-1@isp.example>\n"                                                         \
    "MIME-Version: 1.0\n"                                                                          \
    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b1\"\n"               \
    "\n"                                                                                           \
    "--b1\n"                                                                                       \
    "Content-Type: text/plain\n"                                                                   \
    "\n"                                                                                           \
    "This is an abuse report.\n"                                                                   \
    "--b1\n"                                                                                       \
    "Content-Type: message/feedback-report\n"                                                      \
    "\n"

#define ARF_FIELDS                                                                                 \
    "Feedback-Type: abuse\n"                                                                       \
    "User-Agent: ISPFBL/1.0\n"                                                                     \
    "Version: 1\n"                                                                                 \
    "Source-IP: 198.51.100.50\n"                                                                   \
    "Original-Rcpt-To: <victim@isp.example>\n"                                                     \
    "Arrival-Date: Wed, 10 Jan 2024 09:27:54 +0000\n"                                              \
    "Reporting-MTA: dns; mx.isp.example\n"                                                         \
    "Authentication-Results: mx.isp.example;\n"                                                    \
    "\tspf=fail smtp.mailfrom=spam.example\n"                                                      \
    "\n"

static const char arf_mail[] = ARF_TOP ARF_FIELDS "--b1\n"
                                                  "Content-Type: message/rfc822\n"
                                                  "\n" SPAM "--b1--\n";

static const char arf_headers_only[] = ARF_TOP ARF_FIELDS "--b1\n"
                                                          "Content-Type: text/rfc822-headers\n"
                                                          "\n" SPAM_HEADERS "--b1--\n";

static const char arf_not_spam[] = ARF_TOP "Feedback-Type: not-spam\nVersion: 1\n\n"
                                           "--b1\n"
                                           "Content-Type: message/rfc822\n"
                                           "\n" SPAM "--b1--\n";

static const char arf_no_original[] = ARF_TOP "Feedback-Type: abuse\nVersion: 1\n\n--b1--\n";

#define FORWARD_TOP                                                                                \
    "From: Alice <Alice@Customer.Example>\n"                                                       \
    "To: spamalert@example.net\n"                                                                  \
    "Subject: Fwd: spam\n"                                                                         \
    "User-Agent: Thunderbird/115.0\n"                                                              \
    "MIME-Version: 1.0\n"                                                                          \
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"                                          \
    "\n"                                                                                           \
    "--outer\n"                                                                                    \
    "Content-Type: text/plain\n"                                                                   \
    "\n"                                                                                           \
    "Please look at these.\n"

static const char two_attachments[] = FORWARD_TOP "--outer\n"
                                                  "Content-Type: message/rfc822\n"
                                                  "\n"
                                                  "From: a@spam-one.example\n"
                                                  "To: alice@customer.example\n"
                                                  "Subject: first\n"
                                                  "Message-ID: <one@spam-one.example>\n"
                                                  "\n"
                                                  "first body http://spam-one.example/\n"
                                                  "--outer\n"
                                                  "Content-Type: message/rfc822\n"
                                                  "\n"
                                                  "From: b@spam-two.example\n"
                                                  "To: alice@customer.example\n"
                                                  "Subject: second\n"
                                                  "Message-ID: <two@spam-two.example>\n"
                                                  "\n"
                                                  "second body http://spam-two.example/\n"
                                                  "--outer--\n";

static const char not_a_report[] = "From: friend@example.org\n"
                                   "To: spamalert@example.net\n"
                                   "Subject: hello\n"
                                   "\n"
                                   "Just saying hi, no spam here.\n";

/* A forward whose attachment is @body with extra part headers. */
static char *forward_with(const char *part_headers, const char *body)
{
    return g_strconcat(FORWARD_TOP "--outer\n", part_headers, "\n", body, "\n--outer--\n", NULL);
}

/* @text base64-encoded in 76-column lines. */
static char *base64_lines(const char *text)
{
    g_autofree char *b64 = g_base64_encode((const guchar *) text, strlen(text));
    GString *out = g_string_new(NULL);
    size_t n = strlen(b64);
    for (size_t i = 0; i < n; i += 76) {
        g_string_append_len(out, b64 + i, (gssize) MIN(76, n - i));
        g_string_append_c(out, '\n');
    }
    return g_string_free(out, FALSE);
}

/* ---- report shapes ----------------------------------------------------- */

static void test_arf(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) res = parse_str(p, arf_mail, &default_meta);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = report_at(res, 0);
    const char *row = "arf";
    assert_int_equal(r->format, FBL_FORMAT_ARF);
    assert_int_equal(r->feedback_type, FBL_FEEDBACK_ABUSE);
    assert_int_equal(r->part, 0);
    fbl_test_check_str(row, "mailbox", "spamalert", r->mailbox);
    fbl_test_check_str(row, "received_at", "2024-01-10T09:27:54Z", r->received_at);
    fbl_test_check_str(row, "reporter.address", "fbl@isp.example", r->reporter.address);
    fbl_test_check_str(row, "reporter.name", "FBL", r->reporter.name);
    fbl_test_check_str(row, "reporter.user_agent", "ISPFBL/1.0", r->reporter.user_agent);
    fbl_test_check_str(row, "reporter.reporting_mta", "mx.isp.example", r->reporter.reporting_mta);
    assert_non_null(r->arf);
    fbl_test_check_str(row, "arf.version", "1", r->arf->version);
    fbl_test_check_str(row, "arf.feedback_type_raw", "abuse", r->arf->feedback_type_raw);
    fbl_test_check_str(row, "arf.source_ip", "198.51.100.50", r->arf->source_ip);
    fbl_test_check_str(row, "arf.arrival_date", "2024-01-10T09:27:54Z", r->arf->arrival_date);
    fbl_test_check_str(row, "arf.authentication_results",
                       "mx.isp.example; spf=fail smtp.mailfrom=spam.example",
                       r->arf->authentication_results->len > 0
                           ? g_ptr_array_index(r->arf->authentication_results, 0)
                           : NULL);
    fbl_test_check_str(row, "source_ip", "198.51.100.50", r->source_ip);
    fbl_test_check_str(row, "source_ip_from", "arf", r->source_ip_from);
    assert_false(r->redacted);
    const fbl_message *m = &r->message;
    assert_false(m->headers_only);
    fbl_test_check_str(row, "message.from", "sales@spam.example", m->from);
    fbl_test_check_str(row, "message.from_domain", "spam.example", m->from_domain);
    fbl_test_check_str(row, "message.subject", "Cheap watches", m->subject);
    fbl_test_check_str(row, "message.message_id", "abc123@spam.example", m->message_id);
    fbl_test_check_str(row, "message.date", "2024-01-10T09:27:49Z", m->date);
    assert_int_equal(m->to->len, 1);
    fbl_test_check_str(row, "message.to", "victim@isp.example", g_ptr_array_index(m->to, 0));
    assert_int_equal(m->received->len, 1);
    const fbl_hop *hop = g_ptr_array_index(m->received, 0);
    fbl_test_check_str(row, "hop.ip", "203.0.113.77", hop->ip);
    fbl_test_check_str(row, "hop.by", "mx.isp.example", hop->by);
    assert_int_equal(m->urls->len, 1);
    fbl_test_check_str(row, "message.urls", "http://www.spam.example/offer",
                       g_ptr_array_index(m->urls, 0));
    assert_non_null(m->fingerprint);
    assert_true(m->size > 0);
    fbl_test_rows_done();
}

static void test_arf_headers_only(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) res = parse_str(p, arf_headers_only, &default_meta);
    const fbl_report *r = report_at(res, 0);
    assert_int_equal(res->reports->len, 1);
    assert_int_equal(r->format, FBL_FORMAT_ARF);
    assert_true(r->message.headers_only);
    fbl_test_check_str("headers only", "subject", "Cheap watches", r->message.subject);
    fbl_test_check_str("headers only", "from", "sales@spam.example", r->message.from);
    assert_int_equal(r->message.received->len, 1);
    assert_int_equal(r->message.urls->len, 0); /* no body, no links */
    /* the line break before "--b1" belongs to the boundary (RFC 2046 5.1.1) */
    assert_int_equal((size_t) r->message.size, strlen(SPAM_HEADERS) - 1);
    fbl_test_rows_done();
}

static void test_arf_without_original(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) res = parse_str(p, arf_no_original, &default_meta);
    expect_reject("arf without original", res, FBL_REJECT_NO_ORIGINAL_MESSAGE);
    fbl_test_rows_done();
}

static void test_two_attachments(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) res = parse_str(p, two_attachments, &default_meta);
    assert_int_equal(res->reports->len, 2);
    static const char *const subjects[] = {"first", "second"};
    static const char *const froms[] = {"a@spam-one.example", "b@spam-two.example"};
    for (guint i = 0; i < 2; i++) {
        const fbl_report *r = report_at(res, i);
        assert_int_equal(r->part, i);
        assert_int_equal(r->format, FBL_FORMAT_ATTACHMENT);
        assert_int_equal(r->feedback_type, FBL_FEEDBACK_ABUSE);
        assert_null(r->arf);
        assert_string_equal(r->mail_id, res->mail_id);
        fbl_test_check_str("two attachments", "subject", subjects[i], r->message.subject);
        fbl_test_check_str("two attachments", "from", froms[i], r->message.from);
        fbl_test_check_str("two attachments", "reporter", "alice@customer.example",
                           r->reporter.address);
        fbl_test_check_str("two attachments", "reporter.name", "Alice", r->reporter.name);
        fbl_test_check_str("two attachments", "user_agent", "Thunderbird/115.0",
                           r->reporter.user_agent);
        /* id = sha256("<mail_id>/<part>") */
        g_autofree char *key = g_strdup_printf("%s/%u", res->mail_id, i);
        g_autofree char *want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
        assert_string_equal(r->id, want);
    }
    assert_string_not_equal(report_at(res, 0)->id, report_at(res, 1)->id);
    fbl_test_rows_done();
}

static const struct {
    const char *name;
    const char *part_headers;
    bool base64;
} attachment_rows[] = {
    {"message/rfc822", "Content-Type: message/rfc822\n", false},
    {"message/rfc822 in base64",
     "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n", true},
    {".eml as application/octet-stream",
     "Content-Type: application/octet-stream; name=\"spam.eml\"\n"
     "Content-Disposition: attachment; filename=\"spam.eml\"\n"
     "Content-Transfer-Encoding: base64\n",
     true},
    {".eml as text/plain",
     "Content-Type: text/plain; name=\"Cheap watches.eml\"\n"
     "Content-Disposition: attachment; filename=\"Cheap watches.eml\"\n",
     false},
};

static void test_attachment_shapes(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(attachment_rows); i++) {
        const char *row = attachment_rows[i].name;
        g_autofree char *body = attachment_rows[i].base64 ? base64_lines(SPAM) : g_strdup(SPAM);
        g_autofree char *mail = forward_with(attachment_rows[i].part_headers, body);
        g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
        if (res->reports->len != 1) {
            ROW_FAIL("row '%s': %u reports%s%s", row, res->reports->len,
                     res->reject ? ", reject " : "",
                     res->reject ? fbl_reject_reason_to_string(res->reject->reason) : "");
            continue;
        }
        const fbl_report *r = report_at(res, 0);
        if (r->format != FBL_FORMAT_ATTACHMENT)
            ROW_FAIL("row '%s': format %s", row, fbl_format_to_string(r->format));
        fbl_test_check_str(row, "subject", "Cheap watches", r->message.subject);
        fbl_test_check_str(row, "from", "sales@spam.example", r->message.from);
        fbl_test_check_str(row, "message_id", "abc123@spam.example", r->message.message_id);
        fbl_test_check_str(row, "source_ip", "203.0.113.77", r->source_ip);
        fbl_test_check_str(row, "source_ip_from", "received", r->source_ip_from);
        if (r->message.urls->len != 1)
            ROW_FAIL("row '%s': %u urls", row, r->message.urls->len);
    }
    fbl_test_rows_done();
}

/* A JMRP report forwarded as a .eml file: the spam inside it is reported, and its
 * carrier (the JMRP message, parsed from the file's bytes) outlives the report's
 * making. The old code let go of that carrier first and read freed memory. */
#define JMRP_INNER                                                                                 \
    "From: staff@hotmail.com\n"                                                                    \
    "To: abuse@example.net\n"                                                                      \
    "Subject: complaint about message from 198.51.100.23\n"                                        \
    "MIME-Version: 1.0\n"                                                                          \
    "Content-Type: multipart/mixed; boundary=\"jm\"\n"                                             \
    "\n"                                                                                           \
    "--jm\n"                                                                                       \
    "Content-Type: text/plain\n"                                                                   \
    "\n"                                                                                           \
    "This is an email abuse report.\n"                                                             \
    "--jm\n"                                                                                       \
    "Content-Type: message/rfc822\n"                                                               \
    "\n"                                                                                           \
    "X-HmXmrOriginalRecipient: <victim@hotmail.example>\n"                                         \
    "From: Shop <offers@spam-three.example>\n"                                                     \
    "Subject: inner spam\n"                                                                        \
    "Message-ID: <inner@spam-three.example>\n"                                                     \
    "\n"                                                                                           \
    "buy now\n"                                                                                    \
    "--jm--\n"

static void test_forwarded_jmrp_file(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autofree char *body = base64_lines(JMRP_INNER);
    g_autofree char *mail = forward_with("Content-Type: application/octet-stream; name=\"r.eml\"\n"
                                         "Content-Transfer-Encoding: base64\n",
                                         body);
    g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = report_at(res, 0);
    assert_int_equal(r->format, FBL_FORMAT_JMRP);
    fbl_test_check_str("forwarded jmrp", "subject", "inner spam", r->message.subject);
    fbl_test_check_str("forwarded jmrp", "reporter", "staff@hotmail.com", r->reporter.address);
    fbl_test_check_str("forwarded jmrp", "source_ip", "198.51.100.23", r->source_ip);
    fbl_test_rows_done();
}

/* A headers-only part is headers only: a multipart body after its header block is
 * not the reported message's, and nothing in it is reported on its own. */
static void test_headers_only_declaring_multipart(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autofree char *mail = forward_with("Content-Type: text/rfc822-headers\n",
                                         "From: staff@hotmail.com\n"
                                         "Subject: looks like jmrp\n"
                                         "Content-Type: multipart/mixed; boundary=\"in\"\n"
                                         "\n"
                                         "--in\n"
                                         "Content-Type: message/rfc822\n"
                                         "\n"
                                         "From: x@spam-four.example\n"
                                         "Subject: not a report of its own\n"
                                         "\n"
                                         "--in--\n");
    g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = report_at(res, 0);
    assert_true(r->message.headers_only);
    fbl_test_check_str("headers-only multipart", "subject", "looks like jmrp", r->message.subject);
    fbl_test_check_str("headers-only multipart", "reporter", "alice@customer.example",
                       r->reporter.address);
    fbl_test_rows_done();
}

/* Recipients masked by whoever sent the report, wherever the message shows them. */
static const struct {
    const char *name;
    const char *headers; /* of the attached spam, before its From */
    bool redacted;
} redaction_rows[] = {
    {"clear recipient", "To: bob@customer.example\n", false},
    {"the word redacted", "To: redacted@customer.example\n", true},
    {"x-masked address", "To: xxxxxxx@xxxxxxxx.xxx\n", true},
    {"stars", "To: *****\n", true},
    {"<X>", "To: <X>\n", true},
    {"display name REDACTED", "To: \"REDACTED\" <bob@customer.example>\n", true},
    {"hashed local part", "To: 5f4dcc3b5aa765d61d8327deb882cf99@customer.example\n", true},
    {"undisclosed recipients", "To: undisclosed-recipients:;\n", true},
    {"Delivered-To masked", "To: bob@customer.example\nDelivered-To: xxxx@xxxx.example\n", true},
    {"Received for masked",
     "Received: from a.example ([192.0.2.1]) by mx.customer.example for <***@***>; "
     "Mon, 5 Jan 2026 10:00:00 +0000\nTo: bob@customer.example\n",
     true},
    {"a lone x local part (loops mask so)", "To: x@customer.example\n", true},
    {"hex that is a word", "To: cafe@customer.example\n", false},
};

static void test_redaction(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(redaction_rows); i++) {
        g_autofree char *spam = g_strconcat(redaction_rows[i].headers,
                                            "From: a@spam-five.example\nSubject: s\n\nbuy\n", NULL);
        g_autofree char *mail = forward_with("Content-Type: message/rfc822\n", spam);
        g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
        if (res->reports->len != 1) {
            ROW_FAIL("row '%s': %u reports", redaction_rows[i].name, res->reports->len);
            continue;
        }
        if (report_at(res, 0)->redacted != redaction_rows[i].redacted)
            ROW_FAIL("row '%s': redacted %d", redaction_rows[i].name, report_at(res, 0)->redacted);
    }
    fbl_test_rows_done();
}

/* A spam delivered whole into a raw mailbox: our MTAs' own hand-overs are not the
 * spam's hops, and the IP our MX saw is the source however well a forged hop below
 * agrees with it. */
static void test_raw_mailbox_hops(void **state)
{
    (void) state;
    static const char spam[] =
        "Return-Path: <bounce@bot.example>\n"
        "Received: from mx1.trap.example.net (mx1.trap.example.net [10.0.0.5])\n"
        "\tby store.trap.example.net (Postfix) with LMTP id S1; Mon, 5 Jan 2026 10:00:02 +0000\n"
        "Received: from bot.dialup.example (bot.dialup.example [203.0.113.71])\n"
        "\tby mx1.trap.example.net (Postfix) with ESMTP id M1; Mon, 5 Jan 2026 10:00:01 +0000\n"
        "Received: from innocent.example.com ([93.184.216.34])\n"
        "\tby bot.dialup.example with SMTP id F1; Mon, 5 Jan 2026 10:00:00 +0000\n"
        "From: Prize <prize@bot.example>\n"
        "To: trap@trap.example.net\n"
        "Subject: You won\n"
        "\n"
        "claim now\n";
    g_autoptr(fbl_parser) p = default_parser();
    fbl_mail_meta m = default_meta;
    m.raw = true;
    g_autoptr(fbl_parse_result) res = parse_str(p, spam, &m);
    const fbl_report *r = report_at(res, 0);
    fbl_test_check_str("raw hops", "source_ip", "203.0.113.71", r->source_ip);
    if (r->message.received->len != 2)
        ROW_FAIL("raw hops: %u hops, want 2 (ours dropped)", r->message.received->len);
    else
        fbl_test_check_str("raw hops", "first hop", "203.0.113.71",
                           ((const fbl_hop *) g_ptr_array_index(r->message.received, 0))->ip);
    fbl_test_rows_done();
}

/* Empty parts where fbl looks inside bytes (an IODEF document, a .eml that may hold
 * an ARF): their data is NULL, and no string search may see it (fuzzing found both). */
static void test_empty_parts_searched(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    static const char *const parts[] = {
        "Content-Type: application/xml; name=\"iodef.xml\"\n",
        "Content-Type: application/octet-stream; name=\"report.eml\"\n",
        "Content-Type: text/plain; name=\"source.txt\"\n"
        "Content-Disposition: attachment; filename=\"source.txt\"\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
        g_autofree char *mail = forward_with(parts[i], "");
        g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
        if (res->reports->len == 0 && res->reject == NULL)
            ROW_FAIL("empty part %zu: no result", i);
    }
    fbl_test_rows_done();
}

/* The same spam attached or in an ARF has the same campaign fingerprint. */
static void test_fingerprint_across_shapes(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) arf = parse_str(p, arf_mail, &default_meta);
    g_autofree char *mail = forward_with("Content-Type: message/rfc822\n", SPAM);
    g_autoptr(fbl_parse_result) fwd = parse_str(p, mail, &default_meta);
    assert_non_null(report_at(arf, 0)->message.fingerprint);
    assert_string_equal(report_at(arf, 0)->message.fingerprint,
                        report_at(fwd, 0)->message.fingerprint);
    fbl_test_rows_done();
}

/* ---- rejects ----------------------------------------------------------- */

static void test_not_a_report(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) res = parse_str(p, not_a_report, &default_meta);
    expect_reject("not a report", res, FBL_REJECT_NOT_A_REPORT);
    assert_int_equal(res->reports->len, 0);
    assert_string_equal(res->reject->mail_id, res->mail_id);
    assert_int_equal(res->reject->size, (int64_t) strlen(not_a_report));
    fbl_test_check_str("not a report", "mailbox", "spamalert", res->reject->mailbox);
    fbl_test_check_str("not a report", "received_at", "2024-01-10T09:27:54Z",
                       res->reject->received_at);
    assert_non_null(res->reject->detail);
    fbl_test_rows_done();
}

static const char *const empty_rows[] = {"", " ", "\n", "\r\n\r\n", " \t \n \n"};

static void test_empty(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(empty_rows); i++) {
        g_autoptr(fbl_parse_result) res = parse_str(p, empty_rows[i], &default_meta);
        g_autofree char *row = g_strdup_printf("empty %zu", i);
        expect_reject(row, res, FBL_REJECT_EMPTY);
        if (res->reject != NULL && res->reject->size != (int64_t) strlen(empty_rows[i]))
            ROW_FAIL("row '%s': size %" G_GINT64_FORMAT, row, res->reject->size);
        char want[FBL_SHA256_HEX_LEN + 1];
        fbl_sha256_hex(empty_rows[i], strlen(empty_rows[i]), want);
        fbl_test_check_str(row, "mail_id", want, res->mail_id);
    }
    fbl_test_rows_done();
}

/* Garbage never crashes and always gives a result. */
static void test_garbage(void **state)
{
    (void) state;
    static const char *const rows[] = {
        "\x01\x02\x03\xff\xfe",
        "not a mail at all",
        "Content-Type: multipart/mixed\n\n--\n--\n",
        /* one mail, its literal split over lines */
        ("Content-Type: multipart/report; report-type=feedback-report; boundary=x\n\n--x\n"
         "Content-Type: message/feedback-report\n\n\xff\xfe\n--x\n"
         "Content-Type: message/rfc822\n\n\n--x--\n"),
        "From: a@b\nContent-Type: message/rfc822\n\nFrom: c@d\nContent-Type: message/rfc822\n\n",
        ":::\n:::\n\n",
    };
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(fbl_parse_result) res = parse_str(p, rows[i], &default_meta);
        assert_non_null(res);
    }
    fbl_test_rows_done();
}

/* ---- limits ------------------------------------------------------------ */

static void test_too_large(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_mail_bytes = 200;
    g_autoptr(fbl_parser) p = parser_with(&o);

    g_autofree char *big = forward_with("Content-Type: message/rfc822\n", SPAM);
    assert_true(strlen(big) > 200);
    g_autoptr(fbl_parse_result) res = parse_str(p, big, &default_meta);
    expect_reject("too large", res, FBL_REJECT_TOO_LARGE);
    assert_int_equal(res->reject->size, (int64_t) strlen(big));
    assert_non_null(res->reject->detail);
    char want[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(big, strlen(big), want);
    assert_string_equal(res->mail_id, want);
    assert_string_equal(res->reject->mail_id, want);
    fbl_test_check_str("too large", "mailbox", "spamalert", res->reject->mailbox);

    /* exactly at the limit is parsed */
    fbl_parse_options_init(&o);
    o.max_mail_bytes = strlen(arf_mail);
    g_autoptr(fbl_parser) exact = parser_with(&o);
    g_autoptr(fbl_parse_result) fits = parse_str(exact, arf_mail, &default_meta);
    assert_int_equal(fits->reports->len, 1);
    o.max_mail_bytes = strlen(arf_mail) - 1;
    g_autoptr(fbl_parser) one_less = parser_with(&o);
    g_autoptr(fbl_parse_result) over = parse_str(one_less, arf_mail, &default_meta);
    expect_reject("one byte over", over, FBL_REJECT_TOO_LARGE);

    /* the caller's own too_large, for mails it did not load */
    g_autoptr(fbl_parse_result) told = fbl_parser_too_large(p, want, 123456789, &default_meta);
    assert_non_null(told);
    assert_int_equal(told->reports->len, 0);
    expect_reject("fbl_parser_too_large", told, FBL_REJECT_TOO_LARGE);
    assert_int_equal(told->reject->size, 123456789);
    assert_string_equal(told->mail_id, want);
    assert_string_equal(told->reject->mail_id, want);
    fbl_test_check_str("fbl_parser_too_large", "received_at", "2024-01-10T09:27:54Z",
                       told->reject->received_at);
    fbl_test_rows_done();
}

/* @depth multiparts nested, the spam attached in the innermost one. */
static char *nested_mail(unsigned depth)
{
    GString *s = g_string_new("From: alice@customer.example\nSubject: nested\nMIME-Version: 1.0\n");
    for (unsigned i = 0; i < depth; i++)
        g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=\"n%u\"\n\n--n%u\n", i,
                               i);
    g_string_append(s, "Content-Type: message/rfc822\n\n" SPAM);
    for (unsigned i = depth; i-- > 0;)
        g_string_append_printf(s, "--n%u--\n", i);
    return g_string_free(s, FALSE);
}

static void test_too_deep(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_mime_depth = 4;
    g_autoptr(fbl_parser) p = parser_with(&o);
    g_autofree char *shallow = nested_mail(2);
    g_autoptr(fbl_parse_result) ok = parse_str(p, shallow, &default_meta);
    assert_int_equal(ok->reports->len, 1);
    fbl_test_check_str("shallow", "subject", "Cheap watches", report_at(ok, 0)->message.subject);

    g_autofree char *deep = nested_mail(8);
    g_autoptr(fbl_parse_result) res = parse_str(p, deep, &default_meta);
    expect_reject("too deep", res, FBL_REJECT_TOO_DEEP);

    /* far beyond any limit: still a clean reject */
    g_autofree char *very_deep = nested_mail(3000);
    fbl_parse_options_init(&o);
    g_autoptr(fbl_parser) defaults = parser_with(&o);
    g_autoptr(fbl_parse_result) res2 = parse_str(defaults, very_deep, &default_meta);
    assert_non_null(res2->reject);
    fbl_test_rows_done();
}

/* One multipart/mixed with @parts text parts and the spam attached. */
static char *many_parts_mail(unsigned parts)
{
    GString *s = g_string_new("From: alice@customer.example\nSubject: many\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"m\"\n\n");
    for (unsigned i = 0; i < parts; i++)
        g_string_append_printf(s, "--m\nContent-Type: text/plain\n\npart %u\n", i);
    g_string_append(s, "--m\nContent-Type: message/rfc822\n\n" SPAM "--m--\n");
    return g_string_free(s, FALSE);
}

static void test_too_many_parts(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_mime_parts = 10;
    g_autoptr(fbl_parser) p = parser_with(&o);
    g_autofree char *few = many_parts_mail(2);
    g_autoptr(fbl_parse_result) ok = parse_str(p, few, &default_meta);
    assert_int_equal(ok->reports->len, 1);

    g_autofree char *some = many_parts_mail(12); /* over the limit, under the line pre-check */
    g_autoptr(fbl_parse_result) res = parse_str(p, some, &default_meta);
    expect_reject("too many parts", res, FBL_REJECT_TOO_MANY_PARTS);

    g_autofree char *lots = many_parts_mail(100); /* refused before GMime runs */
    g_autoptr(fbl_parse_result) res2 = parse_str(p, lots, &default_meta);
    expect_reject("far too many parts", res2, FBL_REJECT_TOO_MANY_PARTS);
    fbl_test_rows_done();
}

static void test_too_many_headers(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_headers = 30;
    g_autoptr(fbl_parser) p = parser_with(&o);
    g_autoptr(fbl_parse_result) ok = parse_str(p, arf_mail, &default_meta);
    assert_int_equal(ok->reports->len, 1);

    GString *mail = g_string_new(NULL);
    for (int i = 0; i < 40; i++)
        g_string_append_printf(mail, "X-Filler-%d: %d\n", i, i);
    g_string_append(mail, arf_mail);
    g_autoptr(fbl_parse_result) res = parse_str(p, mail->str, &default_meta);
    expect_reject("too many headers", res, FBL_REJECT_TOO_MANY_HEADERS);

    /* headers of the attached message count too: the budget is the whole mail's */
    g_string_assign(mail, FORWARD_TOP "--outer\nContent-Type: message/rfc822\n\n");
    for (int i = 0; i < 40; i++)
        g_string_append_printf(mail, "X-Inner-%d: %d\n", i, i);
    g_string_append(mail, SPAM "--outer--\n");
    g_autoptr(fbl_parse_result) res2 = parse_str(p, mail->str, &default_meta);
    expect_reject("too many headers inside", res2, FBL_REJECT_TOO_MANY_HEADERS);
    g_string_free(mail, TRUE);
    fbl_test_rows_done();
}

static void test_header_too_long(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_header_bytes = 300;
    g_autoptr(fbl_parser) p = parser_with(&o);
    g_autoptr(fbl_parse_result) ok = parse_str(p, arf_mail, &default_meta);
    assert_int_equal(ok->reports->len, 1);

    g_autofree char *value = g_strnfill(600, 'x');
    g_autofree char *mail = g_strdup_printf("X-Long: %s\n%s", value, arf_mail);
    g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
    expect_reject("header too long", res, FBL_REJECT_HEADER_TOO_LONG);

    /* folded over many lines: still one header field */
    GString *folded = g_string_new("Subject: start");
    for (int i = 0; i < 60; i++)
        g_string_append(folded, "\n word word");
    g_string_append_c(folded, '\n');
    g_string_append(folded, arf_mail);
    g_autoptr(fbl_parse_result) res2 = parse_str(p, folded->str, &default_meta);
    expect_reject("folded header too long", res2, FBL_REJECT_HEADER_TOO_LONG);
    g_string_free(folded, TRUE);
    fbl_test_rows_done();
}

static void test_bad_options(void **state)
{
    (void) state;
    static const char *const fields[] = {"max_mail_bytes", "max_mime_depth", "max_mime_parts",
                                         "max_headers", "max_header_bytes"};
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
        fbl_parse_options o;
        fbl_parse_options_init(&o);
        switch (i) {
        case 0:
            o.max_mail_bytes = 0;
            break;
        case 1:
            o.max_mime_depth = 0;
            break;
        case 2:
            o.max_mime_parts = 0;
            break;
        case 3:
            o.max_headers = 0;
            break;
        default:
            o.max_header_bytes = 0;
            break;
        }
        g_autoptr(GError) error = NULL;
        fbl_parser *p = fbl_parser_new(&o, &error);
        if (p != NULL) {
            fbl_parser_free(p);
            ROW_FAIL("%s = 0 accepted", fields[i]);
        } else if (!g_error_matches(error, FBL_PARSE_ERROR, FBL_PARSE_ERROR_OPTION)) {
            ROW_FAIL("%s = 0: wrong error", fields[i]);
        }
    }
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    const char *const nets[] = {"192.0.2.0/24", "bogus/99", NULL};
    o.trusted_networks = nets;
    g_autoptr(GError) error = NULL;
    assert_null(fbl_parser_new(&o, &error));
    assert_true(g_error_matches(error, FBL_PARSE_ERROR, FBL_PARSE_ERROR_OPTION));
    assert_non_null(strstr(error->message, "bogus/99"));
    fbl_test_rows_done();
}

static void test_options_copied(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    assert_int_equal(o.max_mail_bytes, FBL_DEFAULT_MAX_MAIL_BYTES);
    assert_int_equal(o.max_mime_depth, FBL_DEFAULT_MAX_MIME_DEPTH);
    assert_int_equal(o.max_mime_parts, FBL_DEFAULT_MAX_MIME_PARTS);
    assert_int_equal(o.max_headers, FBL_DEFAULT_MAX_HEADERS);
    assert_int_equal(o.max_header_bytes, FBL_DEFAULT_MAX_HEADER_BYTES);
    assert_null(o.trusted_networks);

    char *net = g_strdup("198.51.100.0/24");
    const char *nets[] = {net, NULL};
    o.trusted_networks = nets;
    o.max_mime_depth = 7;
    g_autoptr(fbl_parser) p = parser_with(&o);
    g_free(net); /* the parser holds its own copy */
    nets[0] = NULL;
    o.max_mime_depth = 99;
    const fbl_parse_options *got = fbl_parser_get_options(p);
    assert_int_equal(got->max_mime_depth, 7);
    assert_non_null(got->trusted_networks);
    assert_string_equal(got->trusted_networks[0], "198.51.100.0/24");
    assert_null(got->trusted_networks[1]);
    fbl_parser_free(NULL);
    fbl_test_rows_done();
}

/* ---- what the bytes look like ------------------------------------------ */

static void test_mbox_from_line(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    g_autofree char *mbox =
        g_strconcat("From spammer@spam.example Wed Jan 10 09:27:54 2024\n", arf_mail, NULL);
    g_autoptr(fbl_parse_result) plain = parse_str(p, arf_mail, &default_meta);
    g_autoptr(fbl_parse_result) res = parse_str(p, mbox, &default_meta);
    assert_int_equal(res->reports->len, 1);
    const fbl_report *r = report_at(res, 0);
    fbl_test_check_str("mbox", "reporter", "fbl@isp.example", r->reporter.address);
    fbl_test_check_str("mbox", "subject", "Cheap watches", r->message.subject);
    /* mail_id hashes the bytes as given, "From " line and all */
    char want[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(mbox, strlen(mbox), want);
    assert_string_equal(res->mail_id, want);
    assert_string_not_equal(res->mail_id, plain->mail_id);
    fbl_test_rows_done();
}

static void test_line_endings(void **state)
{
    (void) state;
    static const struct {
        const char *name;
        const char *eol;
    } rows[] = {{"LF", "\n"}, {"CRLF", "\r\n"}, {"CR only", "\r"}};
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_auto(GStrv) lines = g_strsplit(arf_mail, "\n", -1);
        g_autofree char *mail = g_strjoinv(rows[i].eol, lines);
        g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
        if (res->reports->len != 1) {
            ROW_FAIL("row '%s': %u reports", rows[i].name, res->reports->len);
            continue;
        }
        const fbl_report *r = report_at(res, 0);
        fbl_test_check_str(rows[i].name, "subject", "Cheap watches", r->message.subject);
        fbl_test_check_str(rows[i].name, "source_ip", "198.51.100.50", r->source_ip);
        fbl_test_check_str(rows[i].name, "user_agent", "ISPFBL/1.0", r->reporter.user_agent);
        fbl_test_check_str(rows[i].name, "arrival_date", "2024-01-10T09:27:54Z",
                           r->arf ? r->arf->arrival_date : NULL);
        /* a folded field survives every line ending */
        fbl_test_check_str(rows[i].name, "authentication_results",
                           "mx.isp.example; spf=fail smtp.mailfrom=spam.example",
                           r->arf != NULL && r->arf->authentication_results->len > 0
                               ? g_ptr_array_index(r->arf->authentication_results, 0)
                               : NULL);
        char want[FBL_SHA256_HEX_LEN + 1];
        fbl_sha256_hex(mail, strlen(mail), want);
        fbl_test_check_str(rows[i].name, "mail_id", want, res->mail_id);
    }
    fbl_test_rows_done();
}

/* ---- ids --------------------------------------------------------------- */

static void test_ids_stable(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p1 = default_parser();
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_mime_depth = 10; /* a differently configured parser: ids do not depend on it */
    g_autoptr(fbl_parser) p2 = parser_with(&o);
    fbl_mail_meta other = default_meta;
    other.mailbox = "other";
    other.received_at = 0;

    g_autoptr(fbl_parse_result) a = parse_str(p1, two_attachments, &default_meta);
    g_autoptr(fbl_parse_result) b = parse_str(p2, two_attachments, &other);
    char want[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(two_attachments, strlen(two_attachments), want);
    assert_string_equal(a->mail_id, want);
    assert_string_equal(b->mail_id, want);
    assert_int_equal(a->reports->len, b->reports->len);
    for (guint i = 0; i < a->reports->len; i++)
        assert_string_equal(report_at(a, i)->id, report_at(b, i)->id);
    fbl_test_check_str("other meta", "mailbox", "other", report_at(b, 0)->mailbox);
    fbl_test_check_str("other meta", "received_at", "1970-01-01T00:00:00Z",
                       report_at(b, 0)->received_at);

    /* one byte more: another mail */
    g_autofree char *changed = g_strconcat(two_attachments, "\n", NULL);
    g_autoptr(fbl_parse_result) c = parse_str(p1, changed, &default_meta);
    assert_string_not_equal(c->mail_id, a->mail_id);
    assert_string_not_equal(report_at(c, 0)->id, report_at(a, 0)->id);

    /* meta may have no mailbox */
    fbl_mail_meta none = default_meta;
    none.mailbox = NULL;
    g_autoptr(fbl_parse_result) d = parse_str(p1, arf_mail, &none);
    assert_null(report_at(d, 0)->mailbox);
    fbl_test_rows_done();
}

/* ---- feedback type and source ------------------------------------------ */

static const struct {
    const char *name;
    const char *mail;
    fbl_feedback_type mailbox_default;
    fbl_feedback_type want;
} feedback_rows[] = {
    {"arf abuse, abuse mailbox", arf_mail, FBL_FEEDBACK_ABUSE, FBL_FEEDBACK_ABUSE},
    {"arf abuse, other default", arf_mail, FBL_FEEDBACK_OTHER, FBL_FEEDBACK_ABUSE},
    {"arf not-spam, abuse mailbox", arf_not_spam, FBL_FEEDBACK_ABUSE, FBL_FEEDBACK_NOT_SPAM},
    {"arf abuse, not-spam mailbox", arf_mail, FBL_FEEDBACK_NOT_SPAM, FBL_FEEDBACK_NOT_SPAM},
    {"attachment, abuse mailbox", two_attachments, FBL_FEEDBACK_ABUSE, FBL_FEEDBACK_ABUSE},
    {"attachment, fraud mailbox", two_attachments, FBL_FEEDBACK_FRAUD, FBL_FEEDBACK_FRAUD},
    {"attachment, not-spam mailbox", two_attachments, FBL_FEEDBACK_NOT_SPAM, FBL_FEEDBACK_NOT_SPAM},
};

static void test_feedback_type(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(feedback_rows); i++) {
        fbl_mail_meta m = default_meta;
        m.default_feedback_type = feedback_rows[i].mailbox_default;
        g_autoptr(fbl_parse_result) res = parse_str(p, feedback_rows[i].mail, &m);
        for (guint j = 0; j < res->reports->len; j++) {
            fbl_feedback_type got = report_at(res, j)->feedback_type;
            if (got != feedback_rows[i].want)
                ROW_FAIL("row '%s': report %u: want %s, got %s", feedback_rows[i].name, j,
                         fbl_feedback_type_to_string(feedback_rows[i].want),
                         fbl_feedback_type_to_string(got));
        }
        if (res->reports->len == 0)
            ROW_FAIL("row '%s': no report", feedback_rows[i].name);
    }
    fbl_test_rows_done();
}

/* Received chain, newest first: a trusted relay, a private hop, then the spammer. */
#define CHAIN_SPAM                                                                                 \
    "Received: from mta7 (unknown [192.0.2.10])\n"                                                 \
    "\tby mail.isp.example (Postfix) with ESMTP id A1; Wed, 10 Jan 2024 09:27:53 +0000\n"          \
    "Received: from filter.isp.example (filter.isp.example [10.1.2.3])\n"                          \
    "\tby relay.isp.example (Postfix) with ESMTP id A2; Wed, 10 Jan 2024 09:27:52 +0000\n"         \
    "Received: from spam.example (spam.example [203.0.113.77])\n"                                  \
    "\tby mx.isp.example (Postfix) with ESMTP id A3; Wed, 10 Jan 2024 09:27:50 +0000\n"            \
    "From: sales@spam.example\n"                                                                   \
    "To: victim@isp.example\n"                                                                     \
    "Subject: Cheap watches\n"                                                                     \
    "X-Originating-IP: [198.51.100.99]\n"                                                          \
    "\n" SPAM_BODY

static const struct {
    const char *name;
    const char *trusted[3];
    const char *want_ip;
    const char *want_from;
} trust_rows[] = {
    {"nothing trusted", {NULL}, "192.0.2.10", "received"},
    {"relay network trusted", {"192.0.2.0/24", NULL}, "203.0.113.77", "received"},
    {"relay address trusted", {"192.0.2.10", NULL}, "203.0.113.77", "received"},
    {"other network trusted", {"192.0.3.0/24", NULL}, "192.0.2.10", "received"},
};

static void test_trusted_networks(void **state)
{
    (void) state;
    g_autofree char *mail = forward_with("Content-Type: message/rfc822\n", CHAIN_SPAM);
    for (size_t i = 0; i < G_N_ELEMENTS(trust_rows); i++) {
        fbl_parse_options o;
        fbl_parse_options_init(&o);
        o.trusted_networks = trust_rows[i].trusted;
        g_autoptr(fbl_parser) p = parser_with(&o);
        g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
        if (res->reports->len != 1) {
            ROW_FAIL("row '%s': %u reports", trust_rows[i].name, res->reports->len);
            continue;
        }
        const fbl_report *r = report_at(res, 0);
        fbl_test_check_str(trust_rows[i].name, "source_ip", trust_rows[i].want_ip, r->source_ip);
        fbl_test_check_str(trust_rows[i].name, "source_ip_from", trust_rows[i].want_from,
                           r->source_ip_from);
        if (r->message.received->len != 3)
            ROW_FAIL("row '%s': %u hops", trust_rows[i].name, r->message.received->len);
    }
    fbl_test_rows_done();
}

/* No Received evidence at all: the webmail client's X-Originating-IP. */
static void test_x_originating_ip(void **state)
{
    (void) state;
    g_autofree char *mail = forward_with("Content-Type: message/rfc822\n",
                                         "From: sales@spam.example\nSubject: Cheap watches\n"
                                         "X-Originating-IP: [198.51.100.99]\n\n" SPAM_BODY);
    g_autoptr(fbl_parser) p = default_parser();
    g_autoptr(fbl_parse_result) res = parse_str(p, mail, &default_meta);
    const fbl_report *r = report_at(res, 0);
    fbl_test_check_str("x-originating-ip", "source_ip", "198.51.100.99", r->source_ip);
    fbl_test_check_str("x-originating-ip", "source_ip_from", "x-originating-ip", r->source_ip_from);
    fbl_test_rows_done();
}

/* received_at is the delivery time in ISO-8601 UTC. */
static const struct {
    int64_t when;
    const char *want;
} time_rows[] = {
    {0, "1970-01-01T00:00:00Z"},
    {RECEIVED_AT, "2024-01-10T09:27:54Z"},
    {951782400, "2000-02-29T00:00:00Z"},
    {4102444799, "2099-12-31T23:59:59Z"},
};

static void test_received_at(void **state)
{
    (void) state;
    g_autoptr(fbl_parser) p = default_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(time_rows); i++) {
        fbl_mail_meta m = default_meta;
        m.received_at = time_rows[i].when;
        g_autoptr(fbl_parse_result) res = parse_str(p, arf_mail, &m);
        fbl_test_check_str(time_rows[i].want, "report", time_rows[i].want,
                           report_at(res, 0)->received_at);
        g_autoptr(fbl_parse_result) rej = parse_str(p, not_a_report, &m);
        fbl_test_check_str(time_rows[i].want, "reject", time_rows[i].want,
                           rej->reject ? rej->reject->received_at : NULL);
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arf),
        cmocka_unit_test(test_arf_headers_only),
        cmocka_unit_test(test_arf_without_original),
        cmocka_unit_test(test_two_attachments),
        cmocka_unit_test(test_attachment_shapes),
        cmocka_unit_test(test_fingerprint_across_shapes),
        cmocka_unit_test(test_forwarded_jmrp_file),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_raw_mailbox_hops),
        cmocka_unit_test(test_empty_parts_searched),
        cmocka_unit_test(test_headers_only_declaring_multipart),
        cmocka_unit_test(test_not_a_report),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_too_many_parts),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_header_too_long),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_options_copied),
        cmocka_unit_test(test_mbox_from_line),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_ids_stable),
        cmocka_unit_test(test_feedback_type),
        cmocka_unit_test(test_trusted_networks),
        cmocka_unit_test(test_x_originating_ip),
        cmocka_unit_test(test_received_at),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_parsers, fbl_test_teardown_parsers);
}
