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
PGconn *fbl_test_connect_db(const char *conninfo);

/* Run @sql; it must succeed. */
void fbl_test_exec_ok(PGconn *c, const char *sql);

/* The integer in the first row and column of @sql's result. */
gint64 fbl_test_q_int(PGconn *c, const char *sql);

/* A new empty database @name in @admin_conninfo's cluster; returns its conninfo. */
char *fbl_test_fresh_db(const char *admin_conninfo, const char *name);

/* @bytes parsed by @parser as delivered into @mailbox at @at: the mail a watcher sends. */
fbl_sink_mail *fbl_test_make_mail(const fbl_parser *parser, GBytes *bytes, gint64 at,
                                  const char *mailbox);

/*
 * The conninfo that the fixture pg/start wrote to @path; NULL (said on
 * stderr as @program) when it is not there.
 */
char *fbl_test_read_conninfo(const char *path, const char *program);

/*
 * Every *.eml in @dir as GBytes, in file-name order; @names (optional) gets
 * their names in the same order. NULL when @dir or a file cannot be read.
 */
GPtrArray *fbl_test_load_samples(const char *dir, GPtrArray *names);

/* Every sample parsed by @parser and delivered into @mailbox at @at, in order. */
fbl_batch *fbl_test_samples_batch(const fbl_parser *parser, const GPtrArray *samples, gint64 at,
                                  const char *mailbox);

#endif /* FBL_TEST_PG_HELPERS_H */
