/*
 * pg.c - the PostgreSQL store (see pg.h)
 *
 * The SQL that shapes the rows lives in schema/002_store.sql: this file
 * stages documents with binary COPY into the session's temporary tables and
 * calls fbl.write_staged() or fbl.replace_staged(), in one transaction. So
 * the columns analysts query are derived from the same document by the same
 * SQL on the write path and on reparse, and one statement per table does the
 * work whatever the batch size.
 */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/pg.h"

#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "parsers/report_json.h"
#include "sink/schema_sql.h"

/* Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC). */
#define PG_EPOCH_OFFSET 946684800
/* COPY data is handed to libpq in pieces of about this size. */
#define COPY_CHUNK ((size_t) 256 * 1024)
/* A store_error reject's detail keeps at most this many bytes of the message. */
#define MAX_DETAIL 1000

struct fbl_pg {
    PGconn *conn;
    char *vendors; /* the vendors as a text[] literal */
    bool store_raw;
    /* The session's fbl.reports_per_reporter_per_hour, or NULL: the database's. */
    char *reporter_limit;
    /* The session's fbl.exempt_reporters, or NULL: the database's (with reporter_limit). */
    char *exempt_reporters;
    bool staging;       /* this connection has its staging tables */
    GHashTable *months; /* month start (gint64 seconds) -> present: partitions made */
};

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

GQuark fbl_pg_error_quark(void)
{
    return g_quark_from_static_string("fbl-pg-error");
}

bool fbl_pg_error_is_transient(const GError *error)
{
    return error != NULL && error->domain == FBL_PG_ERROR &&
           (error->code == FBL_PG_ERROR_CONNECT || error->code == FBL_PG_ERROR_TRANSIENT);
}

/* ---- errors ------------------------------------------------------------ */

/* What an SQLSTATE means for the batch (pg.h, STYLE.md §4). */
static fbl_pg_error classify(const char *state, bool connection_bad)
{
    if (connection_bad || state == NULL || strlen(state) != 5)
        return connection_bad ? FBL_PG_ERROR_CONNECT : FBL_PG_ERROR_OTHER;
    if (strncmp(state, "08", 2) == 0)
        return FBL_PG_ERROR_CONNECT;
    /* 40: serialization, deadlock; 53: disk full, out of memory, too many
     * connections; 57: shutdown, cancel, crash recovery; 58: I/O error;
     * 55P03/55006: a lock or object busy (partition creation behind a query). */
    if (strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strncmp(state, "58", 2) == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "55006") == 0)
        return FBL_PG_ERROR_TRANSIENT;
    /* 22: bad value; 23: constraint; 54: a value over a limit (index row size). */
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
        strncmp(state, "54", 2) == 0)
        return FBL_PG_ERROR_DATA;
    /* 42501: a right is missing; the administrator must grant it, the data is fine. */
    if (strcmp(state, "42501") == 0)
        return FBL_PG_ERROR_PRIVILEGE;
    /* 42: no such table, column or function; 3F: no such schema. */
    if (strncmp(state, "42", 2) == 0 || strncmp(state, "3F", 2) == 0)
        return FBL_PG_ERROR_SCHEMA;
    return FBL_PG_ERROR_OTHER;
}

/* libpq's message on one line: its lines ("...failed: No such file or directory",
 * "\tIs the server running locally...?") joined by a blank. */
static char *conn_message(PGconn *conn)
{
    const char *msg = conn != NULL ? PQerrorMessage(conn) : NULL;
    g_auto(GStrv) lines =
        g_strsplit(msg != NULL && *msg != '\0' ? msg : "unknown libpq error", "\n", -1);
    GString *text = g_string_new(NULL);
    for (size_t i = 0; lines[i] != NULL; i++) {
        const char *l = g_strstrip(lines[i]);
        if (*l != '\0')
            g_string_append_printf(text, "%s%s", text->len > 0 ? " " : "", l);
    }
    return g_string_free(text, FALSE);
}

/*
 * set_error - set @error from @res (may be NULL: the connection's message)
 * @what: the step, as the message's prefix
 */
