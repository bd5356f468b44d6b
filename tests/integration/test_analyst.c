/*
 * test_analyst.c - the analyst views and roles of schema/005_analyst.sql
 * against a real PostgreSQL (label integration)
 *
 * Usage: test_analyst CONNINFO_FILE SAMPLES_DIR
 * The data is what the pipeline stores: every sample of tests/corpus/samples
 * parsed and written by fbl_pg_write_batch, once two hours ago (in the
 * views' 24 hours) and once three days ago (only in a 7-day window). The
 * expected numbers are counted here from the parsed reports, not read back
 * from the tables the views read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>
#include <libpq-fe.h>

#include "parsers/parse.h"
#include "sink/batch.h"
#include "sink/pg.h"
#include "tests/integration/pg_helpers.h"

static char *admin_conninfo;
static const char *samples_dir;
static fbl_parser *parser;
static GPtrArray *samples; /* GBytes * */
static const char *const vendors[] = {"alpha", NULL};

/* The analyst views, and a call of each function with every argument. */
static const char *const views[] = {
    "summary",   "complaints_hourly", "top_source_ips",  "top_sender_domains", "top_url_hosts",
    "campaigns", "reporters",         "false_positives", "vendor_feed",        "rejects_by_reason",
};
static const char *const calls[] = {
    "fbl.summary(now() - interval '7 days', now())",
    "fbl.complaints_hourly(now() - interval '7 days', now())",
    "fbl.top_source_ips(now() - interval '7 days', 5, now())",
    "fbl.top_sender_domains(now() - interval '7 days', 5, now())",
    "fbl.top_url_hosts(now() - interval '7 days', 5, now())",
    "fbl.campaigns(now() - interval '7 days', 5, now())",
    "fbl.reporters(now() - interval '7 days', 5, now())",
    "fbl.false_positives(now() - interval '7 days', 5, now())",
    "fbl.vendor_feed(now() - interval '7 days', now())",
    "fbl.rejects_by_reason(now() - interval '7 days', now())",
};

/* ---- helpers ----------------------------------------------------------- */

static PGresult *rows(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

/* @sql fails with SQLSTATE @state. */
static void fails_with(PGconn *c, const char *sql, const char *state)
{
    PGresult *r = PQexec(c, sql);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || got == NULL || strcmp(got, state) != 0)
        fail_msg("%s: expected SQLSTATE %s, got %s (%s)", sql, state, got ? got : "success",
                 PQresultErrorMessage(r));
    PQclear(r);
}

/* A new database with the schema; returns its conninfo. */
static char *migrated_db(const char *name)
{
    char *conninfo = fbl_test_fresh_db(admin_conninfo, name);
    fbl_pg_options o = {.conninfo = conninfo, .vendors = vendors, .store_raw = true};
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_pg) pg = fbl_pg_new(&o, &error);
    if (pg == NULL || !fbl_pg_migrate(pg, NULL, &error))
        fail_msg("migrate: %s", error->message);
    return conninfo;
}

static void write_batch(const char *conninfo, const fbl_batch *b)
{
    fbl_pg_options o = {.conninfo = conninfo, .vendors = vendors, .store_raw = true};
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_pg) pg = fbl_pg_new(&o, &error);
    if (pg == NULL || !fbl_pg_write_batch(pg, b, &error))
        fail_msg("write_batch: %s", error->message);
}

/* Counts by key, from the parsed reports. */
typedef struct tally {
    GHashTable *n;    /* key -> count */
    GHashTable *seen; /* "key\nreporter" -> present, for distinct reporters */
    GHashTable *who;  /* key -> distinct reporters */
} tally;

