/*
 * test_blocklist.c - the listing policy (fbl/blocklist.h) as a table: one row
 * per case of the rule (thresholds, verified weights, not-spam subtractions,
 * delisting, our trusted networks, the allowlist's networks and domains, the
 * big providers' relays and domains, with and without list_provider_relays),
 * each row's decision, score and delisting time checked; and the export
 * formats (fbl/blocklist_export.h) rendered for a fixed list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "fbl/blocklist.h"
#include "fbl/blocklist_export.h"
#include "tests/unit/harness.h"

#define NOW  1800000000 /* 2027-01-15 */
#define HOUR G_GINT64_CONSTANT(3600)
#define DAY  G_GINT64_CONSTANT(86400)

static const char *const trusted[] = {"192.0.2.0/24", NULL};
static const char *const allow[] = {"198.51.100.0/28", "2001:db8:a::/48", "allowed.example",
                                    "*.wild.example", NULL};

typedef struct row {
    const char *name;
    fbl_blocklist_kind kind;
    bool providers_listed;
    const char *entry;
    guint64 complainers, verified, not_spam;
    gint64 age_s;           /* of the last complaint; -1: none */
    unsigned min_reporters; /* 0: the rules' 3 */
    fbl_blocklist_decision want;
    gint64 want_score;
    const char *want_matched;
} row;

static const row rows[] = {
    {"three reporters", FBL_BLOCKLIST_IP, false, "203.0.113.1", 3, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 3, ""},
    {"two reporters", FBL_BLOCKLIST_IP, false, "203.0.113.2", 2, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_BELOW_THRESHOLD, 2, ""},
    {"two reporters, --min-reporters 2", FBL_BLOCKLIST_IP, false, "203.0.113.2", 2, 0, 0, HOUR, 2,
     FBL_BLOCKLIST_LISTED, 2, ""},
    {"one verified weighs two", FBL_BLOCKLIST_IP, false, "203.0.113.3", 2, 1, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 3, ""},
    {"one reporter, verified", FBL_BLOCKLIST_IP, false, "203.0.113.3", 1, 1, 0, HOUR, 0,
     FBL_BLOCKLIST_BELOW_THRESHOLD, 2, ""},
    {"not-spam subtracts", FBL_BLOCKLIST_IP, false, "203.0.113.4", 3, 0, 1, HOUR, 0,
     FBL_BLOCKLIST_BELOW_THRESHOLD, 2, ""},
    {"not-spam outweighed", FBL_BLOCKLIST_IP, false, "203.0.113.4", 4, 0, 1, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 3, ""},
    {"many not-spam: negative score", FBL_BLOCKLIST_IP, false, "203.0.113.4", 1, 0, 5, HOUR, 0,
     FBL_BLOCKLIST_BELOW_THRESHOLD, -4, ""},
    {"just before delisting", FBL_BLOCKLIST_IP, false, "203.0.113.5", 5, 0, 0, 3 * DAY - 1, 0,
     FBL_BLOCKLIST_LISTED, 5, ""},
    {"delisted 3 days after", FBL_BLOCKLIST_IP, false, "203.0.113.5", 5, 0, 0, 3 * DAY, 0,
     FBL_BLOCKLIST_DELISTED, 5, ""},
    {"no complaint at all", FBL_BLOCKLIST_IP, false, "203.0.113.6", 0, 0, 2, -1, 0,
     FBL_BLOCKLIST_BELOW_THRESHOLD, -2, ""},
    {"our trusted network", FBL_BLOCKLIST_IP, false, "192.0.2.77", 9, 9, 0, HOUR, 0,
     FBL_BLOCKLIST_TRUSTED, 18, "192.0.2.0/24"},
    {"allowlisted network", FBL_BLOCKLIST_IP, false, "198.51.100.5", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_ALLOWLISTED, 9, "198.51.100.0/28"},
    {"next to the allowlisted network", FBL_BLOCKLIST_IP, false, "198.51.100.16", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 9, ""},
    {"allowlisted IPv6 network", FBL_BLOCKLIST_IP, false, "2001:db8:a::25", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_ALLOWLISTED, 9, "2001:db8:a::/48"},
    {"IPv6 listed", FBL_BLOCKLIST_IP, false, "2001:db8:b::25", 3, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 3, ""},
    {"Google's relay", FBL_BLOCKLIST_IP, false, "209.85.128.5", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_PROVIDER, 9, "google"},
    {"Microsoft's relay", FBL_BLOCKLIST_IP, false, "40.107.1.1", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_PROVIDER, 9, "microsoft"},
    {"Google's relay, providers listed", FBL_BLOCKLIST_IP, true, "209.85.128.5", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 9, ""},
    {"trusted beats everything", FBL_BLOCKLIST_IP, false, "192.0.2.1", 0, 0, 0, -1, 0,
     FBL_BLOCKLIST_TRUSTED, 0, "192.0.2.0/24"},
    {"domain listed", FBL_BLOCKLIST_DOMAIN, false, "spam.example", 3, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 3, ""},
    {"allowlisted domain", FBL_BLOCKLIST_DOMAIN, false, "allowed.example", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_ALLOWLISTED, 9, "allowed.example"},
    {"under an allowlisted domain", FBL_BLOCKLIST_DOMAIN, false, "mail.allowed.example", 9, 0, 0,
     HOUR, 0, FBL_BLOCKLIST_ALLOWLISTED, 9, "allowed.example"},
    {"a suffix is not a parent", FBL_BLOCKLIST_DOMAIN, false, "notallowed.example", 9, 0, 0, HOUR,
     0, FBL_BLOCKLIST_LISTED, 9, ""},
    {"*.wild.example allows wild.example", FBL_BLOCKLIST_DOMAIN, false, "x.wild.example", 9, 0, 0,
     HOUR, 0, FBL_BLOCKLIST_ALLOWLISTED, 9, "wild.example"},
    {"gmail.com, a provider's domain", FBL_BLOCKLIST_DOMAIN, false, "gmail.com", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_PROVIDER, 9, "google"},
    {"gmail.com, providers listed", FBL_BLOCKLIST_DOMAIN, true, "gmail.com", 9, 0, 0, HOUR, 0,
     FBL_BLOCKLIST_LISTED, 9, ""},
    {"domain delisted", FBL_BLOCKLIST_DOMAIN, false, "old.example", 9, 0, 0, 4 * DAY, 0,
     FBL_BLOCKLIST_DELISTED, 9, ""},
};

