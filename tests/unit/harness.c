/* harness.c - what the cmocka tests share (see harness.h) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gmime/gmime.h>

#include "parsers/parse.h"
#include "tests/unit/harness.h"

/* Mismatches since the last fbl_test_rows_done(). */
static unsigned failures;

void fbl_test_row_fail(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *text = g_strdup_vprintf(format, ap);
    va_end(ap);
    print_error("%s\n", text);
    failures++;
}

void fbl_test_rows_done(void)
{
    unsigned n = failures;
    failures = 0;
    if (n > 0)
        fail_msg("%u check(s) failed", n);
}

void fbl_test_check_str(const char *row, const char *what, const char *want, const char *got)
{
    if (want == NULL && got == NULL)
        return;
    if (want != NULL && got != NULL && strcmp(want, got) == 0)
        return;
    ROW_FAIL("row '%s': %s: want %s%s%s, got %s%s%s", row, what, want ? "'" : "",
             want ? want : "NULL", want ? "'" : "", got ? "'" : "", got ? got : "NULL",
             got ? "'" : "");
}

char *fbl_test_join(const GPtrArray *list, const char *sep)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < list->len; i++) {
        if (i > 0)
            g_string_append(s, sep);
        g_string_append(s, g_ptr_array_index(list, i));
    }
    return g_string_free(s, FALSE);
}

int fbl_test_setup_gmime(void **state)
{
    (void) state;
    g_mime_init();
    return 0;
}

int fbl_test_teardown_gmime(void **state)
{
    (void) state;
    g_mime_shutdown();
    return 0;
}

int fbl_test_setup_parsers(void **state)
{
    (void) state;
    fbl_parsers_init();
    return 0;
}

int fbl_test_teardown_parsers(void **state)
{
    (void) state;
    fbl_parsers_shutdown();
    return 0;
}

char *fbl_test_tmpdir(const char *tmpl)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp(tmpl, &error);
    if (dir == NULL)
        fail_msg("%s: %s", tmpl, error->message);
    return dir;
}

void fbl_test_remove_tree(const char *dir)
{
    const char *argv[] = {"rm", "-rf", "--", dir, NULL};
    g_autoptr(GError) error = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                      &status, &error))
        fail_msg("rm -rf %s: %s", dir, error->message);
    if (!g_spawn_check_wait_status(status, &error))
        fail_msg("rm -rf %s: %s", dir, error->message);
}

char *fbl_test_write_file(const char *dir, const char *name, const char *text, unsigned mode)
{
    char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_file_set_contents(path, text, -1, &error))
        fail_msg("%s: %s", path, error->message);
    if (g_chmod(path, (int) mode) != 0)
        fail_msg("chmod %s: %s", path, g_strerror(errno));
    return path;
}

char *fbl_test_maildir_new(const char *tmpl)
{
    char *dir = fbl_test_tmpdir(tmpl);
    static const char *const subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
        g_autofree char *sub = g_build_filename(dir, subs[i], NULL);
        if (g_mkdir(sub, 0700) != 0)
            fail_msg("mkdir %s: %s", sub, g_strerror(errno));
    }
    return dir;
}

void fbl_test_maildir_put(const char *dir, const char *sub, const char *name)
{
    g_autofree char *path = g_build_filename(dir, sub, name, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_file_set_contents(path, "Subject: x\n\nx\n", -1, &error))
        fail_msg("%s: %s", path, error->message);
}
