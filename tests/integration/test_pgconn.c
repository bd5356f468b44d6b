/*
 * test_pgconn.c - sink/pgconn.c against a real PostgreSQL (label integration):
 * the server's own errors arrive classified, with their SQLSTATE beside the
 * code (through copies and prefixes), and give the subcommands' exit codes;
 * a lost connection is CONNECT and comes back; rollback ends a failed
 * transaction.
 *
 * Usage: test_pgconn CONNINFO_FILE
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <cmocka.h>

#include <glib.h>
#include <libpq-fe.h>

#include "sink/pgconn.h"
#include "sink/pgconn_internal.h"
#include "tests/integration/pg_helpers.h"

static char *admin_conninfo;

typedef struct server_row {
    const char *name;
    const char *sql;
    const char *sqlstate;
    fbl_pg_error code;
    int exit_code;
    bool locked; /* another session holds t's lock meanwhile */
} server_row;

static const server_row server_rows[] = {
    {"bad value", "SELECT 'x'::integer", "22P02", FBL_PG_ERROR_DATA, EX_DATAERR, false},
    {"not null", "INSERT INTO t (n) VALUES (NULL)", "23502", FBL_PG_ERROR_DATA, EX_DATAERR, false},
    {"no such table", "SELECT * FROM fbl.nothing", "42P01", FBL_PG_ERROR_SCHEMA, EX_CONFIG, false},
    {"no such function", "SELECT fbl_nothing()", "42883", FBL_PG_ERROR_SCHEMA, EX_CONFIG, false},
    {"no right", "SET ROLE nobody_here; SELECT * FROM t", "42501", FBL_PG_ERROR_PRIVILEGE,
     EX_NOPERM, false},
    {"lock timeout", "SET lock_timeout = '10ms'; LOCK t IN ACCESS EXCLUSIVE MODE", "55P03",
     FBL_PG_ERROR_TRANSIENT, EX_UNAVAILABLE, true},
    {"statement timeout", "SET statement_timeout = '10ms'; SELECT pg_sleep(1)", "57014",
     FBL_PG_ERROR_TRANSIENT, EX_UNAVAILABLE, false},
    {"raised", "DO $$ BEGIN RAISE EXCEPTION 'ours'; END $$", "P0001", FBL_PG_ERROR_OTHER,
     EX_SOFTWARE, false},
};

/* What each server error becomes: code, SQLSTATE, message, exit code; kept through copies. */
static void test_server_errors(void **state)
{
    (void) state;
    g_autofree char *conninfo = fbl_test_fresh_db(admin_conninfo, "t_pgconn_errors");
    PGconn *admin = fbl_test_connect_db(conninfo);
    fbl_test_exec_ok(admin, "CREATE TABLE t (n integer NOT NULL)");
    fbl_test_exec_ok(admin, "DROP ROLE IF EXISTS nobody_here");
    fbl_test_exec_ok(admin, "CREATE ROLE nobody_here NOLOGIN");
    g_autoptr(GError) error = NULL;
    PGconn *conn = fbl_pgconn_connect(conninfo, "fbl test", &error);
    if (conn == NULL)
        fail_msg("connect: %s", error->message);
    for (size_t i = 0; i < G_N_ELEMENTS(server_rows); i++) {
        const server_row *r = &server_rows[i];
        g_autoptr(GError) e = NULL;
        if (r->locked)
            fbl_test_exec_ok(admin, "BEGIN; LOCK t IN ACCESS EXCLUSIVE MODE");
        assert_false(fbl_pgconn_exec(conn, r->sql, r->name, &e));
        if (r->locked)
            fbl_test_exec_ok(admin, "ROLLBACK");
        assert_non_null(e);
        g_prefix_error(&e, "context: ");
        g_autoptr(GError) copy = g_error_copy(e);
        g_autofree char *words = g_strdup_printf("SQLSTATE %s", r->sqlstate);
        if (!g_error_matches(copy, FBL_PG_ERROR, (gint) r->code) ||
            strcmp(fbl_pg_error_get_sqlstate(e), r->sqlstate) != 0 ||
            strcmp(fbl_pg_error_get_sqlstate(copy), r->sqlstate) != 0 ||
            fbl_pg_error_exit_code(copy) != r->exit_code || strstr(e->message, words) == NULL ||
            !g_str_has_prefix(e->message, "context: "))
            fail_msg("row '%s': code %d sqlstate '%s' exit %d: %s", r->name, copy->code,
                     fbl_pg_error_get_sqlstate(copy), fbl_pg_error_exit_code(copy), e->message);
        PGresult *reset = PQexec(conn, "RESET ALL; RESET ROLE");
        PQclear(reset);
    }
    PQfinish(conn);
    fbl_test_exec_ok(admin, "DROP ROLE nobody_here");
    PQfinish(admin);
}

