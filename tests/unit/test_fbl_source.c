/* test_fbl_source.c - the source IP and its decoys (parsers/source.h) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "parsers/received.h"
#include "parsers/source.h"

typedef struct row {
    const char *name;
    const char *hops[6];   /* Received values, newest first */
    const char *arf_source; /* ARF Source-IP, or NULL */
    const char *xoip;       /* X-Originating-IP, or NULL */
    const char *networks[3];
    const char *hosts[3];
    bool via_reporter;
    const char *want_ip;
    const char *want_from;
} row;

static const row rows[] = {
    {"first public hop from the top",
     {"from a.example.org (a.example.org [198.51.100.7]) by mx.example.net; "
      "Mon, 5 Jan 2026 10:00:00 +0000",
      "from b.example.org ([203.0.113.9]) by a.example.org"},
     NULL, NULL, {NULL}, {NULL}, false, "198.51.100.7", "received"},
    {"private and loopback hops are never the source",
     {"from relay ([10.1.2.3]) by store.example.net",
      "from localhost ([127.0.0.1]) by relay",
      "from spam.example.org ([203.0.113.50]) by mx.example.net"},
     NULL, NULL, {NULL}, {NULL}, false, "203.0.113.50", "received"},
    {"our trusted relays are skipped, by network",
     {"from mx1.example.net ([192.0.2.10]) by store.example.net",
      "from spam.example.org ([203.0.113.51]) by mx1.example.net"},
     NULL, NULL, {"192.0.2.0/24", NULL}, {NULL}, false, "203.0.113.51", "received"},
    {"a provider's IPv6 hand-overs are skipped, by host name",
     {"from DM6PR01.namprd01.prod.outlook.com (2603:10b6:5:1::1) by "
      "SN6PR02.namprd02.prod.outlook.com with Microsoft SMTP Server",
      "from mail.spam.example.org (198.51.100.77) by "
      "BN8NAM04FT016.mail.protection.outlook.com with Microsoft SMTP Server"},
     NULL, NULL, {NULL}, {"outlook.com", NULL}, false, "198.51.100.77", "received"},
    {"a forged HELO in a trusted domain does not make a hop trusted",
     {"from x.prod.outlook.com (spam.example.org [203.0.113.66]) by "
      "mx.prod.outlook.com",
      "from y.example.org ([198.51.100.99]) by spam.example.org"},
     NULL, NULL, {NULL}, {"outlook.com", NULL}, false, "203.0.113.66", "received"},
    {"forged Received lines below the boundary are never reached",
     {"from spam.example.org ([203.0.113.52]) by mx.example.net",
      "from trusted.example.net ([198.51.100.1]) by spam.example.org",
      "from innocent.example.com ([198.51.100.2]) by trusted.example.net"},
     NULL, NULL, {NULL}, {NULL}, false, "203.0.113.52", "received"},
    {"the ARF Source-IP wins over the chain",
     {"from spam.example.org ([203.0.113.53]) by mx.example.net"},
     "192.0.2.200", NULL, {NULL}, {NULL}, false, "192.0.2.200", "arf"},
    {"X-Originating-IP only without any Received evidence",
     {"from webmail ([10.0.0.5]) by mx.example.net"},
     NULL, "[198.51.100.123]", {NULL}, {NULL}, false, "198.51.100.123", "x-originating-ip"},
    {"X-Originating-IP is a decoy when the chain names a source",
     {"from spam.example.org ([203.0.113.54]) by mx.example.net"},
     NULL, "198.51.100.124", {NULL}, {NULL}, false, "203.0.113.54", "received"},
    {"via the reporter: its hand-over hop is skipped when the chain agrees",
     {"from fbl.isp.example (fbl.isp.example [192.0.2.30]) by collector.example.net",
      "from spam.example.org (spam.example.org [203.0.113.55]) by fbl.isp.example"},
     NULL, NULL, {NULL}, {NULL}, true, "203.0.113.55", "received"},
    {"via the reporter: a chain that does not agree keeps the first hop",
     {"from fbl.isp.example (fbl.isp.example [192.0.2.31]) by collector.example.net",
      "from spam.example.org ([203.0.113.56]) by somewhere.else.example"},
     NULL, NULL, {NULL}, {NULL}, true, "192.0.2.31", "received"},
    {"via the reporter: a direct hit has nothing below it",
     {"from spam.example.org ([203.0.113.57]) by trap.example.net"},
     NULL, NULL, {NULL}, {NULL}, true, "203.0.113.57", "received"},
    {"nothing at all", {NULL}, NULL, NULL, {NULL}, {NULL}, false, NULL, NULL},
};

static void test_rows(void **state)
{
    (void) state;
    unsigned failures = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const row *t = &rows[i];
        g_autoptr(fbl_report) r = fbl_report_new();
        for (size_t j = 0; t->hops[j] != NULL; j++)
            g_ptr_array_add(r->message.received, fbl_received_parse(t->hops[j]));
        if (t->arf_source != NULL) {
            r->arf = fbl_arf_new();
            r->arf->source_ip = g_strdup(t->arf_source);
        }
        g_autoptr(fbl_netset) nets = fbl_netset_new(t->networks, NULL);
        assert_non_null(nets);
        fbl_trust trust = {nets, t->hosts};
        fbl_source_pick(r, &trust, t->xoip, t->via_reporter);
        if (g_strcmp0(r->source_ip, t->want_ip) != 0 ||
            g_strcmp0(r->source_ip_from, t->want_from) != 0) {
            print_error("%s: want %s (%s), got %s (%s)\n", t->name, t->want_ip, t->want_from,
                        r->source_ip, r->source_ip_from);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_host_matching(void **state)
{
    (void) state;
    const char *hosts[] = {"outlook.com", "mx.example.net", NULL};
    assert_true(fbl_trust_host_matches(hosts, "outlook.com"));
    assert_true(fbl_trust_host_matches(hosts, "a.b.prod.OUTLOOK.com"));
    assert_false(fbl_trust_host_matches(hosts, "evil-outlook.com"));
    assert_false(fbl_trust_host_matches(hosts, "outlook.com.evil.example"));
    assert_true(fbl_trust_host_matches(hosts, "mx.example.net"));
    assert_false(fbl_trust_host_matches(hosts, "example.net"));
    assert_false(fbl_trust_host_matches(hosts, NULL));
    assert_false(fbl_trust_host_matches(NULL, "outlook.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_host_matching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
