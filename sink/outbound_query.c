/* outbound_query.c - outbound accounts, volumes and clears (see outbound_query.h) */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/outbound_query.h"

#include <libpq-fe.h>

#include "sink/pgconn_internal.h"

struct fbl_outbound_query {
    PGconn *conn;
};

void fbl_outbound_account_free(fbl_outbound_account *a)
{
    if (a == NULL)
        return;
    g_free(a->account);
    g_free(a->domain);
    g_free(a->state);
    g_free(a->rate);
    g_free(a->fingerprints);
    g_free(a);
}

void fbl_outbound_ip_free(fbl_outbound_ip *ip)
{
    if (ip == NULL)
        return;
    g_free(ip->ip);
    g_free(ip);
}

void fbl_outbound_volume_free(fbl_outbound_volume *v)
{
    if (v == NULL)
        return;
    g_free(v->account);
    g_free(v);
}

fbl_outbound_query *fbl_outbound_query_new(const char *conninfo, const char *application_name,
                                           GError **error)
{
    PGconn *conn = fbl_pgconn_connect(conninfo, application_name, error);
    if (conn == NULL)
        return NULL;
    fbl_outbound_query *q = g_new0(fbl_outbound_query, 1);
    q->conn = conn;
    return q;
}

void fbl_outbound_query_free(fbl_outbound_query *query)
{
    if (query == NULL)
        return;
    PQfinish(query->conn);
    g_free(query);
}

/* The columns of both account functions after the account, in account_row()'s order. */
static const char account_columns[] =
    "state, complaints, reporters, complaints_last_hour, complaints_last_day, "
    "peak_hour_complaints, source_ips, floor(extract(epoch FROM first_seen))::bigint, "
    "floor(extract(epoch FROM last_seen))::bigint, fingerprints::text, sent, "
    "rate_percent::text, floor(extract(epoch FROM cleared_at))::bigint, counted";

static fbl_outbound_account *account_row(const PGresult *res, int i)
{
    fbl_outbound_account *a = g_new0(fbl_outbound_account, 1);
    a->account = fbl_pgconn_cell_text(res, i, 0);
    a->domain = fbl_pgconn_cell_text(res, i, 1);
    a->state = fbl_pgconn_cell_text(res, i, 2);
    a->complaints = fbl_pgconn_cell_uint(res, i, 3);
    a->reporters = fbl_pgconn_cell_uint(res, i, 4);
    a->last_hour = fbl_pgconn_cell_uint(res, i, 5);
    a->last_day = fbl_pgconn_cell_uint(res, i, 6);
    a->peak_hour = fbl_pgconn_cell_uint(res, i, 7);
    a->source_ips = fbl_pgconn_cell_uint(res, i, 8);
    a->first_seen = fbl_pgconn_cell_int(res, i, 9, 0);
    a->last_seen = fbl_pgconn_cell_int(res, i, 10, 0);
    a->fingerprints = fbl_pgconn_cell_text(res, i, 11);
    a->sent = fbl_pgconn_cell_int(res, i, 12, -1);
    a->rate = fbl_pgconn_cell_text(res, i, 13);
    a->cleared_at = fbl_pgconn_cell_int(res, i, 14, 0);
    a->counted = fbl_pgconn_cell_uint(res, i, 15);
    return a;
}

bool fbl_outbound_query_accounts(fbl_outbound_query *query, gint64 since, gint64 until,
                                 const fbl_outbound_rules *rules, bool pseudonymised,
                                 GPtrArray **out, GError **error)
{
    *out = NULL;
    g_autofree char *since_text = fbl_pgconn_timestamp_param(since);
    g_autofree char *until_text = fbl_pgconn_timestamp_param(until);
    g_autofree char *warn = g_strdup_printf("%u", rules->warn_ppm);
    g_autofree char *act = g_strdup_printf("%u", rules->act_ppm);
    g_autofree char *min = g_strdup_printf("%u", rules->min_complaints);
    const char *params[] = {since_text, until_text, warn, act, min};
    const char *cols = account_columns;
    g_autofree char *sql =
        pseudonymised
            ? g_strdup_printf("SELECT account_key, account_domain, %s FROM "
                              "fbl.outbound_account_keys($1, $2, $3::integer, $4::integer, "
                              "$5::integer)",
                              cols)
            : g_strdup_printf("SELECT account, NULL, %s FROM fbl.outbound_accounts($1, $2, "
                              "$3::integer, $4::integer, $5::integer)",
                              cols);
    PGresult *res = fbl_pgconn_query(query->conn, sql, 5, params, "outbound accounts", error);
    if (res == NULL)
        return false;
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbound_account_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(a, account_row(res, i));
    PQclear(res);
    *out = a;
    return true;
}

