/* daemon.c - stop flag, signals, sd_notify and the watchdog, backoff */
#define G_LOG_DOMAIN "fbl"
#include "fbl/daemon.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include <glib.h>
#include <systemd/sd-daemon.h>

#include "fbl/log.h"

/* How often the housekeeping thread looks at the flags. */
#define HOUSEKEEPING_MS 100

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested;
/* Monotonic ms of each loop's last turn; 0: it never reported. */
static _Atomic int64_t alive_at[FBL_DAEMON_LOOP_COUNT];

static GThread *housekeeper;
static gint housekeeper_stop;
static gboolean stopping_sent;

static void on_stop(int sig)
{
    (void) sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void) sig;
    reopen_requested = 1;
}

void fbl_daemon_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking poll returns EINTR and the loop looks at the flag. */
    (void) sigaction(SIGTERM, &sa, NULL);
    (void) sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    (void) sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* NOLINT(cert-err33-c): the old handler is of no use */
}

bool fbl_daemon_stopping(void)
{
    return stop_requested != 0;
}

void fbl_daemon_request_stop(void)
{
    stop_requested = 1;
}

void fbl_daemon_alive(fbl_daemon_loop loop)
{
    atomic_store(&alive_at[loop], fbl_now_ms());
}

static void notify(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        g_warning("sd_notify %s: %s", state, g_strerror(-rc));
}

/* WATCHDOG=1 unless a loop that reports has been silent for a whole period. */
static void watchdog(int64_t now, int64_t period_ms, int64_t *next_ping)
{
    static const char *const names[] = {"watch", "sink", "forward"};
    static int stale = -1; /* the loop that stopped the pings, or -1 */
    if (now < *next_ping)
        return;
    for (size_t i = 0; i < FBL_DAEMON_LOOP_COUNT; i++) {
        int64_t at = atomic_load(&alive_at[i]);
        if (at != 0 && now - at > period_ms) {
            if (stale != (int) i)
                g_critical("the %s loop has not turned for %" G_GINT64_FORMAT
                           " ms: no watchdog ping until it does (systemd restarts us "
                           "after WatchdogSec)",
                           names[i], now - at);
            stale = (int) i;
            return;
        }
    }
    if (stale >= 0)
        g_message("the %s loop turns again: watchdog pings resume", names[stale]);
    stale = -1;
    notify("WATCHDOG=1");
    *next_ping = now + period_ms / 2;
}

static gpointer housekeeping(gpointer data)
{
    (void) data;
    uint64_t usec = 0;
    bool watched = sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000;
    int64_t next_ping = 0;
    while (!g_atomic_int_get(&housekeeper_stop)) {
        if (reopen_requested) {
            reopen_requested = 0;
            if (!fbl_log_reopen())
                g_info("SIGHUP: no log file to reopen (logging to stderr)");
        }
        if (stop_requested && !stopping_sent) {
            stopping_sent = TRUE;
            notify("STOPPING=1\nSTATUS=stopping: draining what is in flight");
        }
        if (watched)
            watchdog(fbl_now_ms(), (int64_t) (usec / 1000), &next_ping);
        g_usleep((gulong) HOUSEKEEPING_MS * 1000);
    }
    return NULL;
}

void fbl_daemon_started(const char *status)
{
    g_autofree char *state = g_strdup_printf("READY=1\nSTATUS=%s", status);
    notify(state);
    if (housekeeper == NULL)
        housekeeper = g_thread_new("fbl-housekeeping", housekeeping, NULL);
}

void fbl_daemon_finished(void)
{
    if (housekeeper != NULL) {
        g_atomic_int_set(&housekeeper_stop, 1);
        g_thread_join(housekeeper);
        housekeeper = NULL;
    }
    if (!stopping_sent) {
        stopping_sent = TRUE;
        notify("STOPPING=1");
    }
}

unsigned fbl_backoff_next(unsigned current_ms, unsigned initial_ms, unsigned max_ms)
{
    guint64 next = current_ms == 0 ? initial_ms : (guint64) current_ms * 2;
    if (next > max_ms)
        next = max_ms;
    guint64 jitter = next / 5;
    if (jitter > 0)
        next =
            next - jitter + (guint64) g_random_int_range(0, (gint32) MIN(jitter * 2, G_MAXINT32));
    return (unsigned) CLAMP(next, 1, max_ms);
}

int64_t fbl_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}
