/* test_fbl_urls.c - links in text and HTML, normalization (parsers/urls.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "parsers/parse.h"
#include "parsers/urls.h"
#include "tests/unit/harness.h"

/* One scan into fresh lists. */
typedef struct scan {
    GPtrArray *urls;
    GPtrArray *hosts;
    fbl_urls u;
} scan;

static void scan_init(scan *s)
{
    s->urls = g_ptr_array_new_with_free_func(g_free);
    s->hosts = g_ptr_array_new_with_free_func(g_free);
    fbl_urls_init(&s->u, s->urls, s->hosts);
}

static void scan_clear(scan *s)
{
    g_ptr_array_unref(s->urls);
    g_ptr_array_unref(s->hosts);
}

typedef struct url_row {
    const char *in;
    const char *urls;  /* space-separated, "" for none */
    const char *hosts; /* space-separated */
    bool obfuscated;
} url_row;

static void check_scan(const url_row *row, scan *s)
{
    g_autofree char *urls = fbl_test_join(s->urls, " ");
    g_autofree char *hosts = fbl_test_join(s->hosts, " ");
    fbl_test_check_str(row->in, "urls", row->urls, urls);
    fbl_test_check_str(row->in, "hosts", row->hosts, hosts);
    if (s->u.obfuscated != row->obfuscated)
        ROW_FAIL("row '%s': obfuscated: want %d", row->in, row->obfuscated);
    if (s->u.truncated)
        ROW_FAIL("row '%s': truncated", row->in);
}

/* ---- text -------------------------------------------------------------- */

static const url_row text_rows[] = {
    {"Visit http://Example.COM/Path?q=1.", "http://example.com/Path?q=1", "example.com", false},
    {"(see https://example.com/a),", "https://example.com/a", "example.com", false},
    {"[https://example.com/b]", "https://example.com/b", "example.com", false},
    {"Go to www.example.org/offer!", "http://www.example.org/offer", "www.example.org", false},
    {"www.example.org", "http://www.example.org/", "www.example.org", false},
    {"<http://example.net/x>", "http://example.net/x", "example.net", false},
    {"\"http://example.net/q\"", "http://example.net/q", "example.net", false},
    {"link:http://example.net/y;", "http://example.net/y", "example.net", false},
    {"http://example.com", "http://example.com/", "example.com", false},
    {"http://example.com.", "http://example.com/", "example.com", false},
    {"http://example.com./x", "http://example.com/x", "example.com", false},
    {"HTTP://EXAMPLE.COM/A", "http://example.com/A", "example.com", false},
    {"http://example.com:80/a https://example.com:443/b http://example.com:8080/c",
     "http://example.com/a https://example.com/b http://example.com:8080/c", "example.com", false},
    {"http://example.com/page#top http://example.com/#",
     "http://example.com/page http://example.com/", "example.com", false},
    {"http://a.example/ http://A.EXAMPLE/ http://a.example", "http://a.example/", "a.example",
     false},
    {"one http://a.example/1 two https://b.example/2 three http://a.example/3",
     "http://a.example/1 https://b.example/2 http://a.example/3", "a.example b.example", false},
    {"ftp://files.example.com/pub/x.zip", "ftp://files.example.com/pub/x.zip", "files.example.com",
     false},
    {"line one\nhttp://example.com/x\nline three", "http://example.com/x", "example.com", false},
    {"http://example.com/a\"b", "http://example.com/a", "example.com", false},
    {"http://example.com/a<b>", "http://example.com/a", "example.com", false},
    {"awww.example.com and xwww.example.com", "", "", false},
    {"mailto:x@example.com javascript:alert(1) data:text/html,hi", "", "", false},
    {"http:// and https:// alone", "", "", false},
    {"plain text without links", "", "", false},
    {"hxxp://evil.example/x", "", "", true},
    {"HXXPS://evil.example/x", "", "", true},
    {"go to evil[.]example now", "", "", true},
    {"evil(.)example", "", "", true},
    {"evil[dot]example", "", "", true},
    {"hxxp://evil.example/ and http://good.example/", "http://good.example/", "good.example", true},
};

static void test_text(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(text_rows); i++) {
        scan s;
        scan_init(&s);
        fbl_urls_scan_text(&s.u, text_rows[i].in, strlen(text_rows[i].in));
        check_scan(&text_rows[i], &s);
        scan_clear(&s);
    }
    fbl_test_rows_done();
}

