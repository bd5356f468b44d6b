/* test_ops_metrics.c - the Prometheus registry, its text format, each role's families
 * (fbl/metrics.h) */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "fbl/metrics.h"

/* @text holds the line @line, exactly. */
static void assert_line(const char *text, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", line);
    g_autofree char *haystack = g_strdup_printf("\n%s", text);
    if (strstr(haystack, needle) == NULL)
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_listen_addresses(void **state)
{
    (void) state;
    static const struct {
        const char *listen;
        bool ok;
    } rows[] = {
        {"127.0.0.1:9771", true},
        {"0.0.0.0:0", true},
        {"[::1]:9771", true},
        {"::1:9771", true},
        {"localhost:9771", false},
        {"127.0.0.1", false},
        {":9771", false},
        {"127.0.0.1:", false},
        {"127.0.0.1:65536", false},
        {"127.0.0.1:http", false},
        {"", false},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GError) error = NULL;
        bool ok = fbl_metrics_parse_listen(rows[i].listen, NULL, &error);
        if (ok != rows[i].ok)
            fail_msg("'%s': %s", rows[i].listen, ok ? "accepted" : error->message);
        if (!ok)
            assert_true(g_error_matches(error, FBL_METRICS_ERROR, FBL_METRICS_ERROR_ADDRESS));
    }
}

static fbl_report *report(fbl_format format, fbl_feedback_type type)
{
    fbl_report *r = fbl_report_new();
    r->format = format;
    r->feedback_type = type;
    return r;
}

static void test_watch_counts_and_escaping(void **state)
{
    (void) state;
    fbl_parse_result *two = fbl_parse_result_new("aa");
    g_ptr_array_add(two->reports, report(FBL_FORMAT_ATTACHMENT, FBL_FEEDBACK_ABUSE));
    g_ptr_array_add(two->reports, report(FBL_FORMAT_ARF, FBL_FEEDBACK_NOT_SPAM));
    fbl_metrics_watch_mail("box \"1\"\\x\n", two);
    fbl_metrics_watch_mail("box \"1\"\\x\n", two);
    fbl_parse_result_free(two);
    g_autofree char *text = fbl_metrics_render();
    /* Label values escape \, " and newline; the mail counts by its first report. */
    assert_line(text,
                "fbl_watch_mails_total{mailbox=\"box \\\"1\\\"\\\\x\\n\",format=\"attachment\","
                "feedback_type=\"abuse\"} 2");
    assert_line(text, "fbl_watch_reports_total{mailbox=\"box \\\"1\\\"\\\\x\\n\",format=\"arf\","
                      "feedback_type=\"not-spam\"} 2");
    assert_line(text, "# TYPE fbl_watch_mails_total counter");
    assert_line(text, "fbl_watch_acked_total 0");
    assert_line(text, "fbl_pg_errors_total{role=\"sink\",kind=\"transient\"} 0");
}

static void test_histograms_are_cumulative(void **state)
{
    (void) state;
    fbl_metrics_sink_batch(3, 2, 1000, 0.004);
    fbl_metrics_sink_batch(120, 100, 2000000, 0.3);
    fbl_metrics_sink_batch(120, 100, 2000000, 30);
    g_autofree char *text = fbl_metrics_render();
    assert_line(text, "# TYPE fbl_sink_batch_mails histogram");
    assert_line(text, "fbl_sink_batch_mails_bucket{le=\"1\"} 0");
    assert_line(text, "fbl_sink_batch_mails_bucket{le=\"5\"} 1");
    assert_line(text, "fbl_sink_batch_mails_bucket{le=\"100\"} 1");
    assert_line(text, "fbl_sink_batch_mails_bucket{le=\"250\"} 3");
    assert_line(text, "fbl_sink_batch_mails_bucket{le=\"+Inf\"} 3");
    assert_line(text, "fbl_sink_batch_mails_sum 243");
    assert_line(text, "fbl_sink_batch_mails_count 3");
    assert_line(text, "fbl_sink_batch_duration_seconds_bucket{le=\"0.005\"} 1");
    assert_line(text, "fbl_sink_batch_duration_seconds_bucket{le=\"10\"} 2");
    assert_line(text, "fbl_sink_batch_duration_seconds_bucket{le=\"+Inf\"} 3");
    assert_line(text, "fbl_sink_batch_duration_seconds_sum 30.304");
    assert_line(text, "fbl_sink_batch_bytes_bucket{le=\"1048576\"} 1");
    assert_line(text, "fbl_sink_batches_total 3");
    assert_line(text, "fbl_sink_mails_total 243");
}

