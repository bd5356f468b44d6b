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

static char *timestamp_param(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("infinity");
}

static guint64 uint_cell(const PGresult *res, int row, int col)
{
    guint64 n = 0;
    if (!PQgetisnull(res, row, col))
        (void) g_ascii_string_to_unsigned(PQgetvalue(res, row, col), 10, 0, G_MAXUINT64, &n, NULL);
    return n;
}

static gint64 int_cell(const PGresult *res, int row, int col, gint64 null_value)
{
    gint64 n = null_value;
    if (!PQgetisnull(res, row, col))
        (void) g_ascii_string_to_signed(PQgetvalue(res, row, col), 10, G_MININT64, G_MAXINT64, &n,
                                        NULL);
    return n;
}

static char *text_cell(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : g_strdup(PQgetvalue(res, row, col));
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
    a->account = text_cell(res, i, 0);
    a->domain = text_cell(res, i, 1);
    a->state = text_cell(res, i, 2);
    a->complaints = uint_cell(res, i, 3);
    a->reporters = uint_cell(res, i, 4);
    a->last_hour = uint_cell(res, i, 5);
    a->last_day = uint_cell(res, i, 6);
    a->peak_hour = uint_cell(res, i, 7);
    a->source_ips = uint_cell(res, i, 8);
    a->first_seen = int_cell(res, i, 9, 0);
    a->last_seen = int_cell(res, i, 10, 0);
    a->fingerprints = text_cell(res, i, 11);
    a->sent = int_cell(res, i, 12, -1);
    a->rate = text_cell(res, i, 13);
    a->cleared_at = int_cell(res, i, 14, 0);
    a->counted = uint_cell(res, i, 15);
    return a;
}

bool fbl_outbound_query_accounts(fbl_outbound_query *query, gint64 since, gint64 until,
                                 const fbl_outbound_rules *rules, bool pseudonymised,
                                 GPtrArray **out, GError **error)
{
    *out = NULL;
    g_autofree char *since_text = timestamp_param(since);
    g_autofree char *until_text = timestamp_param(until);
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
    g_autofree char *since_text = timestamp_param(since);
    g_autofree char *until_text = timestamp_param(until);
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
        ip->ip = text_cell(res, i, 0);
        ip->complaints = uint_cell(res, i, 1);
        ip->reporters = uint_cell(res, i, 2);
        ip->accounts = uint_cell(res, i, 3);
        ip->last_hour = uint_cell(res, i, 4);
        ip->last_day = uint_cell(res, i, 5);
        ip->peak_hour = uint_cell(res, i, 6);
        ip->first_seen = int_cell(res, i, 7, 0);
        ip->last_seen = int_cell(res, i, 8, 0);
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
        *cleared_at = PQntuples(res) > 0 ? int_cell(res, 0, 0, 0) : 0;
    PQclear(res);
    return true;
}
