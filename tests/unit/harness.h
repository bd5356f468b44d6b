/*
 * harness.h - what the cmocka tests share: table rows that report every
 * mismatch and fail once, GMime and parsers set-ups, temporary files and
 * Maildirs on the real file system
 *
 * Layer: tests/. Links GLib, GMime (through fbl_parsers) and cmocka; knows
 * no fbl/ or sink/ module, so every unit test may use it. A helper that
 * cannot do its job fails the running test (cmocka) instead of returning an
 * error. Not thread-safe: the row count is one per process, as cmocka runs
 * one test at a time.
 *
 * Include it after cmocka.h, which needs <stdarg.h>, <stddef.h> and
 * <setjmp.h> before it (STYLE.md §10).
 */
#ifndef FBL_TEST_HARNESS_H
#define FBL_TEST_HARNESS_H

#include <stdbool.h>

#include <glib.h>

/* ---- table rows (STYLE.md §8) ---------------------------------------------------- */

/*
 * fbl_test_row_fail - print one mismatch (with the row's name in it) and
 * count it; the test goes on with the next row
 */
void fbl_test_row_fail(const char *format, ...) G_GNUC_PRINTF(1, 2);

/* ROW_FAIL - how the tables say it */
#define ROW_FAIL(...) fbl_test_row_fail(__VA_ARGS__)

/* fbl_test_rows_done - fail the test if a row failed since the last call; reset the count */
void fbl_test_rows_done(void);

/*
 * fbl_test_check_str - @got must equal @want (both NULL counts as equal);
 * a mismatch is a ROW_FAIL naming @row and @what
 */
void fbl_test_check_str(const char *row, const char *what, const char *want, const char *got);

/* fbl_test_join - (transfer full) the strings of @list joined by @sep: one row compares a list */
char *fbl_test_join(const GPtrArray *list, const char *sep);

/* ---- group set-ups for cmocka_run_group_tests() ------------------------------------- */

/* fbl_test_setup_gmime / fbl_test_teardown_gmime - g_mime_init() and g_mime_shutdown() */
int fbl_test_setup_gmime(void **state);
int fbl_test_teardown_gmime(void **state);

/* fbl_test_setup_parsers / fbl_test_teardown_parsers - fbl_parsers_init() and _shutdown() */
int fbl_test_setup_parsers(void **state);
int fbl_test_teardown_parsers(void **state);

/* ---- files ---------------------------------------------------------------------- */

/* fbl_test_tmpdir - (transfer full) a new empty directory, named from @tmpl ("fbl-x-XXXXXX") */
char *fbl_test_tmpdir(const char *tmpl);

/* fbl_test_remove_tree - rm -rf @dir (real directories may hold FIFOs, sockets, links) */
void fbl_test_remove_tree(const char *dir);

/*
 * fbl_test_write_file - (transfer full) the path of @dir/@name, written with
 * @text and then given @mode (so a mode the umask would narrow is exact)
 */
char *fbl_test_write_file(const char *dir, const char *name, const char *text, unsigned mode);

/*
 * fbl_test_maildir_new - (transfer full) a new Maildir (tmp/, new/, cur/) in
 * a temporary directory named from @tmpl; made here, not by fbl, so a test
 * of fbl/maildir.c does not depend on the code it tests
 */
char *fbl_test_maildir_new(const char *tmpl);

/* fbl_test_maildir_put - @dir/@sub/@name holding a small mail */
void fbl_test_maildir_put(const char *dir, const char *sub, const char *name);

#endif /* FBL_TEST_HARNESS_H */
