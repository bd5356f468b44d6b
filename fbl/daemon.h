/*
 * daemon.h - what every long-running subcommand shares: the stop request
 * set by SIGTERM/SIGINT, and capped exponential backoff with jitter
 *
 * Layer: fbl/. The signal handler only sets a flag; every loop polls with a
 * short timeout and checks fbl_daemon_stopping(), so one flag stops all
 * threads of `fbl run` without signal-safety concerns.
 */
#ifndef FBL_DAEMON_H
#define FBL_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

/* fbl_daemon_signals - install SIGTERM/SIGINT (stop) and ignore SIGPIPE */
void fbl_daemon_signals(void);

/* fbl_daemon_stopping - a stop was requested (by signal or fbl_daemon_request_stop) */
bool fbl_daemon_stopping(void);
void fbl_daemon_request_stop(void);

/*
 * fbl_backoff_next - the next pause: double @current (first: @initial_ms),
 * with up to 20 % random jitter so many sinks do not retry in step, never
 * above @max_ms
 */
unsigned fbl_backoff_next(unsigned current_ms, unsigned initial_ms, unsigned max_ms);

/* fbl_now_ms - monotonic milliseconds */
int64_t fbl_now_ms(void);

#endif /* FBL_DAEMON_H */
