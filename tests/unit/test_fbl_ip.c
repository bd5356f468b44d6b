/* test_fbl_ip.c - canonical IP text, internal ranges, network sets (parsers/ip.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <gio/gio.h>

#include "parsers/ip.h"
#include "tests/unit/harness.h"

/* ---- fbl_ip_canonical -------------------------------------------------- */

static const struct {
    const char *in;
    const char *want; /* NULL: not an address */
} canonical_rows[] = {
    {"192.0.2.1", "192.0.2.1"},
    {"  192.0.2.1\t", "192.0.2.1"},
    {"[192.0.2.1]", "192.0.2.1"},
    {"192.0.2.1 (mail.example.com)", "192.0.2.1"},
    {"192.0.2.1(mail.example.com)", "192.0.2.1"},
    {"192.0.2.1.", "192.0.2.1"},
    {"::ffff:192.0.2.1", "192.0.2.1"},
    {"::FFFF:198.51.100.7", "198.51.100.7"},
    {"::ffff:c000:201", "192.0.2.1"},
    {"[::ffff:192.0.2.1]", "192.0.2.1"},
    {"IPv6:2001:DB8::1", "2001:db8::1"},
    {"ipv6:2001:db8::1", "2001:db8::1"},
    {"[IPv6:2001:db8:0:0:0:0:0:25]", "2001:db8::25"},
    {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
    {"2A01:111:F400:7E1B::201", "2a01:111:f400:7e1b::201"},
    {"::1", "::1"},
    {"fe80::1%eth0", "fe80::1"},
    {"::ffff:10.0.0.1 (rdns.example)", "10.0.0.1"},
    /* not addresses */
    {"", NULL},
    {"   ", NULL},
    {"10.1", NULL},
    {"256.1.1.1", NULL},
    {"192.0.2", NULL},
    {"mail.example.com", NULL},
    {"unknown", NULL},
    {"(192.0.2.1)", NULL},
    {"2001:db8::1::2", NULL},
    {"1234567890123456789012345678901234567890123456789012345678901234567890", NULL},
};

static void test_canonical(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(canonical_rows); i++) {
        g_autofree char *got = fbl_ip_canonical(canonical_rows[i].in);
        fbl_test_check_str(canonical_rows[i].in, "canonical", canonical_rows[i].want, got);
    }
    assert_null(fbl_ip_canonical(NULL));
    fbl_test_rows_done();
}

/* Canonical output is a fixed point: canonicalising it again changes nothing. */
static void test_canonical_idempotent(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(canonical_rows); i++) {
        if (canonical_rows[i].want == NULL)
            continue;
        g_autofree char *again = fbl_ip_canonical(canonical_rows[i].want);
        fbl_test_check_str(canonical_rows[i].want, "again", canonical_rows[i].want, again);
    }
    fbl_test_rows_done();
}

/* ---- fbl_ip_is_internal ------------------------------------------------ */

static const struct {
    const char *ip;
    bool internal;
} internal_rows[] = {
    {"10.0.0.1", true},
    {"10.255.255.255", true},
    {"172.16.0.1", true},
    {"172.31.255.255", true},
    {"192.168.1.1", true},
    {"127.0.0.1", true},
    {"127.8.9.10", true},
    {"169.254.10.20", true},
    {"100.64.0.1", true},
    {"100.127.255.255", true},
    {"0.0.0.0", true},
    {"0.1.2.3", true},
    {"224.0.0.1", true},
    {"239.255.255.250", true},
    {"255.255.255.255", true},
    {"::", true},
    {"::1", true},
    {"fe80::1", true},
    {"fc00::1", true},
    {"fd12:3456:789a::1", true},
    {"ff02::1", true},
    {"not-an-ip", true},
    /* public */
    {"8.8.8.8", false},
    {"9.255.255.255", false},
    {"11.0.0.1", false},
    {"172.15.255.255", false},
    {"172.32.0.1", false},
    {"192.167.1.1", false},
    {"100.63.255.255", false},
    {"100.128.0.1", false},
    {"169.253.1.1", false},
    {"203.0.113.50", false},
    {"223.255.255.254", false},
    {"2001:db8::1", false},
    {"2a00:1450:4001:80b::200e", false},
    {"fbff::1", false},
    {"fe00::1", false},
};

static void test_internal(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(internal_rows); i++) {
        bool got = fbl_ip_is_internal(internal_rows[i].ip);
        if (got != internal_rows[i].internal)
            ROW_FAIL("row '%s': want internal=%d, got %d", internal_rows[i].ip,
                     internal_rows[i].internal, got);
    }
    fbl_test_rows_done();
}

