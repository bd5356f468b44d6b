/* test_fbl_fingerprint.c - the campaign fingerprint (parsers/fingerprint.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "parsers/fingerprint.h"
#include "tests/unit/harness.h"

/* "a|b" into a list, NULL for NULL. */
static GPtrArray *split_list(const char *joined)
{
    if (joined == NULL)
        return NULL;
    GPtrArray *list = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) parts = g_strsplit(joined, "|", -1);
    for (size_t i = 0; parts[i] != NULL; i++) {
        if (*parts[i] != '\0')
            g_ptr_array_add(list, g_strdup(parts[i]));
    }
    return list;
}

/* One copy of a message as a recipient got it. */
typedef struct copy {
    const char *subject;
    const char *body;
    const char *to;    /* '|'-separated addr-specs */
    const char *names; /* '|'-separated display names */
} copy;

static char *fingerprint_of(const copy *c)
{
    g_autoptr(GPtrArray) to = split_list(c->to);
    g_autoptr(GPtrArray) names = split_list(c->names);
    return fbl_fingerprint(c->subject, c->body, to, names);
}

static bool is_hex32(const char *s)
{
    return s != NULL && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* ---- pairs ------------------------------------------------------------- */

static const struct {
    const char *name;
    bool same;
    copy a;
    copy b;
} pair_rows[] = {
    {"same spam, different recipients and greetings",
     true,
     {"Great offer for John",
      "Dear John,\nBuy now at http://track.spam.example/c/8f3a?u=123 only today!\n"
      "Unsubscribe: http://u.spam.example/x?id=555\n",
      "john.smith@example.com", "John Smith"},
     {"Great offer for Mary",
      "Dear Mary,\nBuy now at http://click.spam.example/c/zz9?u=777 only today!\n"
      "Unsubscribe: http://u2.spam.example/x?id=999\n",
      "mary@example.org", "Mary Jones"}},
    {"recipient local part in the text",
     true,
     {"Hello", "Hello jdoe, your account jdoe is ready", "jdoe@example.com", NULL},
     {"Hello", "Hello asmith, your account asmith is ready", "asmith@example.net", NULL}},
    {"recipient address in the text",
     true,
     {"Hi", "This was sent to jdoe@example.com by mistake", "jdoe@example.com", NULL},
     {"Hi", "This was sent to asmith@example.net by mistake", "asmith@example.net", NULL}},
    {"tracking tokens in text",
     true,
     {"Your code", "Your code: AB12CD, ref 8f3a9c", NULL, NULL},
     {"Your code", "Your code: ZZ98XY, ref 1b2c3d", NULL, NULL}},
    {"dates, amounts and ids",
     true,
     {"Invoice 4711", "Sent on 2024-01-10 order #12345 total $99.99", NULL, NULL},
     {"Invoice 9812", "Sent on 2024-02-11 order #99881 total $12.50", NULL, NULL}},
    {"reply and forward prefixes",
     true,
     {"Fwd: RE: Cheap meds", "Cheap meds here", NULL, NULL},
     {"Cheap meds", "Cheap meds here", NULL, NULL}},
    {"other prefixes in any case",
     true,
     {"AW: wg: FW: Cheap meds", "x", NULL, NULL},
     {"re: Cheap meds", "x", NULL, NULL}},
    {"quoted lines",
     true,
     {"Offer", "Buy now\n> reporter wrote: this is spam\n  > and more\n", NULL, NULL},
     {"Offer", "Buy now\n", NULL, NULL}},
    {"case, width and punctuation",
     true,
     {"BUY NOW!!!", "\xef\xbc\xa2\xef\xbc\xb5\xef\xbc\xb9   cheap...  watches", NULL, NULL},
     {"buy now", "buy cheap watches", NULL, NULL}},
    {"white space and line breaks",
     true,
     {"Offer", "Buy\n\n   cheap\twatches\r\n", NULL, NULL},
     {"Offer", "Buy cheap watches", NULL, NULL}},
    {"different sender addresses",
     true,
     {"Offer", "Contact sales1@spam-a.example", NULL, NULL},
     {"Offer", "Contact sales2@spam-b.example", NULL, NULL}},
    {"different subdomains of one site",
     true,
     {"Offer", "https://a1.track.spam.example/x?u=1", NULL, NULL},
     {"Offer", "http://www.spam.example/", NULL, NULL}},
    {"different campaigns",
     false,
     {"Cheap watches", "Buy cheap watches today", NULL, NULL},
     {"Cheap pills", "Buy cheap pills today", NULL, NULL}},
    {"different text, same subject",
     false,
     {"Offer", "Buy cheap watches", NULL, NULL},
     {"Offer", "Buy cheap pills", NULL, NULL}},
    {"same text, different subject",
     false,
     {"Watches", "Buy now", NULL, NULL},
     {"Pills", "Buy now", NULL, NULL}},
    {"different sites",
     false,
     {"Offer", "Visit http://a.spam-one.example/x", NULL, NULL},
     {"Offer", "Visit http://a.spam-two.example/x", NULL, NULL}},
    {"subject and body are not one text",
     false,
     {"buy now", "", NULL, NULL},
     {"", "buy now", NULL, NULL}},
    {"names of non-recipients are kept",
     false,
     {"Hello", "Dear John", "mary@example.com", "Mary Jones"},
     {"Hello", "Dear Peter", "mary@example.com", "Mary Jones"}},
    {"word order",
     false,
     {"Offer", "cheap watches buy", NULL, NULL},
     {"Offer", "buy cheap watches", NULL, NULL}},
};

static void test_pairs(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(pair_rows); i++) {
        g_autofree char *a = fingerprint_of(&pair_rows[i].a);
        g_autofree char *b = fingerprint_of(&pair_rows[i].b);
        if (!is_hex32(a) || !is_hex32(b)) {
            ROW_FAIL("row '%s': not 32 hex digits: %s / %s", pair_rows[i].name, a ? a : "NULL",
                     b ? b : "NULL");
            continue;
        }
        bool same = strcmp(a, b) == 0;
        if (same != pair_rows[i].same)
            ROW_FAIL("row '%s': want %s, got %s / %s", pair_rows[i].name,
                     pair_rows[i].same ? "equal" : "different", a, b);
    }
    fbl_test_rows_done();
}