static void set_error(const fbl_pg *pg, const PGresult *res, const char *what, GError **error)
{
    bool bad = PQstatus(pg->conn) != CONNECTION_OK;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *hint = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    g_autofree char *fallback = primary == NULL ? conn_message(pg->conn) : NULL;
    g_autofree char *hinted =
        hint != NULL ? g_strdup_printf(" (hint: %s)", hint) : g_strdup(""); /* what to do */
    fbl_pg_error code = classify(state, bad);
    if (state != NULL)
        g_set_error(error, FBL_PG_ERROR, code, "%s: SQLSTATE %s: %s%s", what, state,
                    primary != NULL ? primary : fallback, hinted);
    else
        g_set_error(error, FBL_PG_ERROR, code, "%s: %s%s", what,
                    primary != NULL ? primary : fallback, hinted);
}

/* ---- connection -------------------------------------------------------- */

static void notice_to_log(void *data, const char *message)
{
    (void) data;
    g_debug("server notice: %s", message);
}

static bool check_connection(PGconn *conn, GError **error)
{
    if (PQstatus(conn) != CONNECTION_OK) {
        g_autofree char *msg = conn_message(conn);
        g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_CONNECT, "cannot connect: %s", msg);
        return false;
    }
    /* Binary COPY sends timestamps as 64-bit microseconds (the only kind since 10). */
    const char *idt = PQparameterStatus(conn, "integer_datetimes");
    if (idt == NULL || strcmp(idt, "on") != 0) {
        g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_OTHER,
                    "the server does not use integer timestamps");
        return false;
    }
    return true;
}

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
    const char *conninfo = options->conninfo != NULL ? options->conninfo : "";
    char *parse_error = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &parse_error);
    if (parsed == NULL) {
        g_autofree char *msg =
            g_strchomp(g_strdup(parse_error != NULL ? parse_error : "out of memory"));
        PQfreemem(parse_error);
        g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_OTHER, "bad conninfo: %s", msg);
        return NULL;
    }
    PQconninfoFree(parsed);

    /* Entries before dbname are defaults the conninfo may override; the
     * encoding after it is ours: every string we send and read is UTF-8. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding",
                                NULL};
    const char *const values[] = {"10", "fbl", conninfo, "UTF8", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL) {
        g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_CONNECT, "cannot connect: out of memory");
        return NULL;
    }
    (void) PQsetNoticeProcessor(conn, notice_to_log, NULL);
    if (!check_connection(conn, error)) {
        PQfinish(conn);
        return NULL;
    }

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

/* ensure_connected - reconnect when the last call lost the connection */
static bool ensure_connected(fbl_pg *pg, GError **error)
{
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return true;
    pg->staging = false;
    PQreset(pg->conn);
    if (!check_connection(pg->conn, error))
        return false;
    g_message("reconnected");
    return true;
}

/* exec - run @sql without parameters; false with @error unless it ends in @expect */
static bool exec(fbl_pg *pg, const char *sql, ExecStatusType expect, const char *what,
                 GError **error)
{
    PGresult *res = PQexec(pg->conn, sql);
    bool ok = res != NULL && PQresultStatus(res) == expect;
    if (!ok)
        set_error(pg, res, what, error);
    PQclear(res);
    return ok;
}

/* rollback - end a failed transaction, if the connection still has one */
static void rollback(fbl_pg *pg)
{
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    PGresult *res = PQexec(pg->conn, "ROLLBACK");
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        g_debug("rollback failed: %s", res != NULL ? PQresultErrorMessage(res) : "no result");
    PQclear(res);
}