/* @len bounds the scan: a link cut by it ends there, nothing after it is read. */
static void test_text_length(void **state)
{
    (void) state;
    static const char text[] = "http://a.example/x http://b.example/y";
    scan s;
    scan_init(&s);
    fbl_urls_scan_text(&s.u, text, strlen("http://a.example/x"));
    g_autofree char *got = fbl_test_join(s.urls, " ");
    fbl_test_check_str("len", "urls", "http://a.example/x", got);
    fbl_urls_scan_text(&s.u, text, 0);
    assert_int_equal(s.urls->len, 1);
    scan_clear(&s);
    fbl_test_rows_done();
}

/* Results accumulate over scans of several bodies, still unique. */
static void test_text_accumulates(void **state)
{
    (void) state;
    scan s;
    scan_init(&s);
    const char *a = "http://a.example/1 http://b.example/";
    const char *b = "http://A.example/1 http://c.example/";
    fbl_urls_scan_text(&s.u, a, strlen(a));
    fbl_urls_scan_text(&s.u, b, strlen(b));
    g_autofree char *urls = fbl_test_join(s.urls, " ");
    g_autofree char *hosts = fbl_test_join(s.hosts, " ");
    fbl_test_check_str("accumulate", "urls",
                       "http://a.example/1 http://b.example/ http://c.example/", urls);
    fbl_test_check_str("accumulate", "hosts", "a.example b.example c.example", hosts);
    scan_clear(&s);
    fbl_test_rows_done();
}

static void test_text_limits(void **state)
{
    (void) state;
    /* more than FBL_URLS_MAX distinct links: the first FBL_URLS_MAX, truncated set */
    GString *text = g_string_new(NULL);
    for (int i = 0; i < FBL_URLS_MAX + 50; i++)
        g_string_append_printf(text, "http://h%d.example/p ", i);
    scan s;
    scan_init(&s);
    fbl_urls_scan_text(&s.u, text->str, text->len);
    assert_int_equal(s.urls->len, FBL_URLS_MAX);
    assert_true(s.u.truncated);
    fbl_test_check_str("limit", "first", "http://h0.example/p", g_ptr_array_index(s.urls, 0));
    scan_clear(&s);

    /* exactly FBL_URLS_MAX: all kept, not truncated */
    g_string_truncate(text, 0);
    for (int i = 0; i < FBL_URLS_MAX; i++)
        g_string_append_printf(text, "http://h%d.example/p ", i);
    scan_init(&s);
    fbl_urls_scan_text(&s.u, text->str, text->len);
    assert_int_equal(s.urls->len, FBL_URLS_MAX);
    assert_false(s.u.truncated);
    scan_clear(&s);

    /* a link longer than FBL_URLS_MAX_LEN is dropped, the next one is kept */
    g_string_assign(text, "http://long.example/");
    for (int i = 0; i < FBL_URLS_MAX_LEN; i++)
        g_string_append_c(text, 'a');
    g_string_append(text, " http://short.example/");
    scan_init(&s);
    fbl_urls_scan_text(&s.u, text->str, text->len);
    g_autofree char *got = fbl_test_join(s.urls, " ");
    fbl_test_check_str("too long", "urls", "http://short.example/", got);
    scan_clear(&s);
    g_string_free(text, TRUE);
    fbl_test_rows_done();
}

/* ---- HTML -------------------------------------------------------------- */

typedef struct html_row {
    url_row r;
    const char *text_has;   /* visible text must contain this, or NULL */
    const char *text_lacks; /* and must not contain this, or NULL */
} html_row;

