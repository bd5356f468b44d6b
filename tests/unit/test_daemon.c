/*
 * test_daemon.c - fbl/daemon.c: capped exponential backoff with jitter (one
 * row per case, sampled many times), the systemd watchdog fed by several
 * threads (a real AF_UNIX datagram socket as $NOTIFY_SOCKET: one stuck thread
 * among busy ones of the same loop stops the pings), and the stop flag set by
 * a real SIGTERM. The stop test runs last: the flag cannot be cleared.
 */
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "fbl/daemon.h"
#include "tests/unit/harness.h"

/* ---- fbl_backoff_next ------------------------------------------------------------ */

#define SAMPLES 2000

static const struct {
    const char *name;
    unsigned current, initial, max;
    unsigned lo, hi; /* every pause in [lo, hi] */
} backoff_rows[] = {
    {"first pause: initial, 20 % jitter", 0, 250, 30000, 200, 300},
    {"doubles", 1000, 250, 30000, 1600, 2400},
    {"capped at max", 20000, 250, 30000, 24000, 30000},
    {"stays at max", 30000, 250, 30000, 24000, 30000},
    {"max below initial", 0, 500, 100, 80, 100},
    {"too small to jitter", 0, 1, 10, 1, 1},
    {"never zero (a busy loop)", 0, 0, 100, 1, 1},
    {"no overflow", UINT_MAX, 1, UINT_MAX, UINT_MAX - UINT_MAX / 5, UINT_MAX},
};

static void test_backoff(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(backoff_rows); i++) {
        unsigned lo = UINT_MAX, hi = 0;
        for (int n = 0; n < SAMPLES; n++) {
            unsigned next = fbl_backoff_next(backoff_rows[i].current, backoff_rows[i].initial,
                                             backoff_rows[i].max);
            lo = MIN(lo, next);
            hi = MAX(hi, next);
        }
        if (lo < backoff_rows[i].lo || hi > backoff_rows[i].hi)
            ROW_FAIL("row '%s': pauses in [%u, %u], want within [%u, %u]", backoff_rows[i].name, lo,
                     hi, backoff_rows[i].lo, backoff_rows[i].hi);
        /* Jitter spreads the sinks: the samples cover most of the window. */
        if ((guint64) hi - lo < ((guint64) backoff_rows[i].hi - backoff_rows[i].lo) / 2)
            ROW_FAIL("row '%s': pauses only in [%u, %u]: no jitter?", backoff_rows[i].name, lo, hi);
    }
    fbl_test_rows_done();
}

/* From nothing, each pause is longer than the last until the cap, then stays under it. */
static void test_backoff_series(void **state)
{
    (void) state;
    unsigned pause = 0, steps = 0;
    while (pause < 30000 * 4 / 5) {
        unsigned next = fbl_backoff_next(pause, 250, 30000);
        assert_true(next > pause);
        pause = next;
        steps++;
    }
    assert_in_range(steps, 6, 10); /* 250 ms doubled to 30 s: about 7 steps */
    for (int n = 0; n < 100; n++) {
        pause = fbl_backoff_next(pause, 250, 30000);
        assert_in_range(pause, 24000, 30000);
    }
}

/* ---- the watchdog ----------------------------------------------------------------- */

#define PERIOD_MS ((int64_t) 1000) /* WatchdogSec; pings every half of it */

static int notify_fd = -1;
static char *notify_dir;

/* What the daemon logged (the housekeeping thread logs too). */
static GMutex logged_lock;
static GPtrArray *logged;

static GLogWriterOutput capture(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                gpointer user_data)
{
    (void) level;
    (void) user_data;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0) {
            g_mutex_lock(&logged_lock);
            g_ptr_array_add(logged, g_strdup(fields[i].value));
            g_mutex_unlock(&logged_lock);
        }
    }
    return G_LOG_WRITER_HANDLED;
}

static bool was_logged(const char *part)
{
    bool found = false;
    g_mutex_lock(&logged_lock);
    for (guint i = 0; i < logged->len && !found; i++)
        found = strstr(g_ptr_array_index(logged, i), part) != NULL;
    g_mutex_unlock(&logged_lock);
    return found;
}

typedef struct note {
    int64_t at;
    char *text;
} note;

static void note_clear(gpointer data)
{
    g_free(((note *) data)->text);
}

/* Read what sd_notify sent until @until (monotonic ms). */
static void collect(GArray *notes, int64_t until)
{
    for (int64_t now = fbl_now_ms(); now < until; now = fbl_now_ms()) {
        struct pollfd p = {.fd = notify_fd, .events = POLLIN};
        if (poll(&p, 1, (int) MIN(until - now, 50)) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(notify_fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        note nt = {fbl_now_ms(), g_strdup(buf)};
        g_array_append_val(notes, nt);
    }
}

/* Notes that start with @text received in [@from, @to). */
static unsigned count(const GArray *notes, const char *text, int64_t from, int64_t to)
{
    unsigned n = 0;
    for (guint i = 0; i < notes->len; i++) {
        const note *nt = &g_array_index(notes, note, i);
        n += nt->at >= from && nt->at < to && g_str_has_prefix(nt->text, text);
    }
    return n;
}

static atomic_bool busy_stop, stuck_release, stuck_ready;

/* A forwarder thread that turns every 20 ms. */
static gpointer busy_main(gpointer data)
{
    (void) data;
    while (!atomic_load(&busy_stop)) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_FORWARD);
        g_usleep(20000);
    }
    return NULL;
}

