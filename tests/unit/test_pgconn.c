/*
 * test_pgconn.c - what a PostgreSQL error means (sink/pgconn.h): the one
 * SQLSTATE table every module reads, the exit status each class gives the
 * subcommands, and the conninfo check. No server: the SQLSTATEs are the
 * server's five characters, as libpq hands them over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sysexits.h>

#include <cmocka.h>
#include <glib.h>

#include "sink/pgconn.h"
#include "tests/unit/harness.h"

static const char *code_name(fbl_pg_error code)
{
    switch (code) {
    case FBL_PG_ERROR_CONNECT:
        return "CONNECT";
    case FBL_PG_ERROR_TRANSIENT:
        return "TRANSIENT";
    case FBL_PG_ERROR_DATA:
        return "DATA";
    case FBL_PG_ERROR_SCHEMA:
        return "SCHEMA";
    case FBL_PG_ERROR_OTHER:
        return "OTHER";
    case FBL_PG_ERROR_PRIVILEGE:
        return "PRIVILEGE";
    }
    return "?";
}

typedef struct class_row {
    const char *name;
    const char *sqlstate; /* NULL: the server sent none */
    bool connection_bad;
    fbl_pg_error want;
} class_row;

static const class_row classes[] = {
    /* The connection: gone whatever the server said, or a connection exception. */
    {"connection lost, no SQLSTATE", NULL, true, FBL_PG_ERROR_CONNECT},
    {"connection lost beats a data error", "22P02", true, FBL_PG_ERROR_CONNECT},
    {"connection failure", "08006", false, FBL_PG_ERROR_CONNECT},
    {"connection does not exist", "08003", false, FBL_PG_ERROR_CONNECT},
    {"protocol violation", "08P01", false, FBL_PG_ERROR_CONNECT},
    /* Transient: the same work succeeds later. */
    {"serialization failure", "40001", false, FBL_PG_ERROR_TRANSIENT},
    {"deadlock", "40P01", false, FBL_PG_ERROR_TRANSIENT},
    {"disk full", "53100", false, FBL_PG_ERROR_TRANSIENT},
    {"out of memory", "53200", false, FBL_PG_ERROR_TRANSIENT},
    {"too many connections", "53300", false, FBL_PG_ERROR_TRANSIENT},
    {"admin shutdown", "57P01", false, FBL_PG_ERROR_TRANSIENT},
    {"crash shutdown", "57P02", false, FBL_PG_ERROR_TRANSIENT},
    {"cannot connect now (recovery)", "57P03", false, FBL_PG_ERROR_TRANSIENT},
    {"query cancelled (statement_timeout)", "57014", false, FBL_PG_ERROR_TRANSIENT},
    {"I/O error", "58030", false, FBL_PG_ERROR_TRANSIENT},
    {"lock not available (lock_timeout)", "55P03", false, FBL_PG_ERROR_TRANSIENT},
    {"object in use (ATTACH, DETACH)", "55006", false, FBL_PG_ERROR_TRANSIENT},
    /* The rest of 55 is not about a lock. */
    {"object not in prerequisite state", "55000", false, FBL_PG_ERROR_OTHER},
    /* Bad data: the batch goes mail by mail. */
    {"invalid text representation", "22P02", false, FBL_PG_ERROR_DATA},
    {"character not in repertoire", "22021", false, FBL_PG_ERROR_DATA},
    {"datetime field overflow", "22008", false, FBL_PG_ERROR_DATA},
    {"not null violation", "23502", false, FBL_PG_ERROR_DATA},
    {"unique violation", "23505", false, FBL_PG_ERROR_DATA},
    {"index row too large", "54000", false, FBL_PG_ERROR_DATA},
    /* A right: the one SQLSTATE of class 42 that is not the schema's fault. */
    {"insufficient privilege", "42501", false, FBL_PG_ERROR_PRIVILEGE},
    /* The schema is missing or old. */
    {"undefined table", "42P01", false, FBL_PG_ERROR_SCHEMA},
    {"undefined function", "42883", false, FBL_PG_ERROR_SCHEMA},
    {"undefined column", "42703", false, FBL_PG_ERROR_SCHEMA},
    {"invalid schema name", "3F000", false, FBL_PG_ERROR_SCHEMA},
    /* Anything else is permanent and unexplained. */
    {"raise exception", "P0001", false, FBL_PG_ERROR_OTHER},
    {"in failed transaction", "25P02", false, FBL_PG_ERROR_OTHER},
    {"feature not supported", "0A000", false, FBL_PG_ERROR_OTHER},
    {"no SQLSTATE, connection fine", NULL, false, FBL_PG_ERROR_OTHER},
    {"empty SQLSTATE", "", false, FBL_PG_ERROR_OTHER},
    {"a class alone is not a SQLSTATE", "08", false, FBL_PG_ERROR_OTHER},
    {"too long", "080000", false, FBL_PG_ERROR_OTHER},
};

