/* test_fbl_arf.c - feedback-report fields and Feedback-Type names (parsers/arf.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "parsers/arf.h"
#include "tests/unit/harness.h"

static bool any_contains(const GPtrArray *list, const char *needle)
{
    for (guint i = 0; i < list->len; i++) {
        if (strstr(g_ptr_array_index(list, i), needle) != NULL)
            return true;
    }
    return false;
}

/* ---- fbl_arf_parse_fields ---------------------------------------------- */

typedef struct arf_row {
    const char *name;
    const char *text;
    const char *feedback_type;
    const char *user_agent;
    const char *version;
    const char *source_ip;
    const char *mail_from;
    const char *rcpt_to; /* joined with '|', "" for none */
    const char *arrival_date;
    const char *reporting_mta;
    const char *domains; /* joined */
    const char *uris;    /* joined */
    int64_t incidents;
    const char *auth_results; /* joined */
    const char *envelope_id;
    bool redacted;
    const char *warning; /* a substring one warning must have; NULL: no warnings at all */
} arf_row;

static const arf_row arf_rows[] = {
    {"RFC 5965 example",
     "Feedback-Type: abuse\n"
     "User-Agent: SomeGenerator/1.0\n"
     "Version: 1\n"
     "Original-Mail-From: <somespammer@example.net>\n"
     "Original-Rcpt-To: <user@example.com>\n"
     "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\n"
     "Reporting-MTA: dns; mail.example.com\n"
     "Source-IP: 192.0.2.1\n"
     "Authentication-Results: mail.example.com; spf=fail smtp.mail=somespammer@example.com\n"
     "Reported-Domain: example.net\n"
     "Reported-Uri: http://example.net/earn_money.html\n"
     "Reported-URI: mailto:user@example.com\n"
     "Removal-Recipient: user@example.com\n",
     "abuse", "SomeGenerator/1.0", "1", "192.0.2.1", "somespammer@example.net", "user@example.com",
     "2005-03-08T18:00:00Z", "mail.example.com", "example.net",
     "http://example.net/earn_money.html|mailto:user@example.com", -1,
     "mail.example.com; spf=fail smtp.mail=somespammer@example.com", NULL, false, NULL},
    {"names in any case",
     "feedback-type: Abuse\nUSER-AGENT: x/1\nversion: 1\nsource-ip: 192.0.2.2\n"
     "ORIGINAL-MAIL-FROM: A@B.example\nreported-domain: B.Example\n",
     "Abuse", "x/1", "1", "192.0.2.2", "a@b.example", "", NULL, NULL, "b.example", "", -1, "", NULL,
     false, NULL},
    {"folded values",
     "Feedback-Type: abuse\n"
     "Authentication-Results: mx.example.com;\n"
     "\tspf=pass smtp.mailfrom=example.net;\n"
     " dkim=pass header.d=example.net\n"
     "User-Agent: Folded\n"
     "  Agent/2.0\n"
     "Version: 1\n",
     "abuse", "Folded Agent/2.0", "1", NULL, NULL, "", NULL, NULL, "", "", -1,
     "mx.example.com; spf=pass smtp.mailfrom=example.net; dkim=pass header.d=example.net", NULL,
     false, NULL},
    {"repeated fields",
     "Feedback-Type: abuse\n"
     "Original-Rcpt-To: <one@example.com>\n"
     "Original-Rcpt-To: Two <TWO@example.com>\n"
     "Original-Rcpt-To: one@example.com\n"
     "Reported-Domain: spam.example\n"
     "Reported-Domain: Other.Example\n"
     "Reported-URI: http://spam.example/a\n"
     "Reported-URI: http://spam.example/b\n"
     "Authentication-Results: mx1.example.com; spf=fail\n"
     "Authentication-Results: mx2.example.com; dkim=none\n",
     "abuse", NULL, NULL, NULL, NULL, "one@example.com|two@example.com", NULL, NULL,
     "spam.example|other.example", "http://spam.example/a|http://spam.example/b", -1,
     "mx1.example.com; spf=fail|mx2.example.com; dkim=none", NULL, false, NULL},
    {"single-valued fields keep the first",
     "Feedback-Type: abuse\nFeedback-Type: other\nSource-IP: 192.0.2.5\nSource-IP: 192.0.2.6\n"
     "Original-Mail-From: first@example.com\nOriginal-Mail-From: second@example.com\n",
     "abuse", NULL, NULL, "192.0.2.5", "first@example.com", "", NULL, NULL, "", "", -1, "", NULL,
     false, NULL},
    {"Source-IP with rdns tail", "Feedback-Type: abuse\nSource-IP: 192.0.2.3 (mail.example.org)\n",
     "abuse", NULL, NULL, "192.0.2.3", NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"Source-IP mapped IPv6", "Feedback-Type: abuse\nSource-IP: ::ffff:198.51.100.4\n", "abuse",
     NULL, NULL, "198.51.100.4", NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"Source-IP bracketed IPv6", "Feedback-Type: abuse\nSource-IP: [2001:DB8::5]\n", "abuse", NULL,
     NULL, "2001:db8::5", NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"Source-IP not an address", "Feedback-Type: abuse\nSource-IP: mail.example.org\n", "abuse",
     NULL, NULL, NULL, NULL, "", NULL, NULL, "", "", -1, "", NULL, false, "Source-IP"},
    {"Reporting-MTA without type", "Reporting-MTA: mx.example.com\nFeedback-Type: abuse\n", "abuse",
     NULL, NULL, NULL, NULL, "", NULL, "mx.example.com", "", "", -1, "", NULL, false, NULL},
    {"Incidents", "Feedback-Type: abuse\nIncidents: 12\n", "abuse", NULL, NULL, NULL, NULL, "",
     NULL, NULL, "", "", 12, "", NULL, false, NULL},
    {"Incidents not a number", "Feedback-Type: abuse\nIncidents: many\n", "abuse", NULL, NULL, NULL,
     NULL, "", NULL, NULL, "", "", -1, "", NULL, false, "Incidents"},
    {"Incidents negative", "Feedback-Type: abuse\nIncidents: -3\n", "abuse", NULL, NULL, NULL, NULL,
     "", NULL, NULL, "", "", -1, "", NULL, false, "Incidents"},
    {"Received-Date and Feedback-Agent aliases",
     "Feedback-Type: abuse\nFeedback-Agent: Agent/3\nReceived-Date: Wed, 10 Jan 2024 09:27:54 "
     "+0100\n",
     "abuse", "Agent/3", NULL, NULL, NULL, "", "2024-01-10T08:27:54Z", NULL, "", "", -1, "", NULL,
     false, NULL},
    {"unreadable Arrival-Date", "Feedback-Type: abuse\nArrival-Date: last tuesday\n", "abuse", NULL,
     NULL, NULL, NULL, "", NULL, NULL, "", "", -1, "", NULL, false, "Arrival-Date"},
    {"envelope id and redaction",
     "Feedback-Type: abuse\nOriginal-Envelope-Id: 4T1abc2XyZz3\nRedacted-Address: redacted\n"
     "Original-Rcpt-To: <Redacted@example.com>\n",
     "abuse", NULL, NULL, NULL, NULL, "redacted@example.com", NULL, NULL, "", "", -1, "",
     "4T1abc2XyZz3", true, NULL},
    {"redacted recipient without a domain", "Feedback-Type: abuse\nOriginal-Rcpt-To: <REDACTED>\n",
     "abuse", NULL, NULL, NULL, NULL, "redacted", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"YAML style",
     "---\n"
     "Feedback-Type: 'abuse'\n"
     "User-Agent: \"Yahoo!-Mail-Feedback/2.0\"\n"
     "Version: '1'\n"
     "Source-IP: '192.0.2.9'\n"
     "Original-Rcpt-To: ''\n"
     "Reported-Domain: \"spam.example\"\n"
     "...\n",
     "abuse", "Yahoo!-Mail-Feedback/2.0", "1", "192.0.2.9", NULL, "", NULL, NULL, "spam.example",
     "", -1, "", NULL, false, NULL},
    {"all fields on one line",
     "Source-Ip: 195.231.66.50 Reported-Domain: alimail.it Original-Mail-From: a@b.it "
     "Arrival-Date: Wed, 10 Jan 2024 09:27:54 +0000 Original-Rcpt-To: j@names.co.uk "
     "Feedback-Type: abuse Abuse-Type: complaint Source: names.co.uk User-Agent: Namesco/0.3 "
     "Version: 1\n",
     "abuse", "Namesco/0.3", "1", "195.231.66.50", "a@b.it", "j@names.co.uk",
     "2024-01-10T09:27:54Z", NULL, "alimail.it", "", -1, "", NULL, false, NULL},
    {"CRLF line ends",
     "Feedback-Type: abuse\r\nUser-Agent: Crlf/1\r\nVersion: 1\r\nSource-IP: 192.0.2.11\r\n",
     "abuse", "Crlf/1", "1", "192.0.2.11", NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"CRLF folded value",
     "Feedback-Type: abuse\r\nAuthentication-Results: mx.example.com;\r\n\tspf=pass\r\n"
     "Version: 1\r\n",
     "abuse", NULL, "1", NULL, NULL, "", NULL, NULL, "", "", -1, "mx.example.com; spf=pass", NULL,
     false, NULL},
    {"space before the colon", "Feedback-Type : abuse\nVersion\t: 1\n", "abuse", NULL, "1", NULL,
     NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"unreadable lines", "Feedback-Type: abuse\nthis line is garbage\n: no name\nVersion: 1\n",
     "abuse", NULL, "1", NULL, NULL, "", NULL, NULL, "", "", -1, "", NULL, false,
     "2 unreadable line"},
    {"empty values are unknown", "Feedback-Type:\nUser-Agent:   \nReported-Domain:\n", NULL, NULL,
     NULL, NULL, NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"empty", "", NULL, NULL, NULL, NULL, NULL, "", NULL, NULL, "", "", -1, "", NULL, false, NULL},
    {"garbage", "\x01\x02\xff\xfe:::\n\n::\n", NULL, NULL, NULL, NULL, NULL, "", NULL, NULL, "", "",
     -1, "", NULL, false, "unreadable"},
};

