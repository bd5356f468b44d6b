/*
 * test_pg.c - sink/pg.c against a real PostgreSQL (label integration)
 *
 * Usage: test_pg CONNINFO_FILE SAMPLES_DIR
 * CONNINFO_FILE holds the conninfo pg-cluster printed (the fixture "pg");
 * SAMPLES_DIR is tests/corpus/samples. Every test makes its own database in
 * that cluster, so the tests do not depend on one another.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "parsers/parse.h"
#include "parsers/report_json.h"
#include "sink/batch.h"
#include "sink/pg.h"
#include "sink/schema_sql.h"
#include "tests/integration/pg_helpers.h"

#define JAN (G_GINT64_CONSTANT(1768435200)) /* 2026-01-15T00:00:00Z */
#define MAR (G_GINT64_CONSTANT(1772755200)) /* 2026-03-06T00:00:00Z */

static char *admin_conninfo; /* the cluster's database "fbl" */
static const char *samples_dir;
static fbl_parser *parser;
static GPtrArray *samples; /* GBytes *, in file-name order */
static GPtrArray *sample_names;
static const char *const vendors[] = {"alpha", "beta", NULL};

/* ---- helpers ----------------------------------------------------------- */

static char *q_str(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    char *v = PQgetisnull(r, 0, 0) ? NULL : g_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* A new, empty database named @name; returns its conninfo. */
static fbl_pg *open_pg(const char *conninfo)
{
    fbl_pg_options o = {.conninfo = conninfo, .vendors = vendors, .store_raw = true};
    g_autoptr(GError) error = NULL;
    fbl_pg *pg = fbl_pg_new(&o, &error);
    if (pg == NULL)
        fail_msg("fbl_pg_new: %s", error->message);
    return pg;
}

/* A fresh database with the schema; @conn gets a plain libpq connection to it. */
static fbl_pg *migrated_db(const char *name, PGconn **conn, char **conninfo_out)
{
    g_autofree char *conninfo = fbl_test_fresh_db(admin_conninfo, name);
    fbl_pg *pg = open_pg(conninfo);
    g_autoptr(GError) error = NULL;
    unsigned applied = 0;
    if (!fbl_pg_migrate(pg, &applied, &error))
        fail_msg("migrate: %s", error->message);
    assert_int_equal(applied, fbl_schema_sql_count);
    if (conn != NULL)
        *conn = fbl_test_connect_db(conninfo);
    if (conninfo_out != NULL)
        *conninfo_out = g_strdup(conninfo);
    return pg;
}

static guint sample_index(const char *name)
{
    for (guint i = 0; i < sample_names->len; i++) {
        if (strcmp(g_ptr_array_index(sample_names, i), name) == 0)
            return i;
    }
    fail_msg("no sample %s", name);
    return 0;
}

static fbl_sink_mail *sample_mail(const char *name, gint64 at)
{
    return fbl_test_make_mail(parser, g_ptr_array_index(samples, sample_index(name)), at,
                              "spamalert");
}

/* Every sample, delivered at @at. */
static fbl_batch *all_samples(gint64 at)
{
    return fbl_test_samples_batch(parser, samples, at, "spamalert");
}

typedef struct expect {
    gint64 mails, reports, rejects, urls, hops, dkim, attachments;
} expect;

static expect expected(const fbl_batch *b)
{
    expect e = {0};
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < fbl_batch_mails(b); i++) {
        const fbl_sink_mail *m = fbl_batch_get(b, i);
        if (!g_hash_table_add(seen, (gpointer) m->mail_id))
            continue;
        e.mails++;
        e.rejects += m->reject != NULL;
        for (guint j = 0; j < m->reports->len; j++) {
            const fbl_report *r = g_ptr_array_index(m->reports, j);
            e.reports++;
            e.urls += r->message.urls->len;
            e.hops += r->message.received->len;
            e.dkim += r->message.dkim->len;
            e.attachments += r->message.attachments->len;
        }
    }
    return e;
}

