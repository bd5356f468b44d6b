/*
 * pgconn_internal.h - one libpq connection: connect, run statements, roll
 * back, and turn what fails into an FBL_PG_ERROR (sink/pgconn.h)
 *
 * Layer: sink/, for sink/'s modules only (pg.c, outbox.c, prune.c,
 * report_query.c). Blocking libpq I/O on the caller's PGconn, which one
 * thread uses at a time. Server notices are logged at debug (domain
 * "fbl-pg"); nothing else is logged: failures are returned.
 */
#ifndef FBL_PGCONN_INTERNAL_H
#define FBL_PGCONN_INTERNAL_H

#include <stdbool.h>

#include <glib.h>
#include <libpq-fe.h>

#include "sink/pgconn.h"

/*
 * fbl_pgconn_connect - connect with @conninfo
 *
 * @application_name: pg_stat_activity's name, unless @conninfo names one
 *
 * connect_timeout is 10 s unless @conninfo says; client_encoding is UTF8
 * always (every string fbl sends and reads is UTF-8); the server must use
 * integer timestamps (binary COPY and results depend on it; every server
 * since PostgreSQL 10 does).
 *
 * Returns: (transfer full) or NULL with FBL_PG_ERROR_OTHER when @conninfo
 *   does not parse ("bad conninfo: …"), else FBL_PG_ERROR_CONNECT.
 */
PGconn *fbl_pgconn_connect(const char *conninfo, const char *application_name, GError **error);

/*
 * fbl_pgconn_reconnect - make @conn good again when the last call lost it
 *
 * @reconnected: (out) whether it had to (session state is gone: temporary
 *   tables, LISTEN, settings)
 * Returns: false with FBL_PG_ERROR_CONNECT.
 */
bool fbl_pgconn_reconnect(PGconn *conn, bool *reconnected, GError **error);

/*
 * fbl_pgconn_set_error - set @error from a failed statement
 *
 * @res: (nullable) its result; NULL: the connection's own message
 * @what: the step, as the message's prefix ("claim", "drop 2025-01")
 */
void fbl_pgconn_set_error(PGconn *conn, const PGresult *res, const char *what, GError **error);

/*
 * fbl_pgconn_query - run @sql with text parameters, text results
 *
 * @params: (nullable) @n_params values; an element NULL is SQL NULL
 * Returns: (transfer full) the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK):
 *   PQclear() it; or NULL with FBL_PG_ERROR.
 */
PGresult *fbl_pgconn_query(PGconn *conn, const char *sql, int n_params, const char *const *params,
                           const char *what, GError **error);

/* fbl_pgconn_timestamp_param - Unix seconds @t as a timestamptz parameter (ISO-8601 UTC) */
char *fbl_pgconn_timestamp_param(gint64 t);

/*
 * fbl_pgconn_cell_uint, fbl_pgconn_cell_int, fbl_pgconn_cell_text - cell
 * (@row, @col) of a text result: a number (0, or @if_null, for SQL NULL or
 * a value out of range), or a copy of the text ((transfer full), NULL for SQL NULL)
 */
guint64 fbl_pgconn_cell_uint(const PGresult *res, int row, int col);
gint64 fbl_pgconn_cell_int(const PGresult *res, int row, int col, gint64 if_null);
char *fbl_pgconn_cell_text(const PGresult *res, int row, int col);

/* fbl_pgconn_query_binary - fbl_pgconn_query() with binary results (bytea as stored) */
PGresult *fbl_pgconn_query_binary(PGconn *conn, const char *sql, int n_params,
                                  const char *const *params, const char *what, GError **error);

/* fbl_pgconn_exec - run @sql (no parameters) for its effect; false with FBL_PG_ERROR */
bool fbl_pgconn_exec(PGconn *conn, const char *sql, const char *what, GError **error);

/* fbl_pgconn_rollback - end a transaction left open or failed, if the connection has one */
void fbl_pgconn_rollback(PGconn *conn);

#endif /* FBL_PGCONN_INTERNAL_H */