static void check_arf(const arf_row *row, const fbl_arf *arf, const GPtrArray *warnings)
{
    fbl_test_check_str(row->name, "feedback_type_raw", row->feedback_type, arf->feedback_type_raw);
    fbl_test_check_str(row->name, "user_agent", row->user_agent, arf->user_agent);
    fbl_test_check_str(row->name, "version", row->version, arf->version);
    fbl_test_check_str(row->name, "source_ip", row->source_ip, arf->source_ip);
    fbl_test_check_str(row->name, "original_mail_from", row->mail_from, arf->original_mail_from);
    g_autofree char *rcpt = fbl_test_join(arf->original_rcpt_to, "|");
    fbl_test_check_str(row->name, "original_rcpt_to", row->rcpt_to, rcpt);
    fbl_test_check_str(row->name, "arrival_date", row->arrival_date, arf->arrival_date);
    fbl_test_check_str(row->name, "reporting_mta", row->reporting_mta, arf->reporting_mta);
    g_autofree char *domains = fbl_test_join(arf->reported_domain, "|");
    fbl_test_check_str(row->name, "reported_domain", row->domains, domains);
    g_autofree char *uris = fbl_test_join(arf->reported_uri, "|");
    fbl_test_check_str(row->name, "reported_uri", row->uris, uris);
    if (arf->incidents != row->incidents)
        ROW_FAIL("row '%s': incidents: want %" PRId64 ", got %" PRId64, row->name, row->incidents,
                 arf->incidents);
    g_autofree char *auth = fbl_test_join(arf->authentication_results, "|");
    fbl_test_check_str(row->name, "authentication_results", row->auth_results, auth);
    fbl_test_check_str(row->name, "original_envelope_id", row->envelope_id,
                       arf->original_envelope_id);
    if (arf->redacted_address != row->redacted)
        ROW_FAIL("row '%s': redacted_address: want %d", row->name, row->redacted);
    g_autofree char *all = fbl_test_join(warnings, "|");
    if (row->warning == NULL && warnings->len > 0)
        ROW_FAIL("row '%s': unexpected warnings: %s", row->name, all);
    if (row->warning != NULL && !any_contains(warnings, row->warning))
        ROW_FAIL("row '%s': no warning with '%s' in: %s", row->name, row->warning, all);
    for (guint i = 0; i < warnings->len; i++) {
        if (!g_utf8_validate(g_ptr_array_index(warnings, i), -1, NULL))
            ROW_FAIL("row '%s': warning %u is not UTF-8", row->name, i);
    }
}