static void tally_init(tally *t)
{
    t->n = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    t->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    t->who = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void tally_clear(tally *t)
{
    g_hash_table_unref(t->n);
    g_hash_table_unref(t->seen);
    g_hash_table_unref(t->who);
}

static void tally_add(tally *t, const char *key, const char *reporter)
{
    if (key == NULL)
        return;
    gint64 n = GPOINTER_TO_SIZE(g_hash_table_lookup(t->n, key));
    g_hash_table_insert(t->n, g_strdup(key), GSIZE_TO_POINTER(n + 1));
    if (reporter == NULL)
        return;
    char *pair = g_strdup_printf("%s\n%s", key, reporter);
    if (g_hash_table_add(t->seen, pair)) {
        gint64 w = GPOINTER_TO_SIZE(g_hash_table_lookup(t->who, key));
        g_hash_table_insert(t->who, g_strdup(key), GSIZE_TO_POINTER(w + 1));
    }
}

static gint64 tally_get(GHashTable *h, const char *key)
{
    return (gint64) GPOINTER_TO_SIZE(g_hash_table_lookup(h, key));
}

/*
 * Every row of @sql (key in column 0, count in 1, distinct reporters in 2
 * when @who_col) matches @t, and there are as many rows as keys.
 */
static void check_tally(PGconn *c, const char *sql, const tally *t, int who_col)
{
    PGresult *r = rows(c, sql);
    assert_int_equal(PQntuples(r), g_hash_table_size(t->n));
    for (int i = 0; i < PQntuples(r); i++) {
        const char *key = PQgetvalue(r, i, 0);
        if (g_ascii_strtoll(PQgetvalue(r, i, 1), NULL, 10) != tally_get(t->n, key))
            fail_msg("%s: %s has %s, expected %" G_GINT64_FORMAT, sql, key, PQgetvalue(r, i, 1),
                     tally_get(t->n, key));
        if (who_col > 0 &&
            g_ascii_strtoll(PQgetvalue(r, i, who_col), NULL, 10) != tally_get(t->who, key))
            fail_msg("%s: %s has %s reporters, expected %" G_GINT64_FORMAT, sql, key,
                     PQgetvalue(r, i, who_col), tally_get(t->who, key));
    }
    PQclear(r);
}

/* ---- the views ----------------------------------------------------------- */

typedef struct expect {
    gint64 reports, not_spam, rejects;
    tally ips, feedback, campaigns, reporters, reasons, fps;
} expect;

static void expect_report(expect *e, const fbl_report *r)
{
    const char *who = r->reporter.address;
    const char *at = who != NULL ? strrchr(who, '@') : NULL;
    e->reports++;
    tally_add(&e->ips, r->source_ip, who);
    tally_add(&e->feedback, fbl_feedback_type_to_string(r->feedback_type), NULL);
    tally_add(&e->campaigns, r->message.fingerprint, who);
    tally_add(&e->reporters, who == NULL ? "" : at != NULL ? at + 1 : who, NULL);
    if (r->feedback_type != FBL_FEEDBACK_NOT_SPAM)
        return;
    e->not_spam++;
    g_autofree char *key =
        g_strdup_printf("%s %s", r->message.from_domain ? r->message.from_domain : "-",
                        r->source_ip ? r->source_ip : "-");
    tally_add(&e->fps, key, NULL);
}

static void expect_batch(expect *e, const fbl_batch *b)
{
    *e = (expect){0};
    tally_init(&e->ips);
    tally_init(&e->feedback);
    tally_init(&e->campaigns);
    tally_init(&e->reporters);
    tally_init(&e->reasons);
    tally_init(&e->fps);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < fbl_batch_mails(b); i++) {
        const fbl_sink_mail *m = fbl_batch_get(b, i);
        if (!g_hash_table_add(seen, (gpointer) m->mail_id))
            continue; /* stored once */
        if (m->reject != NULL) {
            e->rejects++;
            tally_add(&e->reasons, fbl_reject_reason_to_string(m->reject->reason), NULL);
        }
        for (guint j = 0; j < m->reports->len; j++)
            expect_report(e, g_ptr_array_index(m->reports, j));
    }
}

static void expect_clear(expect *e)
{
    tally_clear(&e->ips);
    tally_clear(&e->feedback);
    tally_clear(&e->campaigns);
    tally_clear(&e->reporters);
    tally_clear(&e->reasons);
    tally_clear(&e->fps);
}