static const html_row html_rows[] = {
    {{"<a href=\"HTTP://Click.Example.com/track?id=1#x\">Click</a>"
      "<img src=\"https://img.example.net/p.gif\">"
      "<form action=\"https://form.example.org/post\"></form>",
      "http://click.example.com/track?id=1 https://img.example.net/p.gif "
      "https://form.example.org/post",
      "click.example.com img.example.net form.example.org", false},
     "Click",
     NULL},
    {{"<html><head><script>var u=\"http://script.example/\";</script>"
      "<style>body{background:url(http://style.example/bg.png)}</style></head>"
      "<body><p>Visit http://text.example/offer now</p></body></html>",
      "http://text.example/offer", "text.example", false},
     "Visit",
     "script.example"},
    {{"<p>Hello <b>World</b></p><!-- http://comment.example/ -->", "", "", false},
     "World",
     "comment.example"},
    {{"<a href=\"javascript:void(0)\">x</a><a href=\"mailto:a@b.example\">m</a>"
      "<a href=\"/relative/path\">r</a><a href=\"#top\">t</a>",
      "", "", false},
     NULL,
     NULL},
    {{"<a href=\"hxxp://bad.example/\">x</a>", "", "", true}, NULL, NULL},
    {{"<p>hxxp://bad.example/x</p>", "", "", true}, NULL, NULL},
    {{"<a href=http://unquoted.example/x>x", "http://unquoted.example/x", "unquoted.example",
      false},
     NULL,
     NULL},
    {{"<a href=\"http://example.com/?a=1&amp;b=2\">e</a>", "http://example.com/?a=1&b=2",
      "example.com", false},
     NULL,
     NULL},
    {{"<A HREF=\"  https://UPPER.example/Up  \">u</A>", "https://upper.example/Up", "upper.example",
      false},
     NULL,
     NULL},
    {{"<a href=\"http://same.example/\">1</a> <p>http://same.example/</p>", "http://same.example/",
      "same.example", false},
     NULL,
     NULL},
    {{"<div><div><div><a href=\"http://deep.example/\">d</a></div></div></div>"
      "<a href=\"https://www.example.org\">w</a> see www.text.example/x",
      "http://deep.example/ https://www.example.org/ http://www.text.example/x",
      "deep.example www.example.org www.text.example", false},
     NULL,
     NULL},
    {{"<<<>>> <a href=", "", "", false}, NULL, NULL},
    /* Links abuse desks need that carry no scheme: a tracking pixel on an image host,
     * protocol-relative sources, a host written as the href; relative paths are not. */
    {{"<img src=\"//pixel.tracker.example/o.gif?u=1\" width=1>"
      "<a href=\"shop.spam.example/deal\">deal</a>"
      "<img src=\"img/logo.png\"><a href=\"index.html\">i</a><a href=\"page.php?x=1\">p</a>",
      "http://pixel.tracker.example/o.gif?u=1 http://shop.spam.example/deal",
      "pixel.tracker.example shop.spam.example", false},
     NULL,
     NULL},
};

static void test_html(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(html_rows); i++) {
        const html_row *row = &html_rows[i];
        scan s;
        scan_init(&s);
        GString *text = g_string_new(NULL);
        fbl_urls_scan_html(&s.u, row->r.in, strlen(row->r.in), text);
        check_scan(&row->r, &s);
        if (row->text_has != NULL && strstr(text->str, row->text_has) == NULL)
            ROW_FAIL("row '%s': visible text lacks '%s': '%s'", row->r.in, row->text_has,
                     text->str);
        if (row->text_lacks != NULL && strstr(text->str, row->text_lacks) != NULL)
            ROW_FAIL("row '%s': visible text has '%s': '%s'", row->r.in, row->text_lacks,
                     text->str);
        g_string_free(text, TRUE);
        scan_clear(&s);

        /* text_out is optional and does not change the links found */
        scan_init(&s);
        fbl_urls_scan_html(&s.u, row->r.in, strlen(row->r.in), NULL);
        check_scan(&row->r, &s);
        scan_clear(&s);
    }
    fbl_test_rows_done();
}

/* Visible text keeps words apart and skips script and style. */
static void test_html_text(void **state)
{
    (void) state;
    static const char html[] = "<html><head><title>Offer</title><style>p{color:red}</style>"
                               "</head><body><p>Buy</p><p>now</p>"
                               "<script>document.write('hidden')</script></body></html>";
    scan s;
    scan_init(&s);
    GString *text = g_string_new("before ");
    fbl_urls_scan_html(&s.u, html, strlen(html), text);
    /* appended, not replaced */
    assert_true(g_str_has_prefix(text->str, "before "));
    assert_non_null(strstr(text->str, "Buy"));
    assert_non_null(strstr(text->str, "now"));
    assert_null(strstr(text->str, "Buynow"));
    assert_null(strstr(text->str, "color"));
    assert_null(strstr(text->str, "hidden"));
    g_string_free(text, TRUE);
    scan_clear(&s);

    scan_init(&s);
    text = g_string_new(NULL);
    fbl_urls_scan_html(&s.u, "", 0, text);
    assert_int_equal(s.urls->len, 0);
    assert_int_equal(text->len, 0);
    g_string_free(text, TRUE);
    scan_clear(&s);
    fbl_test_rows_done();
}

