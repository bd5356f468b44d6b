/*
 * test_batch.c - the sink's unit of work (sink/batch.h): mails kept in the
 * order added, reports counted, and the bytes that bound a batch growing by
 * at least each mail's raw size plus something for each report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "parsers/report.h"
#include "sink/batch.h"
#include "tests/unit/harness.h"

typedef struct mail_row {
    const char *name;
    gssize raw_bytes; /* -1: no raw bytes (over the size limit) */
    guint reports;    /* 0: the mail is a reject */
} mail_row;

static const mail_row rows[] = {
    {"one report, 1 KiB", 1024, 1},
    {"too large: a reject without its bytes", -1, 0},
    {"three reports, 64 KiB", 65536, 3},
    {"empty mail: a reject with zero bytes", 0, 0},
    {"one report, 5 MiB", (gssize) 5 * 1024 * 1024, 1},
};

/* A mail as the sink loop makes one from a watcher's message. */
static fbl_sink_mail *mail_from_row(const mail_row *r, guint i)
{
    fbl_sink_mail *m = fbl_sink_mail_new();
    g_snprintf(m->mail_id, sizeof m->mail_id, "%064x", i + 1);
    m->mailbox = g_strdup("spamalert");
    m->received_at = 1704878874 + i;
    if (r->raw_bytes >= 0) {
        m->raw = g_bytes_new_take(g_malloc0((gsize) r->raw_bytes), (gsize) r->raw_bytes);
        m->size = r->raw_bytes;
    }
    for (guint k = 0; k < r->reports; k++)
        g_ptr_array_add(m->reports, fbl_report_new());
    if (r->reports == 0)
        m->reject = fbl_reject_new(FBL_REJECT_EMPTY, "test");
    return m;
}

static void test_new_mail_is_empty(void **state)
{
    (void) state;
    g_autoptr(fbl_sink_mail) m = fbl_sink_mail_new();
    assert_non_null(m->reports);
    assert_int_equal(m->reports->len, 0);
    assert_null(m->reject);
    assert_null(m->raw);
    assert_null(m->mailbox);
    assert_int_equal(m->size, -1); /* unknown until the watcher says */
    fbl_sink_mail_free(NULL);
    fbl_batch_free(NULL);
    g_autoptr(fbl_batch) b = fbl_batch_new();
    assert_int_equal(fbl_batch_mails(b), 0);
    assert_int_equal(fbl_batch_reports(b), 0);
    assert_int_equal(fbl_batch_bytes(b), 0);
}

/* Every row added in turn: the counts after each, and what each mail added in bytes. */
static void test_add(void **state)
{
    (void) state;
    g_autoptr(fbl_batch) b = fbl_batch_new();
    guint reports = 0;
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        const mail_row *r = &rows[i];
        size_t before = fbl_batch_bytes(b);
        fbl_batch_add(b, mail_from_row(r, i));
        reports += r->reports;
        size_t added = fbl_batch_bytes(b) - before;
        size_t raw = r->raw_bytes > 0 ? (size_t) r->raw_bytes : 0;
        if (fbl_batch_mails(b) != i + 1)
            ROW_FAIL("row '%s': %u mails, want %u", r->name, fbl_batch_mails(b), i + 1);
        if (fbl_batch_reports(b) != reports)
            ROW_FAIL("row '%s': %u reports, want %u", r->name, fbl_batch_reports(b), reports);
        /* More than the raw bytes: a mail without them still counts toward the bound. */
        if (added <= raw)
            ROW_FAIL("row '%s': added %zu bytes for %zu raw", r->name, added, raw);
    }
    /* In the order added, each the mail it was (the writer and the acks rely on it). */
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        const fbl_sink_mail *m = fbl_batch_get(b, i);
        g_autofree char *want = g_strdup_printf("%064x", i + 1);
        fbl_test_check_str(rows[i].name, "mail_id", want, m->mail_id);
        if (m->reports->len != rows[i].reports || (m->reject != NULL) != (rows[i].reports == 0))
            ROW_FAIL("row '%s': %u reports, reject %s", rows[i].name, m->reports->len,
                     m->reject != NULL ? "set" : "unset");
    }
    fbl_test_rows_done();
}

/* The same raw size with more reports weighs more: the rows and JSON are written too. */
static void test_reports_weigh(void **state)
{
    (void) state;
    static const mail_row few = {"one report", 4096, 1}, many = {"ten reports", 4096, 10};
    g_autoptr(fbl_batch) a = fbl_batch_new();
    g_autoptr(fbl_batch) b = fbl_batch_new();
    fbl_batch_add(a, mail_from_row(&few, 0));
    fbl_batch_add(b, mail_from_row(&many, 0));
    assert_true(fbl_batch_bytes(b) > fbl_batch_bytes(a));
    assert_int_equal(fbl_batch_reports(b), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_mail_is_empty),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_reports_weigh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