/* ---- fbl_netset -------------------------------------------------------- */

static const struct {
    const char *ip;
    bool inside;
} contains_rows[] = {
    {"192.0.2.0", true},
    {"192.0.2.55", true},
    {"192.0.2.255", true},
    {"192.0.3.0", false},
    {"192.0.1.255", false},
    {"198.51.100.7", true}, /* bare address = /32 */
    {"198.51.100.8", false},
    {"198.51.100.6", false},
    {"10.20.30.40", true},
    {"10.20.31.40", false},
    {"2001:db8::1", true},
    {"2001:db8:ffff:ffff::1", true},
    {"2001:db9::1", false},
    {"2001:db7:ffff::1", false},
    {"2a00:1450::1", true}, /* bare IPv6 address */
    {"2a00:1450::2", false},
    {"not-an-ip", false},
    {"", false},
};

static void test_netset_contains(void **state)
{
    (void) state;
    const char *const nets[] = {"192.0.2.0/24",  "198.51.100.7", "10.20.30.0/24",
                                "2001:db8::/32", "2a00:1450::1", NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_netset) set = fbl_netset_new(nets, &error);
    assert_non_null(set);
    assert_null(error);
    for (size_t i = 0; i < G_N_ELEMENTS(contains_rows); i++) {
        bool got = fbl_netset_contains(set, contains_rows[i].ip);
        if (got != contains_rows[i].inside)
            ROW_FAIL("row '%s': want contains=%d, got %d", contains_rows[i].ip,
                     contains_rows[i].inside, got);
    }
    fbl_test_rows_done();
}

/* An IPv4 network never matches an IPv6 address and the other way round. */
static void test_netset_families(void **state)
{
    (void) state;
    const char *const v4_all[] = {"0.0.0.0/0", NULL};
    const char *const v6_all[] = {"::/0", NULL};
    g_autoptr(fbl_netset) v4 = fbl_netset_new(v4_all, NULL);
    g_autoptr(fbl_netset) v6 = fbl_netset_new(v6_all, NULL);
    assert_non_null(v4);
    assert_non_null(v6);
    assert_true(fbl_netset_contains(v4, "203.0.113.1"));
    assert_false(fbl_netset_contains(v4, "2001:db8::1"));
    assert_true(fbl_netset_contains(v6, "2001:db8::1"));
    assert_false(fbl_netset_contains(v6, "203.0.113.1"));
    fbl_test_rows_done();
}

static void test_netset_empty(void **state)
{
    (void) state;
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_netset) none = fbl_netset_new(NULL, &error);
    assert_non_null(none);
    assert_null(error);
    assert_false(fbl_netset_contains(none, "192.0.2.1"));
    const char *const empty[] = {NULL};
    g_autoptr(fbl_netset) empty_set = fbl_netset_new(empty, &error);
    assert_non_null(empty_set);
    assert_false(fbl_netset_contains(empty_set, "127.0.0.1"));
    assert_false(fbl_netset_contains(NULL, "192.0.2.1"));
    fbl_netset_free(NULL);
    fbl_test_rows_done();
}

static const char *const bad_networks[] = {
    "192.0.2.0/33", "2001:db8::/129", "not-a-network", "192.0.2.0/", "/24", "",
    "192.0.2.0/x",  "300.0.0.0/8",
};

static void test_netset_errors(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_networks); i++) {
        /* The bad entry after a good one: the whole set is refused. */
        const char *const nets[] = {"192.0.2.0/24", bad_networks[i], NULL};
        g_autoptr(GError) error = NULL;
        fbl_netset *set = fbl_netset_new(nets, &error);
        if (set != NULL) {
            fbl_netset_free(set);
            ROW_FAIL("row '%s': accepted", bad_networks[i]);
        }
        assert_non_null(error);
        assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
        g_autofree char *quoted = g_strdup_printf("'%s'", bad_networks[i]);
        if (strstr(error->message, quoted) == NULL)
            ROW_FAIL("row '%s': message does not name the entry: %s", bad_networks[i],
                     error->message);
    }
    /* NULL error pointer is allowed */
    const char *const nets[] = {"bogus", NULL};
    assert_null(fbl_netset_new(nets, NULL));
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),       cmocka_unit_test(test_canonical_idempotent),
        cmocka_unit_test(test_internal),        cmocka_unit_test(test_netset_contains),
        cmocka_unit_test(test_netset_families), cmocka_unit_test(test_netset_empty),
        cmocka_unit_test(test_netset_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
