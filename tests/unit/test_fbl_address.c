/* test_fbl_address.c - addr-specs, lists and domains (parsers/address.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "parsers/address.h"
#include "tests/unit/harness.h"

/* ---- fbl_address_spec -------------------------------------------------- */

static const struct {
    const char *in;
    const char *spec;
    const char *name;
} spec_rows[] = {
    {"a@b.it", "a@b.it", NULL},
    {"<a@b.it>", "a@b.it", NULL},
    {"  <a@b.it>  ", "a@b.it", NULL},
    {"John Doe <John.Doe@Example.COM>", "john.doe@example.com", "John Doe"},
    {"\"Doe, John\" <jd@example.com>", "jd@example.com", "Doe, John"},
    {"a@b.it (Alice Example)", "a@b.it", "Alice Example"},
    {"=?UTF-8?B?w4lyaWM=?= <eric@example.fr>", "eric@example.fr", "\xc3\x89ric"},
    {"=?iso-8859-1?q?J=F6rg_M=FCller?= <JM@Example.DE>", "jm@example.de",
     "J\xc3\xb6rg M\xc3\xbcller"},
    {"=?utf-8?q?Caf=C3=A9?= Owner <owner@cafe.example>", "owner@cafe.example", "Caf\xc3\xa9 Owner"},
    {"Friends: A@x.org, b@x.org;", "a@x.org", NULL},
    {"undisclosed-recipients:;", NULL, NULL},
    {"postmaster", NULL, NULL},
    {"<postmaster>", NULL, NULL},
    {"Local Only <root>", NULL, NULL},
    {"@example.com", NULL, NULL},
    {"user@", NULL, NULL},
    {"", NULL, NULL},
    {"<<<>>>", NULL, NULL},
    {"redacted", NULL, NULL},
    {"Someone <first@x.org>, second@y.org", "first@x.org", "Someone"},
};

static void test_spec(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(spec_rows); i++) {
        char *name = (char *) "unset";
        g_autofree char *spec = fbl_address_spec(spec_rows[i].in, &name);
        fbl_test_check_str(spec_rows[i].in, "spec", spec_rows[i].spec, spec);
        fbl_test_check_str(spec_rows[i].in, "name", spec_rows[i].name, name);
        g_free(name);
        /* @name is optional */
        g_autofree char *again = fbl_address_spec(spec_rows[i].in, NULL);
        fbl_test_check_str(spec_rows[i].in, "spec without name", spec_rows[i].spec, again);
    }
    char *name = (char *) "unset";
    assert_null(fbl_address_spec(NULL, &name));
    assert_null(name);
    fbl_test_rows_done();
}

/* Longer than RFC 5321 allows is not an address; at the limit it is. */
static void test_spec_length(void **state)
{
    (void) state;
    g_autofree char *local = g_strnfill(FBL_ADDRESS_MAX - strlen("@example.com"), 'a');
    g_autofree char *fits = g_strconcat(local, "@example.com", NULL);
    g_autofree char *over = g_strconcat(local, "b@example.com", NULL);
    assert_int_equal(strlen(fits), FBL_ADDRESS_MAX);
    g_autofree char *got = fbl_address_spec(fits, NULL);
    fbl_test_check_str("320 bytes", "spec", fits, got);
    g_autofree char *none = fbl_address_spec(over, NULL);
    fbl_test_check_str("321 bytes", "spec", NULL, none);
    fbl_test_rows_done();
}

/* ---- fbl_address_list -------------------------------------------------- */