/* Row counts of every table, as one comparable line. */
static char *snapshot(PGconn *c)
{
    return q_str(c, "SELECT format('mails=%s reports=%s urls=%s hops=%s dkim=%s att=%s "
                    "rejects=%s outbox=%s', (SELECT count(*) FROM fbl.mails), "
                    "(SELECT count(*) FROM fbl.reports), (SELECT count(*) FROM fbl.report_urls), "
                    "(SELECT count(*) FROM fbl.report_hops), "
                    "(SELECT count(*) FROM fbl.report_dkim), "
                    "(SELECT count(*) FROM fbl.report_attachments), "
                    "(SELECT count(*) FROM fbl.rejects), "
                    "(SELECT count(*) FROM fbl.vendor_outbox))");
}

static void write_ok(fbl_pg *pg, const fbl_batch *b)
{
    g_autoptr(GError) error = NULL;
    if (!fbl_pg_write_batch(pg, b, &error))
        fail_msg("write_batch: %s", error->message);
}

static gint64 q_int_param(PGconn *c, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    gint64 v = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* ---- migrations -------------------------------------------------------- */

static void test_migrate_twice(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_migrate", &c, NULL);
    unsigned applied = 99;
    g_autoptr(GError) error = NULL;
    assert_true(fbl_pg_migrate(pg, &applied, &error));
    assert_int_equal(applied, 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.schema_migrations"),
                     (gint64) fbl_schema_sql_count);
    assert_int_equal(fbl_test_q_int(c, "SELECT max(version) FROM fbl.schema_migrations"),
                     fbl_schema_sql_migrations[fbl_schema_sql_count - 1].version);
    /* A new connection finds everything applied too. */
    fbl_pg_free(pg);
    g_autofree char *conninfo = g_strdup_printf("%s dbname=t_migrate", admin_conninfo);
    pg = open_pg(conninfo);
    assert_true(fbl_pg_migrate(pg, &applied, &error));
    assert_int_equal(applied, 0);
    fbl_pg_free(pg);
    PQfinish(c);
}

typedef struct racer {
    const char *conninfo;
    GMutex *lock;
    GCond *cond;
    int *ready;
    unsigned applied;
    bool ok;
} racer;

static gpointer race_migrate(gpointer data)
{
    racer *r = data;
    fbl_pg *pg = open_pg(r->conninfo);
    g_mutex_lock(r->lock);
    (*r->ready)++;
    g_cond_broadcast(r->cond);
    while (*r->ready < 3)
        g_cond_wait(r->cond, r->lock);
    g_mutex_unlock(r->lock);
    GError *error = NULL;
    r->ok = fbl_pg_migrate(pg, &r->applied, &error);
    if (!r->ok)
        g_printerr("migrate: %s\n", error->message);
    g_clear_error(&error);
    fbl_pg_free(pg);
    return NULL;
}

static void test_migrate_concurrently(void **state)
{
    (void) state;
    g_autofree char *conninfo = fbl_test_fresh_db(admin_conninfo, "t_race");
    GMutex lock;
    GCond cond;
    g_mutex_init(&lock);
    g_cond_init(&cond);
    int ready = 0;
    racer r[3];
    GThread *t[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (racer){.conninfo = conninfo, .lock = &lock, .cond = &cond, .ready = &ready};
        t[i] = g_thread_new("migrate", race_migrate, &r[i]);
    }
    unsigned total = 0;
    for (int i = 0; i < 3; i++) {
        g_thread_join(t[i]);
        assert_true(r[i].ok);
        total += r[i].applied;
    }
    g_mutex_clear(&lock);
    g_cond_clear(&cond);
    assert_int_equal(total, fbl_schema_sql_count);
    PGconn *c = fbl_test_connect_db(conninfo);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.schema_migrations"),
                     (gint64) fbl_schema_sql_count);
    PQfinish(c);
}

/* The enums' labels are parsers/report.c's names, in the C order (plus store_error). */
static void check_enum(PGconn *c, const char *type, unsigned count,
                       bool (*from_string)(const char *, int *), const char *extra)
{
    g_autofree char *sql = g_strdup_printf(
        "SELECT enumlabel FROM pg_enum WHERE enumtypid = '%s'::regtype ORDER BY enumsortorder",
        type);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), count + (extra != NULL));
    for (int i = 0; i < PQntuples(r); i++) {
        const char *label = PQgetvalue(r, i, 0);
        int v = -1;
        if (extra != NULL && strcmp(label, extra) == 0)
            continue;
        if (!from_string(label, &v))
            fail_msg("%s: label %s is not a C name", type, label);
        assert_int_equal(v, i);
    }
    PQclear(r);
}

