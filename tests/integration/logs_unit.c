/*
 * logs_unit.c - the log line and the metrics endpoint's roles, no service
 * needed (label unit): fbl/log.c's format (ts, role, pid; rid cut to 12
 * digits), its targets, journald detection by $JOURNAL_STREAM, and
 * fbl/metrics.c publishing only the families of a daemon's own role.
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "fbl/log.h"
#include "fbl/metrics.h"

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    if (!ok)
        print_message("%s\n  does not match %s\n", text, pattern);
    return ok;
}

static void test_line_shape(void **state)
{
    (void) state;
    g_autoptr(GError) error = NULL;
    assert_true(fbl_log_setup("sink", "stderr", NULL, &error));
    const GLogField fields[] = {
        {"GLIB_DOMAIN", "fbl-sink", -1},
        {"RID", "3f2a9c01d7e4aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55", -1},
        {"STAGE", "pg_commit", -1},
        {"MESSAGE", "batch=17 mails=50", -1},
        {"CODE_FILE", "sink_loop.c", -1},
        {"VENDOR", "acme", -1},
    };
    g_autofree char *line = fbl_log_format(G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS(fields), true);
    g_autofree char *want = g_strdup_printf(
        "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z role=sink "
        "pid=%ld rid=3f2a9c01d7e4 stage=pg_commit level=info domain=fbl-sink "
        "msg=\"batch=17 mails=50\" vendor=acme$",
        (long) getpid());
    assert_true(matches(line, want));
    g_autofree char *bare = fbl_log_format(G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS(fields), false);
    assert_true(matches(bare, "^rid=3f2a9c01d7e4 stage=pg_commit level=info domain=fbl-sink "));
}

/* One row per [log] target and file: accepted or not. */
static void test_targets(void **state)
{
    (void) state;
    static const struct {
        const char *target, *file;
        bool ok;
    } rows[] = {
        {NULL, NULL, true},           {"", NULL, true},
        {"auto", NULL, true},         {"auto", "/x.log", true},
        {"stderr", NULL, true},       {"STDERR", NULL, true},
        {"file", "/x.log", true},     {"file", NULL, false},
        {"file", "", false},          {"journal", NULL, true},
        {"journal", "/x.log", false}, {"syslog", NULL, true},
        {"syslog", "/x.log", false},  {"kafka", NULL, false},
        {"stderr", "/x.log", false},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GError) error = NULL;
        bool ok = fbl_log_check_target(rows[i].target, rows[i].file, &error);
        if (ok != rows[i].ok)
            print_message("row %zu: target %s file %s\n", i, rows[i].target, rows[i].file);
        assert_int_equal(ok, rows[i].ok);
        assert_true(ok == (error == NULL));
    }
}

static void test_journal_stream(void **state)
{
    (void) state;
    struct stat st;
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    g_autofree char *mine = g_strdup_printf("%llu:%llu", (unsigned long long) st.st_dev,
                                            (unsigned long long) st.st_ino);
    g_autofree char *other = g_strdup_printf("%llu:%llu", (unsigned long long) st.st_dev,
                                             (unsigned long long) st.st_ino + 1);
    const char *const rows[][2] = {{mine, "1"}, {other, "0"}, {"garbage", "0"}, {"1:2:3", "0"}};
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_setenv("JOURNAL_STREAM", rows[i][0], TRUE);
        assert_int_equal(fbl_log_stderr_is_journal(), rows[i][1][0] == '1');
    }
    g_unsetenv("JOURNAL_STREAM");
    assert_false(fbl_log_stderr_is_journal());
}

/* One row per role: families that must be there, and prefixes that must not. */
static void test_metrics_roles(void **state)
{
    (void) state;
    fbl_metrics_pg_error("sink", true);
    fbl_metrics_pg_error("forward", false);
    fbl_metrics_vendor_sent("acme", 1);
    static const struct {
        unsigned roles;
        const char *want[3];
        const char *never[4];
    } rows[] = {
        {FBL_METRICS_ROLE_WATCH,
         {"# TYPE fbl_watch_mails_total", "# TYPE fbl_build_info", NULL},
         {"fbl_sink_", "fbl_forward_", "fbl_pg_errors_total", "fbl_curve_refused_total"}},
        {FBL_METRICS_ROLE_SINK,
         {"# TYPE fbl_sink_batches_total", "fbl_pg_errors_total{role=\"sink\"", NULL},
         {"fbl_watch_", "fbl_forward_", "role=\"forward\"", NULL}},
        {FBL_METRICS_ROLE_FORWARD,
         {"fbl_forward_reports_sent_total{vendor=\"acme\"} 1",
          "fbl_pg_errors_total{role=\"forward\"", NULL},
         {"fbl_watch_", "fbl_sink_", "role=\"sink\"", "fbl_curve_refused_total"}},
        {FBL_METRICS_ROLE_ALL,
         {"# TYPE fbl_watch_acked_total", "# TYPE fbl_sink_mails_total",
          "# TYPE fbl_forward_outbox_lag_seconds"},
         {NULL, NULL, NULL, NULL}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        fbl_metrics_set_roles(rows[i].roles);
        g_autofree char *text = fbl_metrics_render();
        for (size_t k = 0; k < G_N_ELEMENTS(rows[i].want) && rows[i].want[k] != NULL; k++) {
            if (strstr(text, rows[i].want[k]) == NULL)
                print_message("roles %u: no %s\n", rows[i].roles, rows[i].want[k]);
            assert_non_null(strstr(text, rows[i].want[k]));
        }
        for (size_t k = 0; k < G_N_ELEMENTS(rows[i].never) && rows[i].never[k] != NULL; k++) {
            if (strstr(text, rows[i].never[k]) != NULL)
                print_message("roles %u: %s is there\n", rows[i].roles, rows[i].never[k]);
            assert_null(strstr(text, rows[i].never[k]));
        }
    }
    fbl_metrics_set_roles(FBL_METRICS_ROLE_ALL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_journal_stream),
        cmocka_unit_test(test_metrics_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
