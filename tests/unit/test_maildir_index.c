/* test_maildir_index.c - fbl_maildir_index (fbl/maildir.h): fbl's mark of the mails it
 * committed, on real files: made from cur/, appended to, shared by two watchers, compacted,
 * damaged. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "fbl/maildir.h"
#include "tests/unit/harness.h"

static void drop_file(const char *dir, const char *sub, const char *name)
{
    g_autofree char *path = g_build_filename(dir, sub, name, NULL);
    assert_int_equal(g_unlink(path), 0);
}

static char *index_text(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, FBL_MAILDIR_INDEX_FILE, NULL);
    char *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    return text;
}

static fbl_maildir_index *open_index(const char *dir, int want_adopted)
{
    GError *error = NULL;
    int adopted = -2;
    fbl_maildir_index *ix = fbl_maildir_index_open(dir, &adopted, &error);
    if (ix == NULL)
        fail_msg("open: %s", error->message);
    assert_int_equal(adopted, want_adopted);
    return ix;
}

static void add(fbl_maildir_index *ix, const char *name)
{
    GError *error = NULL;
    const char *names[] = {name};
    if (!fbl_maildir_index_add(ix, names, 1, &error))
        fail_msg("add %s: %s", name, error->message);
}

/* A Maildir without an index: cur/ is taken as committed, new/ is not; any info counts. */
static void test_made_from_cur(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    fbl_test_maildir_put(dir, "cur", "1700000000.M1P1.host:2,S");
    fbl_test_maildir_put(dir, "cur", "1700000001.M2P1.host,S=12,W=14:2,");
    fbl_test_maildir_put(dir, "new", "1700000002.M3P1.host");
    fbl_maildir_index *ix = open_index(dir, 2);
    assert_true(fbl_maildir_index_has(ix, "1700000000.M1P1.host"));
    assert_true(fbl_maildir_index_has(ix, "1700000000.M1P1.host:2,FS"));
    assert_true(fbl_maildir_index_has(ix, "1700000001.M2P1.host,S=12,W=14:2,Sa"));
    assert_false(fbl_maildir_index_has(ix, "1700000002.M3P1.host"));
    add(ix, "1700000002.M3P1.host");
    assert_true(fbl_maildir_index_has(ix, "1700000002.M3P1.host:2,S"));
    fbl_maildir_index_free(ix);

    /* Opened again: the index is used, cur/ is not taken again. */
    fbl_test_maildir_put(dir, "cur", "1700000003.M4P1.host:2,");
    ix = open_index(dir, -1);
    assert_true(fbl_maildir_index_has(ix, "1700000002.M3P1.host"));
    assert_false(fbl_maildir_index_has(ix, "1700000003.M4P1.host:2,"));
    assert_int_equal(fbl_maildir_index_size(ix), 3);
    fbl_maildir_index_free(ix);
    fbl_test_remove_tree(dir);
}

/* An empty index made by hand: every mail in cur/ is read. */
static void test_empty_index_reads_cur(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    fbl_test_maildir_put(dir, "cur", "1700000000.M1P1.host:2,S");
    g_autofree char *path = g_build_filename(dir, FBL_MAILDIR_INDEX_FILE, NULL);
    assert_true(g_file_set_contents(path, "", 0, NULL));
    fbl_maildir_index *ix = open_index(dir, -1);
    assert_false(fbl_maildir_index_has(ix, "1700000000.M1P1.host:2,S"));
    fbl_maildir_index_free(ix);
    fbl_test_remove_tree(dir);
}

/* Opening compacts: names of mails gone from new/ and cur/ (a user deleted them) leave. */
static void test_compaction(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    fbl_test_maildir_put(dir, "cur", "1700000000.M1P1.host:2,S");
    fbl_test_maildir_put(dir, "cur", "1700000001.M2P1.host:2,S");
    fbl_test_maildir_put(dir, "new", "1700000002.M3P1.host");
    fbl_maildir_index *ix = open_index(dir, 2);
    add(ix, "1700000002.M3P1.host"); /* committed, still in new/: kept */
    add(ix, "1700000002.M3P1.host"); /* a second ack: a repeated line */
    fbl_maildir_index_free(ix);
    drop_file(dir, "cur", "1700000000.M1P1.host:2,S");
    ix = open_index(dir, -1);
    assert_false(fbl_maildir_index_has(ix, "1700000000.M1P1.host"));
    assert_true(fbl_maildir_index_has(ix, "1700000001.M2P1.host"));
    assert_true(fbl_maildir_index_has(ix, "1700000002.M3P1.host"));
    assert_int_equal(fbl_maildir_index_size(ix), 2);
    g_autofree char *text = index_text(dir);
    assert_int_equal(strlen(text), strlen("1700000001.M2P1.host\n1700000002.M3P1.host\n"));

    /* While it runs: due past FBL_MAILDIR_INDEX_MIN_LINES and twice the mails in cur/. */
    fbl_maildir_index_note_cur(ix, 1);
    for (int i = 0; i < FBL_MAILDIR_INDEX_MIN_LINES; i++) {
        g_autofree char *name = g_strdup_printf("1700001000.M%dP1.host", i);
        add(ix, name);
    }
    assert_true(fbl_maildir_index_compact_due(ix));
    GError *error = NULL;
    assert_true(fbl_maildir_index_compact(ix, &error));
    assert_false(fbl_maildir_index_compact_due(ix));
    assert_int_equal(fbl_maildir_index_size(ix), 2);
    fbl_maildir_index_free(ix);
    fbl_test_remove_tree(dir);
}