static bool format_from(const char *s, int *v)
{
    fbl_format f;
    bool ok = fbl_format_from_string(s, &f);
    *v = (int) f;
    return ok;
}

static bool feedback_from(const char *s, int *v)
{
    fbl_feedback_type f;
    bool ok = fbl_feedback_type_from_string(s, &f);
    *v = (int) f;
    return ok;
}

static bool reason_from(const char *s, int *v)
{
    fbl_reject_reason f;
    bool ok = fbl_reject_reason_from_string(s, &f);
    *v = (int) f;
    return ok;
}

static void test_enums_match_parsers(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_enums", &c, NULL);
    /* Appending a name in parsers/report.c: add it here and in a migration. */
    check_enum(c, "fbl.format", FBL_FORMAT_RAW + 1, format_from, NULL);
    check_enum(c, "fbl.feedback_type", FBL_FEEDBACK_AUTH_FAILURE + 1, feedback_from, NULL);
    check_enum(c, "fbl.reject_reason", FBL_REJECT_DMARC_AGGREGATE + 1, reason_from, "store_error");
    fbl_pg_free(pg);
    PQfinish(c);
}

/* ---- writes ------------------------------------------------------------ */

static void check_counts(PGconn *c, const expect *e)
{
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.mails"), e->mails);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.reports"), e->reports);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.rejects"), e->rejects);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_urls"), e->urls);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_hops"), e->hops);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_dkim"), e->dkim);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_attachments"),
                     e->attachments);
    assert_int_equal(fbl_test_q_int(c,
                                    "SELECT count(*) FROM fbl.vendor_outbox WHERE vendor = 'alpha' "
                                    "AND state = 'pending'"),
                     e->reports);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox WHERE vendor = 'beta'"),
        e->reports);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox"), 2 * e->reports);
}

/* Every mail's raw bytes come back exactly. */
static void check_raw(PGconn *c, const fbl_batch *b)
{
    for (guint i = 0; i < fbl_batch_mails(b); i++) {
        const fbl_sink_mail *m = fbl_batch_get(b, i);
        const char *params[] = {m->mail_id};
        PGresult *r = PQexecParams(c, "SELECT raw, size FROM fbl.mails WHERE mail_id = $1", 1, NULL,
                                   params, NULL, NULL, 1);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        gsize len;
        const char *data = g_bytes_get_data(m->raw, &len);
        assert_int_equal(PQgetlength(r, 0, 0), len);
        assert_memory_equal(PQgetvalue(r, 0, 0), data, len);
        PQclear(r);
    }
}

/* Each stored document is the report's JSON, and the columns come from it. */
static void check_documents(PGconn *c, const fbl_batch *b)
{
    for (guint i = 0; i < fbl_batch_mails(b); i++) {
        const fbl_sink_mail *m = fbl_batch_get(b, i);
        for (guint j = 0; j < m->reports->len; j++) {
            const fbl_report *rep = g_ptr_array_index(m->reports, j);
            json_t *doc = fbl_report_to_json(rep);
            char *text = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            const char *params[] = {rep->id, text};
            PGresult *r = PQexecParams(
                c,
                "SELECT doc = $2::jsonb, mail_id, part, format::text, feedback_type::text, "
                "host(source_ip), fingerprint, from_domain, received_at = '2026-01-15Z' "
                "FROM fbl.reports WHERE id = $1",
                2, NULL, params, NULL, NULL, 0);
            free(text);
            assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
            assert_int_equal(PQntuples(r), 1);
            assert_string_equal(PQgetvalue(r, 0, 0), "t");
            assert_string_equal(PQgetvalue(r, 0, 1), m->mail_id);
            assert_int_equal(g_ascii_strtoll(PQgetvalue(r, 0, 2), NULL, 10), rep->part);
            assert_string_equal(PQgetvalue(r, 0, 3), fbl_format_to_string(rep->format));
            assert_string_equal(PQgetvalue(r, 0, 4),
                                fbl_feedback_type_to_string(rep->feedback_type));
            if (rep->source_ip != NULL)
                assert_string_equal(PQgetvalue(r, 0, 5), rep->source_ip);
            else
                assert_true(PQgetisnull(r, 0, 5));
            if (rep->message.fingerprint != NULL)
                assert_string_equal(PQgetvalue(r, 0, 6), rep->message.fingerprint);
            if (rep->message.from_domain != NULL)
                assert_string_equal(PQgetvalue(r, 0, 7), rep->message.from_domain);
            assert_string_equal(PQgetvalue(r, 0, 8), "t");
            PQclear(r);
        }
    }
}

