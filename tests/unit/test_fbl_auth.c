/* test_fbl_auth.c - reporter verification from our Authentication-Results (parsers/auth.h) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "parsers/auth.h"
#include "parsers/mime.h"
#include "parsers/parse.h"

static const struct {
    const char *name;
    const char *headers; /* the report mail's header block */
    const char *authserv_id;
    const char *domain;
    int want;
} rows[] = {
    {"no authserv-id configured: unknown",
     "Authentication-Results: mx.example.net; dkim=pass "
     "header.d=aol.example\n",
     NULL, "aol.example", -1},
    {"aligned DKIM pass",
     "Authentication-Results: mx.example.net; dkim=pass header.d=aol.example\n", "mx.example.net",
     "aol.example", 1},
    {"DKIM pass by a parent domain (relaxed alignment)",
     "Authentication-Results: mx.example.net; dkim=pass header.d=example.org\n", "mx.example.net",
     "fbl.example.org", 1},
    {"DKIM pass for another domain",
     "Authentication-Results: mx.example.net; dkim=pass "
     "header.d=spammer.example\n",
     "mx.example.net", "aol.example", 0},
    {"DKIM pass by a TLD is no alignment",
     "Authentication-Results: mx.example.net; dkim=pass "
     "header.d=example\n",
     "mx.example.net", "aol.example", 0},
    {"aligned SPF pass",
     "Authentication-Results: mx.example.net; spf=pass "
     "smtp.mailfrom=bounce@aol.example\n",
     "mx.example.net", "aol.example", 1},
    {"SPF fail, DKIM fail",
     "Authentication-Results: mx.example.net; spf=fail "
     "smtp.mailfrom=aol.example; dkim=fail header.d=aol.example\n",
     "mx.example.net", "aol.example", 0},
    {"someone else's results do not count",
     "Authentication-Results: evil.example; dkim=pass header.d=aol.example\n", "mx.example.net",
     "aol.example", 0},
    {"only our first field counts (a forged one below is ignored)",
     "Authentication-Results: mx.example.net; dkim=fail header.d=aol.example\n"
     "Authentication-Results: mx.example.net; dkim=pass header.d=aol.example\n",
     "mx.example.net", "aol.example", 0},
    {"authserv-id with a version",
     "Authentication-Results: mx.example.net 1; dkim=pass "
     "header.d=aol.example\n",
     "mx.example.net", "aol.example", 1},
    {"header.i when header.d is missing",
     "Authentication-Results: mx.example.net; dkim=pass "
     "header.i=@aol.example\n",
     "mx.example.net", "aol.example", 1},
    {"no results at all", "X-Other: 1\n", "mx.example.net", "aol.example", 0},
    {"empty results field", "Authentication-Results:\n", "mx.example.net", "aol.example", 0},
};

static void test_rows(void **state)
{
    (void) state;
    g_mime_init();
    unsigned failures = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autofree char *text =
            g_strdup_printf("From: fbl@%s\n%sSubject: r\n\nx\n", rows[i].domain, rows[i].headers);
        g_autoptr(GMimeStream) s = g_mime_stream_mem_new_with_buffer(text, strlen(text));
        g_autoptr(GMimeParser) p = g_mime_parser_new_with_stream(s);
        g_autoptr(GMimeMessage) m = g_mime_parser_construct_message(p, NULL);
        int got = fbl_auth_reporter_verified(m, rows[i].authserv_id, rows[i].domain);
        if (got != rows[i].want) {
            print_error("%s: want %d, got %d\n", rows[i].name, rows[i].want, got);
            failures++;
        }
    }
    g_mime_shutdown();
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
