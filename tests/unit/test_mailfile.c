/* test_mailfile.c - fbl_mailfile_open_regular(): the watcher reads regular files, nothing else */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fbl/mailfile.h"

#define SECRET "CURVE secret key: never to be read through a link\n"
#define MAIL   "Subject: a mail\n\nbody\n"

typedef enum { REGULAR, SYMLINK, DANGLING, FIFO, SOCKET, DIRECTORY, MISSING } kind;

static char *dir;     /* a fresh temporary directory per run */
static int sock = -1; /* the bound socket of the SOCKET row */

/* Make @name in dir as @k; returns its path. */
static char *make(const char *name, kind k)
{
    g_autofree char *secret = g_build_filename(dir, "secret.key", NULL);
    char *path = g_build_filename(dir, name, NULL);
    GError *error = NULL;
    switch (k) {
    case REGULAR:
        assert_true(g_file_set_contents(path, MAIL, -1, &error));
        break;
    case SYMLINK:
        assert_true(g_file_set_contents(secret, SECRET, -1, &error));
        assert_int_equal(symlink(secret, path), 0);
        break;
    case DANGLING:
        assert_int_equal(symlink("/nonexistent/fbl-test", path), 0);
        break;
    case FIFO:
        assert_int_equal(mkfifo(path, 0600), 0);
        break;
    case SOCKET: {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        assert_true(strlen(path) < sizeof sa.sun_path);
        g_strlcpy(sa.sun_path, path, sizeof sa.sun_path);
        sock = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(sock >= 0);
        assert_int_equal(bind(sock, (const struct sockaddr *) &sa, sizeof sa), 0);
        break;
    }
    case DIRECTORY:
        assert_int_equal(g_mkdir(path, 0700), 0);
        break;
    case MISSING:
        break;
    }
    return path;
}

static void test_open_regular(void **state)
{
    (void) state;
    static const struct {
        const char *name;
        kind k;
        const char *refused_as; /* NULL: opened; "": a G_FILE_ERROR */
    } rows[] = {
        {"1.regular", REGULAR, NULL},
        /* a symlink to a secret used to be read and stored */
        {"2.symlink", SYMLINK, "symlink"},
        {"3.dangling", DANGLING, "symlink"},
        /* a FIFO used to hang the watcher in open() */
        {"4.fifo", FIFO, "fifo"},
        {"5.socket", SOCKET, "socket"},
        {"6.directory", DIRECTORY, "directory"},
        {"7.missing", MISSING, ""},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autofree char *path = make(rows[i].name, rows[i].k);
        struct stat st;
        GError *error = NULL;
        int fd = fbl_mailfile_open_regular(path, &st, &error);
        if (rows[i].refused_as == NULL) {
            if (fd < 0)
                fail_msg("%s: refused: %s", rows[i].name, error->message);
            assert_true(S_ISREG(st.st_mode));
            fbl_mailfile mail;
            assert_true(fbl_mailfile_read_fd(fd, path, &st, 1024, &mail, &error));
            assert_int_equal(mail.size, strlen(MAIL));
            assert_memory_equal(mail.data->data, MAIL, strlen(MAIL));
            fbl_mailfile_clear(&mail);
            assert_int_equal(close(fd), 0);
            continue;
        }
        if (fd >= 0)
            fail_msg("%s: opened", rows[i].name);
        assert_non_null(error);
        if (rows[i].refused_as[0] == '\0') {
            assert_true(g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
        } else {
            if (!g_error_matches(error, FBL_MAILFILE_ERROR, FBL_MAILFILE_ERROR_NOT_REGULAR))
                fail_msg("%s: %s", rows[i].name, error->message);
            assert_string_equal(fbl_mailfile_kind(st.st_mode), rows[i].refused_as);
            assert_non_null(strstr(error->message, rows[i].refused_as));
            assert_null(strstr(error->message, "CURVE")); /* nothing of the target is read */
        }
        g_error_free(error);
    }
}

/* A device: refused without being opened (lstat says what it is). */
static void test_device(void **state)
{
    (void) state;
    struct stat st;
    GError *error = NULL;
    assert_int_equal(fbl_mailfile_open_regular("/dev/null", &st, &error), -1);
    assert_true(g_error_matches(error, FBL_MAILFILE_ERROR, FBL_MAILFILE_ERROR_NOT_REGULAR));
    assert_string_equal(fbl_mailfile_kind(st.st_mode), "device");
    g_error_free(error);
}

/* `fbl parse LINK` keeps following a symlink: the user named that file. */
static void test_read_follows(void **state)
{
    (void) state;
    g_autofree char *path = make("8.link-for-parse", SYMLINK);
    fbl_mailfile mail;
    GError *error = NULL;
    assert_true(fbl_mailfile_read(path, 1024, &mail, &error));
    assert_int_equal(mail.size, strlen(SECRET));
    fbl_mailfile_clear(&mail);
}

static int setup(void **state)
{
    (void) state;
    dir = g_dir_make_tmp("fbl-mailfile-XXXXXX", NULL);
    /* A FIFO that blocked open() would hang the test: fail it instead. */
    alarm(60);
    return dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    if (sock >= 0)
        (void) close(sock);
    const char *argv[] = {"rm", "-rf", dir, NULL};
    int status = 0;
    bool ok = g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                           &status, NULL);
    g_free(dir);
    return ok && status == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_regular),
        cmocka_unit_test(test_device),
        cmocka_unit_test(test_read_follows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
