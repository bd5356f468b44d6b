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
    const char *hops[6];    /* Received values, newest first */
    const char *arf_source; /* ARF Source-IP, or NULL */
    const char *xoip;       /* X-Originating-IP, or NULL */
    const char *networks[3];
    const char *hosts[3];
    bool via_reporter;
    const char *reporter_domain;
    const char *want_ip;
    const char *want_from;
} row;

static const row rows[] = {
    {"first public hop from the top",
     {"from a.example.org (a.example.org [198.51.100.7]) by mx.example.net; "
      "Mon, 5 Jan 2026 10:00:00 +0000",
      "from b.example.org ([203.0.113.9]) by a.example.org"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "198.51.100.7",
     "received"},
    {"private and loopback hops are never the source",
     {"from relay ([10.1.2.3]) by store.example.net", "from localhost ([127.0.0.1]) by relay",
      "from spam.example.org ([203.0.113.50]) by mx.example.net"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.50",
     "received"},
    {"our trusted relays are skipped, by network",
     {"from mx1.example.net ([192.0.2.10]) by store.example.net",
      "from spam.example.org ([203.0.113.51]) by mx1.example.net"},
     NULL,
     NULL,
     {"192.0.2.0/24", NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.51",
     "received"},
    {"a provider's IPv6 hand-overs are skipped, by host name",
     {"from DM6PR01.namprd01.prod.outlook.com (2603:10b6:5:1::1) by "
      "SN6PR02.namprd02.prod.outlook.com with Microsoft SMTP Server",
      "from mail.spam.example.org (198.51.100.77) by "
      "BN8NAM04FT016.mail.protection.outlook.com with Microsoft SMTP Server"},
     NULL,
     NULL,
     {NULL},
     {"outlook.com", NULL},
     false,
     NULL,
     "198.51.100.77",
     "received"},
    {"a forged HELO in a trusted domain does not make a hop trusted",
     {"from x.prod.outlook.com (spam.example.org [203.0.113.66]) by "
      "mx.prod.outlook.com",
      "from y.example.org ([198.51.100.99]) by spam.example.org"},
     NULL,
     NULL,
     {NULL},
     {"outlook.com", NULL},
     false,
     NULL,
     "203.0.113.66",
     "received"},
    {"forged Received lines below the boundary are never reached",
     {"from spam.example.org ([203.0.113.52]) by mx.example.net",
      "from trusted.example.net ([198.51.100.1]) by spam.example.org",
      "from innocent.example.com ([198.51.100.2]) by trusted.example.net"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.52",
     "received"},
    {"the ARF Source-IP wins over the chain",
     {"from spam.example.org ([203.0.113.53]) by mx.example.net"},
     "192.0.2.200",
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "192.0.2.200",
     "arf"},
    {"X-Originating-IP only without any Received evidence",
     {"from webmail ([10.0.0.5]) by mx.example.net"},
     NULL,
     "[198.51.100.123]",
     {NULL},
     {NULL},
     false,
     NULL,
     "198.51.100.123",
     "x-originating-ip"},
    {"X-Originating-IP is a decoy when the chain names a source",
     {"from spam.example.org ([203.0.113.54]) by mx.example.net"},
     NULL,
     "198.51.100.124",
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.54",
     "received"},
    {"via the reporter: its trusted hand-over hop is skipped",
     {"from fbl.isp.example (fbl.isp.example [192.0.2.30]) by collector.example.net",
      "from spam.example.org (spam.example.org [203.0.113.55]) by fbl.isp.example"},
     NULL,
     NULL,
     {NULL},
     {"fbl.isp.example", NULL},
     true,
     NULL,
     "203.0.113.55",
     "received"},
    {"via the reporter: an untrusted relay's agreeing hop below is not read",
     {"from fbl.isp.example (fbl.isp.example [192.0.2.32]) by collector.example.net",
      "from spam.example.org (spam.example.org [203.0.113.58]) by fbl.isp.example"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     true,
     NULL,
     "192.0.2.32",
     "received"},
    {"via the reporter: a chain that does not agree keeps the first hop",
     {"from fbl.isp.example (fbl.isp.example [192.0.2.31]) by collector.example.net",
      "from spam.example.org ([203.0.113.56]) by somewhere.else.example"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     true,
     NULL,
     "192.0.2.31",
     "received"},
    {"via the reporter: a direct hit has nothing below it",
     {"from spam.example.org ([203.0.113.57]) by trap.example.net"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     true,
     NULL,
     "203.0.113.57",
     "received"},
    {"nothing at all", {NULL}, NULL, NULL, {NULL}, {NULL}, false, NULL, NULL, NULL},

    /* Forgers. The bot writes a hop that looks like a relay and hands over what it
     * names; only hosts the receiving side verified, or its networks, are followed. */
    {"forged below our MX: the bot's own name as the receiving host is not followed",
     {"from bot.dialup.example (bot.dialup.example [203.0.113.70]) by mx1.example.net",
      "from innocent.example.com (innocent.example.com [93.184.216.34]) by bot.dialup.example"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.70",
     "received"},
    {"forged below our MX in a raw mailbox: the bot is not a reporter's relay",
     {"from bot.dialup.example (bot.dialup.example [203.0.113.71]) by mx1.example.net",
      "from innocent.example.com ([93.184.216.34]) by bot.dialup.example"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     true,
     NULL,
     "203.0.113.71",
     "received"},
    {"a raw mailbox's relay the operator trusts says who it received from",
     {"from fwd.trapnet.example (fwd.trapnet.example [198.51.100.160]) by mx1.example.net",
      "from spam.example.org ([203.0.113.76]) by fwd.trapnet.example"},
     NULL,
     NULL,
     {NULL},
     {"trapnet.example", NULL},
     true,
     NULL,
     "203.0.113.76",
     "received"},
    {"a raw mailbox's relay that is a known provider is followed once",
     {"from vimdzmsp-mxin04.bluewin.ch (vimdzmsp-mxin04.bluewin.ch [195.186.227.151]) by "
      "collector.example.net",
      "from spam.example.org ([203.0.113.77]) by vimdzmsp-mxin04.bluewin.ch",
      "from innocent.example.com ([93.184.216.34]) by spam.example.org"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     true,
     NULL,
     "203.0.113.77",
     "received"},
    {"forged below the reporter's provider: Microsoft's border is as far as it goes",
     {"from AM0PR03MB1.eurprd03.prod.outlook.com (2603:10a6:208:1::1) by "
      "AM0PR03MB2.eurprd03.prod.outlook.com with HTTPS",
      "from bot.example.org (203.0.113.72) by AM0EUR03FT1.mail.protection.outlook.com "
      "(10.152.16.1) with Microsoft SMTP Server",
      "from innocent.example.com ([93.184.216.34]) by bot.example.org"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     "hotmail.com",
     "203.0.113.72",
     "received"},
    {"a HELO naming the receiving side, over a verified name that does not, is the sender's",
     {"from mx2.example.net (bot.dialup.example [203.0.113.73]) by mx1.example.net",
      "from innocent.example.com ([93.184.216.34]) by mx2.example.net"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.73",
     "received"},

    /* Big providers' chains: the source is the first hop into the provider. */
    {"Microsoft: internal IPv6 hops to the border, whatever their names",
     {"from DB8P192MB0693.EURP192.PROD.OUTLOOK.COM (::1) by DB8P192MB0693.EURP192.PROD.OUTLOOK.COM "
      "with HTTPS",
      "from BL0PR02CA0134.namprd02.prod.outlook.com (2603:10b6:208:35::39) by "
      "AS2P192MB2005.EURP192.PROD.OUTLOOK.COM (2603:10a6:20b:551::11) with Microsoft SMTP Server",
      "from MN1PEPF0000ECD6.namprd02.prod.outlook.com (2603:10b6:208:35:cafe::82) by "
      "BL0PR02CA0134.outlook.office365.com (2603:10b6:208:35::39) with Microsoft SMTP Server",
      "from c6jn.example.org (198.51.100.140) by MN1PEPF0000ECD6.mail.protection.outlook.com "
      "(10.167.242.1) with Microsoft SMTP Server"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     "hotmail.com",
     "198.51.100.140",
     "received"},
    {"Google: the submission hop of a Gmail sender is the border",
     {"by 2002:a2e:9a87:0:b0:2c9:bb43:cc37 with SMTP id p7csp1; Mon, 5 Jan 2026 10:00:00 -0800",
      "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com "
      "with SMTPS id a1",
      "from sender.example.org ([198.51.100.141]) by smtp.gmail.com with ESMTPSA id b2"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     "gmail.com",
     "198.51.100.141",
     "received"},
    {"Yahoo and AT&T: the AT&T relay into Yahoo is the receiving side's",
     {"from 10.196.198.206 by atlas.mail.omega.yahoo.com with HTTP",
      "from flph822.prodigy.net (EHLO flph822.prodigy.net) ([144.160.152.238]) by 10.196.198.206 "
      "(VZM Hermes SMTP Server)",
      "from mail-out.example.org (mail-out.example.org [198.51.100.142]) by flph822.prodigy.net "
      "(Inbound)"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     "att.net",
     "198.51.100.142",
     "received"},
    {"a mailbox provider's outbound is the source when another provider receives",
     {"from p-impin012.msg.pkvw.co.charter.net ([47.43.26.153]) by "
      "p-mtain017.msg.pkvw.co.charter.net",
      "from NAM10-DM6-obe.outbound.protection.outlook.com ([40.92.41.53]) by cmsmtp",
      "from BYAPR04MB5845.namprd04.prod.outlook.com (2603:10b6:a03:103::21) by "
      "DM6NAM10FT1.eop-nam10.prod.protection.outlook.com"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     "rr.com",
     "40.92.41.53",
     "received"},

    {"Microsoft 365: another tenant's outbound into the recipient's filter is a border",
     {"from JN1P275MB0427.ZAFP275.PROD.OUTLOOK.COM (2603:1086:0:d::5) by "
      "JN3P275MB2065.ZAFP275.PROD.OUTLOOK.COM with HTTPS",
      "from JN2ZAF01FT003.eop-zaf01.prod.protection.outlook.com (2603:1086:0:18:cafe::84) by "
      "JNXP275CA0040.outlook.office365.com (2603:1086:0:18::28) with Microsoft SMTP Server",
      "from ZAF01-JN2-obe.outbound.protection.outlook.com (40.107.18.88) by "
      "JN2ZAF01FT003.mail.protection.outlook.com (10.152.124.1) with Microsoft SMTP Server",
      "from JNAP275MB0589.ZAFP275.PROD.OUTLOOK.COM (2603:1086:0:2a::5) by "
      "JN3P275MB2115.ZAFP275.PROD.OUTLOOK.COM with Microsoft SMTP Server"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     "example.co.za",
     "40.107.18.88",
     "received"},

    /* Our relays and the receiving side's filters. */
    {"our relays with public IPs, by trusted_networks, then a verified filter service",
     {"from mx-in.example.net ([192.0.2.20]) by store.example.net",
      "from mx0a-0000aa01.pphosted.com (mx0a-0000aa01.pphosted.com [208.84.65.230]) by "
      "mx-in.example.net",
      "from localhost (localhost [127.0.0.1]) by mx0b-0000aa01.pphosted.com",
      "from m32-11.mailer.example (m32-11.mailer.example [198.51.100.143]) by "
      "mx0b-0000aa01.pphosted.com"},
     NULL,
     NULL,
     {"192.0.2.0/24", NULL},
     {NULL},
     false,
     NULL,
     "198.51.100.143",
     "received"},
    {"Exchange hand-overs named only by HELO, each written by the host named",
     {"from ex2.corp.example.com (198.51.100.150) by ex1.corp.example.com",
      "from ex3.corp.example.com (198.51.100.151) by ex2.corp.example.com",
      "from gw.example.com (gw.example.com [198.51.100.152]) by ex3.corp.example.com",
      "from spam.example.org (spam.example.org [203.0.113.74]) by gw.example.com"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.74",
     "received"},
    {"a HELO of the receiving side with nothing it wrote below is the border",
     {"from ex2.corp.example.com (203.0.113.75) by ex1.corp.example.com"},
     NULL,
     NULL,
     {NULL},
     {NULL},
     false,
     NULL,
     "203.0.113.75",
     "received"},
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
        fbl_source_hints hints = {.x_originating_ip = t->xoip,
                                  .reporter_domain = t->reporter_domain};
        (void) fbl_source_pick(r, &trust, &hints, t->via_reporter);
        if (g_strcmp0(r->source_ip, t->want_ip) != 0 ||
            g_strcmp0(r->source_ip_from, t->want_from) != 0) {
            print_error("%s: want %s (%s), got %s (%s)\n", t->name, t->want_ip, t->want_from,
                        r->source_ip, r->source_ip_from);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* A pasted copy that kept only the provider's own hops: its record of the client. */
static void test_provider_record(void **state)
{
    (void) state;
    static const struct {
        const char *name, *client, *xoip, *want_ip, *want_from;
    } cases[] = {
        {"the provider's record comes first", "203.0.113.90", "198.51.100.91", "203.0.113.90",
         "provider"},
        {"a private record is no source", "10.1.2.3", "198.51.100.92", "198.51.100.92",
         "x-originating-ip"},
        {"neither", NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(fbl_report) r = fbl_report_new();
        g_ptr_array_add(r->message.received,
                        fbl_received_parse("from md2.tb.mail.iss.local ([10.2.3.4]) by "
                                           "mc19.tb.mail.iss.local with LMTP"));
        g_autoptr(fbl_netset) nets = fbl_netset_new(NULL, NULL);
        fbl_trust trust = {nets, NULL};
        fbl_source_hints hints = {.x_originating_ip = cases[i].xoip,
                                  .provider_client_ip = cases[i].client};
        (void) fbl_source_pick(r, &trust, &hints, false);
        if (g_strcmp0(r->source_ip, cases[i].want_ip) != 0 ||
            g_strcmp0(r->source_ip_from, cases[i].want_from) != 0)
            fail_msg("%s: got %s (%s)", cases[i].name, r->source_ip, r->source_ip_from);
    }
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
        cmocka_unit_test(test_provider_record),
        cmocka_unit_test(test_host_matching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