static void test_decide(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const row *r = &rows[i];
        fbl_blocklist_rules rules = {
            7, r->min_reporters ? r->min_reporters : 3, 2, 1, 3 * DAY, r->providers_listed};
        g_autoptr(GError) error = NULL;
        g_autoptr(fbl_blocklist_policy) p =
            fbl_blocklist_policy_new(&rules, trusted, allow, &error);
        if (p == NULL) {
            ROW_FAIL("%s: policy: %s", r->name, error->message);
            continue;
        }
        gint64 last = r->age_s < 0 ? 0 : NOW - r->age_s;
        fbl_blocklist_counts c = {(char *) r->entry, r->complainers, r->verified,
                                  r->not_spam,       last,           last};
        fbl_blocklist_verdict v;
        fbl_blocklist_decide(p, r->kind, &c, NOW, &v);
        if (v.decision != r->want)
            ROW_FAIL("%s: decision %s, want %s", r->name,
                     fbl_blocklist_decision_to_string(v.decision),
                     fbl_blocklist_decision_to_string(r->want));
        if (v.score != r->want_score)
            ROW_FAIL("%s: score %" G_GINT64_FORMAT ", want %" G_GINT64_FORMAT, r->name, v.score,
                     r->want_score);
        if (last > 0 && v.delist_at != last + 3 * DAY)
            ROW_FAIL("%s: delist_at %" G_GINT64_FORMAT, r->name, v.delist_at);
        fbl_test_check_str(r->name, "matched", r->want_matched, v.matched);
    }
    fbl_test_rows_done();
}

