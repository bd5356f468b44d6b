/*
 * test_parse_pool.c - fbl/parse_pool.c: every sample mail (and a large one, pushed
 * first, so that workers finish out of order) comes back in the order it was
 * pushed, with the very frames a parse and encode in this thread make; a pool
 * freed with jobs in it stops and frees them
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <glib.h>

#include "fbl/mailfile.h"
#include "fbl/parse_pool.h"
#include "fbl/wire.h"
#include "parsers/parse.h"
#include "tests/unit/harness.h"

/* An attachment forward of about 3 MiB: parsed far slower than the samples. */
#define LARGE_LINES 40000

typedef struct row {
    const char *what;
    unsigned threads;
    unsigned rounds;   /* the mails pushed this many times over */
    bool free_pending; /* free the pool at once, with every job in it */
} row;

static const row rows[] = {
    {"one thread: parsed at push, in the caller's thread", 1, 1, false},
    {"two workers", 2, 2, false},
    {"four workers, many more jobs than workers", 4, 4, false},
    {"freed with every job in it: the workers stop, the jobs are freed", 4, 4, true},
};

static char *dir;        /* the large mail's directory */
static GPtrArray *paths; /* char *: the large mail, then every sample */

static char *large_mail(void)
{
    GString *m = g_string_new("From: Jane <jane@example.org>\nTo: abuse@example.net\n"
                              "Subject: Fwd: spam\nMessage-ID: <large@example.org>\n"
                              "MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
                              "--b\nContent-Type: text/plain\n\nSee the spam.\n\n"
                              "--b\nContent-Type: message/rfc822\n\n"
                              "Received: from spam.example.com ([192.0.2.9])\n\tby mx.example.org;"
                              " Thu, 01 Jan 2026 09:59:00 +0000\n"
                              "From: Deals <deals@example.com>\nTo: jane@example.org\n"
                              "Subject: Buy\nMessage-ID: <spam@example.com>\nMIME-Version: 1.0\n"
                              "Content-Type: text/plain\n\n");
    for (unsigned i = 0; i < LARGE_LINES; i++)
        g_string_append_printf(m, "line %u of the offer: http://example.com/deal/%u\n", i, i % 50);
    g_string_append(m, "\n--b--\n");
    return g_string_free(m, FALSE);
}

/* g_ptr_array_sort() hands over pointers to the elements */
static gint by_name(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *) a, *(const char *const *) b);
}

static int setup(void **state)
{
    (void) fbl_test_setup_parsers(state);
    dir = fbl_test_tmpdir("fbl-parse-pool-XXXXXX");
    paths = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *large = large_mail();
    g_ptr_array_add(paths, fbl_test_write_file(dir, "large.eml", large, 0600));
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) samples = g_dir_open(FBL_SAMPLES_DIR, 0, &error);
    assert_non_null(samples);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    for (const char *n; (n = g_dir_read_name(samples)) != NULL;)
        if (g_str_has_suffix(n, ".eml"))
            g_ptr_array_add(names, g_strdup(n));
    g_ptr_array_sort(names, by_name);
    for (guint i = 0; i < names->len; i++)
        g_ptr_array_add(paths, g_build_filename(FBL_SAMPLES_DIR,
                                                (const char *) g_ptr_array_index(names, i), NULL));
    assert_true(paths->len > 10);
    return 0;
}

static int teardown(void **state)
{
    fbl_test_remove_tree(dir);
    g_free(dir);
    g_ptr_array_unref(paths);
    return fbl_test_teardown_parsers(state);
}

/* Mail @n of a row: paths[n % len], delivered at @n (which names it in the pool). */
static fbl_parse_job *job_for(guint n)
{
    fbl_mailfile mail;
    g_autoptr(GError) error = NULL;
    const char *path = g_ptr_array_index(paths, n % paths->len);
    if (!fbl_mailfile_read(path, FBL_DEFAULT_MAX_MAIL_BYTES, &mail, &error))
        fail_msg("%s: %s", path, error->message);
    fbl_mail_meta meta = {
        .mailbox = "box", .received_at = n, .default_feedback_type = FBL_FEEDBACK_ABUSE};
    return fbl_parse_job_new(&mail, &meta);
}