static void test_write_batch(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_write", &c, NULL);
    g_autoptr(fbl_batch) b = all_samples(JAN);
    /* One too large mail: a reject, no raw bytes. */
    fbl_mail_meta meta = {.mailbox = "spamalert", .received_at = JAN};
    fbl_parse_result *big = fbl_parser_too_large(
        parser, "00000000000000000000000000000000000000000000000000000000000000aa", 20000000,
        &meta);
    fbl_sink_mail *m = fbl_sink_mail_new();
    g_strlcpy(m->mail_id, big->mail_id, sizeof m->mail_id);
    m->mailbox = g_strdup("spamalert");
    m->received_at = JAN;
    m->size = 20000000;
    m->reject = g_steal_pointer(&big->reject);
    fbl_parse_result_free(big);
    expect e = expected(b);
    fbl_batch_add(b, m);
    e.mails++;
    e.rejects++;
    assert_true(e.reports > 20 && e.urls > 5 && e.hops > 20 && e.dkim > 0 && e.attachments > 0 &&
                e.rejects > 3);

    write_ok(pg, b);
    check_counts(c, &e);
    g_autoptr(fbl_batch) without_big = all_samples(JAN);
    check_raw(c, without_big);
    check_documents(c, without_big);
    assert_true(fbl_test_q_int(c,
                               "SELECT count(*) FROM fbl.mails WHERE raw IS NULL AND mail_id LIKE "
                               "'%aa' AND size = 20000000") == 1);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.rejects WHERE reason = 'too_large'"), 1);
    /* Children in the analysts' shape. */
    assert_true(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_urls WHERE host IS NULL") == 0);
    assert_true(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_hops WHERE ip IS NOT NULL") > 0);
    assert_true(fbl_test_q_int(c,
                               "SELECT count(*) FROM fbl.report_urls u JOIN fbl.reports r ON "
                               "r.id = u.report_id AND r.received_at = u.received_at") == e.urls);
    assert_true(fbl_test_q_int(c, "SELECT count(*) FROM fbl.reports WHERE source_ip << "
                                  "'192.0.2.0/24'") > 0);
    /* Nothing landed in a DEFAULT partition. */
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.mails_default"), 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.reports_default"), 0);
    fbl_pg_free(pg);
    PQfinish(c);
}

static void test_write_is_idempotent(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_idem", &c, NULL);
    g_autoptr(fbl_batch) b = all_samples(JAN);
    write_ok(pg, b);
    g_autofree char *before = snapshot(c);
    write_ok(pg, b);
    g_autofree char *again = snapshot(c);
    assert_string_equal(before, again);

    /* The same mails in another composition: a few, reversed, one twice. */
    g_autoptr(fbl_batch) other = fbl_batch_new();
    for (guint i = samples->len; i >= 3; i -= 3)
        fbl_batch_add(
            other, fbl_test_make_mail(parser, g_ptr_array_index(samples, i - 1), JAN, "spamalert"));
    fbl_batch_add(other, sample_mail("arf-not-spam.eml", JAN));
    fbl_batch_add(other, sample_mail("arf-not-spam.eml", JAN));
    write_ok(pg, other);
    g_autofree char *composed = snapshot(c);
    assert_string_equal(before, composed);

    /* From another connection (a second sink) too. */
    g_autofree char *conninfo = g_strdup_printf("%s dbname=t_idem", admin_conninfo);
    fbl_pg *pg2 = open_pg(conninfo);
    write_ok(pg2, other);
    g_autofree char *second = snapshot(c);
    assert_string_equal(before, second);
    fbl_pg_free(pg2);
    fbl_pg_free(pg);
    PQfinish(c);
}

