/* test_outbound_export.c - locked accounts as Postfix access tables (fbl/outbound_export.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "fbl/outbound_export.h"
#include "tests/unit/harness.h"

#define TEXT "CHTR 301: locked"

typedef struct row {
    const char *name;
    const char *accounts; /* '|'-separated */
    const char *want;     /* the table after its comment line */
    fbl_accounts_format format;
    guint skipped;
} row;

static const char *const domains[] = {"example.com", "*.example.net", NULL};

#define SENDER FBL_ACCOUNTS_POSTFIX_SENDER
#define SASL   FBL_ACCOUNTS_POSTFIX_SASL

static const row rows[] = {
    {"sender: an address as it is", "alice@example.com",
     "alice@example.com REJECT 5.7.1 " TEXT "\n", SENDER, 0},
    {"sender: a bare login once per local domain", "bob",
     "bob@example.com REJECT 5.7.1 " TEXT "\nbob@example.net REJECT 5.7.1 " TEXT "\n", SENDER, 0},
    {"sasl: a bare login as it is", "bob", "bob REJECT 5.7.1 " TEXT "\n", SASL, 0},
    {"a blank cannot add a field", "evil OK", "", SASL, 1},
    {"a newline cannot add a line", "evil\nx@example.com OK", "", SASL, 1},
    {"a comment sign, a colon, a slash", "#x@example.com|a:b@example.com|a/b@example.com", "",
     SENDER, 3},
    {"a leading at sign", "@example.com", "", SENDER, 1},
    {"plus and equals are kept", "a+b=c@example.com", "a+b=c@example.com REJECT 5.7.1 " TEXT "\n",
     SENDER, 0},
};

static void test_render(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const row *r = &rows[i];
        g_auto(GStrv) parts = g_strsplit(r->accounts, "|", -1);
        g_autoptr(GPtrArray) accounts = g_ptr_array_new();
        for (size_t k = 0; parts[k] != NULL; k++)
            g_ptr_array_add(accounts, parts[k]);
        guint skipped = 0;
        g_autofree char *out =
            fbl_outbound_export_render(r->format, accounts, domains, TEXT, &skipped);
        const char *body = strchr(out, '\n');
        body = body != NULL ? body + 1 : out;
        fbl_test_check_str(r->name, "table", r->want, body);
        if (skipped != r->skipped)
            ROW_FAIL("%s: %u left out, want %u", r->name, skipped, r->skipped);
    }
    fbl_test_rows_done();
}

/* Without [local] domains a bare login has no sender address: left out of postfix-sender. */
static void test_bare_login_without_domains(void **state)
{
    (void) state;
    g_autoptr(GPtrArray) accounts = g_ptr_array_new();
    g_ptr_array_add(accounts, "bob");
    guint skipped = 0;
    g_autofree char *out =
        fbl_outbound_export_render(FBL_ACCOUNTS_POSTFIX_SENDER, accounts, NULL, "x\ny", &skipped);
    assert_int_equal(skipped, 1);
    assert_null(strstr(out, "bob"));
    /* A lock text with a control character stays one line. */
    g_ptr_array_add(accounts, "c@example.com");
    g_autofree char *two =
        fbl_outbound_export_render(FBL_ACCOUNTS_POSTFIX_SENDER, accounts, NULL, "x\ny", NULL);
    assert_non_null(strstr(two, "c@example.com REJECT 5.7.1 x y\n"));
}

static void test_formats(void **state)
{
    (void) state;
    fbl_accounts_format f = FBL_ACCOUNTS_POSTFIX_SENDER;
    assert_true(fbl_accounts_format_from_string("postfix-sasl", &f));
    assert_int_equal(f, FBL_ACCOUNTS_POSTFIX_SASL);
    assert_true(fbl_accounts_format_from_string("postfix-sender", &f));
    assert_int_equal(f, FBL_ACCOUNTS_POSTFIX_SENDER);
    assert_false(fbl_accounts_format_from_string("postfix", &f));
    assert_false(fbl_accounts_format_from_string(NULL, &f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_bare_login_without_domains),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