/* Names are escaped: a newline or a backslash in a file name stays one name. */
static void test_odd_names(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    static const char *const odd[] = {"1700000000.M1P1.ho\nst", "1700000001.M2P1.h\\st",
                                      "1700000002.M3P1.h\xc3\xa9st", "1700000003.\"q\""};
    fbl_maildir_index *ix = open_index(dir, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(odd); i++) {
        fbl_test_maildir_put(dir, "new", odd[i]);
        add(ix, odd[i]);
    }
    fbl_maildir_index_free(ix);
    ix = open_index(dir, -1);
    for (size_t i = 0; i < G_N_ELEMENTS(odd); i++)
        assert_true(fbl_maildir_index_has(ix, odd[i]));
    assert_false(fbl_maildir_index_has(ix, "1700000000.M1P1.ho"));
    assert_int_equal(fbl_maildir_index_size(ix), G_N_ELEMENTS(odd));
    fbl_maildir_index_free(ix);
    fbl_test_remove_tree(dir);
}

/* Two watchers of one Maildir: each sees what the other appended, also across the
 * other's compaction (which renames a new file over the one it had open). */
static void test_two_watchers(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    fbl_maildir_index *one = open_index(dir, 0);
    fbl_maildir_index *two = open_index(dir, -1);
    fbl_test_maildir_put(dir, "cur", "1700000000.M1P1.host:2,S");
    add(one, "1700000000.M1P1.host");
    assert_false(fbl_maildir_index_has(two, "1700000000.M1P1.host"));
    GError *error = NULL;
    assert_true(fbl_maildir_index_refresh(two, &error));
    assert_true(fbl_maildir_index_has(two, "1700000000.M1P1.host"));

    assert_true(fbl_maildir_index_compact(one, &error));
    fbl_test_maildir_put(dir, "new", "1700000001.M2P1.host");
    add(two, "1700000001.M2P1.host"); /* lands in the compacted file, not the old one */
    assert_true(fbl_maildir_index_refresh(one, &error));
    assert_true(fbl_maildir_index_has(one, "1700000001.M2P1.host"));
    fbl_maildir_index_free(one);
    fbl_maildir_index_free(two);
    fbl_maildir_index *three = open_index(dir, -1);
    assert_true(fbl_maildir_index_has(three, "1700000000.M1P1.host"));
    assert_true(fbl_maildir_index_has(three, "1700000001.M2P1.host"));
    fbl_maildir_index_free(three);
    fbl_test_remove_tree(dir);
}

/* A line cut short (a crash mid-write) does not swallow the next name; a file removed
 * while fbl runs is made again from the names it holds. */
static void test_damage(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    fbl_maildir_index *ix = open_index(dir, 0);
    g_autofree char *path = g_build_filename(dir, FBL_MAILDIR_INDEX_FILE, NULL);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "1700000000.M9", 13), 13);
    assert_int_equal(close(fd), 0);
    fbl_test_maildir_put(dir, "new", "1700000001.M2P1.host");
    add(ix, "1700000001.M2P1.host");
    fbl_maildir_index_free(ix);
    ix = open_index(dir, -1);
    assert_true(fbl_maildir_index_has(ix, "1700000001.M2P1.host"));

    assert_int_equal(g_unlink(path), 0);
    fbl_test_maildir_put(dir, "new", "1700000002.M3P1.host");
    add(ix, "1700000002.M3P1.host");
    fbl_maildir_index_free(ix);
    ix = open_index(dir, -1);
    assert_true(fbl_maildir_index_has(ix, "1700000001.M2P1.host"));
    assert_true(fbl_maildir_index_has(ix, "1700000002.M3P1.host"));
    fbl_maildir_index_free(ix);
    fbl_test_remove_tree(dir);
}

/* A symlink in the index's place is never followed: fbl must not append to its target. */
static void test_symlink_refused(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_maildir_new("fbl-index-XXXXXX");
    g_autofree char *target = g_build_filename(dir, "target", NULL);
    assert_true(g_file_set_contents(target, "", 0, NULL));
    g_autofree char *path = g_build_filename(dir, FBL_MAILDIR_INDEX_FILE, NULL);
    assert_int_equal(symlink(target, path), 0);
    GError *error = NULL;
    int adopted = 0;
    assert_null(fbl_maildir_index_open(dir, &adopted, &error));
    assert_non_null(error);
    assert_non_null(strstr(error->message, FBL_MAILDIR_INDEX_FILE));
    g_error_free(error);
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_size, 0);
    fbl_test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_made_from_cur),   cmocka_unit_test(test_empty_index_reads_cur),
        cmocka_unit_test(test_compaction),      cmocka_unit_test(test_odd_names),
        cmocka_unit_test(test_two_watchers),    cmocka_unit_test(test_damage),
        cmocka_unit_test(test_symlink_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