static void test_months_are_partitions(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_months", &c, NULL);
    g_autoptr(fbl_batch) b = fbl_batch_new();
    fbl_batch_add(b, sample_mail("arf-base64-parts.eml", JAN));
    fbl_batch_add(b, sample_mail("attach-two-rfc822-crlf.eml", MAR));
    write_ok(pg, b);
    g_autofree char *where_jan =
        q_str(c, "SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM fbl.mails "
                 "WHERE received_at < '2026-02-01Z'");
    g_autofree char *where_mar =
        q_str(c, "SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM fbl.mails "
                 "WHERE received_at >= '2026-03-01Z'");
    assert_string_equal(where_jan, "fbl.mails_202601");
    assert_string_equal(where_mar, "fbl.mails_202603");
    g_autofree char *reports =
        q_str(c, "SELECT string_agg(DISTINCT tableoid::regclass::text, ',' ORDER BY "
                 "tableoid::regclass::text) FROM fbl.reports");
    assert_string_equal(reports, "fbl.reports_202601,fbl.reports_202603");
    g_autofree char *outbox =
        q_str(c, "SELECT string_agg(DISTINCT tableoid::regclass::text, ',' ORDER BY "
                 "tableoid::regclass::text) FROM fbl.vendor_outbox");
    assert_string_equal(outbox, "fbl.vendor_outbox_202601,fbl.vendor_outbox_202603");
    /* The month after each is made ahead of its first mail. */
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM pg_class WHERE relname IN "
                                       "('mails_202602', 'mails_202604')"),
                     2);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.mails_default"), 0);
    fbl_pg_free(pg);
    PQfinish(c);
}

static void test_poisoned_mail(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_poison", &c, NULL);
    g_autoptr(fbl_batch) b = all_samples(JAN);
    expect e = expected(b);
    /* A parser bug: a source IP that is no IP. inet refuses it (22P02). */
    fbl_sink_mail *bad = (fbl_sink_mail *) fbl_batch_get(b, sample_index("arf-base64-parts.eml"));
    fbl_report *r = g_ptr_array_index(bad->reports, 0);
    g_free(r->source_ip);
    r->source_ip = g_strdup("not-an-ip");
    gint64 bad_reports = bad->reports->len;
    gint64 bad_urls = r->message.urls->len, bad_hops = r->message.received->len;
    gint64 bad_dkim = r->message.dkim->len, bad_att = r->message.attachments->len;

    write_ok(pg, b);
    e.reports -= bad_reports;
    e.urls -= bad_urls;
    e.hops -= bad_hops;
    e.dkim -= bad_dkim;
    e.attachments -= bad_att;
    e.rejects += 1;
    check_counts(c, &e);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.rejects WHERE mail_id = $1 AND "
                                 "reason = 'store_error' AND detail LIKE '%22P02%'",
                                 bad->mail_id),
                     1);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.mails WHERE mail_id = $1 AND raw IS "
                                 "NOT NULL",
                                 bad->mail_id),
                     1);
    assert_int_equal(
        q_int_param(c, "SELECT count(*) FROM fbl.reports WHERE mail_id = $1", bad->mail_id), 0);
    /* Redelivered: still nothing more. */
    g_autofree char *before = snapshot(c);
    write_ok(pg, b);
    g_autofree char *after = snapshot(c);
    assert_string_equal(before, after);
    fbl_pg_free(pg);
    PQfinish(c);
}

typedef struct writer {
    fbl_pg *pg;
    const fbl_batch *batch;
    bool ok;
    GError *error;
} writer;

static gpointer write_in_thread(gpointer data)
{
    writer *w = data;
    w->ok = fbl_pg_write_batch(w->pg, w->batch, &w->error);
    return NULL;
}

