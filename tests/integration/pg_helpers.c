/* pg_helpers.c - what the cmocka tests against a real PostgreSQL share (see pg_helpers.h) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/integration/pg_helpers.h"

static void quiet(void *data, const char *message)
{
    (void) data;
    (void) message;
}

PGconn *connect_db(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", conninfo, PQerrorMessage(c));
    (void) PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

gint64 q_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql,
                 PQresultStatus(r) == PGRES_TUPLES_OK ? "no row" : PQresultErrorMessage(r));
    gint64 v = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

char *fresh_db(const char *admin_conninfo, const char *name)
{
    PGconn *c = connect_db(admin_conninfo);
    g_autofree char *drop = g_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    g_autofree char *create = g_strdup_printf("CREATE DATABASE %s", name);
    /* The corpus holds one report in many encodings (the same reporter and
     * Message-ID), which schema 007 would mark as copies: these tests count
     * every report, so detection is off here (duplicates.py tests it). */
    g_autofree char *no_dups =
        g_strdup_printf("ALTER DATABASE %s SET fbl.duplicate_window = '0'", name);
    exec_ok(c, drop);
    exec_ok(c, create);
    exec_ok(c, no_dups);
    PQfinish(c);
    return g_strdup_printf("%s dbname=%s", admin_conninfo, name);
}

fbl_sink_mail *make_mail(const fbl_parser *parser, GBytes *bytes, gint64 at, const char *mailbox)
{
    fbl_mail_meta meta = {
        .mailbox = mailbox, .received_at = at, .default_feedback_type = FBL_FEEDBACK_ABUSE};
    gsize len;
    const void *data = g_bytes_get_data(bytes, &len);
    fbl_parse_result *res = fbl_parser_parse(parser, data, len, &meta);
    fbl_sink_mail *m = fbl_sink_mail_new();
    g_strlcpy(m->mail_id, res->mail_id, sizeof m->mail_id);
    m->mailbox = g_strdup(mailbox);
    m->received_at = at;
    m->size = (int64_t) len;
    m->raw = g_bytes_ref(bytes);
    for (guint i = 0; i < res->reports->len; i++)
        g_ptr_array_add(m->reports, g_ptr_array_index(res->reports, i));
    g_ptr_array_set_free_func(res->reports, NULL);
    m->reject = g_steal_pointer(&res->reject);
    fbl_parse_result_free(res);
    return m;
}