static void test_fields(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(arf_rows); i++) {
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        const char *text = arf_rows[i].text;
        fbl_arf *arf = fbl_arf_parse_fields(text, strlen(text), warnings);
        assert_non_null(arf);
        check_arf(&arf_rows[i], arf, warnings);
        fbl_arf_free(arf);
    }
    fbl_test_rows_done();
}

/* @len is honoured: bytes after it are not read, and a NUL ends the text. */
/* RFC 6591's DKIM and SPF details, RFC 6692's Source-Port, and RFC 6650's
 * Removal-Recipient kept apart from the recipients. */
static void test_auth_failure_details(void **state)
{
    (void) state;
    static const char text[] = "Feedback-Type: auth-failure\n"
                               "Auth-Failure: dkim\n"
                               "Source-Port: 49152\n"
                               "DKIM-Domain: Bank.Example.COM\n"
                               "DKIM-Identity: @bank.example.com\n"
                               "DKIM-Selector: s2026\n"
                               "SPF-DNS: txt : bank.example.com : \"v=spf1 -all\"\n"
                               "SPF-DNS: txt : _spf.bank.example.com : \"v=spf1 ?all\"\n"
                               "Identity-Alignment: dkim\n"
                               "Original-Rcpt-To: <a@mailbox.example>\n"
                               "Removal-Recipient: <b@mailbox.example>\n";
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    fbl_arf *arf = fbl_arf_parse_fields(text, strlen(text), warnings);
    fbl_test_check_str("details", "dkim_domain", "bank.example.com", arf->dkim_domain);
    fbl_test_check_str("details", "dkim_identity", "@bank.example.com", arf->dkim_identity);
    fbl_test_check_str("details", "dkim_selector", "s2026", arf->dkim_selector);
    fbl_test_check_str("details", "identity_alignment", "dkim", arf->identity_alignment);
    g_autofree char *spf = fbl_test_join(arf->spf_dns, "|");
    fbl_test_check_str(
        "details", "spf_dns",
        "txt : bank.example.com : \"v=spf1 -all\"|txt : _spf.bank.example.com : \"v=spf1 ?all\"",
        spf);
    g_autofree char *rcpt = fbl_test_join(arf->original_rcpt_to, "|");
    g_autofree char *removal = fbl_test_join(arf->removal_recipient, "|");
    fbl_test_check_str("details", "original_rcpt_to", "a@mailbox.example", rcpt);
    fbl_test_check_str("details", "removal_recipient", "b@mailbox.example", removal);
    if (arf->source_port != 49152)
        ROW_FAIL("row 'details': source_port %" G_GINT64_FORMAT, arf->source_port);
    fbl_arf_free(arf);
    static const char bad_port[] = "Feedback-Type: abuse\nSource-Port: 70000\n";
    arf = fbl_arf_parse_fields(bad_port, strlen(bad_port), warnings);
    if (arf->source_port != -1)
        ROW_FAIL("row 'port out of range': source_port %" G_GINT64_FORMAT, arf->source_port);
    fbl_arf_free(arf);
    fbl_test_rows_done();
}