static void test_connection_lost(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_lost", &c, NULL);
    g_autoptr(fbl_batch) first = fbl_batch_new();
    fbl_batch_add(first, sample_mail("arf-not-spam.eml", JAN));
    write_ok(pg, first); /* the month's partitions exist from here on */

    /* Hold the tables, so the next batch waits inside its transaction. */
    g_autofree char *conninfo = g_strdup_printf("%s dbname=t_lost", admin_conninfo);
    PGconn *holder = fbl_test_connect_db(conninfo);
    fbl_test_exec_ok(holder, "BEGIN");
    fbl_test_exec_ok(holder, "LOCK TABLE fbl.mails IN SHARE MODE");

    g_autoptr(fbl_batch) b = all_samples(JAN);
    writer w = {.pg = pg, .batch = b};
    GThread *t = g_thread_new("writer", write_in_thread, &w);
    gint64 pid = 0;
    for (int i = 0; i < 200 && pid == 0; i++) {
        g_usleep(50000);
        g_autofree char *p = q_str(c, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity "
                                      "WHERE datname = 't_lost' AND application_name = 'fbl' "
                                      "AND wait_event_type = 'Lock'");
        pid = g_ascii_strtoll(p, NULL, 10);
    }
    assert_true(pid > 0);
    g_autofree char *kill =
        g_strdup_printf("SELECT pg_terminate_backend(%" G_GINT64_FORMAT ")", pid);
    fbl_test_exec_ok(c, kill);
    g_thread_join(t);
    fbl_test_exec_ok(holder, "ROLLBACK");
    PQfinish(holder);

    assert_false(w.ok);
    assert_non_null(w.error);
    assert_true(fbl_pg_error_is_transient(w.error));
    g_clear_error(&w.error);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.mails"),
                     1); /* nothing half-done */

    /* The next call reconnects and stores the batch, once. */
    write_ok(pg, b);
    expect e = expected(b);
    check_counts(c, &e);
    fbl_pg_free(pg);
    PQfinish(c);
}

static void test_errors(void **state)
{
    (void) state;
    g_autoptr(GError) error = NULL;
    fbl_pg_options bad = {.conninfo = "host=/nonexistent/dir dbname=x"};
    assert_null(fbl_pg_new(&bad, &error));
    assert_true(g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_CONNECT));
    assert_true(fbl_pg_error_is_transient(error));
    g_clear_error(&error);
    fbl_pg_options garbage = {.conninfo = "this is no conninfo"};
    assert_null(fbl_pg_new(&garbage, &error));
    assert_false(fbl_pg_error_is_transient(error));
    g_clear_error(&error);

    /* No schema: permanent, and says so. */
    g_autofree char *conninfo = fbl_test_fresh_db(admin_conninfo, "t_noschema");
    fbl_pg *pg = open_pg(conninfo);
    g_autoptr(fbl_batch) b = fbl_batch_new();
    fbl_batch_add(b, sample_mail("arf-not-spam.eml", JAN));
    assert_false(fbl_pg_write_batch(pg, b, &error));
    assert_true(g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_SCHEMA));
    assert_false(fbl_pg_error_is_transient(error));
    g_clear_error(&error);
    fbl_pg_free(pg);
}

static void test_no_raw(void **state)
{
    (void) state;
    PGconn *c;
    g_autofree char *conninfo = NULL;
    fbl_pg *first = migrated_db("t_noraw", &c, &conninfo);
    fbl_pg_free(first);
    fbl_pg_options o = {.conninfo = conninfo, .vendors = NULL, .store_raw = false};
    g_autoptr(GError) error = NULL;
    fbl_pg *pg = fbl_pg_new(&o, &error);
    assert_non_null(pg);
    g_autoptr(fbl_batch) b = all_samples(JAN);
    write_ok(pg, b);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.mails WHERE raw IS NOT NULL"), 0);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox"), 0);
    assert_true(fbl_test_q_int(c, "SELECT count(*) FROM fbl.reports") > 0);
    fbl_pg_free(pg);
    PQfinish(c);
}

/* ---- reparse ----------------------------------------------------------- */

static fbl_mail_meta notspam_meta = {.default_feedback_type = FBL_FEEDBACK_NOT_SPAM};

static const fbl_mail_meta *defaults(const char *mailbox, void *data)
{
    (void) data;
    return mailbox != NULL && strcmp(mailbox, "notspam") == 0 ? &notspam_meta : NULL;
}

static void count_progress(guint64 done, guint64 total, void *data)
{
    guint64 *calls = data;
    assert_true(done <= total);
    (*calls)++;
}