/* ensure_ready - connected, with this session's staging tables */
static bool ensure_ready(fbl_pg *pg, GError **error)
{
    if (!ensure_connected(pg, error))
        return false;
    if (pg->staging)
        return true;
    GError *local = NULL;
    if (!exec(pg, "SELECT fbl.create_staging()", PGRES_TUPLES_OK, "create staging tables",
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
        PGresult *res =
            PQexecParams(pg->conn,
                         "SELECT set_config('fbl.reports_per_reporter_per_hour', $1, false), "
                         "set_config('fbl.exempt_reporters', "
                         "coalesce($2, current_setting('fbl.exempt_reporters', true), ''), false)",
                         2, NULL, params, NULL, NULL, 0);
        bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
            set_error(pg, res, "set the reporter limit", error);
        PQclear(res);
        if (!ok)
            return false;
    }
    pg->staging = true;
    return true;
}

/* ---- migrations -------------------------------------------------------- */

/* The versions applied, with their checksums; NULL with @error on failure. */
static GHashTable *applied_versions(fbl_pg *pg, GError **error)
{
    GHashTable *done = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    PGresult *res = PQexec(pg->conn, "SELECT to_regclass('fbl.schema_migrations') IS NOT NULL");
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    bool exists = ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (!ok)
        set_error(pg, res, "read schema_migrations", error);
    PQclear(res);
    if (ok && exists) {
        res = PQexec(pg->conn, "SELECT version, checksum FROM fbl.schema_migrations");
        ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
            set_error(pg, res, "read schema_migrations", error);
        for (int i = 0; ok && i < PQntuples(res); i++) {
            guint64 v = g_ascii_strtoull(PQgetvalue(res, i, 0), NULL, 10);
            g_hash_table_insert(done, GUINT_TO_POINTER((guint) v), g_strdup(PQgetvalue(res, i, 1)));
        }
        PQclear(res);
    }
    if (!ok) {
        g_hash_table_unref(done);
        return NULL;
    }
    return done;
}

static bool apply_migration(fbl_pg *pg, const fbl_schema_sql_migration *m, const char *checksum,
                            GError **error)
{
    gint64 start = g_get_monotonic_time();
    g_autofree char *what = g_strdup_printf("migration %03u_%s", m->version, m->name);
    if (!exec(pg, "BEGIN", PGRES_COMMAND_OK, what, error))
        return false;
    PGresult *res = PQexec(pg->conn, m->sql);
    bool ok = res != NULL &&
              (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
    if (!ok)
        set_error(pg, res, what, error);
    PQclear(res);
    if (ok) {
        g_autofree char *version = g_strdup_printf("%u", m->version);
        const char *params[] = {version, m->name, checksum};
        res = PQexecParams(pg->conn,
                           "INSERT INTO fbl.schema_migrations (version, name, checksum) "
                           "VALUES ($1, $2, $3)",
                           3, NULL, params, NULL, NULL, 0);
        ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            set_error(pg, res, what, error);
        PQclear(res);
    }
    if (ok)
        ok = exec(pg, "COMMIT", PGRES_COMMAND_OK, what, error);
    if (!ok) {
        rollback(pg);
        return false;
    }
    g_message("migration applied version=%03u name=%s ms=%" G_GINT64_FORMAT, m->version, m->name,
              (g_get_monotonic_time() - start) / 1000);
    return true;
}

/*
 * check_roles - the cluster roles the schema grants to (005) exist, or the
 * connected role may create them. A database owner can do everything else
 * the migrations do; this it cannot, so the error gives the SQL to run as a
 * superuser. Checked before the first migration, so that a database is never
 * left half migrated for it.
 */
static bool check_roles(fbl_pg *pg, GError **error)
{
    PGresult *res =
        PQexec(pg->conn, "SELECT string_agg(r, ' ' ORDER BY r), current_user "
                         "FROM unnest(ARRAY['fbl_analyst', 'fbl_writer']) AS r "
                         "WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) "
                         "AND NOT (SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles "
                         "WHERE rolname = current_user)");
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!ok) {
        set_error(pg, res, "check the roles", error);
        PQclear(res);
        return false;
    }
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return true;
    }
    g_auto(GStrv) missing = g_strsplit(PQgetvalue(res, 0, 0), " ", -1);
    g_autofree char *names = g_strjoinv(" and ", missing);
    g_autoptr(GString) sql = g_string_new(NULL);
    for (size_t i = 0; missing[i] != NULL; i++)
        g_string_append_printf(sql, "%sCREATE ROLE %s NOLOGIN;", i > 0 ? " " : "", missing[i]);
    g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_PRIVILEGE,
                "the schema needs the role%s %s, which the role %s may not create; as a "
                "PostgreSQL superuser, run: %s then start fbl (or fbl migrate) again",
                missing[1] != NULL ? "s" : "", names, PQgetvalue(res, 0, 1), sql->str);
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
    if (!ensure_connected(pg, error))
        return false;
    /* Session lock: a second sink waits here, then finds everything applied. */
    if (!exec(pg, "SELECT pg_advisory_lock(hashtext('fbl migrate'))", PGRES_TUPLES_OK,
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
            set_error(pg, res, "create partitions", error);
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

/* ---- binary COPY ------------------------------------------------------- */

typedef struct copy_out {
    fbl_pg *pg;
    GByteArray *buf;
    bool failed; /* PQputCopyData failed: the connection is gone */
} copy_out;

static void copy_flush(copy_out *c)
{
    if (c->buf->len == 0 || c->failed)
        return;
    if (PQputCopyData(c->pg->conn, (const char *) c->buf->data, (int) c->buf->len) != 1)
        c->failed = true;
    g_byte_array_set_size(c->buf, 0);
}

static void put_i16(copy_out *c, gint16 v)
{
    guint16 be = GUINT16_TO_BE((guint16) v);
    g_byte_array_append(c->buf, (const guint8 *) &be, sizeof be);
}

static void put_i32(copy_out *c, gint32 v)
{
    guint32 be = GUINT32_TO_BE((guint32) v);
    g_byte_array_append(c->buf, (const guint8 *) &be, sizeof be);
}

static void put_i64(copy_out *c, gint64 v)
{
    guint64 be = GUINT64_TO_BE((guint64) v);
    g_byte_array_append(c->buf, (const guint8 *) &be, sizeof be);
}

static void put_null(copy_out *c)
{
    put_i32(c, -1);
}

/* A field of @len bytes; large ones go to libpq straight from the caller's memory. */
static void put_bytes(copy_out *c, const void *data, size_t len)
{
    g_assert(len < G_MAXINT32);
    put_i32(c, (gint32) len);
    if (len >= COPY_CHUNK) {
        copy_flush(c);
        if (!c->failed && PQputCopyData(c->pg->conn, data, (int) len) != 1)
            c->failed = true;
        return;
    }
    g_byte_array_append(c->buf, data, (guint) len);
    if (c->buf->len >= COPY_CHUNK)
        copy_flush(c);
}

/* text: UTF-8 only (the server refuses anything else: make it valid). */
static void put_text(copy_out *c, const char *s)
{
    if (s == NULL) {
        put_null(c);
        return;
    }
    size_t len = strlen(s);
    if (g_utf8_validate(s, (gssize) len, NULL)) {
        put_bytes(c, s, len);
        return;
    }
    g_autofree char *valid = g_utf8_make_valid(s, (gssize) len);
    put_bytes(c, valid, strlen(valid));
}

static void put_int8(copy_out *c, gint64 v)
{
    put_i32(c, 8);
    put_i64(c, v);
}

static void put_int8_or_null(copy_out *c, gint64 v)
{
    if (v < 0)
        put_null(c);
    else
        put_int8(c, v);
}

static void put_timestamptz(copy_out *c, gint64 unix_seconds)
{
    put_int8(c, (unix_seconds - PG_EPOCH_OFFSET) * G_USEC_PER_SEC);
}

/* jsonb's binary form: version 1, then the text. */
static void put_jsonb(copy_out *c, const char *json)
{
    size_t len = strlen(json);
    put_i32(c, (gint32) (len + 1));
    g_byte_array_append(c->buf, (const guint8 *) "\1", 1);
    g_byte_array_append(c->buf, (const guint8 *) json, (guint) len);
    if (c->buf->len >= COPY_CHUNK)
        copy_flush(c);
}

static bool copy_begin(copy_out *c, fbl_pg *pg, const char *sql, GError **error)
{
    c->pg = pg;
    c->failed = false;
    PGresult *res = PQexec(pg->conn, sql);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_COPY_IN;
    if (!ok)
        set_error(pg, res, "copy", error);
    PQclear(res);
    if (!ok)
        return false;
    c->buf = g_byte_array_sized_new((guint) COPY_CHUNK + 1024);
    static const guint8 header[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    g_byte_array_append(c->buf, header, sizeof header);
    put_i32(c, 0); /* flags */
    put_i32(c, 0); /* header extension */
    return true;
}

/* copy_end - finish the COPY; false with @error when it or the server failed */
static bool copy_end(copy_out *c, const char *what, GError **error)
{
    put_i16(c, -1);
    copy_flush(c);
    g_byte_array_unref(c->buf);
    c->buf = NULL;
    bool ok = !c->failed;
    if (PQputCopyEnd(c->pg->conn, NULL) != 1)
        ok = false;
    bool have_error = false;
    PGresult *res;
    /* After PQputCopyEnd the results end; a broken connection ends them too. */
    while ((res = PQgetResult(c->pg->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && !have_error) {
            set_error(c->pg, res, what, error);
            have_error = true;
        }
        PQclear(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
            break; /* never reached in blocking mode; do not spin */
    }
    if (!ok && !have_error)
        set_error(c->pg, NULL, what, error);
    return ok && !have_error;
}

/* ---- staging ----------------------------------------------------------- */

/*
 * What to stage: the mails @mails (fbl_sink_mail *). With @store_error set,
 * their reports are left out and each gets a store_error reject with that
 * detail instead. With @keys_only, the mails are staged as keys to replace
 * (reparse) rather than as mails to insert.
 */
typedef struct staging {
    GPtrArray *mails;
    const char *store_error;
    bool keys_only;
} staging;

static bool stage_mails(fbl_pg *pg, const staging *s, GError **error)
{
    copy_out c;
    const char *sql = s->keys_only
                          ? "COPY pg_temp.fbl_stage_keys (mail_id, received_at) FROM STDIN "
                            "(FORMAT binary)"
                          : "COPY pg_temp.fbl_stage_mails (mail_id, received_at, mailbox, size, "
                            "raw) FROM STDIN (FORMAT binary)";
    if (!copy_begin(&c, pg, sql, error))
        return false;
    for (guint i = 0; i < s->mails->len && !c.failed; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        put_i16(&c, s->keys_only ? 2 : 5);
        put_text(&c, m->mail_id);
        put_timestamptz(&c, m->received_at);
        if (s->keys_only)
            continue;
        put_text(&c, m->mailbox);
        put_int8_or_null(&c, m->size);
        if (pg->store_raw && m->raw != NULL) {
            gsize len;
            const void *data = g_bytes_get_data(m->raw, &len);
            put_bytes(&c, data, len);
        } else {
            put_null(&c);
        }
    }
    return copy_end(&c, "stage mails", error);
}

static bool stage_reports(fbl_pg *pg, const staging *s, GError **error)
{
    copy_out c;
    if (!copy_begin(&c, pg,
                    "COPY pg_temp.fbl_stage_reports (id, mail_id, received_at, doc) FROM STDIN "
                    "(FORMAT binary)",
                    error))
        return false;
    for (guint i = 0; s->store_error == NULL && i < s->mails->len && !c.failed; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        for (guint j = 0; j < m->reports->len; j++) {
            const fbl_report *r = g_ptr_array_index(m->reports, j);
            json_t *doc = fbl_report_to_json(r);
            char *text = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            put_i16(&c, 4);
            put_text(&c, r->id);
            /* The mail's keys, not the document's: they are what the rows join on. */
            put_text(&c, m->mail_id);
            put_timestamptz(&c, m->received_at);
            if (text != NULL)
                put_jsonb(&c, text);
            else
                put_null(&c); /* cannot happen: the column refuses it (23502) */
            free(text);
        }
    }
    return copy_end(&c, "stage reports", error);
}

static bool stage_rejects(fbl_pg *pg, const staging *s, GError **error)
{
    copy_out c;
    if (!copy_begin(&c, pg,
                    "COPY pg_temp.fbl_stage_rejects (mail_id, received_at, mailbox, reason, "
                    "detail, size) FROM STDIN (FORMAT binary)",
                    error))
        return false;
    for (guint i = 0; i < s->mails->len && !c.failed; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        const fbl_reject *j = m->reject;
        if (s->store_error == NULL && j == NULL)
            continue;
        put_i16(&c, 6);
        put_text(&c, m->mail_id);
        put_timestamptz(&c, m->received_at);
        put_text(&c, j != NULL && j->mailbox != NULL ? j->mailbox : m->mailbox);
        if (s->store_error != NULL) {
            put_text(&c, "store_error");
            put_text(&c, s->store_error);
            put_int8_or_null(&c, m->size);
        } else {
            put_text(&c, fbl_reject_reason_to_string(j->reason));
            put_text(&c, j->detail);
            put_int8_or_null(&c, j->size >= 0 ? j->size : m->size);
        }
    }
    return copy_end(&c, "stage rejects", error);
}

/* The first integer column of @res, row 0, or 0. */
static guint64 result_uint(const PGresult *res, int column)
{
    if (PQntuples(res) < 1 || PQnfields(res) <= column || PQgetisnull(res, 0, column))
        return 0;
    return g_ascii_strtoull(PQgetvalue(res, 0, column), NULL, 10);
}

typedef struct counts {
    guint64 mails, reports, rejects, changed;
} counts;

/*
 * store - stage @s and move it into the tables, in one transaction
 *
 * Write: fbl.write_staged(); reparse (keys_only): fbl.replace_staged().
 */
static bool store(fbl_pg *pg, const staging *s, counts *out, GError **error)
{
    *out = (counts){0};
    if (!exec(pg, "BEGIN", PGRES_COMMAND_OK, "begin", error))
        return false;
    bool ok =
        stage_mails(pg, s, error) && stage_reports(pg, s, error) && stage_rejects(pg, s, error);
    if (ok) {
        const char *params[] = {pg->vendors};
        PGresult *res = PQexecParams(pg->conn,
                                     s->keys_only ? "SELECT fbl.replace_staged($1::text[])"
                                                  : "SELECT mails, reports, rejects "
                                                    "FROM fbl.write_staged($1::text[])",
                                     1, NULL, params, NULL, NULL, 0);
        ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok) {
            set_error(pg, res, s->keys_only ? "replace" : "write", error);
        } else if (s->keys_only) {
            out->changed = result_uint(res, 0);
        } else {
            out->mails = result_uint(res, 0);
            out->reports = result_uint(res, 1);
            out->rejects = result_uint(res, 2);
        }
        PQclear(res);
    }
    if (ok)
        ok = exec(pg, "COMMIT", PGRES_COMMAND_OK, "commit", error);
    if (!ok)
        rollback(pg);
    return ok;
}

/* A store_error reject's detail: the message, bounded, valid UTF-8. */
static char *store_error_detail(const GError *e)
{
    const char *msg = e->message;
    size_t len = strlen(msg);
    if (len > MAX_DETAIL) {
        const char *end = g_utf8_find_prev_char(msg, msg + MAX_DETAIL + 1);
        len = end != NULL ? (size_t) (end - msg) : MAX_DETAIL;
    }
    return g_utf8_make_valid(msg, (gssize) len);
}

/*
 * store_one_by_one - after @s was refused as bad data: store each mail alone,
 * and each that is still refused as a store_error reject (write), or leave it
 * as it was (reparse). Fails only on an error that is not about the data.
 */
static bool store_one_by_one(fbl_pg *pg, const staging *s, counts *total, GError **error)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new();
    for (guint i = 0; i < s->mails->len; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        g_ptr_array_set_size(one, 0);
        g_ptr_array_add(one, (gpointer) m);
        staging single = {.mails = one, .keys_only = s->keys_only};
        counts c;
        g_autoptr(GError) local = NULL;
        if (store(pg, &single, &c, &local)) {
            total->mails += c.mails;
            total->reports += c.reports;
            total->rejects += c.rejects;
            total->changed += c.changed;
            continue;
        }
        if (local->code != FBL_PG_ERROR_DATA) {
            g_propagate_error(error, g_steal_pointer(&local));
            return false;
        }
        const char *at = strstr(local->message, "SQLSTATE ");
        g_autofree char *state = g_strndup(at != NULL ? at : "", 14);
        g_debug("mail refused mail_id=%s error=%s", m->mail_id, local->message);
        if (s->keys_only) {
            g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", m->mail_id, "STAGE",
                             "pg_reparse", "MESSAGE",
                             "reparsed mail refused, its rows are kept as they were %s", state);
            continue;
        }
        g_autofree char *detail = store_error_detail(local);
        staging rejected = {.mails = one, .store_error = detail};
        g_clear_error(&local);
        if (!store(pg, &rejected, &c, error))
            return false;
        total->mails += c.mails;
        total->rejects += c.rejects;
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", m->mail_id, "STAGE", "pg_store",
                         "MESSAGE", "mail refused, stored as a store_error reject %s", state);
    }
    return true;
}

/* store_all - store @s; bad data makes it go mail by mail */
static bool store_all(fbl_pg *pg, const staging *s, counts *c, GError **error)
{
    GError *local = NULL;
    if (store(pg, s, c, &local))
        return true;
    if (local->code != FBL_PG_ERROR_DATA) {
        g_propagate_error(error, local);
        return false;
    }
    g_message("batch refused, storing mail by mail mails=%u %.14s", s->mails->len,
              strstr(local->message, "SQLSTATE ") != NULL ? strstr(local->message, "SQLSTATE ")
                                                          : "");
    g_clear_error(&local);
    return store_one_by_one(pg, s, c, error);
}

/* ---- write ------------------------------------------------------------- */

bool fbl_pg_write_batch(fbl_pg *pg, const fbl_batch *batch, GError **error)
{
    guint n = fbl_batch_mails(batch);
    if (n == 0)
        return true;
    gint64 start = g_get_monotonic_time();
    if (!ensure_ready(pg, error))
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
    staging s = {.mails = mails};
    counts c;
    if (!store_all(pg, &s, &c, error))
        return false;
    /* The caller logs the commit; this says what was new in it. */
    g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, "STAGE", "pg_write", "MESSAGE",
                     "batch stored mails=%u new=%" G_GUINT64_FORMAT " reports=%" G_GUINT64_FORMAT
                     " rejects=%" G_GUINT64_FORMAT " ms=%" G_GINT64_FORMAT,
                     n, c.mails, c.reports, c.rejects, (g_get_monotonic_time() - start) / 1000);
    return true;
}