static void test_fields_length(void **state)
{
    (void) state;
    static const char text[] = "Feedback-Type: abuse\nVersion: 1\nUser-Agent: Hidden/1\n";
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    fbl_arf *arf =
        fbl_arf_parse_fields(text, strlen("Feedback-Type: abuse\nVersion: 1\n"), warnings);
    fbl_test_check_str("len", "version", "1", arf->version);
    fbl_test_check_str("len", "user_agent", NULL, arf->user_agent);
    fbl_arf_free(arf);

    static const char with_nul[] = "Feedback-Type: abuse\0User-Agent: AfterNul/1\n";
    arf = fbl_arf_parse_fields(with_nul, sizeof with_nul - 1, warnings);
    fbl_test_check_str("nul", "feedback_type_raw", "abuse", arf->feedback_type_raw);
    fbl_test_check_str("nul", "user_agent", NULL, arf->user_agent);
    fbl_arf_free(arf);
    fbl_test_rows_done();
}

/* FBL_ARF_MAX_VALUES values per repeated field; the rest counted in a warning. */
static void test_values_limit(void **state)
{
    (void) state;
    static const struct {
        unsigned values;
        unsigned kept;
        const char *warning;
    } rows[] = {
        {FBL_ARF_MAX_VALUES - 1, FBL_ARF_MAX_VALUES - 1, NULL},
        {FBL_ARF_MAX_VALUES, FBL_ARF_MAX_VALUES, NULL},
        {FBL_ARF_MAX_VALUES + 1, FBL_ARF_MAX_VALUES, "1 repeated field value(s)"},
        {FBL_ARF_MAX_VALUES + 50, FBL_ARF_MAX_VALUES, "50 repeated field value(s)"},
    };
    for (size_t r = 0; r < G_N_ELEMENTS(rows); r++) {
        GString *text = g_string_new("Feedback-Type: abuse\n");
        for (unsigned i = 0; i < rows[r].values; i++)
            g_string_append_printf(text, "Original-Rcpt-To: <user%u@example.com>\n", i);
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        fbl_arf *arf = fbl_arf_parse_fields(text->str, text->len, warnings);
        if (arf->original_rcpt_to->len != rows[r].kept)
            ROW_FAIL("%u values: kept %u, want %u", rows[r].values, arf->original_rcpt_to->len,
                     rows[r].kept);
        fbl_test_check_str("first kept", "rcpt", "user0@example.com",
                           g_ptr_array_index(arf->original_rcpt_to, 0));
        g_autofree char *all = fbl_test_join(warnings, "|");
        if (rows[r].warning == NULL && warnings->len > 0)
            ROW_FAIL("%u values: unexpected warnings: %s", rows[r].values, all);
        if (rows[r].warning != NULL && !any_contains(warnings, rows[r].warning))
            ROW_FAIL("%u values: no warning '%s' in: %s", rows[r].values, rows[r].warning, all);
        fbl_arf_free(arf);
        g_string_free(text, TRUE);
    }
    fbl_test_rows_done();
}

