/* timearg.c - points in time given on the command line (see timearg.h) */
#include "fbl/timearg.h"

#include <string.h>

bool fbl_time_arg_parse(const char *text, gint64 now, gint64 *out)
{
    guint64 n;
    if (g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &n, NULL)) {
        *out = (gint64) n;
        return true;
    }
    static const struct {
        char unit;
        gint64 seconds;
    } units[] = {
        {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', G_GINT64_CONSTANT(7) * 86400}};
    size_t len = strlen(text);
    for (size_t i = 0; len > 1 && i < G_N_ELEMENTS(units); i++) {
        if (text[len - 1] != units[i].unit)
            continue;
        g_autofree char *digits = g_strndup(text, len - 1);
        if (!g_ascii_string_to_unsigned(digits, 10, 0, G_MAXINT64 / units[i].seconds, &n, NULL))
            return false;
        *out = now - (gint64) n * units[i].seconds;
        return *out > 0;
    }
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autofree char *full = len == 10 ? g_strconcat(text, "T00:00:00Z", NULL) : g_strdup(text);
    g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(full, utc);
    if (dt == NULL)
        return false;
    *out = g_date_time_to_unix(dt);
    return *out > 0;
}
