/* pgconn.c - one libpq connection and what its errors mean (see pgconn.h) */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/pgconn.h"

#include <string.h>
#include <sysexits.h>

#include <libpq-fe.h>

#include "sink/pgconn_internal.h"

/* ---- the error domain ---------------------------------------------------- */

/* G_DEFINE_EXTENDED_ERROR names the private type after the domain (GLib's CamelCase). */
typedef struct {
    char sqlstate[6]; /* "" when the server sent none */
} FblPgErrorPrivate;

static void fbl_pg_error_private_init(FblPgErrorPrivate *priv)
{
    priv->sqlstate[0] = '\0';
}

static void fbl_pg_error_private_copy(const FblPgErrorPrivate *src, FblPgErrorPrivate *dest)
{
    g_strlcpy(dest->sqlstate, src->sqlstate, sizeof dest->sqlstate);
}

static void fbl_pg_error_private_clear(FblPgErrorPrivate *priv)
{
    (void) priv;
}

G_DEFINE_EXTENDED_ERROR(FblPgError, fbl_pg_error)

bool fbl_pg_error_is_transient(const GError *error)
{
    return error != NULL && error->domain == FBL_PG_ERROR &&
           (error->code == FBL_PG_ERROR_CONNECT || error->code == FBL_PG_ERROR_TRANSIENT);
}

const char *fbl_pg_error_get_sqlstate(const GError *error)
{
    if (error == NULL || error->domain != FBL_PG_ERROR)
        return "";
    return fbl_pg_error_get_private(error)->sqlstate;
}

/* ---- classification ------------------------------------------------------ */

/*
 * What an SQLSTATE means for the work: the first row whose prefix it starts
 * with (a whole SQLSTATE before its class). Every module that talks to
 * PostgreSQL reads this one table.
 */
static const struct {
    const char *prefix;
    fbl_pg_error code;
} rules[] = {
    /* A right is missing: an administrator must grant it; the data is fine. */
    {"42501", FBL_PG_ERROR_PRIVILEGE},
    /* lock_not_available: our lock_timeout ran out behind a long query
     * (partition creation, fbl prune's DETACH); the lock comes free. */
    {"55P03", FBL_PG_ERROR_TRANSIENT},
    /* object_in_use: a partition busy for ATTACH or DETACH a moment longer. */
    {"55006", FBL_PG_ERROR_TRANSIENT},
    /* Connection exception: the server went away or would not have us. */
    {"08", FBL_PG_ERROR_CONNECT},
    /* Transaction rollback: serialization failure (40001), deadlock (40P01);
     * the same work succeeds when run again. */
    {"40", FBL_PG_ERROR_TRANSIENT},
    /* Insufficient resources: disk full, out of memory, too many connections. */
    {"53", FBL_PG_ERROR_TRANSIENT},
    /* Operator intervention: shutdown (57P01, 57P02), not accepting
     * connections yet (57P03), a cancelled statement (57014). */
    {"57", FBL_PG_ERROR_TRANSIENT},
    /* System error: the server's I/O failed (58030); it may not next time. */
    {"58", FBL_PG_ERROR_TRANSIENT},
    /* Data exception: a value the column refuses (bad text, a date out of range). */
    {"22", FBL_PG_ERROR_DATA},
    /* Integrity constraint violation: a NULL or a key the table refuses. */
    {"23", FBL_PG_ERROR_DATA},
    /* Program limit exceeded: a value over a limit (an index row too large). */
    {"54", FBL_PG_ERROR_DATA},
    /* The rest of 42 (no such table, column or function) and 3F (no such
     * schema): the schema is missing or older than this binary. */
    {"42", FBL_PG_ERROR_SCHEMA},
    {"3F", FBL_PG_ERROR_SCHEMA},
};

fbl_pg_error fbl_pg_classify(const char *sqlstate, bool connection_bad)
{
    if (connection_bad)
        return FBL_PG_ERROR_CONNECT;
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return FBL_PG_ERROR_OTHER;
    for (size_t i = 0; i < G_N_ELEMENTS(rules); i++) {
        if (strncmp(sqlstate, rules[i].prefix, strlen(rules[i].prefix)) == 0)
            return rules[i].code;
    }
    return FBL_PG_ERROR_OTHER;
}

int fbl_pg_error_exit_code(const GError *error)
{
    if (error == NULL || error->domain != FBL_PG_ERROR)
        return EX_SOFTWARE;
    switch ((fbl_pg_error) error->code) {
    case FBL_PG_ERROR_CONNECT:
    case FBL_PG_ERROR_TRANSIENT:
        return EX_UNAVAILABLE;
    case FBL_PG_ERROR_DATA:
        return EX_DATAERR;
    case FBL_PG_ERROR_PRIVILEGE:
        return EX_NOPERM; /* the message says what an administrator runs */
    case FBL_PG_ERROR_SCHEMA:
        return EX_CONFIG;
    case FBL_PG_ERROR_OTHER:
        break;
    }
    return EX_SOFTWARE;
}