/* FBL_ARF_MAX_FIELDS fields are read; a warning says when more were there. */
static void test_fields_limit(void **state)
{
    (void) state;
    static const struct {
        unsigned fields;
        bool warned;
    } rows[] = {
        {FBL_ARF_MAX_FIELDS - 1, false},
        {FBL_ARF_MAX_FIELDS, false},
        {FBL_ARF_MAX_FIELDS + 1, true},
        {FBL_ARF_MAX_FIELDS * 3, true},
    };
    for (size_t r = 0; r < G_N_ELEMENTS(rows); r++) {
        GString *text = g_string_new("Feedback-Type: abuse\n");
        for (unsigned i = 2; i < rows[r].fields; i++)
            g_string_append_printf(text, "X-Filler-%u: value %u\n", i, i);
        g_string_append(text, "User-Agent: Last/1\n"); /* read only when within the limit */
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        fbl_arf *arf = fbl_arf_parse_fields(text->str, text->len, warnings);
        fbl_test_check_str("limit", "feedback_type_raw", "abuse", arf->feedback_type_raw);
        bool warned = any_contains(warnings, "too many fields");
        if (warned != rows[r].warned)
            ROW_FAIL("%u fields: too-many warning %d, want %d", rows[r].fields, warned,
                     rows[r].warned);
        bool last_read = arf->user_agent != NULL;
        if (last_read == rows[r].warned)
            ROW_FAIL("%u fields: last field read=%d", rows[r].fields, last_read);
        fbl_arf_free(arf);
        g_string_free(text, TRUE);
    }
    fbl_test_rows_done();
}

