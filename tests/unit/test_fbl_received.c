/* test_fbl_received.c - Received fields into hops, dates to ISO (parsers/received.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "parsers/received.h"
#include "tests/unit/harness.h"

/* ---- fbl_received_parse ------------------------------------------------ */

typedef struct hop_row {
    const char *name;
    const char *value;
    const char *from; /* rDNS name */
    const char *helo;
    const char *ip;
    const char *by;
    const char *date;
} hop_row;

static const hop_row hop_rows[] = {
    {"postfix",
     "from mail.example.com (mail.example.com [192.0.2.10])\n"
     "\tby mx.example.net (Postfix) with ESMTPS id 4T1abc2XyZz3\n"
     "\tfor <user@example.net>; Wed, 10 Jan 2024 09:27:54 +0100 (CET)",
     "mail.example.com", "mail.example.com", "192.0.2.10", "mx.example.net",
     "2024-01-10T08:27:54Z"},
    {"postfix unknown rdns",
     "from helo.example (unknown [198.51.100.7]) by mx.example.net (Postfix) with ESMTP id "
     "ABC123; Tue, 2 Jan 2024 23:59:59 -0500",
     NULL, "helo.example", "198.51.100.7", "mx.example.net", "2024-01-03T04:59:59Z"},
    {"postfix rdns differs from helo",
     "from ylmf-pc (host-203-0-113-9.dyn.example.org [203.0.113.9]) by mx.example.net "
     "(Postfix) with ESMTP id 4T1; Wed, 10 Jan 2024 09:27:54 +0000",
     "host-203-0-113-9.dyn.example.org", "ylmf-pc", "203.0.113.9", "mx.example.net",
     "2024-01-10T09:27:54Z"},
    {"postfix tls comment with nested parens",
     "from out.example.org (out.example.org [192.0.2.44])\n"
     "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
     "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n"
     "\t(No client certificate requested)\n"
     "\tby mx.example.net (Postfix) with ESMTPS id 4T2; Wed, 10 Jan 2024 09:27:54 +0000",
     "out.example.org", "out.example.org", "192.0.2.44", "mx.example.net", "2024-01-10T09:27:54Z"},
    {"postfix address-literal helo",
     "from [192.168.1.10] (unknown [203.0.113.9])\n"
     "\t(Authenticated sender: user@example.com)\n"
     "\tby smtp.example.com (Postfix) with ESMTPSA id 4T3\n"
     "\tfor <x@example.net>; Wed, 10 Jan 2024 09:27:54 +0000",
     NULL, "[192.168.1.10]", "203.0.113.9", "smtp.example.com", "2024-01-10T09:27:54Z"},
    {"postfix IPv6 literal",
     "from mail.example.org (mail.example.org [IPv6:2001:db8:1::25]) by mx.example.net "
     "(Postfix) with ESMTPS id 4T4; Mon, 1 Jan 2024 00:00:00 +0000",
     "mail.example.org", "mail.example.org", "2001:db8:1::25", "mx.example.net",
     "2024-01-01T00:00:00Z"},
    {"IPv6 literal mapped IPv4",
     "from relay.example.org (relay.example.org [IPv6:::ffff:192.0.2.99]) by mx.example.net; "
     "Mon, 1 Jan 2024 00:00:00 +0000",
     "relay.example.org", "relay.example.org", "192.0.2.99", "mx.example.net",
     "2024-01-01T00:00:00Z"},
    {"exim helo=",
     "from mail.example.com ([192.0.2.20] helo=smtp.example.com)\n"
     "\tby mx.example.net with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n"
     "\t(Exim 4.96)\n"
     "\t(envelope-from <bounce@example.com>)\n"
     "\tid 1rNXYZ-000123-AB\n"
     "\tfor user@example.net; Wed, 10 Jan 2024 09:27:54 +0000",
     "mail.example.com", "smtp.example.com", "192.0.2.20", "mx.example.net",
     "2024-01-10T09:27:54Z"},
    {"exim port and helo=",
     "from mail.example.com ([192.0.2.21]:40471 helo=SMTP.example.com) by mx.example.net with "
     "esmtp (Exim 4.94.2) id 1rN; Wed, 10 Jan 2024 09:27:54 +0000",
     "mail.example.com", "smtp.example.com", "192.0.2.21", "mx.example.net",
     "2024-01-10T09:27:54Z"},
    {"exim no rdns",
     "from [203.0.113.5] (helo=ylmf-pc)\n"
     "\tby mx.example.net with esmtp (Exim 4.94.2)\n"
     "\t(envelope-from <x@spam.example>)\n"
     "\tid 1abcde-0001XY-Zz; Thu, 11 Jan 2024 10:00:00 +0000",
     NULL, "ylmf-pc", "203.0.113.5", "mx.example.net", "2024-01-11T10:00:00Z"},
    {"exim no rdns port=",
     "from [203.0.113.6] (port=51234 helo=[203.0.113.6]) by mx.example.net with esmtp (Exim "
     "4.96) id 1abc; Thu, 11 Jan 2024 10:00:00 +0000",
     NULL, "[203.0.113.6]", "203.0.113.6", "mx.example.net", "2024-01-11T10:00:00Z"},
    {"helo ([ip]:port)",
     "from ylmf-pc ([93.174.67.105]:40471) by mx.example.net with ESMTP; Wed, 10 Jan 2024 "
     "09:27:54 +0000",
     NULL, "ylmf-pc", "93.174.67.105", "mx.example.net", "2024-01-10T09:27:54Z"},
    {"exchange IPv6 in parens",
     "from EUR05-AM6-obe.outbound.protection.outlook.com (2a01:111:f400:7e1b::201)\n"
     " by DB8EUR05FT011.mail.protection.outlook.com (2603:10a6:10:32::103) with Microsoft SMTP\n"
     " Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7202.16\n"
     " via Frontend Transport; Wed, 10 Jan 2024 09:27:55 +0000",
     NULL, "eur05-am6-obe.outbound.protection.outlook.com", "2a01:111:f400:7e1b::201",
     "db8eur05ft011.mail.protection.outlook.com", "2024-01-10T09:27:55Z"},
    {"exchange IPv4 in parens",
     "from mail.contoso.com (192.0.2.5) by EXCH01.contoso.local (10.0.0.6) with Microsoft SMTP "
     "Server (TLS) id 15.1.2507.35; Wed, 10 Jan 2024 10:27:53 +0100",
     NULL, "mail.contoso.com", "192.0.2.5", "exch01.contoso.local", "2024-01-10T09:27:53Z"},
    {"qmail unknown",
     "from unknown (HELO mail.example.com) (192.0.2.33)\n"
     "  by mx.example.net with SMTP; 10 Jan 2024 09:27:54 -0000",
     NULL, "mail.example.com", "192.0.2.33", "mx.example.net", "2024-01-10T09:27:54Z"},
    {"qmail rdns",
     "from host.example.org (HELO ylmf-pc) (198.51.100.80) by mx.example.net with SMTP; 10 Jan "
     "2024 09:27:54 -0000",
     "host.example.org", "ylmf-pc", "198.51.100.80", "mx.example.net", "2024-01-10T09:27:54Z"},
    {"qmail authenticated user@ip",
     "from unknown (HELO ylmf-pc) (john@example.com@192.0.2.44) by mail.example.net with "
     "ESMTPA; 10 Jan 2024 09:27:54 -0000",
     NULL, "ylmf-pc", "192.0.2.44", "mail.example.net", "2024-01-10T09:27:54Z"},
    {"qmail invoked from network", "(qmail 12345 invoked from network); 10 Jan 2024 09:27:54 -0000",
     NULL, NULL, NULL, NULL, "2024-01-10T09:27:54Z"},
    {"google",
     "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\n"
     "        by mx.google.com with SMTPS id a1sor123456wrx.12.2024.01.10.01.27.54\n"
     "        for <user@gmail.com>\n"
     "        (Google Transport Security);\n"
     "        Wed, 10 Jan 2024 01:27:54 -0800 (PST)",
     "mail-sor-f41.google.com", "mail-sor-f41.google.com", "209.85.220.41", "mx.google.com",
     "2024-01-10T09:27:54Z"},
    {"google internal by IPv6",
     "by 2002:a05:6358:5e10:b0:175:5e3c:1234 with SMTP id abc123;\n"
     "        Wed, 10 Jan 2024 01:27:54 -0800 (PST)",
     NULL, NULL, NULL, "2002:a05:6358:5e10:b0:175:5e3c:1234", "2024-01-10T09:27:54Z"},
    {"sendmail may be forged",
     "from mail.example.com (host.example.org [192.0.2.50] (may be forged))\n"
     "\tby mx.example.net (8.15.2/8.15.2) with ESMTP id 40A9RsXY012345\n"
     "\tfor <user@example.net>; Wed, 10 Jan 2024 10:27:54 +0100",
     "host.example.org", "mail.example.com", "192.0.2.50", "mx.example.net",
     "2024-01-10T09:27:54Z"},
    {"sendmail ident",
     "from relay.example.org (root@relay.example.org [192.0.2.51]) by mx.example.net "
     "(8.15.2/8.15.2) with ESMTP id 40A; Wed, 10 Jan 2024 09:27:54 +0000",
     "relay.example.org", "relay.example.org", "192.0.2.51", "mx.example.net",
     "2024-01-10T09:27:54Z"},
    {"local submission",
     "by mail.example.com (Postfix, from userid 1000)\n"
     "\tid 4T1abc; Wed, 10 Jan 2024 09:27:54 +0000 (UTC)",
     NULL, NULL, NULL, "mail.example.com", "2024-01-10T09:27:54Z"},
    {"by address literal", "by [192.0.2.7] with SMTP; Wed, 10 Jan 2024 09:27:54 +0000", NULL, NULL,
     NULL, "192.0.2.7", "2024-01-10T09:27:54Z"},
    {"upper-case keywords and trailing dots",
     "FROM Mail.Example.COM (Mail.Example.COM. [192.0.2.60]) BY MX.Example.NET. WITH ESMTP; Wed, "
     "10 Jan 2024 09:27:54 +0000",
     "mail.example.com", "mail.example.com", "192.0.2.60", "mx.example.net",
     "2024-01-10T09:27:54Z"},
    {"missing date", "from a.example (a.example [192.0.2.1]) by b.example with SMTP id 1",
     "a.example", "a.example", "192.0.2.1", "b.example", NULL},
    {"date without its semicolon",
     "from a.example (a.example [192.0.2.1]) by b.example with SMTP id 12AB Wed, 10 Jan 2024 "
     "09:27:54 +0000",
     "a.example", "a.example", "192.0.2.1", "b.example", "2024-01-10T09:27:54Z"},
    {"date without semicolon or day name",
     "from a.example ([192.0.2.1]) by b.example id 7 10 Jan 2024 09:27:54 -0100", NULL, "a.example",
     "192.0.2.1", "b.example", "2024-01-10T10:27:54Z"},
    {"numbers that are no date", "from a.example ([192.0.2.1]) by b.example with SMTP id 12 34 56",
     NULL, "a.example", "192.0.2.1", "b.example", NULL},
    {"unreadable date", "from a.example (a.example [192.0.2.1]) by b.example; yesterday",
     "a.example", "a.example", "192.0.2.1", "b.example", NULL},
    {"semicolon inside a comment is not the date",
     "from a.example (a.example [192.0.2.1]; x) by b.example (c; d)", "a.example", "a.example",
     "192.0.2.1", "b.example", NULL},
    {"from without anything", "from", NULL, NULL, NULL, NULL, NULL},
    {"unclosed comment", "from x.example (x.example [192.0.2.1] by y.example", "x.example",
     "x.example", "192.0.2.1", NULL, NULL},
    {"only parens", "((((((((((((", NULL, NULL, NULL, NULL, NULL},
    {"stray closing parens", ")))) from a.example ((", NULL, "a.example", NULL, NULL, NULL},
    {"garbage", "%%%% !!! ;;; ", NULL, NULL, NULL, NULL, NULL},
    {"empty", "", NULL, NULL, NULL, NULL, NULL},
    {"unknown everywhere", "from unknown (unknown [unknown]) by unknown", NULL, "unknown", NULL,
     NULL, NULL},
};

