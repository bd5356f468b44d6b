/* test_fbl_outbound.c - outbound reports and their accounts (parsers/outbound.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "parsers/mime.h"
#include "parsers/outbound.h"
#include "parsers/parse.h"
#include "tests/unit/harness.h"

/* Our scope in every row: a network, and two domains. */
static const char *const local_networks[] = {"192.0.2.0/24", "2001:db8:25::/48", NULL};
static const char *const local_domains[] = {"example.com", "*.example.net", NULL};

typedef struct row {
    const char *name;
    const char *source_ip;          /* ARF Source-IP */
    const char *original_mail_from; /* ARF Original-Mail-From; NULL: none */
    const char *headers;            /* the reported message's header block */
    const char *matched;            /* NULL: not outbound */
    const char *account, *account_from, *auth_header;
} row;

/* Header styles as the MTAs document them (Postfix smtpd_sasl_authenticated_header, Exim
 * received_header_text with $authenticated_id, chasquid, Courier, OpenSMTPD, cPanel's Exim). */
static const row rows[] = {
    {"postfix authenticated sender, our network", "192.0.2.10", NULL,
     "Received: from [10.0.0.5] (unknown [198.51.100.77])\n"
     "\t(Authenticated sender: alice@example.com)\n"
     "\tby smtp.example.com (Postfix) with ESMTPSA id 4T3;\n"
     "\tWed, 10 Jan 2024 09:27:54 +0000\n"
     "From: Alice <alice@example.com>\n",
     "source_ip", "alice@example.com", "auth", "received"},
    {"postfix bare login, no space, our From domain", "203.0.113.9", NULL,
     "Received: from pc (unknown [198.51.100.7])\n\t(Authenticated sender:Bob)\n"
     "\tby smtp.example.com (Postfix) with ESMTPSA id 1; Wed, 10 Jan 2024 09:27:54 +0000\n"
     "From: bob@example.com\n",
     "from_domain", "bob", "auth", "received"},
    {"exim auth= in envelope-from, our DKIM only", "203.0.113.9", NULL,
     "Received: from host.example.org ([198.51.100.7])\n"
     "\tby mx.example.org with esmtpsa (Exim 4.96)\n"
     "\t(envelope-from <carol@example.org>; auth=carol)\n"
     "\tid 1rNq2x-000abc-1x; Wed, 10 Jan 2024 09:27:54 +0000\n"
     "DKIM-Signature: v=1; a=rsa-sha256; d=mail.example.net; s=s1; h=from; bh=x; b=y\n"
     "From: carol@gmail.example\n",
     "dkim", "carol", "auth", "received"},
    {"chasquid authenticated as", "192.0.2.11", NULL,
     "Received: from example.com (authenticated as dave@example.com)\n"
     "\tby mail.example.com (chasquid) with ESMTPSA; Wed, 10 Jan 2024 09:27:54 +0000\n"
     "From: dave@example.com\n",
     "source_ip", "dave@example.com", "auth", "received"},
    {"courier AUTH:", "192.0.2.12", NULL,
     "Received: from pc ([198.51.100.7])\n"
     "  (AUTH: LOGIN erin@example.com, TLS: TLSv1.3,256bits,TLS_AES_256_GCM_SHA384)\n"
     "  by mail.example.com with ESMTPSA; Wed, 10 Jan 2024 09:27:54 +0000\n",
     "source_ip", "erin@example.com", "auth", "received"},
    {"opensmtpd auth=yes user=", "192.0.2.12", NULL,
     "Received: from roundcube (r1.example.com [192.0.2.12])\n"
     "\tby mail.example.com (OpenSMTPD) with ESMTPSA id e1f5 auth=yes user=zeta;\n"
     "\tWed, 10 Jan 2024 09:27:54 +0000\n",
     "source_ip", "zeta", "auth", "received"},
    {"x-authenticated-user", "192.0.2.13", NULL,
     "Received: from pc by mail.example.com; Wed, 10 Jan 2024 09:27:54 +0000\n"
     "X-Authenticated-User: Frank@Example.com\n",
     "source_ip", "frank@example.com", "auth", "x-authenticated-user"},
    {"x-authenticated-sender, cpanel host: user", "192.0.2.14", NULL,
     "X-Authenticated-Sender: cpanel.example.com: grace@example.com\n", "source_ip",
     "grace@example.com", "auth", "x-authenticated-sender"},
    {"x-get-message-sender-via", "192.0.2.15", NULL,
     "X-Get-Message-Sender-Via: cpanel.example.com: authenticated_id: heidi@example.com\n",
     "source_ip", "heidi@example.com", "auth", "x-get-message-sender-via"},
    {"topmost marker wins over a forged one below", "192.0.2.16", NULL,
     "Received: from pc (unknown [198.51.100.7])\n\t(Authenticated sender: ivan@example.com)\n"
     "\tby smtp.example.com (Postfix) with ESMTPSA id 2; Wed, 10 Jan 2024 09:27:54 +0000\n"
     "Received: from x (Authenticated sender: victim@example.com) by forged; "
     "Wed, 10 Jan 2024 09:00:00 +0000\n",
     "source_ip", "ivan@example.com", "auth", "received"},
    {"no auth: return-path", "192.0.2.17", "<bounce@example.com>",
     "Return-Path: <judy@example.com>\nFrom: other@example.com\n", "source_ip", "judy@example.com",
     "envelope", NULL},
    {"no auth, no return-path: arf original-mail-from", "192.0.2.18", "<mallory@example.com>",
     "From: other@example.com\n", "source_ip", "mallory@example.com", "envelope", NULL},
    {"null envelope sender: from", "192.0.2.19", "<>", "From: Niaj <niaj@example.com>\n",
     "source_ip", "niaj@example.com", "from", NULL},
    {"hostile name with a blank is skipped", "192.0.2.20", NULL,
     "Received: from pc (Authenticated sender: evil REJECT) by smtp.example.com; "
     "Wed, 10 Jan 2024 09:27:54 +0000\nReturn-Path: <olivia@example.com>\n",
     "source_ip", "olivia@example.com", "envelope", NULL},
    {"ipv6 source in our network", "2001:db8:25::1", NULL, "From: peggy@example.org\n", "source_ip",
     "peggy@example.org", "from", NULL},
    {"subdomain of our domain", "203.0.113.9", NULL, "From: x@lists.example.com\n", "from_domain",
     "x@lists.example.com", "from", NULL},
    {"not ours: other network, domain and signer", "203.0.113.9", NULL,
     "Received: from pc (Authenticated sender: someone@example.org) by smtp.example.org; "
     "Wed, 10 Jan 2024 09:27:54 +0000\n"
     "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=x; b=y\n"
     "From: someone@example.org\n",
     NULL, NULL, NULL, NULL},
    {"not ours: a look-alike domain", "203.0.113.9", NULL, "From: x@notexample.com\n", NULL, NULL,
     NULL, NULL},
};