bool fbl_pg_check_conninfo(const char *conninfo, bool *has_password, GError **error)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo != NULL ? conninfo : "", &why);
    if (opts == NULL) {
        g_autofree char *msg = g_strchomp(g_strdup(why != NULL ? why : "out of memory"));
        PQfreemem(why);
        g_set_error(error, FBL_PG_ERROR, FBL_PG_ERROR_OTHER, "%s", msg);
        return false;
    }
    bool password = false;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL) {
            password = true;
            explicit_bzero(o->val, strlen(o->val)); /* refused, and not left in freed memory */
        }
    }
    PQconninfoFree(opts);
    if (has_password != NULL)
        *has_password = password;
    return true;
}

/* ---- errors from libpq --------------------------------------------------- */

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

void fbl_pgconn_set_error(PGconn *conn, const PGresult *res, const char *what, GError **error)
{
    if (error == NULL)
        return;
    bool bad = PQstatus(conn) != CONNECTION_OK;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *hint = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    g_autofree char *fallback = primary == NULL ? conn_message(conn) : NULL;
    g_autofree char *hinted =
        hint != NULL ? g_strdup_printf(" (hint: %s)", hint) : g_strdup(""); /* what to do */
    fbl_pg_error code = fbl_pg_classify(state, bad);
    if (state != NULL && strlen(state) == 5)
        g_set_error(error, FBL_PG_ERROR, code, "%s: SQLSTATE %s: %s%s", what, state,
                    primary != NULL ? primary : fallback, hinted);
    else
        g_set_error(error, FBL_PG_ERROR, code, "%s: %s%s", what,
                    primary != NULL ? primary : fallback, hinted);
    if (state != NULL && strlen(state) == 5 && *error != NULL) {
        FblPgErrorPrivate *priv = fbl_pg_error_get_private(*error);
        g_strlcpy(priv->sqlstate, state, sizeof priv->sqlstate);
    }
}

/* ---- the connection ------------------------------------------------------ */

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

PGconn *fbl_pgconn_connect(const char *conninfo, const char *application_name, GError **error)
{
    conninfo = conninfo != NULL ? conninfo : "";
    if (!fbl_pg_check_conninfo(conninfo, NULL, error)) {
        g_prefix_error(error, "bad conninfo: ");
        return NULL;
    }
    /* Entries before dbname are defaults the conninfo may override; the
     * encoding after it is ours. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding",
                                NULL};
    const char *const values[] = {"10", application_name, conninfo, "UTF8", NULL};
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
    return conn;
}

bool fbl_pgconn_reconnect(PGconn *conn, bool *reconnected, GError **error)
{
    *reconnected = false;
    if (PQstatus(conn) == CONNECTION_OK)
        return true;
    PQreset(conn);
    if (!check_connection(conn, error))
        return false;
    *reconnected = true;
    g_message("reconnected");
    return true;
}

static PGresult *query(PGconn *conn, const char *sql, int n_params, const char *const *params,
                       int format, const char *what, GError **error)
{
    PGresult *res = PQexecParams(conn, sql, n_params, NULL, params, NULL, NULL, format);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    fbl_pgconn_set_error(conn, res, what, error);
    PQclear(res);
    return NULL;
}

PGresult *fbl_pgconn_query(PGconn *conn, const char *sql, int n_params, const char *const *params,
                           const char *what, GError **error)
{
    return query(conn, sql, n_params, params, 0, what, error);
}

PGresult *fbl_pgconn_query_binary(PGconn *conn, const char *sql, int n_params,
                                  const char *const *params, const char *what, GError **error)
{
    return query(conn, sql, n_params, params, 1, what, error);
}

bool fbl_pgconn_exec(PGconn *conn, const char *sql, const char *what, GError **error)
{
    /* PQexec, not PQexecParams: a migration is several statements. */
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fbl_pgconn_set_error(conn, res, what, error);
    PQclear(res);
    return ok;
}

void fbl_pgconn_rollback(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    PGresult *res = PQexec(conn, "ROLLBACK");
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        g_debug("rollback failed: %s", res != NULL ? PQresultErrorMessage(res) : "no result");
    PQclear(res);
}

char *fbl_pgconn_timestamp_param(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("infinity");
}

guint64 fbl_pgconn_cell_uint(const PGresult *res, int row, int col)
{
    guint64 n = 0;
    if (!PQgetisnull(res, row, col))
        (void) g_ascii_string_to_unsigned(PQgetvalue(res, row, col), 10, 0, G_MAXUINT64, &n, NULL);
    return n;
}

gint64 fbl_pgconn_cell_int(const PGresult *res, int row, int col, gint64 if_null)
{
    gint64 n = if_null;
    if (!PQgetisnull(res, row, col) &&
        !g_ascii_string_to_signed(PQgetvalue(res, row, col), 10, G_MININT64, G_MAXINT64, &n, NULL))
        n = if_null;
    return n;
}

char *fbl_pgconn_cell_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : g_strdup(PQgetvalue(res, row, col));
}
