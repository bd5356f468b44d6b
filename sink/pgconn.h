/*
 * pgconn.h - what a PostgreSQL error means: its class, its SQLSTATE, the exit
 * status it gives; and the check of a conninfo
 *
 * Layer: sink/. This header does no I/O and is thread-safe. The connection
 * itself (connect, run a statement, roll back) is sink/pgconn_internal.h,
 * for sink/'s modules only: fbl/ reaches PostgreSQL through them (pg.h,
 * outbox.h, prune.h, report_query.h) and never sees libpq.
 *
 * Errors (FBL_PG_ERROR) are every failure of a sink/ module that talks to
 * PostgreSQL. The code is what the failure means for the work
 * (fbl_pg_classify(), one table in pgconn.c); the SQLSTATE the server sent
 * is kept beside it in the GError (an extended GError domain), read with
 * fbl_pg_error_get_sqlstate(), so no caller parses a message. A message
 * reads "<step>: SQLSTATE <state>: <server's text> (hint: <server's hint>)";
 * libpq's own messages are joined into one line.
 *
 *   code        SQLSTATEs                                   exit status
 *   CONNECT     a lost connection, class 08                 69 (EX_UNAVAILABLE)
 *   TRANSIENT   40, 53, 57, 58, 55P03, 55006                69 (EX_UNAVAILABLE)
 *   DATA        22, 23, 54                                  65 (EX_DATAERR)
 *   PRIVILEGE   42501; a role the schema needs is missing   77 (EX_NOPERM)
 *   SCHEMA      the rest of 42, 3F; a failed migration      78 (EX_CONFIG)
 *   OTHER       anything else                               70 (EX_SOFTWARE)
 *
 * CONNECT and TRANSIENT are transient (STYLE.md §4): keep the work and retry
 * with backoff; the rest are permanent.
 */
#ifndef FBL_PGCONN_H
#define FBL_PGCONN_H

#include <stdbool.h>

#include <glib.h>

#define FBL_PG_ERROR (fbl_pg_error_quark())
GQuark fbl_pg_error_quark(void);

typedef enum {
    FBL_PG_ERROR_CONNECT = 1, /* transient: cannot connect or connection lost */
    FBL_PG_ERROR_TRANSIENT,   /* transient: server busy, shutting down, serialization */
    FBL_PG_ERROR_DATA,        /* permanent: the data was refused (22xxx, 23xxx, 54xxx) */
    FBL_PG_ERROR_SCHEMA,      /* permanent: migrations missing or failed */
    FBL_PG_ERROR_OTHER,       /* permanent: anything else */
    FBL_PG_ERROR_PRIVILEGE,   /* permanent: the role lacks a right (42501), or a role the
                                 schema needs is missing; the message says what to run */
} fbl_pg_error;               /* append new codes at the end only */

/* fbl_pg_error_is_transient - @error is FBL_PG_ERROR_CONNECT or _TRANSIENT */
bool fbl_pg_error_is_transient(const GError *error);

/*
 * fbl_pg_classify - what an SQLSTATE means for the work (the table above)
 *
 * @sqlstate: (nullable) the server's five characters; NULL or malformed: OTHER
 * @connection_bad: the connection is gone, whatever the SQLSTATE: CONNECT
 */
fbl_pg_error fbl_pg_classify(const char *sqlstate, bool connection_bad);

/*
 * fbl_pg_error_get_sqlstate - the SQLSTATE the server sent with @error
 *
 * Returns: (transfer none) five characters, or "" when there was none (a
 *   lost connection, a check of our own) or @error is not an FBL_PG_ERROR.
 */
const char *fbl_pg_error_get_sqlstate(const GError *error);

/*
 * fbl_pg_error_exit_code - the sysexits(3) status a subcommand ends with on
 * @error (the table above); EX_SOFTWARE for an error of another domain
 */
int fbl_pg_error_exit_code(const GError *error);

/*
 * fbl_pg_check_conninfo - @conninfo parses as libpq's key=value string or URI
 *
 * @has_password: (out) (optional) whether it holds a password
 * Returns: false with FBL_PG_ERROR_OTHER and libpq's reason.
 */
bool fbl_pg_check_conninfo(const char *conninfo, bool *has_password, GError **error);

#endif /* FBL_PGCONN_H */