static char *arf_mail(const row *r)
{
    return g_strdup_printf(
        "From: fbl@fbl.example.org\nTo: abuse@example.com\nSubject: FBL\n"
        "Message-ID: <r@fbl.example.org>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n"
        "--b\nContent-Type: text/plain\n\nA complaint.\n"
        "--b\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: test/1\nVersion: 1\nSource-IP: %s\n%s%s%s\n"
        "--b\nContent-Type: message/rfc822\n\n%sSubject: hello\nMessage-ID: <m@x>\n\nBuy.\n"
        "--b--\n",
        r->source_ip, r->original_mail_from != NULL ? "Original-Mail-From: " : "",
        r->original_mail_from != NULL ? r->original_mail_from : "",
        r->original_mail_from != NULL ? "\n" : "", r->headers);
}

static fbl_parser *local_parser(void)
{
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.local_networks = local_networks;
    o.local_domains = local_domains;
    fbl_parser *p = fbl_parser_new(&o, NULL);
    assert_non_null(p);
    return p;
}

static void check_row(const fbl_parser *p, const row *r)
{
    g_autofree char *mail = arf_mail(r);
    fbl_mail_meta meta = {.mailbox = "t", .received_at = 1700000000};
    g_autoptr(fbl_parse_result) res = fbl_parser_parse(p, mail, strlen(mail), &meta);
    if (res->reports->len != 1) {
        ROW_FAIL("%s: %u reports, want 1", r->name, res->reports->len);
        return;
    }
    const fbl_report *rep = g_ptr_array_index(res->reports, 0);
    const fbl_outbound *b = rep->outbound;
    if ((b == NULL) != (r->matched == NULL)) {
        ROW_FAIL("%s: outbound %s, want %s", r->name, b != NULL ? b->matched : "none",
                 r->matched != NULL ? r->matched : "none");
        return;
    }
    if (b == NULL)
        return;
    fbl_test_check_str(r->name, "matched", r->matched, b->matched);
    fbl_test_check_str(r->name, "account", r->account, b->account);
    fbl_test_check_str(r->name, "account_from", r->account_from, b->account_from);
    fbl_test_check_str(r->name, "auth_header", r->auth_header, b->auth_header);
}