/* ---- reparse ----------------------------------------------------------- */

typedef struct reparse {
    fbl_pg *pg;
    const fbl_parser *parser;
    fbl_pg_defaults_fn defaults;
    void *defaults_data;
    GPtrArray *page;  /* fbl_sink_mail *, without raw */
    gint64 last_usec; /* keyset cursor: received_at in microseconds since 2000, */
    char *last_id;    /* and mail_id; NULL before the first row */
    guint rows;       /* rows read in this page */
} reparse;

static gint64 be64(const char *p)
{
    guint64 v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (guint8) p[i];
    return (gint64) v;
}

/* Parse one stored mail into the page. Row: mail_id, received_at, mailbox, raw (binary). */
static void reparse_row(reparse *rp, const PGresult *res)
{
    if (PQgetlength(res, 0, 1) != 8)
        return;
    gint64 usec = be64(PQgetvalue(res, 0, 1));
    rp->rows++;
    rp->last_usec = usec;
    g_free(rp->last_id);
    rp->last_id = g_strndup(PQgetvalue(res, 0, 0), (gsize) PQgetlength(res, 0, 0));
    if (strlen(rp->last_id) != FBL_SHA256_HEX_LEN) {
        g_warning("mail skipped: its mail_id is not a SHA-256");
        return;
    }
    if (usec % G_USEC_PER_SEC != 0) {
        /* fbl writes whole seconds; keys it cannot restate are not its rows. */
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", rp->last_id, "MESSAGE",
                         "mail skipped: received_at has a fraction of a second");
        return;
    }
    g_autoptr(fbl_sink_mail) m = fbl_sink_mail_new();
    g_strlcpy(m->mail_id, rp->last_id, sizeof m->mail_id);
    m->received_at = usec / G_USEC_PER_SEC + PG_EPOCH_OFFSET;
    if (!PQgetisnull(res, 0, 2))
        m->mailbox = g_strndup(PQgetvalue(res, 0, 2), (gsize) PQgetlength(res, 0, 2));
    const char *raw = PQgetvalue(res, 0, 3);
    size_t len = (size_t) PQgetlength(res, 0, 3);
    m->size = (int64_t) len;

    const fbl_mail_meta *d =
        rp->defaults != NULL ? rp->defaults(m->mailbox, rp->defaults_data) : NULL;
    fbl_mail_meta meta = {.default_feedback_type = FBL_FEEDBACK_ABUSE};
    if (d != NULL)
        meta = *d;
    meta.mailbox = m->mailbox;
    meta.received_at = m->received_at;
    fbl_parse_result *result = fbl_parser_parse(rp->parser, raw, len, &meta);
    if (strcmp(result->mail_id, m->mail_id) != 0)
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", m->mail_id, "MESSAGE",
                         "stored raw mail does not hash to its mail_id; kept under it");
    /* Rows stay under the stored mail_id whatever the bytes hash to now. */
    for (guint i = 0; i < result->reports->len; i++) {
        fbl_report *r = g_ptr_array_index(result->reports, i);
        fbl_report_set_ids(r, m->mail_id, r->part);
        g_ptr_array_add(m->reports, r);
    }
    g_ptr_array_set_free_func(result->reports, NULL);
    g_ptr_array_set_size(result->reports, 0);
    g_ptr_array_set_free_func(result->reports, (GDestroyNotify) fbl_report_free);
    if (result->reject != NULL) {
        m->reject = g_steal_pointer(&result->reject);
        g_strlcpy(m->reject->mail_id, m->mail_id, sizeof m->reject->mail_id);
    }
    fbl_parse_result_free(result);
    g_ptr_array_add(rp->page, g_steal_pointer(&m));
}

