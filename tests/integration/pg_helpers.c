/* pg_helpers.c - what the cmocka tests against a real PostgreSQL share (see pg_helpers.h) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "tests/integration/pg_helpers.h"

static void quiet(void *data, const char *message)
{
    (void) data;
    (void) message;
}

PGconn *fbl_test_connect_db(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", conninfo, PQerrorMessage(c));
    (void) PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void fbl_test_exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

gint64 fbl_test_q_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql,
                 PQresultStatus(r) == PGRES_TUPLES_OK ? "no row" : PQresultErrorMessage(r));
    gint64 v = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

char *fbl_test_fresh_db(const char *admin_conninfo, const char *name)
{
    PGconn *c = fbl_test_connect_db(admin_conninfo);
    g_autofree char *drop = g_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    g_autofree char *create = g_strdup_printf("CREATE DATABASE %s", name);
    /* The corpus holds one report in many encodings (the same reporter and
     * Message-ID), which schema 007 would mark as copies: these tests count
     * every report, so detection is off here (duplicates.py tests it). */
    g_autofree char *no_dups =
        g_strdup_printf("ALTER DATABASE %s SET fbl.duplicate_window = '0'", name);
    fbl_test_exec_ok(c, drop);
    fbl_test_exec_ok(c, create);
    fbl_test_exec_ok(c, no_dups);
    PQfinish(c);
    return g_strdup_printf("%s dbname=%s", admin_conninfo, name);
}

fbl_sink_mail *fbl_test_make_mail(const fbl_parser *parser, GBytes *bytes, gint64 at,
                                  const char *mailbox)
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

char *fbl_test_read_conninfo(const char *path, const char *program)
{
    char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error)) {
        (void) fprintf(stderr, "%s: %s (is the fixture pg/start there?)\n", program,
                       error->message);
        return NULL;
    }
    return g_strstrip(text);
}

static int compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

GPtrArray *fbl_test_load_samples(const char *dir, GPtrArray *names)
{
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    if (d == NULL)
        return NULL;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (g_str_has_suffix(name, ".eml"))
            g_ptr_array_add(found, g_strdup(name));
    }
    g_ptr_array_sort(found, compare_names);
    g_autoptr(GPtrArray) samples = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
    for (guint i = 0; i < found->len; i++) {
        g_autofree char *path = g_build_filename(dir, g_ptr_array_index(found, i), NULL);
        char *data;
        gsize len;
        if (!g_file_get_contents(path, &data, &len, NULL))
            return NULL;
        g_ptr_array_add(samples, g_bytes_new_take(data, len));
        if (names != NULL)
            g_ptr_array_add(names, g_strdup(g_ptr_array_index(found, i)));
    }
    return g_steal_pointer(&samples);
}

fbl_batch *fbl_test_samples_batch(const fbl_parser *parser, const GPtrArray *samples, gint64 at,
                                  const char *mailbox)
{
    fbl_batch *b = fbl_batch_new();
    for (guint i = 0; i < samples->len; i++)
        fbl_batch_add(b, fbl_test_make_mail(parser, g_ptr_array_index(samples, i), at, mailbox));
    return b;
}
