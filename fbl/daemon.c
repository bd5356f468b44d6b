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

/* A handler may only touch lock-free atomics (C11 7.14.1.1). */
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "the stop flag must be lock-free");
static atomic_bool stop_requested;
static atomic_bool reopen_requested;

/* One thread's report to the watchdog; a slot belongs to one thread at a time. */
typedef struct slot {
    _Atomic int64_t alive_at; /* monotonic ms of its last turn; 0: not reporting */
    _Atomic int loop;         /* fbl_daemon_loop, for the log line */
    atomic_bool taken;
} slot;

static slot slots[FBL_DAEMON_MAX_WATCHED];
static atomic_bool slots_full_logged;

static void release_slot(gpointer data);
/* The calling thread's slot, as its index + 1; released when the thread ends. */
static GPrivate my_slot = G_PRIVATE_INIT(release_slot);

static GThread *housekeeper;
static atomic_bool housekeeper_stop;
static gboolean stopping_sent;

static void on_stop(int sig)
{
    (void) sig;
    atomic_store(&stop_requested, true);
}

static void on_hup(int sig)
{
    (void) sig;
    atomic_store(&reopen_requested, true);
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
    return atomic_load(&stop_requested);
}

void fbl_daemon_request_stop(void)
{
    atomic_store(&stop_requested, true);
}

static void release_slot(gpointer data)
{
    slot *s = &slots[GPOINTER_TO_INT(data) - 1];
    /* Not reporting first: the watchdog must not judge a slot being given back. */
    atomic_store(&s->alive_at, 0);
    atomic_store(&s->taken, false);
}

/* A free slot for the calling thread, or NULL when every one is taken. */
static slot *claim_slot(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(slots); i++) {
        bool free_slot = false;
        if (atomic_compare_exchange_strong(&slots[i].taken, &free_slot, true)) {
            g_private_set(&my_slot, GINT_TO_POINTER((int) i + 1));
            return &slots[i];
        }
    }
    if (!atomic_exchange(&slots_full_logged, true))
        g_warning("more than %d threads report to the watchdog: the others are not watched",
                  FBL_DAEMON_MAX_WATCHED);
    return NULL;
}

void fbl_daemon_alive(fbl_daemon_loop loop)
{
    gpointer mine = g_private_get(&my_slot);
    slot *s = mine != NULL ? &slots[GPOINTER_TO_INT(mine) - 1] : claim_slot();
    if (s == NULL)
        return;
    atomic_store(&s->loop, (int) loop);
    atomic_store(&s->alive_at, fbl_now_ms());
}

static void notify(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        g_warning("sd_notify %s: %s", state, g_strerror(-rc));
}

/* WATCHDOG=1 unless a thread that reports has been silent for a whole period. */
static void watchdog(int64_t now, int64_t period_ms, int64_t *next_ping)
{
    static const char *const names[] = {"watch", "sink", "forward", "imap"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == FBL_DAEMON_LOOP_COUNT);
    static int stale = -1; /* the slot that stopped the pings, or -1 */
    if (now < *next_ping)
        return;
    /* Stopping: loops end one by one while others drain; the stop has its own timeout. */
    for (size_t i = 0; i < G_N_ELEMENTS(slots) && !atomic_load(&stop_requested); i++) {
        int64_t at = atomic_load(&slots[i].alive_at);
        if (at != 0 && now - at > period_ms) {
            int loop = atomic_load(&slots[i].loop);
            if (stale != (int) i)
                g_critical("a thread of the %s loop has not turned for %" G_GINT64_FORMAT
                           " ms: no watchdog ping until it does (systemd restarts us "
                           "after WatchdogSec)",
                           names[loop], now - at);
            stale = (int) i;
            return;
        }
    }
    if (stale >= 0)
        g_message("every loop turns again: watchdog pings resume");
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
    while (!atomic_load(&housekeeper_stop)) {
        if (atomic_exchange(&reopen_requested, false)) {
            if (!fbl_log_reopen())
                g_info("SIGHUP: no log file to reopen (logging to stderr)");
        }
        if (atomic_load(&stop_requested) && !stopping_sent) {
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
        atomic_store(&housekeeper_stop, true);
        g_thread_join(housekeeper);
        atomic_store(&housekeeper_stop, false);
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