bool fbl_outbound_query_ips(fbl_outbound_query *query, gint64 since, gint64 until, GPtrArray **out,
                            GError **error)
{
    *out = NULL;
    g_autofree char *since_text = fbl_pgconn_timestamp_param(since);
    g_autofree char *until_text = fbl_pgconn_timestamp_param(until);
    const char *params[] = {since_text, until_text};
    PGresult *res = fbl_pgconn_query(
        query->conn,
        "SELECT host(source_ip), complaints, reporters, accounts, complaints_last_hour, "
        "complaints_last_day, peak_hour_complaints, floor(extract(epoch FROM first_seen))::bigint, "
        "floor(extract(epoch FROM last_seen))::bigint FROM fbl.outbound_ips($1, $2)",
        2, params, "outbound IPs", error);
    if (res == NULL)
        return false;
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbound_ip_free);
    for (int i = 0; i < PQntuples(res); i++) {
        fbl_outbound_ip *ip = g_new0(fbl_outbound_ip, 1);
        ip->ip = fbl_pgconn_cell_text(res, i, 0);
        ip->complaints = fbl_pgconn_cell_uint(res, i, 1);
        ip->reporters = fbl_pgconn_cell_uint(res, i, 2);
        ip->accounts = fbl_pgconn_cell_uint(res, i, 3);
        ip->last_hour = fbl_pgconn_cell_uint(res, i, 4);
        ip->last_day = fbl_pgconn_cell_uint(res, i, 5);
        ip->peak_hour = fbl_pgconn_cell_uint(res, i, 6);
        ip->first_seen = fbl_pgconn_cell_int(res, i, 7, 0);
        ip->last_seen = fbl_pgconn_cell_int(res, i, 8, 0);
        g_ptr_array_add(a, ip);
    }
    PQclear(res);
    *out = a;
    return true;
}

static bool exec(PGconn *conn, const char *sql, GError **error)
{
    PGresult *res = fbl_pgconn_query(conn, sql, 0, NULL, sql, error);
    if (res == NULL)
        return false;
    PQclear(res);
    return true;
}

bool fbl_outbound_query_import_volumes(fbl_outbound_query *query, const GPtrArray *volumes,
                                       GError **error)
{
    if (!exec(query->conn, "BEGIN", error))
        return false;
    for (guint i = 0; i < volumes->len; i++) {
        const fbl_outbound_volume *v = g_ptr_array_index(volumes, i);
        g_autofree char *sent = g_strdup_printf("%" G_GUINT64_FORMAT, v->sent);
        const char *params[] = {v->day, v->account, sent};
        PGresult *res = fbl_pgconn_query(
            query->conn,
            "INSERT INTO fbl.outbound_volumes (day, account, sent) VALUES ($1::date, $2, "
            "$3::bigint) ON CONFLICT (account, day) DO UPDATE SET sent = excluded.sent, "
            "loaded_at = now()",
            3, params, "outbound volumes", error);
        if (res == NULL) {
            PQclear(PQexec(query->conn, "ROLLBACK"));
            return false;
        }
        PQclear(res);
    }
    return exec(query->conn, "COMMIT", error);
}

bool fbl_outbound_query_clear(fbl_outbound_query *query, const char *account, const char *os_user,
                              const char *reason, gint64 *cleared_at, GError **error)
{
    const char *params[] = {account, os_user, reason};
    PGresult *res = fbl_pgconn_query(
        query->conn,
        "INSERT INTO fbl.outbound_clears (account, os_user, reason) VALUES ($1, $2, $3) "
        "RETURNING floor(extract(epoch FROM cleared_at))::bigint",
        3, params, "outbound clear", error);
    if (res == NULL)
        return false;
    if (cleared_at != NULL)
        *cleared_at = PQntuples(res) > 0 ? fbl_pgconn_cell_int(res, 0, 0, 0) : 0;
    PQclear(res);
    return true;
}
