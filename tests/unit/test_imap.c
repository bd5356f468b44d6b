/* test_imap.c - fbl/imap.h without a server: options and URLs, error codes to exit statuses */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <cmocka.h>

#include <glib.h>

#include "fbl/imap.h"

/* Table rows report every mismatch, then the test fails once at its end. */
static unsigned failures;

#define ROW_FAIL(...)                                                                              \
    do {                                                                                           \
        print_error(__VA_ARGS__);                                                                  \
        print_error("\n");                                                                         \
        failures++;                                                                                \
    } while (0)

static void rows_done(void)
{
    unsigned n = failures;
    failures = 0;
    if (n > 0)
        fail_msg("%u check(s) failed", n);
}

typedef struct {
    const char *name;
    const char *url;
    const char *user;
    const char *password;
    const char *token;
    const char *done;
    bool starttls;
    int want; /* 0: accepted, else the FBL_IMAP_ERROR code */
} option_row;

static const option_row option_rows[] = {
    {"imaps", "imaps://imap.example.net:993/INBOX", "u", "pw", NULL, "fbl/done", false, 0},
    {"imaps default port and folder", "imaps://imap.example.net", "u", "pw", NULL, "done", false,
     0},
    {"xoauth2", "imaps://imap.example.net/INBOX", "u", NULL, "tok", "done", false, 0},
    {"imap + starttls", "imap://imap.example.net/INBOX", "u", "pw", NULL, "done", true, 0},
    {"imap to loopback", "imap://127.0.0.1:1143/INBOX", "u", "pw", NULL, "done", false, 0},
    {"imap to localhost", "imap://localhost/INBOX", "u", "pw", NULL, "done", false, 0},
    {"imap to ::1", "imap://[::1]:1143/INBOX", "u", "pw", NULL, "done", false, 0},
    {"plain imap to a remote host", "imap://imap.example.net/INBOX", "u", "pw", NULL, "done", false,
     FBL_IMAP_ERROR_INVALID},
    {"starttls with imaps", "imaps://imap.example.net/INBOX", "u", "pw", NULL, "done", true,
     FBL_IMAP_ERROR_INVALID},
    {"other scheme", "pop3://imap.example.net/INBOX", "u", "pw", NULL, "done", false,
     FBL_IMAP_ERROR_INVALID},
    {"not a URL", "imap.example.net", "u", "pw", NULL, "done", false, FBL_IMAP_ERROR_INVALID},
    {"password in the URL", "imaps://u:secret@imap.example.net/INBOX", "u", "pw", NULL, "done",
     false, FBL_IMAP_ERROR_INVALID},
    {"no user", "imaps://imap.example.net/INBOX", NULL, "pw", NULL, "done", false,
     FBL_IMAP_ERROR_INVALID},
    {"no secret", "imaps://imap.example.net/INBOX", "u", NULL, NULL, "done", false,
     FBL_IMAP_ERROR_INVALID},
    {"two secrets", "imaps://imap.example.net/INBOX", "u", "pw", "tok", "done", false,
     FBL_IMAP_ERROR_INVALID},
    {"no done_folder", "imaps://imap.example.net/INBOX", "u", "pw", NULL, NULL, false,
     FBL_IMAP_ERROR_INVALID},
    {"done_folder is the folder", "imaps://imap.example.net/spam", "u", "pw", NULL, "spam", false,
     FBL_IMAP_ERROR_INVALID},
    {"non-ASCII folder", "imaps://imap.example.net/Sp%C3%A4m", "u", "pw", NULL, "done", false,
     FBL_IMAP_ERROR_INVALID},
    {"'&' in done_folder", "imaps://imap.example.net/INBOX", "u", "pw", NULL, "a&b", false,
     FBL_IMAP_ERROR_INVALID},
};

static void test_options(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(option_rows); i++) {
        const option_row *r = &option_rows[i];
        fbl_imap_options o = {.url = r->url,
                              .user = r->user,
                              .password = r->password,
                              .oauth2_token = r->token,
                              .done_folder = r->done,
                              .starttls = r->starttls};
        g_autoptr(GError) error = NULL;
        g_autoptr(fbl_imap) imap = fbl_imap_new(&o, &error);
        int got = imap != NULL ? 0 : error->code;
        if (got != r->want || (imap == NULL) != (error != NULL))
            ROW_FAIL("row '%s': want %d, got %d (%s)", r->name, r->want, got,
                     error != NULL ? error->message : "accepted");
        if (imap != NULL && (fbl_imap_is_connected(imap) || fbl_imap_get_uidvalidity(imap) != 0))
            ROW_FAIL("row '%s': connected or a UIDVALIDITY before connect", r->name);
    }
    rows_done();
}

typedef struct {
    int code;
    bool transient;
    int status;
} error_row;

static const error_row error_rows[] = {
    {FBL_IMAP_ERROR_AUTH, false, EX_NOPERM},
    {FBL_IMAP_ERROR_TLS, false, EX_UNAVAILABLE},
    {FBL_IMAP_ERROR_NO_FOLDER, false, EX_CONFIG},
    {FBL_IMAP_ERROR_CONNECT, true, EX_UNAVAILABLE},
    {FBL_IMAP_ERROR_PROTOCOL, true, EX_UNAVAILABLE},
    {FBL_IMAP_ERROR_UIDVALIDITY_CHANGED, false, EX_UNAVAILABLE},
    {FBL_IMAP_ERROR_INVALID, false, EX_CONFIG},
};

static void test_errors(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(error_rows); i++) {
        const error_row *r = &error_rows[i];
        g_autoptr(GError) e = g_error_new_literal(FBL_IMAP_ERROR, r->code, "x");
        if (fbl_imap_error_is_transient(e) != r->transient)
            ROW_FAIL("code %d: transient %d, want %d", r->code, !r->transient, r->transient);
        if (fbl_imap_error_exit_status(e) != r->status)
            ROW_FAIL("code %d: exit %d, want %d", r->code, fbl_imap_error_exit_status(e),
                     r->status);
    }
    g_autoptr(GError) other = g_error_new_literal(G_FILE_ERROR, FBL_IMAP_ERROR_CONNECT, "x");
    if (fbl_imap_error_is_transient(other))
        ROW_FAIL("another domain's error counted as transient");
    rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
