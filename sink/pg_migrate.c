/*
 * pg_migrate.c - apply the numbered migrations this binary carries (see
 * fbl_pg_migrate() in pg.h; sink/schema_sql.h)
 */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/pg.h"

#include <string.h>

#include <libpq-fe.h>

#include "parsers/report.h"
#include "sink/pg_internal.h"
#include "sink/pgconn_internal.h"
#include "sink/schema_sql.h"

/* The versions applied, with their checksums; NULL with @error on failure. */
static GHashTable *applied_versions(fbl_pg *pg, GError **error)
{
    const char *what = "read schema_migrations";
    PGresult *res = fbl_pgconn_query(
        pg->conn, "SELECT to_regclass('fbl.schema_migrations') IS NOT NULL", 0, NULL, what, error);
    if (res == NULL)
        return NULL;
    bool exists = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    GHashTable *done = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    if (!exists)
        return done;
    res = fbl_pgconn_query(pg->conn, "SELECT version, checksum FROM fbl.schema_migrations", 0, NULL,
                           what, error);
    if (res == NULL) {
        g_hash_table_unref(done);
        return NULL;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        guint64 v = g_ascii_strtoull(PQgetvalue(res, i, 0), NULL, 10);
        g_hash_table_insert(done, GUINT_TO_POINTER((guint) v), g_strdup(PQgetvalue(res, i, 1)));
    }
    PQclear(res);
    return done;
}

static bool apply_migration(fbl_pg *pg, const fbl_schema_sql_migration *m, const char *checksum,
                            GError **error)
{
    gint64 start = g_get_monotonic_time();
    g_autofree char *what = g_strdup_printf("migration %03u_%s", m->version, m->name);
    if (!fbl_pgconn_exec(pg->conn, "BEGIN", what, error))
        return false;
    bool ok = fbl_pgconn_exec(pg->conn, m->sql, what, error);
    if (ok) {
        g_autofree char *version = g_strdup_printf("%u", m->version);
        const char *params[] = {version, m->name, checksum};
        PGresult *res = fbl_pgconn_query(pg->conn,
                                         "INSERT INTO fbl.schema_migrations (version, name, "
                                         "checksum) VALUES ($1, $2, $3)",
                                         3, params, what, error);
        ok = res != NULL;
        PQclear(res);
    }
    if (ok)
        ok = fbl_pgconn_exec(pg->conn, "COMMIT", what, error);
    if (!ok) {
        fbl_pgconn_rollback(pg->conn);
        return false;
    }
    g_message("migration applied version=%03u name=%s ms=%" G_GINT64_FORMAT, m->version, m->name,
              (g_get_monotonic_time() - start) / 1000);
    return true;
}

/*
 * check_roles - the cluster roles the schema grants to (005, 011) exist,
 * fbl_security as a member of fbl_analyst, or the connected role may make
 * them. A database owner can do everything else
 * the migrations do; this it cannot, so the error gives the SQL to run as a
 * superuser. Checked before the first migration, so that a database is never
 * left half migrated for it.
 */
static bool check_roles(fbl_pg *pg, GError **error)
{
    /* The roles in the order they must be made (fbl_security is made a member of fbl_analyst),
     * and, for an existing fbl_security outside fbl_analyst, the GRANT only an admin may run. */
    PGresult *res = PQexec(
        pg->conn,
        "WITH need(r, n, make) AS (VALUES ('fbl_analyst', 1, 'CREATE ROLE fbl_analyst NOLOGIN;'), "
        "('fbl_writer', 2, 'CREATE ROLE fbl_writer NOLOGIN;'), "
        "('fbl_security', 3, 'CREATE ROLE fbl_security NOLOGIN IN ROLE fbl_analyst;')), "
        "can AS (SELECT rolsuper OR rolcreaterole AS ok FROM pg_catalog.pg_roles "
        "WHERE rolname = current_user), "
        "todo AS (SELECT r, n, make FROM need WHERE NOT EXISTS "
        "(SELECT FROM pg_catalog.pg_roles WHERE rolname = r) "
        "UNION ALL SELECT 'fbl_security in fbl_analyst', 4, 'GRANT fbl_analyst TO fbl_security;' "
        "WHERE EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'fbl_security') "
        "AND EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'fbl_analyst') "
        "AND NOT pg_catalog.pg_has_role('fbl_security', 'fbl_analyst', 'MEMBER') "
        "AND NOT pg_catalog.pg_has_role(current_user, 'fbl_analyst', 'USAGE WITH ADMIN OPTION')) "
        "SELECT string_agg(r, ' and ' ORDER BY n), string_agg(make, ' ' ORDER BY n), "
        "current_user FROM todo WHERE NOT (SELECT ok FROM can)");
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!ok) {
        fbl_pgconn_set_error(pg->conn, res, "check the roles", error);
        PQclear(res);
        return false;
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return true;
    }
    g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_PRIVILEGE,
                "the schema needs %s, which the role %s may not make; as a PostgreSQL "
                "superuser, run: %s then start fbl (or fbl migrate) again",
                PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1));
    PQclear(res);
    return false;
}

