/*
 * test_secret.c - fbl/secret.c: the owner and mode rule for secret files (one
 * row per owner and mode), and reading them (real files in a temporary
 * directory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "fbl/secret.h"
#include "tests/unit/harness.h"

typedef enum { OWNER_ME, OWNER_ROOT, OWNER_OTHER } owner;

static const struct {
    owner who;
    unsigned mode;
    bool ok;
    const char *says; /* part of the message when refused */
} rows[] = {
    {OWNER_ME, 0600, true, NULL},
    {OWNER_ME, 0400, true, NULL},
    {OWNER_ME, 0700, true, NULL},
    {OWNER_ME, 0644, false, "readable by every user is not secret (mode 0644)"},
    {OWNER_ME, 0604, false, "(mode 0604)"},
    {OWNER_ME, 0601, false, "(mode 0601)"},
    {OWNER_ME, 0620, false, "its group (write)"},
    {OWNER_ME, 0610, false, "its group (write)"},
    {OWNER_ROOT, 0640, true, NULL},
    {OWNER_ROOT, 0440, true, NULL},
    {OWNER_ROOT, 0660, false, "(mode 0660)"},
    {OWNER_ROOT, 0644, false, "every user"},
    {OWNER_OTHER, 0600, false, "neither root nor the user fbl runs as"},
};

static void test_rule(void **state)
{
    (void) state;
    uid_t me = geteuid();
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        struct stat st = {0};
        st.st_mode = S_IFREG | rows[i].mode;
        st.st_uid = rows[i].who == OWNER_ME ? me : rows[i].who == OWNER_ROOT ? 0 : me + 1000;
        g_autoptr(GError) error = NULL;
        bool ok = fbl_secret_check_stat("/etc/fbl/x.token", &st, "token", &error);
        print_message("owner %d mode %04o: %s\n", rows[i].who, rows[i].mode,
                      error != NULL ? error->message : "ok");
        assert_int_equal(ok, rows[i].ok);
        const char *says = error != NULL ? error->message : "";
        if (!rows[i].ok) {
            assert_true(g_error_matches(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_MODE));
            assert_non_null(strstr(says, "/etc/fbl/x.token: a token "));
            assert_non_null(strstr(says, rows[i].says));
        }
    }
    /* Group-readable and mine: refused, unless I am root (who may share it). */
    struct stat st = {0};
    st.st_mode = S_IFREG | 0640;
    st.st_uid = me;
    g_autoptr(GError) error = NULL;
    assert_int_equal(fbl_secret_check_stat("x", &st, "key", &error), me == 0);
    if (me != 0)
        assert_non_null(strstr(error != NULL ? error->message : "", "only a file root owns"));
}

static void test_read(void **state)
{
    (void) state;
    g_autofree char *dir = fbl_test_tmpdir("fbl-secret-XXXXXX");
    g_autofree char *good = fbl_test_write_file(dir, "good", "s3cret \n\n", 0600);
    g_autofree char *open = fbl_test_write_file(dir, "open", "s3cret\n", 0644);
    g_autofree char *empty = fbl_test_write_file(dir, "empty", " \n", 0600);
    g_autofree char *big_text = g_strnfill(FBL_SECRET_MAX_BYTES + 1, 'x');
    g_autofree char *big = fbl_test_write_file(dir, "big", big_text, 0600);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    size_t len = 0;
    g_autoptr(GError) error = NULL;

    g_autofree char *s = fbl_secret_read_file(good, "token", true, &len, &error);
    assert_string_equal(s, "s3cret");
    assert_int_equal(len, 6);

    assert_null(fbl_secret_read_file(open, "token", true, &len, &error));
    assert_true(g_error_matches(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_MODE));
    g_clear_error(&error);
    g_autofree char *waived = fbl_secret_read_file(open, "token", false, &len, &error);
    assert_string_equal(waived, "s3cret");

    const struct {
        const char *path;
        int code;
    } bad[] = {
        {empty, FBL_SECRET_ERROR_FORMAT},
        {big, FBL_SECRET_ERROR_FORMAT},
        {dir, FBL_SECRET_ERROR_FORMAT},
        {missing, FBL_SECRET_ERROR_IO},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        assert_null(fbl_secret_read_file(bad[i].path, "token", true, NULL, &error));
        assert_true(g_error_matches(error, FBL_SECRET_ERROR, bad[i].code));
        assert_non_null(strstr(error->message, bad[i].path));
        g_clear_error(&error);
    }
    const char *files[] = {good, open, empty, big};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++)
        assert_int_equal(g_unlink(files[i]), 0);
    assert_int_equal(g_rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule),
        cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