static void test_views(void **state)
{
    (void) state;
    g_autofree char *conninfo = migrated_db("t_analyst_views");
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_autoptr(fbl_batch) recent = fbl_test_samples_batch(parser, samples, now - 7200, "spamalert");
    g_autoptr(fbl_batch) old =
        fbl_test_samples_batch(parser, samples, now - G_GINT64_CONSTANT(3) * 86400, "old");
    write_batch(conninfo, recent);
    write_batch(conninfo, old);
    expect e;
    expect_batch(&e, recent);
    assert_true(e.reports > 20 && e.not_spam > 0 && e.rejects > 3);
    PGconn *c = fbl_test_connect_db(conninfo);

    /* The 24 hours hold the recent copy only; 7 days both. */
    assert_int_equal(fbl_test_q_int(c, "SELECT reports FROM fbl.summary"), e.reports);
    assert_int_equal(fbl_test_q_int(c, "SELECT not_spam FROM fbl.summary"), e.not_spam);
    assert_int_equal(fbl_test_q_int(c, "SELECT rejects FROM fbl.summary"), e.rejects);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_source_ips"),
                     g_hash_table_size(e.ips.n));
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.campaigns"),
                     g_hash_table_size(e.campaigns.n));
    assert_int_equal(
        fbl_test_q_int(c, "SELECT reports FROM fbl.summary(now() - interval '7 days')"),
        2 * e.reports);
    assert_int_equal(fbl_test_q_int(c, "SELECT reports FROM fbl.summary(now() - interval '7 days', "
                                       "now() - interval '1 day')"),
                     e.reports);

    check_tally(c, "SELECT feedback_type, sum(reports) FROM fbl.complaints_hourly GROUP BY 1",
                &e.feedback, 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(DISTINCT mailbox) FROM fbl.complaints_hourly"),
                     1);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(DISTINCT mailbox) "
                                       "FROM fbl.complaints_hourly(now() - interval '7 days')"),
                     2);
    check_tally(c, "SELECT host(source_ip), reports, reporters FROM fbl.top_source_ips", &e.ips, 2);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_source_ips "
                                       "WHERE family(source_ip) = 4 AND masklen(network) = 24 "
                                       "AND source_ip << network"),
                     fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_source_ips "
                                       "WHERE family(source_ip) = 4"));
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_source_ips t WHERE network_reports "
                          "<> (SELECT sum(reports) FROM fbl.top_source_ips u "
                          "WHERE u.network = t.network)"),
        0);
    check_tally(c, "SELECT fingerprint, reports, reporters FROM fbl.campaigns", &e.campaigns, 2);
    check_tally(c,
                "SELECT coalesce(reporter_domain, ''), sum(reports) FROM fbl.reporters GROUP BY 1",
                &e.reporters, 0);
    check_tally(c, "SELECT reason, sum(rejects) FROM fbl.rejects_by_reason GROUP BY 1", &e.reasons,
                0);
    check_tally(c,
                "SELECT coalesce(from_domain, '-') || ' ' || coalesce(host(source_ip), '-'), "
                "not_spam FROM fbl.false_positives",
                &e.fps, 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT sum(reports) FROM fbl.top_sender_domains"),
                     e.reports);
    /* URL hosts: the view against the stored URLs, counted another way. */
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_url_hosts v FULL JOIN ("
                          "  SELECT host, count(DISTINCT report_id) AS reports, count(*) AS urls"
                          "  FROM fbl.report_urls WHERE received_at > now() - interval '1 day'"
                          "  AND host IS NOT NULL GROUP BY 1) b USING (host) "
                          "WHERE v.reports IS DISTINCT FROM b.reports "
                          "OR v.urls IS DISTINCT FROM b.urls"),
        0);
    assert_true(fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_url_hosts") > 3);
    /* lim, and the order. */
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.top_source_ips(now() - interval "
                                       "'1 day', 2)"),
                     2);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM (SELECT reports, lag(reports) OVER () AS prev "
                          "FROM fbl.top_source_ips) x WHERE reports > prev"),
        0);

    /* Reporters: a stable pseudonym, never the address. */
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.reporters WHERE reporter_key !~ "
                                       "'^[0-9a-f]{16}$' AND reporter_domain IS NOT NULL"),
                     0);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.reporters r JOIN "
                          "fbl.reporters(now() - interval '7 days') s USING (reporter_key) "
                          "WHERE s.reports <> 2 * r.reports"),
        0);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.reporters v JOIN (SELECT DISTINCT "
                          "reporter_address a FROM fbl.reports) r ON strpos(v.reporter_key, "
                          "split_part(r.a, '@', 1)) > 0 OR v.reporter_key = r.a"),
        0);

    /* Vendor feed: everything pending, then some sent and some dead. */
    assert_int_equal(
        fbl_test_q_int(c, "SELECT pending FROM fbl.vendor_feed WHERE vendor = 'alpha'"), e.reports);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT pending_total FROM fbl.vendor_feed WHERE vendor = 'alpha'"),
        2 * e.reports);
    fbl_test_exec_ok(c, "UPDATE fbl.vendor_outbox SET state = 'sent', sent_at = now() "
                        "WHERE received_at > now() - interval '1 day' AND report_id < '8'");
    fbl_test_exec_ok(c, "UPDATE fbl.vendor_outbox SET state = 'dead' "
                        "WHERE received_at < now() - interval '1 day' AND report_id < '4'");
    gint64 sent = fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox WHERE state = 'sent'");
    gint64 dead = fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox WHERE state = 'dead'");
    assert_true(sent > 0 && dead > 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT sent FROM fbl.vendor_feed"), sent);
    assert_int_equal(fbl_test_q_int(c, "SELECT pending FROM fbl.vendor_feed"), e.reports - sent);
    assert_int_equal(fbl_test_q_int(c, "SELECT dead FROM fbl.vendor_feed"), 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT dead_total FROM fbl.vendor_feed"), dead);
    assert_int_equal(fbl_test_q_int(c, "SELECT pending_total FROM fbl.vendor_feed"),
                     2 * e.reports - sent - dead);
    /* The lag is the oldest pending row's wait since it was queued (both were just now). */
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_feed WHERE lag >= interval '0' "
                          "AND lag < interval '1 hour' AND oldest_pending <= now()"),
        1);
    fbl_test_exec_ok(c, "UPDATE fbl.vendor_outbox SET created_at = now() - interval '3 hours' "
                        "WHERE state = 'pending' AND report_id >= 'c'");
    assert_int_equal(fbl_test_q_int(c,
                                    "SELECT count(*) FROM fbl.vendor_feed "
                                    "WHERE lag BETWEEN interval '3 hours' AND interval '4 hours'"),
                     1);
    PQfinish(c);
    expect_clear(&e);
}