/* The same input gives the same fingerprint, and the formula is the documented one. */
static void test_formula(void **state)
{
    (void) state;
    g_autofree char *fp = fbl_fingerprint("Hello", "World", NULL, NULL);
    g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "v1\nhello\nworld", -1);
    assert_true(is_hex32(fp));
    assert_memory_equal(fp, sha, 32);
    g_autofree char *again = fbl_fingerprint("Hello", "World", NULL, NULL);
    assert_string_equal(fp, again);

    g_autofree char *subject_only = fbl_fingerprint("Hello", NULL, NULL, NULL);
    g_autofree char *sha2 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "v1\nhello\n", -1);
    assert_memory_equal(subject_only, sha2, 32);
    fbl_test_rows_done();
}

/* ---- nothing to hash --------------------------------------------------- */

static const copy nothing_rows[] = {
    {NULL, NULL, NULL, NULL},
    {"", "", NULL, NULL},
    {"   ", " \n\t\r\n ", NULL, NULL},
    {"Re: ", NULL, NULL, NULL},
    {"Fwd: Re:", "> only quoted\n>> lines\n", NULL, NULL},
    {"!!! ---", "... ,,, ;;;", NULL, NULL},
};

static void test_nothing(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(nothing_rows); i++) {
        g_autofree char *fp = fingerprint_of(&nothing_rows[i]);
        if (fp != NULL)
            ROW_FAIL("nothing row %zu ('%s' / '%s'): want NULL, got %s", i,
                     nothing_rows[i].subject ? nothing_rows[i].subject : "NULL",
                     nothing_rows[i].body ? nothing_rows[i].body : "NULL", fp);
    }
    fbl_test_rows_done();
}

/* ---- fbl_fingerprint_normalize ----------------------------------------- */

static const struct {
    const char *in;
    const char *erase; /* '|'-separated */
    const char *want;
} norm_rows[] = {
    {"Visit https://track.Example.com/c/8f3a?u=123 now", NULL, "visit example.com now"},
    {"see www.Shop.Example.co.uk/x", NULL, "see co.uk"},
    {"at http://localhost/x", NULL, "at localhost"},
    {"Mail me at bob@example.com today", NULL, "mail me at @ today"},
    {"Order 12345 costs $99.99 on 2024-01-10", NULL, "order # costs # on #"},
    {"code AB12CD ok", NULL, "code # ok"},
    {"Hello, World!!!", NULL, "hello world"},
    {"(quoted) \"words\" [here] {too} <x>", NULL, "quoted words here too x"},
    {"> quoted\nnot quoted\n   > indented quote", NULL, "not quoted"},
    {"Dear John Smith", "john|smith", "dear"},
    {"Dear Johnny", "john", "dear johnny"},
    {"\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", NULL, "abc"},
    {"Stra\xc3\x9f"
     "e",
     NULL, "strasse"},
    {"caf\xc3\xa9 CAF\xc3\x89", NULL, "caf\xc3\xa9 caf\xc3\xa9"},
    {"", NULL, ""},
};

static void test_normalize(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(norm_rows); i++) {
        g_autoptr(GPtrArray) erase = split_list(norm_rows[i].erase);
        g_autofree char *got = fbl_fingerprint_normalize(norm_rows[i].in, erase);
        if (strcmp(got, norm_rows[i].want) != 0)
            ROW_FAIL("row '%s': want '%s', got '%s'", norm_rows[i].in, norm_rows[i].want, got);
    }
    g_autofree char *null_text = fbl_fingerprint_normalize(NULL, NULL);
    assert_string_equal(null_text, "");
    fbl_test_rows_done();
}

/* Invalid UTF-8 is made valid, not a reason to fail. */
static void test_invalid_utf8(void **state)
{
    (void) state;
    g_autofree char *fp = fbl_fingerprint("\xff\xfe offer", "buy \xc3\x28 now", NULL, NULL);
    assert_true(is_hex32(fp));
    g_autofree char *norm = fbl_fingerprint_normalize("buy \xff now", NULL);
    assert_true(g_utf8_validate(norm, -1, NULL));
    fbl_test_rows_done();
}

/* Text beyond FBL_FINGERPRINT_MAX_TEXT does not change the fingerprint. */
static void test_text_limit(void **state)
{
    (void) state;
    GString *body = g_string_new(NULL);
    while (body->len < FBL_FINGERPRINT_MAX_TEXT)
        g_string_append(body, "buy cheap watches now ");
    g_string_truncate(body, FBL_FINGERPRINT_MAX_TEXT);
    g_autofree char *base = fbl_fingerprint("Offer", body->str, NULL, NULL);
    g_string_append(body, " and something completely different after the limit");
    g_autofree char *longer = fbl_fingerprint("Offer", body->str, NULL, NULL);
    assert_non_null(base);
    assert_string_equal(base, longer);
    g_string_free(body, TRUE);
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs),        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_nothing),      cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_text_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
