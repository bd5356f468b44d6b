/* test_mailfile.c - fbl_mailfile_open_regular(): the watcher reads regular files, nothing else;
 * and what it keeps of a mail over the limit */
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

/* A too_large mail keeps its header block (at most 1 MiB) and 64 KiB of body, never more
 * than the limit; its mail_id and size are the whole file's. */
typedef struct prefix_row {
    const char *name;
    const char *head; /* the header block, its empty line included; NULL: none */
    size_t head_fill; /* a header line of this many bytes before it */
    size_t body;      /* bytes of body after it */
    size_t limit;     /* max_mail_bytes */
    size_t want;      /* bytes kept; 0: the whole mail, not too_large */
} prefix_row;

#define KIB ((size_t) 1024)
#define MIB (1024 * KIB)

static const prefix_row prefix_rows[] = {
    {"headers and 64 KiB of body", "Subject: big\n\n", 0, 200 * KIB, 100 * KIB, 14 + 64 * KIB},
    {"CRLF headers", "Subject: big\r\n\r\n", 0, 200 * KIB, 100 * KIB, 16 + 64 * KIB},
    {"no headers", "\n", 0, 200 * KIB, 100 * KIB, 1 + 64 * KIB},
    {"a header block of 700 KiB", "\n", 700 * KIB, 300 * KIB, 900 * KIB, 700 * KIB + 1 + 64 * KIB},
    {"2 MiB of headers: cut", NULL, 2 * MIB, 2 * MIB, 3 * MIB, FBL_MAILFILE_PREFIX_MAX},
    {"headers end past 1 MiB: cut", "\n", MIB, 600 * KIB, 3 * MIB / 2, FBL_MAILFILE_PREFIX_MAX},
    {"a limit under the prefix", "Subject: big\n\n", 0, 200 * KIB, 20 * KIB, 20 * KIB},
    {"at the limit: whole", "Subject: big\n\n", 0, 100 * KIB - 14, 100 * KIB, 0},
};

static GString *prefix_mail(const prefix_row *r)
{
    GString *m = g_string_new(NULL);
    if (r->head_fill > 0) {
        g_string_append(m, "X-Fill: ");
        for (size_t i = m->len; i + 1 < r->head_fill; i++)
            g_string_append_c(m, 'a' + (char) (i % 26));
        g_string_append_c(m, '\n');
    }
    if (r->head != NULL)
        g_string_append(m, r->head);
    for (size_t i = 0; i < r->body; i++)
        g_string_append_c(m, (i % 64) == 63 ? '\n' : 'b');
    return m;
}

static void test_too_large_prefix(void **state)
{
    (void) state;
    bool failed = false;
    for (size_t i = 0; i < G_N_ELEMENTS(prefix_rows); i++) {
        const prefix_row *r = &prefix_rows[i];
        g_autoptr(GString) whole = prefix_mail(r);
        g_autofree char *path = g_build_filename(dir, "big.mail", NULL);
        assert_true(g_file_set_contents(path, whole->str, (gssize) whole->len, NULL));
        g_autofree char *id =
            g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *) whole->str, whole->len);
        fbl_mailfile mail;
        GError *error = NULL;
        assert_true(fbl_mailfile_read(path, r->limit, &mail, &error));
        size_t want = r->want != 0 ? r->want : whole->len;
        if (mail.size != whole->len || strcmp(mail.mail_id, id) != 0 ||
            mail.too_large != (r->want != 0) || mail.data->len != want ||
            memcmp(mail.data->data, whole->str, want) != 0) {
            print_error("%s: size %zu of %zu, kept %u of %zu, too_large %d\n", r->name, mail.size,
                        whole->len, mail.data->len, want, mail.too_large);
            failed = true;
        }
        fbl_mailfile_clear(&mail);
    }
    assert_false(failed);
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
        cmocka_unit_test(test_too_large_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
