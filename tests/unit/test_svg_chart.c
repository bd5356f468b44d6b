/*
 * test_svg_chart.c - fbl/markup.c and fbl/svg_chart.c: hostile text escaped
 * in every context (one row per spelling), a bar per row and a column
 * segment per non-zero value, and the bounds on labels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "fbl/markup.h"
#include "fbl/svg_chart.h"
#include "harness.h"

typedef struct escape_row {
    const char *name;
    const char *in;
    guint max_chars;
    const char *want;
} escape_row;

static const escape_row escape_rows[] = {
    {"plain", "promo.example.org", 0, "promo.example.org"},
    {"script", "<script>alert(1)</script>", 0, "&lt;script&gt;alert(1)&lt;/script&gt;"},
    {"attribute break", "\"><svg onload=x>", 0, "&quot;&gt;&lt;svg onload=x&gt;"},
    {"single quote and amp", "a'b&c", 0, "a&#39;b&amp;c"},
    {"references stay text", "&lt;", 0, "&amp;lt;"},
    {"controls", "a\x1b[31mb\x7f", 0, "a\xef\xbf\xbd[31mb\xef\xbf\xbd"},
    {"invalid UTF-8",
     "a\xff"
     "b",
     0,
     "a\xef\xbf\xbd"
     "b"},
    {"cut", "abcdefgh", 4, "abc\xe2\x80\xa6"},
    {"cut after escaping", "<<<<<<", 3, "&lt;&lt;\xe2\x80\xa6"},
    {"not cut at the limit", "abcd", 4, "abcd"},
};

static void test_escape(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(escape_rows); i++) {
        const escape_row *row = &escape_rows[i];
        g_autoptr(GString) out = g_string_new(NULL);
        fbl_markup_append_escaped(out, row->in, row->max_chars);
        fbl_test_check_str(row->name, "escaped", row->want, out->str);
    }
    fbl_test_rows_done();
}

static guint count(const char *haystack, const char *needle)
{
    guint n = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static const fbl_svg_frame frame = {
    "t",    "Title <b>",          "2026-01-15 10:00 to 11:00 UTC", "desc \"x\"", "reports (count)",
    "host", {"all", "part", NULL}};

typedef struct bars_row {
    const char *name;
    fbl_svg_bar bars[3];
    guint n;
    guint want_s0, want_s1;
} bars_row;

static const bars_row bars_rows[] = {
    {"none", {{NULL, 0, 0, NULL}}, 0, 0, 0},
    {"one bar, no part", {{"a", 5, 0, "5 reporters"}}, 1, 1, 0},
    {"a zero bar is drawn", {{"a", 5, 2, NULL}, {"b", 0, 0, NULL}}, 2, 2, 1},
    {"hostile labels",
     {{"<script>x</script>", 3, 1, "\"><svg onload=y>"}, {"\"onmouseover=z", 1, 0, NULL}},
     2,
     2,
     1},
};

static void test_bars(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(bars_rows); i++) {
        const bars_row *row = &bars_rows[i];
        g_autoptr(GString) out = g_string_new(NULL);
        fbl_svg_bars(out, &frame, row->bars, row->n);
        guint s0 = count(out->str, "data-series=\"0\""), s1 = count(out->str, "data-series=\"1\"");
        if (s0 != row->want_s0 || s1 != row->want_s1)
            ROW_FAIL("%s: %u and %u bars, want %u and %u", row->name, s0, s1, row->want_s0,
                     row->want_s1);
        if (strstr(out->str, "<script") != NULL || strstr(out->str, "<svg onload") != NULL ||
            strstr(out->str, "\"onmouseover") != NULL || strstr(out->str, "Title <b>") != NULL)
            ROW_FAIL("%s: unescaped text in %s", row->name, out->str);
        if (count(out->str, "<svg ") != 1 || count(out->str, "</svg>") != 1 ||
            strstr(out->str, "<title id=\"t-t\">") == NULL)
            ROW_FAIL("%s: not one titled svg", row->name);
    }
    fbl_test_rows_done();
}

static void test_columns(void **state)
{
    (void) state;
    const fbl_svg_column columns[] = {
        {"10:00", {3, 0, 1, 0}},
        {"11:00", {0, 0, 0, 0}},
        {"<b>", {1, 2, 3, 0}},
    };
    g_autoptr(GString) out = g_string_new(NULL);
    fbl_svg_columns(out, &frame, columns, G_N_ELEMENTS(columns), 3);
    assert_int_equal(count(out->str, "class=\"bar "), 5);
    assert_null(strstr(out->str, "<b>"));
}

static void test_spans(void **state)
{
    (void) state;
    const fbl_svg_span spans[] = {
        {"before the axis", 0, 100, NULL},
        {"inside", 1000, 2000, "2 reports"},
    };
    g_autoptr(GString) out = g_string_new(NULL);
    fbl_svg_spans(out, &frame, 500, 3600, spans, G_N_ELEMENTS(spans));
    assert_int_equal(count(out->str, "class=\"bar s0\""), 2);
    /* Clipped to the axis, a span keeps a visible width. */
    assert_null(strstr(out->str, "width=\"-"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_bars),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_spans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