static const struct {
    const char *in;
    guint max;
    const char *want; /* joined with '|' */
} list_rows[] = {
    {"a@x.org", 10, "a@x.org"},
    {"a@x.org, Bob <B@X.org>, a@x.org", 10, "a@x.org|b@x.org"},
    {"A@X.ORG, a@x.org", 10, "a@x.org"},
    {"team: c@y.org, Dee <d@y.org>;, e@z.org", 10, "c@y.org|d@y.org|e@z.org"},
    {"undisclosed-recipients:;", 10, ""},
    {"a@x.org, b@x.org, c@x.org", 2, "a@x.org|b@x.org"},
    {"a@x.org, b@x.org, c@x.org", 0, ""},
    {"nodomain, a@x.org", 10, "a@x.org"},
    {"=?UTF-8?Q?J=C3=BCrgen?= <j@x.de>, \"Last, First\" <lf@x.de>", 10, "j@x.de|lf@x.de"},
    {"", 10, ""},
};

static void test_list(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(list_rows); i++) {
        g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
        fbl_address_list(list_rows[i].in, out, list_rows[i].max);
        g_autofree char *got = fbl_test_join(out, "|");
        fbl_test_check_str(list_rows[i].in, "list", list_rows[i].want, got);
    }
    fbl_test_rows_done();
}

/* Appends to what @out holds: no duplicate of an earlier entry, max counts the total. */
static void test_list_appends(void **state)
{
    (void) state;
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(out, g_strdup("a@x.org"));
    fbl_address_list("A@x.org, b@x.org, c@x.org", out, 2);
    g_autofree char *got = fbl_test_join(out, "|");
    fbl_test_check_str("append", "list", "a@x.org|b@x.org", got);
    fbl_address_list(NULL, out, 10);
    assert_int_equal(out->len, 2);
    fbl_test_rows_done();
}

static void test_list_take_names(void **state)
{
    (void) state;
    InternetAddressList *list = internet_address_list_parse(
        NULL, "Alice <A@x.org>, b@x.org, grp: =?UTF-8?B?w4lyaWM=?= <e@y.fr>;, alice <a@x.org>");
    assert_non_null(list);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    fbl_address_list_take(list, out, names, 10);
    g_autofree char *got = fbl_test_join(out, "|");
    g_autofree char *got_names = fbl_test_join(names, "|");
    fbl_test_check_str("take", "list", "a@x.org|b@x.org|e@y.fr", got);
    /* one name per address taken, "" where there was none */
    fbl_test_check_str("take", "names", "Alice||\xc3\x89ric", got_names);

    g_ptr_array_set_size(out, 0);
    g_ptr_array_set_size(names, 0);
    fbl_address_list_take(list, out, names, 1);
    assert_int_equal(out->len, 1);
    assert_int_equal(names->len, 1);
    fbl_address_list_take(list, out, NULL, 5);
    g_autofree char *no_names = fbl_test_join(out, "|");
    fbl_test_check_str("take without names", "list", "a@x.org|b@x.org|e@y.fr", no_names);
    g_object_unref(list);

    g_ptr_array_set_size(out, 0);
    fbl_address_list_take(NULL, out, names, 5);
    assert_int_equal(out->len, 0);
    fbl_test_rows_done();
}

/* ---- fbl_address_domain ------------------------------------------------ */

static const struct {
    const char *in;
    const char *want;
} domain_rows[] = {
    {"a@example.com", "example.com"},
    {"a@Example.COM", "example.com"},
    {"a@example.com.", "example.com"},
    {"a@b@c.org", "c.org"},
    {"\"x@y\"@quoted.example", "quoted.example"},
    {"a@sub.domain.example.co.uk", "sub.domain.example.co.uk"},
    {"a@", NULL},
    {"a@.", NULL},
    {"nodomain", NULL},
    {"", NULL},
};

static void test_domain(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(domain_rows); i++) {
        g_autofree char *got = fbl_address_domain(domain_rows[i].in);
        fbl_test_check_str(domain_rows[i].in, "domain", domain_rows[i].want, got);
    }
    assert_null(fbl_address_domain(NULL));
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_spec_length),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_list_appends),
        cmocka_unit_test(test_list_take_names),
        cmocka_unit_test(test_domain),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_gmime, fbl_test_teardown_gmime);
}