static void check_hop(const hop_row *row, const fbl_hop *hop)
{
    fbl_test_check_str(row->name, "from", row->from, hop->from);
    fbl_test_check_str(row->name, "helo", row->helo, hop->helo);
    fbl_test_check_str(row->name, "ip", row->ip, hop->ip);
    fbl_test_check_str(row->name, "by", row->by, hop->by);
    fbl_test_check_str(row->name, "date", row->date, hop->date);
}

static void test_parse(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(hop_rows); i++) {
        fbl_hop *hop = fbl_received_parse(hop_rows[i].value);
        assert_non_null(hop);
        check_hop(&hop_rows[i], hop);
        fbl_hop_free(hop);
    }
    fbl_test_rows_done();
}

/* GMime unfolds header values: the same rows with folding removed give the same hop. */
static void test_parse_unfolded(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(hop_rows); i++) {
        g_autofree char *flat = g_strdup(hop_rows[i].value);
        g_strdelimit(flat, "\r\n\t", ' ');
        fbl_hop *hop = fbl_received_parse(flat);
        check_hop(&hop_rows[i], hop);
        fbl_hop_free(hop);
    }
    fbl_test_rows_done();
}

static void test_parse_null(void **state)
{
    (void) state;
    fbl_hop *hop = fbl_received_parse(NULL);
    assert_non_null(hop);
    assert_null(hop->from);
    assert_null(hop->helo);
    assert_null(hop->ip);
    assert_null(hop->by);
    assert_null(hop->date);
    fbl_hop_free(hop);
    fbl_hop_free(NULL);
    fbl_test_rows_done();
}

