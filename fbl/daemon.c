/* daemon.c - stop flag, signals, backoff */
#include "fbl/daemon.h"

#include <signal.h>
#include <string.h>

#include <glib.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void) sig;
    stop_requested = 1;
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

unsigned fbl_backoff_next(unsigned current_ms, unsigned initial_ms, unsigned max_ms)
{
    guint64 next = current_ms == 0 ? initial_ms : (guint64) current_ms * 2;
    if (next > max_ms)
        next = max_ms;
    guint64 jitter = next / 5;
    if (jitter > 0)
        next = next - jitter + (guint64) g_random_int_range(0, (gint32) MIN(jitter * 2, G_MAXINT32));
    return (unsigned) CLAMP(next, 1, max_ms);
}

int64_t fbl_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}
