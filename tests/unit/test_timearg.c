/* test_timearg.c - fbl_time_arg_parse(): the --since/--until forms of fbl reparse and fbl report */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fbl/timearg.h"

#define NOW G_GINT64_CONSTANT(1767225600) /* 2026-01-01T00:00:00Z */

static void test_accepted(void **state)
{
    (void) state;
    static const struct {
        const char *text;
        gint64 want;
    } rows[] = {
        {"1767225600", NOW},
        {"2026-01-01", NOW},
        {"2026-01-01T00:00:00Z", NOW},
        {"2026-01-01T01:00:00", NOW + 3600}, /* no zone: UTC */
        {"2026-01-01T02:00:00+01:00", NOW + 3600},
        {"90s", NOW - 90},
        {"30m", NOW - 1800},
        {"24h", NOW - 86400},
        {"7d", NOW - (gint64) 7 * 86400},
        {"2w", NOW - (gint64) 14 * 86400},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        gint64 got = -1;
        if (!fbl_time_arg_parse(rows[i].text, NOW, &got))
            fail_msg("'%s' refused", rows[i].text);
        if (got != rows[i].want)
            fail_msg("'%s': %" G_GINT64_FORMAT ", want %" G_GINT64_FORMAT, rows[i].text, got,
                     rows[i].want);
    }
}

static void test_refused(void **state)
{
    (void) state;
    static const char *const rows[] = {
        "",
        "yesterday",
        "h",
        "5x",
        "-5d",
        "1.5h",
        "1900-01-01",            /* before 1970 */
        "100000w",               /* so long ago it is before 1970 */
        "99999999999999999999d", /* overflows */
        "2026-13-01",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        gint64 got = 0;
        if (fbl_time_arg_parse(rows[i], NOW, &got))
            fail_msg("'%s' accepted as %" G_GINT64_FORMAT, rows[i], got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
