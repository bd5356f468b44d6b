/*
 * pg.c - the PostgreSQL store's session and its write path (see pg.h)
 *
 * The session: one connection, its staging tables (fbl.create_staging())
 * and the reporter-limit settings, made again after a reconnect. The write
 * path makes the months a batch needs (fbl.create_month_partitions(), in a
 * short transaction of its own) and hands the batch to the staging
 * (pg_stage.c). Migrations are pg_migrate.c, reparse pg_reparse.c.
 */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/pg.h"

#include <string.h>

#include <libpq-fe.h>

#include "sink/pg_internal.h"
#include "sink/pgconn_internal.h"

/* fbl_pg_set_exempt_reporters: the patterns joined, or NULL when never set. */
static char *exempt_patterns;
G_LOCK_DEFINE_STATIC(exempt_patterns);

void fbl_pg_set_exempt_reporters(const char *const *patterns)
{
    char *joined = patterns != NULL ? g_strjoinv(",", (char **) patterns) : NULL;
    G_LOCK(exempt_patterns);
    g_free(exempt_patterns);
    exempt_patterns = joined;
    G_UNLOCK(exempt_patterns);
}

/* ---- connection -------------------------------------------------------- */

/* Quote @s as an element of a text[] literal. */
static void append_array_element(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

fbl_pg *fbl_pg_new(const fbl_pg_options *options, GError **error)
{
    PGconn *conn = fbl_pgconn_connect(options->conninfo, "fbl", error);
    if (conn == NULL)
        return NULL;

    fbl_pg *pg = g_new0(fbl_pg, 1);
    pg->conn = conn;
    pg->store_raw = options->store_raw;
    if (options->set_reporter_limit) {
        pg->reporter_limit = g_strdup_printf("%u", options->reports_per_reporter_per_hour);
        G_LOCK(exempt_patterns);
        pg->exempt_reporters = g_strdup(exempt_patterns);
        G_UNLOCK(exempt_patterns);
    }
    pg->months = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    GString *vendors = g_string_new("{");
    for (size_t i = 0; options->vendors != NULL && options->vendors[i] != NULL; i++) {
        if (i > 0)
            g_string_append_c(vendors, ',');
        append_array_element(vendors, options->vendors[i]);
    }
    g_string_append_c(vendors, '}');
    pg->vendors = g_string_free(vendors, FALSE);
    g_info("connected server_version=%s", PQparameterStatus(conn, "server_version"));
    return pg;
}

void fbl_pg_free(fbl_pg *pg)
{
    if (pg == NULL)
        return;
    PQfinish(pg->conn);
    g_free(pg->vendors);
    g_free(pg->reporter_limit);
    g_free(pg->exempt_reporters);
    g_hash_table_unref(pg->months);
    g_free(pg);
}

bool fbl_pg_ensure_connected(fbl_pg *pg, GError **error)
{
    bool reconnected = false;
    bool ok = fbl_pgconn_reconnect(pg->conn, &reconnected, error);
    if (reconnected || !ok)
        pg->staging = false; /* they went with the session */
    return ok;
}

bool fbl_pg_ensure_ready(fbl_pg *pg, GError **error)
{
    if (!fbl_pg_ensure_connected(pg, error))
        return false;
    if (pg->staging)
        return true;
    GError *local = NULL;
    if (!fbl_pgconn_exec(pg->conn, "SELECT fbl.create_staging()", "create staging tables",
                         &local)) {
        if (local->code == FBL_PG_ERROR_SCHEMA)
            g_prefix_error(&local, "the schema is missing or old (run fbl migrate): ");
        g_propagate_error(error, local);
        return false;
    }
    if (pg->reporter_limit != NULL) {
        /* Session settings: they go with the connection, so they are set again here.
         * No exemptions set: the database's (or role's) stay. */
        const char *params[] = {pg->reporter_limit, pg->exempt_reporters};
        PGresult *res = fbl_pgconn_query(
            pg->conn,
            "SELECT set_config('fbl.reports_per_reporter_per_hour', $1, false), "
            "set_config('fbl.exempt_reporters', "
            "coalesce($2, current_setting('fbl.exempt_reporters', true), ''), false)",
            2, params, "set the reporter limit", error);
        if (res == NULL)
            return false;
        PQclear(res);
    }
    pg->staging = true;
    return true;
}

/* ---- partitions -------------------------------------------------------- */

/* The start of the UTC month holding @t, and of the month after it. */
static gint64 month_start(gint64 t, int add)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    if (dt == NULL)
        return 0;
    int y = g_date_time_get_year(dt), mo = g_date_time_get_month(dt) + add;
    g_date_time_unref(dt);
    if (mo > 12) {
        y++;
        mo -= 12;
    }
    GDateTime *first = g_date_time_new_utc(y, mo, 1, 0, 0, 0);
    if (first == NULL)
        return 0;
    gint64 s = g_date_time_to_unix(first);
    g_date_time_unref(first);
    return s;
}

/* Make the month of @t and the one after, unless this connection made them. */
static bool ensure_month(fbl_pg *pg, gint64 t, GError **error)
{
    gint64 month = month_start(t, 0);
    if (g_hash_table_contains(pg->months, &month))
        return true;
    gint64 months[2] = {month, month_start(t, 1)};
    for (int i = 0; i < 2; i++) {
        g_autofree char *at = g_strdup_printf("%" G_GINT64_FORMAT, months[i]);
        const char *params[] = {at};
        PGresult *res =
            PQexecParams(pg->conn, "SELECT fbl.create_month_partitions(to_timestamp($1::bigint))",
                         1, NULL, params, NULL, NULL, 0);
        bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
            fbl_pgconn_set_error(pg->conn, res, "create partitions", error);
        else if (strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
            g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(months[i]);
            g_autofree char *name = dt != NULL ? g_date_time_format(dt, "%Y-%m") : g_strdup(at);
            g_message("partitions made month=%s tables=%s", name, PQgetvalue(res, 0, 0));
        }
        PQclear(res);
        if (!ok)
            return false;
    }
    for (int i = 0; i < 2; i++)
        g_hash_table_add(pg->months, g_memdup2(&months[i], sizeof months[i]));
    return true;
}

/* ---- write ------------------------------------------------------------- */

bool fbl_pg_write_batch(fbl_pg *pg, const fbl_batch *batch, GError **error)
{
    guint n = fbl_batch_mails(batch);
    if (n == 0)
        return true;
    gint64 start = g_get_monotonic_time();
    if (!fbl_pg_ensure_ready(pg, error))
        return false;
    /* A mail twice in one batch (two watchers) is staged once. */
    g_autoptr(GPtrArray) mails = g_ptr_array_sized_new(n);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < n; i++) {
        const fbl_sink_mail *m = fbl_batch_get(batch, i);
        if (!g_hash_table_add(seen, (gpointer) m->mail_id))
            continue;
        if (!ensure_month(pg, m->received_at, error))
            return false;
        g_ptr_array_add(mails, (gpointer) m);
    }
    fbl_pg_staging s = {.mails = mails};
    fbl_pg_counts c;
    if (!fbl_pg_store_all(pg, &s, &c, error))
        return false;
    /* The caller logs the commit; this says what was new in it. */
    g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, "STAGE", "pg_write", "MESSAGE",
                     "batch stored mails=%u new=%" G_GUINT64_FORMAT " reports=%" G_GUINT64_FORMAT
                     " rejects=%" G_GUINT64_FORMAT " ms=%" G_GINT64_FORMAT,
                     n, c.mails, c.reports, c.rejects, (g_get_monotonic_time() - start) / 1000);
    return true;
}
