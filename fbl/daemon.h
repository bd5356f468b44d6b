/*
 * daemon.h - what every long-running subcommand shares: the stop request
 * set by SIGTERM/SIGINT, and capped exponential backoff with jitter
 *
 * Layer: fbl/. The signal handler only sets a flag; every loop polls with a
 * short timeout and checks fbl_daemon_stopping(), so one flag stops all
 * threads of `fbl run` without signal-safety concerns.
 *
 * systemd (sd_notify, Type=notify): fbl_daemon_started() sends READY=1 and
 * starts a housekeeping thread that reopens the log file after SIGHUP, sends
 * WATCHDOG=1 every WatchdogSec/2 as long as every loop that has called
 * fbl_daemon_alive() did so within WatchdogSec (a loop stuck longer makes
 * systemd restart the service), and STOPPING=1 once a stop was requested.
 * Without NOTIFY_SOCKET only the SIGHUP part does anything.
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

/* The loops that report to the watchdog. */
typedef enum {
    FBL_DAEMON_LOOP_WATCH,
    FBL_DAEMON_LOOP_SINK,
    FBL_DAEMON_LOOP_FORWARD,
    FBL_DAEMON_LOOP_COUNT
} fbl_daemon_loop;

/*
 * fbl_daemon_alive - @loop is turning: call once per turn (at least every
 * few seconds). Cheap (one atomic store); any thread.
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