/* HTML beyond FBL_URLS_MAX_HTML is not read. */
static void test_html_limit(void **state)
{
    (void) state;
    GString *html = g_string_new("<p><a href=\"http://early.example/\">e</a>");
    while (html->len < FBL_URLS_MAX_HTML)
        g_string_append(html, "<p>filler filler filler filler filler filler</p>\n");
    g_string_append(html, "<a href=\"http://late.example/\">l</a></p>");
    scan s;
    scan_init(&s);
    fbl_urls_scan_html(&s.u, html->str, html->len, NULL);
    g_autofree char *got = fbl_test_join(s.urls, " ");
    fbl_test_check_str("html limit", "urls", "http://early.example/", got);
    scan_clear(&s);
    g_string_free(html, TRUE);
    fbl_test_rows_done();
}

/* ---- fbl_url_normalize ------------------------------------------------- */

static const struct {
    const char *in;
    const char *want;
    const char *host;
} norm_rows[] = {
    {"HTTP://WWW.Example.COM:80/", "http://www.example.com/", "www.example.com"},
    {"https://example.com:443", "https://example.com/", "example.com"},
    {"https://example.com:8443/x", "https://example.com:8443/x", "example.com"},
    {"http://example.com:443/", "http://example.com:443/", "example.com"},
    {"http://example.com/a?b=c#d", "http://example.com/a?b=c", "example.com"},
    {"http://example.com#d", "http://example.com/", "example.com"},
    {"http://Example.com/Path/Keeps/Case?Q=V", "http://example.com/Path/Keeps/Case?Q=V",
     "example.com"},
    {"http://example.com/%7Euser/a%20b", "http://example.com/~user/a%20b", "example.com"},
    {"http://example.com./", "http://example.com/", "example.com"},
    {"http://192.0.2.1/x", "http://192.0.2.1/x", "192.0.2.1"},
    {"http://[2001:DB8::1]/x", "http://[2001:db8::1]/x", "2001:db8::1"},
    {"ftp://ftp.example.com/file", "ftp://ftp.example.com/file", "ftp.example.com"},
    {"not a url", NULL, NULL},
    {"http:///path-only", NULL, NULL},
    {"mailto:a@b.example", NULL, NULL},
    {"", NULL, NULL},
    {"http://exa mple.com/", NULL, NULL},
    {"http://\xff\xfe/", NULL, NULL},
    /* Fuzzer findings: a path without its leading slash (GUri refuses to build it),
     * and an escaped slash that would put a path into the host. */
    {"http://host.example;x", NULL, NULL},
    {"http://a.example%2fx/", NULL, NULL},
    /* A host spelt with escapes is the host it spells. */
    {"http://%65xample.com/x", "http://example.com/x", "example.com"},
    {"http://user@host.example/", "http://user@host.example/", "host.example"},
};

static void test_normalize(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(norm_rows); i++) {
        char *host = (char *) "unset";
        g_autofree char *got = fbl_url_normalize(norm_rows[i].in, &host);
        fbl_test_check_str(norm_rows[i].in, "url", norm_rows[i].want, got);
        fbl_test_check_str(norm_rows[i].in, "host", norm_rows[i].host, host);
        g_free(host);
        /* the host is optional; normalizing twice changes nothing */
        g_autofree char *alone = fbl_url_normalize(norm_rows[i].in, NULL);
        fbl_test_check_str(norm_rows[i].in, "url without host", norm_rows[i].want, alone);
        if (got != NULL) {
            g_autofree char *twice = fbl_url_normalize(got, NULL);
            fbl_test_check_str(norm_rows[i].in, "normalized twice", got, twice);
        }
    }
    char *host = (char *) "unset";
    assert_null(fbl_url_normalize(NULL, &host));
    assert_null(host);
    g_autofree char *longer = g_strdup_printf("http://example.com/%0*d", FBL_URLS_MAX_LEN, 0);
    assert_null(fbl_url_normalize(longer, NULL));
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_text_length),
        cmocka_unit_test(test_text_accumulates),
        cmocka_unit_test(test_text_limits),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_html_text),
        cmocka_unit_test(test_html_limit),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_parsers, fbl_test_teardown_parsers);
}