/* Whether one of the migrations this binary carries is not in @done. */
static bool any_missing(GHashTable *done)
{
    for (size_t i = 0; i < fbl_schema_sql_count; i++) {
        if (!g_hash_table_contains(done, GUINT_TO_POINTER(fbl_schema_sql_migrations[i].version)))
            return true;
    }
    return false;
}

/* A migration refused for a missing right: say who must own the database. */
static void explain_privilege(const fbl_pg *pg, GError *error)
{
    if (error == NULL || error->code != FBL_PG_ERROR_PRIVILEGE)
        return;
    g_autofree char *more = g_strdup_printf(
        "%s; the migrations must run as the database's owner: createdb -O %s %s, or ALTER "
        "DATABASE %s OWNER TO %s",
        error->message, PQuser(pg->conn), PQdb(pg->conn), PQdb(pg->conn), PQuser(pg->conn));
    g_free(error->message);
    error->message = g_steal_pointer(&more);
}

static bool apply_missing(fbl_pg *pg, unsigned *applied, GError **error)
{
    GHashTable *done = applied_versions(pg, error);
    if (done == NULL)
        return false;
    if (any_missing(done) && !check_roles(pg, error)) {
        g_hash_table_unref(done);
        return false;
    }
    bool ok = true;
    unsigned newest = 0;
    for (size_t i = 0; ok && i < fbl_schema_sql_count; i++) {
        const fbl_schema_sql_migration *m = &fbl_schema_sql_migrations[i];
        char checksum[FBL_SHA256_HEX_LEN + 1];
        fbl_sha256_hex(m->sql, strlen(m->sql), checksum);
        newest = MAX(newest, m->version);
        const char *old = g_hash_table_lookup(done, GUINT_TO_POINTER(m->version));
        if (old != NULL) {
            if (strcmp(old, checksum) != 0)
                g_warning("migration changed since it was applied version=%03u name=%s", m->version,
                          m->name);
            continue;
        }
        GError *local = NULL;
        ok = apply_migration(pg, m, checksum, &local);
        if (ok)
            (*applied)++;
        explain_privilege(pg, local);
        if (local != NULL)
            g_propagate_error(error, local);
    }
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, done);
    while (ok && g_hash_table_iter_next(&it, &key, NULL)) {
        if (GPOINTER_TO_UINT(key) > newest)
            g_warning("the database has a migration this binary does not know version=%03u",
                      GPOINTER_TO_UINT(key));
    }
    g_hash_table_unref(done);
    return ok;
}

bool fbl_pg_migrate(fbl_pg *pg, unsigned *applied, GError **error)
{
    unsigned count = 0;
    if (applied != NULL)
        *applied = 0;
    if (!fbl_pg_ensure_connected(pg, error))
        return false;
    /* Session lock: a second sink waits here, then finds everything applied. */
    if (!fbl_pgconn_exec(pg->conn, "SELECT pg_advisory_lock(hashtext('fbl migrate'))",
                         "lock migrations", error))
        return false;
    GError *local = NULL;
    bool ok = apply_missing(pg, &count, &local);
    if (PQstatus(pg->conn) == CONNECTION_OK) {
        PGresult *res = PQexec(pg->conn, "SELECT pg_advisory_unlock(hashtext('fbl migrate'))");
        if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
            g_debug("unlock failed: %s", res != NULL ? PQresultErrorMessage(res) : "no result");
        PQclear(res);
    }
    if (!ok) {
        g_assert(local != NULL);
        if (!fbl_pg_error_is_transient(local) && local->code != FBL_PG_ERROR_PRIVILEGE)
            local->code = FBL_PG_ERROR_SCHEMA;
        g_propagate_error(error, local);
        return false;
    }
    if (count > 0)
        pg->staging = false; /* a migration may have changed them */
    if (applied != NULL)
        *applied = count;
    return true;
}

bool fbl_pg_rollup_backfill(fbl_pg *pg, fbl_pg_rollup_step step, void *data, GError **error)
{
    if (!fbl_pg_ensure_connected(pg, error))
        return false;
    for (;;) {
        /* Autocommit: one transaction per day. */
        PGresult *res = fbl_pgconn_query(pg->conn, "SELECT fbl.rollup_backfill()", 0, NULL,
                                         "roll up a day of stored reports", error);
        if (res == NULL)
            return false;
        bool done = PQntuples(res) != 1 || PQgetisnull(res, 0, 0);
        if (!done && step != NULL)
            step(PQgetvalue(res, 0, 0), data);
        PQclear(res);
        if (done)
            return true;
    }
}

bool fbl_pg_rollup_pending(fbl_pg *pg, bool *pending, char **complete_since, GError **error)
{
    *pending = false;
    if (complete_since != NULL)
        *complete_since = NULL;
    if (!fbl_pg_ensure_connected(pg, error))
        return false;
    PGresult *res =
        fbl_pgconn_query(pg->conn,
                         "SELECT complete_since FROM fbl.rollup_state WHERE EXISTS "
                         "(SELECT 1 FROM fbl.reports WHERE received_at < complete_since)",
                         0, NULL, "read where the rollups begin", error);
    if (res == NULL)
        return false;
    *pending = PQntuples(res) == 1;
    if (*pending && complete_since != NULL)
        *complete_since = g_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return true;
}