static void test_rows(void **state)
{
    (void) state;
    fbl_parser *p = local_parser();
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++)
        check_row(p, &rows[i]);
    fbl_parser_free(p);
    fbl_test_rows_done();
}

/* Without a [local] scope no report is outbound, and the document says null. */
static void test_no_scope(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    fbl_parser *p = fbl_parser_new(&o, NULL);
    g_autofree char *mail = arf_mail(&rows[0]);
    fbl_mail_meta meta = {.mailbox = "t", .received_at = 1700000000};
    g_autoptr(fbl_parse_result) res = fbl_parser_parse(p, mail, strlen(mail), &meta);
    assert_int_equal(res->reports->len, 1);
    assert_null(((fbl_report *) g_ptr_array_index(res->reports, 0))->outbound);
    fbl_parser_free(p);
}

static void test_bad_scope(void **state)
{
    (void) state;
    static const char *const bad_domains[] = {"exa mple.com", NULL};
    static const char *const bad_nets[] = {"192.0.2.0/33", NULL};
    g_autoptr(GError) e1 = NULL, e2 = NULL;
    assert_null(fbl_outbound_scope_new(NULL, bad_domains, &e1));
    assert_non_null(e1);
    assert_null(fbl_outbound_scope_new(bad_nets, NULL, &e2));
    assert_non_null(e2);
    assert_null(fbl_outbound_scope_new(NULL, NULL, NULL));
}

/* Real mails of the shared corpus (read in place, never copied): who their MTA says sent them. */
typedef struct real_row {
    const char *file;
    const char *local_domain;
    const char *account, *account_from, *auth_header;
} real_row;

static const real_row real_rows[] = {
    /* a complaint with the spam attached, sent through a compromised webmail account */
    {"abusix-inbound-parsers/amasha.spam.0.eml", "rj.gov.br", "93342@pmerj.rj.gov.br", "auth",
     "received"},
    /* Rackspace's relay writes "-AT-" in the authenticated name */
    {"abusix-inbound-parsers/cert_in.spam.1.eml", "emailsrvr.com",
     "nguimgo.yves-at-zenitheinsurance.com", "auth", "received"},
};

static char *real_path(const char *file)
{
    return g_build_filename(FBL_CORPUS_DIR, file, NULL); /* CMake's FBL_CORPUS_DIR */
}

static void test_real(void **state)
{
    (void) state;
    g_autofree char *probe = real_path(real_rows[0].file);
    if (!g_file_test(probe, G_FILE_TEST_EXISTS)) {
        (void) printf("skipped: the shared corpus is not at %s\n", probe);
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(real_rows); i++) {
        const real_row *r = &real_rows[i];
        g_autofree char *path = real_path(r->file);
        g_autofree char *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &data, &len, NULL)) {
            ROW_FAIL("%s: unreadable", r->file);
            continue;
        }
        fbl_parse_options o;
        fbl_parse_options_init(&o);
        const char *domains[] = {r->local_domain, NULL};
        const char *nets[] = {"0.0.0.0/0",
                              NULL}; /* every source is ours: the account is the test */
        o.local_networks = nets;
        o.local_domains = domains;
        fbl_parser *p = fbl_parser_new(&o, NULL);
        fbl_mail_meta meta = {.mailbox = "t", .received_at = 1700000000};
        g_autoptr(fbl_parse_result) res = fbl_parser_parse(p, data, len, &meta);
        const fbl_report *rep = res->reports->len > 0 ? g_ptr_array_index(res->reports, 0) : NULL;
        if (rep == NULL || rep->outbound == NULL)
            ROW_FAIL("%s: no outbound report", r->file);
        else {
            fbl_test_check_str(r->file, "account", r->account, rep->outbound->account);
            fbl_test_check_str(r->file, "account_from", r->account_from,
                               rep->outbound->account_from);
            fbl_test_check_str(r->file, "auth_header", r->auth_header, rep->outbound->auth_header);
        }
        fbl_parser_free(p);
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_no_scope),
        cmocka_unit_test(test_bad_scope),
        cmocka_unit_test(test_real),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_parsers, fbl_test_teardown_parsers);
}