/* The fewest complainers that can be listed: the query's lower bound. */
static void test_min_complainers(void **state)
{
    (void) state;
    static const struct {
        unsigned min, weight, want;
    } cases[] = {{3, 2, 2}, {3, 1, 3}, {4, 2, 2}, {1, 5, 1}, {10, 3, 4}};
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        fbl_blocklist_rules rules = {7, cases[i].min, cases[i].weight, 1, DAY, false};
        g_autoptr(fbl_blocklist_policy) p = fbl_blocklist_policy_new(&rules, NULL, NULL, NULL);
        guint got = fbl_blocklist_policy_min_complainers(p);
        if (got != cases[i].want)
            ROW_FAIL("min %u weight %u: %u, want %u", cases[i].min, cases[i].weight, got,
                     cases[i].want);
    }
    fbl_test_rows_done();
}

static void test_bad_allowlist(void **state)
{
    (void) state;
    static const char *const bad[] = {"192.0.2.0/33", NULL};
    static const char *const word[] = {"not a domain", NULL};
    fbl_blocklist_rules rules = {7, 3, 2, 1, DAY, false};
    g_autoptr(GError) e1 = NULL, e2 = NULL;
    assert_null(fbl_blocklist_policy_new(&rules, NULL, bad, &e1));
    assert_non_null(e1);
    assert_null(fbl_blocklist_policy_new(&rules, NULL, word, &e2));
    assert_non_null(strstr(e2->message, "not a domain"));
}

typedef struct fmt_row {
    const char *name;
    fbl_blocklist_kind kind;
    fbl_export_format format;
    bool ipv6;
    const char *want; /* the text after the first (comment) line */
} fmt_row;

#define ANSWER "Listed by Example Abuse for spam complaints, see https://bl.example/"
#define HEAD                                                                                       \
    "$SOA 300 ns1.bl.example. hostmaster 0 600 300 86400 300\n$NS 300 ns1.bl.example. "            \
    "ns2.bl.example.\n$TTL 300\n:127.0.0.2:" ANSWER "$\n"

static const fmt_row fmt_rows[] = {
    {"rbldnsd ip4trie", FBL_BLOCKLIST_IP, FBL_EXPORT_RBLDNSD, false, HEAD "203.0.113.7\n"},
    {"rbldnsd ip6trie", FBL_BLOCKLIST_IP, FBL_EXPORT_RBLDNSD, true, HEAD "2001:db8::7\n"},
    {"rbldnsd dnset", FBL_BLOCKLIST_DOMAIN, FBL_EXPORT_RBLDNSD, false, HEAD "spam.example\n"},
    {"rspamd radix", FBL_BLOCKLIST_IP, FBL_EXPORT_RSPAMD, false, "203.0.113.7\n2001:db8::7\n"},
    {"rspamd domains", FBL_BLOCKLIST_DOMAIN, FBL_EXPORT_RSPAMD, false, "spam.example\n"},
    {"postfix cidr", FBL_BLOCKLIST_IP, FBL_EXPORT_POSTFIX, false,
     "203.0.113.7/32 REJECT 5.7.1 " ANSWER "203.0.113.7\n"
     "2001:db8::7/128 REJECT 5.7.1 " ANSWER "2001:db8::7\n"},
    {"postfix access", FBL_BLOCKLIST_DOMAIN, FBL_EXPORT_POSTFIX, false,
     "spam.example REJECT 5.7.1 " ANSWER "spam.example\n"},
};

static void test_formats(void **state)
{
    (void) state;
    static const char *const ns[] = {"ns1.bl.example", "ns2.bl.example.", NULL};
    fbl_export_text text = {"Example Abuse", "https://bl.example/", ns, "hostmaster", 300};
    for (size_t i = 0; i < G_N_ELEMENTS(fmt_rows); i++) {
        const fmt_row *r = &fmt_rows[i];
        g_autoptr(GPtrArray) entries = g_ptr_array_new();
        if (r->kind == FBL_BLOCKLIST_IP) {
            g_ptr_array_add(entries, "203.0.113.7");
            g_ptr_array_add(entries, "2001:db8::7");
        } else {
            g_ptr_array_add(entries, "spam.example");
            g_ptr_array_add(entries, "bad.example OK\nexample.net"); /* never written */
        }
        g_autofree char *got = fbl_export_render(r->kind, r->format, entries, &text, r->ipv6);
        const char *body = strchr(got, '\n');
        fbl_test_check_str(r->name, "text", r->want, body != NULL ? body + 1 : got);
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_min_complainers),
        cmocka_unit_test(test_bad_allowlist),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