/* Hostile input: binary noise of every length must neither crash nor yield non-UTF-8. */
static void test_fields_noise(void **state)
{
    (void) state;
    GRand *rand = g_rand_new_with_seed(5965);
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t) g_rand_int_range(rand, 0, 600);
        g_autofree char *buf = g_malloc(len + 1);
        static const char alphabet[] = "Feedback-Type: \n\r\t'\"---Source-IP:()[]\xff\xc3@;";
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[g_rand_int_range(rand, 0, (gint32) sizeof alphabet - 1)];
        buf[len] = '\0';
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        fbl_arf *arf = fbl_arf_parse_fields(buf, len, warnings);
        assert_non_null(arf);
        for (guint i = 0; i < warnings->len; i++)
            assert_true(g_utf8_validate(g_ptr_array_index(warnings, i), -1, NULL));
        fbl_arf_free(arf);
    }
    g_rand_free(rand);
    fbl_test_rows_done();
}

/* ---- fbl_arf_feedback_type --------------------------------------------- */

static const struct {
    const char *raw;
    bool known;
    fbl_feedback_type type;
} type_rows[] = {
    {"abuse", true, FBL_FEEDBACK_ABUSE},
    {"Abuse", true, FBL_FEEDBACK_ABUSE},
    {"ABUSE", true, FBL_FEEDBACK_ABUSE},
    {" abuse\t", true, FBL_FEEDBACK_ABUSE},
    {"spam", true, FBL_FEEDBACK_ABUSE},
    {"spam ", true, FBL_FEEDBACK_ABUSE},
    {"Complaint", true, FBL_FEEDBACK_ABUSE},
    {"fraud", true, FBL_FEEDBACK_FRAUD},
    {"phishing", true, FBL_FEEDBACK_FRAUD},
    {"virus", true, FBL_FEEDBACK_VIRUS},
    {"malware", true, FBL_FEEDBACK_VIRUS},
    {"other", true, FBL_FEEDBACK_OTHER},
    {"not-spam", true, FBL_FEEDBACK_NOT_SPAM},
    {"Not-Spam", true, FBL_FEEDBACK_NOT_SPAM},
    {"ham", true, FBL_FEEDBACK_NOT_SPAM},
    {"opt-out", true, FBL_FEEDBACK_OPT_OUT},
    {"opt-out-list", true, FBL_FEEDBACK_OPT_OUT},
    {"unsubscribe", true, FBL_FEEDBACK_OPT_OUT},
    {"auth-failure", true, FBL_FEEDBACK_AUTH_FAILURE},
    {"dmarc", true, FBL_FEEDBACK_AUTH_FAILURE},
    {"", false, FBL_FEEDBACK_OTHER},
    {"   ", false, FBL_FEEDBACK_OTHER},
    {"abuses", false, FBL_FEEDBACK_OTHER},
    {"abuse; spam", false, FBL_FEEDBACK_OTHER},
    {"x-unknown", false, FBL_FEEDBACK_OTHER},
    {"\xff\xfe", false, FBL_FEEDBACK_OTHER},
};

static void test_feedback_type(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(type_rows); i++) {
        fbl_feedback_type type = FBL_FEEDBACK_FRAUD; /* must be overwritten */
        bool known = fbl_arf_feedback_type(type_rows[i].raw, &type);
        if (known != type_rows[i].known || type != type_rows[i].type)
            ROW_FAIL("row '%s': want known=%d type=%s, got known=%d type=%s", type_rows[i].raw,
                     type_rows[i].known, fbl_feedback_type_to_string(type_rows[i].type), known,
                     fbl_feedback_type_to_string(type));
    }
    fbl_feedback_type type = FBL_FEEDBACK_FRAUD;
    assert_false(fbl_arf_feedback_type(NULL, &type));
    assert_int_equal(type, FBL_FEEDBACK_OTHER);
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),        cmocka_unit_test(test_auth_failure_details),
        cmocka_unit_test(test_fields_length), cmocka_unit_test(test_values_limit),
        cmocka_unit_test(test_fields_limit),  cmocka_unit_test(test_fields_noise),
        cmocka_unit_test(test_feedback_type),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_gmime, fbl_test_teardown_gmime);
}
