/*
 * test_log.c - fbl/log.c without a service: the line's shape (ts, role, pid;
 * rid cut to 12 digits), level names both ways, how values are quoted and
 * escaped, the domain of an event about a mail, the [log] targets, and
 * journald detection by $JOURNAL_STREAM.
 */
#define G_LOG_DOMAIN "fbl-logtest"
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
#include "tests/unit/harness.h"

#define MAIL_ID "3f2a9c01d7e4aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55"

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
        {"GLIB_DOMAIN", "fbl-sink", -1},  {"RID", MAIL_ID, -1},
        {"STAGE", "pg_commit", -1},       {"MESSAGE", "batch=17 mails=50", -1},
        {"CODE_FILE", "sink_loop.c", -1}, {"VENDOR", "acme", -1},
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

/* Each GLib level's name in level=, and the names [log] level takes. */
static void test_level_names(void **state)
{
    (void) state;
    static const struct {
        GLogLevelFlags level;
        const char *name;
    } to_rows[] = {
        {G_LOG_LEVEL_ERROR, "error"},     {G_LOG_LEVEL_CRITICAL, "critical"},
        {G_LOG_LEVEL_WARNING, "warning"}, {G_LOG_LEVEL_MESSAGE, "notice"},
        {G_LOG_LEVEL_INFO, "info"},       {G_LOG_LEVEL_DEBUG, "debug"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(to_rows); i++) {
        const char *got = fbl_log_level_to_string(to_rows[i].level);
        fbl_test_check_str(to_rows[i].name, "to_string", to_rows[i].name, got);
        const GLogField fields[] = {{"MESSAGE", "x", -1}};
        g_autofree char *line = fbl_log_format(to_rows[i].level, fields, 1, false);
        g_autofree char *want = g_strdup_printf("level=%s domain=fbl msg=x", to_rows[i].name);
        fbl_test_check_str(to_rows[i].name, "line", want, line);
    }
    static const struct {
        const char *name;
        bool ok;
        GLogLevelFlags level;
    } from_rows[] = {
        {"debug", true, G_LOG_LEVEL_DEBUG},
        {"info", true, G_LOG_LEVEL_INFO},
        {"notice", true, G_LOG_LEVEL_MESSAGE},
        {"message", true, G_LOG_LEVEL_MESSAGE},
        {"warning", true, G_LOG_LEVEL_WARNING},
        {"error", true, G_LOG_LEVEL_CRITICAL},
        {"critical", true, G_LOG_LEVEL_CRITICAL},
        {"DeBuG", true, G_LOG_LEVEL_DEBUG},
        {"verbose", false, 0},
        {"", false, 0},
        {"warn", false, 0},
        {"info ", false, 0},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(from_rows); i++) {
        GLogLevelFlags level = 0;
        bool ok = fbl_log_level_from_string(from_rows[i].name, &level);
        if (ok != from_rows[i].ok || (ok && level != from_rows[i].level))
            ROW_FAIL("row '%s': want %s %d, got %s %d", from_rows[i].name,
                     from_rows[i].ok ? "ok" : "refused", from_rows[i].level, ok ? "ok" : "refused",
                     level);
    }
    fbl_test_rows_done();
}

/* Values: quoted when they hold a blank, '"' or '=', or are empty; escaped always. */
static void test_quoting(void **state)
{
    (void) state;
    static const struct {
        const char *name;
        const char *value;
        gssize length;     /* -1: a string; else the bytes of a binary field */
        const char *msg;   /* what follows msg= (MESSAGE is always a string) */
        const char *field; /* what follows f= */
    } rows[] = {
        {"plain", "plain", -1, "plain", "plain"},
        {"blank", "two words", -1, "\"two words\"", "\"two words\""},
        {"empty", "", -1, "\"\"", "\"\""},
        {"equals", "a=b", -1, "\"a=b\"", "\"a=b\""},
        {"quote", "say \"hi\"", -1, "\"say \\\"hi\\\"\"", "\"say \\\"hi\\\"\""},
        {"backslash", "back\\slash", -1, "back\\\\slash", "back\\\\slash"},
        {"newline", "line\nbreak", -1, "line\\nbreak", "line\\nbreak"},
        {"tab", "tab\there", -1, "tab\\x09here", "tab\\x09here"},
        {"escape and delete", "\x1b[31m\x7f", -1, "\\x1b[31m\\x7f", "\\x1b[31m\\x7f"},
        {"utf-8", "caf\xc3\xa9", -1, "caf\xc3\xa9", "caf\xc3\xa9"},
        {"binary with NUL", "a b\0c", 5, "\"a b\"", "\"a b\\x00c\""},
        {"binary cut", "abcdef", 3, "abcdef", "abc"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const GLogField fields[] = {
            {"MESSAGE", rows[i].value, -1},
            {"F", rows[i].value, rows[i].length},
        };
        g_autofree char *line =
            fbl_log_format(G_LOG_LEVEL_WARNING, fields, G_N_ELEMENTS(fields), false);
        g_autofree char *want =
            g_strdup_printf("level=warning domain=fbl msg=%s f=%s", rows[i].msg, rows[i].field);
        fbl_test_check_str(rows[i].name, "line", want, line);
    }
    fbl_test_rows_done();
}

/* The fields every writer sees: what fbl_log_event handed to GLib, as a line. */
static char *last_event;

static GLogWriterOutput capture(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                gpointer user_data)
{
    (void) user_data;
    g_free(last_event);
    last_event = fbl_log_format(level, fields, n_fields, false);
    return G_LOG_WRITER_HANDLED;
}

/* An event about a mail carries the domain of the code that logged it. */
static void test_event_domain(void **state)
{
    (void) state;
    g_log_set_writer_func(capture, NULL, NULL);
    static const struct {
        const char *name;
        bool from_macro; /* fbl_log_event() here, else fbl_log_event_in(NULL, …) */
        const char *rid;
        const char *want;
    } rows[] = {
        {"caller's domain", true, MAIL_ID,
         "rid=3f2a9c01d7e4 stage=ack level=warning domain=fbl-logtest msg=\"n=1 acked\""},
        {"short rid", true, "abc",
         "rid=abc stage=ack level=warning domain=fbl-logtest msg=\"n=1 acked\""},
        {"no rid", true, NULL,
         "rid=- stage=ack level=warning domain=fbl-logtest msg=\"n=1 acked\""},
        {"no domain", false, MAIL_ID,
         "rid=3f2a9c01d7e4 stage=ack level=warning domain=fbl msg=\"n=1 acked\""},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_clear_pointer(&last_event, g_free);
        if (rows[i].from_macro)
            fbl_log_event(G_LOG_LEVEL_WARNING, rows[i].rid, "ack", "n=%d acked", 1);
        else
            fbl_log_event_in(NULL, G_LOG_LEVEL_WARNING, rows[i].rid, "ack", "n=%d acked", 1);
        fbl_test_check_str(rows[i].name, "event", rows[i].want, last_event);
    }
    /* Below the level in effect (notice, before fbl_log_init): not even formatted. */
    g_clear_pointer(&last_event, g_free);
    fbl_log_event(G_LOG_LEVEL_INFO, MAIL_ID, "ack", "dropped");
    fbl_test_check_str("below the level", "event", NULL, last_event);
    fbl_test_rows_done();
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape), cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_quoting),    cmocka_unit_test(test_event_domain),
        cmocka_unit_test(test_targets),    cmocka_unit_test(test_journal_stream),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    g_free(last_event);
    return failed;
}
