/* report_format.c - how `fbl report` writes numbers for people (see report_format.h) */
#include "fbl/report_format.h"

#include <string.h>

char *fbl_report_format_count(const char *digits)
{
    size_t len = strlen(digits), start = digits[0] == '-' ? 1 : 0;
    for (size_t i = start; i < len; i++) {
        if (!g_ascii_isdigit(digits[i]))
            return g_strdup(digits);
    }
    GString *out = g_string_new(NULL);
    g_string_append_len(out, digits, (gssize) start);
    for (size_t i = start; i < len; i++) {
        if (i > start && (len - i) % 3 == 0)
            g_string_append_c(out, ',');
        g_string_append_c(out, digits[i]);
    }
    return g_string_free(out, FALSE);
}

char *fbl_report_format_int(gint64 n)
{
    char digits[24];
    (void) g_snprintf(digits, sizeof digits, "%" G_GINT64_FORMAT, n);
    return fbl_report_format_count(digits);
}

char *fbl_report_format_seconds(gint64 s)
{
    if (s < 60)
        return g_strdup_printf("%" G_GINT64_FORMAT "s", s);
    if (s < 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT "m %02" G_GINT64_FORMAT "s", s / 60, s % 60);
    if (s < 86400)
        return g_strdup_printf("%" G_GINT64_FORMAT "h %02" G_GINT64_FORMAT "m", s / 3600,
                               s % 3600 / 60);
    return g_strdup_printf("%" G_GINT64_FORMAT "d %" G_GINT64_FORMAT "h", s / 86400,
                           s % 86400 / 3600);
}

char *fbl_report_format_value(fbl_report_kind kind, const char *v)
{
    if (v == NULL)
        return g_strdup("-");
    switch (kind) {
    case FBL_REPORT_INT:
        return fbl_report_format_count(v);
    case FBL_REPORT_SHARE:
        return g_strdup_printf("%.1f%%", g_ascii_strtod(v, NULL) * 100.0);
    case FBL_REPORT_TIME: /* 2026-01-15T10:00:00Z -> 2026-01-15 10:00 */
        return strlen(v) >= 16 ? g_strdup_printf("%.10s %.5s", v, v + 11) : g_strdup(v);
    case FBL_REPORT_SECONDS:
        return fbl_report_format_seconds(g_ascii_strtoll(v, NULL, 10));
    case FBL_REPORT_BYTES:
        return g_format_size(g_ascii_strtoull(v, NULL, 10));
    case FBL_REPORT_TEXT:
        break;
    }
    return g_strdup(v);
}
