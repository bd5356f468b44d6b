/* test_maildir.c - fbl_maildir_retire(): what it reports when new/NAME cannot reach cur/ */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fbl/maildir.h"
#include "tests/unit/harness.h"

typedef enum {
    CUR_DIR,     /* a Maildir as it should be */
    CUR_MISSING, /* cur/ removed under a running watcher */
    CUR_FILE,    /* cur is a regular file */
} cur_state;

/* A Maildir in a fresh temporary directory, cur/ in @cur; new/@name holds a mail unless NULL. */
static char *make_maildir(cur_state cur, const char *name)
{
    GError *error = NULL;
    char *dir = fbl_test_maildir_new("fbl-maildir-XXXXXX");
    g_autofree char *cur_path = g_build_filename(dir, "cur", NULL);
    if (cur != CUR_DIR)
        assert_int_equal(g_rmdir(cur_path), 0);
    if (cur == CUR_FILE)
        assert_true(g_file_set_contents(cur_path, "not a directory\n", -1, &error));
    if (name != NULL) {
        /* open(2), not g_file_set_contents(): its temporary name would be over NAME_MAX */
        static const char body[] = "Subject: x\n\nbody\n";
        g_autofree char *mail = g_build_filename(dir, "new", name, NULL);
        int fd = open(mail, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t) (sizeof body - 1));
        assert_int_equal(close(fd), 0);
    }
    return dir;
}

static bool exists(const char *dir, const char *sub, const char *name)
{
    g_autofree char *path = g_build_filename(dir, sub, name, NULL);
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A name of exactly NAME_MAX bytes (where the Maildirs are made): with ":2,S" it cannot exist. */
static char *name_max(void)
{
    long max = pathconf(g_get_tmp_dir(), _PC_NAME_MAX);
    assert_true(max > 20);
    GString *name = g_string_new("1700000000.M1P1.");
    while (name->len < (gsize) max)
        g_string_append_c(name, 'h');
    return g_string_free(name, FALSE);
}

typedef struct row {
    const char *what;
    cur_state cur;
    const char *name;   /* in new/; NULL: already gone; "" = NAME_MAX bytes long */
    bool ok;            /* fbl_maildir_retire's answer */
    int err;            /* the errno of its error, when not ok */
    const char *in_cur; /* the name in cur/ after it, when ok */
} row;

/* Refused: the error says why (errno text, the mail's name) and the mail stays in new/. */
static void check_refused(const row *r, const char *dir, const char *name, GError *error)
{
    assert_non_null(error);
    if (error->domain != G_FILE_ERROR || error->code != (int) g_file_error_from_errno(r->err))
        fail_msg("%s: error %d (%s), want %s", r->what, error->code, error->message,
                 g_strerror(r->err));
    if (strstr(error->message, name) == NULL || strstr(error->message, g_strerror(r->err)) == NULL)
        fail_msg("%s: the message is '%s'", r->what, error->message);
    g_error_free(error);
    if (!exists(dir, "new", name))
        fail_msg("%s: the mail left new/", r->what);
}

static void check_retired(const row *r, const char *dir, const char *name)
{
    if (r->in_cur != NULL && !exists(dir, "cur", r->in_cur))
        fail_msg("%s: no cur/%s", r->what, r->in_cur);
    if (exists(dir, "new", name))
        fail_msg("%s: still in new/", r->what);
}

static void test_retire(void **state)
{
    (void) state;
    static const row rows[] = {
        {"a mail", CUR_DIR, "1700000000.M1P1.host", true, 0, "1700000000.M1P1.host:2,S"},
        {"an info suffix is kept", CUR_DIR, "1700000000.M2P1.host:2,FS", true, 0,
         "1700000000.M2P1.host:2,FS"},
        {"gone: another watcher retired it", CUR_DIR, NULL, true, 0, NULL},
        /* a missing cur/ used to count as "retired" (ENOENT), silently */
        {"cur/ missing", CUR_MISSING, "1700000000.M3P1.host", false, ENOENT, NULL},
        {"gone, and cur/ missing", CUR_MISSING, NULL, true, 0, NULL},
        {"cur is a file", CUR_FILE, "1700000000.M4P1.host", false, ENOTDIR, NULL},
        {"NAME_MAX: no room for :2,S", CUR_DIR, "", false, ENAMETOOLONG, NULL},
    };
    g_autofree char *long_name = name_max();
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const row *r = &rows[i];
        const char *in_new = r->name != NULL && r->name[0] == '\0' ? long_name : r->name;
        g_autofree char *dir = make_maildir(r->cur, in_new);
        const char *name = in_new != NULL ? in_new : "1700000000.M9P1.host";
        GError *error = NULL;
        bool ok = fbl_maildir_retire(dir, name, &error);
        if (ok != r->ok)
            fail_msg("%s: retire answered %d, want %d (%s)", r->what, ok, r->ok,
                     error != NULL ? error->message : "no error");
        if (ok) {
            assert_null(error);
            check_retired(r, dir, name);
        } else {
            check_refused(r, dir, name, error);
        }
        fbl_test_remove_tree(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