/* ---- roles --------------------------------------------------------------- */

static void test_analyst_role(void **state)
{
    (void) state;
    g_autofree char *conninfo = migrated_db("t_analyst_role");
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_autoptr(fbl_batch) b = fbl_test_samples_batch(parser, samples, now - 3600, "spamalert");
    write_batch(conninfo, b);
    PGconn *owner = fbl_test_connect_db(conninfo);
    fbl_test_exec_ok(owner, "ANALYZE");
    g_autofree char *part = NULL;
    PGresult *r = rows(owner, "SELECT partition FROM fbl.month_partitions() "
                              "WHERE parent = 'reports' ORDER BY lo DESC LIMIT 1");
    part = g_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);

    g_autofree char *as_analyst = g_strdup_printf("%s options='-c role=fbl_analyst'", conninfo);
    PGconn *c = fbl_test_connect_db(as_analyst);
    for (size_t i = 0; i < G_N_ELEMENTS(views); i++) {
        g_autofree char *v = g_strdup_printf("SELECT count(*) FROM fbl.%s", views[i]);
        g_autofree char *f = g_strdup_printf("SELECT count(*) FROM %s", calls[i]);
        assert_true(fbl_test_q_int(c, v) >= 0);
        assert_true(fbl_test_q_int(c, f) >= 0);
    }
    assert_true(fbl_test_q_int(c, "SELECT reports FROM fbl.summary") > 0);
    static const char *const denied[] = {
        "SELECT count(*) FROM fbl.mails",
        "SELECT raw FROM fbl.mails LIMIT 1",
        "SELECT count(*) FROM fbl.reports",
        "SELECT reporter_address FROM fbl.reports LIMIT 1",
        "SELECT doc FROM fbl.reports LIMIT 1",
        "SELECT count(*) FROM fbl.reports_default",
        "SELECT count(*) FROM fbl.report_urls",
        "SELECT count(*) FROM fbl.report_hops",
        "SELECT count(*) FROM fbl.report_dkim",
        "SELECT count(*) FROM fbl.report_attachments",
        "SELECT count(*) FROM fbl.rejects",
        "SELECT count(*) FROM fbl.vendor_outbox",
        "SELECT count(*) FROM fbl.pseudonym_key",
        "SELECT count(*) FROM fbl.schema_migrations",
        "SELECT fbl.create_month_partitions(now())",
        "SELECT fbl.drop_month(now() - interval '1 year')",
        "SELECT fbl.prune_defaults(now())",
        "INSERT INTO fbl.rejects (mail_id, received_at, reason) VALUES ('x', now(), 'empty')",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(denied); i++)
        fails_with(c, denied[i], "42501");
    g_autofree char *direct = g_strdup_printf("SELECT count(*) FROM fbl.%s", part);
    fails_with(c, direct, "42501");
    /* No column of a view it reads is an address, a document or raw mail. */
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM information_schema.columns "
                                       "WHERE table_schema = 'fbl' AND column_name IN "
                                       "('reporter_address', 'raw', 'doc', 'from_address', "
                                       "'return_path', 'arf_original_mail_from')"),
                     0);
    /* Nor do the statistics show it a reporter address. */
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM pg_stats WHERE schemaname = 'fbl' "
                                       "AND attname = 'reporter_address'"),
                     0);
    assert_true(fbl_test_q_int(owner, "SELECT count(*) FROM pg_stats WHERE schemaname = 'fbl' "
                                      "AND attname = 'reporter_address'") > 0);
    PQfinish(c);
    PQfinish(owner);
}