/* Names over FBL_RECEIVED_MAX_NAME are not host names; the rest of the hop survives. */
static void test_parse_long_names(void **state)
{
    (void) state;
    g_autofree char *longname = g_strnfill(FBL_RECEIVED_MAX_NAME + 1, 'a');
    g_autofree char *fits = g_strnfill(FBL_RECEIVED_MAX_NAME, 'b');
    g_autofree char *value =
        g_strdup_printf("from %s ([192.0.2.1] helo=%s) by %s; Wed, 10 Jan 2024 09:27:54 +0000",
                        longname, longname, fits);
    fbl_hop *hop = fbl_received_parse(value);
    fbl_test_check_str("long names", "from", NULL, hop->from);
    fbl_test_check_str("long names", "helo", NULL, hop->helo);
    fbl_test_check_str("long names", "ip", "192.0.2.1", hop->ip);
    fbl_test_check_str("long names", "by", fits, hop->by);
    fbl_test_check_str("long names", "date", "2024-01-10T09:27:54Z", hop->date);
    fbl_hop_free(hop);
    fbl_test_rows_done();
}

/* Hostile bytes: whatever comes out is valid UTF-8 (it goes into JSON). */
static void test_parse_binary(void **state)
{
    (void) state;
    static const char *const values[] = {
        "from \xff\xfe\xfd ([192.0.2.1]) by mx.example; Wed, 10 Jan 2024 09:27:54 +0000",
        "from x ([192.0.2.1] helo=\xc3\x28) by \xe2\x82 ; \xff",
        "from \x01\x02\x03 (\x7f [\x80]) by \x1b",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
        fbl_hop *hop = fbl_received_parse(values[i]);
        const char *fields[] = {hop->from, hop->helo, hop->ip, hop->by, hop->date};
        for (size_t j = 0; j < G_N_ELEMENTS(fields); j++) {
            if (fields[j] != NULL && !g_utf8_validate(fields[j], -1, NULL))
                fail_msg("binary row %zu: field %zu is not UTF-8", i, j);
        }
        fbl_hop_free(hop);
    }
    fbl_hop *hop = fbl_received_parse(values[0]);
    fbl_test_check_str("binary helo", "ip", "192.0.2.1", hop->ip);
    fbl_test_check_str("binary helo", "by", "mx.example", hop->by);
    fbl_hop_free(hop);
    fbl_test_rows_done();
}