/* A forwarder thread that turns once and then hangs (a vendor that never answers). */
static gpointer stuck_main(gpointer data)
{
    (void) data;
    fbl_daemon_alive(FBL_DAEMON_LOOP_FORWARD);
    atomic_store(&stuck_ready, true);
    while (!atomic_load(&stuck_release))
        g_usleep(10000);
    return NULL; /* the thread ends: its slot is given back */
}

static int watchdog_setup(void **state)
{
    (void) state;
    notify_dir = fbl_test_tmpdir("fbl-notify-XXXXXX");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_autofree char *path = g_build_filename(notify_dir, "notify", NULL);
    if (strlen(path) >= sizeof addr.sun_path)
        return -1;
    g_strlcpy(addr.sun_path, path, sizeof addr.sun_path);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *) &addr, sizeof addr) != 0)
        return -1;
    g_autofree char *usec = g_strdup_printf("%" G_GINT64_FORMAT, PERIOD_MS * 1000);
    g_autofree char *pid = g_strdup_printf("%ld", (long) getpid());
    g_setenv("NOTIFY_SOCKET", path, TRUE);
    g_setenv("WATCHDOG_USEC", usec, TRUE);
    g_setenv("WATCHDOG_PID", pid, TRUE);
    logged = g_ptr_array_new_with_free_func(g_free);
    g_log_set_writer_func(capture, NULL, NULL);
    return 0;
}

static int watchdog_teardown(void **state)
{
    (void) state;
    g_unsetenv("NOTIFY_SOCKET");
    g_unsetenv("WATCHDOG_USEC");
    g_unsetenv("WATCHDOG_PID");
    if (notify_fd >= 0)
        (void) close(notify_fd);
    fbl_test_remove_tree(notify_dir);
    g_free(notify_dir);
    return 0;
}

static void test_watchdog_sees_one_stuck_thread(void **state)
{
    (void) state;
    g_autoptr(GArray) notes = g_array_new(FALSE, TRUE, sizeof(note));
    g_array_set_clear_func(notes, note_clear);
    GThread *busy = g_thread_new("busy", busy_main, NULL);
    GThread *stuck = g_thread_new("stuck", stuck_main, NULL);
    while (!atomic_load(&stuck_ready))
        g_usleep(1000);
    int64_t stuck_at = fbl_now_ms();
    fbl_daemon_started("testing");

    /* Both turned lately: pings. */
    collect(notes, stuck_at + PERIOD_MS / 2 + 200);
    assert_int_equal(count(notes, "READY=1", 0, INT64_MAX), 1);
    assert_true(count(notes, "WATCHDOG=1", 0, INT64_MAX) >= 1);

    /* The stuck thread has been silent for a period: no ping, though its sibling turns. */
    collect(notes, stuck_at + 3 * PERIOD_MS + PERIOD_MS / 2);
    int64_t quiet_from = stuck_at + 2 * PERIOD_MS; /* a late read of an earlier ping aside */
    if (count(notes, "WATCHDOG=1", quiet_from, INT64_MAX) != 0)
        fail_msg("pinged while a forward thread was stuck for %" G_GINT64_FORMAT " ms",
                 fbl_now_ms() - stuck_at);
    assert_true(was_logged("a thread of the forward loop has not turned"));

    /* It ends (its slot goes with it): pings again. */
    atomic_store(&stuck_release, true);
    g_thread_join(stuck);
    int64_t released_at = fbl_now_ms();
    collect(notes, released_at + PERIOD_MS + PERIOD_MS / 2);
    assert_true(count(notes, "WATCHDOG=1", released_at, INT64_MAX) >= 1);
    assert_true(was_logged("watchdog pings resume"));

    atomic_store(&busy_stop, true);
    g_thread_join(busy);
    fbl_daemon_finished();
    collect(notes, fbl_now_ms() + 200);
    assert_int_equal(count(notes, "STOPPING=1", 0, INT64_MAX), 1);
}

/* ---- the stop flag ----------------------------------------------------------------- */

static void test_stop_by_signal(void **state)
{
    (void) state;
    assert_false(fbl_daemon_stopping());
    fbl_daemon_signals();
    assert_int_equal(raise(SIGPIPE), 0); /* ignored: a closed peer must not kill us */
    assert_false(fbl_daemon_stopping());
    assert_int_equal(raise(SIGTERM), 0);
    assert_true(fbl_daemon_stopping());
    fbl_daemon_request_stop(); /* again: still stopping */
    assert_true(fbl_daemon_stopping());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_backoff_series),
        cmocka_unit_test_setup_teardown(test_watchdog_sees_one_stuck_thread, watchdog_setup,
                                        watchdog_teardown),
        cmocka_unit_test(test_stop_by_signal),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (logged != NULL)
        g_ptr_array_unref(logged);
    return failed;
}