static void test_writer_role(void **state)
{
    (void) state;
    g_autofree char *conninfo = migrated_db("t_analyst_writer");
    g_autofree char *as_writer = g_strdup_printf("%s options='-c role=fbl_writer'", conninfo);
    /* A month nobody made yet: the writer makes its partitions (SECURITY DEFINER). */
    gint64 later = g_get_real_time() / G_USEC_PER_SEC + G_GINT64_CONSTANT(120) * 86400;
    g_autoptr(fbl_batch) b = fbl_test_samples_batch(parser, samples, later, "spamalert");
    fbl_pg_options o = {.conninfo = as_writer, .vendors = vendors, .store_raw = true};
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_pg) pg = fbl_pg_new(&o, &error);
    assert_non_null(pg);
    unsigned applied = 9;
    if (!fbl_pg_migrate(pg, &applied, &error)) /* up to date: reads only */
        fail_msg("migrate as fbl_writer: %s", error->message);
    assert_int_equal(applied, 0);
    if (!fbl_pg_write_batch(pg, b, &error))
        fail_msg("write as fbl_writer: %s", error->message);
    if (!fbl_pg_write_batch(pg, b, &error)) /* again: nothing new */
        fail_msg("write again as fbl_writer: %s", error->message);
    PGconn *c = fbl_test_connect_db(as_writer);
    assert_string_equal(PQparameterStatus(c, "is_superuser"), "off");
    gint64 reports = fbl_test_q_int(c, "SELECT count(*) FROM fbl.reports");
    assert_true(reports > 20);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox"), reports);
    assert_true(fbl_test_q_int(c, "SELECT count(*) FROM fbl.mails WHERE raw IS NOT NULL") > 20);
    fbl_test_exec_ok(c, "UPDATE fbl.vendor_outbox SET state = 'sent' WHERE report_id < '8'");
    fails_with(c, "SELECT count(*) FROM fbl.pseudonym_key", "42501");
    fails_with(c, "DELETE FROM fbl.schema_migrations", "42501");
    fails_with(c, "SELECT fbl.drop_month(now() - interval '1 year')", "42501");
    fails_with(c, "DROP TABLE fbl.rejects_default", "42501");
    fails_with(c, "CREATE TABLE fbl.x (a int)", "42501");
    PQfinish(c);
    /* The partitions the writer made belong to the owner, like the others. */
    PGconn *owner = fbl_test_connect_db(conninfo);
    assert_int_equal(fbl_test_q_int(owner, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                                           "n.oid = c.relnamespace WHERE n.nspname = 'fbl' AND "
                                           "c.relkind = 'r' AND pg_get_userbyid(c.relowner) <> "
                                           "current_user"),
                     0);
    PQfinish(owner);
}

/* ---- main ---------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void) state;
    fbl_parsers_init();
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    parser = fbl_parser_new(&o, NULL);
    samples = fbl_test_load_samples(samples_dir, NULL);
    return parser != NULL && samples != NULL && samples->len > 10 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void) state;
    if (samples != NULL)
        g_ptr_array_unref(samples);
    fbl_parser_free(parser);
    fbl_parsers_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        (void) fprintf(stderr, "usage: test_analyst CONNINFO_FILE SAMPLES_DIR\n");
        return 2;
    }
    admin_conninfo = fbl_test_read_conninfo(argv[1], "test_analyst");
    if (admin_conninfo == NULL)
        return 1;
    samples_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_analyst_role),
        cmocka_unit_test(test_writer_role),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    g_free(admin_conninfo);
    return failed;
}