static guint64 reparse_ok(fbl_pg *pg, int64_t since, int64_t until)
{
    guint64 changed = 999, calls = 0;
    g_autoptr(GError) error = NULL;
    fbl_pg_reparse_options o = {.parser = parser,
                                .since = since,
                                .until = until,
                                .batch_size = 7,
                                .defaults = defaults,
                                .progress = count_progress,
                                .progress_data = &calls};
    if (!fbl_pg_reparse(pg, &o, &changed, &error))
        fail_msg("reparse: %s", error->message);
    assert_true(calls > 0 || changed == 0);
    return changed;
}

static void set_raw(PGconn *c, const char *mail_id, GBytes *bytes)
{
    gsize len;
    const char *data = g_bytes_get_data(bytes, &len);
    const char *params[] = {data, mail_id};
    int lengths[] = {(int) len, 0};
    int formats[] = {1, 0};
    PGresult *r = PQexecParams(c, "UPDATE fbl.mails SET raw = $1 WHERE mail_id = $2", 2, NULL,
                               params, lengths, formats, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);
}

static void test_reparse(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_reparse", &c, NULL);
    g_autoptr(fbl_batch) b = all_samples(JAN);
    write_ok(pg, b);
    g_autoptr(fbl_batch) later = fbl_batch_new();
    fbl_sink_mail *march = sample_mail("dkim-list-unsubscribe.eml", MAR);
    g_autofree char *march_id = g_strdup(march->mail_id);
    fbl_batch_add(later, march);
    write_ok(pg, later);
    g_autofree char *before = snapshot(c);
    g_autofree char *docs = q_str(c, "SELECT md5(string_agg(doc::text, '' ORDER BY id)) "
                                     "FROM fbl.reports");

    /* Today's parser on the same bytes: nothing changes, twice. */
    assert_int_equal(reparse_ok(pg, 0, 0), 0);
    assert_int_equal(reparse_ok(pg, 0, 0), 0);
    g_autofree char *after = snapshot(c);
    g_autofree char *docs_after = q_str(c, "SELECT md5(string_agg(doc::text, '' ORDER BY id)) "
                                           "FROM fbl.reports");
    assert_string_equal(before, after);
    assert_string_equal(docs, docs_after);

    /* A stored mail parses differently now: one report becomes two. */
    const fbl_sink_mail *one = fbl_batch_get(b, sample_index("arf-base64-parts.eml"));
    assert_int_equal(one->reports->len, 1);
    const fbl_report *old = g_ptr_array_index(one->reports, 0);
    fbl_test_exec_ok(c, "UPDATE fbl.vendor_outbox SET state = 'sent'");
    set_raw(c, one->mail_id,
            g_ptr_array_index(samples, sample_index("attach-two-rfc822-crlf.eml")));
    assert_int_equal(reparse_ok(pg, 0, 0), 1);
    assert_int_equal(
        q_int_param(c, "SELECT count(*) FROM fbl.reports WHERE mail_id = $1", one->mail_id), 2);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.reports WHERE mail_id = $1 AND "
                                 "format = 'attachment' AND doc->>'mail_id' = mail_id",
                                 one->mail_id),
                     2);
    /* Part 0 keeps its id (and its sent outbox rows); part 1 is new and pending. */
    assert_int_equal(q_int_param(c, "SELECT count(*) FROM fbl.reports WHERE id = $1", old->id), 1);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox WHERE state = 'pending'"), 2);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.vendor_outbox WHERE report_id = $1 "
                                 "AND state = 'sent'",
                                 old->id),
                     2);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.report_hops h JOIN fbl.reports r "
                                 "ON r.id = h.report_id WHERE r.mail_id = $1",
                                 one->mail_id),
                     q_int_param(c,
                                 "SELECT sum(jsonb_array_length(doc->'message'->'received')) "
                                 "FROM fbl.reports WHERE mail_id = $1",
                                 one->mail_id));
    assert_int_equal(reparse_ok(pg, 0, 0), 0);

    /* A report that becomes a reject: the report, its children and pending rows go. */
    fbl_test_exec_ok(c, "UPDATE fbl.vendor_outbox SET state = 'pending'");
    set_raw(c, one->mail_id, g_ptr_array_index(samples, sample_index("reject-not-a-report.eml")));
    assert_int_equal(reparse_ok(pg, 0, 0), 1);
    assert_int_equal(
        q_int_param(c, "SELECT count(*) FROM fbl.reports WHERE mail_id = $1", one->mail_id), 0);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.rejects WHERE mail_id = $1 AND "
                                 "reason = 'not_a_report'",
                                 one->mail_id),
                     1);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.report_urls u WHERE NOT EXISTS "
                                       "(SELECT 1 FROM fbl.reports r WHERE r.id = u.report_id)"),
                     0);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.vendor_outbox o WHERE NOT EXISTS "
                                       "(SELECT 1 FROM fbl.reports r WHERE r.id = o.report_id)"),
                     0);

    /* A time range: March only, then January only. */
    fbl_test_exec_ok(c, "UPDATE fbl.mails SET mailbox = 'notspam'"); /* defaults: not-spam */
    assert_int_equal(reparse_ok(pg, MAR - 86400, MAR + 86400), 1);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.reports WHERE mail_id = $1 AND "
                                 "feedback_type = 'not-spam' AND mailbox = 'notspam'",
                                 march_id),
                     1);
    assert_int_equal(reparse_ok(pg, MAR - 86400, MAR + 86400), 0);
    assert_true(reparse_ok(pg, JAN, JAN + 1) > 10);
    assert_int_equal(reparse_ok(pg, 0, 0), 0);
    fbl_pg_free(pg);
    PQfinish(c);
}