/* The frames of @job's mail, parsed and encoded here. */
static GPtrArray *frames_here(const fbl_parser *parser, const fbl_parse_job *job)
{
    g_autoptr(fbl_parse_job) again = job_for((guint) job->meta.received_at);
    g_autoptr(fbl_parse_result) res = fbl_mailfile_parse(parser, &again->mail, &again->meta);
    GBytes *raw = g_byte_array_free_to_bytes(g_steal_pointer(&again->mail.data));
    GPtrArray *frames =
        fbl_wire_encode_mail(res, "box", again->meta.received_at, again->mail.size, raw);
    g_bytes_unref(raw);
    return frames;
}

static void check_job(const row *r, const fbl_parser *parser, const fbl_parse_job *job, guint want)
{
    if (job->meta.received_at != want) {
        ROW_FAIL("%s: popped mail %" G_GINT64_FORMAT ", wanted %u", r->what, job->meta.received_at,
                 want);
        return;
    }
    g_autoptr(GPtrArray) here = frames_here(parser, job);
    size_t bytes = 0;
    for (guint i = 0; i < job->frames->len; i++)
        bytes += g_bytes_get_size(g_ptr_array_index(job->frames, i));
    if (job->result == NULL || here->len != job->frames->len || bytes != job->bytes) {
        ROW_FAIL("%s: mail %u: %u frames (%zu bytes), %u here", r->what, want, job->frames->len,
                 job->bytes, here->len);
        return;
    }
    for (guint i = 0; i < here->len; i++)
        if (!g_bytes_equal(g_ptr_array_index(here, i), g_ptr_array_index(job->frames, i)))
            ROW_FAIL("%s: mail %u: frame %u differs from a parse here", r->what, want, i);
}

/* Pop until every job is back, waiting on the pool's descriptor between pops. */
static void pop_all(const row *r, const fbl_parser *parser, fbl_parse_pool *pool, guint jobs)
{
    guint next = 0;
    while (next < jobs) {
        g_autoptr(fbl_parse_job) job = fbl_parse_pool_pop(pool);
        if (job != NULL) {
            check_job(r, parser, job, next++);
            continue;
        }
        struct pollfd p = {.fd = fbl_parse_pool_fd(pool), .events = POLLIN};
        if (p.fd < 0) {
            ROW_FAIL("%s: nothing to pop after %u of %u, and no descriptor", r->what, next, jobs);
            return;
        }
        assert_true(poll(&p, 1, 60000) > 0); /* a bound against a hang, not a timing */
    }
    if (fbl_parse_pool_pending(pool) != 0 || fbl_parse_pool_pop(pool) != NULL)
        ROW_FAIL("%s: jobs left after the last one", r->what);
}

static void test_rows(void **state)
{
    (void) state;
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_parser) parser = fbl_parser_new(&o, &error);
    assert_non_null(parser);
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const row *r = &rows[i];
        fbl_parse_pool *pool = fbl_parse_pool_new(parser, r->threads, &error);
        assert_non_null(pool);
        unsigned workers = r->threads > 1 ? r->threads : 0;
        if (fbl_parse_pool_threads(pool) != workers || (fbl_parse_pool_fd(pool) < 0) != !workers)
            ROW_FAIL("%s: %u workers, descriptor %d", r->what, fbl_parse_pool_threads(pool),
                     fbl_parse_pool_fd(pool));
        guint jobs = r->rounds * paths->len;
        for (guint n = 0; n < jobs; n++)
            fbl_parse_pool_push(pool, job_for(n));
        if (fbl_parse_pool_pending(pool) != jobs)
            ROW_FAIL("%s: %u pending, %u pushed", r->what, fbl_parse_pool_pending(pool), jobs);
        if (!r->free_pending)
            pop_all(r, parser, pool, jobs);
        fbl_parse_pool_free(pool); /* joins; LeakSanitizer sees any job it lost */
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
