/* blocklist_query.c - the blocklists' counts and reports (see blocklist_query.h) */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/blocklist_query.h"

#include <libpq-fe.h>

#include "sink/pgconn_internal.h"

struct fbl_blocklist_query {
    PGconn *conn;
};

const char *fbl_blocklist_kind_to_string(fbl_blocklist_kind kind)
{
    return kind == FBL_BLOCKLIST_DOMAIN ? "domain" : "ip";
}

void fbl_blocklist_counts_free(fbl_blocklist_counts *counts)
{
    if (counts == NULL)
        return;
    g_free(counts->entry);
    g_free(counts);
}

void fbl_blocklist_report_free(fbl_blocklist_report *report)
{
    if (report == NULL)
        return;
    g_free(report->feedback_type);
    g_free(report->reporter_domain);
    g_free(report->reporter_key);
    g_free(report->found_in);
    g_free(report->report_id);
    g_free(report);
}

fbl_blocklist_query *fbl_blocklist_query_new(const char *conninfo, const char *application_name,
                                             GError **error)
{
    PGconn *conn = fbl_pgconn_connect(conninfo, application_name, error);
    if (conn == NULL)
        return NULL;
    fbl_blocklist_query *q = g_new0(fbl_blocklist_query, 1);
    q->conn = conn;
    return q;
}

void fbl_blocklist_query_free(fbl_blocklist_query *query)
{
    if (query == NULL)
        return;
    PQfinish(query->conn);
    g_free(query);
}

/*
 * Run @sql; once more after a reconnect when the connection was lost (the
 * sink's exporter keeps one connection for days).
 */
static PGresult *run(fbl_blocklist_query *q, const char *sql, int n, const char *const *params,
                     const char *what, GError **error)
{
    g_autoptr(GError) first = NULL;
    PGresult *res = fbl_pgconn_query(q->conn, sql, n, params, what, &first);
    if (res != NULL)
        return res;
    bool reconnected = false;
    if (!fbl_pg_error_is_transient(first) || !fbl_pgconn_reconnect(q->conn, &reconnected, NULL) ||
        !reconnected) {
        g_propagate_error(error, g_steal_pointer(&first));
        return NULL;
    }
    return fbl_pgconn_query(q->conn, sql, n, params, what, error);
}

bool fbl_blocklist_query_counts(fbl_blocklist_query *query, fbl_blocklist_kind kind,
                                const char *entry, gint64 since, gint64 until,
                                guint min_complainers, GPtrArray **out, GError **error)
{
    *out = NULL;
    g_autofree char *since_text = fbl_pgconn_timestamp_param(since);
    g_autofree char *until_text = fbl_pgconn_timestamp_param(until);
    g_autofree char *min_text = g_strdup_printf("%u", min_complainers);
    const char *params[] = {fbl_blocklist_kind_to_string(kind), since_text, until_text, min_text,
                            entry};
    PGresult *res = run(query,
                        "SELECT entry, complainers, verified, not_spam, "
                        "floor(extract(epoch FROM first_complaint))::bigint, "
                        "floor(extract(epoch FROM last_complaint))::bigint "
                        "FROM fbl.blocklist_counts($1, $2, $3, $4::integer, $5)",
                        5, params, "blocklist counts", error);
    if (res == NULL)
        return false;
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_blocklist_counts_free);
    for (int i = 0; i < PQntuples(res); i++) {
        fbl_blocklist_counts *c = g_new0(fbl_blocklist_counts, 1);
        c->entry = g_strdup(PQgetvalue(res, i, 0));
        c->complainers = fbl_pgconn_cell_uint(res, i, 1);
        c->verified = fbl_pgconn_cell_uint(res, i, 2);
        c->not_spam = fbl_pgconn_cell_uint(res, i, 3);
        c->first_complaint = fbl_pgconn_cell_int(res, i, 4, 0);
        c->last_complaint = fbl_pgconn_cell_int(res, i, 5, 0);
        g_ptr_array_add(a, c);
    }
    PQclear(res);
    *out = a;
    return true;
}

bool fbl_blocklist_query_reports(fbl_blocklist_query *query, fbl_blocklist_kind kind,
                                 const char *entry, gint64 since, gint64 until, GPtrArray **out,
                                 GError **error)
{
    *out = NULL;
    g_autofree char *since_text = fbl_pgconn_timestamp_param(since);
    g_autofree char *until_text = fbl_pgconn_timestamp_param(until);
    const char *params[] = {fbl_blocklist_kind_to_string(kind), entry, since_text, until_text};
    PGresult *res = run(query,
                        "SELECT floor(extract(epoch FROM received_at))::bigint, "
                        "feedback_type::text, reporter_domain, reporter_key, verified::text, "
                        "found_in, report_id FROM fbl.blocklist_reports($1, $2, $3, $4)",
                        4, params, "blocklist reports", error);
    if (res == NULL)
        return false;
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_blocklist_report_free);
    for (int i = 0; i < PQntuples(res); i++) {
        fbl_blocklist_report *r = g_new0(fbl_blocklist_report, 1);
        r->received_at = fbl_pgconn_cell_int(res, i, 0, 0);
        r->feedback_type = fbl_pgconn_cell_text(res, i, 1);
        r->reporter_domain = fbl_pgconn_cell_text(res, i, 2);
        r->reporter_key = fbl_pgconn_cell_text(res, i, 3);
        const char *v = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
        r->verified = v == NULL ? -1 : v[0] == 't' ? 1 : 0;
        r->found_in = fbl_pgconn_cell_text(res, i, 5);
        r->report_id = fbl_pgconn_cell_text(res, i, 6);
        g_ptr_array_add(a, r);
    }
    PQclear(res);
    *out = a;
    return true;
}
