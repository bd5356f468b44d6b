/*
 * pg_helpers.h - what the cmocka tests against a real PostgreSQL share
 * (test_pg.c, test_analyst.c). Every helper fails the running test
 * (fail_msg) instead of returning an error.
 */
#ifndef FBL_TEST_PG_HELPERS_H
#define FBL_TEST_PG_HELPERS_H

#include <glib.h>
#include <libpq-fe.h>

#include "parsers/parse.h"
#include "sink/batch.h"

/* A libpq connection to @conninfo, its notices silenced. */
PGconn *connect_db(const char *conninfo);

/* Run @sql; it must succeed. */
void exec_ok(PGconn *c, const char *sql);

/* The integer in the first row and column of @sql's result. */
gint64 q_int(PGconn *c, const char *sql);

/* A new empty database @name in @admin_conninfo's cluster; returns its conninfo. */
char *fresh_db(const char *admin_conninfo, const char *name);

/* @bytes parsed by @parser as delivered into @mailbox at @at: the mail a watcher sends. */
fbl_sink_mail *make_mail(const fbl_parser *parser, GBytes *bytes, gint64 at, const char *mailbox);

#endif /* FBL_TEST_PG_HELPERS_H */
