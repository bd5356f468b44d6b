/*
 * daemon.h - what every long-running subcommand shares: the stop request
 * set by SIGTERM/SIGINT, and capped exponential backoff with jitter
 *
 * Layer: fbl/. The signal handler only sets a flag; every loop polls with a
 * short timeout and checks fbl_daemon_stopping(), so one flag stops all
 * threads of `fbl run` without signal-safety concerns.
 *
 * The flag is a lock-free C11 atomic: the handler may set it, any thread may
 * read it.
 *
 * systemd (sd_notify, Type=notify): fbl_daemon_started() sends READY=1 and
 * starts a housekeeping thread that reopens the log file after SIGHUP, sends
 * WATCHDOG=1 every WatchdogSec/2 as long as every thread that has called
 * fbl_daemon_alive() did so within WatchdogSec (a thread stuck longer makes
 * systemd restart the service), and STOPPING=1 once a stop was requested
 * (from then on WATCHDOG=1 is sent without judging the threads: they end one
 * by one while the others drain, and systemd's stop timeout bounds that).
 * Each such thread owns a watchdog slot of its own, so one stuck thread among
 * several running the same loop (the forwarder runs one per vendor) is seen.
 * Without NOTIFY_SOCKET only the SIGHUP part does anything.
 *
 * Bounds: at most FBL_DAEMON_MAX_WATCHED threads are watched at once; a
 * thread beyond them is not watched (logged once).
 */
#ifndef FBL_DAEMON_H
#define FBL_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

/* fbl_daemon_signals - install SIGTERM/SIGINT (stop), SIGHUP (reopen logs); ignore SIGPIPE */
void fbl_daemon_signals(void);

/* fbl_daemon_stopping - a stop was requested (by signal or fbl_daemon_request_stop) */
bool fbl_daemon_stopping(void);
void fbl_daemon_request_stop(void);

/* Threads watched at once: the watcher, the sink, one per vendor and per IMAP mailbox. */
#define FBL_DAEMON_MAX_WATCHED 64

/* The loops that report to the watchdog: what a stuck thread's line names. */
typedef enum {
    FBL_DAEMON_LOOP_WATCH,
    FBL_DAEMON_LOOP_SINK,
    FBL_DAEMON_LOOP_FORWARD,
    FBL_DAEMON_LOOP_IMAP,
    FBL_DAEMON_LOOP_COUNT
} fbl_daemon_loop;

/*
 * fbl_daemon_alive - the calling thread, running @loop, is turning: call once
 * per turn (at least every few seconds). The first call from a thread takes
 * a watchdog slot for it; the slot is given back when the thread ends (a
 * thread that stops calling without ending is stuck). Cheap after the first
 * call (two atomic stores); any thread.
 */
void fbl_daemon_alive(fbl_daemon_loop loop);

/*
 * fbl_daemon_started - the daemon is ready (sockets bound, mailboxes open):
 * READY=1 with @status, and the housekeeping thread
 */
void fbl_daemon_started(const char *status);

/* fbl_daemon_finished - STOPPING=1 (if not sent yet); stop the housekeeping thread */
void fbl_daemon_finished(void);

/*
 * fbl_backoff_next - the next pause: double @current (first: @initial_ms),
 * with up to 20 % random jitter so many sinks do not retry in step, never
 * above @max_ms
 */
unsigned fbl_backoff_next(unsigned current_ms, unsigned initial_ms, unsigned max_ms);

/* fbl_now_ms - monotonic milliseconds */
int64_t fbl_now_ms(void);

#endif /* FBL_DAEMON_H */
