/* report_query.c - the analysts' headline tables as text cells (see report_query.h) */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/report_query.h"

#include <errno.h>
#include <poll.h>

#include <libpq-fe.h>

#include "sink/pgconn_internal.h"

/* The parameters' types: timestamptz, timestamptz, int8, text. */
#define TIMESTAMPTZ_OID 1184
#define INT8_OID        20
#define TEXT_OID        25

struct fbl_report_query {
    PGconn *conn;
    bool (*cancelled)(void); /* NULL: never */
};

fbl_report_query *fbl_report_query_new(const char *conninfo, const char *application_name,
                                       GError **error)
{
    PGconn *conn = fbl_pgconn_connect(conninfo, application_name, error);
    if (conn == NULL)
        return NULL;
    fbl_report_query *q = g_new0(fbl_report_query, 1);
    q->conn = conn;
    return q;
}

void fbl_report_query_free(fbl_report_query *query)
{
    if (query == NULL)
        return;
    PQfinish(query->conn);
    g_free(query);
}

void fbl_report_query_set_cancel(fbl_report_query *query, bool (*cancelled)(void))
{
    query->cancelled = cancelled;
}

void fbl_report_rows_free(fbl_report_rows *rows)
{
    if (rows == NULL)
        return;
    for (guint i = 0; i < rows->n_rows * rows->n_cols; i++)
        g_free(rows->cells[i]);
    g_free(rows->cells);
    g_free(rows);
}

const char *fbl_report_rows_get(const fbl_report_rows *rows, guint row, guint col)
{
    g_assert(row < rows->n_rows && col < rows->n_cols);
    return rows->cells[row * rows->n_cols + col];
}

/* The statement of a table: its rows up to $3, then "others" and "total" lines. */
static char *table_sql(const char *select, const char *order, const fbl_report_column *columns,
                       guint n)
{
    GString *sql = g_string_new(NULL);
    g_string_append_printf(sql,
                           "WITH t AS MATERIALIZED (%s), "
                           "n AS (SELECT t.*, row_number() OVER (ORDER BY %s) AS fbl_rn FROM t) "
                           "SELECT 0 AS fbl_kind, fbl_rn",
                           select, order);
    for (guint i = 0; i < n; i++)
        g_string_append_printf(sql, ", %s", columns[i].name);
    g_string_append(sql, " FROM n WHERE $3 = 0 OR fbl_rn <= $3");
    static const char *const lines[] = {"1, count(*) FILTER (WHERE $3 > 0 AND fbl_rn > $3)",
                                        "2, count(*)"};
    for (guint l = 0; l < G_N_ELEMENTS(lines); l++) {
        g_string_append_printf(sql, " UNION ALL SELECT %s", lines[l]);
        for (guint i = 0; i < n; i++) {
            if (columns[i].sum)
                g_string_append_printf(sql, ", coalesce(sum(%s)%s, 0)", columns[i].name,
                                       l == 0 ? " FILTER (WHERE $3 > 0 AND fbl_rn > $3)" : "");
            else
                g_string_append(sql, ", NULL");
        }
        g_string_append(sql, " FROM n");
    }
    g_string_append(sql, " ORDER BY 1, 2");
    return g_string_free(sql, FALSE);
}

static char *iso_utc(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("infinity");
}

static fbl_report_rows *rows_of(const PGresult *res)
{
    fbl_report_rows *rows = g_new0(fbl_report_rows, 1);
    rows->n_rows = (guint) PQntuples(res);
    rows->n_cols = (guint) PQnfields(res);
    rows->cells = g_new0(char *, (gsize) rows->n_rows * rows->n_cols + 1);
    for (guint r = 0; r < rows->n_rows; r++) {
        for (guint c = 0; c < rows->n_cols; c++) {
            if (!PQgetisnull(res, (int) r, (int) c))
                rows->cells[r * rows->n_cols + c] = g_strdup(PQgetvalue(res, (int) r, (int) c));
        }
    }
    return rows;
}

/* Ask the server to cancel the statement running on @conn; the result says when it stopped. */
static void cancel(PGconn *conn)
{
    char why[256] = "";
    PGcancel *c = PQgetCancel(conn);
    if (c == NULL || !PQcancel(c, why, (int) sizeof why))
        g_debug("cannot cancel the report statement: %s", c == NULL ? "no connection" : why);
    PQfreeCancel(c);
}

/* How long a cancelled statement may take to stop before the connection is given up. */
#define CANCEL_WAIT_US (G_GINT64_CONSTANT(2) * G_USEC_PER_SEC)

/*
 * Wait until @conn has a whole result, testing @query's cancel test every
 * FBL_REPORT_QUERY_POLL_MS. Returns: false when the connection failed (its
 * error message says why), or when a cancelled statement did not stop
 * within CANCEL_WAIT_US (the caller drops the connection).
 */
static bool wait_result(fbl_report_query *query)
{
    PGconn *conn = query->conn;
    gint64 asked = 0;
    while (PQisBusy(conn)) {
        if (asked == 0 && query->cancelled()) {
            cancel(conn);
            asked = g_get_monotonic_time();
        } else if (asked != 0 && g_get_monotonic_time() - asked > CANCEL_WAIT_US) {
            return false;
        }
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        if (p.fd < 0)
            return false;
        int n = poll(&p, 1, FBL_REPORT_QUERY_POLL_MS);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && !PQconsumeInput(conn))
            return false;
    }
    return true;
}

/*
 * PQexecParams() that a cancel test can stop: the statement is sent, and
 * its results read as they come. Returns: the last result, as PQexecParams()
 * does (NULL: the connection failed).
 */
static PGresult *exec_cancellable(fbl_report_query *query, const char *sql, int n, const Oid *types,
                                  const char *const *params)
{
    PGconn *conn = query->conn;
    if (!PQsendQueryParams(conn, sql, n, types, params, NULL, NULL, 0))
        return NULL;
    PGresult *last = NULL;
    for (;;) {
        if (!wait_result(query)) {
            PQclear(last);
            return NULL;
        }
        PGresult *res = PQgetResult(conn);
        if (res == NULL)
            return last;
        /* An error result is the one to keep: it says why. */
        if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(res);
            continue;
        }
        PQclear(last);
        last = res;
    }
}

bool fbl_report_query_table(fbl_report_query *query, const char *select, const char *order,
                            const fbl_report_column *columns, guint n_columns, gint64 since,
                            gint64 until, guint top, const char *period, fbl_report_rows **rows,
                            GError **error)
{
    static const Oid types[] = {TIMESTAMPTZ_OID, TIMESTAMPTZ_OID, INT8_OID, TEXT_OID};
    *rows = NULL;
    g_autofree char *sql = table_sql(select, order, columns, n_columns);
    g_autofree char *since_text = iso_utc(since);
    g_autofree char *until_text = until > 0 ? iso_utc(until) : g_strdup("infinity");
    g_autofree char *top_text = g_strdup_printf("%u", top);
    const char *params[] = {since_text, until_text, top_text, period};
    PGresult *res = query->cancelled == NULL
                        ? PQexecParams(query->conn, sql, 4, types, params, NULL, NULL, 0)
                        : exec_cancellable(query, sql, 4, types, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        fbl_pgconn_set_error(query->conn, res, "query", error);
        PQclear(res);
        return false;
    }
    *rows = rows_of(res);
    PQclear(res);
    return true;
}