static void test_classify(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
        const class_row *r = &classes[i];
        fbl_pg_error got = fbl_pg_classify(r->sqlstate, r->connection_bad);
        if (got != r->want)
            ROW_FAIL("row '%s': %s is %s, want %s", r->name, r->sqlstate ? r->sqlstate : "NULL",
                     code_name(got), code_name(r->want));
    }
    fbl_test_rows_done();
}

typedef struct exit_row {
    const char *name;
    fbl_pg_error code;
    int want;
    bool transient;
} exit_row;

static const exit_row exits[] = {
    {"cannot connect", FBL_PG_ERROR_CONNECT, EX_UNAVAILABLE, true},
    {"busy server", FBL_PG_ERROR_TRANSIENT, EX_UNAVAILABLE, true},
    {"refused data", FBL_PG_ERROR_DATA, EX_DATAERR, false},
    {"missing right", FBL_PG_ERROR_PRIVILEGE, EX_NOPERM, false},
    {"schema missing, migration failed", FBL_PG_ERROR_SCHEMA, EX_CONFIG, false},
    {"anything else", FBL_PG_ERROR_OTHER, EX_SOFTWARE, false},
};

static void test_exit_code(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(exits); i++) {
        const exit_row *r = &exits[i];
        g_autoptr(GError) e = g_error_new(FBL_PG_ERROR, (gint) r->code, "%s", r->name);
        int got = fbl_pg_error_exit_code(e);
        if (got != r->want)
            ROW_FAIL("row '%s': exit %d, want %d", r->name, got, r->want);
        if (fbl_pg_error_is_transient(e) != r->transient)
            ROW_FAIL("row '%s': transient is %d, want %d", r->name, !r->transient, r->transient);
    }
    fbl_test_rows_done();
    /* Another domain's error, even with a code that means something here. */
    g_autoptr(GError) other = g_error_new(G_FILE_ERROR, FBL_PG_ERROR_CONNECT, "elsewhere");
    assert_int_equal(fbl_pg_error_exit_code(other), EX_SOFTWARE);
    assert_false(fbl_pg_error_is_transient(other));
    assert_false(fbl_pg_error_is_transient(NULL));
}

/* An error made without a server's answer carries no SQLSTATE, and a copy none either. */
static void test_sqlstate_absent(void **state)
{
    (void) state;
    g_autoptr(GError) e = g_error_new(FBL_PG_ERROR, FBL_PG_ERROR_OTHER, "our own check");
    assert_string_equal(fbl_pg_error_get_sqlstate(e), "");
    g_autoptr(GError) copy = g_error_copy(e);
    assert_string_equal(fbl_pg_error_get_sqlstate(copy), "");
    g_autoptr(GError) other = g_error_new(G_FILE_ERROR, G_FILE_ERROR_NOENT, "elsewhere");
    assert_string_equal(fbl_pg_error_get_sqlstate(other), "");
    assert_string_equal(fbl_pg_error_get_sqlstate(NULL), "");
}

typedef struct conninfo_row {
    const char *name;
    const char *conninfo;
    bool ok;
    bool has_password;
} conninfo_row;

static const conninfo_row conninfos[] = {
    {"empty: libpq's defaults", "", true, false},
    {"key=value", "host=/run/postgresql dbname=fbl", true, false},
    {"URI", "postgresql://db.example.net:5433/fbl?connect_timeout=5", true, false},
    {"a password", "dbname=fbl password=secret", true, true},
    {"a password in a URI", "postgresql://fbl:secret@db.example.net/fbl", true, true},
    {"a pgpass file is not a password", "dbname=fbl passfile=/etc/fbl/pgpass", true, false},
    {"unknown key", "dbname=fbl colour=blue", false, false},
    {"no value", "dbname", false, false},
    {"unterminated quote", "dbname='fbl", false, false},
};

static void test_check_conninfo(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(conninfos); i++) {
        const conninfo_row *r = &conninfos[i];
        g_autoptr(GError) error = NULL;
        bool has_password = !r->has_password;
        bool ok = fbl_pg_check_conninfo(r->conninfo, &has_password, &error);
        if (ok != r->ok)
            ROW_FAIL("row '%s': %s, want %s (%s)", r->name, ok ? "accepted" : "refused",
                     r->ok ? "accepted" : "refused", error != NULL ? error->message : "");
        else if (ok && has_password != r->has_password)
            ROW_FAIL("row '%s': has_password %d, want %d", r->name, has_password, r->has_password);
        else if (!ok &&
                 (error == NULL || !g_error_matches(error, FBL_PG_ERROR, FBL_PG_ERROR_OTHER) ||
                  *error->message == '\0'))
            ROW_FAIL("row '%s': refused without FBL_PG_ERROR_OTHER and libpq's reason", r->name);
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_sqlstate_absent),
        cmocka_unit_test(test_check_conninfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