/* Deep nesting is iterative, not recursive: no stack overflow. */
static void test_parse_deep_nesting(void **state)
{
    (void) state;
    GString *s = g_string_new("from a.example ");
    for (int i = 0; i < 100000; i++)
        g_string_append_c(s, '(');
    g_string_append(s, "[192.0.2.1]");
    for (int i = 0; i < 100000; i++)
        g_string_append_c(s, ')');
    g_string_append(s, " by b.example; Wed, 10 Jan 2024 09:27:54 +0000");
    fbl_hop *hop = fbl_received_parse(s->str);
    fbl_test_check_str("deep", "by", "b.example", hop->by);
    fbl_test_check_str("deep", "date", "2024-01-10T09:27:54Z", hop->date);
    fbl_hop_free(hop);
    g_string_free(s, TRUE);
    fbl_test_rows_done();
}

/* ---- fbl_date_to_iso --------------------------------------------------- */

static const struct {
    const char *in;
    const char *want;
} date_rows[] = {
    {"Wed, 10 Jan 2024 09:27:54 +0000", "2024-01-10T09:27:54Z"},
    {"  Wed, 10 Jan 2024 09:27:54 +0000  ", "2024-01-10T09:27:54Z"},
    {"Wed, 10 Jan 2024 09:27:54 +0100 (CET)", "2024-01-10T08:27:54Z"},
    {"Wed, 10 Jan 2024 01:27:54 -0800 (PST)", "2024-01-10T09:27:54Z"},
    {"10 Jan 2024 09:27:54 -0000", "2024-01-10T09:27:54Z"},
    {"Wed, 10 Jan 2024 09:27:54 GMT", "2024-01-10T09:27:54Z"},
    {"Wed, 10 Jan 2024 09:27:54 UT", "2024-01-10T09:27:54Z"},
    {"Wed, 10 Jan 2024 09:27:54 EST", "2024-01-10T14:27:54Z"},
    {"Thu, 8 Mar 2005 14:00:00 EDT", "2005-03-08T18:00:00Z"},
    {"Wed, 10 Jan 2024 23:30:00 -0100", "2024-01-11T00:30:00Z"},
    {"Sun, 31 Dec 2023 23:59:59 -0500", "2024-01-01T04:59:59Z"},
    {"Mon, 1 Jan 2024 00:30:00 +0100", "2023-12-31T23:30:00Z"},
    {"Thu, 29 Feb 2024 12:00:00 +0000", "2024-02-29T12:00:00Z"},
    {"Thu, 1 Jan 1970 00:00:00 +0000", "1970-01-01T00:00:00Z"},
    {"Wed, 10 Jan 2024 09:27 +0000", "2024-01-10T09:27:00Z"},
    {"Wed, 10 Jan 24 09:27:54 +0000", "2024-01-10T09:27:54Z"},
    {"Wed, 10 Jan 2024 09:27:54 +0530", "2024-01-10T03:57:54Z"},
    {"not a date", NULL},
    {"", NULL},
    {"   ", NULL},
    {"yesterday at noon", NULL},
};

static void test_date(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(date_rows); i++) {
        g_autofree char *got = fbl_date_to_iso(date_rows[i].in);
        fbl_test_check_str(date_rows[i].in, "date", date_rows[i].want, got);
    }
    assert_null(fbl_date_to_iso(NULL));
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_parse_unfolded),
        cmocka_unit_test(test_parse_null),   cmocka_unit_test(test_parse_long_names),
        cmocka_unit_test(test_parse_binary), cmocka_unit_test(test_parse_deep_nesting),
        cmocka_unit_test(test_date),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_gmime, fbl_test_teardown_gmime);
}
