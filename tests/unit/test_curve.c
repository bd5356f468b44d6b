/*
 * test_curve.c - fbl/curve.c's key files on the real file system: what
 * fbl keygen writes (modes, no silent overwrite, a secret key that gives its
 * public key), and fbl_curve_read_key() over good files, wrong lengths, bad
 * characters, several keys, wrong modes (the rule of fbl/secret.h) and
 * missing files; which endpoints may go without CURVE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <zmq.h>

#include "fbl/curve.h"
#include "tests/unit/harness.h"

static char *dir;
static char public_key[FBL_CURVE_KEY_LEN + 1]; /* of the pair keygen wrote in @dir */

static int setup(void **state)
{
    (void) state;
    dir = fbl_test_tmpdir("fbl-curve-XXXXXX");
    g_autofree char *prefix = g_build_filename(dir, "sink", NULL);
    g_autoptr(GError) error = NULL;
    return fbl_curve_write_keypair(prefix, false, public_key, &error) ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    fbl_test_remove_tree(dir);
    g_free(dir);
    return 0;
}

static unsigned file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned) (st.st_mode & 07777);
}

/* What keygen wrote: PREFIX.key 0600, PREFIX.pub 0644, and the secret gives the public key. */
static void test_keygen(void **state)
{
    (void) state;
    g_autofree char *key_path = g_build_filename(dir, "sink.key", NULL);
    g_autofree char *pub_path = g_build_filename(dir, "sink.pub", NULL);
    assert_int_equal(file_mode(key_path), 0600);
    assert_int_equal(file_mode(pub_path), 0644);
    g_autoptr(GError) error = NULL;
    char secret[FBL_CURVE_KEY_LEN + 1], pub[FBL_CURVE_KEY_LEN + 1], derived[FBL_CURVE_KEY_LEN + 1];
    assert_true(fbl_curve_read_key(key_path, true, secret, &error));
    assert_true(fbl_curve_read_key(pub_path, false, pub, &error));
    assert_string_equal(pub, public_key);
    assert_int_equal(zmq_curve_public(derived, secret), 0);
    assert_string_equal(derived, public_key);
    explicit_bzero(secret, sizeof secret);

    /* Never replaced by accident: every peer would need the new public key. */
    g_autofree char *prefix = g_build_filename(dir, "sink", NULL);
    char again[FBL_CURVE_KEY_LEN + 1];
    assert_false(fbl_curve_write_keypair(prefix, false, again, &error));
    assert_true(g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_EXIST));
    g_clear_error(&error);
    assert_true(fbl_curve_read_key(pub_path, false, pub, &error));
    assert_string_equal(pub, public_key);
    /* --force replaces both. */
    g_autofree char *other = g_build_filename(dir, "other", NULL);
    char first[FBL_CURVE_KEY_LEN + 1];
    assert_true(fbl_curve_write_keypair(other, false, first, &error));
    assert_true(fbl_curve_write_keypair(other, true, again, &error));
    assert_string_not_equal(first, again);
}

/* One row per key file: its text and mode, read as a secret or a public key. */
typedef struct key_row {
    const char *name;
    const char *text; /* NULL: the file is not there; "DIR": a directory */
    unsigned mode;
    bool secret;
    int ok;           /* 1 yes, 0 no, -1: only when we are root (a root-owned 0640 file) */
    const char *says; /* part of the message when refused */
} key_row;

/* 40 Z85 characters, and the same with a character Z85 does not have. */
#define KEY     "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define NOT_Z85 "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~"

static const key_row key_rows[] = {
    {"bare key", KEY, 0600, true, 1, NULL},
    {"comments, blanks and CRLF", "# fbl CURVE secret key\r\n\r\n  " KEY "  \r\n", 0600, true, 1,
     NULL},
    {"read-only", KEY "\n", 0400, true, 1, NULL},
    {"public key readable by all", KEY "\n", 0644, false, 1, NULL},
    {"secret readable by all", KEY "\n", 0644, true, 0, "every user"},
    {"secret readable by others only", KEY "\n", 0604, true, 0, "(mode 0604)"},
    {"secret writable by the group", KEY "\n", 0660, true, 0, "its group (write)"},
    {"secret shared with the group", KEY "\n", 0640, true, -1, "only a file root owns"},
    {"39 characters", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\n", 0600, true, 0,
     "expected one CURVE key"},
    {"41 characters", KEY "7\n", 0600, true, 0, "expected one CURVE key"},
    {"not Z85", NOT_Z85 "\n", 0600, true, 0, "expected one CURVE key"},
    {"two keys", KEY "\n" KEY "\n", 0600, true, 0, "expected one CURVE key"},
    {"empty", "", 0600, true, 0, "expected one CURVE key"},
    {"only comments", "# no key here\n", 0600, false, 0, "expected one CURVE key"},
    {"missing", NULL, 0, true, 0, "No such file"},
    {"directory", "DIR", 0700, true, 0, "not a key file"},
};

static void test_read_key(void **state)
{
    (void) state;
    bool root = geteuid() == 0;
    for (size_t i = 0; i < G_N_ELEMENTS(key_rows); i++) {
        const key_row *r = &key_rows[i];
        g_autofree char *name = g_strdup_printf("row%zu", i);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (r->text != NULL && strcmp(r->text, "DIR") == 0)
            assert_int_equal(g_mkdir(path, (int) r->mode), 0);
        else if (r->text != NULL)
            g_free(fbl_test_write_file(dir, name, r->text, r->mode));
        char key[FBL_CURVE_KEY_LEN + 1] = "";
        g_autoptr(GError) error = NULL;
        bool ok = fbl_curve_read_key(path, r->secret, key, &error);
        bool want = r->ok == 1 || (r->ok == -1 && root);
        if (ok != want) {
            ROW_FAIL("row '%s': %s, want %s", r->name, ok ? "read" : error->message,
                     want ? "read" : "refused");
            continue;
        }
        if (ok) {
            fbl_test_check_str(r->name, "key", KEY, key);
            continue;
        }
        if (!g_error_matches(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_KEY_FILE) ||
            strstr(error->message, path) == NULL || strstr(error->message, r->says) == NULL)
            ROW_FAIL("row '%s': '%s' (domain %s code %d): want the path and '%s'", r->name,
                     error->message, g_quark_to_string(error->domain), error->code, r->says);
    }
    fbl_test_rows_done();
}

/* A key file too large to be one is refused before it is read. */
static void test_read_key_too_large(void **state)
{
    (void) state;
    g_autofree char *text = g_strnfill(5000, '#');
    g_autofree char *path = fbl_test_write_file(dir, "large", text, 0600);
    char key[FBL_CURVE_KEY_LEN + 1];
    g_autoptr(GError) error = NULL;
    assert_false(fbl_curve_read_key(path, false, key, &error));
    assert_non_null(strstr(error->message, "not a key file"));
}

static void test_local_endpoints(void **state)
{
    (void) state;
    static const struct {
        const char *endpoint;
        bool local;
    } rows[] = {
        {"inproc://fbl-sink", true}, {"ipc:///run/fbl/sink", true}, {"tcp://127.0.0.1:5555", false},
        {"tcp://[::1]:5555", false}, {"INPROC://fbl-sink", false},  {"", false},
        {"inproc:/fbl-sink", false},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        if (fbl_curve_endpoint_is_local(rows[i].endpoint) != rows[i].local)
            ROW_FAIL("row '%s': want %s", rows[i].endpoint, rows[i].local ? "local" : "network");
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_read_key),
        cmocka_unit_test(test_read_key_too_large),
        cmocka_unit_test(test_local_endpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