/* Read and parse the next page of at most @limit mails, one row at a time. */
static bool reparse_read_page(reparse *rp, const char *since, const char *until, unsigned limit,
                              GError **error)
{
    g_autofree char *last_usec = g_strdup_printf("%" G_GINT64_FORMAT, rp->last_usec);
    g_autofree char *lim = g_strdup_printf("%u", limit);
    const char *params[] = {since,     until,       rp->last_id != NULL ? "t" : "f",
                            last_usec, rp->last_id, lim};
    rp->rows = 0;
    PGconn *conn = rp->pg->conn;
    if (!PQsendQueryParams(
            conn,
            "SELECT mail_id, received_at, mailbox, raw FROM fbl.mails "
            "WHERE raw IS NOT NULL "
            "AND ($1::bigint = 0 OR received_at >= to_timestamp($1::bigint)) "
            "AND ($2::bigint = 0 OR received_at < to_timestamp($2::bigint)) "
            "AND (NOT $3::boolean OR (received_at, mail_id) > "
            "(timestamptz '2000-01-01 00:00:00+00' + $4::bigint * interval '1 microsecond', "
            "$5::text)) "
            "ORDER BY received_at, mail_id LIMIT $6::integer",
            6, NULL, params, NULL, NULL, 1)) {
        set_error(rp->pg, NULL, "read mails", error);
        return false;
    }
    /* One row at a time: one raw mail in memory, however large the page. */
    if (!PQsetSingleRowMode(conn))
        g_debug("single-row mode refused; reading the page whole");
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && ok) {
            reparse_row(rp, res);
        } else if (st == PGRES_TUPLES_OK) {
            /* the end (single-row mode), or the whole page (if it was refused) */
        } else if (ok) {
            set_error(rp->pg, res, "read mails", error);
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

bool fbl_pg_reparse(fbl_pg *pg, const fbl_parser *parser, int64_t since, int64_t until,
                    unsigned batch_size, fbl_pg_defaults_fn defaults, void *defaults_data,
                    void (*progress)(guint64 done, guint64 total, void *data), void *progress_data,
                    guint64 *changed, GError **error)
{
    if (changed != NULL)
        *changed = 0;
    if (!ensure_ready(pg, error))
        return false;
    if (batch_size == 0)
        batch_size = 1;
    g_autofree char *since_s = g_strdup_printf("%" G_GINT64_FORMAT, since);
    g_autofree char *until_s = g_strdup_printf("%" G_GINT64_FORMAT, until);
    const char *params[] = {since_s, until_s};
    PGresult *res = PQexecParams(pg->conn,
                                 "SELECT count(*) FROM fbl.mails WHERE raw IS NOT NULL "
                                 "AND ($1::bigint = 0 OR received_at >= to_timestamp($1::bigint)) "
                                 "AND ($2::bigint = 0 OR received_at < to_timestamp($2::bigint))",
                                 2, NULL, params, NULL, NULL, 0);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    guint64 total = ok ? result_uint(res, 0) : 0;
    if (!ok)
        set_error(pg, res, "count mails", error);
    PQclear(res);
    if (!ok)
        return false;

    reparse rp = {.pg = pg, .parser = parser, .defaults = defaults, .defaults_data = defaults_data};
    rp.page = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_sink_mail_free);
    guint64 done = 0, changes = 0;
    gint64 start = g_get_monotonic_time();
    for (;;) {
        g_ptr_array_set_size(rp.page, 0);
        ok = reparse_read_page(&rp, since_s, until_s, batch_size, error);
        if (!ok || rp.rows == 0)
            break;
        counts c = {0};
        if (rp.page->len > 0) {
            staging s = {.mails = rp.page, .keys_only = true};
            ok = store_all(pg, &s, &c, error);
            if (!ok)
                break;
        }
        done += rp.page->len;
        changes += c.changed;
        if (progress != NULL)
            progress(done, MAX(done, total), progress_data);
        if (rp.rows < batch_size)
            break;
    }
    g_ptr_array_unref(rp.page);
    g_free(rp.last_id);
    if (!ok)
        return false;
    g_message("reparse done mails=%" G_GUINT64_FORMAT " changed=%" G_GUINT64_FORMAT
              " ms=%" G_GINT64_FORMAT,
              done, changes, (g_get_monotonic_time() - start) / 1000);
    if (changed != NULL)
        *changed = changes;
    return true;
}