/* A connection the server ended is CONNECT, whatever it said last, and comes back. */
static void test_lost_connection(void **state)
{
    (void) state;
    g_autofree char *conninfo = fbl_test_fresh_db(admin_conninfo, "t_pgconn_lost");
    g_autoptr(GError) error = NULL;
    PGconn *conn = fbl_pgconn_connect(conninfo, "fbl test lost", &error);
    assert_non_null(conn);
    PGconn *admin = fbl_test_connect_db(conninfo);
    assert_int_equal(
        fbl_test_q_int(admin, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                              "FROM pg_stat_activity WHERE application_name = 'fbl test lost'"),
        1);
    PQfinish(admin);
    assert_false(fbl_pgconn_exec(conn, "SELECT 1", "select", &error));
    assert_true(g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_CONNECT));
    assert_true(fbl_pg_error_is_transient(error));
    assert_int_equal(fbl_pg_error_exit_code(error), EX_UNAVAILABLE);
    g_clear_error(&error);
    bool reconnected = false;
    assert_true(fbl_pgconn_reconnect(conn, &reconnected, &error));
    assert_true(reconnected);
    assert_true(fbl_pgconn_exec(conn, "SELECT 1", "select", &error));
    assert_true(fbl_pgconn_reconnect(conn, &reconnected, &error));
    assert_false(reconnected);
    PQfinish(conn);
}

/* No server there: CONNECT, nothing from a server; a conninfo that does not parse: OTHER. */
static void test_no_server(void **state)
{
    (void) state;
    g_autoptr(GError) error = NULL;
    assert_null(fbl_pgconn_connect("host=/nonexistent dbname=x", "fbl test", &error));
    assert_true(g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_CONNECT));
    assert_string_equal(fbl_pg_error_get_sqlstate(error), "");
    assert_true(g_str_has_prefix(error->message, "cannot connect: "));
    assert_null(strchr(error->message, '\n')); /* libpq's lines joined */
    assert_int_equal(fbl_pg_error_exit_code(error), EX_UNAVAILABLE);
    g_clear_error(&error);
    assert_null(fbl_pgconn_connect("dbname='x", "fbl test", &error));
    assert_true(g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_OTHER));
    assert_true(g_str_has_prefix(error->message, "bad conninfo: "));
}

/* A failed statement in a transaction leaves it aborted; rollback ends it; twice is harmless. */
static void test_rollback(void **state)
{
    (void) state;
    g_autofree char *conninfo = fbl_test_fresh_db(admin_conninfo, "t_pgconn_rollback");
    g_autoptr(GError) error = NULL;
    PGconn *conn = fbl_pgconn_connect(conninfo, "fbl test", &error);
    assert_non_null(conn);
    assert_true(fbl_pgconn_exec(conn, "BEGIN", "begin", &error));
    assert_false(fbl_pgconn_exec(conn, "SELECT 1/0", "divide", &error));
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_INERROR);
    fbl_pgconn_rollback(conn);
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
    fbl_pgconn_rollback(conn);
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
    PQfinish(conn);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        (void) fprintf(stderr, "usage: test_pgconn CONNINFO_FILE\n");
        return 2;
    }
    admin_conninfo = fbl_test_read_conninfo(argv[1], "test_pgconn");
    if (admin_conninfo == NULL)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_errors),
        cmocka_unit_test(test_lost_connection),
        cmocka_unit_test(test_no_server),
        cmocka_unit_test(test_rollback),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    g_free(admin_conninfo);
    return failed;
}