static void test_forwarder_hooks(void **state)
{
    (void) state;
    fbl_metrics_vendor_response("acme", 200);
    fbl_metrics_vendor_response("acme", 429);
    fbl_metrics_vendor_response("acme", 0);
    fbl_metrics_vendor_sent("acme", 7);
    fbl_metrics_outbox("acme", 12, 1, 2.5);
    fbl_metrics_outbox("acme", 3, 1, 0);
    fbl_metrics_pg_error("forward", false);
    g_autofree char *text = fbl_metrics_render();
    assert_line(text, "fbl_forward_responses_total{vendor=\"acme\",status=\"200\"} 1");
    assert_line(text, "fbl_forward_responses_total{vendor=\"acme\",status=\"429\"} 1");
    assert_line(text, "fbl_forward_responses_total{vendor=\"acme\",status=\"none\"} 1");
    assert_line(text, "fbl_forward_reports_sent_total{vendor=\"acme\"} 7");
    assert_line(text,
                "fbl_forward_outbox_pending{vendor=\"acme\"} 3"); /* a gauge: the last value */
    assert_line(text, "fbl_forward_outbox_lag_seconds{vendor=\"acme\"} 0");
    assert_line(text, "fbl_pg_errors_total{role=\"forward\",kind=\"permanent\"} 1");
}

/*
 * One row per role: families that must be there, and prefixes that must not.
 * Runs last: it counts errors of its own and leaves every role on.
 */
static void test_roles(void **state)
{
    (void) state;
    fbl_metrics_pg_error("sink", true);
    fbl_metrics_pg_error("forward", false);
    fbl_metrics_vendor_sent("roles", 1);
    fbl_metrics_blocklist_listed("ip", 2);
    static const struct {
        unsigned roles;
        const char *want[3];
        const char *never[5];
    } rows[] = {
        {FBL_METRICS_ROLE_WATCH,
         {"# TYPE fbl_watch_mails_total", "# TYPE fbl_build_info", NULL},
         {"fbl_sink_", "fbl_forward_", "fbl_pg_errors_total", "fbl_curve_refused_total",
          "fbl_blocklist_"}},
        {FBL_METRICS_ROLE_SINK,
         {"# TYPE fbl_sink_batches_total", "fbl_pg_errors_total{role=\"sink\"",
          "fbl_blocklist_listed{kind=\"ip\"} 2"},
         {"fbl_watch_", "fbl_forward_", "role=\"forward\"", NULL, NULL}},
        {FBL_METRICS_ROLE_FORWARD,
         {"fbl_forward_reports_sent_total{vendor=\"roles\"} 1",
          "fbl_pg_errors_total{role=\"forward\"", NULL},
         {"fbl_watch_", "fbl_sink_", "role=\"sink\"", "fbl_curve_refused_total", "fbl_blocklist_"}},
        {FBL_METRICS_ROLE_ALL,
         {"# TYPE fbl_watch_acked_total", "# TYPE fbl_sink_mails_total",
          "# TYPE fbl_forward_outbox_lag_seconds"},
         {NULL, NULL, NULL, NULL, NULL}},
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
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_watch_counts_and_escaping),
        cmocka_unit_test(test_histograms_are_cumulative),
        cmocka_unit_test(test_forwarder_hooks),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