/* A store_error reject becomes what its mail is once the fault is gone. */
static void test_reparse_store_error(void **state)
{
    (void) state;
    PGconn *c;
    fbl_pg *pg = migrated_db("t_restore", &c, NULL);
    g_autoptr(fbl_batch) b = fbl_batch_new();
    fbl_sink_mail *bad = sample_mail("arf-base64-parts.eml", JAN);
    fbl_report *r = g_ptr_array_index(bad->reports, 0);
    g_free(r->source_ip);
    r->source_ip = g_strdup("999.1.2.3");
    fbl_batch_add(b, bad);
    fbl_batch_add(b, sample_mail("arf-not-spam.eml", JAN));
    write_ok(pg, b);
    assert_int_equal(
        fbl_test_q_int(c, "SELECT count(*) FROM fbl.rejects WHERE reason = 'store_error'"), 1);
    assert_int_equal(reparse_ok(pg, 0, 0), 1);
    assert_int_equal(fbl_test_q_int(c, "SELECT count(*) FROM fbl.rejects"), 0);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.reports WHERE mail_id = $1 AND "
                                 "host(source_ip) = '192.0.2.25'",
                                 bad->mail_id),
                     1);
    assert_int_equal(q_int_param(c,
                                 "SELECT count(*) FROM fbl.vendor_outbox o JOIN fbl.reports r "
                                 "ON r.id = o.report_id WHERE r.mail_id = $1",
                                 bad->mail_id),
                     2);
    fbl_pg_free(pg);
    PQfinish(c);
}

/* ---- main -------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void) state;
    fbl_parsers_init();
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    parser = fbl_parser_new(&o, NULL);
    sample_names = g_ptr_array_new_with_free_func(g_free);
    samples = fbl_test_load_samples(samples_dir, sample_names);
    return parser != NULL && samples != NULL && samples->len > 10 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void) state;
    if (samples != NULL)
        g_ptr_array_unref(samples);
    g_ptr_array_unref(sample_names);
    fbl_parser_free(parser);
    fbl_parsers_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        (void) fprintf(stderr, "usage: test_pg CONNINFO_FILE SAMPLES_DIR\n");
        return 2;
    }
    admin_conninfo = fbl_test_read_conninfo(argv[1], "test_pg");
    if (admin_conninfo == NULL)
        return 1;
    samples_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_twice),
        cmocka_unit_test(test_migrate_concurrently),
        cmocka_unit_test(test_enums_match_parsers),
        cmocka_unit_test(test_write_batch),
        cmocka_unit_test(test_write_is_idempotent),
        cmocka_unit_test(test_months_are_partitions),
        cmocka_unit_test(test_poisoned_mail),
        cmocka_unit_test(test_connection_lost),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_no_raw),
        cmocka_unit_test(test_reparse),
        cmocka_unit_test(test_reparse_store_error),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    g_free(admin_conninfo);
    return failed;
}
