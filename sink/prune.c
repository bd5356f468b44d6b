/* prune.c - drop whole months, clear old raw mail (see prune.h) */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/prune.h"

#include <string.h>

#include <libpq-fe.h>

#include "sink/pgconn_internal.h"

struct fbl_prune {
    PGconn *conn;
};

fbl_prune *fbl_prune_new(const char *conninfo, GError **error)
{
    PGconn *conn = fbl_pgconn_connect(conninfo, "fbl prune", error);
    if (conn == NULL)
        return NULL;
    fbl_prune *p = g_new0(fbl_prune, 1);
    p->conn = conn;
    return p;
}

void fbl_prune_free(fbl_prune *prune)
{
    if (prune == NULL)
        return;
    PQfinish(prune->conn);
    g_free(prune);
}

void fbl_prune_month_free(fbl_prune_month *month)
{
    if (month == NULL)
        return;
    g_free(month->start);
    g_free(month->label);
    g_free(month);
}

static guint64 uint_at(const PGresult *res, int row, int col)
{
    return g_ascii_strtoull(PQgetvalue(res, row, col), NULL, 10);
}

/*
 * The whole months before $1 (and before the current month), oldest first:
 * each one's start, its YYYY-MM, partitions, and estimated reports.
 */
static const char months_sql[] =
    "SELECT lo, to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM'), count(*), "
    "       greatest(round(sum(c.reltuples) FILTER (WHERE m.parent = 'reports')), 0)::bigint "
    "FROM fbl.month_partitions() m "
    "JOIN pg_class c ON c.oid = ('fbl.' || quote_ident(m.partition))::regclass "
    "WHERE m.hi <= to_timestamp($1::bigint) "
    "  AND m.hi <= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
    "GROUP BY lo ORDER BY lo";

bool fbl_prune_list_months(fbl_prune *prune, gint64 cutoff, GPtrArray **months, GError **error)
{
    *months = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_prune_month_free);
    g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, cutoff);
    const char *params[] = {at};
    PGresult *res = fbl_pgconn_query(prune->conn, months_sql, 1, params, "list the months", error);
    if (res == NULL)
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
        fbl_prune_month *m = g_new0(fbl_prune_month, 1);
        m->start = g_strdup(PQgetvalue(res, i, 0));
        m->label = g_strdup(PQgetvalue(res, i, 1));
        m->partitions = uint_at(res, i, 2);
        m->reports = uint_at(res, i, 3);
        g_ptr_array_add(*months, m);
    }
    PQclear(res);
    return true;
}

bool fbl_prune_drop_month(fbl_prune *prune, const char *start, guint64 *partitions, GError **error)
{
    const char *params[] = {start};
    PGresult *res = fbl_pgconn_query(prune->conn, "SELECT fbl.drop_month($1::timestamptz)", 1,
                                     params, "drop the month", error);
    if (res == NULL)
        return false;
    if (partitions != NULL)
        *partitions = uint_at(res, 0, 0);
    PQclear(res);
    return true;
}

bool fbl_prune_error_is_busy(const GError *error)
{
    const char *state = fbl_pg_error_get_sqlstate(error);
    /* lock_not_available (fbl.drop_month's lock_timeout), deadlock_detected */
    return strcmp(state, "55P03") == 0 || strcmp(state, "40P01") == 0;
}

bool fbl_prune_defaults(fbl_prune *prune, gint64 cutoff, bool dry_run, guint64 *rows,
                        GError **error)
{
    g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, cutoff);
    const char *params[] = {at, dry_run ? "true" : "false"};
    PGresult *res = fbl_pgconn_query(prune->conn,
                                     "SELECT fbl.prune_defaults(to_timestamp($1::bigint), "
                                     "$2::boolean)",
                                     2, params, "prune the DEFAULT partitions", error);
    if (res == NULL)
        return false;
    *rows = uint_at(res, 0, 0);
    PQclear(res);
    return true;
}

/*
 * The partitions of fbl.mails that hold mail from before $1 and are not
 * dropped by a cutoff of $2 (they end after it), and DEFAULT.
 */
static const char raw_parts_sql[] =
    "SELECT partition FROM fbl.month_partitions() "
    "WHERE parent = 'mails' AND lo < to_timestamp($1::bigint) "
    "  AND hi > CASE WHEN $2::bigint = 0 THEN '-infinity' ELSE to_timestamp($2::bigint) END "
    "UNION ALL SELECT 'mails_default' WHERE to_regclass('fbl.mails_default') IS NOT NULL "
    "ORDER BY 1";

bool fbl_prune_raw_partitions(fbl_prune *prune, gint64 cutoff, gint64 keep_cutoff,
                              GStrv *partitions, GError **error)
{
    *partitions = NULL;
    g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, cutoff);
    g_autofree char *keep = g_strdup_printf("%" G_GINT64_FORMAT, keep_cutoff);
    const char *params[] = {at, keep};
    PGresult *res =
        fbl_pgconn_query(prune->conn, raw_parts_sql, 2, params, "list the mail partitions", error);
    if (res == NULL)
        return false;
    GStrvBuilder *names = g_strv_builder_new();
    for (int i = 0; i < PQntuples(res); i++)
        g_strv_builder_add(names, PQgetvalue(res, i, 0));
    PQclear(res);
    *partitions = g_strv_builder_end(names);
    g_strv_builder_unref(names);
    return true;
}

bool fbl_prune_clear_raw(fbl_prune *prune, const char *partition, gint64 cutoff, bool dry_run,
                         guint64 *mails, GError **error)
{
    *mails = 0;
    char *quoted = PQescapeIdentifier(prune->conn, partition, strlen(partition));
    if (quoted == NULL) {
        fbl_pgconn_set_error(prune->conn, NULL, "quote a partition name", error);
        return false;
    }
    g_autofree char *ident = g_strdup(quoted);
    PQfreemem(quoted);
    g_autofree char *sql = dry_run
                               ? g_strdup_printf("SELECT count(*) FROM fbl.%s WHERE received_at < "
                                                 "to_timestamp($1::bigint) AND raw IS NOT NULL",
                                                 ident)
                               : g_strdup_printf("UPDATE fbl.%s SET raw = NULL WHERE received_at < "
                                                 "to_timestamp($1::bigint) AND raw IS NOT NULL",
                                                 ident);
    g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, cutoff);
    const char *params[] = {at};
    PGresult *res = fbl_pgconn_query(prune->conn, sql, 1, params, partition, error);
    if (res == NULL)
        return false;
    *mails = g_ascii_strtoull(dry_run ? PQgetvalue(res, 0, 0) : PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (dry_run || *mails == 0)
        return true;
    /* Give the TOAST pages back: VACUUM truncates the emptied end of a relation. */
    g_autofree char *vacuum = g_strdup_printf("VACUUM fbl.%s", ident);
    return fbl_pgconn_exec(prune->conn, vacuum, partition, error);
}
